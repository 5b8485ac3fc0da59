//! Bad input to the Distributor API gets a clear error in the reference envelope — naming the
//! field where there is one — and changes nothing: after every rejected request, the
//! distributor's profile, partner list, usage report and a partner's detail, customers and runs
//! read exactly as before.

use partnerd_e2e::str_field;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, DistributorApi, array, assert_error, assert_fields, assert_ok, assert_status, contoso,
    create_distributor, create_partner, new_msp, on_both_backends, serve_open,
};

on_both_backends!(
    bad_input_gets_the_envelope_and_changes_nothing,
    a_bulk_item_fails_on_its_own,
    a_null_in_a_partner_update_is_refused,
);

/// Bodies over 1 MiB are refused; this is twice that.
const TWO_MIB: usize = 2 * 1024 * 1024;

/// What a bad request could change, cheaply: the partner list (a partner created, or one's
/// status, plan or customer count changed) and one partner's detail (profile, billing, status,
/// runs used, customers). Checked after every case.
async fn snapshot(api: &DistributorApi, partner: &str) -> Vec<Value> {
    vec![json!(api.partners("").await), api.partner(partner).await]
}

/// Everything else the distributor can read, compared once at the end.
async fn full_snapshot(api: &DistributorApi, partner: &str) -> Vec<Value> {
    let mut seen = snapshot(api, partner).await;
    seen.extend([api.me().await, api.usage("").await]);
    for path in ["customers", "assessments"] {
        let reply = api.get(&format!("/v1/distributor/partners/{partner}/{path}")).await;
        seen.push(assert_ok(&reply).clone());
    }
    seen
}

/// One bad request, the error it must get, and the field its message must name (if any).
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
    names: Option<&'static str>,
}

fn raw(what: &'static str, method: Method, path: &str, body: &str, status: u16, code: &'static str) -> Case {
    Case { what, method, path: path.to_owned(), body: Some(body.into()), status, code, names: None }
}

fn body(what: &'static str, method: Method, path: &str, body: Value, status: u16, code: &'static str) -> Case {
    Case { what, method, path: path.to_owned(), body: Some(body.to_string().into()), status, code, names: None }
}

fn get(what: &'static str, path: &str, code: &'static str) -> Case {
    Case { what, method: Method::GET, path: path.to_owned(), body: None, status: 400, code, names: None }
}

impl Case {
    fn naming(mut self, field: &'static str) -> Self {
        self.names = Some(field);
        self
    }
}

/// `new_msp()` with `pointer` (`/billing/currency`) set to `value`, or removed when `None`.
fn partner_with(pointer: &str, value: Option<Value>) -> Value {
    let mut body = new_msp();
    let (parent, last) = pointer.rsplit_once('/').expect("a JSON pointer");
    let target = if parent.is_empty() { &mut body } else { body.pointer_mut(parent).expect("the parent exists") };
    let object = target.as_object_mut().expect("an object");
    match value {
        Some(v) => object.insert(last.to_owned(), v),
        None => object.remove(last),
    };
    body
}

