//! `GET/POST /v1/partner/customers` and `GET/PUT/DELETE /v1/partner/customers/{id}`.

use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{TestApp, assert_id, contoso, fabrikam, oversized_body};

/// The partner's customer list and `customersCount`, to show that a rejected request changed
/// nothing.
async fn snapshot(partner: &crate::support::Caller<'_>) -> (Value, Value) {
    (partner.customers().await, partner.me().await["usage"]["customersCount"].clone())
}

// ---- POST /v1/partner/customers ----

#[tokio::test]
async fn create_answers_201_with_the_reference_example() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let reply = app.as_partner(&key).post("/v1/partner/customers", &contoso()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = assert_id(&reply.body["id"], "cust_");
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "name": "Contoso Ltd",
            "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
            "email": "it@contoso.com",
            "receivers": ["ciso@contoso.com", "it@contoso.com"],
            "questionnaireRecipients": ["ciso@contoso.com"],
            "createdAt": "2026-04-03T10:00:00Z",
            "updatedAt": "2026-04-03T10:00:00Z",
        })
    );
}

#[tokio::test]
async fn create_with_only_the_required_fields_fills_in_empty_lists() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let body = json!({"name": "  Contoso Ltd  ", "tenantId": "D4F5A678-1234-5678-9ABC-DEF012345678"});
    let reply = app.as_partner(&key).post("/v1/partner/customers", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["name"], "Contoso Ltd", "the name is trimmed");
    assert_eq!(reply.body["tenantId"], "d4f5a678-1234-5678-9abc-def012345678", "the GUID is lower-cased");
    assert_eq!(reply.body["email"], Value::Null);
    assert_eq!(reply.body["receivers"], json!([]));
    assert_eq!(reply.body["questionnaireRecipients"], json!([]));
}

#[tokio::test]
async fn a_created_customer_is_listed_counted_and_readable() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let contoso_id = partner.create_customer(&contoso()).await;
    let fabrikam_id = partner.create_customer(&fabrikam()).await;
    assert_eq!(
        partner.customers().await,
        json!({
            "customers": [
                {
                    "id": contoso_id,
                    "name": "Contoso Ltd",
                    "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
                    "email": "it@contoso.com",
                    "createdAt": "2026-04-03T10:00:00Z",
                },
                {
                    "id": fabrikam_id,
                    "name": "Fabrikam Inc",
                    "tenantId": "a1b2c3d4-5678-9abc-def0-123456789abc",
                    "email": "admin@fabrikam.com",
                    "createdAt": "2026-04-03T10:00:00Z",
                },
            ],
            "has_more": false,
        })
    );
    assert_eq!(partner.me().await["usage"]["customersCount"], 2);
}

#[tokio::test]
async fn the_api_prefix_reaches_the_same_customers() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let created = partner.post("/api/v1/partner/customers", &contoso()).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(partner.customer(id).await["name"], "Contoso Ltd");
    assert_eq!(partner.get("/api/v1/partner/customers").await.body, partner.customers().await);
}

#[tokio::test]
async fn create_without_a_required_field_is_missing_field_and_creates_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    for field in ["name", "tenantId"] {
        let mut body = contoso();
        body.as_object_mut().unwrap().remove(field);
        partner.post("/v1/partner/customers", &body).await.field_error("MISSING_FIELD", field);
    }
    assert_eq!(snapshot(&partner).await, before);
    assert_eq!(before.0["customers"], json!([]));
}

