//! Routes. Every route is mounted under `/v1` and, identically, `/api/v1`.

pub(crate) mod distributor;
pub(crate) mod partner;

use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

/// Registers every versioned route (called once per prefix).
pub(crate) fn v1(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/partner/me").route(web::get().to(partner::me)))
        .service(resource("/distributor/me").route(web::get().to(distributor::me)));
}

/// A resource whose unmatched methods answer `405 METHOD_NOT_ALLOWED` in the envelope.
pub(crate) fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::method_not_allowed())
}

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}