fn cases(partner: &str, customer: &str) -> Vec<Case> {
    use Method as M;
    let partners = "/v1/distributor/partners";
    let bulk = "/api/v1/distributor/partners/bulk";
    let one = format!("/v1/distributor/partners/{partner}");
    let suspend = format!("{one}/suspend");
    let plan = format!("{one}/plan");
    let preview = format!("{one}/plan/preview");
    let customers = format!("{one}/customers");
    let trigger = format!("{one}/assessments");
    let run = |k: &str, v: Value| {
        let mut body = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3});
        body[k] = v;
        body
    };
    let customer_with = |k: &str, v: Value| {
        let mut body = contoso();
        body[k] = v;
        body
    };
    let fifty_one: Vec<Value> = (0..51)
        .map(|i| {
            json!({"email": format!("admin@msp{i}.example"), "company": format!("MSP {i}"), "name": "Alice Wong",
                   "plan": "starter", "billing": {"currency": "AUD"}})
        })
        .collect();

    let missing = |what: &'static str, pointer: &str, field: &'static str| {
        body(what, M::POST, partners, partner_with(pointer, None), 400, "MISSING_FIELD").naming(field)
    };
    let invalid = |what: &'static str, pointer: &str, value: Value, field: &'static str| {
        body(what, M::POST, partners, partner_with(pointer, Some(value)), 400, "INVALID_FIELD").naming(field)
    };

    vec![
        // POST /partners: required fields, the reference's MISSING_FIELD naming the field.
        missing("no billing.currency", "/billing/currency", "billing.currency"),
        missing("no billing", "/billing", "billing"),
        missing("no email", "/email", "email"),
        missing("no company", "/company", "company"),
        missing("no name", "/name", "name"),
        missing("no plan", "/plan", "plan"),
        // Present but invalid.
        invalid("a malformed e-mail", "/email", json!("admin at newmsp.com"), "email"),
        invalid("an unknown plan", "/plan", json!("platinum"), "plan"),
        invalid("an unknown currency", "/billing/currency", json!("XYZ"), "billing.currency"),
        invalid("an unknown interval", "/billing/interval", json!("weekly"), "billing.interval"),
        invalid("an empty company", "/company", json!(""), "company"),
        invalid("billing as a string", "/billing", json!("AUD"), "billing"),
        invalid("a numeric company", "/company", json!(5), "company"),
        // Unknown fields.
        invalid("an unknown field: status", "/status", json!("active"), "status"),
        invalid("an unknown field: id", "/id", json!("prt_chosen"), "id"),
        invalid("an unknown field: distributorId", "/distributorId", json!("dist_x"), "distributorId"),
        invalid("an unknown billing field", "/billing/discount", json!(50), "billing.discount"),
        // Not JSON, or too much of it.
        raw("truncated JSON", M::POST, partners, r#"{"email": "admin@newmsp.com", "#, 400, "INVALID_JSON"),
        raw("an empty body", M::POST, partners, "", 400, "INVALID_JSON"),
        body(
            "a 2 MiB body",
            M::POST,
            partners,
            partner_with("/company", Some(json!("x".repeat(TWO_MIB)))),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        // POST /partners/bulk: the batch as a whole.
        body("51 partners", M::POST, bulk, json!({"partners": fifty_one}), 400, "TOO_MANY"),
        body("no partners", M::POST, bulk, json!({}), 400, "MISSING_FIELD").naming("partners"),
        body("partners as an object", M::POST, bulk, json!({"partners": new_msp()}), 400, "INVALID_FIELD"),
        body(
            "an unknown top-level field",
            M::POST,
            bulk,
            json!({"partners": [new_msp()], "dryRun": true}),
            400,
            "INVALID_FIELD",
        )
        .naming("dryRun"),
        raw("truncated JSON", M::POST, bulk, r#"{"partners": [{"#, 400, "INVALID_JSON"),
        // Filters.
        get("an unknown status filter", "/v1/distributor/partners?status=frozen", "INVALID_FIELD").naming("status"),
        get("a status filter in capitals", "/api/v1/distributor/partners?status=ACTIVE", "INVALID_FIELD")
            .naming("status"),
        get("an impossible month", "/v1/distributor/usage?month=2026-13", "INVALID_FIELD").naming("month"),
        get("a month without its zero", "/v1/distributor/usage?month=2026-4", "INVALID_FIELD").naming("month"),
        get("a run filter with an impossible month", &format!("{trigger}?month=2026-13"), "INVALID_FIELD")
            .naming("month"),
        // PUT /partners/{id}: nothing is changed by a request that is refused, even in part.
        raw("truncated JSON", M::PUT, &one, r#"{"plan": "#, 400, "INVALID_JSON"),
        body("an unknown field: status", M::PUT, &one, json!({"status": "active"}), 400, "INVALID_FIELD")
            .naming("status"),
        body("an unknown field: id", M::PUT, &one, json!({"id": "prt_other"}), 400, "INVALID_FIELD").naming("id"),
        body("an unknown billing field", M::PUT, &one, json!({"billing": {"discount": 50}}), 400, "INVALID_FIELD")
            .naming("billing.discount"),
        body("a malformed e-mail", M::PUT, &one, json!({"email": "not-an-email"}), 400, "INVALID_FIELD")
            .naming("email"),
        body("a numeric company", M::PUT, &one, json!({"company": 5}), 400, "INVALID_FIELD").naming("company"),
        body("an empty name", M::PUT, &one, json!({"name": "", "company": "Renamed"}), 400, "INVALID_FIELD")
            .naming("name"),
        body(
            "an unknown plan next to a good e-mail",
            M::PUT,
            &one,
            json!({"email": "new@acmemsp.com", "plan": "platinum"}),
            400,
            "PLAN_CHANGE_FAILED",
        ),
        body(
            "an unknown currency next to a good company",
            M::PUT,
            &one,
            json!({"company": "Renamed", "billing": {"currency": "XYZ"}}),
            400,
            "PLAN_CHANGE_FAILED",
        ),
        // POST …/suspend: a bad body suspends nothing.
        raw("truncated JSON", M::POST, &suspend, r#"{"reason": "#, 400, "INVALID_JSON"),
        body(
            "an unknown field",
            M::POST,
            &suspend,
            json!({"reason": "Unpaid invoice", "until": "2027-01-01"}),
            400,
            "INVALID_FIELD",
        )
        .naming("until"),
        body("a numeric reason", M::POST, &suspend, json!({"reason": 5}), 400, "INVALID_FIELD").naming("reason"),
        body("a 501-character reason", M::POST, &suspend, json!({"reason": "r".repeat(501)}), 400, "INVALID_FIELD")
            .naming("reason"),
        // POST …/plan and …/plan/preview.
        body("no plan", M::POST, &plan, json!({"billing": "monthly"}), 400, "MISSING_FIELD").naming("plan"),
        body("an unknown plan", M::POST, &plan, json!({"plan": "platinum"}), 400, "PLAN_CHANGE_FAILED"),
        body(
            "an unknown billing",
            M::POST,
            &plan,
            json!({"plan": "professional", "billing": "weekly"}),
            400,
            "PLAN_CHANGE_FAILED",
        ),
        body("the current plan and terms", M::POST, &plan, json!({"plan": "starter"}), 400, "PLAN_CHANGE_FAILED"),
        body(
            "an unknown field",
            M::POST,
            &plan,
            json!({"plan": "professional", "partnerId": partner}),
            400,
            "INVALID_FIELD",
        )
        .naming("partnerId"),
        body("an unknown plan", M::POST, &preview, json!({"plan": "platinum"}), 400, "PLAN_CHANGE_FAILED"),
        body(
            "an unknown field",
            M::POST,
            &preview,
            json!({"plan": "professional", "runsUsed": 0}),
            400,
            "INVALID_FIELD",
        )
        .naming("runsUsed"),
        // POST …/customers: the Partner API's rules.
        raw("truncated JSON", M::POST, &customers, r#"{"name": "#, 400, "INVALID_JSON"),
        body("no tenantId", M::POST, &customers, json!({"name": "Contoso Ltd"}), 400, "MISSING_FIELD")
            .naming("tenantId"),
        body(
            "a malformed tenant GUID",
            M::POST,
            &customers,
            customer_with("tenantId", json!("not-a-guid")),
            400,
            "INVALID_FIELD",
        )
        .naming("tenantId"),
        body(
            "an unknown field: partnerId",
            M::POST,
            &customers,
            customer_with("partnerId", json!(partner)),
            400,
            "INVALID_FIELD",
        )
        .naming("partnerId"),
        // POST …/assessments: the Partner API's rules and limits.
        body("no product", M::POST, &trigger, json!({"customerId": customer}), 400, "MISSING_FIELD").naming("product"),
        body("an unknown product", M::POST, &trigger, run("product", json!("soc-2")), 400, "INVALID_PRODUCT"),
        body(
            "a product outside the plan",
            M::POST,
            &trigger,
            run("product", json!("nist-csf")),
            403,
            "PRODUCT_NOT_ALLOWED",
        ),
        body("maturityTarget out of range", M::POST, &trigger, run("maturityTarget", json!(9)), 400, "INVALID_FIELD")
            .naming("maturityTarget"),
        body("an unknown field: partnerId", M::POST, &trigger, run("partnerId", json!(partner)), 400, "INVALID_FIELD")
            .naming("partnerId"),
        body(
            "an unknown customer",
            M::POST,
            &trigger,
            run("customerId", json!("cust_000000000000000000000000")),
            404,
            "NOT_FOUND",
        ),
    ]
}

async fn bad_input_gets_the_envelope_and_changes_nothing(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let created =
        create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", Some(str_field(&distributor, "id"))).await;
    let partner = str_field(&created, "id").to_owned();
    let server = serve_open(ctx).await;
    let api = DistributorApi::new(&server, str_field(&distributor, "key"));
    let customer = api.create_customer(&partner, &contoso()).await;
    api.trigger(&partner, &customer).await;
    let pending = api.provision(&new_msp()).await;
    let before = snapshot(&api, &partner).await;
    let full_before = full_snapshot(&api, &partner).await;
    let pending_before = api.partner(&pending).await;

    for case in cases(&partner, &customer) {
        let size = case.body.as_ref().map_or(0, Vec::len);
        let reply = match api
            .endpoint
            .try_send(case.method.clone(), &case.path, &[(DISTRIBUTOR_HEADER, &api.key)], case.body)
            .await
        {
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
        let message = assert_error(&reply, case.status, case.code);
        if let Some(field) = case.names {
            assert!(
                message.contains(&format!("'{field}'")),
                "{} {} with {}: the message names '{field}': {message:?}",
                case.method,
                case.path,
                case.what
            );
        }
        assert_eq!(
            snapshot(&api, &partner).await,
            before,
            "{} {} with {} changed something",
            case.method,
            case.path,
            case.what
        );
    }
    assert_eq!(full_snapshot(&api, &partner).await, full_before, "the distributor's data changed");
    assert_eq!(api.partner(&pending).await, pending_before, "the pending partner changed");

    // The distributor still takes good input afterwards (and the connection survived the 413).
    api.provision(&new_msp()).await;
    assert_eq!(api.me().await["partnersCount"], 3);
}

/// Each bulk item succeeds or fails on its own: a `201` with the good item provisioned, the bad
/// one `failed` with an error naming its field by its place in the batch.
async fn a_bulk_item_fails_on_its_own(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let server = serve_open(ctx).await;
    let api = DistributorApi::new(&server, str_field(&distributor, "key"));
    let good = new_msp();
    let bad = partner_with("/billing/currency", None);
    let reply = api.post("/v1/distributor/partners/bulk", &json!({"partners": [good, bad]})).await;
    let body = assert_status(&reply, 201);
    assert_fields(body, &json!({"created": 1, "failed": 1}));
    let items = array(body, "partners");
    assert_eq!(items.len(), 2, "{}", reply.text);
    assert_fields(&items[0], &json!({"company": "New MSP Pty Ltd", "status": "pending"}));
    let created = str_field(&items[0], "id").to_owned();
    assert_eq!(items[1]["status"], "failed", "{}", reply.text);
    assert!(items[1].get("id").is_none_or(Value::is_null), "no id for a failed item: {}", reply.text);
    assert_eq!(items[1]["error"]["code"], "MISSING_FIELD", "{}", reply.text);
    let message = str_field(&items[1]["error"], "message");
    assert!(message.contains("billing.currency"), "the item's error names the field: {message:?}");
    assert_eq!(api.partner_ids("").await, [created]);
}

/// `PUT …/partners/{id}` with `null` for a field that cannot be null is refused, as
/// `PUT /v1/partner/customers/{id}` refuses `{"name": null}`, and changes nothing.
async fn a_null_in_a_partner_update_is_refused(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let server = serve_open(ctx).await;
    let api = DistributorApi::new(&server, str_field(&distributor, "key"));
    let partner = api.provision(&new_msp()).await;
    let before = api.partner(&partner).await;
    for (field, patch) in [
        ("company", json!({"company": null})),
        ("email", json!({"email": null})),
        ("name", json!({"name": null})),
        ("plan", json!({"plan": null})),
    ] {
        let reply = api.put(&format!("/v1/distributor/partners/{partner}"), &patch).await;
        let message = assert_error(&reply, 400, "INVALID_FIELD");
        assert!(message.contains(&format!("'{field}'")), "{message:?}");
    }
    assert_eq!(api.partner(&partner).await, before);
}
