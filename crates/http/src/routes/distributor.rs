//! The Distributor API (`X-Distributor-Key`). Work on a partner's behalf first checks that the
//! partner is this distributor's (else `404`) and active (else `403 PARTNER_INACTIVE`), then runs
//! exactly the Partner API's code for that partner.

use actix_web::HttpResponse;
use actix_web::web::{Data, Json, Path};
use partnerd_domain::ports::Actor;
use partnerd_domain::services::{PartnerDraft, PartnerPatch, PlanChangeError, PlanChangeRequest};

use super::partner::{
    change_plan_for, create_customer_for, list_customers_for, list_runs_for, preview_plan_for, trigger_for,
};
use crate::AppState;
use crate::auth::DistributorAuth;
use crate::dto::{
    ActivatedOut, BulkPartnersIn, BulkPartnersOut, CustomerIn, CustomerListOut, CustomerOut, DistributorMeOut,
    DistributorUsageReportOut, MonthQuery, PageQuery, PartnerCreatedOut, PartnerDetailOut, PartnerIn, PartnerListOut,
    PartnerListQuery, PartnerPatchIn, PartnerUpdatedOut, PlanChangeIn, PlanChangeOut, PlanPreviewOut, RunListOut,
    RunListQuery, RunQueuedOut, SuspendIn, SuspendedOut, TriggerIn, bulk_rows,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, OptionalJson, parse_each};

type Reply<T> = Result<T, ApiError>;

/// Your distributor profile with partner count and this month's aggregate usage.
#[utoipa::path(
    get, path = "/v1/distributor/me", tag = "Distributor", operation_id = "getDistributorMe",
    security(("distributorKey" = [])),
    responses(
        (status = 200, description = "The distributor's profile", body = DistributorMeOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 403, description = "DISTRIBUTOR_INACTIVE", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED", body = ErrorBody),
    )
)]
pub(crate) async fn me(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
) -> Reply<Json<DistributorMeOut>> {
    Ok(Json(state.profiles.distributor(&distributor).await?.into()))
}

/// Your partners, oldest first, optionally filtered by `status`.
#[utoipa::path(
    get, path = "/v1/distributor/partners", tag = "Distributor", operation_id = "listDistributorPartners",
    security(("distributorKey" = [])), params(PartnerListQuery),
    responses((status = 200, body = PartnerListOut), (status = 400, description = "INVALID_FIELD", body = ErrorBody))
)]
pub(crate) async fn list_partners(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiQuery(q): ApiQuery<PartnerListQuery>,
) -> Reply<Json<PartnerListOut>> {
    let page = PageQuery { limit: q.limit, starting_after: q.starting_after }.into_page()?;
    let partners = state.distributors.list(&distributor, q.status.as_deref(), &page).await?;
    Ok(Json(PartnerListOut { partners: partners.items.iter().map(Into::into).collect(), has_more: partners.has_more }))
}

/// Provisions a partner; it starts `pending` and gets its first key on activation.
#[utoipa::path(
    post, path = "/v1/distributor/partners", tag = "Distributor", operation_id = "createDistributorPartner",
    security(("distributorKey" = [])), request_body = PartnerIn,
    responses(
        (status = 201, body = PartnerCreatedOut),
        (status = 400, description = "MISSING_FIELD (naming e.g. billing.currency), INVALID_FIELD", body = ErrorBody),
    )
)]
pub(crate) async fn create_partner(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiJson(body): ApiJson<PartnerIn>,
) -> Reply<HttpResponse> {
    let partner = state.distributors.create(&distributor, body.into()).await?;
    Ok(HttpResponse::Created().json(PartnerCreatedOut::from(&partner)))
}

/// Provisions up to 50 partners; each item is provisioned or fails on its own.
#[utoipa::path(
    post, path = "/v1/distributor/partners/bulk", tag = "Distributor", operation_id = "bulkCreateDistributorPartners",
    security(("distributorKey" = [])), request_body = BulkPartnersIn,
    responses((status = 201, body = BulkPartnersOut), (status = 400, description = "TOO_MANY (nothing created)", body = ErrorBody))
)]
pub(crate) async fn bulk_create_partners(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiJson(body): ApiJson<BulkPartnersIn>,
) -> Reply<HttpResponse> {
    let max = partnerd_domain::services::MAX_BULK_PARTNERS;
    if body.partners.len() > max {
        return Err(ApiError::too_many(max));
    }
    let items = parse_each::<PartnerIn>(body.partners, "partners", "company");
    let (positions, drafts): (Vec<usize>, Vec<PartnerDraft>) =
        items.parsed.into_iter().map(|(index, p)| (index, p.into())).unzip();
    let results = state.distributors.create_many(&distributor, drafts).await?;
    Ok(HttpResponse::Created().json(BulkPartnersOut::new(bulk_rows(items.failed, results, &positions, "partners"))))
}

