//! Shared pieces of the scenarios: the per-back-end test generator and assertions on the
//! reference contract's shapes.

use std::collections::BTreeSet;

use partnerd_e2e::{Backend, Reply, TestDatabase, str_field};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Generates, for each scenario `async fn name(ctx: &Ctx)`, a module `name` with two tests:
/// `sqlite` and `postgres`, each on a fresh, empty database (PostgreSQL ones skip with a
/// message when `PARTNERD_TEST_POSTGRES_URL` is unset, and fail under `CI=true`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let ctx = $crate::support::Ctx::new(partnerd_e2e::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(&ctx).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(ctx) = $crate::support::Ctx::new(partnerd_e2e::Backend::Postgres).await {
                        super::$name(&ctx).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;

/// One scenario's world: a fresh database on one back-end.
pub struct Ctx {
    pub backend: Backend,
    pub db: TestDatabase,
}

impl Ctx {
    pub async fn new(backend: Backend) -> Option<Self> {
        Some(Self { backend, db: TestDatabase::new(backend).await? })
    }

    pub fn url(&self) -> &str {
        self.db.url()
    }
}

pub const PARTNER_HEADER: &str = "X-Partner-Key";
pub const DISTRIBUTOR_HEADER: &str = "X-Distributor-Key";

/// The set of keys of a JSON object (panics when `value` is not one).
pub fn keys_of(value: &Value) -> BTreeSet<&str> {
    value.as_object().unwrap_or_else(|| panic!("not a JSON object: {value}")).keys().map(String::as_str).collect()
}

/// `value` is an object with exactly these keys.
#[track_caller]
pub fn assert_keys(value: &Value, expected: &[&str]) {
    let expected: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(keys_of(value), expected, "keys of {value}");
}

/// The calendar month in UTC, `YYYY-MM`.
pub fn utc_month(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

/// The usage month a response received just now may carry: this month, or the previous one
/// when the request straddled midnight at the end of a month.
pub fn plausible_months() -> [String; 2] {
    let now = OffsetDateTime::now_utc();
    [utc_month(now), utc_month(now - time::Duration::seconds(60))]
}

#[track_caller]
pub fn assert_current_month(month: &Value) {
    let month = month.as_str().unwrap_or_else(|| panic!("month is not a string: {month}"));
    assert!(
        plausible_months().iter().any(|m| m == month),
        "month {month:?} is not the current UTC month {:?}",
        plausible_months()[0]
    );
}

/// An RFC 3339 UTC timestamp written with `Z`, not in the future.
#[track_caller]
pub fn assert_timestamp(value: &Value) -> OffsetDateTime {
    let text = value.as_str().unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    assert!(text.ends_with('Z'), "timestamp {text:?} does not end in Z");
    let at =
        OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("timestamp {text:?} is not RFC 3339: {e}"));
    assert!(at <= OffsetDateTime::now_utc() + time::Duration::seconds(5), "timestamp {text:?} is in the future");
    at
}

/// Every response carries a non-empty `x-request-id`.
#[track_caller]
pub fn assert_request_id(reply: &Reply) -> String {
    let id = reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id header on {} {}", reply.status, reply.text));
    assert!(!id.trim().is_empty(), "empty x-request-id");
    id.to_owned()
}

#[track_caller]
pub fn assert_json_content_type(reply: &Reply) {
    let ct = reply.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct:?} on {} {}", reply.status, reply.text);
}

/// A `200` with a JSON object body; returns the body.
#[track_caller]
pub fn assert_ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "expected 200, got {}: {}", reply.status, reply.text);
    assert_json_content_type(reply);
    assert_request_id(reply);
    assert!(reply.body.is_object(), "body is not a JSON object: {}", reply.text);
    &reply.body
}

/// The reference's error envelope, exactly: `{"error": {"code", "message"}}`, with this status
/// and code and a non-empty human message. Returns the message.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: &str) -> String {
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (status, Some(code)),
        "expected {status} {code}, got {}: {}",
        reply.status,
        reply.text
    );
    assert_json_content_type(reply);
    assert_request_id(reply);
    assert_keys(&reply.body, &["error"]);
    assert_keys(&reply.body["error"], &["code", "message"]);
    let message = str_field(&reply.body["error"], "message");
    assert!(!message.trim().is_empty(), "empty error message: {}", reply.text);
    message.to_owned()
}

/// The monthly run limit the default catalog gives a plan (`-1`: unlimited).
pub fn runs_limit(plan: &str) -> i64 {
    match plan {
        "starter" => 50,
        "professional" => 200,
        "enterprise" => -1,
        other => panic!("no such plan in the default catalog: {other}"),
    }
}

