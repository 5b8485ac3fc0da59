//! A fake of the Stripe endpoints partnerd uses, on a free loopback port, stateful and strict.
//!
//! **Standalone** ([`FakeStripe::start`]) it serves, as Stripe does where partnerd relies on it:
//! - `POST /v1/customers`, `GET|DELETE /v1/customers/{id}` (deleting cancels the subscriptions);
//! - `GET /v1/plans/{id}` (404 `resource_missing`), `POST /v1/plans` (400
//!   `resource_already_exists` for a taken id);
//! - `POST /v1/subscriptions` (with `collection_method`/`days_until_due`, `backdate_start_date`,
//!   `billing_cycle_anchor`, `proration_behavior`), `GET|DELETE /v1/subscriptions/{id}`;
//! - `GET /v1/subscription_items/{id}`, `POST /v1/subscription_items/{id}` (`plan`,
//!   `proration_behavior`, `proration_date`, `metadata`);
//!
//! with bearer authentication (a 401 whose message echoes the key it was given, which the
//! adapter must not repeat), form bodies only, 400 for an unknown parameter, and idempotent
//! replay: a POST whose `Idempotency-Key` was seen with the same body gets the recorded answer,
//! with other parameters a 400 `idempotency_error`.
//!
//! **In front of localstripe** ([`FakeStripe::in_front_of`]) it serves only what localstripe
//! lacks: moving a subscription item to another plan with `proration_behavior` (localstripe
//! answers `POST /v1/subscription_items/{id}` with 400 and `POST /v1/subscriptions/{id}` with
//! `proration_behavior` with 500). So `GET|POST /v1/subscription_items/{id}` are served here —
//! an item is read from localstripe the first time, and a new plan must exist in localstripe —
//! and every other request is forwarded to localstripe as it came.
//!
//! Either way it records every request, and answers scripted [`Fault`]s first.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// What a scripted fault does to the next request it matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status, headers and JSON body without handling the request.
    Reply { status: u16, headers: Vec<(&'static str, String)>, body: Value },
    /// Handle the request (recording its idempotent result), then answer this status anyway:
    /// the answer was lost on the way, and the client must retry.
    ApplyThenFail(u16),
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Self::Reply { status, headers: vec![], body: json!({"error": {"type": "api_error", "message": "scripted"}}) }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self::Reply {
            status,
            headers: vec![],
            body: json!({"error": {"type": "invalid_request_error", "message": message}}),
        }
    }

    pub fn with_header(status: u16, name: &'static str, value: &str) -> Self {
        Self::Reply {
            status,
            headers: vec![(name, value.to_owned())],
            body: json!({"error": {"type": "rate_limit_error", "message": "scripted"}}),
        }
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body as form fields, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    pub fn is_post(&self) -> bool {
        self.method == "POST"
    }
}

pub struct FakeStripe {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    secret: String,
    upstream: Option<String>,
    http: reqwest::Client,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    faults: Vec<(String, String, Fault)>,
    customers: BTreeMap<String, Value>,
    plans: BTreeMap<String, Value>,
    subscriptions: BTreeMap<String, Value>,
    items: BTreeMap<String, Value>,
    /// Idempotency-Key → (method, path, body) of its first use and the answer given.
    replies: HashMap<String, (String, u16, Value)>,
    next_id: u64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_fake{:04}", self.next_id)
    }
}

impl FakeStripe {
    /// The standalone fake, accepting `secret` as the API key.
    pub fn start(secret: &str) -> Self {
        Self::launch(Shared::new(secret.to_owned(), None))
    }

    /// The fake in front of a Stripe-compatible server at `upstream` (localstripe).
    pub fn in_front_of(upstream: &str) -> Self {
        Self::launch(Shared::new(String::new(), Some(upstream.trim_end_matches('/').to_owned())))
    }

