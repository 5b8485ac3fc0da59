//! The one place errors become HTTP: every failure is an [`ApiError`], rendered in the reference
//! envelope `{"error": {"code", "message"}}`. 5xx bodies say nothing about the cause; the request
//! middleware stamps them with the request id, and the cause chain goes to the log.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};
use partnerd_domain::ports::InfraError;
use partnerd_domain::services::{
    AssessmentError, AuthError, CustomerError, DistributorError, InvoiceError, KeyError, PlanChangeError, ProfileError,
    ReportError, WebhookError, WorkerError,
};
use partnerd_domain::values::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::rate_limit::RateLimitStatus;

/// The reference error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `INVALID_KEY`.
    #[schema(example = "NOT_FOUND")]
    pub code: String,
    /// Human-readable description.
    pub message: String,
    /// Present on 5xx responses: quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// For `429`: the `Retry-After` seconds and the key's `RateLimit` state, if known.
    retry_after: Option<u64>,
    rate_limit: Option<RateLimitStatus>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, rate_limit: None }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// `429 RATE_LIMITED` in the reference's words, with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("Rate limit exceeded. Retry after {retry_after_secs} seconds."),
            )
        }
    }

    /// A key over its request rate: `429` with `Retry-After` and the `RateLimit` headers.
    pub fn key_rate_limited(status: RateLimitStatus) -> Self {
        Self { rate_limit: Some(status), ..Self::rate_limited(status.reset_secs) }
    }

    pub fn run_limit_reached(limit: u32) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "RUN_LIMIT_REACHED",
            format!("You have reached the monthly assessment run limit for your plan ({limit})."),
        )
    }

    pub fn too_many(max: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "TOO_MANY",
            format!("The bulk request exceeds the maximum batch size ({max})."),
        )
    }

    pub fn partner_inactive() -> Self {
        Self::new(StatusCode::FORBIDDEN, "PARTNER_INACTIVE", "The partner account is suspended or pending activation.")
    }

    pub fn missing_key(header: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "MISSING_KEY",
            format!("No API key was provided: send it in the {header} header."),
        )
    }

    pub fn invalid_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "INVALID_KEY", "The API key is malformed, expired, or revoked.")
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist or you do not have access.",
        )
    }

    pub fn invalid_json(detail: impl fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_JSON", format!("The request body is not valid JSON: {detail}."))
    }

    pub fn missing_field(field: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MISSING_FIELD", format!("The required field '{field}' is missing."))
    }

    pub fn invalid_field(field: &str, reason: impl fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", format!("The field '{field}' is invalid: {reason}."))
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("The request body is larger than the {} KiB limit.", limit / 1024),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "This path does not accept that method.")
    }

    pub fn https_required() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "HTTPS_REQUIRED", "All requests must be made over HTTPS.")
    }

    /// An infrastructure failure: logged here with its cause chain, opaque to the client.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(cause), "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "Internal server error.")
    }
}

/// `cause: source: source…` on one line, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.to_owned(), message: self.message.clone(), request_id: None },
        };
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header((RETRY_AFTER, secs.to_string()));
        }
        if let Some(limit) = &self.rate_limit {
            response.insert_header(("RateLimit-Policy", limit.policy_header()));
            response.insert_header(("RateLimit", limit.header()));
        }
        response.json(body)
    }
}

impl From<InfraError> for ApiError {
    fn from(e: InfraError) -> Self {
        Self::internal(&e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidKey => Self::invalid_key(),
            AuthError::PartnerInactive => Self::new(
                StatusCode::FORBIDDEN,
                "PARTNER_INACTIVE",
                "The partner account is suspended or pending activation.",
            ),
            AuthError::DistributorInactive => Self::new(
                StatusCode::FORBIDDEN,
                "DISTRIBUTOR_INACTIVE",
                "The distributor account is suspended or pending activation.",
            ),
            AuthError::WorkerInactive => Self::new(StatusCode::FORBIDDEN, "WORKER_INACTIVE", "The worker is disabled."),
            AuthError::Internal(e) => e.into(),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::NotFound => Self::not_found(),
            ProfileError::Internal(e) => e.into(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound => Self::not_found(),
            WebhookError::Field(e) => e.into(),
            WebhookError::Internal(e) => e.into(),
        }
    }
}

impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::NotFound => Self::not_found(),
            WorkerError::RunStateConflict => Self::new(
                StatusCode::CONFLICT,
                "RUN_STATE_CONFLICT",
                "The run is not running under this worker's lease (another worker holds it, it went back to \
                 the queue, or it has already ended).",
            ),
            WorkerError::Field(e) => e.into(),
            WorkerError::Internal(e) => e.into(),
        }
    }
}