/// `GET /v1/partner/me` for a partner just created by `admin create-partner` (whose printed
/// JSON is `created`): the reference shape exactly, every value checked.
#[track_caller]
pub fn assert_partner_me(body: &Value, created: &Value) {
    assert_keys(body, &["id", "company", "email", "plan", "status", "usage", "createdAt"]);
    assert_eq!(body["id"], created["id"], "id");
    assert!(str_field(body, "id").starts_with("prt_"), "partner id {}", body["id"]);
    assert_eq!(body["company"], created["company"], "company");
    assert_eq!(body["email"], created["email"], "email");
    assert_eq!(body["plan"], created["plan"], "plan");
    assert_eq!(body["status"], "active", "status");
    let usage = &body["usage"];
    assert_keys(usage, &["month", "runsUsed", "runsLimit", "customersCount"]);
    assert_current_month(&usage["month"]);
    assert_eq!(usage["runsUsed"], 0, "runsUsed of a new partner");
    assert_eq!(usage["runsLimit"], runs_limit(str_field(created, "plan")), "runsLimit of plan {}", created["plan"]);
    assert_eq!(usage["customersCount"], 0, "customersCount of a new partner");
    assert_timestamp(&body["createdAt"]);
    assert_eq!(body["createdAt"], created["createdAt"], "createdAt");
}

/// `GET /v1/distributor/me` for a distributor created by `admin create-distributor` (printed
/// JSON `created`) that has `partners` partners and no activity yet.
#[track_caller]
pub fn assert_distributor_me(body: &Value, created: &Value, partners: u64) {
    assert_keys(body, &["id", "company", "email", "status", "partnersCount", "usage", "createdAt"]);
    assert_eq!(body["id"], created["id"], "id");
    assert!(str_field(body, "id").starts_with("dist_"), "distributor id {}", body["id"]);
    assert_eq!(body["company"], created["company"], "company");
    assert_eq!(body["email"], created["email"], "email");
    assert_eq!(body["status"], "active", "status");
    assert_eq!(body["partnersCount"], partners, "partnersCount");
    let usage = &body["usage"];
    assert_keys(usage, &["month", "totalRuns", "totalCustomers"]);
    assert_current_month(&usage["month"]);
    assert_eq!(usage["totalRuns"], 0, "totalRuns");
    assert_eq!(usage["totalCustomers"], 0, "totalCustomers");
    assert_timestamp(&body["createdAt"]);
    assert_eq!(body["createdAt"], created["createdAt"], "createdAt");
}

/// `admin create-distributor`'s JSON: id, active, a `dk_live_` key.
#[track_caller]
pub fn assert_created_distributor(created: &Value, company: &str, email: &str) {
    assert!(str_field(created, "id").starts_with("dist_"), "{created}");
    assert_eq!(created["company"], company);
    assert_eq!(created["email"], email);
    assert_eq!(created["status"], "active", "{created}");
    assert!(str_field(created, "key").starts_with("dk_live_"), "{created}");
    assert_timestamp(&created["createdAt"]);
}

/// `admin create-partner`'s JSON: id, active, a `pk_live_` key.
#[track_caller]
pub fn assert_created_partner(created: &Value, plan: &str, distributor: Option<&str>) {
    assert!(str_field(created, "id").starts_with("prt_"), "{created}");
    assert_eq!(created["status"], "active", "{created}");
    assert_eq!(created["plan"], plan, "{created}");
    assert!(str_field(created, "key").starts_with("pk_live_"), "{created}");
    if let Some(d) = distributor {
        assert_eq!(created["distributorId"], d, "{created}");
    }
    assert_timestamp(&created["createdAt"]);
}

/// `admin create-distributor`, checked; returns its JSON (with `id` and `key`).
pub async fn create_distributor(ctx: &Ctx, company: &str, email: &str) -> Value {
    let created = partnerd_e2e::admin(ctx.url(), &["create-distributor", "--company", company, "--email", email]).await;
    assert_created_distributor(&created, company, email);
    created
}

/// `admin create-partner`, checked; returns its JSON (with `id` and `key`).
pub async fn create_partner(ctx: &Ctx, company: &str, email: &str, plan: &str, distributor: Option<&str>) -> Value {
    let mut args =
        vec!["create-partner", "--company", company, "--email", email, "--name", "Jane Admin", "--plan", plan];
    if let Some(d) = distributor {
        args.extend(["--distributor", d]);
    }
    let created = partnerd_e2e::admin(ctx.url(), &args).await;
    assert_created_partner(&created, plan, distributor);
    assert_eq!(created["company"], company);
    assert_eq!(created["email"], email);
    created
}

/// `admin create-worker`, checked; returns its JSON (with `id` and `key`).
pub async fn create_worker(ctx: &Ctx, name: &str) -> Value {
    let created = partnerd_e2e::admin(ctx.url(), &["create-worker", "--name", name]).await;
    assert!(!str_field(&created, "id").is_empty(), "{created}");
    assert_eq!(created["name"], name, "{created}");
    assert!(str_field(&created, "key").starts_with("wk_live_"), "{created}");
    created
}
