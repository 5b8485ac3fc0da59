//! A walk of every Distributor API endpoint with the reference document's own example request
//! bodies (New MSP Pty Ltd, MSP Alpha and MSP Beta, Contoso Ltd), checking the documented status
//! codes and the reference's field names. Some calls go to `/api/v1/…`, exactly as the
//! reference's curl examples do; the rest to `/v1/…`. What the distributor does for a partner is
//! checked again through the partner's own key.

use std::collections::BTreeSet;

use partnerd_e2e::str_field;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{
    Ctx, DistributorApi, PartnerApi, array, assert_current_month, assert_distributor_me, assert_error, assert_fields,
    assert_has_keys, assert_keys, assert_ok, assert_status, assert_timestamp, contoso, create_distributor,
    msp_alpha_and_beta, new_msp, on_both_backends, serve_open, utc_month,
};

on_both_backends!(every_distributor_endpoint_answers_as_the_reference_documents);

/// A partner in `GET /v1/distributor/partners`.
const LISTED_PARTNER: [&str; 7] = ["id", "company", "email", "plan", "status", "customersCount", "createdAt"];
/// `POST /v1/distributor/partners` → 201.
const CREATED_PARTNER: [&str; 7] = ["id", "company", "email", "plan", "status", "billing", "createdAt"];
/// `GET /v1/distributor/partners/{id}`.
const PARTNER_DETAIL: [&str; 9] = ["id", "company", "email", "name", "plan", "status", "billing", "usage", "createdAt"];
/// `PUT /v1/distributor/partners/{id}` → 200.
const UPDATED_PARTNER: [&str; 4] = ["id", "plan", "billing", "updatedAt"];
/// `POST …/{id}/plan` → 200.
const PLAN_CHANGED: [&str; 7] =
    ["partnerId", "plan", "billing", "currency", "runLimit", "subscriptionStatus", "currentPeriodEnd"];
/// `POST …/{id}/customers` → 201.
const CREATED_CUSTOMER: [&str; 8] =
    ["id", "name", "tenantId", "email", "receivers", "questionnaireRecipients", "partnerId", "createdAt"];
/// A customer in `GET …/{id}/customers`.
const LISTED_CUSTOMER: [&str; 5] = ["id", "name", "tenantId", "email", "createdAt"];
/// `POST …/{id}/assessments` → 202.
const QUEUED_RUN: [&str; 6] = ["id", "customerId", "partnerId", "product", "status", "createdAt"];
/// A run in `GET …/{id}/assessments` (score and completedAt come with completion).
const LISTED_RUN: [&str; 5] = ["id", "customerId", "product", "status", "createdAt"];

#[track_caller]
fn assert_id(value: &Value, field: &str, prefix: &str) -> String {
    let id = str_field(value, field);
    assert!(id.starts_with(prefix) && id.len() > prefix.len(), "{field} {id:?} does not start with {prefix:?}");
    id.to_owned()
}

/// An RFC 3339 UTC timestamp in the future (a billing period's end).
#[track_caller]
fn assert_future_timestamp(value: &Value) -> OffsetDateTime {
    let text = value.as_str().unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    assert!(text.ends_with('Z'), "timestamp {text:?} does not end in Z");
    let at = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"));
    assert!(at > OffsetDateTime::now_utc(), "currentPeriodEnd {text:?} is not in the future");
    at
}

/// The ids of `items[].field`, as a set.
fn ids<'a>(items: &'a [Value], field: &str) -> BTreeSet<&'a str> {
    items.iter().map(|i| str_field(i, field)).collect()
}

/// `POST …/activate` (or `…/reactivate`) when the partner has no key: `200 {id, status, activatedAt,
/// key}`; returns a client holding the new key.
#[track_caller]
fn activated(reply: &partnerd_e2e::Reply, partner: &str, server: &partnerd_e2e::Server) -> PartnerApi {
    let body = assert_ok(reply);
    assert_keys(body, &["id", "status", "activatedAt", "key"]);
    assert_fields(body, &json!({"id": partner, "status": "active"}));
    assert_timestamp(&body["activatedAt"]);
    let key = str_field(body, "key");
    assert!(key.starts_with("pk_live_"), "{}", reply.text);
    PartnerApi::new(server, key)
}