/// One of your partners with its billing and this month's usage.
#[utoipa::path(
    get, path = "/v1/distributor/partners/{id}", tag = "Distributor", operation_id = "getDistributorPartner",
    security(("distributorKey" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PartnerDetailOut), (status = 404, body = ErrorBody))
)]
pub(crate) async fn get_partner(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
) -> Reply<Json<PartnerDetailOut>> {
    Ok(Json(PartnerDetailOut::from(&state.distributors.get(&distributor, &id).await?)))
}

/// Updates a partner: profile fields, and plan or billing (merged; a change of terms is a plan
/// change with proration, as `POST …/plan`).
#[utoipa::path(
    put, path = "/v1/distributor/partners/{id}", tag = "Distributor", operation_id = "updateDistributorPartner",
    security(("distributorKey" = [])), params(("id" = String, Path)), request_body = PartnerPatchIn,
    responses(
        (status = 200, body = PartnerUpdatedOut),
        (status = 400, description = "INVALID_FIELD, PLAN_CHANGE_FAILED", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "RATE_LIMITED (plan changes)", body = ErrorBody),
    )
)]
pub(crate) async fn update_partner(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<PartnerPatchIn>,
) -> Reply<Json<PartnerUpdatedOut>> {
    let patch: PartnerPatch = body.into_patch()?;
    // Check everything before changing anything: the profile fields, then the new terms (the
    // plan change itself may still be refused, so the profile is saved only after it).
    let current = state.distributors.owned(&distributor, &id).await?;
    let updated = state.distributors.prepare_profile(&current, &patch)?;
    let terms = (patch.plan.is_some() || patch.billing.is_some()).then(|| PlanChangeRequest {
        plan: patch.plan.clone().unwrap_or_else(|| current.plan().to_string()),
        billing: patch.billing.as_ref().and_then(|b| b.interval.clone()),
        currency: patch.billing.as_ref().and_then(|b| b.currency.clone()),
    });
    if let Some(terms) = terms {
        match state.plans.change(Actor::Distributor(distributor.clone()), &current.id, terms).await {
            Ok(_) | Err(PlanChangeError::Unchanged(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if updated != current {
        state.distributors.save_profile(&updated).await?;
    }
    Ok(Json(PartnerUpdatedOut::from(&state.distributors.owned(&distributor, &id).await?)))
}

/// Activates a pending or suspended partner. When it has no active key, the response carries a
/// fresh slot-1 key, shown only here. `…/reactivate` is the same.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/activate", tag = "Distributor", operation_id = "activateDistributorPartner",
    security(("distributorKey" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ActivatedOut), (status = 404, body = ErrorBody))
)]
pub(crate) async fn activate(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
) -> Reply<Json<ActivatedOut>> {
    Ok(Json(state.distributors.activate(&distributor, &id).await?.into()))
}

/// The same as `…/activate`.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/reactivate", tag = "Distributor",
    operation_id = "reactivateDistributorPartner",
    security(("distributorKey" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ActivatedOut), (status = 404, body = ErrorBody))
)]
pub(crate) async fn reactivate(
    state: Data<AppState>,
    auth: DistributorAuth,
    id: Path<String>,
) -> Reply<Json<ActivatedOut>> {
    activate(state, auth, id).await
}

/// Suspends a partner: all its keys stop working at once. Body optional: `{"reason": "…"}`.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/suspend", tag = "Distributor", operation_id = "suspendDistributorPartner",
    security(("distributorKey" = [])), params(("id" = String, Path)), request_body(content = Option<SuspendIn>),
    responses((status = 200, body = SuspendedOut), (status = 404, body = ErrorBody))
)]
pub(crate) async fn suspend(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    OptionalJson(body): OptionalJson<SuspendIn>,
) -> Reply<Json<SuspendedOut>> {
    Ok(Json(state.distributors.suspend(&distributor, &id, body.reason).await?.into()))
}