#[tokio::test]
async fn create_with_an_invalid_value_names_the_field_and_creates_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    let cases: Vec<(&str, Value)> = vec![
        ("tenantId", json!({"tenantId": "not-a-guid"})),
        ("tenantId", json!({"tenantId": "d4f5a678-1234-5678-9abc-def01234567g"})),
        ("name", json!({"name": "   "})),
        ("name", json!({"name": "x".repeat(201)})),
        ("email", json!({"email": "it.contoso.com"})),
        ("email", json!({"email": "it@contoso"})),
        ("email", json!({"email": "it @contoso.com"})),
        ("receivers[1]", json!({"receivers": ["ciso@contoso.com", "nobody"]})),
        ("questionnaireRecipients[0]", json!({"questionnaireRecipients": ["@contoso.com"]})),
        ("receivers", json!({"receivers": vec!["a@contoso.com"; 51]})),
    ];
    for (field, change) in cases {
        let mut body = contoso();
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        partner.post("/v1/partner/customers", &body).await.field_error("INVALID_FIELD", field);
    }
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn create_with_a_wrong_type_is_invalid_field() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    let cases: Vec<(&str, Value)> = vec![
        ("name", json!({"name": 5})),
        ("name", json!({"name": null})),
        ("tenantId", json!({"tenantId": ["d4f5a678-1234-5678-9abc-def012345678"]})),
        ("email", json!({"email": true})),
        ("receivers", json!({"receivers": "ciso@contoso.com"})),
        ("receivers[0]", json!({"receivers": [42]})),
        ("questionnaireRecipients", json!({"questionnaireRecipients": {"a": "b"}})),
    ];
    for (field, change) in cases {
        let mut body = contoso();
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        partner.post("/v1/partner/customers", &body).await.field_error("INVALID_FIELD", field);
    }
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn create_rejects_fields_the_client_may_not_set() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    for (field, value) in [
        ("id", json!("cust_000000000000000000000001")),
        ("runsUsed", json!(0)),
        ("createdAt", json!("2020-01-01T00:00:00Z")),
        ("partnerId", json!("prt_000000000000000000000001")),
    ] {
        let mut body = contoso();
        body[field] = value;
        partner.post("/v1/partner/customers", &body).await.field_error("INVALID_FIELD", field);
    }
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn create_with_a_body_that_is_not_json_is_invalid_json() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    for body in ["", "{\"name\": ", "name=Contoso", "{\"name\": \"a\", \"tenantId\": \"b\"} trailing", "{'name': 'a'}"]
    {
        partner.post_raw("/v1/partner/customers", body).await.error(400, "INVALID_JSON");
    }
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn create_with_a_json_array_instead_of_an_object_is_refused() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    let reply = partner
        .post(
            "/v1/partner/customers",
            &json!(["Contoso Ltd", "d4f5a678-1234-5678-9abc-def012345678", null, null, null]),
        )
        .await;
    assert_eq!(reply.status, 400, "an array is not a customer object: {}", reply.body);
    assert_eq!(snapshot(&partner).await, before);
}

#[tokio::test]
async fn create_with_a_body_over_one_mebibyte_is_payload_too_large() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let before = snapshot(&partner).await;
    partner.post_raw("/v1/partner/customers", oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(snapshot(&partner).await, before);
}

// ---- GET /v1/partner/customers ----

#[tokio::test]
async fn a_new_partner_has_no_customers() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    assert_eq!(app.as_partner(&key).customers().await, json!({"customers": [], "has_more": false}));
}

#[tokio::test]
async fn the_list_pages_with_limit_and_starting_after() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let ids = partner.create_customers(3).await;
    let names = |body: &Value| -> Vec<String> {
        body["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    let first = partner.get("/v1/partner/customers?limit=2").await;
    assert_eq!(first.status, 200);
    assert_eq!(names(&first.body), ids[..2]);
    assert_eq!(first.body["has_more"], true);
    let rest = partner.get(&format!("/v1/partner/customers?limit=2&starting_after={}", ids[1])).await;
    assert_eq!(names(&rest.body), ids[2..]);
    assert_eq!(rest.body["has_more"], false);
    for bad in ["0", "1001", "-1", "abc", "99999999999"] {
        partner.get(&format!("/v1/partner/customers?limit={bad}")).await.field_error("INVALID_FIELD", "limit");
    }
}

// ---- GET /v1/partner/customers/{id} ----

#[tokio::test]
async fn get_answers_the_customer_with_its_receivers_and_no_runs_yet() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let id = partner.create_customer(&contoso()).await;
    let reply = partner.get(&format!("/v1/partner/customers/{id}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({
            "id": id,
            "name": "Contoso Ltd",
            "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
            "email": "it@contoso.com",
            "receivers": ["ciso@contoso.com", "it@contoso.com"],
            "questionnaireRecipients": ["ciso@contoso.com"],
            "recentRuns": [],
            "createdAt": "2026-04-03T10:00:00Z",
            "updatedAt": "2026-04-03T10:00:00Z",
        })
    );
}

