use std::net::TcpListener;
use std::sync::Arc;

use partnerd_billing::LedgerBilling;
use partnerd_domain::account::{AccountStatus, Distributor, Partner};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::{Catalog, PlanId};
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::keys::{ApiKey, KeyKind};
use partnerd_domain::ports::{DistributorRepository, PartnerRepository};
use partnerd_domain::ports::{IdGenerator, KeyGenerator};
use partnerd_domain::services::{AuthService, ProfileService};
use partnerd_domain::testing::{FixedClock, InMemoryStore, SequentialIds};
use partnerd_domain::values::{BillingInterval, Currency, DisplayName, Email};
use partnerd_http::{AppState, HttpConfig, Ports};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

pub const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);

/// A running server over an in-memory store, and a client for it.
pub struct TestApp {
    pub base: String,
    pub store: Arc<InMemoryStore>,
    pub ids: SequentialIds,
    pub client: reqwest::Client,
    /// The server's clock: move it to cross a month or an hour.
    pub clock: Arc<FixedClock>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(HttpConfig::default()).await
    }

    pub async fn start_with(config: HttpConfig) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(FixedClock::at(NOW));
        let state = in_memory_state(store.clone(), clock.clone());
        Self { base: serve(state, config), store, ids: SequentialIds::default(), client: reqwest::Client::new(), clock }
    }

    /// As [`TestApp::start`], but with the services `build` makes over the app's store and
    /// clock: for tests that put a port of their own in front of the store.
    pub async fn start_over(build: impl FnOnce(Arc<InMemoryStore>, Arc<FixedClock>) -> AppState) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(FixedClock::at(NOW));
        let state = build(store.clone(), clock.clone());
        Self {
            base: serve(state, HttpConfig::default()),
            store,
            ids: SequentialIds::default(),
            client: reqwest::Client::new(),
            clock,
        }
    }

    pub async fn distributor(&self, status: AccountStatus) -> (Distributor, ApiKey) {
        let d = Distributor {
            id: DistributorId::generate(&self.ids),
            company: DisplayName::parse("Global Security Distribution").unwrap(),
            email: Email::parse("ops@globalsecdist.com").unwrap(),
            status,
            created_at: NOW,
        };
        let key = ApiKey::generate(KeyKind::Distributor, &self.ids);
        DistributorRepository::insert(&*self.store, &d, Some(key.hash())).await.unwrap();
        (d, key)
    }

    pub async fn partner(&self, distributor: Option<&DistributorId>, status: AccountStatus) -> (Partner, ApiKey) {
        let p = partner(&self.ids, distributor, status);
        let key = ApiKey::generate(KeyKind::Partner, &self.ids);
        PartnerRepository::insert(&*self.store, &p, Some(key.hash())).await.unwrap();
        (p, key)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, header: (&str, &str)) -> (u16, Value) {
        let res = self.client.get(self.url(path)).header(header.0, header.1).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }
}

pub fn partner(ids: &SequentialIds, distributor: Option<&DistributorId>, status: AccountStatus) -> Partner {
    Partner {
        id: PartnerId::generate(ids),
        distributor_id: distributor.cloned(),
        company: DisplayName::parse("Acme MSP").unwrap(),
        email: Email::parse("admin@acmemsp.com").unwrap(),
        name: DisplayName::parse("John Doe").unwrap(),
        status,
        subscription: Subscription::starting(
            PlanId::parse("professional").unwrap(),
            BillingInterval::Quarterly,
            Currency::Aud,
            NOW,
        ),
        created_at: NOW,
        updated_at: NOW,
    }
}

/// The services over one in-memory store, with a fixed clock.
pub fn in_memory_state(store: Arc<InMemoryStore>, clock: Arc<FixedClock>) -> AppState {
    let ids = Arc::new(ServerIds::default());
    AppState::over(Ports {
        billing: Arc::new(LedgerBilling::new(store.clone(), clock.clone())),
        store,
        catalog: Arc::new(Catalog::default()),
        clock,
        ids: ids.clone(),
        keys: ids,
        allow_private_webhooks: false,
    })
}

