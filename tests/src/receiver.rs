//! A scriptable webhook endpoint on a free loopback port, for the black-box tests.
//!
//! [`Receiver`] records every request it gets (any method, any path) with its raw body, and
//! answers what a script says for each `webhook-id` and attempt number: a status, a status with a
//! header (`429` + `Retry-After`), a redirect, or a status after a delay. It runs an actix-web
//! server on its own thread (with its own runtime), so it works under any test runtime, and stops
//! it when dropped.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

/// Worker threads of the server: each handles thousands of connections concurrently.
const WORKERS: usize = 2;
/// Pending-connection queue of the listening socket (bursts of deliveries).
const BACKLOG: u32 = 4096;
/// How often [`Receiver::wait_for`] looks at what arrived.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many of the last requests a [`Receiver::wait_for`] timeout lists.
const SUMMARY_LINES: usize = 30;

/// What the receiver answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status with one header, e.g. `StatusWithHeader(429, "Retry-After", "30".into())`.
    StatusWithHeader(u16, &'static str, String),
    /// `307 Temporary Redirect` to this location (absolute, or a path on this receiver): a client
    /// that followed it would post the same body again, which the receiver would record.
    Redirect(String),
    /// This status, after waiting this long (the request is recorded on arrival).
    Delay(Duration, u16),
}

impl Reply {
    /// The status this reply sends.
    pub fn status(&self) -> u16 {
        match self {
            Self::Status(status) | Self::StatusWithHeader(status, ..) | Self::Delay(_, status) => *status,
            Self::Redirect(_) => StatusCode::TEMPORARY_REDIRECT.as_u16(),
        }
    }
}

/// One request the receiver got.
#[derive(Clone)]
pub struct Received {
    /// When it arrived (body read whole).
    pub at: Instant,
    /// When it arrived, in unix seconds (for [`verify_standard`](crate::verifier::verify_standard)'s `now_unix`).
    pub unix_time: i64,
    pub method: String,
    /// The path and query, e.g. `/hook`.
    pub path: String,
    /// Every header in arrival order, names in lowercase (a repeated header appears repeatedly).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte (never decompressed).
    pub body: Vec<u8>,
    /// 1 for the first request carrying its `webhook-id`, 2 for the next, … (requests without
    /// one count under the empty id).
    pub attempt: u32,
    /// The status the receiver answered (or, for [`Reply::Delay`], answers once the delay is over).
    pub status_sent: u16,
}

impl Received {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `webhook-id` header (panics when absent).
    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").unwrap_or_else(|| panic!("the request has no webhook-id header: {self:?}"))
    }
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("attempt", &self.attempt)
            .field("status_sent", &self.status_sent)
            .field("unix_time", &self.unix_time)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// A webhook endpoint at [`Receiver::url`], stopped when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

type Script = dyn Fn(&str, u32) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// In arrival order.
    received: Vec<Received>,
    attempts: HashMap<String, u32>,
    /// Script panics and invalid statuses (answered with 500), reported by `wait_for`.
    script_errors: Vec<String>,
}

impl Receiver {
    /// A receiver that answers `200` to everything.
    pub fn start() -> Self {
        Self::start_with(|_, _| Reply::Status(200))
    }

