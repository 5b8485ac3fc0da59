//! `GET/POST /v1/distributor/partners/{id}/customers` and `…/assessments`: work done on a
//! partner's behalf is the partner's own work, visible through its key and counted against its
//! run limit; it needs an active partner.

use partnerd_domain::account::AccountStatus;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, assert_id, contoso, fabrikam, msp_alpha, msp_beta, new_msp, numbered_customer};

fn customers(id: &str) -> String {
    format!("/v1/distributor/partners/{id}/customers")
}

fn assessments(id: &str) -> String {
    format!("/v1/distributor/partners/{id}/assessments")
}

/// The reference's example body for `POST …/partners/{id}/customers`.
fn contoso_on_behalf() -> Value {
    json!({
        "name": "Contoso Ltd",
        "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
        "email": "it@contoso.com",
        "receivers": ["ciso@contoso.com"],
        "questionnaireRecipients": ["ciso@contoso.com"],
    })
}

/// Everything the partner itself can see of its customers, runs and usage.
async fn partner_view(partner: &Caller<'_>) -> (Value, Value, Value) {
    (partner.customers().await, partner.runs().await, partner.me().await["usage"].clone())
}

// ---- customers ----

#[tokio::test]
async fn a_customer_created_on_behalf_answers_201_with_the_partner_id() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    app.clock.set(datetime!(2026-04-03 11:30 UTC));
    let reply = distributor.post(&customers(&id), &contoso_on_behalf()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let customer = assert_id(&reply.body["id"], "cust_");
    assert_eq!(
        reply.body,
        json!({
            "id": customer,
            "name": "Contoso Ltd",
            "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
            "email": "it@contoso.com",
            "receivers": ["ciso@contoso.com"],
            "questionnaireRecipients": ["ciso@contoso.com"],
            "partnerId": id,
            "createdAt": "2026-04-03T11:30:00Z",
            "updatedAt": "2026-04-03T11:30:00Z",
        })
    );
}

#[tokio::test]
async fn customers_on_behalf_are_the_partners_own_and_the_list_shows_both_kinds() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&key);
    app.clock.set(datetime!(2026-04-03 11:30 UTC));
    let reply = distributor.post(&customers(&id), &contoso_on_behalf()).await;
    let by_distributor = reply.body["id"].as_str().unwrap().to_owned();
    app.clock.set(datetime!(2026-04-03 11:40 UTC));
    let by_partner = partner.create_customer(&fabrikam()).await;

    // The partner sees, reads and may change the customer its distributor created.
    let listed = partner.customers().await;
    let ids: Vec<&str> = listed["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [by_distributor.as_str(), by_partner.as_str()]);
    assert_eq!(partner.customer(&by_distributor).await["receivers"], json!(["ciso@contoso.com"]));
    assert_eq!(partner.me().await["usage"]["customersCount"], 2);
    let renamed = partner.put(&format!("/v1/partner/customers/{by_distributor}"), &json!({"name": "Contoso"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);

    let reply = distributor.get(&customers(&id)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "customers": [
                {
                    "id": by_distributor,
                    "name": "Contoso",
                    "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
                    "email": "it@contoso.com",
                    "createdAt": "2026-04-03T11:30:00Z",
                },
                {
                    "id": by_partner,
                    "name": "Fabrikam Inc",
                    "tenantId": "a1b2c3d4-5678-9abc-def0-123456789abc",
                    "email": "admin@fabrikam.com",
                    "createdAt": "2026-04-03T11:40:00Z",
                },
            ],
            "has_more": false,
        })
    );
    let page = distributor.get(&format!("{}?limit=1", customers(&id))).await;
    assert_eq!(page.body["has_more"], true);
    assert_eq!(page.body["customers"][0]["id"], by_distributor.as_str());
    assert_eq!(distributor.partner_detail(&id).await["usage"]["customersCount"], 2);
    assert_eq!(distributor.get("/v1/distributor/partners").await.body["partners"][0]["customersCount"], 2);
}

