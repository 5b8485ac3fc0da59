//! The HTTP side of the Stripe-compatible adapter: bearer authentication, form-encoded POST
//! bodies each with an `Idempotency-Key`, retries with capped exponential backoff, and Stripe's
//! error JSON read into a [`CallError`]. The secret key lives in one header value marked
//! sensitive, and every message this module produces is scrubbed of it.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Stripe's own hint on whether a failed request may be retried; it overrides the status.
const SHOULD_RETRY: &str = "stripe-should-retry";
const REDACTED: &str = "[redacted]";

/// Form fields in order, as `key=value` pairs (`items[0][plan]`, `metadata[k]`: Stripe's
/// bracketed names for nested parameters).
pub(super) type Form = Vec<(&'static str, String)>;

/// Why a call did not succeed.
#[derive(Debug)]
pub(super) enum CallError {
    /// The provider answered, definitively, with a 4xx other than 429: its status and its error
    /// object's `code` and `message`.
    Refused { status: u16, code: Option<String>, message: String },
    /// No usable answer: connection errors, timeouts, 429 and 5xx after the retries, a body
    /// that is not JSON.
    Failed(String),
}

/// Attempts after the first, and the waits between them.
#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first): `initial × 2^retry`, at most
    /// `max_backoff`.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
        self.initial_backoff.checked_mul(factor).map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }
}

pub(super) struct Client {
    http: reqwest::Client,
    /// Ends with `/`, so joined paths keep any prefix it has.
    base: Url,
    auth: HeaderValue,
    secret: String,
    retry: RetryPolicy,
}

/// What one attempt came to.
enum Attempt {
    Done(Value),
    Stop(CallError),
    Retry { reason: String, after: Option<Duration> },
}

impl Client {
    pub(super) fn new(base: Url, secret: &str, timeout: Duration, retry: RetryPolicy) -> Result<Self, String> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| "the secret key has characters an HTTP header cannot carry".to_owned())?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Stripe never redirects; following one could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the HTTP client: {}", chain(&e)))?;
        Ok(Self { http, base, auth, secret: secret.to_owned(), retry })
    }

    pub(super) async fn get(&self, path: &[&str]) -> Result<Value, CallError> {
        self.call(Method::GET, path, None).await
    }

    pub(super) async fn delete(&self, path: &[&str]) -> Result<Value, CallError> {
        self.call(Method::DELETE, path, None).await
    }

    /// A POST with a form body. Every attempt sends the same body under the same
    /// `idempotency_key`, so a request the provider already carried out is answered from its
    /// record instead of being done twice.
    pub(super) async fn post(&self, path: &[&str], form: &Form, idempotency_key: &str) -> Result<Value, CallError> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter()).finish();
        self.call(Method::POST, path, Some((body, idempotency_key))).await
    }

    async fn call(&self, method: Method, path: &[&str], body: Option<(String, &str)>) -> Result<Value, CallError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| CallError::Failed("the API base cannot have a path".into()))?
            .pop_if_empty()
            .extend(path);
        let mut retry = 0;
        loop {
            let mut request = self.http.request(method.clone(), url.clone()).header(AUTHORIZATION, self.auth.clone());
            if let Some((body, key)) = &body {
                request = request
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("Idempotency-Key", *key)
                    .body(body.clone());
            }
            let attempt = match request.send().await {
                Ok(response) => self.read(response).await,
                Err(e) => Attempt::Retry { reason: self.scrub(&chain(&e)), after: None },
            };
            let (reason, after) = match attempt {
                Attempt::Done(value) => return Ok(value),
                Attempt::Stop(e) => return Err(e),
                Attempt::Retry { reason, after } => (reason, after),
            };
            let what = format!("{method} {}", url.path());
            if retry >= self.retry.max_retries {
                return Err(CallError::Failed(format!("{what}: {reason} (gave up after {} attempts)", retry + 1)));
            }
            let wait = match after {
                Some(after) if after > self.retry.max_backoff => {
                    return Err(CallError::Failed(format!(
                        "{what}: {reason}; asked to retry after {}s, longer than the {}s partnerd waits",
                        after.as_secs(),
                        self.retry.max_backoff.as_secs()
                    )));
                }
                Some(after) => after,
                None => self.retry.backoff(retry),
            };
            tracing::warn!(call = %what, reason = %reason, retry = retry + 1, wait_ms = wait.as_millis() as u64, "billing provider call failed; retrying");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    async fn read(&self, response: reqwest::Response) -> Attempt {
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            // The request may have been carried out: retrying is safe (same key).
            Err(e) => return Attempt::Retry { reason: self.scrub(&chain(&e)), after: None },
        };
        if status.is_success() {
            return match serde_json::from_slice(&body) {
                Ok(value) => Attempt::Done(value),
                Err(e) => Attempt::Stop(CallError::Failed(format!("HTTP {status}, but the body is not JSON: {e}"))),
            };
        }
        let (code, message) = error_object(&body);
        let message = self.scrub(&message.unwrap_or_else(|| format!("HTTP {status}")));
        let retryable = match headers.get(SHOULD_RETRY).and_then(|v| v.to_str().ok()) {
            Some("true") => true,
            Some("false") => false,
            _ => status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
        };
        if retryable {
            return Attempt::Retry { reason: format!("HTTP {status}: {message}"), after: retry_after(&headers) };
        }
        if status.is_client_error() {
            return Attempt::Stop(CallError::Refused { status: status.as_u16(), code, message });
        }
        Attempt::Stop(CallError::Failed(format!("HTTP {status}: {message}")))
    }

    /// `text` with every occurrence of the secret key replaced.
    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secret)
    }
}

pub(super) fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() { text.to_owned() } else { text.replace(secret, REDACTED) }
}

/// Stripe's `{"error": {"code", "message", …}}`, whichever parts are there.
fn error_object(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return (None, None) };
    let field = |name: &str| value.pointer(&format!("/error/{name}")).and_then(Value::as_str).map(str::to_owned);
    (field("code"), field("message"))
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past is no wait).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// An error with its sources, `outer: inner: …`.
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 40,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        };
        let waits: Vec<u128> = (0..8).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(policy.backoff(40), Duration::from_secs(5), "no overflow however many retries");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            h
        };
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO), "a past date");
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = retry_after(&headers(&later)).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_objects_give_their_code_and_message() {
        let body =
            br#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such plan: 'x'"}}"#;
        assert_eq!(error_object(body), (Some("resource_missing".into()), Some("No such plan: 'x'".into())));
        assert_eq!(error_object(br#"{"error":{"message":"Conflict"}}"#), (None, Some("Conflict".into())));
        assert_eq!(error_object(b"<html>bad gateway</html>"), (None, None));
    }

    #[test]
    fn scrubbing_removes_every_occurrence_of_the_secret() {
        assert_eq!(scrub("key sk_test_1 and sk_test_1 again", "sk_test_1"), "key [redacted] and [redacted] again");
        assert_eq!(scrub("nothing to hide", ""), "nothing to hide");
    }
}
