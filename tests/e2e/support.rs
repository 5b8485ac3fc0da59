//! Shared pieces of the scenarios: the per-back-end test generator and assertions on the
//! reference contract's shapes.

use std::collections::BTreeSet;

use partnerd_e2e::{Backend, Endpoint, Reply, Server, TestDatabase, str_field};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Generates, for each scenario `async fn name(ctx: &Ctx)`, a module `name` with two tests:
/// `sqlite` and `postgres`, each on a fresh, empty database (PostgreSQL ones skip with a
/// message when `PARTNERD_TEST_POSTGRES_URL` is unset, and fail under `CI=true`). Attributes
/// before a name (`#[ignore = "BUG: …"]`) go on both of its tests.
macro_rules! on_both_backends {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        $(
            mod $name {
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let ctx = $crate::support::Ctx::new(partnerd_e2e::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(&ctx).await;
                }

                $(#[$meta])*
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

/// Like [`on_both_backends!`], for scenarios that only mean something on PostgreSQL (several
/// `partnerd` processes sharing one database): generates only the `postgres` test.
macro_rules! on_postgres_only {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
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
pub(crate) use on_postgres_only;

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

// ---------------------------------------------------------------------------------------------
// The Partner API, as a client sees it
// ---------------------------------------------------------------------------------------------

/// Flags for a server whose per-key rate limit must not get in the way of the scenario.
pub const NO_RATE_LIMIT: [&str; 2] = ["--partner-rate-limit", "0"];

/// `partnerd serve` with the partner rate limit off.
pub async fn serve_unlimited(ctx: &Ctx) -> Server {
    Server::serve_with(ctx.url(), &NO_RATE_LIMIT).await
}

/// A key aimed at one server, sent in its kind's header: what an account's automation holds.
/// Cheap to clone, so concurrent tasks can each take one.
macro_rules! keyed_api {
    ($(#[$doc:meta])* $name:ident, $header:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pub endpoint: Endpoint,
            pub key: String,
        }

        // Not every kind of key uses every verb in the tests.
        #[allow(dead_code)]
        impl $name {
            pub fn new(server: &Server, key: &str) -> Self {
                Self { endpoint: server.endpoint(), key: key.to_owned() }
            }

            /// The same key, sent to another server.
            pub fn on(&self, server: &Server) -> Self {
                Self::new(server, &self.key)
            }

            /// The same server, another key.
            pub fn with_key(&self, key: &str) -> Self {
                Self { endpoint: self.endpoint.clone(), key: key.to_owned() }
            }

            pub async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Reply {
                self.endpoint.send(method, path, &[($header, &self.key)], body).await
            }

            pub async fn get(&self, path: &str) -> Reply {
                self.send(Method::GET, path, None).await
            }

            pub async fn post(&self, path: &str, body: &Value) -> Reply {
                self.send(Method::POST, path, Some(body.to_string().into_bytes())).await
            }

            /// `POST` with no body at all (as `POST …/keys` and `…/activate` are documented).
            pub async fn post_empty(&self, path: &str) -> Reply {
                self.send(Method::POST, path, None).await
            }

            pub async fn put(&self, path: &str, body: &Value) -> Reply {
                self.send(Method::PUT, path, Some(body.to_string().into_bytes())).await
            }

            pub async fn delete(&self, path: &str) -> Reply {
                self.send(Method::DELETE, path, None).await
            }
        }
    };
}

keyed_api!(
    /// A partner key (`X-Partner-Key`) aimed at one server.
    PartnerApi, PARTNER_HEADER
);

impl PartnerApi {
    /// `GET /v1/partner/me`, which must answer 200; returns the body.
    pub async fn me(&self) -> Value {
        assert_ok(&self.get("/v1/partner/me").await).clone()
    }

    /// `POST /v1/partner/keys`, which must answer 201; returns this server with the new key.
    pub async fn new_key(&self) -> Self {
        let reply = self.post_empty("/v1/partner/keys").await;
        let key = str_field(assert_status(&reply, 201), "key");
        assert!(key.starts_with("pk_live_"), "{}", reply.text);
        self.with_key(key)
    }

    /// `usage.runsUsed` from `/me`.
    pub async fn runs_used(&self) -> i64 {
        let me = self.me().await;
        me["usage"]["runsUsed"].as_i64().unwrap_or_else(|| panic!("no usage.runsUsed in {me}"))
    }

    /// `GET /v1/partner/customers`, which must answer 200; returns the `customers` array.
    pub async fn customers(&self) -> Vec<Value> {
        let reply = self.get("/v1/partner/customers").await;
        array(assert_ok(&reply), "customers").clone()
    }

    /// `GET /v1/partner/assessments` (every run), which must answer 200; returns `runs`.
    pub async fn runs(&self) -> Vec<Value> {
        let reply = self.get("/v1/partner/assessments").await;
        array(assert_ok(&reply), "runs").clone()
    }

    /// Creates `count` customers in one `POST …/customers/bulk` (201, all created); returns
    /// their ids in order.
    pub async fn bulk_customers(&self, count: usize, label: &str) -> Vec<String> {
        let domain = label.to_lowercase().replace(' ', "-");
        let items: Vec<Value> = (0..count)
            .map(|i| {
                let (name, email) = (format!("{label} {i}"), format!("it{i}@{domain}.example"));
                json!({"name": name, "tenantId": tenant_guid(label, i), "email": email})
            })
            .collect();
        let reply = self.post("/v1/partner/customers/bulk", &json!({ "customers": items })).await;
        assert_eq!(reply.status, 201, "bulk create: {}", reply.text);
        assert_eq!(
            (reply.body["created"].as_u64(), reply.body["failed"].as_u64()),
            (Some(count as u64), Some(0)),
            "{}",
            reply.text
        );
        array(&reply.body, "customers").iter().map(|c| str_field(c, "id").to_owned()).collect()
    }

    /// Queues one `essential-eight` run for each id in one `POST …/assessments/bulk`, which must
    /// queue them all.
    pub async fn bulk_trigger_all(&self, customer_ids: &[String]) {
        let reply = self
            .post("/v1/partner/assessments/bulk", &json!({"product": "essential-eight", "customerIds": customer_ids}))
            .await;
        assert_eq!(reply.status, 202, "bulk trigger: {}", reply.text);
        assert_eq!(reply.body["queued"], customer_ids.len(), "{}", reply.text);
        assert_eq!(reply.body["failed"], 0, "{}", reply.text);
    }
}

/// Opens `count` pooled connections per the race's spread (`apis[i % len]`) with harmless
/// concurrent `GET /v1/partner/me`s, so that a race that follows reuses warm connections and its
/// requests reach the server together instead of staggered by TCP set-up.
pub async fn warm_up(apis: &[PartnerApi], count: usize) {
    let apis = apis.to_vec();
    let replies = partnerd_e2e::all_at_once(count, |i| {
        let api = apis[i % apis.len()].clone();
        async move { api.get("/v1/partner/me").await }
    })
    .await;
    for reply in &replies {
        assert_ok(reply);
    }
}

/// A distinct, well-formed tenant GUID for test customer `i` of `label`.
pub fn tenant_guid(label: &str, i: usize) -> String {
    let seed = label.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{seed:08x}-0000-4000-8000-{i:012x}")
}

/// `value[field]` as an array (panics otherwise).
#[track_caller]
pub fn array<'a>(value: &'a Value, field: &str) -> &'a Vec<Value> {
    value[field].as_array().unwrap_or_else(|| panic!("{field:?} is not an array in {value}"))
}

/// `value` is an object that has at least these keys (the reference's fields; the platform may
/// add its own, as the design allows).
#[track_caller]
pub fn assert_has_keys(value: &Value, expected: &[&str]) {
    let keys = keys_of(value);
    let missing: Vec<&&str> = expected.iter().filter(|k| !keys.contains(**k)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in {value}");
}

/// A `status` reply whose body is the JSON object it returns.
#[track_caller]
pub fn assert_status(reply: &Reply, status: u16) -> &Value {
    assert_eq!(reply.status, status, "expected {status}, got {}: {}", reply.status, reply.text);
    assert_json_content_type(reply);
    assert_request_id(reply);
    assert!(reply.body.is_object(), "body is not a JSON object: {}", reply.text);
    &reply.body
}

/// `204 No Content`, with nothing in the body.
#[track_caller]
pub fn assert_no_content(reply: &Reply) {
    assert_eq!(reply.status, 204, "expected 204, got {}: {}", reply.status, reply.text);
    assert!(reply.text.is_empty(), "a 204 has no body, got {:?}", reply.text);
    assert_request_id(reply);
}

/// A `429 RATE_LIMITED` in the reference's words: an integer `Retry-After` header that the
/// message repeats. Returns the seconds.
#[track_caller]
pub fn assert_rate_limited(reply: &Reply) -> u64 {
    let message = assert_error(reply, 429, "RATE_LIMITED");
    let header = reply.header("retry-after").unwrap_or_else(|| panic!("no Retry-After on a 429: {:?}", reply.headers));
    let secs: u64 = header.parse().unwrap_or_else(|_| panic!("Retry-After {header:?} is not an integer"));
    assert!(secs >= 1, "Retry-After {secs} tells the client to retry at once");
    assert_eq!(message, format!("Rate limit exceeded. Retry after {secs} seconds."), "the reference's message");
    secs
}

// ---------------------------------------------------------------------------------------------
// The Distributor API, as a client sees it
// ---------------------------------------------------------------------------------------------

/// Flags for a server where no per-key rate limit (partner or distributor) can get in the way.
pub const NO_RATE_LIMITS: [&str; 4] = ["--partner-rate-limit", "0", "--distributor-rate-limit", "0"];

/// `partnerd serve` with the partner and distributor rate limits off.
pub async fn serve_open(ctx: &Ctx) -> Server {
    Server::serve_with(ctx.url(), &NO_RATE_LIMITS).await
}

/// The reference's `POST /v1/distributor/partners` request body, exactly.
pub fn new_msp() -> Value {
    json!({
        "email": "admin@newmsp.com",
        "company": "New MSP Pty Ltd",
        "name": "Jane Smith",
        "plan": "professional",
        "billing": {"currency": "AUD", "interval": "quarterly"}
    })
}

/// The reference's `POST /v1/distributor/partners/bulk` request body, exactly.
pub fn msp_alpha_and_beta() -> Value {
    json!({"partners": [
        {
            "email": "admin@mspalpha.com",
            "company": "MSP Alpha",
            "name": "Alice Wong",
            "plan": "professional",
            "billing": {"currency": "AUD", "interval": "quarterly"}
        },
        {
            "email": "admin@mspbeta.com",
            "company": "MSP Beta",
            "name": "Bob Chen",
            "plan": "starter",
            "billing": {"currency": "USD", "interval": "quarterly"}
        }
    ]})
}

/// The reference's customer request body for the Distributor API (the Partner API's curl one).
pub fn contoso() -> Value {
    json!({
        "name": "Contoso Ltd",
        "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
        "email": "it@contoso.com",
        "receivers": ["ciso@contoso.com"],
        "questionnaireRecipients": ["ciso@contoso.com"]
    })
}

keyed_api!(
    /// A distributor key (`X-Distributor-Key`) aimed at one server.
    DistributorApi, DISTRIBUTOR_HEADER
);

impl DistributorApi {
    /// `GET /v1/distributor/me`, which must answer 200; returns the body.
    pub async fn me(&self) -> Value {
        assert_ok(&self.get("/v1/distributor/me").await).clone()
    }

    /// `GET /v1/distributor/partners{query}` (e.g. `?status=active`), which must answer 200;
    /// returns the `partners` array.
    pub async fn partners(&self, query: &str) -> Vec<Value> {
        let reply = self.get(&format!("/v1/distributor/partners{query}")).await;
        array(assert_ok(&reply), "partners").clone()
    }

    /// The ids in [`DistributorApi::partners`], sorted.
    pub async fn partner_ids(&self, query: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.partners(query).await.iter().map(|p| str_field(p, "id").to_owned()).collect();
        ids.sort();
        ids
    }

    /// `POST /v1/distributor/partners`, which must answer 201 with a pending partner; returns
    /// its id.
    pub async fn provision(&self, body: &Value) -> String {
        let reply = self.post("/v1/distributor/partners", body).await;
        let created = assert_status(&reply, 201);
        assert_eq!(created["status"], "pending", "{}", reply.text);
        str_field(created, "id").to_owned()
    }

    /// `POST …/partners/{id}/activate`, which must answer 200 with a fresh key (the partner had
    /// none); returns that key.
    pub async fn activate(&self, partner: &str) -> String {
        let reply = self.post_empty(&format!("/v1/distributor/partners/{partner}/activate")).await;
        let body = assert_ok(&reply);
        assert_eq!((&body["id"], &body["status"]), (&json!(partner), &json!("active")), "{}", reply.text);
        let key = str_field(body, "key");
        assert!(key.starts_with("pk_live_"), "{}", reply.text);
        key.to_owned()
    }

    /// `POST …/partners/{id}/suspend` with no body, which must answer 200.
    pub async fn suspend(&self, partner: &str) {
        let reply = self.post_empty(&format!("/v1/distributor/partners/{partner}/suspend")).await;
        assert_eq!(assert_ok(&reply)["status"], "suspended", "{}", reply.text);
    }

    /// `GET /v1/distributor/partners/{id}`, which must answer 200; returns the body.
    pub async fn partner(&self, partner: &str) -> Value {
        assert_ok(&self.get(&format!("/v1/distributor/partners/{partner}")).await).clone()
    }

    /// `GET /v1/distributor/usage{query}`, which must answer 200; returns the body.
    pub async fn usage(&self, query: &str) -> Value {
        assert_ok(&self.get(&format!("/v1/distributor/usage{query}")).await).clone()
    }

    /// `POST …/partners/{id}/customers` with `body`, which must answer 201; returns the id.
    pub async fn create_customer(&self, partner: &str, body: &Value) -> String {
        let reply = self.post(&format!("/v1/distributor/partners/{partner}/customers"), body).await;
        let created = assert_status(&reply, 201);
        assert_eq!(created["partnerId"], partner, "{}", reply.text);
        str_field(created, "id").to_owned()
    }

    /// `POST …/partners/{id}/assessments` for an `essential-eight` run of `customer`, which must
    /// answer 202; returns the run id.
    pub async fn trigger(&self, partner: &str, customer: &str) -> String {
        let reply = self
            .post(
                &format!("/v1/distributor/partners/{partner}/assessments"),
                &json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3}),
            )
            .await;
        let run = assert_status(&reply, 202);
        assert_eq!((&run["partnerId"], &run["status"]), (&json!(partner), &json!("queued")), "{}", reply.text);
        str_field(run, "id").to_owned()
    }
}

/// Like [`warm_up`], for distributor keys: concurrent `GET /v1/distributor/me`s.
pub async fn warm_up_distributors(apis: &[DistributorApi], count: usize) {
    let apis = apis.to_vec();
    let replies = partnerd_e2e::all_at_once(count, |i| {
        let api = apis[i % apis.len()].clone();
        async move { api.get("/v1/distributor/me").await }
    })
    .await;
    for reply in &replies {
        assert_ok(reply);
    }
}

/// A well-formed id of the same kind that names nothing: the last character changed.
pub fn unknown_like(id: &str) -> String {
    let (head, last) = id.split_at(id.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// `value[k] == expected[k]` for every key of `expected`.
#[track_caller]
pub fn assert_fields(value: &Value, expected: &Value) {
    for (k, v) in expected.as_object().expect("expected fields are an object") {
        assert_eq!(&value[k], v, "field {k:?} of {value}");
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/// How long a scenario waits for a webhook to arrive or a delivery to settle: generous, since
/// CI machines are small and every wait ends as soon as its condition holds.
pub const WEBHOOK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// `partnerd serve` with no rate limits, webhooks allowed to reach the loopback receiver, the
/// retry schedule `schedule` (e.g. `200ms,200ms`; empty: no retries) and `extra` flags.
pub async fn serve_webhooks(ctx: &Ctx, schedule: &str, extra: &[&str]) -> Server {
    let mut args: Vec<&str> = NO_RATE_LIMITS.to_vec();
    args.extend(["--webhook-allow-private", "--webhook-retry-schedule", schedule]);
    args.extend_from_slice(extra);
    Server::serve_with(ctx.url(), &args).await
}

/// One account's webhook settings and delivery log (`/v1/partner/webhook…` or
/// `/v1/distributor/webhook…`), through its key.
#[derive(Debug, Clone)]
pub struct Hooks {
    endpoint: Endpoint,
    header: &'static str,
    key: String,
    base: &'static str,
}

// Not every scenario uses every verb.
#[allow(dead_code)]
impl Hooks {
    pub fn partner(api: &PartnerApi) -> Self {
        Self {
            endpoint: api.endpoint.clone(),
            header: PARTNER_HEADER,
            key: api.key.clone(),
            base: "/v1/partner/webhook",
        }
    }

    pub fn distributor(api: &DistributorApi) -> Self {
        Self {
            endpoint: api.endpoint.clone(),
            header: DISTRIBUTOR_HEADER,
            key: api.key.clone(),
            base: "/v1/distributor/webhook",
        }
    }

    /// `method {base}{suffix}` with `body` as JSON.
    pub async fn send(&self, method: Method, suffix: &str, body: Option<&Value>) -> Reply {
        let body = body.map(|b| b.to_string().into_bytes());
        self.endpoint.send(method, &format!("{}{suffix}", self.base), &[(self.header, &self.key)], body).await
    }

    /// `method {base}{suffix}` with `body` sent as-is (as JSON).
    pub async fn send_raw(&self, method: Method, suffix: &str, body: &str) -> Reply {
        let body = Some(body.as_bytes().to_vec());
        self.endpoint.send(method, &format!("{}{suffix}", self.base), &[(self.header, &self.key)], body).await
    }

    /// `PUT …/webhook {"url": url}`.
    pub async fn put(&self, url: &str) -> Reply {
        self.send(Method::PUT, "", Some(&json!({ "url": url }))).await
    }

    /// The first `PUT …/webhook`: `200` with the URL, enabled, and a fresh `whsec_` secret (the
    /// standard base64 of 32 bytes), which is returned.
    pub async fn configure(&self, url: &str) -> String {
        let reply = self.put(url).await;
        let body = assert_ok(&reply);
        assert_eq!(body["url"], url, "{}", reply.text);
        assert_eq!(body["enabled"], true, "{}", reply.text);
        assert_timestamp(&body["createdAt"]);
        let secret = str_field(body, "secret");
        let encoded = secret.strip_prefix("whsec_").unwrap_or_else(|| panic!("secret {secret:?} lacks whsec_"));
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|e| panic!("secret {secret:?} is not whsec_ + standard base64: {e}"));
        assert_eq!(bytes.len(), 32, "a secret encodes 32 random bytes: {secret:?}");
        secret.to_owned()
    }

    /// `GET …/webhook`.
    pub async fn get(&self) -> Reply {
        self.send(Method::GET, "", None).await
    }

    /// `DELETE …/webhook`.
    pub async fn delete(&self) -> Reply {
        self.send(Method::DELETE, "", None).await
    }

    /// `POST …/webhook/rotate-secret`.
    pub async fn rotate(&self) -> Reply {
        self.send(Method::POST, "/rotate-secret", None).await
    }

    /// `POST …/webhook/deliveries/{event}/retry`.
    pub async fn retry(&self, event: &str) -> Reply {
        self.send(Method::POST, &format!("/deliveries/{event}/retry"), None).await
    }

    /// `POST …/webhook/replay` with `body`.
    pub async fn replay(&self, body: &Value) -> Reply {
        self.send(Method::POST, "/replay", Some(body)).await
    }

    /// `GET …/webhook/deliveries{query}`, which must answer 200; returns `deliveries`.
    pub async fn deliveries(&self, query: &str) -> Vec<Value> {
        let reply = self.send(Method::GET, &format!("/deliveries{query}"), None).await;
        array(assert_ok(&reply), "deliveries").clone()
    }

    /// The delivery of `event` in the log (first page of 100), if any.
    pub async fn delivery(&self, event: &str) -> Option<Value> {
        self.deliveries("?limit=100").await.into_iter().find(|d| d["eventId"] == event)
    }

    /// Polls the log until the delivery of `event` satisfies `pred`; returns it. Panics after
    /// [`WEBHOOK_WAIT`] with the last state seen.
    pub async fn wait_delivery(&self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WEBHOOK_WAIT;
        loop {
            let found = self.delivery(event).await;
            if let Some(delivery) = found.as_ref().filter(|d| pred(d)) {
                return delivery.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the delivery of {event} did not reach the expected state within {WEBHOOK_WAIT:?}; last seen: {found:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits until the delivery of `event` is `status` (`delivered` or `failed`); returns it.
    pub async fn wait_settled(&self, event: &str, status: &str) -> Value {
        self.wait_delivery(event, |d| d["status"] == status).await
    }
}

/// `received` carries valid signatures under `secret`, in both schemes: the Standard Webhooks
/// headers (checked against the time it arrived, 5 minutes' tolerance) and
/// `X-Baref00t-Signature`.
#[track_caller]
pub fn assert_signed(received: &partnerd_e2e::receiver::Received, secret: &str) {
    use partnerd_e2e::verifier::{verify_baref00t, verify_standard};
    let standard = verify_standard(secret, &received.headers, &received.body, received.unix_time, 300);
    assert_eq!(standard, Ok(()), "Standard Webhooks signature of {received:?}");
    let hex =
        received.header("x-baref00t-signature").unwrap_or_else(|| panic!("no X-Baref00t-Signature on {received:?}"));
    assert_eq!(verify_baref00t(secret, hex, &received.body), Ok(()), "X-Baref00t-Signature of {received:?}");
}

/// The event types of `received`, in arrival order.
pub fn event_types(received: &[partnerd_e2e::receiver::Received]) -> Vec<String> {
    received.iter().map(|r| str_field(&r.json(), "type").to_owned()).collect()
}

/// A partner (starter plan, no distributor) created with `admin`, and its webhook settings.
pub async fn webhook_partner(ctx: &Ctx, server: &Server, label: &str) -> (PartnerApi, Hooks) {
    let slug = label.to_lowercase().replace(' ', "-");
    let created = create_partner(ctx, label, &format!("ops@{slug}.example"), "starter", None).await;
    let api = PartnerApi::new(server, str_field(&created, "key"));
    let hooks = Hooks::partner(&api);
    (api, hooks)
}

/// `POST /v1/partner/customers` for customer `i` of `label`, which must answer 201; returns it.
pub async fn create_customer_as(api: &PartnerApi, label: &str, i: usize) -> Value {
    let slug = label.to_lowercase().replace(' ', "-");
    let body = json!({
        "name": format!("{label} {i}"),
        "tenantId": tenant_guid(label, i),
        "email": format!("it{i}@{slug}.example"),
    });
    let reply = api.post("/v1/partner/customers", &body).await;
    assert_status(&reply, 201).clone()
}

/// The requests in `received` whose event is about customer `id` (`data.customerId`).
pub fn about_customer(
    received: &[partnerd_e2e::receiver::Received],
    id: &str,
) -> Vec<partnerd_e2e::receiver::Received> {
    received.iter().filter(|r| r.json()["data"]["customerId"] == id).cloned().collect()
}
