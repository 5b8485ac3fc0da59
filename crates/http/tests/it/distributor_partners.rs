//! `POST/GET /v1/distributor/partners` and `GET/PUT /v1/distributor/partners/{id}`.

use partnerd_domain::account::AccountStatus;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, assert_id, contoso, msp_alpha, msp_beta, new_msp, oversized_body};

const PARTNERS: &str = "/v1/distributor/partners";

fn path(id: &str) -> String {
    format!("{PARTNERS}/{id}")
}

/// `body` with `field` removed (a dotted path reaches into `billing`).
fn without(mut body: Value, field: &str) -> Value {
    match field.split_once('.') {
        Some((outer, inner)) => body[outer].as_object_mut().unwrap().remove(inner),
        None => body.as_object_mut().unwrap().remove(field),
    };
    body
}

/// `body` with `field` set to `value` (a dotted path reaches into `billing`).
fn with(mut body: Value, field: &str, value: Value) -> Value {
    match field.split_once('.') {
        Some((outer, inner)) => body[outer][inner] = value,
        None => body[field] = value,
    }
    body
}

/// What the distributor can see of its partners, and how many keys exist, to show that a
/// refused request provisioned nothing.
async fn provisioned(app: &TestApp, distributor: &Caller<'_>) -> (Value, usize) {
    let list = distributor.get(PARTNERS).await;
    assert_eq!(list.status, 200, "{}", list.body);
    (list.body, app.store.stored_key_hashes().len())
}

// ---- POST /v1/distributor/partners ----

#[tokio::test]
async fn create_answers_201_pending_with_the_reference_fields_and_issues_no_key() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let keys_before = app.store.stored_key_hashes().len();
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let reply = distributor.post(PARTNERS, &new_msp()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = assert_id(&reply.body["id"], "prt_");
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "company": "New MSP Pty Ltd",
            "email": "admin@newmsp.com",
            "plan": "professional",
            "status": "pending",
            "billing": {"currency": "AUD", "interval": "quarterly"},
            "createdAt": "2026-04-03T11:00:00Z",
        })
    );
    assert_eq!(app.store.stored_key_hashes().len(), keys_before, "a pending partner has no key yet");
    assert!(app.store.events().is_empty(), "provisioning is not activation");
    assert_eq!(distributor.partner_ids("").await, [id.as_str()]);
    let detail = distributor.partner_detail(&id).await;
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["name"], "Jane Smith");
}

#[tokio::test]
async fn billing_defaults_to_quarterly_and_codes_are_accepted_in_either_case() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let cases = [
        (json!({"currency": "AUD"}), json!({"currency": "AUD", "interval": "quarterly"})),
        (json!({"currency": "usd"}), json!({"currency": "USD", "interval": "quarterly"})),
        (json!({"currency": "Gbp", "interval": "ANNUAL"}), json!({"currency": "GBP", "interval": "annual"})),
        (json!({"currency": "eur", "interval": "monthly"}), json!({"currency": "EUR", "interval": "monthly"})),
        (json!({"currency": "NZD", "interval": "annual"}), json!({"currency": "NZD", "interval": "annual"})),
        (json!({"currency": "sgd", "interval": "Quarterly"}), json!({"currency": "SGD", "interval": "quarterly"})),
    ];
    for (sent, answered) in cases {
        let reply = distributor.post(PARTNERS, &with(new_msp(), "billing", sent.clone())).await;
        assert_eq!(reply.status, 201, "{sent}: {}", reply.body);
        assert_eq!(reply.body["billing"], answered, "{sent}");
        let id = reply.body["id"].as_str().unwrap();
        assert_eq!(distributor.partner_detail(id).await["billing"], answered, "{sent} is stored as answered");
    }
}

#[tokio::test]
async fn names_are_trimmed_and_every_plan_can_be_provisioned() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    for (plan, limit) in [("starter", 50), ("professional", 200), ("enterprise", -1)] {
        let body = json!({
            "email": "admin@newmsp.com",
            "company": "  New MSP Pty Ltd  ",
            "name": " Jane Smith ",
            "plan": plan,
            "billing": {"currency": "AUD"},
        });
        let reply = distributor.post(PARTNERS, &body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.body["company"], "New MSP Pty Ltd");
        assert_eq!(reply.body["plan"], plan);
        let detail = distributor.partner_detail(reply.body["id"].as_str().unwrap()).await;
        assert_eq!(detail["name"], "Jane Smith");
        assert_eq!(detail["usage"]["runsLimit"], limit);
    }
}

