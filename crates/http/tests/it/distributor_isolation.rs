//! Tenant isolation for distributors: another distributor's partner, and a partner with no
//! distributor, answer `404 NOT_FOUND` on every `partners/{id}…` route exactly as an id that
//! names nothing, and the request changes nothing their owners can see. Lists and reports
//! never show them.

use partnerd_domain::account::AccountStatus;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Caller, Reply, TestApp, contoso, fabrikam, msp_alpha, msp_beta, new_msp, no_rate_limits};

const MISSING: &str = "prt_000000000000000000000999";

/// Two distributors and a direct partner. Mine has one active partner; the other has an active
/// partner (with a customer and a run) and a pending one; the direct partner has a customer and
/// a run too.
struct World<'a> {
    app: &'a TestApp,
    mine: Caller<'a>,
    my_partner: String,
    my_customer: String,
    other: Caller<'a>,
    foreign: String,
    foreign_key: String,
    foreign_customer: String,
    foreign_pending: String,
    direct: String,
    direct_key: String,
    direct_customer: String,
}

async fn world(app: &TestApp) -> World<'_> {
    let (_, my_key) = app.distributor(AccountStatus::Active).await;
    let (_, other_key) = app.distributor(AccountStatus::Active).await;
    let mine = app.as_distributor(&my_key);
    let other = app.as_distributor(&other_key);
    let (my_partner, _) = mine.provision_active(&msp_beta()).await;
    let my_customer =
        created_id(mine.post(&format!("/v1/distributor/partners/{my_partner}/customers"), &fabrikam()).await);

    let (foreign, foreign_key) = other.provision_active(&new_msp()).await;
    let foreign_partner = app.as_partner_key(&foreign_key);
    let foreign_customer = foreign_partner.create_customer(&contoso()).await;
    foreign_partner.trigger(&foreign_customer, "essential-eight").await;
    let foreign_pending = other.provision(&msp_alpha()).await;

    let (direct, direct_key) = app.partner_on("professional").await;
    let direct_partner = app.as_partner(&direct_key);
    let direct_customer = direct_partner.create_customer(&contoso()).await;
    direct_partner.trigger(&direct_customer, "essential-eight").await;

    World {
        app,
        mine,
        my_partner,
        my_customer,
        other,
        foreign,
        foreign_key,
        foreign_customer,
        foreign_pending,
        direct: direct.id.to_string(),
        direct_key: direct_key.reveal().to_owned(),
        direct_customer,
    }
}

fn created_id(reply: Reply) -> String {
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

/// Everything the owners can see, through their own keys, plus what the store recorded.
async fn everything(w: &World<'_>) -> Value {
    let own_view = |key: &str| {
        let partner = w.app.as_partner_key(key);
        async move {
            json!({
                "me": partner.me().await,
                "customers": partner.customers().await,
                "runs": partner.runs().await,
                "products": partner.get("/v1/partner/products").await.body,
            })
        }
    };
    json!({
        "foreign": w.other.partner_detail(&w.foreign).await,
        "foreignPending": w.other.partner_detail(&w.foreign_pending).await,
        "otherList": w.other.get("/v1/distributor/partners").await.body,
        "otherUsage": w.other.get("/v1/distributor/usage").await.body,
        "foreignSelf": own_view(&w.foreign_key).await,
        "directSelf": own_view(&w.direct_key).await,
        "mine": w.mine.get("/v1/distributor/partners").await.body,
        "myPartner": w.mine.partner_detail(&w.my_partner).await,
        "events": w.app.store.events().len(),
        "ledger": w.app.store.ledger_lines().len(),
        "keys": w.app.store.stored_key_hashes(),
    })
}

/// Every `partners/{id}…` route and method, with bodies that would succeed for one's own partner.
fn every_route(id: &str, customer: &str) -> Vec<(Method, String, Option<Value>)> {
    let p = |rest: &str| format!("/v1/distributor/partners/{id}{rest}");
    let hijack = json!({
        "company": "Hijacked",
        "email": "evil@attacker.example",
        "plan": "enterprise",
        "billing": {"currency": "USD", "interval": "annual"},
    });
    vec![
        (Method::GET, p(""), None),
        (Method::PUT, p(""), Some(hijack)),
        (Method::PUT, p(""), Some(json!({}))),
        (Method::POST, p("/activate"), None),
        (Method::POST, p("/reactivate"), None),
        (Method::POST, p("/suspend"), Some(json!({"reason": "hostile takeover"}))),
        (Method::POST, p("/suspend"), None),
        (Method::POST, p("/plan"), Some(json!({"plan": "enterprise", "billing": "rolling"}))),
        (Method::POST, p("/plan/preview"), Some(json!({"plan": "enterprise"}))),
        (Method::GET, p("/customers"), None),
        (Method::GET, p("/customers?limit=1"), None),
        (Method::POST, p("/customers"), Some(contoso())),
        (Method::GET, p("/assessments"), None),
        (Method::GET, p(&format!("/assessments?customerId={customer}")), None),
        (Method::POST, p("/assessments"), Some(json!({"customerId": customer, "product": "essential-eight"}))),
    ]
}

async fn send(caller: &Caller<'_>, method: &Method, path: &str, body: &Option<Value>) -> Reply {
    caller.send(method.clone(), path, body.as_ref().map(|b| b.to_string().into_bytes())).await
}

/// Sends every route for `target` and for an unknown id: both must be the same `404`.
async fn assert_every_route_not_found(w: &World<'_>, target: &str, customer: &str) {
    let targeted = every_route(target, customer);
    let missing = every_route(MISSING, customer);
    for ((method, path, body), (_, missing_path, _)) in targeted.iter().zip(&missing) {
        let foreign = send(&w.mine, method, path, body).await;
        let unknown = send(&w.mine, method, missing_path, body).await;
        assert_eq!(foreign.status, 404, "{method} {path}: {}", foreign.body);
        foreign.error(404, "NOT_FOUND");
        assert_eq!(unknown.status, 404, "{method} {missing_path}: {}", unknown.body);
        assert_eq!(foreign.body, unknown.body, "{method} {path} tells itself apart from an unknown id");
    }
}

#[tokio::test]
async fn another_distributors_active_partner_is_not_found_on_every_route() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let w = world(&app).await;
    let before = everything(&w).await;
    assert_every_route_not_found(&w, &w.foreign, &w.foreign_customer).await;
    assert_eq!(everything(&w).await, before, "nothing changed for anyone");
}