impl From<InvoiceError> for ApiError {
    fn from(e: InvoiceError) -> Self {
        match e {
            InvoiceError::NotFound => Self::not_found(),
            InvoiceError::Internal(e) => e.into(),
        }
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::NotFound => Self::not_found(),
            ReportError::Field(e) => e.into(),
            ReportError::Internal(e) => e.into(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::Missing(field) => Self::missing_field(&field),
            FieldError::Invalid { field, reason } => Self::invalid_field(&field, reason),
        }
    }
}

impl From<CustomerError> for ApiError {
    fn from(e: CustomerError) -> Self {
        match e {
            CustomerError::NotFound => Self::not_found(),
            CustomerError::Field(e) => e.into(),
            CustomerError::TooMany { max } => Self::too_many(max),
            CustomerError::Internal(e) => e.into(),
        }
    }
}

impl From<AssessmentError> for ApiError {
    fn from(e: AssessmentError) -> Self {
        match e {
            AssessmentError::CustomerNotFound | AssessmentError::RunNotFound | AssessmentError::PartnerNotFound => {
                Self::not_found()
            }
            AssessmentError::InvalidProduct(p) => Self::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PRODUCT",
                format!("The product identifier '{p}' is not recognised."),
            ),
            AssessmentError::ProductNotAllowed(p) => Self::new(
                StatusCode::FORBIDDEN,
                "PRODUCT_NOT_ALLOWED",
                format!("Your plan does not include the product '{p}'."),
            ),
            AssessmentError::RunLimitReached { limit } => Self::run_limit_reached(limit),
            AssessmentError::Field(e) => e.into(),
            AssessmentError::TooMany { max } => Self::too_many(max),
            AssessmentError::PartnerInactive => Self::partner_inactive(),
            AssessmentError::Internal(e) => e.into(),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::MaxKeys => Self::new(
                StatusCode::CONFLICT,
                "MAX_KEYS",
                "You already have the maximum number of API keys (2). Revoke one first.",
            ),
            KeyError::InvalidSlot => Self::invalid_field("slot", "must be 1 or 2"),
            KeyError::EmptySlot => Self::not_found(),
            KeyError::LastKey => Self::new(
                StatusCode::CONFLICT,
                "LAST_KEY",
                "You cannot revoke the only active key. Generate a new key first, then revoke this one.",
            ),
            KeyError::Internal(e) => e.into(),
        }
    }
}

impl From<PlanChangeError> for ApiError {
    fn from(e: PlanChangeError) -> Self {
        match e {
            PlanChangeError::NotFound => Self::not_found(),
            PlanChangeError::Failed(reason) => Self::new(StatusCode::BAD_REQUEST, "PLAN_CHANGE_FAILED", reason),
            e @ PlanChangeError::Unchanged(_) => {
                Self::new(StatusCode::BAD_REQUEST, "PLAN_CHANGE_FAILED", e.to_string())
            }
            PlanChangeError::RateLimited { retry_after_secs } => Self::rate_limited(retry_after_secs),
            PlanChangeError::Internal(e) => e.into(),
        }
    }
}

impl From<DistributorError> for ApiError {
    fn from(e: DistributorError) -> Self {
        match e {
            DistributorError::PartnerNotFound => Self::not_found(),
            DistributorError::PartnerInactive => Self::partner_inactive(),
            DistributorError::Field(e) => e.into(),
            DistributorError::TooMany { max } => Self::too_many(max),
            DistributorError::Internal(e) => e.into(),
        }
    }
}