#[tokio::test]
async fn get_shows_the_five_newest_runs_newest_first() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let id = partner.create_customer(&contoso()).await;
    let mut runs = Vec::new();
    for (i, product) in ["essential-eight", "nist-csf", "essential-eight", "nist-csf", "essential-eight", "nist-csf"]
        .into_iter()
        .enumerate()
    {
        app.clock.set(datetime!(2026-04-03 11:00 UTC) + time::Duration::minutes(i as i64));
        runs.push((partner.trigger(&id, product).await, product, format!("2026-04-03T11:0{i}:00Z")));
    }
    let expected: Vec<Value> = runs
        .iter()
        .rev()
        .take(5)
        .map(|(run, product, at)| json!({"id": run, "product": product, "status": "queued", "createdAt": at}))
        .collect();
    assert_eq!(partner.customer(&id).await["recentRuns"], Value::Array(expected));
}

#[tokio::test]
async fn get_of_an_unknown_or_malformed_id_is_not_found() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    partner.create_customer(&contoso()).await;
    for id in ["cust_000000000000000000000999", "cust_abc123", "abc", "run_000000000000000000000001", "%20"] {
        partner.get(&format!("/v1/partner/customers/{id}")).await.error(404, "NOT_FOUND");
    }
}

// ---- PUT /v1/partner/customers/{id} ----

#[tokio::test]
async fn put_changes_only_the_fields_sent_as_in_the_reference() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let id = partner.create_customer(&contoso()).await;
    app.clock.set(datetime!(2026-04-03 10:05 UTC));
    let patch = json!({"name": "Contoso Corporation", "receivers": ["ciso@contoso.com", "security@contoso.com"]});
    let reply = partner.put(&format!("/v1/partner/customers/{id}"), &patch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let expected = json!({
        "id": id,
        "name": "Contoso Corporation",
        "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
        "email": "it@contoso.com",
        "receivers": ["ciso@contoso.com", "security@contoso.com"],
        "questionnaireRecipients": ["ciso@contoso.com"],
        "createdAt": "2026-04-03T10:00:00Z",
        "updatedAt": "2026-04-03T10:05:00Z",
    });
    assert_eq!(reply.body, expected);
    let mut stored = partner.customer(&id).await;
    assert_eq!(stored.as_object_mut().unwrap().remove("recentRuns"), Some(json!([])));
    assert_eq!(stored, expected, "the change is kept");
    assert_eq!(partner.customers().await["customers"][0]["name"], "Contoso Corporation");
}

#[tokio::test]
async fn put_can_change_every_field() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let id = partner.create_customer(&contoso()).await;
    let patch = json!({
        "name": "Fabrikam Inc",
        "tenantId": "A1B2C3D4-5678-9ABC-DEF0-123456789ABC",
        "email": "admin@fabrikam.com",
        "receivers": [],
        "questionnaireRecipients": ["a@fabrikam.com", "b@fabrikam.com"],
    });
    let reply = partner.put(&format!("/v1/partner/customers/{id}"), &patch).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let stored = partner.customer(&id).await;
    assert_eq!(stored["name"], "Fabrikam Inc");
    assert_eq!(stored["tenantId"], "a1b2c3d4-5678-9abc-def0-123456789abc");
    assert_eq!(stored["email"], "admin@fabrikam.com");
    assert_eq!(stored["receivers"], json!([]));
    assert_eq!(stored["questionnaireRecipients"], json!(["a@fabrikam.com", "b@fabrikam.com"]));
}

#[tokio::test]
async fn put_with_an_empty_object_answers_the_customer_unchanged() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let created = partner.post("/v1/partner/customers", &contoso()).await.body;
    let id = created["id"].as_str().unwrap();
    app.clock.set(datetime!(2026-04-03 10:05 UTC));
    let reply = partner.put(&format!("/v1/partner/customers/{id}"), &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, created, "nothing changed, not even updatedAt");
}

#[tokio::test]
async fn put_with_a_null_email_clears_it() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let id = partner.create_customer(&contoso()).await;
    let reply = partner.put(&format!("/v1/partner/customers/{id}"), &json!({"email": null})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["email"], Value::Null);
    assert_eq!(reply.body["name"], "Contoso Ltd");
    let stored = partner.customer(&id).await;
    assert_eq!(stored["email"], Value::Null);
    assert_eq!(stored["receivers"], json!(["ciso@contoso.com", "it@contoso.com"]));
    assert_eq!(partner.customers().await["customers"][0]["email"], Value::Null);
}

