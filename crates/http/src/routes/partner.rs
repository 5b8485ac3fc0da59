//! The Partner API (`X-Partner-Key`).

use actix_web::web::{Data, Json};

use crate::AppState;
use crate::auth::PartnerAuth;
use crate::dto::PartnerMeOut;
use crate::error::{ApiError, ErrorBody};

/// Your partner profile: plan, status, and this month's usage against the plan's limit.
#[utoipa::path(
    get, path = "/v1/partner/me", tag = "Partner", operation_id = "getPartnerMe",
    security(("partnerKey" = [])),
    responses(
        (status = 200, description = "The partner's profile", body = PartnerMeOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 403, description = "PARTNER_INACTIVE", body = ErrorBody),
    )
)]
pub(crate) async fn me(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
) -> Result<Json<PartnerMeOut>, ApiError> {
    Ok(Json(state.profiles.partner(&partner).await?.into()))
}
