//! `POST/GET /v1/partner/assessments`, `GET /v1/partner/assessments/{id}` and
//! `POST /v1/partner/assessments/bulk`.

use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, assert_id, contoso, fabrikam, oversized_body};

const PATH: &str = "/v1/partner/assessments";
const BULK: &str = "/v1/partner/assessments/bulk";

/// The partner's runs and this month's usage, to show that a rejected request changed nothing.
async fn snapshot(partner: &Caller<'_>) -> (Value, u64) {
    (partner.runs().await, partner.runs_used().await)
}

fn ids_of(list: &Value) -> Vec<String> {
    list["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

// ---- POST /v1/partner/assessments ----

#[tokio::test]
async fn trigger_answers_202_with_the_queued_run_as_in_the_reference() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    app.clock.set(datetime!(2026-04-03 10:10 UTC));
    let body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3});
    let reply = partner.post(PATH, &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = assert_id(&reply.body["id"], "run_");
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "customerId": customer,
            "product": "essential-eight",
            "maturityTarget": 3,
            "status": "queued",
            "createdAt": "2026-04-03T10:10:00Z",
        })
    );
    assert_eq!(partner.runs_used().await, 1, "a triggered run takes one unit");
}

#[tokio::test]
async fn an_omitted_maturity_target_is_the_products_default() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    for (product, default) in [("essential-eight", 2), ("nist-csf", 3)] {
        let reply = partner.post(PATH, &json!({"customerId": customer, "product": product})).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        assert_eq!(reply.body["maturityTarget"], default, "{product}");
        let reply =
            partner.post(PATH, &json!({"customerId": customer, "product": product, "maturityTarget": null})).await;
        assert_eq!(reply.body["maturityTarget"], default, "null is the default too");
    }
    for level in [1, 5] {
        let body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": level});
        assert_eq!(partner.post(PATH, &body).await.body["maturityTarget"], level);
    }
}

#[tokio::test]
async fn trigger_without_a_required_field_is_missing_field_and_queues_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    partner.post(PATH, &json!({"product": "essential-eight"})).await.field_error("MISSING_FIELD", "customerId");
    partner.post(PATH, &json!({"customerId": customer})).await.field_error("MISSING_FIELD", "product");
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn an_unknown_product_is_invalid_product_and_queues_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("enterprise").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    for product in ["essential-nine", "", "ESSENTIAL-EIGHT", "essential eight"] {
        let message = partner
            .post(PATH, &json!({"customerId": customer, "product": product}))
            .await
            .error(400, "INVALID_PRODUCT");
        assert!(message.contains(&format!("'{product}'")), "{message}");
    }
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn a_product_outside_the_plan_is_product_not_allowed_and_queues_nothing() {
    let app = TestApp::start().await;
    let (_, starter) = app.partner_on("starter").await;
    let (_, professional) = app.partner_on("professional").await;
    for (key, products) in [
        (&starter, &["nist-csf", "cis-controls", "iso-27001"][..]),
        (&professional, &["cis-controls", "iso-27001"][..]),
    ] {
        let partner = app.as_partner(key);
        let customer = partner.create_customer(&contoso()).await;
        let before = snapshot(&partner).await;
        for product in products {
            let message = partner
                .post(PATH, &json!({"customerId": customer, "product": product}))
                .await
                .error(403, "PRODUCT_NOT_ALLOWED");
            assert!(message.contains(product), "{message}");
        }
        assert_eq!(snapshot(&partner).await, before);
    }
}

