//! Usage reports, dashboards and analytics for partners and distributors: each handler asks the
//! report service for one aggregate and maps it to the wire.

use actix_web::web::{Data, Json};
use partnerd_domain::report::ReportScope;

use crate::AppState;
use crate::auth::{DistributorAuth, PartnerAuth};
use crate::dto::{
    AnalyticsOut, AnalyticsQuery, DistributorDashboardOut, MonthQuery, PartnerDashboardOut, PartnerUsageReportOut,
    UsageReportOut, UsageReportQuery,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;

type Reply<T> = Result<T, ApiError>;

/// Your runs in a month (default: this month) by product and by status, against your limit,
/// your customers, and the API requests made with your keys.
#[utoipa::path(
    get, path = "/v1/partner/usage", tag = "Partner", operation_id = "getPartnerUsage",
    security(("partnerKey" = [])), params(MonthQuery),
    responses(
        (status = 200, body = PartnerUsageReportOut),
        (status = 400, description = "INVALID_FIELD (month)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn partner_usage(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Reply<Json<PartnerUsageReportOut>> {
    Ok(Json((&state.reports.partner_usage(&partner, q.month.as_deref()).await?).into()))
}

/// A live snapshot: customers, runs today and this month against your limit, API requests today.
#[utoipa::path(
    get, path = "/v1/partner/dashboard", tag = "Partner", operation_id = "getPartnerDashboard",
    security(("partnerKey" = [])),
    responses(
        (status = 200, body = PartnerDashboardOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn partner_dashboard(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
) -> Reply<Json<PartnerDashboardOut>> {
    Ok(Json((&state.reports.partner_dashboard(&partner).await?).into()))
}

/// Your runs in a date range (default: the last 30 days): totals, by product and status, a
/// daily time series and your top customers.
#[utoipa::path(
    get, path = "/v1/partner/analytics", tag = "Partner", operation_id = "getPartnerAnalytics",
    security(("partnerKey" = [])), params(AnalyticsQuery),
    responses(
        (status = 200, body = AnalyticsOut),
        (status = 400, description = "INVALID_FIELD (from_date, to_date)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn partner_analytics(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Reply<Json<AnalyticsOut>> {
    let scope = ReportScope::Partner(partner);
    Ok(Json((&state.reports.analytics(&scope, q.from_date.as_deref(), q.to_date.as_deref()).await?).into()))
}

/// Your partners' runs in a month, totalled and grouped by partner, customer or product, and the
/// API requests made with your keys and theirs (per partner when grouped by partner).
#[utoipa::path(
    get, path = "/v1/distributor/reports/usage", tag = "Distributor", operation_id = "getDistributorUsageReport",
    security(("distributorKey" = [])), params(UsageReportQuery),
    responses(
        (status = 200, body = UsageReportOut),
        (status = 400, description = "INVALID_FIELD (month, group_by)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn distributor_usage(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiQuery(q): ApiQuery<UsageReportQuery>,
) -> Reply<Json<UsageReportOut>> {
    let report = state.reports.distributor_usage(&distributor, q.month.as_deref(), q.group_by.as_deref()).await?;
    Ok(Json((&report).into()))
}

/// A live snapshot: partners by status and near their limit, customers, runs today and this
/// month, API requests today (yours and your partners').
#[utoipa::path(
    get, path = "/v1/distributor/dashboard", tag = "Distributor", operation_id = "getDistributorDashboard",
    security(("distributorKey" = [])),
    responses(
        (status = 200, body = DistributorDashboardOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn distributor_dashboard(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
) -> Reply<Json<DistributorDashboardOut>> {
    Ok(Json((&state.reports.distributor_dashboard(&distributor).await?).into()))
}

/// Your partners' runs in a date range (default: the last 30 days), with top customers and
/// top partners.
#[utoipa::path(
    get, path = "/v1/distributor/analytics", tag = "Distributor", operation_id = "getDistributorAnalytics",
    security(("distributorKey" = [])), params(AnalyticsQuery),
    responses(
        (status = 200, body = AnalyticsOut),
        (status = 400, description = "INVALID_FIELD (from_date, to_date)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn distributor_analytics(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Reply<Json<AnalyticsOut>> {
    let scope = ReportScope::Distributor(distributor);
    Ok(Json((&state.reports.analytics(&scope, q.from_date.as_deref(), q.to_date.as_deref()).await?).into()))
}