async fn every_distributor_endpoint_answers_as_the_reference_documents(ctx: &Ctx) {
    let created = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let server = serve_open(ctx).await;
    let api = DistributorApi::new(&server, str_field(&created, "key"));

    // GET /v1/distributor/me, as the reference's authentication example: under /api/v1.
    let me = api.get("/api/v1/distributor/me").await;
    assert_distributor_me(assert_ok(&me), &created, 0);

    // GET /v1/distributor/partners: none yet.
    let list = api.get("/v1/distributor/partners").await;
    assert!(array(assert_ok(&list), "partners").is_empty(), "{}", list.text);

    // POST /v1/distributor/partners with the reference's body → its "Response 201".
    let reply = api.post("/v1/distributor/partners", &new_msp()).await;
    let new = assert_status(&reply, 201).clone();
    assert_has_keys(&new, &CREATED_PARTNER);
    assert_fields(
        &new,
        &json!({"company": "New MSP Pty Ltd", "email": "admin@newmsp.com", "plan": "professional",
                "status": "pending", "billing": {"currency": "AUD", "interval": "quarterly"}}),
    );
    let new_id = assert_id(&new, "id", "prt_");
    assert_timestamp(&new["createdAt"]);

    // POST /api/v1/distributor/partners/bulk with the reference's body → its "Response 201".
    let reply = api.post("/api/v1/distributor/partners/bulk", &msp_alpha_and_beta()).await;
    let bulk = assert_status(&reply, 201);
    assert_has_keys(bulk, &["created", "failed", "partners"]);
    assert_fields(bulk, &json!({"created": 2, "failed": 0}));
    let items = array(bulk, "partners");
    assert_eq!(items.len(), 2, "{}", reply.text);
    let mut bulk_ids = Vec::new();
    for (item, company) in items.iter().zip(["MSP Alpha", "MSP Beta"]) {
        assert_has_keys(item, &["id", "company", "status"]);
        assert_fields(item, &json!({"company": company, "status": "pending"}));
        bulk_ids.push(assert_id(item, "id", "prt_"));
    }
    let (alpha_id, beta_id) = (bulk_ids[0].clone(), bulk_ids[1].clone());
    assert_eq!(BTreeSet::from([&new_id, &alpha_id, &beta_id]).len(), 3, "every partner gets its own id");

    // GET /v1/distributor/partners: all three, pending, with the reference's list fields.
    let list = api.get("/v1/distributor/partners").await;
    let partners = array(assert_ok(&list), "partners");
    assert_eq!(ids(partners, "id"), BTreeSet::from([new_id.as_str(), alpha_id.as_str(), beta_id.as_str()]));
    for (id, company, email, plan) in [
        (&new_id, "New MSP Pty Ltd", "admin@newmsp.com", "professional"),
        (&alpha_id, "MSP Alpha", "admin@mspalpha.com", "professional"),
        (&beta_id, "MSP Beta", "admin@mspbeta.com", "starter"),
    ] {
        let item = partners.iter().find(|p| p["id"] == id.as_str()).expect("listed");
        assert_has_keys(item, &LISTED_PARTNER);
        assert_fields(
            item,
            &json!({"company": company, "email": email, "plan": plan, "status": "pending", "customersCount": 0}),
        );
        assert_timestamp(&item["createdAt"]);
    }
    assert_eq!(partners.iter().find(|p| p["id"] == new_id.as_str()).unwrap()["createdAt"], new["createdAt"]);
    // ?status= filters, the three documented values.
    assert_eq!(api.partner_ids("?status=pending").await.len(), 3);
    assert!(api.partner_ids("?status=active").await.is_empty());
    assert!(api.partner_ids("?status=suspended").await.is_empty());

    // GET /v1/distributor/partners/{id}: name, billing, and this month's usage.
    let detail = api.get(&format!("/v1/distributor/partners/{new_id}")).await;
    let body = assert_ok(&detail);
    assert_has_keys(body, &PARTNER_DETAIL);
    assert_fields(
        body,
        &json!({"id": new_id, "company": "New MSP Pty Ltd", "email": "admin@newmsp.com", "name": "Jane Smith",
                "plan": "professional", "status": "pending", "billing": {"currency": "AUD", "interval": "quarterly"},
                "createdAt": new["createdAt"]}),
    );
    assert_keys(&body["usage"], &["month", "runsUsed", "runsLimit", "customersCount"]);
    assert_fields(&body["usage"], &json!({"runsUsed": 0, "runsLimit": 200, "customersCount": 0}));
    assert_current_month(&body["usage"]["month"]);

    // POST /v1/distributor/partners/{id}/activate (no body): active, with its first key.
    let reply = api.post_empty(&format!("/v1/distributor/partners/{new_id}/activate")).await;
    let partner = activated(&reply, &new_id, &server);
    let partner_me = partner.me().await;
    assert_fields(
        &partner_me,
        &json!({"id": new_id, "company": "New MSP Pty Ltd", "email": "admin@newmsp.com", "plan": "professional",
                "status": "active"}),
    );
    assert_fields(&partner_me["usage"], &json!({"runsUsed": 0, "runsLimit": 200, "customersCount": 0}));
    assert_eq!(api.partner_ids("?status=active").await, [new_id.as_str()]);

    // POST /v1/distributor/partners/{id}/plan with the reference's body → its "Response 200".
    let reply = api
        .post(
            &format!("/v1/distributor/partners/{new_id}/plan"),
            &json!({"plan": "enterprise", "billing": "rolling", "currency": "aud"}),
        )
        .await;
    let body = assert_ok(&reply);
    assert_keys(body, &PLAN_CHANGED);
    assert_fields(
        body,
        &json!({"partnerId": new_id, "plan": "enterprise", "billing": "rolling", "currency": "aud", "runLimit": -1,
                "subscriptionStatus": "active"}),
    );
    let period_end = assert_future_timestamp(&body["currentPeriodEnd"]);
    assert!(
        period_end > OffsetDateTime::now_utc() + time::Duration::days(300),
        "a rolling (annual) period ends about a year ahead: {}",
        reply.text
    );
    // The partner sees the new plan at once; the distributor sees annual billing in AUD.
    let partner_me = partner.me().await;
    assert_eq!((&partner_me["plan"], &partner_me["usage"]["runsLimit"]), (&json!("enterprise"), &json!(-1)));
    let detail = api.partner(&new_id).await;
    assert_fields(&detail, &json!({"plan": "enterprise", "billing": {"currency": "AUD", "interval": "annual"}}));
    assert_eq!(detail["usage"]["runsLimit"], -1, "{detail}");

    // PUT /v1/distributor/partners/{id} with the reference's body → its "Response 200": billing
    // is merged, so the currency stays AUD.
    let reply = api
        .put(
            &format!("/v1/distributor/partners/{alpha_id}"),
            &json!({"plan": "enterprise", "billing": {"interval": "annual"}}),
        )
        .await;
    let body = assert_ok(&reply);
    assert_has_keys(body, &UPDATED_PARTNER);
    assert_fields(
        body,
        &json!({"id": alpha_id, "plan": "enterprise", "billing": {"currency": "AUD", "interval": "annual"}}),
    );
    assert_timestamp(&body["updatedAt"]);
    let detail = api.partner(&alpha_id).await;
    assert_fields(
        &detail,
        &json!({"company": "MSP Alpha", "name": "Alice Wong", "plan": "enterprise", "status": "pending",
                "billing": {"currency": "AUD", "interval": "annual"}}),
    );
    assert_eq!(detail["usage"]["runsLimit"], -1, "{detail}");

    // GET …/customers: none yet.
    let list = api.get(&format!("/v1/distributor/partners/{new_id}/customers")).await;
    assert!(array(assert_ok(&list), "customers").is_empty(), "{}", list.text);

    // POST /api/v1/distributor/partners/{id}/customers with the reference's body → 201, partnerId.
    let request = contoso();
    let reply = api.post(&format!("/api/v1/distributor/partners/{new_id}/customers"), &request).await;
    let customer = assert_status(&reply, 201).clone();
    assert_has_keys(&customer, &CREATED_CUSTOMER);
    assert_fields(&customer, &request);
    assert_eq!(customer["partnerId"], new_id.as_str(), "{}", reply.text);
    let customer_id = assert_id(&customer, "id", "cust_");
    assert_timestamp(&customer["createdAt"]);

    // GET /v1/distributor/partners/{id}/customers: the reference's list fields.
    let list = api.get(&format!("/v1/distributor/partners/{new_id}/customers")).await;
    let customers = array(assert_ok(&list), "customers");
    assert_eq!(customers.len(), 1, "{}", list.text);
    assert_has_keys(&customers[0], &LISTED_CUSTOMER);
    for k in LISTED_CUSTOMER {
        assert_eq!(customers[0][k], customer[k], "{k} of {}", customers[0]);
    }

    // POST /v1/distributor/partners/{id}/assessments with the reference's body → 202, partnerId.
    let trigger = json!({"customerId": customer_id, "product": "essential-eight", "maturityTarget": 3});
    let reply = api.post(&format!("/v1/distributor/partners/{new_id}/assessments"), &trigger).await;
    let run = assert_status(&reply, 202).clone();
    assert_has_keys(&run, &QUEUED_RUN);
    assert_fields(
        &run,
        &json!({"customerId": customer_id, "partnerId": new_id, "product": "essential-eight", "status": "queued"}),
    );
    let run_id = assert_id(&run, "id", "run_");
    assert_timestamp(&run["createdAt"]);

    // GET /api/v1/distributor/partners/{id}/assessments: the run, with the reference's fields.
    let listed = api.get(&format!("/api/v1/distributor/partners/{new_id}/assessments")).await;
    let runs = array(assert_ok(&listed), "runs");
    assert_eq!(runs.len(), 1, "{}", listed.text);
    assert_has_keys(&runs[0], &LISTED_RUN);
    assert_fields(
        &runs[0],
        &json!({"id": run_id, "customerId": customer_id, "product": "essential-eight", "status": "queued",
                "createdAt": run["createdAt"]}),
    );

    // The partner sees both as its own, and its usage counts them.
    assert_eq!(ids(&partner.customers().await, "id"), BTreeSet::from([customer_id.as_str()]));
    let own_run = partner.get(&format!("/v1/partner/assessments/{run_id}")).await;
    assert_fields(
        assert_ok(&own_run),
        &json!({"customerId": customer_id, "customerName": "Contoso Ltd", "maturityTarget": 3, "status": "queued"}),
    );
    assert_fields(&partner.me().await["usage"], &json!({"runsUsed": 1, "customersCount": 1}));
    let detail = api.partner(&new_id).await;
    assert_fields(&detail["usage"], &json!({"runsUsed": 1, "runsLimit": -1, "customersCount": 1}));
    let listed = api.partners("").await;
    let item = listed.iter().find(|p| p["id"] == new_id.as_str()).expect("listed");
    assert_eq!(item["customersCount"], 1, "{item}");

    // GET /v1/distributor/usage?month=<this month> → the reference's shape.
    let month = utc_month(OffsetDateTime::now_utc());
    let usage = api.get(&format!("/v1/distributor/usage?month={month}")).await;
    let body = assert_ok(&usage);
    assert_keys(body, &["month", "totalPartners", "activePartners", "totalCustomers", "totalRuns", "byPartner"]);
    assert_fields(
        body,
        &json!({"month": month, "totalPartners": 3, "activePartners": 1, "totalCustomers": 1, "totalRuns": 1}),
    );
    let by_partner = array(body, "byPartner");
    for line in by_partner {
        assert_keys(line, &["partnerId", "company", "runs", "customers"]);
    }
    let ours: BTreeSet<&str> = BTreeSet::from([new_id.as_str(), alpha_id.as_str(), beta_id.as_str()]);
    assert!(ids(by_partner, "partnerId").is_subset(&ours), "{}", usage.text);
    let line = by_partner.iter().find(|l| l["partnerId"] == new_id.as_str()).expect("New MSP has usage");
    assert_fields(line, &json!({"company": "New MSP Pty Ltd", "runs": 1, "customers": 1}));
    let sum = |field: &str| by_partner.iter().map(|l| l[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("runs"), sum("customers")), (1, 1), "byPartner adds up to the totals: {}", usage.text);
    // Without ?month=: this month. With the reference's literal month: nothing (unless it is now).
    let default = api.usage("").await;
    assert_current_month(&default["month"]);
    assert_fields(&default, &json!({"totalRuns": 1, "totalCustomers": 1, "totalPartners": 3}));
    let example = api.get("/api/v1/distributor/usage?month=2026-04").await;
    let body = assert_ok(&example);
    assert_eq!(body["month"], "2026-04", "{}", example.text);
    assert_eq!(body["totalRuns"], u64::from(month == "2026-04"), "{}", example.text);

    // GET /v1/distributor/me now counts the partners and this month's usage.
    let me = api.me().await;
    assert_fields(&me, &json!({"id": created["id"], "status": "active", "partnersCount": 3}));
    assert_fields(&me["usage"], &json!({"totalRuns": 1, "totalCustomers": 1}));
    assert_current_month(&me["usage"]["month"]);

    // POST …/{id}/suspend with a reason → 200 suspended; the partner's key is dead at once.
    let reply =
        api.post(&format!("/v1/distributor/partners/{new_id}/suspend"), &json!({"reason": "Unpaid invoice"})).await;
    let body = assert_ok(&reply);
    assert_has_keys(body, &["id", "status", "suspendedAt"]);
    assert_fields(body, &json!({"id": new_id, "status": "suspended"}));
    assert_timestamp(&body["suspendedAt"]);
    assert_error(&partner.get("/v1/partner/me").await, 401, "INVALID_KEY");
    assert_eq!(api.partner(&new_id).await["status"], "suspended");
    assert_eq!(api.partner_ids("?status=suspended").await, [new_id.as_str()]);

    // POST …/{id}/reactivate → active with a fresh key; the old one stays dead.
    let reply = api.post_empty(&format!("/v1/distributor/partners/{new_id}/reactivate")).await;
    let partner_again = activated(&reply, &new_id, &server);
    assert_eq!(partner_again.me().await["status"], "active");
    assert_error(&partner.get("/v1/partner/me").await, 401, "INVALID_KEY");
    assert_eq!(ids(&partner_again.customers().await, "id"), BTreeSet::from([customer_id.as_str()]));

    // POST /api/v1/…/{id}/suspend with no body at all, as documented → 200; then activate again.
    let reply = api.post_empty(&format!("/api/v1/distributor/partners/{new_id}/suspend")).await;
    let body = assert_ok(&reply);
    assert_has_keys(body, &["id", "status", "suspendedAt"]);
    assert_fields(body, &json!({"id": new_id, "status": "suspended"}));
    assert_error(&partner_again.get("/v1/partner/me").await, 401, "INVALID_KEY");
    let reply = api.post_empty(&format!("/api/v1/distributor/partners/{new_id}/activate")).await;
    let third = activated(&reply, &new_id, &server);
    assert_eq!(third.me().await["plan"], "enterprise", "suspension kept the plan");

    // Activate the two bulk partners; the filters follow.
    let alpha = PartnerApi::new(&server, &api.activate(&alpha_id).await);
    assert_eq!(alpha.me().await["plan"], "enterprise", "the PUT's plan applies once active");
    let beta = PartnerApi::new(&server, &api.activate(&beta_id).await);
    assert_fields(&beta.me().await, &json!({"company": "MSP Beta", "plan": "starter", "status": "active"}));
    assert_eq!(api.partner_ids("?status=active").await.len(), 3);
    assert!(api.partner_ids("?status=pending").await.is_empty());
    assert!(api.partner_ids("?status=suspended").await.is_empty());
    assert_fields(&api.usage("").await, &json!({"totalPartners": 3, "activePartners": 3}));
}