#[tokio::test]
async fn another_distributors_pending_partner_is_not_found_rather_than_inactive() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let w = world(&app).await;
    let before = everything(&w).await;
    assert_every_route_not_found(&w, &w.foreign_pending, &w.foreign_customer).await;
    assert_eq!(everything(&w).await, before, "in particular, it was not activated and got no key");
    assert_eq!(w.other.partner_detail(&w.foreign_pending).await["status"], "pending");
}

#[tokio::test]
async fn a_direct_partner_is_not_found_on_every_route() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let w = world(&app).await;
    let before = everything(&w).await;
    assert_every_route_not_found(&w, &w.direct, &w.direct_customer).await;
    assert_eq!(everything(&w).await, before);
}

#[tokio::test]
async fn the_other_distributor_cannot_reach_my_partner_either() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let w = world(&app).await;
    let before = everything(&w).await;
    for (method, path, body) in every_route(&w.my_partner, &w.my_customer) {
        let reply = send(&w.other, &method, &path, &body).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
    }
    assert_eq!(everything(&w).await, before);
}

#[tokio::test]
async fn my_partner_cannot_be_pointed_at_someone_elses_customer() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let w = world(&app).await;
    let before = everything(&w).await;
    let trigger = format!("/v1/distributor/partners/{}/assessments", w.my_partner);
    let unknown = w
        .mine
        .post(&trigger, &json!({"customerId": "cust_000000000000000000000999", "product": "essential-eight"}))
        .await;
    for customer in [&w.foreign_customer, &w.direct_customer] {
        let reply = w.mine.post(&trigger, &json!({"customerId": customer, "product": "essential-eight"})).await;
        reply.error(404, "NOT_FOUND");
        assert_eq!(reply.body, unknown.body);
        let filtered = w.mine.get(&format!("{trigger}?customerId={customer}")).await;
        assert_eq!(filtered.body, json!({"runs": [], "has_more": false}));
    }
    let page = w
        .mine
        .get(&format!("/v1/distributor/partners/{}/customers?starting_after={}", w.my_partner, w.foreign_customer))
        .await;
    assert_eq!(page.body["customers"], json!([]), "another's id is no cursor into this list");
    assert_eq!(everything(&w).await, before, "no run was queued and no unit was taken");
}

#[tokio::test]
async fn lists_reports_and_the_profile_show_only_my_partners() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let w = world(&app).await;
    let foreign_ids = [w.foreign.as_str(), w.foreign_pending.as_str(), w.direct.as_str()];
    for query in ["", "?status=active", "?status=pending", "?status=suspended", "?limit=1000"] {
        let ids = w.mine.partner_ids(query).await;
        let expected: Vec<String> =
            if query.contains("pending") || query.contains("suspended") { vec![] } else { vec![w.my_partner.clone()] };
        assert_eq!(ids, expected, "{query}");
    }
    for cursor in foreign_ids {
        assert_eq!(w.mine.partner_ids(&format!("?starting_after={cursor}")).await, Vec::<String>::new(), "{cursor}");
    }
    for path in [
        "/v1/distributor/usage",
        "/v1/distributor/usage?month=2026-04",
        "/v1/distributor/me",
        "/v1/distributor/partners",
    ] {
        let reply = w.mine.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let text = reply.body.to_string();
        for id in foreign_ids {
            assert!(!text.contains(id), "{path} shows {id}: {text}");
        }
        assert!(!text.contains("New MSP Pty Ltd") && !text.contains("MSP Alpha"), "{path}: {text}");
    }
    let usage = w.mine.get("/v1/distributor/usage").await.body;
    assert_eq!(
        (usage["totalPartners"].clone(), usage["totalRuns"].clone(), usage["totalCustomers"].clone()),
        (json!(1), json!(0), json!(1))
    );
    let me = w.mine.get("/v1/distributor/me").await.body;
    assert_eq!(me["partnersCount"], 1);
    assert_eq!(me["usage"], json!({"month": "2026-04", "totalRuns": 0, "totalCustomers": 1}));
}
