//! `POST /v1/distributor/partners/bulk`: up to 50 partners, each provisioned or failed on its own.

use partnerd_domain::account::AccountStatus;
use serde_json::{Value, json};

use crate::support::{Caller, TestApp, assert_id, msp_alpha, msp_beta, new_msp, numbered_partner, oversized_body};

const BULK: &str = "/v1/distributor/partners/bulk";

/// The distributor's partner list and the number of stored keys.
async fn provisioned(app: &TestApp, distributor: &Caller<'_>) -> (Value, usize) {
    let list = distributor.get("/v1/distributor/partners").await;
    assert_eq!(list.status, 200, "{}", list.body);
    (list.body, app.store.stored_key_hashes().len())
}

#[tokio::test]
async fn the_reference_example_provisions_both_partners_pending() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let keys_before = app.store.stored_key_hashes().len();
    let reply = distributor.post(BULK, &json!({"partners": [msp_alpha(), msp_beta()]})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let alpha = assert_id(&reply.body["partners"][0]["id"], "prt_");
    let beta = assert_id(&reply.body["partners"][1]["id"], "prt_");
    assert_eq!(
        reply.body,
        json!({
            "created": 2,
            "failed": 0,
            "partners": [
                {"index": 0, "id": alpha, "company": "MSP Alpha", "status": "pending"},
                {"index": 1, "id": beta, "company": "MSP Beta", "status": "pending"},
            ],
        })
    );
    assert_eq!(distributor.partner_ids("?status=pending").await, [alpha.clone(), beta.clone()]);
    let detail = distributor.partner_detail(&beta).await;
    assert_eq!(detail["plan"], "starter");
    assert_eq!(detail["name"], "Bob Chen");
    assert_eq!(detail["billing"], json!({"currency": "USD", "interval": "quarterly"}));
    assert_eq!(
        distributor.partner_detail(&alpha).await["billing"],
        json!({"currency": "AUD", "interval": "quarterly"})
    );
    assert_eq!(app.store.stored_key_hashes().len(), keys_before, "pending partners have no keys");
    // A bulk-provisioned partner activates like any other.
    let key = distributor.activate(&alpha).await.expect("a first key");
    assert_eq!(app.as_partner_key(&key).me().await["company"], "MSP Alpha");
}

#[tokio::test]
async fn each_item_fails_on_its_own_naming_its_field_in_order() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let mut no_email = new_msp();
    no_email.as_object_mut().unwrap().remove("email");
    let mut no_company = new_msp();
    no_company.as_object_mut().unwrap().remove("company");
    let mut no_name = new_msp();
    no_name.as_object_mut().unwrap().remove("name");
    let mut no_plan = new_msp();
    no_plan.as_object_mut().unwrap().remove("plan");
    let mut no_billing = new_msp();
    no_billing.as_object_mut().unwrap().remove("billing");
    let set = |field: &str, value: Value| {
        let mut body = new_msp();
        body[field] = value;
        body
    };
    let items = vec![
        msp_alpha(),
        no_email,
        set("billing", json!({"interval": "annual"})),
        set("email", json!("nope")),
        set("plan", json!("platinum")),
        set("billing", json!({"currency": "JPY"})),
        set("billing", json!({"currency": "AUD", "interval": "weekly"})),
        json!(42),
        set("status", json!("active")),
        no_billing,
        no_company,
        no_name,
        no_plan,
        set("company", json!("   ")),
        msp_beta(),
    ];
    let reply = distributor.post(BULK, &json!({ "partners": items })).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!((reply.body["created"].clone(), reply.body["failed"].clone()), (json!(2), json!(13)));
    let results = reply.body["partners"].as_array().unwrap();
    let outcome: Vec<(u64, &str, Option<&str>)> = results
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_str().unwrap(), r["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        outcome,
        [
            (0, "pending", None),
            (1, "failed", Some("MISSING_FIELD")),
            (2, "failed", Some("MISSING_FIELD")),
            (3, "failed", Some("INVALID_FIELD")),
            (4, "failed", Some("INVALID_FIELD")),
            (5, "failed", Some("INVALID_FIELD")),
            (6, "failed", Some("INVALID_FIELD")),
            (7, "failed", Some("INVALID_FIELD")),
            (8, "failed", Some("INVALID_FIELD")),
            (9, "failed", Some("MISSING_FIELD")),
            (10, "failed", Some("MISSING_FIELD")),
            (11, "failed", Some("MISSING_FIELD")),
            (12, "failed", Some("MISSING_FIELD")),
            (13, "failed", Some("INVALID_FIELD")),
            (14, "pending", None),
        ],
        "{}",
        reply.body
    );
    let named = [
        (1, "partners[1].email"),
        (2, "partners[2].billing.currency"),
        (3, "partners[3].email"),
        (4, "partners[4].plan"),
        (5, "partners[5].billing.currency"),
        (6, "partners[6].billing.interval"),
        (7, "partners[7]"),
        (8, "partners[8].status"),
        (9, "partners[9].billing"),
        (10, "partners[10].company"),
        (11, "partners[11].name"),
        (12, "partners[12].plan"),
        (13, "partners[13].company"),
    ];
    for (i, field) in named {
        let item = &results[i];
        let message = item["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("'{field}'")), "item {i} should name '{field}': {item}");
        assert!(item.get("id").is_none(), "a failed item has no id: {item}");
    }
    assert_eq!(results[1]["company"], "New MSP Pty Ltd", "a failed item still says which partner it was");
    assert!(results[7].get("company").is_none(), "{}", results[7]);
    assert!(results[10].get("company").is_none(), "{}", results[10]);
    let alpha = assert_id(&results[0]["id"], "prt_");
    let beta = assert_id(&results[14]["id"], "prt_");
    assert_eq!(distributor.partner_ids("").await, [alpha, beta], "exactly the good items were provisioned");
}