/// As [`in_memory_state`], but authentication and profiles over the given ports (mocks).
pub fn state_over(
    keys: Arc<dyn partnerd_domain::ports::KeyRepository>,
    partners: Arc<dyn PartnerRepository>,
    distributors: Arc<dyn DistributorRepository>,
) -> AppState {
    let clock = Arc::new(FixedClock::at(NOW));
    let mut state = in_memory_state(Arc::new(InMemoryStore::new()), clock.clone());
    state.auth = Arc::new(AuthService::new(keys));
    state.profiles = Arc::new(ProfileService::new(partners, distributors, state.catalog.clone(), clock));
    state
}

/// Starts the server on a free port and returns its base URL.
pub fn serve(state: AppState, config: HttpConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = partnerd_http::build(listener, state, HttpConfig { workers: Some(1), ..config }).unwrap();
    tokio::spawn(server);
    base
}

/// Asserts the reference error envelope with this code, and returns its message.
pub fn assert_error(body: &Value, code: &str) -> String {
    let error = body.get("error").unwrap_or_else(|| panic!("no error envelope in {body}"));
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!message.is_empty());
    message.to_owned()
}

/// The server's ids and keys: sequential like the test's own [`SequentialIds`] but marked in
/// their first byte, so a key the server generates can never equal one a test made.
#[derive(Default)]
pub struct ServerIds(SequentialIds);

impl IdGenerator for ServerIds {
    fn id_body(&self) -> [u8; 12] {
        let mut body = self.0.id_body();
        body[0] = 0x5e;
        body
    }
}

impl KeyGenerator for ServerIds {
    fn key_bytes(&self) -> [u8; 32] {
        let mut bytes = self.0.key_bytes();
        bytes[0] = 0x5e;
        bytes
    }
}

/// The reference's example customer (`POST /v1/partner/customers`).
pub fn contoso() -> Value {
    serde_json::json!({
        "name": "Contoso Ltd",
        "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
        "email": "it@contoso.com",
        "receivers": ["ciso@contoso.com", "it@contoso.com"],
        "questionnaireRecipients": ["ciso@contoso.com"],
    })
}

/// The reference's second bulk example customer.
pub fn fabrikam() -> Value {
    serde_json::json!({
        "name": "Fabrikam Inc",
        "tenantId": "a1b2c3d4-5678-9abc-def0-123456789abc",
        "email": "admin@fabrikam.com",
    })
}

/// A valid customer numbered `n`, with its own tenant GUID.
pub fn numbered_customer(n: usize) -> Value {
    serde_json::json!({"name": format!("Customer {n}"), "tenantId": format!("00000000-0000-0000-0000-{n:012}")})
}

/// A syntactically valid JSON object just over the 1 MiB body limit.
pub fn oversized_body() -> Vec<u8> {
    let body = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024)).into_bytes();
    assert!(body.len() > 1024 * 1024);
    body
}

/// A response: its status, headers, and JSON body (`Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and the envelope code; returns the message.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_error(&self.body, code)
    }

    /// Asserts a `400` with this code whose message names `field` (as `'field'`).
    #[track_caller]
    pub fn field_error(&self, code: &str, field: &str) {
        let message = self.error(400, code);
        assert!(message.contains(&format!("'{field}'")), "expected the field '{field}' to be named: {message}");
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("an ASCII header"))
    }
}

impl TestApp {
    /// A partner on `plan` with a subscription billed monthly in USD from 1 April 2026.
    pub async fn partner_on(&self, plan: &str) -> (Partner, ApiKey) {
        let start = datetime!(2026-04-01 00:00 UTC);
        self.partner_with(Subscription::starting(
            PlanId::parse(plan).unwrap(),
            BillingInterval::Monthly,
            Currency::Usd,
            start,
        ))
        .await
    }

