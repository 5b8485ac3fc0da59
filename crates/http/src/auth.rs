//! Authentication extractors: a handler that takes `PartnerAuth` runs only for an active
//! partner's valid key in `X-Partner-Key`, and likewise for distributors.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use partnerd_domain::ids::{DistributorId, PartnerId};
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

macro_rules! auth_extractor {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $variant:path, $id:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub $id);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = AuthFuture<Self>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let principal = authenticate(req, $kind);
                Box::pin(async move {
                    match principal.await?.owner {
                        $variant(id) => Ok(Self(id)),
                        _ => Err(ApiError::invalid_key()),
                    }
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