#[tokio::test]
async fn each_absent_required_field_is_missing_field_naming_it_and_creates_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let before = provisioned(&app, &distributor).await;
    for field in ["email", "company", "name", "plan", "billing", "billing.currency"] {
        distributor.post(PARTNERS, &without(new_msp(), field)).await.field_error("MISSING_FIELD", field);
    }
    distributor
        .post(PARTNERS, &with(new_msp(), "billing", json!({})))
        .await
        .field_error("MISSING_FIELD", "billing.currency");
    distributor
        .post(PARTNERS, &with(new_msp(), "billing", json!({"interval": "annual"})))
        .await
        .field_error("MISSING_FIELD", "billing.currency");
    distributor.post(PARTNERS, &json!({})).await.error(400, "MISSING_FIELD");
    assert_eq!(provisioned(&app, &distributor).await, before);
}

#[tokio::test]
async fn invalid_values_are_invalid_field_naming_the_field_and_create_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let before = provisioned(&app, &distributor).await;
    let cases = [
        ("email", json!("nope")),
        ("email", json!("jane smith@newmsp.com")),
        ("email", json!("@newmsp.com")),
        ("email", json!("admin@newmsp")),
        ("email", json!("")),
        ("email", json!(5)),
        ("company", json!("")),
        ("company", json!("   ")),
        ("company", json!("x".repeat(201))),
        ("name", json!("  ")),
        ("name", json!(["Jane"])),
        ("plan", json!("platinum")),
        ("plan", json!("")),
        ("plan", json!(2)),
        ("billing", json!("AUD")),
        ("billing.currency", json!("JPY")),
        ("billing.currency", json!("")),
        ("billing.currency", json!("Australian dollars")),
        ("billing.interval", json!("weekly")),
        ("billing.interval", json!("")),
        ("billing.interval", json!(3)),
    ];
    for (field, value) in cases {
        let reply = distributor.post(PARTNERS, &with(new_msp(), field, value.clone())).await;
        assert_eq!(reply.status, 400, "{field} = {value}: {}", reply.body);
        reply.field_error("INVALID_FIELD", field);
    }
    // A distributor cannot choose what the server decides.
    for (field, value) in [("status", json!("active")), ("id", json!("prt_000000000000000000000001"))] {
        distributor.post(PARTNERS, &with(new_msp(), field, value)).await.field_error("INVALID_FIELD", field);
    }
    distributor
        .post(PARTNERS, &with(new_msp(), "billing.amount", json!("1.00")))
        .await
        .field_error("INVALID_FIELD", "billing.amount");
    assert_eq!(provisioned(&app, &distributor).await, before);
}

#[tokio::test]
async fn malformed_bodies_are_refused_in_the_envelope_and_create_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let before = provisioned(&app, &distributor).await;
    for body in ["", "{\"email\": ", "email=admin@newmsp.com"] {
        distributor.post_raw(PARTNERS, body).await.error(400, "INVALID_JSON");
    }
    distributor.post(PARTNERS, &json!([new_msp()])).await.field_error("INVALID_FIELD", "body");
    distributor.post_raw(PARTNERS, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(provisioned(&app, &distributor).await, before);
}

// ---- GET /v1/distributor/partners ----

