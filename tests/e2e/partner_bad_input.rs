//! Bad input gets a clear error in the reference envelope and changes nothing: after every
//! rejected request, `/v1/partner/me`, the customer list, a customer, the run list and a run
//! read exactly as before.

use partnerd_e2e::str_field;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Ctx, PARTNER_HEADER, PartnerApi, assert_error, assert_ok, assert_status, create_partner, on_both_backends,
    serve_unlimited,
};

on_both_backends!(bad_input_gets_the_envelope_and_changes_nothing);

const TENANT: &str = "d4f5a678-1234-5678-9abc-def012345678";
/// Bodies over 1 MiB are refused; this is twice that.
const TWO_MIB: usize = 2 * 1024 * 1024;

/// What a bad request could change: the profile (usage, plan), the customer list, one customer
/// and the run list.
async fn snapshot(api: &PartnerApi, customer: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for path in [
        "/v1/partner/me".to_owned(),
        "/v1/partner/customers".to_owned(),
        format!("/v1/partner/customers/{customer}"),
        "/v1/partner/assessments".to_owned(),
    ] {
        seen.push(assert_ok(&api.get(&path).await).clone());
    }
    seen
}

/// Everything else the partner can read, compared once at the end.
async fn full_snapshot(api: &PartnerApi, customer: &str, run: &str) -> Vec<Value> {
    let mut seen = snapshot(api, customer).await;
    for path in [format!("/v1/partner/assessments/{run}"), "/v1/partner/products".to_owned()] {
        seen.push(assert_ok(&api.get(&path).await).clone());
    }
    seen
}

/// One bad request and the error it must get.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case { what, method, path: path.to_owned(), body: body.into(), status, code }
}

fn json_case(what: &'static str, method: Method, path: &str, body: Value, status: u16, code: &'static str) -> Case {
    case(what, method, path, body.to_string(), status, code)
}