/// Changes a partner's plan on its behalf, with the same rules as `POST /v1/partner/plan`.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/plan", tag = "Distributor", operation_id = "changeDistributorPartnerPlan",
    security(("distributorKey" = [])), params(("id" = String, Path)), request_body = PlanChangeIn,
    responses(
        (status = 200, body = PlanChangeOut),
        (status = 400, description = "PLAN_CHANGE_FAILED", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "RATE_LIMITED", body = ErrorBody),
    )
)]
pub(crate) async fn change_plan(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<PlanChangeIn>,
) -> Reply<Json<PlanChangeOut>> {
    let partner = state.distributors.owned(&distributor, &id).await?;
    change_plan_for(&state, Actor::Distributor(distributor), &partner.id, body).await
}

/// The proration a plan change would bill for the partner, changing nothing.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/plan/preview", tag = "Distributor",
    operation_id = "previewDistributorPartnerPlan",
    security(("distributorKey" = [])), params(("id" = String, Path)), request_body = PlanChangeIn,
    responses((status = 200, body = PlanPreviewOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(crate) async fn preview_plan(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<PlanChangeIn>,
) -> Reply<Json<PlanPreviewOut>> {
    let partner = state.distributors.owned(&distributor, &id).await?;
    preview_plan_for(&state, &partner.id, body).await
}

/// The partner's customers (the partner must be active).
#[utoipa::path(
    get, path = "/v1/distributor/partners/{id}/customers", tag = "Distributor",
    operation_id = "listDistributorPartnerCustomers",
    security(("distributorKey" = [])), params(("id" = String, Path), PageQuery),
    responses((status = 200, body = CustomerListOut), (status = 403, description = "PARTNER_INACTIVE", body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(crate) async fn list_customers(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Reply<Json<CustomerListOut>> {
    let partner = state.distributors.act_for(&distributor, &id).await?;
    list_customers_for(&state, &partner, page).await
}

/// Creates a customer for the partner: the same body and rules as the Partner API.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/customers", tag = "Distributor",
    operation_id = "createDistributorPartnerCustomer",
    security(("distributorKey" = [])), params(("id" = String, Path)), request_body = CustomerIn,
    responses(
        (status = 201, body = CustomerOut),
        (status = 400, body = ErrorBody),
        (status = 403, description = "PARTNER_INACTIVE", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn create_customer(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<CustomerIn>,
) -> Reply<HttpResponse> {
    let partner = state.distributors.act_for(&distributor, &id).await?;
    let mut customer = create_customer_for(&state, &partner, body).await?;
    customer.partner_id = Some(partner.to_string());
    Ok(HttpResponse::Created().json(customer))
}

/// The partner's runs, newest first, with the Partner API's filters.
#[utoipa::path(
    get, path = "/v1/distributor/partners/{id}/assessments", tag = "Distributor",
    operation_id = "listDistributorPartnerAssessments",
    security(("distributorKey" = [])), params(("id" = String, Path), RunListQuery),
    responses((status = 200, body = RunListOut), (status = 403, description = "PARTNER_INACTIVE", body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(crate) async fn list_runs(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiQuery(query): ApiQuery<RunListQuery>,
) -> Reply<Json<RunListOut>> {
    let partner = state.distributors.act_for(&distributor, &id).await?;
    list_runs_for(&state, &partner, query).await
}

/// Triggers a run for the partner: same body, rules, errors and run limit as the Partner API.
#[utoipa::path(
    post, path = "/v1/distributor/partners/{id}/assessments", tag = "Distributor",
    operation_id = "triggerDistributorPartnerAssessment",
    security(("distributorKey" = [])), params(("id" = String, Path)), request_body = TriggerIn,
    responses(
        (status = 202, body = RunQueuedOut),
        (status = 400, body = ErrorBody),
        (status = 403, description = "PARTNER_INACTIVE, PRODUCT_NOT_ALLOWED, RUN_LIMIT_REACHED", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn trigger(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<TriggerIn>,
) -> Reply<HttpResponse> {
    let partner = state.distributors.act_for(&distributor, &id).await?;
    let mut run = trigger_for(&state, &partner, body).await?;
    run.partner_id = Some(partner.to_string());
    Ok(HttpResponse::Accepted().json(run))
}

/// Runs and customers per partner for a month (default: this month).
#[utoipa::path(
    get, path = "/v1/distributor/usage", tag = "Distributor", operation_id = "getDistributorUsage",
    security(("distributorKey" = [])), params(MonthQuery),
    responses((status = 200, body = DistributorUsageReportOut), (status = 400, description = "INVALID_FIELD (month)", body = ErrorBody))
)]
pub(crate) async fn usage(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Reply<Json<DistributorUsageReportOut>> {
    Ok(Json(DistributorUsageReportOut::from(&state.distributors.usage(&distributor, q.month.as_deref()).await?)))
}
