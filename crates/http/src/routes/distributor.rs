//! The Distributor API (`X-Distributor-Key`).

use actix_web::web::{Data, Json};

use crate::AppState;
use crate::auth::DistributorAuth;
use crate::dto::DistributorMeOut;
use crate::error::{ApiError, ErrorBody};

/// Your distributor profile with partner count and this month's aggregate usage.
#[utoipa::path(
    get, path = "/v1/distributor/me", tag = "Distributor", operation_id = "getDistributorMe",
    security(("distributorKey" = [])),
    responses(
        (status = 200, description = "The distributor's profile", body = DistributorMeOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 403, description = "DISTRIBUTOR_INACTIVE", body = ErrorBody),
    )
)]
pub(crate) async fn me(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
) -> Result<Json<DistributorMeOut>, ApiError> {
    Ok(Json(state.profiles.distributor(&distributor).await?.into()))
}
