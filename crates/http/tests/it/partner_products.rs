//! `GET /v1/partner/products`: the products the partner's current plan includes.

use serde_json::{Value, json};

use crate::support::TestApp;

fn essential_eight() -> Value {
    json!({"id": "essential-eight", "name": "Essential Eight Assessment", "category": "compliance", "estimatedDuration": 180})
}

fn nist_csf() -> Value {
    json!({"id": "nist-csf", "name": "NIST CSF Assessment", "category": "compliance", "estimatedDuration": 240})
}

#[tokio::test]
async fn professional_lists_the_reference_example_exactly() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let reply = app.as_partner(&key).get("/v1/partner/products").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"products": [essential_eight(), nist_csf()]}));
}

#[tokio::test]
async fn each_plan_lists_only_its_own_products() {
    let app = TestApp::start().await;
    let (_, starter) = app.partner_on("starter").await;
    let (_, enterprise) = app.partner_on("enterprise").await;
    let reply = app.as_partner(&starter).get("/v1/partner/products").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"products": [essential_eight()]}));
    let reply = app.as_partner(&enterprise).get("/v1/partner/products").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"products": [
            essential_eight(),
            nist_csf(),
            {"id": "cis-controls", "name": "CIS Controls Assessment", "category": "security", "estimatedDuration": 300},
            {"id": "iso-27001", "name": "ISO 27001 Readiness Assessment", "category": "compliance", "estimatedDuration": 360},
        ]})
    );
}

#[tokio::test]
async fn the_list_follows_a_plan_change_at_once() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    assert_eq!(partner.get("/v1/partner/products").await.body["products"].as_array().unwrap().len(), 1);
    let changed = partner.post("/v1/partner/plan", &json!({"plan": "professional"})).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(partner.get("/v1/partner/products").await.body, json!({"products": [essential_eight(), nist_csf()]}));
}

#[tokio::test]
async fn products_need_a_valid_partner_key() {
    let app = TestApp::start().await;
    let reply = app.as_partner_key("pk_live_nobody").get("/v1/partner/products").await;
    reply.error(401, "INVALID_KEY");
}
