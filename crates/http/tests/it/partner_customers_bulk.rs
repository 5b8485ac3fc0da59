//! `POST /v1/partner/customers/bulk`: up to 100 customers, each created or failed on its own.

use serde_json::{Value, json};

use crate::support::{Caller, TestApp, assert_id, contoso, fabrikam, numbered_customer, oversized_body};

const PATH: &str = "/v1/partner/customers/bulk";

async fn snapshot(partner: &Caller<'_>) -> (Value, Value) {
    (partner.customers().await, partner.me().await["usage"]["customersCount"].clone())
}

#[tokio::test]
async fn the_reference_example_creates_both_customers() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let reply = partner.post(PATH, &json!({"customers": [contoso(), fabrikam()]})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let contoso_id = assert_id(&reply.body["customers"][0]["id"], "cust_");
    let fabrikam_id = assert_id(&reply.body["customers"][1]["id"], "cust_");
    assert_eq!(
        reply.body,
        json!({
            "created": 2,
            "failed": 0,
            "customers": [
                {"index": 0, "id": contoso_id, "name": "Contoso Ltd", "status": "created"},
                {"index": 1, "id": fabrikam_id, "name": "Fabrikam Inc", "status": "created"},
            ],
        })
    );
    let listed: Vec<String> = partner.customers().await["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [contoso_id.clone(), fabrikam_id.clone()]);
    let stored = partner.customer(&contoso_id).await;
    assert_eq!(stored["receivers"], json!(["ciso@contoso.com", "it@contoso.com"]));
    assert_eq!(stored["questionnaireRecipients"], json!(["ciso@contoso.com"]));
    assert_eq!(partner.customer(&fabrikam_id).await["email"], "admin@fabrikam.com");
    assert_eq!(partner.me().await["usage"]["customersCount"], 2);
}

#[tokio::test]
async fn each_item_fails_on_its_own_with_its_reason_in_order() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let items = json!([
        contoso(),
        {"name": "No Tenant"},
        {"name": "Bad Email", "tenantId": "d4f5a678-1234-5678-9abc-def012345678", "email": "nope"},
        42,
        {"name": "Sneaky", "tenantId": "d4f5a678-1234-5678-9abc-def012345678", "id": "cust_000000000000000000000001"},
        {"name": 7, "tenantId": "d4f5a678-1234-5678-9abc-def012345678"},
        fabrikam(),
        {"name": "Bad Receiver", "tenantId": "d4f5a678-1234-5678-9abc-def012345678", "receivers": ["ok@x.com", "bad"]},
    ]);
    let reply = partner.post(PATH, &json!({"customers": items})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["created"], 2);
    assert_eq!(reply.body["failed"], 6);
    let results = reply.body["customers"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "results are in request order: {}", reply.body);
    }
    let created = |r: &Value, name: &str| {
        assert_eq!(r["status"], "created", "{r}");
        assert_eq!(r["name"], name);
        assert!(r.get("error").is_none(), "{r}");
        assert_id(&r["id"], "cust_")
    };
    let failed = |r: &Value, code: &str, field: &str| {
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r.get("id").is_none(), "a failed item has no id: {r}");
        assert_eq!(r["error"]["code"], code, "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("'{field}'")), "{field} is not named: {message}");
    };
    let contoso_id = created(&results[0], "Contoso Ltd");
    failed(&results[1], "MISSING_FIELD", "customers[1].tenantId");
    assert_eq!(results[1]["name"], "No Tenant");
    failed(&results[2], "INVALID_FIELD", "customers[2].email");
    assert_eq!(results[2]["name"], "Bad Email");
    failed(&results[3], "INVALID_FIELD", "customers[3]");
    assert!(results[3].get("name").is_none());
    failed(&results[4], "INVALID_FIELD", "customers[4].id");
    failed(&results[5], "INVALID_FIELD", "customers[5].name");
    let fabrikam_id = created(&results[6], "Fabrikam Inc");
    failed(&results[7], "INVALID_FIELD", "customers[7].receivers[1]");

    let listed: Vec<String> = partner.customers().await["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [contoso_id, fabrikam_id], "only the valid items were created");
}

#[tokio::test]
async fn a_batch_where_every_item_fails_still_answers_201_and_creates_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let reply = partner.post(PATH, &json!({"customers": [{"name": "x"}, {"tenantId": "nope"}]})).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["created"], 0);
    assert_eq!(reply.body["failed"], 2);
    assert_eq!(reply.body["customers"][0]["error"]["code"], "MISSING_FIELD");
    assert_eq!(reply.body["customers"][1]["error"]["code"], "MISSING_FIELD");
    assert_eq!(partner.customers().await["customers"], json!([]));
}

#[tokio::test]
async fn an_empty_batch_creates_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let reply = partner.post(PATH, &json!({"customers": []})).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, json!({"created": 0, "failed": 0, "customers": []}));
}

#[tokio::test]
async fn one_hundred_customers_is_the_largest_batch() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let ids = partner.create_customers(100).await;
    assert_eq!(ids.len(), 100);
    assert_eq!(partner.me().await["usage"]["customersCount"], 100);
}

#[tokio::test]
async fn one_hundred_and_one_customers_is_too_many_and_creates_none() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    let items: Vec<Value> = (0..101).map(numbered_customer).collect();
    let message = partner.post(PATH, &json!({"customers": items})).await.error(400, "TOO_MANY");
    assert!(message.contains("100"), "{message}");
    // Invalid items do not change the answer: the whole request is refused first.
    let mut items: Vec<Value> = (0..101).map(numbered_customer).collect();
    items[0] = json!({"name": "no tenant"});
    partner.post(PATH, &json!({"customers": items})).await.error(400, "TOO_MANY");
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn a_malformed_request_is_refused_whole() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    partner.post(PATH, &json!({})).await.field_error("MISSING_FIELD", "customers");
    partner.post(PATH, &json!({"customers": contoso()})).await.field_error("INVALID_FIELD", "customers");
    partner.post(PATH, &json!({"customers": null})).await.field_error("INVALID_FIELD", "customers");
    partner.post(PATH, &json!({"customers": [contoso()], "dryRun": true})).await.field_error("INVALID_FIELD", "dryRun");
    for body in ["", "{\"customers\": [", "customers=1"] {
        partner.post_raw(PATH, body).await.error(400, "INVALID_JSON");
    }
    partner.post_raw(PATH, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(snapshot(&partner).await, before);
}