/// A distributor with three partners provisioned an hour apart: New MSP (active, with Contoso),
/// MSP Alpha (pending) and MSP Beta (suspended).
async fn three_partners(app: &TestApp) -> (Caller<'_>, [String; 3]) {
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    app.clock.set(datetime!(2026-04-03 09:00 UTC));
    let active = distributor.provision(&new_msp()).await;
    distributor.activate(&active).await;
    let created = distributor.post(&format!("{}/customers", path(&active)), &contoso()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    app.clock.set(datetime!(2026-04-03 10:00 UTC));
    let pending = distributor.provision(&msp_alpha()).await;
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let suspended = distributor.provision(&msp_beta()).await;
    distributor.activate(&suspended).await;
    let reply = distributor.post_empty(&format!("{}/suspend", path(&suspended))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (distributor, [active, pending, suspended])
}

#[tokio::test]
async fn the_list_shows_every_partner_oldest_first_with_the_reference_fields() {
    let app = TestApp::start().await;
    let (distributor, [active, pending, suspended]) = three_partners(&app).await;
    let reply = distributor.get(PARTNERS).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "partners": [
                {
                    "id": active,
                    "company": "New MSP Pty Ltd",
                    "email": "admin@newmsp.com",
                    "plan": "professional",
                    "status": "active",
                    "customersCount": 1,
                    "createdAt": "2026-04-03T09:00:00Z",
                },
                {
                    "id": pending,
                    "company": "MSP Alpha",
                    "email": "admin@mspalpha.com",
                    "plan": "professional",
                    "status": "pending",
                    "customersCount": 0,
                    "createdAt": "2026-04-03T10:00:00Z",
                },
                {
                    "id": suspended,
                    "company": "MSP Beta",
                    "email": "admin@mspbeta.com",
                    "plan": "starter",
                    "status": "suspended",
                    "customersCount": 0,
                    "createdAt": "2026-04-03T11:00:00Z",
                },
            ],
            "has_more": false,
        })
    );
}

#[tokio::test]
async fn the_status_filter_lists_one_status_and_refuses_unknown_ones() {
    let app = TestApp::start().await;
    let (distributor, [active, pending, suspended]) = three_partners(&app).await;
    assert_eq!(distributor.partner_ids("?status=active").await, [active]);
    assert_eq!(distributor.partner_ids("?status=pending").await, [pending]);
    assert_eq!(distributor.partner_ids("?status=suspended").await, [suspended]);
    for bad in ["frozen", "", "all", "active,pending"] {
        distributor.get(&format!("{PARTNERS}?status={bad}")).await.field_error("INVALID_FIELD", "status");
    }
}

#[tokio::test]
async fn the_list_pages_with_limit_and_starting_after() {
    let app = TestApp::start().await;
    let (distributor, [first, second, third]) = three_partners(&app).await;
    let page = distributor.get(&format!("{PARTNERS}?limit=2")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["has_more"], true);
    assert_eq!(distributor.partner_ids("?limit=2").await, [first.clone(), second.clone()]);
    let rest = distributor.get(&format!("{PARTNERS}?limit=2&starting_after={second}")).await;
    assert_eq!(rest.body["has_more"], false);
    assert_eq!(rest.body["partners"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["partners"][0]["id"], third.as_str());
    assert_eq!(distributor.partner_ids(&format!("?status=active&starting_after={first}")).await, Vec::<String>::new());
    assert_eq!(
        distributor.partner_ids("?starting_after=prt_000000000000000000000999").await,
        Vec::<String>::new(),
        "an unknown cursor starts nothing"
    );
    for bad in ["0", "1001", "ten", "-1"] {
        distributor.get(&format!("{PARTNERS}?limit={bad}")).await.field_error("INVALID_FIELD", "limit");
    }
}

#[tokio::test]
async fn a_distributor_without_partners_lists_none() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let reply = app.as_distributor(&key).get(PARTNERS).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"partners": [], "has_more": false}));
}

// ---- GET /v1/distributor/partners/{id} ----

#[tokio::test]
async fn detail_shows_billing_and_this_months_usage() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let (id, partner_key) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&partner_key);
    let customer = partner.create_customer(&contoso()).await;
    partner.trigger(&customer, "essential-eight").await;
    partner.trigger(&customer, "nist-csf").await;
    assert_eq!(
        distributor.partner_detail(&id).await,
        json!({
            "id": id,
            "company": "New MSP Pty Ltd",
            "email": "admin@newmsp.com",
            "name": "Jane Smith",
            "plan": "professional",
            "status": "active",
            "billing": {"currency": "AUD", "interval": "quarterly"},
            "usage": {"month": "2026-04", "runsUsed": 2, "runsLimit": 200, "customersCount": 1},
            "createdAt": "2026-04-03T11:00:00Z",
        })
    );
    // A new month starts from zero runs; the customers stay.
    app.clock.set(datetime!(2026-05-01 00:00 UTC));
    assert_eq!(
        distributor.partner_detail(&id).await["usage"],
        json!({"month": "2026-05", "runsUsed": 0, "runsLimit": 200, "customersCount": 1})
    );
}