    /// An active partner with this subscription.
    pub async fn partner_with(&self, subscription: Subscription) -> (Partner, ApiKey) {
        let p = Partner { subscription, ..partner(&self.ids, None, AccountStatus::Active) };
        let key = ApiKey::generate(KeyKind::Partner, &self.ids);
        PartnerRepository::insert(&*self.store, &p, Some(key.hash())).await.unwrap();
        (p, key)
    }

    /// A client that sends `key` in `X-Partner-Key`.
    pub fn as_partner(&self, key: &ApiKey) -> Caller<'_> {
        self.as_partner_key(key.reveal())
    }

    pub fn as_partner_key(&self, key: &str) -> Caller<'_> {
        Caller { app: self, header: "X-Partner-Key", key: key.to_owned() }
    }

    /// A client that sends `key` in `X-Distributor-Key`.
    pub fn as_distributor(&self, key: &ApiKey) -> Caller<'_> {
        self.as_distributor_key(key.reveal())
    }

    pub fn as_distributor_key(&self, key: &str) -> Caller<'_> {
        Caller { app: self, header: "X-Distributor-Key", key: key.to_owned() }
    }
}

/// Requests on behalf of one key (a partner's or a distributor's).
pub struct Caller<'a> {
    app: &'a TestApp,
    header: &'static str,
    key: String,
}

