//! Monthly run limits over HTTP: a starter partner (50 runs a month) on a fixed clock.

use partnerd_http::{HttpConfig, RateLimits};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{TestApp, numbered_customer};

const TRIGGER: &str = "/v1/partner/assessments";
const BULK: &str = "/v1/partner/assessments/bulk";

#[tokio::test]
async fn the_fifty_first_run_of_a_starter_month_is_run_limit_reached() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    let reply = partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!((reply.body["queued"].clone(), reply.body["failed"].clone()), (json!(50), json!(0)));
    let usage = partner.me().await["usage"].clone();
    assert_eq!(usage, json!({"month": "2026-04", "runsUsed": 50, "runsLimit": 50, "customersCount": 50}));

    let message = partner
        .post(TRIGGER, &json!({"customerId": customers[0], "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
    assert!(message.contains("50"), "{message}");
    assert_eq!(partner.runs_used().await, 50);
    assert_eq!(partner.runs().await["runs"].as_array().unwrap().len(), 50, "no run was queued");
}

#[tokio::test]
async fn a_bulk_over_the_remainder_queues_exactly_the_remainder_in_order() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(53).await;
    let reply = partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers[..45]})).await;
    assert_eq!(reply.body["queued"], 45);
    assert_eq!(partner.runs_used().await, 45);

    // Five units left; eight items, one of them naming no customer of ours.
    let mut ids: Vec<Value> = customers[45..52].iter().map(|c| json!(c)).collect();
    ids.insert(2, json!("cust_000000000000000000000999"));
    let reply = partner.post(BULK, &json!({"product": "essential-eight", "customerIds": ids})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["queued"], 5);
    assert_eq!(reply.body["failed"], 3);
    let items = reply.body["runs"].as_array().unwrap();
    let outcome: Vec<(u64, &str, Option<&str>)> = items
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_str().unwrap(), r["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        outcome,
        [
            (0, "queued", None),
            (1, "queued", None),
            (2, "failed", Some("NOT_FOUND")),
            (3, "queued", None),
            (4, "queued", None),
            (5, "queued", None),
            (6, "failed", Some("RUN_LIMIT_REACHED")),
            (7, "failed", Some("RUN_LIMIT_REACHED")),
        ],
        "{}",
        reply.body
    );
    for (item, id) in items.iter().zip(&ids) {
        assert_eq!(&item["customerId"], id);
        assert_eq!(item.get("id").is_some(), item["status"] == "queued", "{item}");
    }
    assert!(items[6]["error"]["message"].as_str().unwrap().contains("50"));
    assert_eq!(partner.runs_used().await, 50);
    assert_eq!(partner.runs().await["runs"].as_array().unwrap().len(), 50);

    // Full: a further bulk queues nothing, yet still answers 202 item by item.
    let reply = partner.post(BULK, &json!({"product": "essential-eight", "customerIds": [customers[52]]})).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body["queued"], 0);
    assert_eq!(reply.body["runs"][0]["error"]["code"], "RUN_LIMIT_REACHED");
    assert_eq!(partner.runs_used().await, 50);
}

#[tokio::test]
async fn at_the_limit_request_errors_still_come_first() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers})).await;
    let trigger = |customer: &str, product: &str| json!({"customerId": customer, "product": product});
    partner.post(TRIGGER, &trigger(&customers[0], "nope")).await.error(400, "INVALID_PRODUCT");
    partner.post(TRIGGER, &trigger(&customers[0], "nist-csf")).await.error(403, "PRODUCT_NOT_ALLOWED");
    partner.post(TRIGGER, &trigger("cust_000000000000000000000999", "essential-eight")).await.error(404, "NOT_FOUND");
    partner.post(TRIGGER, &trigger(&customers[0], "essential-eight")).await.error(403, "RUN_LIMIT_REACHED");
}

