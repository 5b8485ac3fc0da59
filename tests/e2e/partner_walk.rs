//! A walk of every Partner API endpoint with the reference document's own example request
//! bodies (Contoso Ltd, Fabrikam Inc and their tenant GUIDs), checking the documented status
//! codes and the reference's field names. Some calls go to `/api/v1/…`, exactly as the
//! reference's curl examples do; the rest to `/v1/…`.

use partnerd_e2e::str_field;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{
    Ctx, PartnerApi, array, assert_current_month, assert_error, assert_has_keys, assert_keys, assert_no_content,
    assert_ok, assert_partner_me, assert_status, assert_timestamp, create_partner, on_both_backends, serve_unlimited,
    utc_month,
};

on_both_backends!(every_partner_endpoint_answers_as_the_reference_documents);

const CONTOSO_TENANT: &str = "d4f5a678-1234-5678-9abc-def012345678";
const FABRIKAM_TENANT: &str = "a1b2c3d4-5678-9abc-def0-123456789abc";

/// `value[k] == expected[k]` for every key of `expected`.
#[track_caller]
fn assert_fields(value: &Value, expected: &Value) {
    for (k, v) in expected.as_object().expect("expected fields are an object") {
        assert_eq!(&value[k], v, "field {k:?} of {value}");
    }
}

#[track_caller]
fn assert_id(value: &Value, prefix: &str) -> String {
    let id = str_field(value, "id");
    assert!(id.starts_with(prefix) && id.len() > prefix.len(), "id {id:?} does not start with {prefix:?}");
    id.to_owned()
}

/// An RFC 3339 UTC timestamp in the future (a billing period's end).
#[track_caller]
fn assert_future_timestamp(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    assert!(text.ends_with('Z'), "timestamp {text:?} does not end in Z");
    let at = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"));
    assert!(at > OffsetDateTime::now_utc(), "currentPeriodEnd {text:?} is not in the future");
}

/// The fields of a customer as the reference shows them in a list.
const LIST_CUSTOMER: [&str; 5] = ["id", "name", "tenantId", "email", "createdAt"];
/// `POST /customers` → 201.
const CREATED_CUSTOMER: [&str; 7] =
    ["id", "name", "tenantId", "email", "receivers", "questionnaireRecipients", "createdAt"];
/// `GET /customers/{id}`.
const CUSTOMER_DETAIL: [&str; 8] =
    ["id", "name", "tenantId", "email", "receivers", "questionnaireRecipients", "recentRuns", "createdAt"];
/// `PUT /customers/{id}`.
const UPDATED_CUSTOMER: [&str; 7] =
    ["id", "name", "tenantId", "email", "receivers", "questionnaireRecipients", "updatedAt"];
/// `POST /assessments` → 202.
const QUEUED_RUN: [&str; 6] = ["id", "customerId", "product", "maturityTarget", "status", "createdAt"];
/// A run in `GET /assessments` (score and completedAt come with completion).
const LISTED_RUN: [&str; 5] = ["id", "customerId", "product", "status", "createdAt"];
/// `GET /assessments/{id}` for a run not yet completed.
const RUN_DETAIL: [&str; 7] = ["id", "customerId", "customerName", "product", "maturityTarget", "status", "createdAt"];