#[tokio::test]
async fn detail_of_a_pending_partner_and_of_unknown_ids() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let id = distributor.provision(&msp_beta()).await;
    let detail = distributor.partner_detail(&id).await;
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["billing"], json!({"currency": "USD", "interval": "quarterly"}));
    assert_eq!(detail["usage"], json!({"month": "2026-04", "runsUsed": 0, "runsLimit": 50, "customersCount": 0}));
    let missing = distributor.get(&path("prt_000000000000000000000999")).await;
    missing.error(404, "NOT_FOUND");
    for unknown in ["nope", "cust_000000000000000000000001", "PRT_000000000000000000000999", "%20"] {
        let reply = distributor.get(&path(unknown)).await;
        assert_eq!((reply.status, &reply.body), (missing.status, &missing.body), "{unknown}");
    }
}

// ---- PUT /v1/distributor/partners/{id} ----

/// Everything a PUT could change, as the distributor and the partner see it.
async fn partner_state(app: &TestApp, distributor: &Caller<'_>, id: &str, key: &str) -> (Value, Value, usize) {
    let me = app.as_partner_key(key).me().await;
    (distributor.partner_detail(id).await, me, app.store.ledger_lines().len())
}

#[tokio::test]
async fn put_answers_the_reference_example_with_billing_merged() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let (id, partner_key) = distributor.provision_active(&new_msp()).await;
    app.clock.set(datetime!(2026-04-03 11:15 UTC));
    let reply = distributor.put(&path(&id), &json!({"plan": "enterprise", "billing": {"interval": "annual"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "company": "New MSP Pty Ltd",
            "email": "admin@newmsp.com",
            "name": "Jane Smith",
            "plan": "enterprise",
            "billing": {"currency": "AUD", "interval": "annual"},
            "updatedAt": "2026-04-03T11:15:00Z",
        })
    );
    let detail = distributor.partner_detail(&id).await;
    assert_eq!(detail["plan"], "enterprise");
    assert_eq!(detail["billing"], json!({"currency": "AUD", "interval": "annual"}));
    assert_eq!(detail["usage"]["runsLimit"], -1);
    let me = app.as_partner_key(&partner_key).me().await;
    assert_eq!((me["plan"].clone(), me["usage"]["runsLimit"].clone()), (json!("enterprise"), json!(-1)));
    assert_eq!(app.store.ledger_lines().len(), 2, "a change of terms is billed with proration");
}

