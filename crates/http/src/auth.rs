//! Authentication extractors: a handler that takes `PartnerAuth` runs only for an active
//! partner's valid key in `X-Partner-Key`, and likewise for distributors.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use partnerd_domain::ids::{DistributorId, PartnerId, WorkerId};
use partnerd_domain::keys::{KeyKind, KeyOwner};
use partnerd_domain::ports::Principal;

use crate::AppState;
use crate::error::ApiError;
use crate::rate_limit::KeyRateLimiter;

type AuthFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// Reads the key for `kind`, authenticates it, and takes one request from its rate allowance
/// (recording what is left for the `RateLimit` headers). A request that carries only another
/// kind's header is told which header this route wants.
fn authenticate(req: &HttpRequest, kind: KeyKind) -> AuthFuture<Principal> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let limiter = req.app_data::<web::Data<KeyRateLimiter>>().cloned();
    let presented = req.headers().get(kind.header()).map(|v| v.to_str().map(str::to_owned));
    let req = req.clone();
    Box::pin(async move {
        let state = state.expect("AppState is registered by the app builder");
        let raw = match presented {
            None => return Err(ApiError::missing_key(kind.header())),
            Some(Err(_)) => return Err(ApiError::invalid_key()),
            Some(Ok(raw)) => raw,
        };
        let principal = state.auth.authenticate(kind, raw.trim()).await?;
        if let Some(limiter) = limiter {
            match limiter.check(kind, &principal.stored_hash) {
                Ok(Some(status)) => {
                    req.extensions_mut().insert(status);
                }
                Ok(None) => {}
                Err(status) => return Err(ApiError::key_rate_limited(status)),
            }
        }
        Ok(principal)
    })
}

/// The kind of key a route under `/v1` (or `/api/v1`) wants, from its first segment.
fn route_kind(path: &str) -> Option<KeyKind> {
    let rest = path.strip_prefix("/api").unwrap_or(path).strip_prefix("/v1/")?;
    let (section, _) = rest.split_once('/').unwrap_or((rest, ""));
    match section {
        "partner" => Some(KeyKind::Partner),
        "distributor" => Some(KeyKind::Distributor),
        "worker" => Some(KeyKind::Worker),
        _ => None,
    }
}

/// Authenticates every request to a known route of a keyed API before anything else reads it:
/// a bad key is `401` whatever the body or query says, and every authenticated request is
/// counted against its key's rate. The principal is left in the request's extensions for the
/// extractors below. Unknown paths pass through to `404`.
///
/// A request that got past authentication and the rate limit is also counted for its account's
/// usage (partner and distributor keys; see [`crate::request_counts`]), once its answer is
/// ready: so a usage report never includes the request that reads it.
pub(crate) async fn authenticate_route(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut counted = None;
    if let Some(kind) = route_kind(req.path())
        && req.match_pattern().is_some()
    {
        match authenticate(req.request(), kind).await {
            Ok(principal) => {
                let counter = req.app_data::<web::Data<AppState>>().map(|s| s.request_counts.clone());
                counted = counter.map(|c| (c, principal.owner.clone()));
                req.extensions_mut().insert(principal);
            }
            Err(e) => {
                let (req, _) = req.into_parts();
                return Ok(ServiceResponse::new(req, actix_web::ResponseError::error_response(&e)));
            }
        }
    }
    let res = next.call(req).await;
    if let Some((counter, owner)) = counted {
        counter.record(&owner);
    }
    Ok(res?.map_into_boxed_body())
}

macro_rules! auth_extractor {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $variant:path, $id:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub $id);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = std::future::Ready<Result<Self, ApiError>>;

            /// The principal [`authenticate_route`] found; a route outside its reach has none.
            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let owner = req.extensions().get::<Principal>().map(|p| p.owner.clone());
                std::future::ready(match owner {
                    Some($variant(id)) => Ok(Self(id)),
                    Some(_) => Err(ApiError::invalid_key()),
                    None => Err(ApiError::missing_key($kind.header())),
                })
            }
        }
    };
}

auth_extractor!(
    /// An active partner, from `X-Partner-Key`.
    PartnerAuth, KeyKind::Partner, KeyOwner::Partner, PartnerId
);
auth_extractor!(
    /// An active distributor, from `X-Distributor-Key`.
    DistributorAuth, KeyKind::Distributor, KeyOwner::Distributor, DistributorId
);
auth_extractor!(
    /// An active worker, from `X-Worker-Key`.
    WorkerAuth, KeyKind::Worker, KeyOwner::Worker, WorkerId
);

#[cfg(test)]
mod tests {
    use super::route_kind;
    use partnerd_domain::keys::KeyKind;

    #[test]
    fn routes_name_the_key_they_want() {
        assert_eq!(route_kind("/v1/partner/me"), Some(KeyKind::Partner));
        assert_eq!(route_kind("/api/v1/distributor/partners/x"), Some(KeyKind::Distributor));
        assert_eq!(route_kind("/v1/worker/runs/claim"), Some(KeyKind::Worker));
        assert_eq!(route_kind("/v1/partners/me"), None);
        assert_eq!(route_kind("/openapi.json"), None);
        assert_eq!(route_kind("/v2/partner/me"), None);
    }
}