async fn every_partner_endpoint_answers_as_the_reference_documents(ctx: &Ctx) {
    let created = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", None).await;
    let partner_id = str_field(&created, "id").to_owned();
    let server = serve_unlimited(ctx).await;
    let api = PartnerApi::new(&server, str_field(&created, "key"));

    // GET /v1/partner/me (as the reference's authentication example: under /api/v1).
    let me = api.get("/api/v1/partner/me").await;
    assert_partner_me(assert_ok(&me), &created);

    // GET /v1/partner/products: a starter plan has only essential-eight.
    let products = api.get("/v1/partner/products").await;
    assert_keys(assert_ok(&products), &["products"]);
    let ids: Vec<&str> = array(&products.body, "products").iter().map(|p| str_field(p, "id")).collect();
    assert_eq!(ids, ["essential-eight"], "{}", products.text);

    // POST /v1/partner/plan with the reference's request body.
    let plan =
        api.post("/v1/partner/plan", &json!({"plan": "professional", "billing": "monthly", "currency": "usd"})).await;
    let body = assert_ok(&plan);
    assert_keys(
        body,
        &["partnerId", "plan", "billing", "currency", "runLimit", "subscriptionStatus", "currentPeriodEnd"],
    );
    assert_fields(
        body,
        &json!({"partnerId": partner_id, "plan": "professional", "billing": "monthly", "currency": "usd",
                "runLimit": 200, "subscriptionStatus": "active"}),
    );
    assert_future_timestamp(&body["currentPeriodEnd"]);

    // GET /v1/partner/products on professional: the reference's example response, exactly.
    let products = api.get("/v1/partner/products").await;
    assert_eq!(
        assert_ok(&products),
        &json!({"products": [
            {"id": "essential-eight", "name": "Essential Eight Assessment", "category": "compliance",
             "estimatedDuration": 180},
            {"id": "nist-csf", "name": "NIST CSF Assessment", "category": "compliance", "estimatedDuration": 240},
        ]})
    );

    // GET /v1/partner/customers: none yet.
    let list = api.get("/v1/partner/customers").await;
    assert!(array(assert_ok(&list), "customers").is_empty(), "{}", list.text);

    // POST /v1/partner/customers with the "Request Body" example → the "Response 201" example.
    let request = json!({
        "name": "Contoso Ltd",
        "tenantId": CONTOSO_TENANT,
        "email": "it@contoso.com",
        "receivers": ["ciso@contoso.com", "it@contoso.com"],
        "questionnaireRecipients": ["ciso@contoso.com"]
    });
    let reply = api.post("/v1/partner/customers", &request).await;
    let contoso = assert_status(&reply, 201).clone();
    assert_has_keys(&contoso, &CREATED_CUSTOMER);
    assert_fields(&contoso, &request);
    let contoso_id = assert_id(&contoso, "cust_");
    let contoso_created = assert_timestamp(&contoso["createdAt"]);

    // POST /api/v1/partner/customers with the curl example's body, as curl sends it.
    let curl_request = json!({
        "name": "Contoso Ltd",
        "tenantId": CONTOSO_TENANT,
        "email": "it@contoso.com",
        "receivers": ["ciso@contoso.com"],
        "questionnaireRecipients": ["ciso@contoso.com"]
    });
    let reply = api.post("/api/v1/partner/customers", &curl_request).await;
    let second = assert_status(&reply, 201).clone();
    assert_has_keys(&second, &CREATED_CUSTOMER);
    assert_fields(&second, &curl_request);
    let second_id = assert_id(&second, "cust_");
    assert_ne!(second_id, contoso_id, "every customer gets its own id");

    // GET /v1/partner/customers: both, with the reference's list fields.
    let list = api.get("/v1/partner/customers").await;
    let customers = array(assert_ok(&list), "customers");
    assert_eq!(customers.len(), 2, "{}", list.text);
    assert_oldest_first(customers);
    for expected in [&contoso, &second] {
        let item = customers.iter().find(|c| c["id"] == expected["id"]).unwrap_or_else(|| panic!("{}", list.text));
        assert_has_keys(item, &LIST_CUSTOMER);
        for k in LIST_CUSTOMER {
            assert_eq!(item[k], expected[k], "{k} of {item}");
        }
    }

    // GET /v1/partner/customers/{id}: receivers and an empty recentRuns.
    let detail = api.get(&format!("/v1/partner/customers/{contoso_id}")).await;
    let body = assert_ok(&detail);
    assert_has_keys(body, &CUSTOMER_DETAIL);
    assert_fields(body, &request);
    assert_eq!(body["createdAt"], contoso["createdAt"]);
    assert!(array(body, "recentRuns").is_empty(), "{}", detail.text);

    // POST /api/v1/partner/assessments with the curl example's body.
    let trigger = json!({"customerId": contoso_id, "product": "essential-eight", "maturityTarget": 3});
    let reply = api.post("/api/v1/partner/assessments", &trigger).await;
    let run = assert_status(&reply, 202).clone();
    assert_has_keys(&run, &QUEUED_RUN);
    assert_fields(
        &run,
        &json!({"customerId": contoso_id, "product": "essential-eight", "maturityTarget": 3, "status": "queued"}),
    );
    let run_id = assert_id(&run, "run_");
    assert_timestamp(&run["createdAt"]);

    // The customer's recentRuns now has it.
    let detail = api.get(&format!("/v1/partner/customers/{contoso_id}")).await;
    let recent = array(assert_ok(&detail), "recentRuns");
    assert_eq!(recent.len(), 1, "{}", detail.text);
    assert_has_keys(&recent[0], &["id", "product", "status"]);
    assert_fields(&recent[0], &json!({"id": run_id, "product": "essential-eight", "status": "queued"}));

    // GET /api/v1/partner/assessments?month=…&product=essential-eight, as the curl example.
    let month = utc_month(OffsetDateTime::now_utc());
    let listed = api.get(&format!("/api/v1/partner/assessments?month={month}&product=essential-eight")).await;
    let runs = array(assert_ok(&listed), "runs");
    assert_eq!(runs.len(), 1, "{}", listed.text);
    assert_has_keys(&runs[0], &LISTED_RUN);
    assert_fields(
        &runs[0],
        &json!({"id": run_id, "customerId": contoso_id, "product": "essential-eight", "status": "queued"}),
    );
    assert_eq!(runs[0]["createdAt"], run["createdAt"]);
    // The curl example's literal query: a month with no runs of ours (unless it is this one).
    let example = api.get("/api/v1/partner/assessments?month=2026-04&product=essential-eight").await;
    let expected = usize::from(month == "2026-04");
    assert_eq!(array(assert_ok(&example), "runs").len(), expected, "{}", example.text);
    // And by customer, the third documented filter.
    let by_customer = api.get(&format!("/v1/partner/assessments?customerId={second_id}")).await;
    assert!(array(assert_ok(&by_customer), "runs").is_empty(), "{}", by_customer.text);

    // GET /v1/partner/assessments/{id}.
    let detail = api.get(&format!("/v1/partner/assessments/{run_id}")).await;
    let body = assert_ok(&detail);
    assert_has_keys(body, &RUN_DETAIL);
    assert_fields(
        body,
        &json!({"id": run_id, "customerId": contoso_id, "customerName": "Contoso Ltd", "product": "essential-eight",
                "maturityTarget": 3, "status": "queued", "createdAt": run["createdAt"]}),
    );

    // PUT /v1/partner/customers/{id} with the reference's body → its "Response 200".
    let reply = api
        .put(
            &format!("/v1/partner/customers/{contoso_id}"),
            &json!({"name": "Contoso Corporation", "receivers": ["ciso@contoso.com", "security@contoso.com"]}),
        )
        .await;
    let updated = assert_ok(&reply);
    assert_has_keys(updated, &UPDATED_CUSTOMER);
    assert_fields(
        updated,
        &json!({"id": contoso_id, "name": "Contoso Corporation", "tenantId": CONTOSO_TENANT, "email": "it@contoso.com",
                "receivers": ["ciso@contoso.com", "security@contoso.com"],
                "questionnaireRecipients": ["ciso@contoso.com"]}),
    );
    assert!(assert_timestamp(&updated["updatedAt"]) >= contoso_created, "updatedAt before createdAt: {}", reply.text);
    let detail = api.get(&format!("/v1/partner/customers/{contoso_id}")).await;
    assert_fields(
        assert_ok(&detail),
        &json!({"name": "Contoso Corporation", "email": "it@contoso.com",
                "receivers": ["ciso@contoso.com", "security@contoso.com"], "createdAt": contoso["createdAt"]}),
    );

    // POST /v1/partner/customers/bulk with the reference's body → its "Response 201".
    let reply = api
        .post(
            "/v1/partner/customers/bulk",
            &json!({"customers": [
                {"name": "Contoso Ltd", "tenantId": CONTOSO_TENANT, "email": "it@contoso.com"},
                {"name": "Fabrikam Inc", "tenantId": FABRIKAM_TENANT, "email": "admin@fabrikam.com"},
            ]}),
        )
        .await;
    let bulk = assert_status(&reply, 201);
    assert_has_keys(bulk, &["created", "failed", "customers"]);
    assert_fields(bulk, &json!({"created": 2, "failed": 0}));
    let items = array(bulk, "customers");
    assert_eq!(items.len(), 2, "{}", reply.text);
    let mut bulk_ids = Vec::new();
    for (item, name) in items.iter().zip(["Contoso Ltd", "Fabrikam Inc"]) {
        assert_has_keys(item, &["id", "name", "status"]);
        assert_fields(item, &json!({"name": name, "status": "created"}));
        bulk_ids.push(assert_id(item, "cust_"));
    }
    let fabrikam = api.get(&format!("/v1/partner/customers/{}", bulk_ids[1])).await;
    assert_fields(
        assert_ok(&fabrikam),
        &json!({"name": "Fabrikam Inc", "tenantId": FABRIKAM_TENANT, "email": "admin@fabrikam.com"}),
    );

    // POST /v1/partner/assessments/bulk with the reference's body (our three customer ids).
    let targets = [bulk_ids[0].clone(), bulk_ids[1].clone(), second_id.clone()];
    let reply = api
        .post(
            "/v1/partner/assessments/bulk",
            &json!({"product": "essential-eight", "customerIds": targets, "maturityTarget": 3}),
        )
        .await;
    let bulk = assert_status(&reply, 202);
    assert_has_keys(bulk, &["queued", "failed", "runs"]);
    assert_fields(bulk, &json!({"queued": 3, "failed": 0}));
    let runs = array(bulk, "runs");
    assert_eq!(runs.len(), 3, "{}", reply.text);
    for (item, customer) in runs.iter().zip(&targets) {
        assert_has_keys(item, &["id", "customerId", "status"]);
        assert_fields(item, &json!({"customerId": customer, "status": "queued"}));
        let id = assert_id(item, "run_");
        let detail = api.get(&format!("/v1/partner/assessments/{id}")).await;
        assert_fields(assert_ok(&detail), &json!({"customerId": customer, "maturityTarget": 3, "status": "queued"}));
    }

    // The profile counts all of it.
    let me = api.me().await;
    assert_eq!(me["plan"], "professional", "{me}");
    assert_fields(&me["usage"], &json!({"runsUsed": 4, "runsLimit": 200, "customersCount": 4}));
    assert_current_month(&me["usage"]["month"]);
    let all = api.get("/api/v1/partner/assessments").await;
    assert_eq!(array(assert_ok(&all), "runs").len(), 4, "{}", all.text);

    // DELETE /v1/partner/customers/{id} → 204; the customer and its runs are gone, the usage stays.
    assert_no_content(&api.delete(&format!("/v1/partner/customers/{contoso_id}")).await);
    assert_error(&api.get(&format!("/v1/partner/customers/{contoso_id}")).await, 404, "NOT_FOUND");
    assert_error(&api.get(&format!("/v1/partner/assessments/{run_id}")).await, 404, "NOT_FOUND");
    let me = api.me().await;
    assert_fields(&me["usage"], &json!({"runsUsed": 4, "customersCount": 3}));
    let customers = api.customers().await;
    assert_oldest_first(&customers);
    let mut ids: Vec<String> = customers.iter().map(|c| str_field(c, "id").to_owned()).collect();
    let mut expected = vec![second_id.clone(), bulk_ids[0].clone(), bulk_ids[1].clone()];
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "the customers left after the delete");

    // POST /v1/partner/keys (no body) → 201 {slot, key, createdAt}.
    let reply = api.post_empty("/v1/partner/keys").await;
    let key = assert_status(&reply, 201);
    assert_keys(key, &["slot", "key", "createdAt"]);
    assert_eq!(key["slot"], 2, "{}", reply.text);
    assert!(str_field(key, "key").starts_with("pk_live_"), "{}", reply.text);
    assert_timestamp(&key["createdAt"]);
    let rotated = api.with_key(str_field(key, "key"));
    assert_partner_me_id(&rotated.me().await, &partner_id);

    // DELETE /api/v1/partner/keys/1 with the new key → 204; the old key is dead at once.
    assert_no_content(&rotated.delete("/api/v1/partner/keys/1").await);
    assert_error(&api.get("/v1/partner/me").await, 401, "INVALID_KEY");
    assert_partner_me_id(&rotated.me().await, &partner_id);
}

#[track_caller]
fn assert_partner_me_id(me: &Value, partner_id: &str) {
    assert_eq!(me["id"], partner_id, "{me}");
}

/// A list of customers never goes back in time (customers created together may come in any
/// order: the reference promises none, and timestamps are whole seconds).
#[track_caller]
fn assert_oldest_first(customers: &[Value]) {
    let times: Vec<OffsetDateTime> = customers.iter().map(|c| assert_timestamp(&c["createdAt"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "customers not oldest first: {customers:?}");
}
