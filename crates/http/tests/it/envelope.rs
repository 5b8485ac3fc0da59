use std::sync::Arc;

use partnerd_domain::account::AccountStatus;
use partnerd_domain::ids::PartnerId;
use partnerd_domain::keys::{ApiKey, KeyKind, KeyOwner, KeySlot};
use partnerd_domain::ports::{
    InfraError, MockDistributorRepository, MockKeyRepository, MockPartnerRepository, Principal,
};
use partnerd_domain::testing::SequentialIds;
use partnerd_http::HttpConfig;
use serde_json::Value;

use crate::support::{TestApp, assert_error, serve, state_over};

#[tokio::test]
async fn unknown_routes_are_not_found_in_the_envelope() {
    let app = TestApp::start().await;
    for path in ["/", "/v1", "/v1/partner/nope", "/api/v2/partner/me", "/v1/partner/me/extra"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_error(&res.json().await.unwrap(), "NOT_FOUND");
    }
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_method_not_allowed() {
    let app = TestApp::start().await;
    let (_, key) = app.partner(None, AccountStatus::Active).await;
    for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let res = app
            .client
            .request(method.clone(), app.url("/v1/partner/me"))
            .header("X-Partner-Key", key.reveal())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method}");
        assert_error(&res.json().await.unwrap(), "METHOD_NOT_ALLOWED");
        // The key is checked first: without one, the caller learns nothing about the route.
        let res = app.client.request(method.clone(), app.url("/v1/partner/me")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{method}");
        assert_error(&res.json().await.unwrap(), "MISSING_KEY");
    }
}

#[tokio::test]
async fn a_bad_key_is_refused_before_the_body_or_query_is_read() {
    let app = TestApp::start().await;
    let unknown = ApiKey::generate(KeyKind::Partner, &SequentialIds::default());
    let cases = [
        (reqwest::Method::POST, "/v1/partner/customers", "{not json"),
        (reqwest::Method::POST, "/v1/partner/assessments", "[1, 2, 3]"),
        (reqwest::Method::GET, "/v1/partner/assessments?month=nope&limit=-1", ""),
    ];
    for (method, path, body) in cases {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .header("X-Partner-Key", unknown.reveal())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path}");
        assert_error(&res.json().await.unwrap(), "INVALID_KEY");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_honours_a_good_inbound_one() {
    let app = TestApp::start().await;
    let res = app.client.get(app.url("/v1/partner/me")).send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req_") && id.len() == 20, "{id}");
    let res = app.client.get(app.url("/v1/partner/me")).header("X-Request-Id", "trace-abc.1").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.1");
    let res =
        app.client.get(app.url("/v1/partner/me")).header("X-Request-Id", "bad id with spaces").send().await.unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn infrastructure_failures_are_opaque_and_carry_the_request_id() {
    let partner = PartnerId::generate(&SequentialIds::default());
    let key = ApiKey::generate(KeyKind::Partner, &SequentialIds::default());
    let principal = Principal {
        owner: KeyOwner::Partner(partner),
        slot: KeySlot::FIRST,
        stored_hash: key.hash(),
        owner_status: AccountStatus::Active,
    };
    let mut keys = MockKeyRepository::new();
    keys.expect_find_principal().returning(move |_| Ok(Some(principal.clone())));
    let mut partners = MockPartnerRepository::new();
    partners.expect_get().returning(|_| Err(InfraError::new("connection refused by db.internal:5432")));
    let base = serve(
        state_over(Arc::new(keys), Arc::new(partners), Arc::new(MockDistributorRepository::new())),
        HttpConfig::default(),
    );
    let res = reqwest::Client::new()
        .get(format!("{base}/v1/partner/me"))
        .header("X-Partner-Key", key.reveal())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let message = assert_error(&body, "INTERNAL");
    assert_eq!(body["error"]["requestId"], request_id.as_str());
    assert!(message.contains(&request_id));
    assert!(!body.to_string().contains("db.internal"), "the cause leaked: {body}");
}

#[tokio::test]
async fn require_https_refuses_plain_requests_and_admits_forwarded_https() {
    let app = TestApp::start_with(HttpConfig { require_https: true, ..Default::default() }).await;
    let (_, key) = app.partner(None, AccountStatus::Active).await;
    let res = app.client.get(app.url("/v1/partner/me")).header("X-Partner-Key", key.reveal()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_error(&res.json().await.unwrap(), "HTTPS_REQUIRED");
    let res = app
        .client
        .get(app.url("/v1/partner/me"))
        .header("X-Partner-Key", key.reveal())
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn openapi_describes_every_route_and_the_key_headers() {
    let app = TestApp::start().await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let partner_routes = [
        "/v1/partner/assessments",
        "/v1/partner/assessments/bulk",
        "/v1/partner/assessments/{id}",
        "/v1/partner/customers",
        "/v1/partner/customers/bulk",
        "/v1/partner/customers/{id}",
        "/v1/partner/keys",
        "/v1/partner/keys/{slot}",
        "/v1/partner/me",
        "/v1/partner/plan",
        "/v1/partner/plan/preview",
        "/v1/partner/products",
    ];
    let billing_and_reports = [
        "/v1/partner/billing/invoices",
        "/v1/partner/billing/invoices/{id}",
        "/v1/partner/billing/invoices/{id}/pdf",
        "/v1/distributor/billing/invoices",
        "/v1/distributor/billing/invoices/{id}",
        "/v1/distributor/billing/invoices/{id}/pdf",
        "/v1/partner/usage",
        "/v1/partner/dashboard",
        "/v1/partner/analytics",
        "/v1/distributor/reports/usage",
        "/v1/distributor/dashboard",
        "/v1/distributor/analytics",
    ];
    for route in partner_routes.iter().chain(&["/v1/distributor/me"]).chain(&billing_and_reports) {
        assert!(paths.contains(route), "{route} is not documented");
    }
    let pdf = &doc["paths"]["/v1/partner/billing/invoices/{id}/pdf"]["get"]["responses"]["200"]["content"];
    assert!(pdf.get("application/pdf").is_some(), "the PDF route documents its content type: {pdf}");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["partnerKey"]["name"], "X-Partner-Key");
    assert_eq!(schemes["distributorKey"]["name"], "X-Distributor-Key");
    let me = &doc["paths"]["/v1/partner/me"]["get"];
    assert!(me["responses"]["200"]["content"]["application/json"]["schema"].is_object());
    let mut operation_ids = Vec::new();
    // Every documented operation is routed, under both prefixes, and asks for its key.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operation_ids.push(op["operationId"].as_str().unwrap().to_owned());
            let concrete = path.replace("{id}", "x").replace("{slot}", "1");
            for prefix in ["", "/api"] {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let res =
                    app.client.request(method.clone(), app.url(&format!("{prefix}{concrete}"))).send().await.unwrap();
                assert_eq!(res.status(), 401, "{method} {prefix}{concrete}");
                assert_error(&res.json().await.unwrap(), "MISSING_KEY");
            }
        }
    }
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), count, "operationIds are unique");
}