#[tokio::test]
async fn put_with_bad_input_names_the_field_and_changes_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let id = partner.create_customer(&contoso()).await;
    let path = format!("/v1/partner/customers/{id}");
    let before = partner.customer(&id).await;
    let cases: Vec<(&str, Value)> = vec![
        ("name", json!({"name": null})),
        ("tenantId", json!({"tenantId": null})),
        ("receivers", json!({"receivers": null})),
        ("questionnaireRecipients", json!({"questionnaireRecipients": null})),
        ("name", json!({"name": ""})),
        ("name", json!({"name": 5})),
        ("tenantId", json!({"tenantId": "nope"})),
        ("email", json!({"email": "nope"})),
        ("email", json!({"email": ""})),
        ("receivers[0]", json!({"receivers": ["nope"]})),
        ("receivers", json!({"receivers": "ciso@contoso.com"})),
        // A valid change beside an invalid one is not applied either.
        ("email", json!({"name": "Contoso Corporation", "email": "nope"})),
        ("id", json!({"id": "cust_000000000000000000000001"})),
        ("runsUsed", json!({"runsUsed": 0})),
        ("createdAt", json!({"name": "Contoso Corporation", "createdAt": "2020-01-01T00:00:00Z"})),
    ];
    for (field, patch) in cases {
        partner.put(&path, &patch).await.field_error("INVALID_FIELD", field);
    }
    for body in ["", "{", "nope", "{\"name\": \"a\"} {}"] {
        partner.put_raw(&path, body).await.error(400, "INVALID_JSON");
    }
    partner.put_raw(&path, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(partner.customer(&id).await, before);
}

#[tokio::test]
async fn put_to_an_unknown_customer_is_not_found() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    for id in ["cust_000000000000000000000999", "abc"] {
        partner.put(&format!("/v1/partner/customers/{id}"), &json!({"name": "X"})).await.error(404, "NOT_FOUND");
        partner.put(&format!("/v1/partner/customers/{id}"), &json!({})).await.error(404, "NOT_FOUND");
    }
    assert_eq!(partner.customers().await["customers"], json!([]));
}

// ---- DELETE /v1/partner/customers/{id} ----

#[tokio::test]
async fn delete_answers_204_and_removes_the_customer_and_its_runs_but_not_its_usage() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    let doomed = partner.create_customer(&contoso()).await;
    let kept = partner.create_customer(&fabrikam()).await;
    let doomed_runs = [partner.trigger(&doomed, "essential-eight").await, partner.trigger(&doomed, "nist-csf").await];
    let kept_run = partner.trigger(&kept, "essential-eight").await;
    assert_eq!(partner.runs_used().await, 3);

    let reply = partner.delete(&format!("/v1/partner/customers/{doomed}")).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.body, Value::Null, "204 has no body");

    partner.get(&format!("/v1/partner/customers/{doomed}")).await.error(404, "NOT_FOUND");
    for run in &doomed_runs {
        partner.get(&format!("/v1/partner/assessments/{run}")).await.error(404, "NOT_FOUND");
    }
    let runs = partner.runs().await;
    let listed: Vec<&str> = runs["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [kept_run.as_str()]);
    let filtered = partner.get(&format!("/v1/partner/assessments?customerId={doomed}")).await;
    assert_eq!(filtered.body["runs"], json!([]));
    let customers = partner.customers().await;
    assert_eq!(customers["customers"].as_array().unwrap().len(), 1);
    assert_eq!(customers["customers"][0]["id"], kept.as_str());
    let me = partner.me().await;
    assert_eq!(me["usage"]["customersCount"], 1);
    assert_eq!(me["usage"]["runsUsed"], 3, "deleting a customer gives no runs back");

    partner.delete(&format!("/v1/partner/customers/{doomed}")).await.error(404, "NOT_FOUND");
}

#[tokio::test]
async fn delete_of_an_unknown_customer_is_not_found_and_deletes_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    partner.create_customer(&contoso()).await;
    let before = partner.customers().await;
    for id in ["cust_000000000000000000000999", "abc", "bulk"] {
        let reply = partner.delete(&format!("/v1/partner/customers/{id}")).await;
        if id == "bulk" {
            // `/customers/bulk` is its own route, POST only.
            reply.error(405, "METHOD_NOT_ALLOWED");
        } else {
            reply.error(404, "NOT_FOUND");
        }
    }
    assert_eq!(partner.customers().await, before);
}
