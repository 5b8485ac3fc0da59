//! Per-request context: a request id (the caller's `X-Request-Id` when well-formed, else a new
//! one) in a tracing span and a response header; one log line per request with method, path,
//! status and latency — never headers, so keys cannot reach the log; 5xx bodies replaced by an
//! opaque envelope that carries the request id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use tracing::Instrument;

use crate::HttpConfig;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::MAX_BODY_BYTES;
use crate::rate_limit::RateLimitStatus;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `req_` + 16 hex digits: the process start time mixed with a counter. Unique per process
/// run, which is what a log search needs; not a secret.
fn new_request_id() -> String {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        (nanos as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id())
    });
    format!("req_{:016x}", start.wrapping_add(SEQUENCE.fetch_add(1, Ordering::Relaxed)))
}

fn inbound_request_id(req: &ServiceRequest) -> Option<String> {
    let raw = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let ok =
        !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| raw.to_owned())
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = inbound_request_id(&req).unwrap_or_else(new_request_id);
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let idle_poll = req.path().ends_with("/worker/runs/claim");
    let outcome = next.call(req).instrument(span.clone()).await;
    let mut res = match outcome {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => return Err(e),
    };
    let status = res.status();
    span.in_scope(|| {
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), latency_ms, "request finished");
        } else if status == StatusCode::NO_CONTENT && idle_poll {
            // A worker's empty claim: one a second per idle worker is noise at `info`.
            tracing::debug!(status = status.as_u16(), latency_ms, "request finished");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    if status.is_server_error() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: "INTERNAL".to_owned(),
                message: format!("Internal server error. Quote request id {request_id} when reporting it."),
                request_id: Some(request_id.clone()),
            },
        };
        let (req, _) = res.into_parts();
        res = ServiceResponse::new(req, HttpResponse::build(status).json(body));
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let rate = res.request().extensions().get::<RateLimitStatus>().copied();
    // A 429 that is not the key's own rate (the hourly plan-change allowance) must not carry
    // headers that say the key has requests left.
    if let Some(rate) = rate
        && !res.headers().contains_key("ratelimit")
        && res.status() != actix_web::http::StatusCode::TOO_MANY_REQUESTS
    {
        for (name, value) in [("ratelimit-policy", rate.policy_header()), ("ratelimit", rate.header())] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(HeaderName::from_static(name), value);
            }
        }
    }
    Ok(res)
}

/// Refuses a body declared larger than [`MAX_BODY_BYTES`] on every route, including those that
/// take no body, before any handler runs.
pub async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let (req, _) = req.into_parts();
        let res = actix_web::ResponseError::error_response(&ApiError::payload_too_large(MAX_BODY_BYTES));
        return Ok(ServiceResponse::new(req, res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// With `--require-https`, refuses requests whose `X-Forwarded-Proto` is not `https` (TLS ends
/// at the proxy in front of partnerd).
pub async fn require_https(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let required = req.app_data::<web::Data<HttpConfig>>().is_some_and(|c| c.require_https);
    let forwarded_https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if required && !forwarded_https {
        let (req, _) = req.into_parts();
        let res = actix_web::ResponseError::error_response(&ApiError::https_required());
        return Ok(ServiceResponse::new(req, res));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