impl Caller<'_> {
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Reply {
        let mut req = self.app.client.request(method, self.app.url(path)).header(self.header, &self.key);
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, body.to_string()).await
    }

    /// Posts these exact bytes (malformed JSON, oversized bodies).
    pub async fn post_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body.into())).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.put_raw(path, body.to_string()).await
    }

    pub async fn put_raw(&self, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(body.into())).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// `GET /v1/partner/me`, asserting `200`.
    pub async fn me(&self) -> Value {
        let reply = self.get("/v1/partner/me").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// This month's `usage.runsUsed` from `/me`.
    pub async fn runs_used(&self) -> u64 {
        self.me().await["usage"]["runsUsed"].as_u64().unwrap()
    }

    /// `GET /v1/partner/customers`, asserting `200`.
    pub async fn customers(&self) -> Value {
        let reply = self.get("/v1/partner/customers").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// `GET /v1/partner/customers/{id}`, asserting `200`.
    pub async fn customer(&self, id: &str) -> Value {
        let reply = self.get(&format!("/v1/partner/customers/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// `GET /v1/partner/assessments`, asserting `200`.
    pub async fn runs(&self) -> Value {
        let reply = self.get("/v1/partner/assessments").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// Creates a customer, asserting `201`; returns its id.
    pub async fn create_customer(&self, body: &Value) -> String {
        let reply = self.post("/v1/partner/customers", body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Creates `n` numbered customers in one bulk request; returns their ids in order.
    pub async fn create_customers(&self, n: usize) -> Vec<String> {
        let items: Vec<Value> = (0..n).map(numbered_customer).collect();
        let reply = self.post("/v1/partner/customers/bulk", &serde_json::json!({"customers": items})).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.body["created"], n, "{}", reply.body);
        reply.body["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    }

    /// Triggers `product` for the customer, asserting `202`; returns the run id.
    pub async fn trigger(&self, customer_id: &str, product: &str) -> String {
        let body = serde_json::json!({"customerId": customer_id, "product": product});
        let reply = self.post("/v1/partner/assessments", &body).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }
}

/// `prefix` followed by 24 lower-case hex digits, as every id is.
#[track_caller]
pub fn assert_id(value: &Value, prefix: &str) -> String {
    let id = value.as_str().unwrap_or_else(|| panic!("not an id: {value}"));
    let body = id.strip_prefix(prefix).unwrap_or_else(|| panic!("{id} does not start with {prefix}"));
    assert!(body.len() == 24 && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
    id.to_owned()
}

/// No per-key request limits: for tests that send more requests than a minute's allowance.
pub fn no_rate_limits() -> HttpConfig {
    HttpConfig {
        rate_limits: partnerd_http::RateLimits { partner: 0, distributor: 0, worker: 0 },
        ..HttpConfig::default()
    }
}

/// The reference's example partner (`POST /v1/distributor/partners`).
pub fn new_msp() -> Value {
    serde_json::json!({
        "email": "admin@newmsp.com",
        "company": "New MSP Pty Ltd",
        "name": "Jane Smith",
        "plan": "professional",
        "billing": {"currency": "AUD", "interval": "quarterly"},
    })
}

/// The reference's first bulk example partner.
pub fn msp_alpha() -> Value {
    serde_json::json!({
        "email": "admin@mspalpha.com",
        "company": "MSP Alpha",
        "name": "Alice Wong",
        "plan": "professional",
        "billing": {"currency": "AUD", "interval": "quarterly"},
    })
}

/// The reference's second bulk example partner.
pub fn msp_beta() -> Value {
    serde_json::json!({
        "email": "admin@mspbeta.com",
        "company": "MSP Beta",
        "name": "Bob Chen",
        "plan": "starter",
        "billing": {"currency": "USD", "interval": "quarterly"},
    })
}

/// A valid partner numbered `n` on `plan`.
pub fn numbered_partner(n: usize, plan: &str) -> Value {
    serde_json::json!({
        "email": format!("admin@msp{n}.example.com"),
        "company": format!("MSP {n}"),
        "name": format!("Admin {n}"),
        "plan": plan,
        "billing": {"currency": "AUD"},
    })
}

impl Caller<'_> {
    /// Posts with no body at all (the reference's "no request body required").
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(reqwest::Method::POST, path, None).await
    }

    /// `POST /v1/distributor/partners`, asserting `201`; returns the new partner's id.
    pub async fn provision(&self, body: &Value) -> String {
        let reply = self.post("/v1/distributor/partners", body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/distributor/partners/{id}/activate`, asserting `200`; returns the key, if one came.
    pub async fn activate(&self, partner: &str) -> Option<String> {
        let reply = self.post_empty(&format!("/v1/distributor/partners/{partner}/activate")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body.get("key").map(|k| k.as_str().unwrap().to_owned())
    }

    /// Provisions `body` and activates it: the partner's id and its first key.
    pub async fn provision_active(&self, body: &Value) -> (String, String) {
        let id = self.provision(body).await;
        let key = self.activate(&id).await.expect("a first activation issues a key");
        (id, key)
    }

    /// `GET /v1/distributor/partners/{id}`, asserting `200`.
    pub async fn partner_detail(&self, partner: &str) -> Value {
        let reply = self.get(&format!("/v1/distributor/partners/{partner}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// `GET /v1/distributor/partners` (with `query`), asserting `200`: the listed ids in order.
    pub async fn partner_ids(&self, query: &str) -> Vec<String> {
        let reply = self.get(&format!("/v1/distributor/partners{query}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["partners"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
    }
}

impl TestApp {
    /// A worker named `name` with its first key, as `partnerd admin create-worker` makes one.
    pub async fn worker(&self, name: &str) -> (partnerd_domain::account::Worker, ApiKey) {
        let w = partnerd_domain::account::Worker {
            id: partnerd_domain::ids::WorkerId::generate(&self.ids),
            name: DisplayName::parse(name).unwrap(),
            created_at: NOW,
        };
        let key = ApiKey::generate(KeyKind::Worker, &self.ids);
        partnerd_domain::ports::WorkerRepository::insert(&*self.store, &w, key.hash()).await.unwrap();
        (w, key)
    }

    /// A client that sends `key` in `X-Worker-Key`.
    pub fn as_worker(&self, key: &ApiKey) -> Caller<'_> {
        self.as_worker_key(key.reveal())
    }

    pub fn as_worker_key(&self, key: &str) -> Caller<'_> {
        Caller { app: self, header: "X-Worker-Key", key: key.to_owned() }
    }

    /// A client that sends `key` in `header`, whatever kind of key it is.
    pub fn with_header(&self, header: &'static str, key: &str) -> Caller<'_> {
        Caller { app: self, header, key: key.to_owned() }
    }
}