#[tokio::test]
async fn put_billing_fields_are_merged_one_at_a_time() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let id = distributor.provision(&new_msp()).await;
    let reply = distributor.put(&path(&id), &json!({"billing": {"interval": "monthly"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["billing"], json!({"currency": "AUD", "interval": "monthly"}), "the currency stays");
    assert_eq!(reply.body["plan"], "professional", "the plan stays");
    let reply = distributor.put(&path(&id), &json!({"billing": {"currency": "usd"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["billing"], json!({"currency": "USD", "interval": "monthly"}), "the interval stays");
    let reply = distributor.put(&path(&id), &json!({"plan": "starter"})).await;
    assert_eq!(reply.body["billing"], json!({"currency": "USD", "interval": "monthly"}), "billing stays");
    let detail = distributor.partner_detail(&id).await;
    assert_eq!(detail["plan"], "starter");
    assert_eq!(detail["billing"], json!({"currency": "USD", "interval": "monthly"}));
    assert_eq!(detail["status"], "pending", "a pending partner's terms can change; its status does not");
}

#[tokio::test]
async fn put_changes_profile_fields_alone_without_billing_anything() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let (id, partner_key) = distributor.provision_active(&new_msp()).await;
    app.clock.set(datetime!(2026-04-03 12:00 UTC));
    let body = json!({"company": " Renamed MSP ", "name": "Janet Smith", "email": "ops@newmsp.com"});
    let reply = distributor.put(&path(&id), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "company": "Renamed MSP",
            "email": "ops@newmsp.com",
            "name": "Janet Smith",
            "plan": "professional",
            "billing": {"currency": "AUD", "interval": "quarterly"},
            "updatedAt": "2026-04-03T12:00:00Z",
        })
    );
    let detail = distributor.partner_detail(&id).await;
    assert_eq!((detail["company"].clone(), detail["name"].clone()), (json!("Renamed MSP"), json!("Janet Smith")));
    let me = app.as_partner_key(&partner_key).me().await;
    assert_eq!((me["company"].clone(), me["email"].clone()), (json!("Renamed MSP"), json!("ops@newmsp.com")));
    assert!(app.store.ledger_lines().is_empty());
}

#[tokio::test]
async fn put_with_nothing_new_changes_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let (id, partner_key) = distributor.provision_active(&new_msp()).await;
    let before = partner_state(&app, &distributor, &id, &partner_key).await;
    app.clock.set(datetime!(2026-04-03 12:00 UTC));
    for body in [
        json!({}),
        json!({"billing": {}}),
        json!({"plan": "professional"}),
        json!({"plan": "professional", "billing": {"currency": "aud", "interval": "QUARTERLY"}}),
        json!({"company": "New MSP Pty Ltd", "name": "Jane Smith", "email": "admin@newmsp.com"}),
    ] {
        let reply = distributor.put(&path(&id), &body).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.body);
        assert_eq!(reply.body["updatedAt"], "2026-04-03T10:00:00Z", "{body}: nothing was updated");
    }
    assert_eq!(partner_state(&app, &distributor, &id, &partner_key).await, before);
}

#[tokio::test]
async fn refused_puts_name_the_problem_and_change_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let (id, partner_key) = distributor.provision_active(&new_msp()).await;
    let before = partner_state(&app, &distributor, &id, &partner_key).await;
    let p = path(&id);
    distributor.put(&p, &json!({"email": "nope"})).await.field_error("INVALID_FIELD", "email");
    distributor.put(&p, &json!({"company": "  "})).await.field_error("INVALID_FIELD", "company");
    distributor.put(&p, &json!({"name": ""})).await.field_error("INVALID_FIELD", "name");
    distributor.put(&p, &json!({"company": 7})).await.field_error("INVALID_FIELD", "company");
    distributor.put(&p, &json!({"status": "suspended"})).await.field_error("INVALID_FIELD", "status");
    distributor.put(&p, &json!({"billing": "annual"})).await.field_error("INVALID_FIELD", "billing");
    distributor
        .put(&p, &json!({"billing": {"interval": "annual", "discount": "10%"}}))
        .await
        .field_error("INVALID_FIELD", "billing.discount");
    // New terms are a plan change: what POST …/plan refuses, PUT refuses the same way.
    for body in [
        json!({"plan": "platinum"}),
        json!({"billing": {"currency": "JPY"}}),
        json!({"billing": {"interval": "weekly"}}),
        json!({"company": "Renamed MSP", "plan": "platinum"}),
    ] {
        distributor.put(&p, &body).await.error(400, "PLAN_CHANGE_FAILED");
    }
    // A bad profile field stops a good plan change too.
    distributor.put(&p, &json!({"email": "nope", "plan": "enterprise"})).await.field_error("INVALID_FIELD", "email");
    for body in ["", "{\"plan\": ", "[]"] {
        assert_eq!(distributor.put_raw(&p, body).await.status, 400, "{body:?}");
    }
    distributor.put_raw(&p, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(partner_state(&app, &distributor, &id, &partner_key).await, before);
}

#[tokio::test]
async fn put_and_get_of_unknown_ids_are_not_found() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    distributor.put(&path("prt_000000000000000000000999"), &json!({"company": "X"})).await.error(404, "NOT_FOUND");
    distributor.put(&path("nope"), &json!({"plan": "enterprise"})).await.error(404, "NOT_FOUND");
    distributor
        .send(reqwest::Method::DELETE, &path("prt_000000000000000000000999"), None)
        .await
        .error(405, "METHOD_NOT_ALLOWED");
}