    /// A receiver that answers `script(webhook_id, attempt)`, `attempt` counting from 1 for each
    /// `webhook-id`. A script that panics or names an invalid status gets `500` sent, and makes
    /// the next [`Receiver::wait_for`] panic.
    pub fn start_with(script: impl Fn(&str, u32) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared { script: Box::new(script), state: Mutex::default() });
        let data = web::Data::from(Arc::clone(&shared));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let bound =
                        HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
                            .workers(WORKERS)
                            .backlog(BACKLOG)
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
            .expect("spawn the receiver's thread");
        let (addr, server) = rx
            .recv()
            .expect("the receiver's thread ended before binding")
            .unwrap_or_else(|e| panic!("bind the receiver to 127.0.0.1:0: {e}"));
        Self { addr, shared, server, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// The requests so far whose `webhook-id` is `id`, in arrival order.
    pub fn for_event(&self, id: &str) -> Vec<Received> {
        let state = self.shared.lock();
        state.received.iter().filter(|r| r.header("webhook-id") == Some(id)).cloned().collect()
    }

    /// Waits until `pred` holds for the requests so far (in arrival order) and returns them;
    /// looks every 20 ms. Panics after `timeout`, listing what arrived, or as soon as the script
    /// has failed.
    pub async fn wait_for(&self, pred: impl Fn(&[Received]) -> bool, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            {
                let state = self.shared.lock();
                if !state.script_errors.is_empty() {
                    let errors = state.script_errors.join("\n");
                    drop(state);
                    panic!("the receiver's script failed:\n{errors}");
                }
                // Requests are only ever appended: copy the new ones.
                seen.extend_from_slice(&state.received[seen.len()..]);
            }
            if pred(&seen) {
                return seen;
            }
            if Instant::now() >= deadline {
                panic!("{}", timeout_message(timeout, &seen));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only reports completion, which
        // joining the thread (whose server then returns) observes as well.
        drop(self.server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a request and decides its reply.
    fn record(&self, req: &HttpRequest, body: Vec<u8>) -> Reply {
        let at = Instant::now();
        let unix_time = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970").as_secs();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let id = headers.iter().find(|(name, _)| name == "webhook-id").map(|(_, v)| v.clone()).unwrap_or_default();

        let mut state = self.lock();
        let attempt = *state.attempts.entry(id.clone()).and_modify(|n| *n += 1).or_insert(1);
        let reply = match catch_unwind(AssertUnwindSafe(|| (self.script)(&id, attempt))) {
            Ok(reply) if StatusCode::from_u16(reply.status()).is_ok() => reply,
            Ok(reply) => {
                state.script_errors.push(format!("script({id:?}, {attempt}) returned {reply:?}: not a valid status"));
                Reply::Status(500)
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                state.script_errors.push(format!("script({id:?}, {attempt}) panicked: {message}"));
                Reply::Status(500)
            }
        };
        state.received.push(Received {
            at,
            unix_time: i64::try_from(unix_time).expect("unix time fits in i64"),
            method: req.method().to_string(),
            path: req.uri().path_and_query().map_or_else(|| req.path().to_owned(), ToString::to_string),
            headers,
            body,
            attempt,
            status_sent: reply.status(),
        });
        reply
    }
}

/// Every request, whatever its method and path.
async fn handle(req: HttpRequest, payload: web::Payload, shared: web::Data<Shared>) -> HttpResponse {
    // `Payload::to_bytes` keeps the bytes as sent (no Content-Encoding decoding, no size limit).
    let body = match payload.to_bytes().await {
        Ok(body) => body.to_vec(),
        Err(e) => return HttpResponse::BadRequest().body(format!("reading the body: {e}")),
    };
    let reply = shared.record(&req, body);
    let status = |code| StatusCode::from_u16(code).expect("checked by Shared::record");
    match reply {
        Reply::Status(code) => HttpResponse::build(status(code)).finish(),
        Reply::StatusWithHeader(code, name, value) => {
            HttpResponse::build(status(code)).insert_header((name, value)).finish()
        }
        Reply::Redirect(location) => HttpResponse::TemporaryRedirect().insert_header((LOCATION, location)).finish(),
        Reply::Delay(delay, code) => {
            actix_web::rt::time::sleep(delay).await;
            HttpResponse::build(status(code)).finish()
        }
    }
}

fn timeout_message(timeout: Duration, received: &[Received]) -> String {
    let skipped = received.len().saturating_sub(SUMMARY_LINES);
    let mut message = format!(
        "the webhook receiver's condition did not hold within {timeout:?}; {} request(s) arrived{}",
        received.len(),
        if skipped > 0 { format!(", the last {SUMMARY_LINES}:") } else { ":".to_owned() }
    );
    for r in &received[skipped..] {
        message.push_str(&format!(
            "\n  {} {} webhook-id={:?} attempt={} -> {} body={}",
            r.method,
            r.path,
            r.header("webhook-id").unwrap_or(""),
            r.attempt,
            r.status_sent,
            String::from_utf8_lossy(&r.body).chars().take(200).collect::<String>(),
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .unwrap()
    }

    async fn post(client: &reqwest::Client, url: &str, id: &str, body: &[u8]) -> reqwest::Response {
        client.post(url).header("webhook-id", id).body(body.to_vec()).send().await.unwrap()
    }

    #[tokio::test]
    async fn records_requests_exactly_and_answers_200_by_default() {
        let receiver = Receiver::start();
        assert!(receiver.url().starts_with("http://127.0.0.1:") && receiver.url().ends_with("/hook"));
        let body = b"{\"id\":\"evt_1\"}\n\x00\xff not UTF-8, not gzip".to_vec();
        let response = client()
            .post(receiver.url())
            .header("Webhook-Id", "evt_1")
            .header("Content-Encoding", "gzip")
            .header("X-Twice", "a")
            .header("X-Twice", "b")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let all = receiver.received();
        assert_eq!(all.len(), 1);
        let r = &all[0];
        assert_eq!((r.method.as_str(), r.path.as_str(), r.attempt, r.status_sent), ("POST", "/hook", 1, 200));
        assert_eq!(r.body, body);
        assert_eq!(r.webhook_id(), "evt_1");
        assert_eq!(r.header("WEBHOOK-ID"), Some("evt_1"));
        assert!(r.headers.iter().all(|(name, _)| *name == name.to_lowercase()));
        let twice: Vec<_> = r.headers.iter().filter(|(n, _)| n == "x-twice").map(|(_, v)| v.as_str()).collect();
        assert_eq!(twice, ["a", "b"]);
        assert!((before - r.unix_time).abs() <= 1);

        client().post(format!("{}?x=1", receiver.url())).body(r#"{"a": [1, 2]}"#).send().await.unwrap();
        let second = &receiver.received()[1];
        assert_eq!(second.path, "/hook?x=1");
        assert_eq!(second.json(), serde_json::json!({"a": [1, 2]}));
        assert_eq!(second.header("webhook-id"), None);
    }

    #[tokio::test]
    async fn recorded_requests_feed_the_verifier() {
        use crate::verifier::{verify_baref00t, verify_standard};
        // The Standard Webhooks test vector, and its X-Baref00t-Signature computed with Python.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let receiver = Receiver::start();
        client()
            .post(receiver.url())
            .header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
            .header("webhook-timestamp", "1614265330")
            .header("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
            .header("X-Baref00t-Signature", "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c")
            .body(r#"{"test": 2432232314}"#)
            .send()
            .await
            .unwrap();
        let r = &receiver.received()[0];
        assert_eq!(verify_standard(secret, &r.headers, &r.body, 1_614_265_330, 300), Ok(()));
        assert_eq!(verify_baref00t(secret, r.header("x-baref00t-signature").unwrap(), &r.body), Ok(()));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn applies_the_script_per_id_and_attempt() {
        let receiver = Receiver::start_with(|id, attempt| match (id, attempt) {
            ("evt_a", 1) => Reply::Status(500),
            ("evt_a", 2) => Reply::StatusWithHeader(429, "Retry-After", "7".into()),
            ("evt_b", _) => Reply::Redirect("/elsewhere".into()),
            _ => Reply::Status(204),
        });
        let client = client();
        let url = receiver.url();
        let mut statuses = Vec::new();
        for id in ["evt_a", "evt_b", "evt_a", "evt_a", "evt_b", "evt_a"] {
            let response = post(&client, &url, id, id.as_bytes()).await;
            let header = |name| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            statuses.push((response.status().as_u16(), header("retry-after"), header("location")));
        }
        let s =
            |code, retry: Option<&str>, location: Option<&str>| (code, retry.map(Into::into), location.map(Into::into));
        assert_eq!(
            statuses,
            [
                s(500, None, None),
                s(307, None, Some("/elsewhere")),
                s(429, Some("7"), None),
                s(204, None, None),
                s(307, None, Some("/elsewhere")),
                s(204, None, None),
            ]
        );

        let a: Vec<_> = receiver.for_event("evt_a").iter().map(|r| (r.attempt, r.status_sent)).collect();
        assert_eq!(a, [(1, 500), (2, 429), (3, 204), (4, 204)]);
        let b: Vec<_> = receiver.for_event("evt_b").iter().map(|r| (r.attempt, r.status_sent)).collect();
        assert_eq!(b, [(1, 307), (2, 307)]);
        assert!(receiver.for_event("evt_c").is_empty());
        assert!(receiver.received().windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn delays_record_on_arrival_and_answer_later() {
        let receiver = Receiver::start_with(|_, _| Reply::Delay(Duration::from_millis(500), 202));
        let (client, url) = (client(), receiver.url());
        let started = Instant::now();
        let request = tokio::spawn(async move { post(&client, &url, "evt_slow", b"{}").await.status().as_u16() });
        let seen = receiver.wait_for(|r| !r.is_empty(), TIMEOUT).await;
        assert_eq!(seen[0].status_sent, 202);
        assert!(!request.is_finished(), "the answer waits for the delay");
        assert_eq!(request.await.unwrap(), 202);
        assert!(started.elapsed() >= Duration::from_millis(500));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn takes_thousands_of_concurrent_deliveries() {
        const COUNT: usize = 3000;
        let receiver =
            Receiver::start_with(|id, _| if id.ends_with('7') { Reply::Status(503) } else { Reply::Status(200) });
        let client = client();
        // Bounded so the test also passes under a low open-files limit.
        let permits = Arc::new(tokio::sync::Semaphore::new(400));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..COUNT {
            let (client, url, permits) = (client.clone(), receiver.url(), Arc::clone(&permits));
            tasks.spawn(async move {
                let _permit = permits.acquire().await.unwrap();
                let body = format!(r#"{{"id":"evt_{i}","data":{{"n":{i}}}}}"#);
                let status = post(&client, &url, &format!("evt_{i}"), body.as_bytes()).await.status();
                assert_eq!(status, if i % 10 == 7 { 503 } else { 200 });
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        let all = receiver.wait_for(|r| r.len() == COUNT, TIMEOUT).await;
        let mut ids: Vec<_> = all.iter().map(|r| r.webhook_id().to_owned()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), COUNT);
        for r in &all {
            assert_eq!(r.attempt, 1);
            assert_eq!(r.json()["id"], r.webhook_id());
        }
    }

    #[tokio::test]
    #[should_panic(
        expected = "did not hold within 100ms; 1 request(s) arrived:\n  POST /hook webhook-id=\"evt_1\" attempt=1 -> 200"
    )]
    async fn wait_for_explains_a_timeout() {
        let receiver = Receiver::start();
        post(&client(), &receiver.url(), "evt_1", b"{}").await;
        receiver.wait_for(|r| r.len() == 2, Duration::from_millis(100)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "the receiver's script failed:\nscript(\"evt_1\", 1) panicked: no reply for evt_1")]
    async fn wait_for_reports_a_failed_script() {
        let receiver = Receiver::start_with(|id, _| panic!("no reply for {id}"));
        let response = post(&client(), &receiver.url(), "evt_1", b"{}").await;
        assert_eq!(response.status(), 500);
        receiver.wait_for(|_| true, TIMEOUT).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn drop_does_not_wait_for_delayed_replies() {
        let receiver = Receiver::start_with(|_, _| Reply::Delay(Duration::from_secs(60), 200));
        let (client, url) = (client(), receiver.url());
        let request = tokio::spawn(async move { client.post(url).body("{}").send().await });
        receiver.wait_for(|r| !r.is_empty(), TIMEOUT).await;
        let started = Instant::now();
        drop(receiver);
        assert!(started.elapsed() < Duration::from_secs(5), "dropping took {:?}", started.elapsed());
        assert!(request.await.unwrap().is_err(), "the delayed request is cut off");
    }

    #[tokio::test]
    async fn stops_when_dropped() {
        let receiver = Receiver::start();
        let url = receiver.url();
        assert_eq!(post(&client(), &url, "evt_1", b"{}").await.status(), 200);
        drop(receiver);
        let error = client().post(&url).body("{}").send().await.expect_err("nothing listens any more");
        assert!(error.is_connect(), "{error:?}");
    }
}
