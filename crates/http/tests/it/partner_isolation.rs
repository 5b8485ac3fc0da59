//! Tenant isolation: another partner's customer or run id answers `404 NOT_FOUND`, exactly as
//! an id that names nothing, and the request changes nothing its owner can see.

use serde_json::{Value, json};

use crate::support::{Caller, Reply, TestApp, contoso, fabrikam};

/// Everything the owner can see about its customer, run and usage.
async fn owner_view(owner: &Caller<'_>, customer: &str, run: &str) -> (Value, Value, Value, Value) {
    let run_reply = owner.get(&format!("/v1/partner/assessments/{run}")).await;
    assert_eq!(run_reply.status, 200, "{}", run_reply.body);
    (owner.customer(customer).await, run_reply.body, owner.customers().await, owner.me().await["usage"].clone())
}

/// Two partners: A owns Contoso and a run against it; B owns Fabrikam.
struct Tenants<'a> {
    a: Caller<'a>,
    b: Caller<'a>,
    a_customer: String,
    a_run: String,
    b_customer: String,
}

async fn tenants(app: &TestApp) -> Tenants<'_> {
    let (_, a_key) = app.partner_on("professional").await;
    let (_, b_key) = app.partner_on("professional").await;
    let a = app.as_partner(&a_key);
    let b = app.as_partner(&b_key);
    let a_customer = a.create_customer(&contoso()).await;
    let a_run = a.trigger(&a_customer, "essential-eight").await;
    let b_customer = b.create_customer(&fabrikam()).await;
    Tenants { a, b, a_customer, a_run, b_customer }
}

/// A foreign id's 404 is indistinguishable from a missing id's.
#[track_caller]
fn same_not_found(foreign: &Reply, missing: &Reply) {
    foreign.error(404, "NOT_FOUND");
    assert_eq!((foreign.status, &foreign.body), (missing.status, &missing.body));
}

const MISSING_CUSTOMER: &str = "cust_000000000000000000000999";
const MISSING_RUN: &str = "run_000000000000000000000999";

#[tokio::test]
async fn another_partners_customer_is_not_found_on_get_put_and_delete() {
    let app = TestApp::start().await;
    let t = tenants(&app).await;
    let before = owner_view(&t.a, &t.a_customer, &t.a_run).await;
    let path = |id: &str| format!("/v1/partner/customers/{id}");

    same_not_found(&t.b.get(&path(&t.a_customer)).await, &t.b.get(&path(MISSING_CUSTOMER)).await);
    let patch = json!({"name": "Hijacked", "email": null, "receivers": ["attacker@evil.example"]});
    same_not_found(&t.b.put(&path(&t.a_customer), &patch).await, &t.b.put(&path(MISSING_CUSTOMER), &patch).await);
    same_not_found(
        &t.b.put(&path(&t.a_customer), &json!({})).await,
        &t.b.put(&path(MISSING_CUSTOMER), &json!({})).await,
    );
    same_not_found(&t.b.delete(&path(&t.a_customer)).await, &t.b.delete(&path(MISSING_CUSTOMER)).await);

    assert_eq!(owner_view(&t.a, &t.a_customer, &t.a_run).await, before, "A's customer, run and usage are untouched");
    assert_eq!(t.b.customer(&t.b_customer).await["name"], "Fabrikam Inc");
}

#[tokio::test]
async fn another_partners_run_is_not_found() {
    let app = TestApp::start().await;
    let t = tenants(&app).await;
    let before = owner_view(&t.a, &t.a_customer, &t.a_run).await;
    same_not_found(
        &t.b.get(&format!("/v1/partner/assessments/{}", t.a_run)).await,
        &t.b.get(&format!("/v1/partner/assessments/{MISSING_RUN}")).await,
    );
    assert_eq!(owner_view(&t.a, &t.a_customer, &t.a_run).await, before);
}

#[tokio::test]
async fn triggering_against_another_partners_customer_is_not_found_and_costs_no_one() {
    let app = TestApp::start().await;
    let t = tenants(&app).await;
    let before = owner_view(&t.a, &t.a_customer, &t.a_run).await;
    let b_usage = t.b.me().await["usage"].clone();

    let trigger = |customer: &str| json!({"customerId": customer, "product": "essential-eight"});
    same_not_found(
        &t.b.post("/v1/partner/assessments", &trigger(&t.a_customer)).await,
        &t.b.post("/v1/partner/assessments", &trigger(MISSING_CUSTOMER)).await,
    );
    let bulk =
        t.b.post(
            "/v1/partner/assessments/bulk",
            &json!({"product": "essential-eight", "customerIds": [t.a_customer, t.b_customer]}),
        )
        .await;
    assert_eq!(bulk.status, 202, "{}", bulk.body);
    assert_eq!((bulk.body["queued"].clone(), bulk.body["failed"].clone()), (json!(1), json!(1)));
    assert_eq!(bulk.body["runs"][0]["status"], "failed");
    assert_eq!(bulk.body["runs"][0]["error"]["code"], "NOT_FOUND");
    assert_eq!(bulk.body["runs"][1]["status"], "queued");

    assert_eq!(owner_view(&t.a, &t.a_customer, &t.a_run).await, before, "A gained no run and lost no unit");
    let b_runs = t.b.runs().await;
    assert_eq!(b_runs["runs"].as_array().unwrap().len(), 1);
    assert_eq!(b_runs["runs"][0]["customerId"], t.b_customer.as_str());
    assert_eq!(t.b.runs_used().await, b_usage["runsUsed"].as_u64().unwrap() + 1, "only B's own run counted");
}

#[tokio::test]
async fn lists_and_filters_show_only_the_callers_own_data() {
    let app = TestApp::start().await;
    let t = tenants(&app).await;
    t.b.trigger(&t.b_customer, "nist-csf").await;

    let customers = t.b.customers().await;
    let ids: Vec<&str> = customers["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [t.b_customer.as_str()]);
    let runs = t.b.runs().await;
    assert!(runs["runs"].as_array().unwrap().iter().all(|r| r["customerId"] == t.b_customer.as_str()), "{runs}");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    let filtered = t.b.get(&format!("/v1/partner/assessments?customerId={}", t.a_customer)).await;
    assert_eq!(filtered.status, 200);
    assert_eq!(filtered.body, json!({"runs": [], "has_more": false}));
    let paged = t.b.get(&format!("/v1/partner/customers?starting_after={}", t.a_customer)).await;
    assert_eq!(paged.body["customers"], json!([]), "another's id is no cursor into its list");
    assert_eq!(t.b.me().await["usage"]["customersCount"], 1);
    assert_eq!(t.b.me().await["usage"]["runsUsed"], 1);

    let a_customers = t.a.customers().await;
    assert_eq!(a_customers["customers"].as_array().unwrap().len(), 1);
    assert_eq!(a_customers["customers"][0]["id"], t.a_customer.as_str());
    assert_eq!(t.a.runs().await["runs"].as_array().unwrap().len(), 1);
}