#[tokio::test]
async fn customer_input_is_checked_as_in_the_partner_api_and_refusals_create_nothing() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&key);
    let before = partner_view(&partner).await;
    let path = customers(&id);
    distributor.post(&path, &json!({"name": "Contoso Ltd"})).await.field_error("MISSING_FIELD", "tenantId");
    distributor
        .post(&path, &json!({"tenantId": "d4f5a678-1234-5678-9abc-def012345678"}))
        .await
        .field_error("MISSING_FIELD", "name");
    distributor
        .post(&path, &json!({"name": "Contoso Ltd", "tenantId": "nope"}))
        .await
        .field_error("INVALID_FIELD", "tenantId");
    let mut bad_email = contoso();
    bad_email["email"] = json!("nope");
    distributor.post(&path, &bad_email).await.field_error("INVALID_FIELD", "email");
    let mut sneaky = contoso();
    sneaky["partnerId"] = json!("prt_000000000000000000000001");
    distributor.post(&path, &sneaky).await.field_error("INVALID_FIELD", "partnerId");
    distributor.post_raw(&path, "{\"name\": ").await.error(400, "INVALID_JSON");
    distributor.get(&format!("{path}?limit=0")).await.field_error("INVALID_FIELD", "limit");
    assert_eq!(partner_view(&partner).await, before);
}

// ---- assessments ----

#[tokio::test]
async fn a_run_triggered_on_behalf_answers_202_with_the_partner_id() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let customer =
        distributor.post(&customers(&id), &contoso_on_behalf()).await.body["id"].as_str().unwrap().to_owned();
    app.clock.set(datetime!(2026-04-03 11:35 UTC));
    let body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3});
    let reply = distributor.post(&assessments(&id), &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let run = assert_id(&reply.body["id"], "run_");
    assert_eq!(
        reply.body,
        json!({
            "id": run,
            "customerId": customer,
            "partnerId": id,
            "product": "essential-eight",
            "maturityTarget": 3,
            "status": "queued",
            "createdAt": "2026-04-03T11:35:00Z",
        })
    );
}

#[tokio::test]
async fn runs_on_behalf_are_the_partners_own_and_the_list_shows_both_kinds() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&key);
    let customer = partner.create_customer(&contoso()).await;
    app.clock.set(datetime!(2026-04-03 11:35 UTC));
    let body = json!({"customerId": customer, "product": "nist-csf"});
    let by_distributor = distributor.post(&assessments(&id), &body).await.body["id"].as_str().unwrap().to_owned();
    app.clock.set(datetime!(2026-04-03 11:50 UTC));
    let by_partner = partner.trigger(&customer, "essential-eight").await;

    // The partner sees the run, reads it, and pays for it.
    let runs = partner.runs().await;
    let ids: Vec<&str> = runs["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [by_partner.as_str(), by_distributor.as_str()], "newest first");
    let run = partner.get(&format!("/v1/partner/assessments/{by_distributor}")).await;
    assert_eq!(run.status, 200, "{}", run.body);
    assert_eq!(run.body["customerName"], "Contoso Ltd");
    assert_eq!(partner.runs_used().await, 2);
    assert_eq!(partner.customer(&customer).await["recentRuns"].as_array().unwrap().len(), 2);

    let reply = distributor.get(&assessments(&id)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "runs": [
                {
                    "id": by_partner,
                    "customerId": customer,
                    "customerName": "Contoso Ltd",
                    "product": "essential-eight",
                    "maturityTarget": 2,
                    "status": "queued",
                    "createdAt": "2026-04-03T11:50:00Z",
                },
                {
                    "id": by_distributor,
                    "customerId": customer,
                    "customerName": "Contoso Ltd",
                    "product": "nist-csf",
                    "maturityTarget": 3,
                    "status": "queued",
                    "createdAt": "2026-04-03T11:35:00Z",
                },
            ],
            "has_more": false,
        })
    );
    assert_eq!(distributor.partner_detail(&id).await["usage"]["runsUsed"], 2);

    // The Partner API's filters work here too.
    let filtered = distributor.get(&format!("{}?product=nist-csf", assessments(&id))).await;
    assert_eq!(filtered.body["runs"].as_array().unwrap().len(), 1);
    assert_eq!(filtered.body["runs"][0]["id"], by_distributor.as_str());
    let march = distributor.get(&format!("{}?month=2026-03", assessments(&id))).await;
    assert_eq!(march.body, json!({"runs": [], "has_more": false}));
    let page = distributor.get(&format!("{}?limit=1", assessments(&id))).await;
    assert_eq!(
        (page.body["runs"][0]["id"].as_str(), page.body["has_more"].as_bool()),
        (Some(by_partner.as_str()), Some(true))
    );
    distributor.get(&format!("{}?month=April", assessments(&id))).await.field_error("INVALID_FIELD", "month");
}