#[tokio::test]
async fn an_unknown_customer_is_not_found_and_takes_no_unit() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    for customer in ["cust_000000000000000000000999", "cust_abc123", "nope", ""] {
        partner
            .post(PATH, &json!({"customerId": customer, "product": "essential-eight"}))
            .await
            .error(404, "NOT_FOUND");
    }
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn a_bad_maturity_target_is_invalid_field_and_queues_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    let huge: Value = serde_json::from_str("1e30").unwrap();
    for target in [
        json!(0),
        json!(6),
        json!(-1),
        json!(99_999_999_999_i64),
        huge,
        json!(3.5),
        json!("3"),
        json!([3]),
        json!(u64::MAX),
    ] {
        let body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": target});
        partner.post(PATH, &body).await.field_error("INVALID_FIELD", "maturityTarget");
    }
    // The literal text, exactly as a client could send it.
    let raw = format!("{{\"customerId\": \"{customer}\", \"product\": \"essential-eight\", \"maturityTarget\": 1e30}}");
    partner.post_raw(PATH, raw).await.field_error("INVALID_FIELD", "maturityTarget");
    let raw = format!(
        "{{\"customerId\": \"{customer}\", \"product\": \"essential-eight\", \"maturityTarget\": 123456789012345678901234567890}}"
    );
    partner.post_raw(PATH, raw).await.field_error("INVALID_FIELD", "maturityTarget");
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn trigger_with_wrong_types_or_unknown_fields_names_the_field_and_queues_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    let valid = json!({"customerId": customer, "product": "essential-eight"});
    let cases: Vec<(&str, &str, Value)> = vec![
        ("customerId", "customerId", json!(5)),
        ("customerId", "customerId", json!([customer])),
        ("product", "product", json!(8)),
        ("product", "product", json!(null)),
        ("id", "id", json!("run_000000000000000000000001")),
        ("runsUsed", "runsUsed", json!(0)),
        ("status", "status", json!("completed")),
    ];
    for (field, named, value) in cases {
        let mut body = valid.clone();
        body[field] = value;
        partner.post(PATH, &body).await.field_error("INVALID_FIELD", named);
    }
    for body in ["", "{", "customerId=x&product=y", "null"] {
        let reply = partner.post_raw(PATH, body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(["INVALID_JSON", "INVALID_FIELD"].contains(&reply.body["error"]["code"].as_str().unwrap()));
    }
    partner.post_raw(PATH, "{\"customerId\": ").await.error(400, "INVALID_JSON");
    partner.post_raw(PATH, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(snapshot(&partner).await, before);
}

// ---- GET /v1/partner/assessments/{id} ----

#[tokio::test]
async fn get_answers_the_run_with_its_customers_name() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    app.clock.set(datetime!(2026-04-03 10:10 UTC));
    let body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3});
    let run = partner.post(PATH, &body).await.body["id"].as_str().unwrap().to_owned();
    let reply = partner.get(&format!("{PATH}/{run}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({
            "id": run,
            "customerId": customer,
            "customerName": "Contoso Ltd",
            "product": "essential-eight",
            "maturityTarget": 3,
            "status": "queued",
            "createdAt": "2026-04-03T10:10:00Z",
        })
    );
}

#[tokio::test]
async fn get_shows_the_customers_current_name() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let run = partner.trigger(&customer, "essential-eight").await;
    let renamed =
        partner.put(&format!("/v1/partner/customers/{customer}"), &json!({"name": "Contoso Corporation"})).await;
    assert_eq!(renamed.status, 200);
    assert_eq!(partner.get(&format!("{PATH}/{run}")).await.body["customerName"], "Contoso Corporation");
}

#[tokio::test]
async fn get_of_an_unknown_or_malformed_run_is_not_found() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    partner.trigger(&customer, "essential-eight").await;
    for id in ["run_000000000000000000000999", "run_x9y8z7w6", "abc", &customer] {
        partner.get(&format!("{PATH}/{id}")).await.error(404, "NOT_FOUND");
    }
}

// ---- GET /v1/partner/assessments ----

#[tokio::test]
async fn the_list_is_newest_first_with_full_run_bodies() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    assert_eq!(partner.runs().await, json!({"runs": [], "has_more": false}));
    let contoso_id = partner.create_customer(&contoso()).await;
    let fabrikam_id = partner.create_customer(&fabrikam()).await;
    app.clock.set(datetime!(2026-04-03 10:10 UTC));
    let first = partner.trigger(&contoso_id, "essential-eight").await;
    app.clock.set(datetime!(2026-04-03 10:20 UTC));
    let second = partner.trigger(&fabrikam_id, "nist-csf").await;
    assert_eq!(
        partner.runs().await,
        json!({
            "runs": [
                {
                    "id": second,
                    "customerId": fabrikam_id,
                    "customerName": "Fabrikam Inc",
                    "product": "nist-csf",
                    "maturityTarget": 3,
                    "status": "queued",
                    "createdAt": "2026-04-03T10:20:00Z",
                },
                {
                    "id": first,
                    "customerId": contoso_id,
                    "customerName": "Contoso Ltd",
                    "product": "essential-eight",
                    "maturityTarget": 2,
                    "status": "queued",
                    "createdAt": "2026-04-03T10:10:00Z",
                },
            ],
            "has_more": false,
        })
    );
}