    fn launch(shared: Shared) -> Self {
        let shared = Arc::new(shared);
        let data = web::Data::from(Arc::clone(&shared));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fake-stripe".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let bound =
                        HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
                            .workers(1)
                            .disable_signals()
                            .bind(("127.0.0.1", 0));
                    let server = match bound {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let addr = server.addrs()[0];
                    let server = server.run();
                    let _ = tx.send(Ok((addr, server.handle())));
                    let _ = server.await;
                })
            })
            .expect("spawn the fake's thread");
        let (addr, server) = rx
            .recv()
            .expect("the fake's thread ended before binding")
            .unwrap_or_else(|e| panic!("bind the fake to 127.0.0.1:0: {e}"));
        Self { addr, shared, server, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request with this method whose path starts with `path` gets `fault`.
    /// Faults are used in the order they were added.
    pub fn fail_next(&self, method: &str, path: &str, fault: Fault) {
        self.shared.lock().faults.push((method.to_owned(), path.to_owned(), fault));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn posts(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(Recorded::is_post).collect()
    }

    pub fn customers(&self) -> Vec<Value> {
        self.shared.lock().customers.values().cloned().collect()
    }

    pub fn plans(&self) -> Vec<Value> {
        self.shared.lock().plans.values().cloned().collect()
    }

    pub fn subscriptions(&self) -> Vec<Value> {
        self.shared.lock().subscriptions.values().cloned().collect()
    }

    pub fn item(&self, id: &str) -> Option<Value> {
        self.shared.lock().items.get(id).cloned()
    }

    /// Forgets every idempotency key, as Stripe does after 24 hours (and localstripe always).
    pub fn forget_idempotency_keys(&self) {
        self.shared.lock().replies.clear();
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        drop(self.server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn new(secret: String, upstream: Option<String>) -> Self {
        let http = reqwest::Client::builder().build().expect("build the fake's forwarding client");
        Self { secret, upstream, http, state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request, read whole.
struct Incoming {
    method: String,
    path: String,
    segments: Vec<String>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    fn is_item_route(&self) -> bool {
        self.segments.len() == 3 && self.segments[0] == "v1" && self.segments[1] == "subscription_items"
    }
}

type Answer = (u16, Vec<(&'static str, String)>, Value);

async fn handle(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let incoming = Incoming {
        method: req.method().to_string(),
        path: req.uri().path_and_query().map_or_else(|| req.path().to_owned(), ToString::to_string),
        segments: req.path().trim_matches('/').split('/').map(str::to_owned).collect(),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let fault = {
        let mut state = shared.lock();
        let found = state
            .faults
            .iter()
            .position(|(method, path, _)| *method == incoming.method && incoming.path.starts_with(path.as_str()));
        found.map(|i| state.faults.remove(i).2)
    };
    let (status, headers, body) = match fault {
        Some(Fault::Reply { status, headers, body }) => (status, headers, body),
        Some(Fault::ApplyThenFail(status)) => {
            let _ = serve(&shared, &incoming).await;
            (status, vec![], json!({"error": {"type": "api_error", "message": "the answer was lost"}}))
        }
        None => serve(&shared, &incoming).await,
    };
    shared.lock().requests.push(Recorded {
        method: incoming.method,
        path: incoming.path,
        headers: incoming.headers,
        body: incoming.body,
        status,
    });
    let mut response = HttpResponse::build(StatusCode::from_u16(status).expect("a valid status"));
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    response.json(body)
}

/// Idempotent replay around the real work. Only standalone: in front of localstripe, requests
/// meet localstripe's own behaviour (which keeps no idempotency records).
async fn serve(shared: &Shared, incoming: &Incoming) -> Answer {
    if let Some(upstream) = &shared.upstream {
        return if incoming.is_item_route() {
            item_in_front(shared, upstream, incoming).await
        } else {
            forward(shared, upstream, incoming).await
        };
    }
    let key = (incoming.method == "POST").then(|| incoming.header("idempotency-key").map(str::to_owned)).flatten();
    let fingerprint = format!("{} {} {}", incoming.method, incoming.path, incoming.body);
    let recorded = key.as_ref().and_then(|key| shared.lock().replies.get(key).cloned());
    if let Some((first, status, body)) = recorded {
        if first != fingerprint {
            let message =
                "Keys for idempotent requests can only be used with the same parameters they were first used with.";
            return (400, vec![], json!({"error": {"type": "idempotency_error", "message": message}}));
        }
        return (status, vec![("Idempotent-Replayed", "true".to_owned())], body);
    }
    let (status, headers, body) = standalone(shared, incoming);
    if let Some(key) = key {
        shared.lock().replies.insert(key, (fingerprint, status, body.clone()));
    }
    (status, headers, body)
}

fn error(status: u16, message: &str) -> Answer {
    (status, vec![], json!({"error": {"type": "invalid_request_error", "message": message}}))
}

fn missing(kind: &str, id: &str) -> Answer {
    let body = json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": format!("No such {kind}: '{id}'")}});
    (404, vec![], body)
}

fn ok(body: Value) -> Answer {
    (200, vec![], body)
}

/// Refuses parameters outside `allowed` (a name ending in `[` allows any key under it).
fn unknown_parameter(form: &[(String, String)], allowed: &[&str]) -> Option<Answer> {
    let unknown = form
        .iter()
        .find(|(key, _)| !allowed.iter().any(|a| if a.ends_with('[') { key.starts_with(a) } else { key == a }))?;
    Some(error(400, &format!("Received unknown parameter: {}", unknown.0)))
}

fn metadata(form: &[(String, String)]) -> Value {
    let entries = form.iter().filter_map(|(key, value)| {
        let name = key.strip_prefix("metadata[")?.strip_suffix(']')?;
        Some((name.to_owned(), Value::String(value.clone())))
    });
    Value::Object(entries.collect())
}

fn standalone(shared: &Shared, incoming: &Incoming) -> Answer {
    let presented = incoming.header("authorization").unwrap_or("");
    if presented != format!("Bearer {}", shared.secret) {
        let key = presented.strip_prefix("Bearer ").unwrap_or(presented);
        return error(401, &format!("Invalid API key provided: {key}"));
    }
    if incoming.method == "POST" && incoming.header("content-type") != Some("application/x-www-form-urlencoded") {
        return error(400, "Invalid request: the body must be application/x-www-form-urlencoded");
    }
    let form = incoming.form();
    let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let mut state = shared.lock();
    let segments: Vec<&str> = incoming.segments.iter().map(String::as_str).collect();
    match (incoming.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "customers"]) => {
            if let Some(refused) = unknown_parameter(&form, &["description", "email", "name", "metadata["]) {
                return refused;
            }
            let id = state.id("cus");
            let customer = json!({"id": id, "object": "customer", "description": field("description"), "metadata": metadata(&form)});
            state.customers.insert(id, customer.clone());
            ok(customer)
        }
        ("GET", ["v1", "customers", id]) => {
            state.customers.get(*id).cloned().map_or_else(|| missing("customer", id), ok)
        }
        ("DELETE", ["v1", "customers", id]) => {
            if state.customers.remove(*id).is_none() {
                return missing("customer", id);
            }
            for subscription in state.subscriptions.values_mut().filter(|s| s["customer"] == *id) {
                subscription["status"] = json!("canceled");
            }
            ok(json!({"id": id, "object": "customer", "deleted": true}))
        }
        ("GET", ["v1", "plans", id]) => state.plans.get(*id).cloned().map_or_else(|| missing("plan", id), ok),
        ("POST", ["v1", "plans"]) => {
            let allowed =
                ["id", "amount", "currency", "interval", "interval_count", "product[name]", "nickname", "metadata["];
            if let Some(refused) = unknown_parameter(&form, &allowed) {
                return refused;
            }
            let amount = field("amount").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a >= 0);
            let interval = field("interval").filter(|i| ["day", "week", "month", "year"].contains(&i.as_str()));
            let count = field("interval_count").map_or(Some(1), |c| c.parse::<i64>().ok().filter(|c| *c >= 1));
            let (Some(amount), Some(currency), Some(interval), Some(count), Some(name)) =
                (amount, field("currency"), interval, count, field("product[name]"))
            else {
                return error(
                    400,
                    "Invalid plan: amount, currency, interval, interval_count and product[name] are required",
                );
            };
            let id = field("id").unwrap_or_else(|| state.id("plan"));
            if state.plans.contains_key(&id) {
                let body = json!({"error": {"type": "invalid_request_error", "code": "resource_already_exists", "message": "Plan already exists."}});
                return (400, vec![], body);
            }
            let product = state.id("prod");
            let plan = json!({"id": id, "object": "plan", "amount": amount, "currency": currency, "interval": interval,
                              "interval_count": count, "product": product, "nickname": name, "metadata": metadata(&form)});
            state.plans.insert(id, plan.clone());
            ok(plan)
        }
        ("POST", ["v1", "subscriptions"]) => {
            let allowed = [
                "customer",
                "items[0][plan]",
                "metadata[",
                "backdate_start_date",
                "billing_cycle_anchor",
                "proration_behavior",
                "collection_method",
                "days_until_due",
            ];
            if let Some(refused) = unknown_parameter(&form, &allowed) {
                return refused;
            }
            let Some(customer) = field("customer").filter(|c| state.customers.contains_key(c)) else {
                return error(400, "No such customer");
            };
            let Some(plan) = field("items[0][plan]").and_then(|p| state.plans.get(&p).cloned()) else {
                return error(400, "No such plan");
            };
            let collection = field("collection_method").unwrap_or_else(|| "charge_automatically".into());
            let days = field("days_until_due").and_then(|d| d.parse::<u32>().ok());
            match (collection.as_str(), days) {
                ("send_invoice", Some(_)) | ("charge_automatically", None) => {}
                _ => return error(400, "days_until_due goes with collection_method=send_invoice, and only with it"),
            }
            let start = field("backdate_start_date").and_then(|t| t.parse::<i64>().ok());
            let anchor = field("billing_cycle_anchor").and_then(|t| t.parse::<i64>().ok());
            if let (Some(start), Some(anchor)) = (start, anchor)
                && start >= anchor
            {
                return error(400, "billing_cycle_anchor must be after backdate_start_date");
            }
            let (id, item_id) = (state.id("sub"), state.id("si"));
            let item =
                json!({"id": item_id, "object": "subscription_item", "subscription": id, "plan": plan, "metadata": {}});
            let subscription = json!({
                "id": id, "object": "subscription", "customer": customer, "status": "active",
                "collection_method": collection, "days_until_due": days, "start_date": start,
                "billing_cycle_anchor": anchor, "metadata": metadata(&form),
                "items": {"object": "list", "data": [item]},
            });
            state.items.insert(item_id, item);
            state.subscriptions.insert(id, subscription.clone());
            ok(subscription)
        }
        ("GET", ["v1", "subscriptions", id]) => {
            state.subscriptions.get(*id).cloned().map_or_else(|| missing("subscription", id), ok)
        }
        ("DELETE", ["v1", "subscriptions", id]) => match state.subscriptions.get_mut(*id) {
            Some(subscription) => {
                subscription["status"] = json!("canceled");
                ok(subscription.clone())
            }
            None => missing("subscription", id),
        },
        ("GET", ["v1", "subscription_items", id]) => {
            state.items.get(*id).cloned().map_or_else(|| missing("subscription_item", id), ok)
        }
        ("POST", ["v1", "subscription_items", id]) => {
            let canceled = state.items.get(*id).and_then(|item| {
                let subscription = item["subscription"].as_str()?;
                Some(state.subscriptions.get(subscription)?["status"] == "canceled")
            });
            match canceled {
                None => return missing("subscription_item", id),
                Some(true) => return error(400, "The subscription is canceled"),
                Some(false) => {}
            }
            let plan = match field("plan") {
                Some(plan) => match state.plans.get(&plan) {
                    Some(plan) => Some(plan.clone()),
                    None => return error(400, &format!("No such plan: '{plan}'")),
                },
                None => None,
            };
            update_item(&mut state, id, &form, plan)
        }
        _ => error(404, &format!("Unrecognized request URL ({}: {})", incoming.method, incoming.path)),
    }
}

/// `POST /v1/subscription_items/{id}`'s parameters, checked, applied to a known item.
fn update_item(state: &mut State, id: &str, form: &[(String, String)], plan: Option<Value>) -> Answer {
    if let Some(refused) =
        unknown_parameter(form, &["plan", "quantity", "proration_behavior", "proration_date", "metadata["])
    {
        return refused;
    }
    let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    if let Some(behaviour) = field("proration_behavior")
        && !["create_prorations", "none", "always_invoice"].contains(&behaviour.as_str())
    {
        return error(400, &format!("Invalid proration_behavior: {behaviour}"));
    }
    if field("proration_date").is_some_and(|d| d.parse::<i64>().is_err()) {
        return error(400, "Invalid integer: proration_date");
    }
    let item = state.items.get_mut(id).expect("checked by the caller");
    if let Some(plan) = plan {
        item["plan"] = plan;
    }
    if let (Value::Object(current), Value::Object(new)) = (&mut item["metadata"], metadata(form)) {
        current.extend(new);
    }
    ok(item.clone())
}

/// In front of localstripe: the item routes it lacks, over its own state.
async fn item_in_front(shared: &Shared, upstream: &str, incoming: &Incoming) -> Answer {
    let id = incoming.segments[2].clone();
    let auth = incoming.header("authorization").unwrap_or("").to_owned();
    let known = shared.lock().items.contains_key(&id);
    if !known {
        let (status, _, item) = get_upstream(shared, upstream, &auth, &format!("/v1/subscription_items/{id}")).await;
        if status != 200 {
            return (status, vec![], item);
        }
        shared.lock().items.insert(id.clone(), item);
    }
    match incoming.method.as_str() {
        "GET" => ok(shared.lock().items[&id].clone()),
        "POST" => {
            let form = incoming.form();
            let plan = match form.iter().find(|(key, _)| key == "plan") {
                Some((_, plan)) => {
                    let (status, _, plan) = get_upstream(shared, upstream, &auth, &format!("/v1/plans/{plan}")).await;
                    if status != 200 {
                        return (status, vec![], plan);
                    }
                    Some(plan)
                }
                None => None,
            };
            update_item(&mut shared.lock(), &id, &form, plan)
        }
        _ => error(405, "Method not allowed"),
    }
}

async fn get_upstream(shared: &Shared, upstream: &str, auth: &str, path: &str) -> Answer {
    let incoming = Incoming {
        method: "GET".into(),
        path: path.to_owned(),
        segments: vec![],
        headers: vec![("authorization".into(), auth.to_owned())],
        body: String::new(),
    };
    forward(shared, upstream, &incoming).await
}

async fn forward(shared: &Shared, upstream: &str, incoming: &Incoming) -> Answer {
    let method = reqwest::Method::from_bytes(incoming.method.as_bytes()).expect("a valid method");
    let mut request = shared.http.request(method, format!("{upstream}{}", incoming.path));
    for name in ["authorization", "content-type", "idempotency-key"] {
        if let Some(value) = incoming.header(name) {
            request = request.header(name, value);
        }
    }
    let response = match request.body(incoming.body.clone()).send().await {
        Ok(response) => response,
        Err(e) => return error(502, &format!("forwarding to {upstream}: {e}")),
    };
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"error": {"type": "api_error", "message": String::from_utf8_lossy(&bytes)}}));
    (status, vec![], body)
}
