//! A suspended (or pending) distributor's key gets `403 DISTRIBUTOR_INACTIVE` on every route of
//! the Distributor API, changes nothing, and its partners keep working meanwhile.

use partnerd_domain::account::AccountStatus;
use partnerd_domain::ports::DistributorRepository;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Caller, NOW, Reply, TestApp, contoso, msp_alpha, new_msp, numbered_customer};

/// Every Distributor API route, with a body that would succeed for an active distributor.
fn every_route(partner: &str, customer: &str) -> Vec<(Method, String, Option<Value>)> {
    let p = |rest: &str| format!("/v1/distributor/partners/{partner}{rest}");
    vec![
        (Method::GET, "/v1/distributor/me".into(), None),
        (Method::GET, "/v1/distributor/partners".into(), None),
        (Method::POST, "/v1/distributor/partners".into(), Some(msp_alpha())),
        (Method::POST, "/v1/distributor/partners/bulk".into(), Some(json!({"partners": [msp_alpha()]}))),
        (Method::GET, p(""), None),
        (Method::PUT, p(""), Some(json!({"company": "Renamed", "plan": "enterprise"}))),
        (Method::POST, p("/activate"), None),
        (Method::POST, p("/reactivate"), None),
        (Method::POST, p("/suspend"), Some(json!({"reason": "x"}))),
        (Method::POST, p("/plan"), Some(json!({"plan": "enterprise"}))),
        (Method::POST, p("/plan/preview"), Some(json!({"plan": "enterprise"}))),
        (Method::GET, p("/customers"), None),
        (Method::POST, p("/customers"), Some(contoso())),
        (Method::GET, p("/assessments"), None),
        (Method::POST, p("/assessments"), Some(json!({"customerId": customer, "product": "essential-eight"}))),
        (Method::GET, "/v1/distributor/usage".into(), None),
    ]
}

async fn send(caller: &Caller<'_>, method: &Method, path: &str, body: &Option<Value>) -> Reply {
    caller.send(method.clone(), path, body.as_ref().map(|b| b.to_string().into_bytes())).await
}

/// What the partner and the store hold, to show that refused requests changed nothing.
async fn world(app: &TestApp, partner: &Caller<'_>) -> (Value, Value, Value, usize, usize, usize) {
    (
        partner.me().await,
        partner.customers().await,
        partner.runs().await,
        app.store.events().len(),
        app.store.ledger_lines().len(),
        app.store.stored_key_hashes().len(),
    )
}

#[tokio::test]
async fn a_suspended_distributor_is_refused_everywhere_while_its_partners_keep_working() {
    let app = TestApp::start().await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&key);
    let customer = partner.create_customer(&contoso()).await;

    app.store.set_status(&d.id, AccountStatus::Suspended, NOW).await.unwrap();
    let before = world(&app, &partner).await;
    for (method, path, body) in every_route(&id, &customer) {
        let reply = send(&distributor, &method, &path, &body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        reply.error(403, "DISTRIBUTOR_INACTIVE");
    }
    assert_eq!(world(&app, &partner).await, before, "the refused requests changed nothing");

    // The partner carries on with its own key.
    assert_eq!(partner.me().await["status"], "active");
    partner.create_customer(&numbered_customer(1)).await;
    partner.trigger(&customer, "essential-eight").await;
    assert_eq!(partner.runs_used().await, 1);
    let own_change = partner.post("/v1/partner/plan", &json!({"plan": "enterprise"})).await;
    assert_eq!(own_change.status, 200, "{}", own_change.body);

    // Restored, the same key works again and sees what the partner did.
    app.store.set_status(&d.id, AccountStatus::Active, NOW).await.unwrap();
    let detail = distributor.partner_detail(&id).await;
    assert_eq!(detail["plan"], "enterprise");
    assert_eq!(detail["usage"]["runsUsed"], 1);
    assert_eq!(detail["usage"]["customersCount"], 2);
}

#[tokio::test]
async fn a_pending_distributor_is_refused_everywhere() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Pending).await;
    let distributor = app.as_distributor(&dk);
    for (method, path, body) in every_route("prt_000000000000000000000999", "cust_000000000000000000000999") {
        send(&distributor, &method, &path, &body).await.error(403, "DISTRIBUTOR_INACTIVE");
    }
}

#[tokio::test]
async fn keys_are_checked_on_every_route() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let (_, pk) = app.partner_on("professional").await;
    let as_partner_in_distributor_header = app.as_distributor(&pk);
    let unknown = app.as_distributor_key("dk_live_0000000000000000000000000000000000000000000");
    let partner_header = app.as_partner(&dk);
    for (method, path, body) in every_route("prt_000000000000000000000999", "cust_000000000000000000000999") {
        send(&unknown, &method, &path, &body).await.error(401, "INVALID_KEY");
        send(&as_partner_in_distributor_header, &method, &path, &body).await.error(401, "INVALID_KEY");
        let message = send(&partner_header, &method, &path, &body).await.error(401, "MISSING_KEY");
        assert!(message.contains("X-Distributor-Key"), "{method} {path}: {message}");
    }
}
