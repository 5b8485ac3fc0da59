//! The one place errors become HTTP: every failure is an [`ApiError`], rendered in the reference
//! envelope `{"error": {"code", "message"}}`. 5xx bodies say nothing about the cause; the request
//! middleware stamps them with the request id, and the cause chain goes to the log.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use partnerd_domain::ports::InfraError;
use partnerd_domain::services::{AuthError, ProfileError};
use serde::Serialize;
use utoipa::ToSchema;

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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn code(&self) -> &'static str {
        self.code
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
        HttpResponse::build(self.status).json(body)
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