#[tokio::test]
async fn deleting_customers_gives_no_runs_back() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers})).await;
    for c in &customers[..10] {
        assert_eq!(partner.delete(&format!("/v1/partner/customers/{c}")).await.status, 204);
    }
    let usage = partner.me().await["usage"].clone();
    assert_eq!(usage["runsUsed"], 50);
    assert_eq!(usage["customersCount"], 40);
    assert_eq!(partner.runs().await["runs"].as_array().unwrap().len(), 40, "the deleted customers' runs are gone");
    let fresh = partner.create_customer(&numbered_customer(99)).await;
    partner
        .post(TRIGGER, &json!({"customerId": fresh, "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
}

#[tokio::test]
async fn a_new_month_starts_a_new_allowance() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers})).await;
    app.clock.set(datetime!(2026-04-30 23:59:59 UTC));
    partner
        .post(TRIGGER, &json!({"customerId": customers[0], "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
    app.clock.set(datetime!(2026-05-01 00:00 UTC));
    let run = partner.trigger(&customers[0], "essential-eight").await;
    assert_eq!(
        partner.me().await["usage"],
        json!({"month": "2026-05", "runsUsed": 1, "runsLimit": 50, "customersCount": 50})
    );
    let april = partner.get("/v1/partner/assessments?month=2026-04").await.body;
    assert_eq!(april["runs"].as_array().unwrap().len(), 50, "April's runs stay April's");
    let may = partner.get("/v1/partner/assessments?month=2026-05").await.body;
    assert_eq!(may["runs"][0]["id"], run.as_str());
}

#[tokio::test]
async fn an_upgrade_applies_its_limit_and_products_to_the_next_trigger() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers})).await;
    let nist = json!({"customerId": customers[0], "product": "nist-csf"});
    partner.post(TRIGGER, &nist).await.error(403, "PRODUCT_NOT_ALLOWED");
    let changed = partner.post("/v1/partner/plan", &json!({"plan": "professional"})).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let reply = partner.post(TRIGGER, &nist).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        partner.me().await["usage"],
        json!({"month": "2026-04", "runsUsed": 51, "runsLimit": 200, "customersCount": 50})
    );
}

#[tokio::test]
async fn a_downgrade_below_this_months_usage_stops_further_runs() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers})).await;
    partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers[..5]})).await;
    assert_eq!(partner.runs_used().await, 55);
    let changed = partner.post("/v1/partner/plan", &json!({"plan": "starter"})).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    partner
        .post(TRIGGER, &json!({"customerId": customers[0], "product": "essential-eight"}))
        .await
        .error(403, "RUN_LIMIT_REACHED");
    assert_eq!(partner.me().await["usage"]["runsLimit"], 50);
    assert_eq!(partner.runs_used().await, 55);
}

#[tokio::test]
async fn enterprise_runs_are_unlimited() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("enterprise").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(50).await;
    for product in ["essential-eight", "nist-csf", "cis-controls", "iso-27001", "essential-eight"] {
        let reply = partner.post(BULK, &json!({"product": product, "customerIds": customers})).await;
        assert_eq!(reply.body["queued"], 50, "{}", reply.body);
    }
    assert_eq!(
        partner.me().await["usage"],
        json!({"month": "2026-04", "runsUsed": 250, "runsLimit": -1, "customersCount": 50})
    );
}

#[tokio::test]
async fn concurrent_triggers_never_overshoot_the_limit() {
    // Sixty-odd requests from one key: the request rate limit would get in the way.
    let no_rate_limit =
        HttpConfig { rate_limits: RateLimits { partner: 0, ..RateLimits::default() }, ..HttpConfig::default() };
    let app = TestApp::start_with(no_rate_limit).await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(60).await;
    let bodies: Vec<Value> = customers.iter().map(|c| json!({"customerId": c, "product": "essential-eight"})).collect();
    let replies = futures_util::future::join_all(bodies.iter().map(|b| partner.post(TRIGGER, b))).await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let refused: Vec<&str> =
        replies.iter().filter(|r| r.status != 202).map(|r| r.body["error"]["code"].as_str().unwrap()).collect();
    assert_eq!(accepted, 50);
    assert_eq!(refused, vec!["RUN_LIMIT_REACHED"; 10]);
    assert_eq!(partner.runs_used().await, 50);
    assert_eq!(partner.runs().await["runs"].as_array().unwrap().len(), 50);
}