fn cases(customer: &str, customer_ids: &[String], other_partner: &str) -> Vec<Case> {
    use Method as M;
    let customers = "/v1/partner/customers";
    let one = format!("/v1/partner/customers/{customer}");
    let trigger = "/v1/partner/assessments";
    let bulk_c = "/v1/partner/customers/bulk";
    let bulk_r = "/api/v1/partner/assessments/bulk";
    let plan = "/v1/partner/plan";
    let valid = json!({"name": "Contoso Ltd", "tenantId": TENANT, "email": "it@contoso.com"});
    let with = |k: &str, v: Value| {
        let mut body = valid.clone();
        body[k] = v;
        body
    };
    let run = |k: &str, v: Value| {
        let mut body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3});
        body[k] = v;
        body
    };
    let huge_name = "x".repeat(TWO_MIB);
    let customers_101: Vec<Value> = (0..101)
        .map(|i| json!({"name": format!("Too Many {i}"), "tenantId": format!("00000000-0000-4000-8000-{i:012x}")}))
        .collect();
    // 64 customers of 32 KiB names: each item is fine, the body is not.
    let big_customers: Vec<Value> = (0..64)
        .map(|i| json!({"name": "y".repeat(TWO_MIB / 64), "tenantId": format!("00000000-0000-4000-8000-{i:012x}")}))
        .collect();
    let mut ids_51 = customer_ids.to_vec();
    ids_51.truncate(51);
    assert_eq!(ids_51.len(), 51, "51 real customer ids");

    vec![
        // POST /customers
        case("truncated JSON", M::POST, customers, r#"{"name": "Contoso Ltd", "#, 400, "INVALID_JSON"),
        case("not JSON at all", M::POST, customers, "name=Contoso+Ltd", 400, "INVALID_JSON"),
        case("an empty body", M::POST, customers, "", 400, "INVALID_JSON"),
        case("trailing garbage", M::POST, customers, format!("{valid} x"), 400, "INVALID_JSON"),
        json_case("a JSON array", M::POST, customers, json!([valid]), 400, "INVALID_FIELD"),
        json_case("a numeric name", M::POST, customers, with("name", json!(5)), 400, "INVALID_FIELD"),
        json_case(
            "receivers as a string",
            M::POST,
            customers,
            with("receivers", json!("ciso@contoso.com")),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "a malformed tenant GUID",
            M::POST,
            customers,
            with("tenantId", json!("not-a-guid")),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "a malformed e-mail",
            M::POST,
            customers,
            with("email", json!("it at contoso.com")),
            400,
            "INVALID_FIELD",
        ),
        json_case("no tenantId", M::POST, customers, json!({"name": "Contoso Ltd"}), 400, "MISSING_FIELD"),
        json_case(
            "an unknown field: id",
            M::POST,
            customers,
            with("id", json!("cust_chosen_by_client")),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "an unknown field: partnerId",
            M::POST,
            customers,
            with("partnerId", json!(other_partner)),
            400,
            "INVALID_FIELD",
        ),
        json_case("an unknown field: runsUsed", M::POST, customers, with("runsUsed", json!(0)), 400, "INVALID_FIELD"),
        json_case(
            "a 2 MiB body",
            M::POST,
            customers,
            json!({"name": huge_name, "tenantId": TENANT}),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        // PUT /customers/{id}
        case("truncated JSON", M::PUT, &one, r#"{"name": "#, 400, "INVALID_JSON"),
        json_case("a numeric name", M::PUT, &one, json!({"name": 5}), 400, "INVALID_FIELD"),
        json_case("a null name", M::PUT, &one, json!({"name": null}), 400, "INVALID_FIELD"),
        json_case("a malformed receiver", M::PUT, &one, json!({"receivers": ["not an e-mail"]}), 400, "INVALID_FIELD"),
        json_case(
            "an unknown field: id",
            M::PUT,
            &one,
            json!({"name": "Renamed", "id": "cust_other"}),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "an unknown field: partnerId",
            M::PUT,
            &one,
            json!({"name": "Renamed", "partnerId": other_partner}),
            400,
            "INVALID_FIELD",
        ),
        json_case("a 2 MiB body", M::PUT, &one, json!({"name": "x".repeat(TWO_MIB)}), 413, "PAYLOAD_TOO_LARGE"),
        // POST /assessments
        case("truncated JSON", M::POST, trigger, r#"{"customerId": "#, 400, "INVALID_JSON"),
        json_case(
            "maturityTarget as a string",
            M::POST,
            trigger,
            run("maturityTarget", json!("3")),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "maturityTarget out of range",
            M::POST,
            trigger,
            run("maturityTarget", json!(9)),
            400,
            "INVALID_FIELD",
        ),
        json_case("a numeric customerId", M::POST, trigger, run("customerId", json!(12)), 400, "INVALID_FIELD"),
        json_case("no product", M::POST, trigger, json!({"customerId": customer}), 400, "MISSING_FIELD"),
        json_case("an unknown product", M::POST, trigger, run("product", json!("soc-2")), 400, "INVALID_PRODUCT"),
        json_case(
            "a product outside the plan",
            M::POST,
            trigger,
            run("product", json!("nist-csf")),
            403,
            "PRODUCT_NOT_ALLOWED",
        ),
        json_case("an unknown field: runsUsed", M::POST, trigger, run("runsUsed", json!(0)), 400, "INVALID_FIELD"),
        json_case("an unknown field: id", M::POST, trigger, run("id", json!("run_chosen")), 400, "INVALID_FIELD"),
        json_case(
            "an unknown field: partnerId",
            M::POST,
            trigger,
            run("partnerId", json!(other_partner)),
            400,
            "INVALID_FIELD",
        ),
        // POST /customers/bulk
        case("truncated JSON", M::POST, bulk_c, r#"{"customers": [{"name": "#, 400, "INVALID_JSON"),
        json_case("customers as an object", M::POST, bulk_c, json!({"customers": valid}), 400, "INVALID_FIELD"),
        json_case("no customers", M::POST, bulk_c, json!({}), 400, "MISSING_FIELD"),
        json_case("101 customers", M::POST, bulk_c, json!({"customers": customers_101}), 400, "TOO_MANY"),
        json_case(
            "an unknown top-level field",
            M::POST,
            bulk_c,
            json!({"customers": [valid], "partnerId": other_partner}),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "a 2 MiB bulk body",
            M::POST,
            bulk_c,
            json!({ "customers": big_customers }),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        // POST /assessments/bulk
        case(
            "truncated JSON",
            M::POST,
            bulk_r,
            r#"{"product": "essential-eight", "customerIds": ["#,
            400,
            "INVALID_JSON",
        ),
        json_case(
            "customerIds as a string",
            M::POST,
            bulk_r,
            json!({"product": "essential-eight", "customerIds": customer}),
            400,
            "INVALID_FIELD",
        ),
        json_case("no customerIds", M::POST, bulk_r, json!({"product": "essential-eight"}), 400, "MISSING_FIELD"),
        json_case(
            "51 customerIds",
            M::POST,
            bulk_r,
            json!({"product": "essential-eight", "customerIds": ids_51, "maturityTarget": 3}),
            400,
            "TOO_MANY",
        ),
        json_case(
            "an unknown product",
            M::POST,
            bulk_r,
            json!({"product": "soc-2", "customerIds": [customer]}),
            400,
            "INVALID_PRODUCT",
        ),
        json_case(
            "a product outside the plan",
            M::POST,
            bulk_r,
            json!({"product": "nist-csf", "customerIds": [customer]}),
            403,
            "PRODUCT_NOT_ALLOWED",
        ),
        json_case(
            "an unknown field: runsUsed",
            M::POST,
            bulk_r,
            json!({"product": "essential-eight", "customerIds": [customer], "runsUsed": 0}),
            400,
            "INVALID_FIELD",
        ),
        // POST /plan
        case("truncated JSON", M::POST, plan, r#"{"plan": "#, 400, "INVALID_JSON"),
        json_case("a numeric plan", M::POST, plan, json!({"plan": 2}), 400, "INVALID_FIELD"),
        json_case("no plan", M::POST, plan, json!({"billing": "monthly"}), 400, "MISSING_FIELD"),
        json_case("an unknown plan", M::POST, plan, json!({"plan": "platinum"}), 400, "PLAN_CHANGE_FAILED"),
        json_case(
            "an unknown billing",
            M::POST,
            plan,
            json!({"plan": "professional", "billing": "weekly"}),
            400,
            "PLAN_CHANGE_FAILED",
        ),
        json_case(
            "an unknown field: runsUsed",
            M::POST,
            plan,
            json!({"plan": "professional", "runsUsed": 0}),
            400,
            "INVALID_FIELD",
        ),
        json_case(
            "an unknown field: partnerId",
            M::POST,
            plan,
            json!({"plan": "professional", "partnerId": other_partner}),
            400,
            "INVALID_FIELD",
        ),
        json_case("a 2 MiB body", M::POST, plan, json!({"plan": "z".repeat(TWO_MIB)}), 413, "PAYLOAD_TOO_LARGE"),
        // Key slots: the only key cannot go, an empty slot is not found, a slot must be 1 or 2.
        case("the only active key", M::DELETE, "/v1/partner/keys/1", "", 409, "LAST_KEY"),
        case("an empty slot", M::DELETE, "/v1/partner/keys/2", "", 404, "NOT_FOUND"),
        case("slot 3", M::DELETE, "/v1/partner/keys/3", "", 400, "INVALID_FIELD"),
        case("slot 0", M::DELETE, "/api/v1/partner/keys/0", "", 400, "INVALID_FIELD"),
        case("a slot that is not a number", M::DELETE, "/v1/partner/keys/one", "", 400, "INVALID_FIELD"),
        // Run filters.
        case("an impossible month", M::GET, "/v1/partner/assessments?month=2026-13", "", 400, "INVALID_FIELD"),
        case("an unknown product filter", M::GET, "/v1/partner/assessments?product=soc-2", "", 400, "INVALID_PRODUCT"),
    ]
}

async fn bad_input_gets_the_envelope_and_changes_nothing(ctx: &Ctx) {
    let created = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", None).await;
    let other = create_partner(ctx, "Other MSP", "ops@other.example", "enterprise", None).await;
    let server = serve_unlimited(ctx).await;
    let api = PartnerApi::new(&server, str_field(&created, "key"));

    // 51 customers and one run: enough for a 51-id bulk made only of real ids.
    let customer_ids = api.bulk_customers(51, "Contoso Branch").await;
    let customer = customer_ids[0].clone();
    let reply = api
        .post(
            "/v1/partner/assessments",
            &json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3}),
        )
        .await;
    let run = str_field(assert_status(&reply, 202), "id").to_owned();
    let before = snapshot(&api, &customer).await;
    let full_before = full_snapshot(&api, &customer, &run).await;
    assert_eq!(before[0]["usage"]["runsUsed"], 1);
    assert_eq!(before[0]["usage"]["customersCount"], 51);

    for case in cases(&customer, &customer_ids, str_field(&other, "id")) {
        let size = case.body.len();
        // GET and DELETE go without a body, as a client sends them.
        let body = if matches!(case.method, Method::GET | Method::DELETE) { None } else { Some(case.body) };
        let reply =
            match api.endpoint.try_send(case.method.clone(), &case.path, &[(PARTNER_HEADER, &api.key)], body).await {
                Ok(reply) => reply,
                Err(e) => panic!("{} {} ({}, {size} bytes): no response: {e}", case.method, case.path, case.what),
            };
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (case.status, Some(case.code)),
            "{} {} with {}: {}",
            case.method,
            case.path,
            case.what,
            reply.text.chars().take(300).collect::<String>()
        );
        assert_error(&reply, case.status, case.code);
        assert_eq!(
            snapshot(&api, &customer).await,
            before,
            "{} {} with {} changed the account",
            case.method,
            case.path,
            case.what
        );
    }

    assert_eq!(full_snapshot(&api, &customer, &run).await, full_before, "the account changed");

    // The account still takes good input afterwards (and the connection survived the 413s).
    let reply = api.post("/v1/partner/customers", &json!({"name": "Contoso Ltd", "tenantId": TENANT})).await;
    assert_status(&reply, 201);
    assert_eq!(api.me().await["usage"]["customersCount"], 52);
}