#[tokio::test]
async fn the_list_filters_by_month_product_and_customer() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let contoso_id = partner.create_customer(&contoso()).await;
    let fabrikam_id = partner.create_customer(&fabrikam()).await;
    app.clock.set(datetime!(2026-03-31 23:59:59 UTC));
    let march = partner.trigger(&contoso_id, "essential-eight").await;
    app.clock.set(datetime!(2026-04-01 00:00 UTC));
    let april_e8 = partner.trigger(&contoso_id, "essential-eight").await;
    let april_nist = partner.trigger(&fabrikam_id, "nist-csf").await;

    let list = |query: String| {
        let partner = &partner;
        async move {
            let reply = partner.get(&format!("{PATH}?{query}")).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.body);
            ids_of(&reply.body)
        }
    };
    assert_eq!(list("month=2026-03".into()).await, [march.as_str()]);
    assert_eq!(list("month=2026-04".into()).await, [april_nist.as_str(), april_e8.as_str()]);
    assert_eq!(list("month=2026-05".into()).await, Vec::<String>::new());
    assert_eq!(list("product=essential-eight".into()).await, [april_e8.as_str(), march.as_str()]);
    assert_eq!(list(format!("customerId={fabrikam_id}")).await, [april_nist.as_str()]);
    assert_eq!(
        list(format!("month=2026-04&product=essential-eight&customerId={contoso_id}")).await,
        [april_e8.as_str()]
    );
    assert_eq!(list("product=cis-controls".into()).await, Vec::<String>::new(), "a known product the plan lacks");
    assert_eq!(list("customerId=cust_000000000000000000000999".into()).await, Vec::<String>::new());
    assert_eq!(list("customerId=nope".into()).await, Vec::<String>::new());
    assert_eq!(list("unknown=1".into()).await.len(), 3, "unknown parameters are ignored");
}

#[tokio::test]
async fn the_list_pages_with_limit_and_starting_after() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(partner.trigger(&customer, "essential-eight").await);
    }
    runs.reverse();
    let page = partner.get(&format!("{PATH}?limit=2")).await;
    assert_eq!(ids_of(&page.body), runs[..2]);
    assert_eq!(page.body["has_more"], true);
    let page = partner.get(&format!("{PATH}?limit=2&starting_after={}", runs[1])).await;
    assert_eq!(ids_of(&page.body), runs[2..]);
    assert_eq!(page.body["has_more"], false);
}

#[tokio::test]
async fn bad_list_filters_name_the_parameter() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    for month in ["2026-4", "2026-13", "April", "2026-04-01", "1969-12"] {
        partner.get(&format!("{PATH}?month={month}")).await.field_error("INVALID_FIELD", "month");
    }
    partner.get(&format!("{PATH}?product=essential-nine")).await.error(400, "INVALID_PRODUCT");
    for limit in ["0", "1001", "x"] {
        partner.get(&format!("{PATH}?limit={limit}")).await.field_error("INVALID_FIELD", "limit");
    }
}

// ---- POST /v1/partner/assessments/bulk ----

#[tokio::test]
async fn bulk_queues_one_run_per_customer_as_in_the_reference() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(3).await;
    let reply =
        partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers, "maturityTarget": 3})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let runs: Vec<String> = (0..3).map(|i| assert_id(&reply.body["runs"][i]["id"], "run_")).collect();
    assert_eq!(
        reply.body,
        json!({
            "queued": 3,
            "failed": 0,
            "runs": [
                {"index": 0, "id": runs[0], "customerId": customers[0], "status": "queued"},
                {"index": 1, "id": runs[1], "customerId": customers[1], "status": "queued"},
                {"index": 2, "id": runs[2], "customerId": customers[2], "status": "queued"},
            ],
        })
    );
    for (run, customer) in runs.iter().zip(&customers) {
        let stored = partner.get(&format!("{PATH}/{run}")).await.body;
        assert_eq!(stored["customerId"], customer.as_str());
        assert_eq!(stored["maturityTarget"], 3);
        assert_eq!(stored["product"], "essential-eight");
        assert_eq!(stored["status"], "queued");
    }
    assert_eq!(partner.runs_used().await, 3);
}