#[tokio::test]
async fn trigger_input_is_checked_as_in_the_partner_api_and_refusals_cost_nothing() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let (sibling, sibling_key) = distributor.provision_active(&msp_alpha()).await;
    let partner = app.as_partner_key(&key);
    let customer = partner.create_customer(&contoso()).await;
    let siblings_customer = app.as_partner_key(&sibling_key).create_customer(&fabrikam()).await;
    let before = partner_view(&partner).await;
    let path = assessments(&id);
    let trigger = |customer: &str, product: &str| json!({"customerId": customer, "product": product});
    distributor.post(&path, &trigger(&customer, "nope")).await.error(400, "INVALID_PRODUCT");
    distributor.post(&path, &trigger(&customer, "cis-controls")).await.error(403, "PRODUCT_NOT_ALLOWED");
    distributor.post(&path, &trigger("cust_000000000000000000000999", "essential-eight")).await.error(404, "NOT_FOUND");
    // The distributor's other partner's customer is not this partner's.
    distributor.post(&path, &trigger(&siblings_customer, "essential-eight")).await.error(404, "NOT_FOUND");
    distributor.post(&path, &json!({"product": "essential-eight"})).await.field_error("MISSING_FIELD", "customerId");
    distributor
        .post(&path, &json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 9}))
        .await
        .field_error("INVALID_FIELD", "maturityTarget");
    distributor.post_raw(&path, "{\"customerId\": ").await.error(400, "INVALID_JSON");
    assert_eq!(partner_view(&partner).await, before, "no run was queued and no unit was taken");
    let sibling_runs = distributor.get(&assessments(&sibling)).await;
    assert_eq!(sibling_runs.body["runs"], json!([]));
}