#[tokio::test]
async fn fifty_is_the_most_and_fifty_one_creates_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let before = provisioned(&app, &distributor).await;
    let items: Vec<Value> = (0..51).map(|n| numbered_partner(n, "starter")).collect();
    let message = distributor.post(BULK, &json!({"partners": items})).await.error(400, "TOO_MANY");
    assert!(message.contains("50"), "{message}");
    // Bad items do not make a too-large batch acceptable.
    let mut mixed = items.clone();
    mixed[3] = json!({"company": "Broken"});
    distributor.post(BULK, &json!({"partners": mixed})).await.error(400, "TOO_MANY");
    assert_eq!(provisioned(&app, &distributor).await, before, "nothing was provisioned");

    let reply = distributor.post(BULK, &json!({"partners": items[..50]})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!((reply.body["created"].clone(), reply.body["failed"].clone()), (json!(50), json!(0)));
    let ids: Vec<&str> = reply.body["partners"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(distributor.partner_ids("").await, ids);
}

#[tokio::test]
async fn an_empty_batch_provisions_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let reply = app.as_distributor(&key).post(BULK, &json!({"partners": []})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body, json!({"created": 0, "failed": 0, "partners": []}));
}

#[tokio::test]
async fn a_batch_that_fails_every_item_still_answers_201() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let reply = distributor.post(BULK, &json!({"partners": [{"company": "A"}, {"company": "B"}]})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!((reply.body["created"].clone(), reply.body["failed"].clone()), (json!(0), json!(2)));
    assert_eq!(distributor.partner_ids("").await, Vec::<String>::new());
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    let before = provisioned(&app, &distributor).await;
    distributor.post(BULK, &json!({})).await.field_error("MISSING_FIELD", "partners");
    distributor.post(BULK, &json!({"partners": msp_alpha()})).await.field_error("INVALID_FIELD", "partners");
    distributor
        .post(BULK, &json!({"partners": [msp_alpha()], "dryRun": true}))
        .await
        .field_error("INVALID_FIELD", "dryRun");
    distributor.post(BULK, &json!([msp_alpha()])).await.field_error("INVALID_FIELD", "body");
    for body in ["", "{\"partners\": [", "partners=1"] {
        distributor.post_raw(BULK, body).await.error(400, "INVALID_JSON");
    }
    distributor.post_raw(BULK, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(provisioned(&app, &distributor).await, before);
}