#[tokio::test]
async fn bulk_fails_unknown_customers_one_by_one_in_order() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(2).await;
    let ids = json!([customers[0], "cust_000000000000000000000999", "garbage", customers[1]]);
    let reply = partner.post(BULK, &json!({"product": "nist-csf", "customerIds": ids})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["queued"], 2);
    assert_eq!(reply.body["failed"], 2);
    let runs = reply.body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for (i, expected) in ["queued", "failed", "failed", "queued"].into_iter().enumerate() {
        assert_eq!(runs[i]["index"], i);
        assert_eq!(runs[i]["customerId"], ids[i], "{}", reply.body);
        assert_eq!(runs[i]["status"], expected, "{}", reply.body);
    }
    for failed in [&runs[1], &runs[2]] {
        assert!(failed.get("id").is_none(), "{failed}");
        assert_eq!(failed["error"]["code"], "NOT_FOUND");
        assert!(!failed["error"]["message"].as_str().unwrap().is_empty());
    }
    assert!(runs[0].get("error").is_none());
    assert_eq!(partner.runs_used().await, 2, "failed items take no unit");
    assert_eq!(partner.runs().await["runs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bulk_of_fifty_is_allowed_and_fifty_one_is_too_many_with_nothing_queued() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(51).await;
    let before = snapshot(&partner).await;
    let message = partner
        .post(BULK, &json!({"product": "essential-eight", "customerIds": customers}))
        .await
        .error(400, "TOO_MANY");
    assert!(message.contains("50"), "{message}");
    assert_eq!(snapshot(&partner).await, before);
    let reply = partner.post(BULK, &json!({"product": "essential-eight", "customerIds": customers[..50]})).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body["queued"], 50);
    assert_eq!(partner.runs_used().await, 50);
}

#[tokio::test]
async fn bulk_request_level_problems_refuse_the_whole_request() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let customers = partner.create_customers(2).await;
    let before = snapshot(&partner).await;
    let with = |product: &str, extra: Value| {
        let mut body = json!({"product": product, "customerIds": customers});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    partner.post(BULK, &with("essential-nine", json!({}))).await.error(400, "INVALID_PRODUCT");
    partner.post(BULK, &with("nist-csf", json!({}))).await.error(403, "PRODUCT_NOT_ALLOWED");
    let huge: Value = serde_json::from_str("1e30").unwrap();
    for target in [json!(0), json!(9), json!(99_999_999_999_i64), huge, json!("2")] {
        partner
            .post(BULK, &with("essential-eight", json!({"maturityTarget": target})))
            .await
            .field_error("INVALID_FIELD", "maturityTarget");
    }
    partner.post(BULK, &json!({"product": "essential-eight"})).await.field_error("MISSING_FIELD", "customerIds");
    partner.post(BULK, &json!({"customerIds": customers})).await.field_error("MISSING_FIELD", "product");
    partner
        .post(BULK, &with("essential-eight", json!({"customerIds": customers[0]})))
        .await
        .field_error("INVALID_FIELD", "customerIds");
    partner
        .post(BULK, &with("essential-eight", json!({"customerIds": [1, 2]})))
        .await
        .field_error("INVALID_FIELD", "customerIds[0]");
    partner
        .post(BULK, &with("essential-eight", json!({"customerId": customers[0]})))
        .await
        .field_error("INVALID_FIELD", "customerId");
    partner.post(BULK, &with("essential-eight", json!({"runsUsed": 0}))).await.field_error("INVALID_FIELD", "runsUsed");
    partner.post_raw(BULK, "{\"product\": \"essential-eight\", ").await.error(400, "INVALID_JSON");
    partner.post_raw(BULK, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn trigger_with_a_json_array_instead_of_an_object_is_refused() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let before = snapshot(&partner).await;
    let reply = partner.post(PATH, &json!([customer, "essential-eight", 3])).await;
    assert_eq!(reply.status, 400, "an array is not a trigger object: {}", reply.body);
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn a_whole_maturity_target_written_as_a_decimal_is_accepted() {
    let app = TestApp::start().await;
    let (_, key) = app.partner(None, partnerd_domain::account::AccountStatus::Active).await;
    let partner = app.as_partner(&key);
    let customer = partner.create_customer(&contoso()).await;
    let body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3.0});
    let reply = partner.post("/v1/partner/assessments", &body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["maturityTarget"], 3);
    let half = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3.5});
    let reply = partner.post("/v1/partner/assessments", &half).await;
    assert_eq!(reply.body["error"]["code"], "INVALID_FIELD");
    assert!(!reply.body.to_string().contains("i64"), "no Rust type names in messages: {}", reply.body);
}