#[tokio::test]
async fn runs_on_behalf_count_against_the_partners_own_limit() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&msp_beta()).await;
    let partner = app.as_partner_key(&key);
    let ids = partner.create_customers(50).await;
    // The partner uses 49 of its 50 starter runs; the distributor's trigger takes the last.
    let bulk = partner
        .post("/v1/partner/assessments/bulk", &json!({"product": "essential-eight", "customerIds": ids[..49]}))
        .await;
    assert_eq!(bulk.body["queued"], 49, "{}", bulk.body);
    let last = distributor.post(&assessments(&id), &json!({"customerId": ids[49], "product": "essential-eight"})).await;
    assert_eq!(last.status, 202, "{}", last.body);
    assert_eq!(
        partner.me().await["usage"],
        json!({"month": "2026-04", "runsUsed": 50, "runsLimit": 50, "customersCount": 50})
    );
    partner
        .post("/v1/partner/assessments", &json!({"customerId": ids[0], "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
    let message = distributor
        .post(&assessments(&id), &json!({"customerId": ids[0], "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
    assert!(message.contains("50"), "{message}");
    assert_eq!(partner.runs_used().await, 50);
    assert_eq!(partner.runs().await["runs"].as_array().unwrap().len(), 50);
    assert_eq!(distributor.get(&assessments(&id)).await.body["runs"].as_array().unwrap().len(), 50);
    assert_eq!(distributor.partner_detail(&id).await["usage"]["runsUsed"], 50);
}

#[tokio::test]
async fn a_partner_that_filled_its_limit_itself_refuses_the_distributor_too() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&msp_beta()).await;
    let partner = app.as_partner_key(&key);
    let ids = partner.create_customers(50).await;
    let bulk =
        partner.post("/v1/partner/assessments/bulk", &json!({"product": "essential-eight", "customerIds": ids})).await;
    assert_eq!(bulk.body["queued"], 50, "{}", bulk.body);
    distributor
        .post(&assessments(&id), &json!({"customerId": ids[0], "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
    assert_eq!(partner.runs_used().await, 50);
    // Raising the plan on the partner's behalf lets the distributor's next trigger through.
    let upgraded =
        distributor.post(&format!("/v1/distributor/partners/{id}/plan"), &json!({"plan": "professional"})).await;
    assert_eq!(upgraded.status, 200, "{}", upgraded.body);
    let reply = distributor.post(&assessments(&id), &json!({"customerId": ids[0], "product": "nist-csf"})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(partner.runs_used().await, 51);
}

// ---- inactive partners ----

/// The four on-behalf requests against `id`.
async fn on_behalf_codes(distributor: &Caller<'_>, id: &str, customer: &str) -> Vec<(u16, String)> {
    let replies = [
        distributor.get(&customers(id)).await,
        distributor.post(&customers(id), &numbered_customer(7)).await,
        distributor.get(&assessments(id)).await,
        distributor.post(&assessments(id), &json!({"customerId": customer, "product": "essential-eight"})).await,
    ];
    replies.iter().map(|r| (r.status, r.body["error"]["code"].as_str().unwrap_or("").to_owned())).collect()
}

fn inactive() -> Vec<(u16, String)> {
    vec![(403, "PARTNER_INACTIVE".to_owned()); 4]
}

#[tokio::test]
async fn a_pending_partner_is_partner_inactive_for_on_behalf_work() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let id = distributor.provision(&new_msp()).await;
    assert_eq!(on_behalf_codes(&distributor, &id, "cust_000000000000000000000999").await, inactive());
    let key = distributor.activate(&id).await.unwrap();
    let partner = app.as_partner_key(&key);
    assert_eq!(
        partner_view(&partner).await,
        (
            json!({"customers": [], "has_more": false}),
            json!({"runs": [], "has_more": false}),
            json!({"month": "2026-04", "runsUsed": 0, "runsLimit": 200, "customersCount": 0}),
        ),
        "nothing was created while pending"
    );
    let reply = distributor.get(&customers(&id)).await;
    assert_eq!(reply.status, 200, "once active, work goes through");
}

#[tokio::test]
async fn a_suspended_partner_is_partner_inactive_and_keeps_its_data() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&key);
    let customer = partner.create_customer(&contoso()).await;
    partner.trigger(&customer, "essential-eight").await;
    let before = partner_view(&partner).await;
    assert_eq!(distributor.post_empty(&format!("/v1/distributor/partners/{id}/suspend")).await.status, 200);
    assert_eq!(on_behalf_codes(&distributor, &id, &customer).await, inactive());
    // Its profile stays readable to its distributor.
    assert_eq!(distributor.partner_detail(&id).await["usage"]["runsUsed"], 1);
    let key = distributor.activate(&id).await.unwrap();
    assert_eq!(partner_view(&app.as_partner_key(&key)).await, before, "nothing was created while suspended");
}

#[tokio::test]
async fn on_behalf_work_for_unknown_ids_is_not_found() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    for id in ["prt_000000000000000000000999", "nope"] {
        let codes = on_behalf_codes(&distributor, id, "cust_000000000000000000000999").await;
        assert_eq!(codes, vec![(404, "NOT_FOUND".to_owned()); 4], "{id}");
    }
}
