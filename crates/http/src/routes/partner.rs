//! The Partner API (`X-Partner-Key`). Each handler parses, calls one service method, maps.
//! The `*_for` functions are shared with the Distributor API, which acts on a partner's behalf
//! after checking that the partner is its own.

use actix_web::web::{Data, Json, Path};
use actix_web::{HttpResponse, http::StatusCode};
use partnerd_domain::customer::CustomerDraft;
use partnerd_domain::ids::PartnerId;
use partnerd_domain::keys::KeyOwner;
use partnerd_domain::ports::Actor;
use partnerd_domain::services::RunQuery;

use crate::AppState;
use crate::auth::PartnerAuth;
use crate::dto::{
    BulkCustomersIn, BulkCustomersOut, BulkRunsOut, BulkTriggerIn, CustomerDetailOut, CustomerIn, CustomerListOut,
    CustomerOut, CustomerPatchIn, KeyOut, PageQuery, PartnerMeOut, PlanChangeIn, PlanChangeOut, PlanPreviewOut,
    ProductsOut, RunListOut, RunListQuery, RunOut, RunQueuedOut, TriggerIn, bulk_rows,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, parse_each};

type Reply<T> = Result<T, ApiError>;

/// Your partner profile: plan, status, and this month's usage against the plan's limit.
#[utoipa::path(
    get, path = "/v1/partner/me", tag = "Partner", operation_id = "getPartnerMe",
    security(("partnerKey" = [])),
    responses(
        (status = 200, description = "The partner's profile", body = PartnerMeOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 403, description = "PARTNER_INACTIVE", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED", body = ErrorBody),
    )
)]
pub(crate) async fn me(state: Data<AppState>, PartnerAuth(partner): PartnerAuth) -> Reply<Json<PartnerMeOut>> {
    Ok(Json(state.profiles.partner(&partner).await?.into()))
}

/// The products your plan includes.
#[utoipa::path(
    get, path = "/v1/partner/products", tag = "Partner", operation_id = "listPartnerProducts",
    security(("partnerKey" = [])),
    responses((status = 200, body = ProductsOut), (status = 401, body = ErrorBody))
)]
pub(crate) async fn products(state: Data<AppState>, PartnerAuth(partner): PartnerAuth) -> Reply<Json<ProductsOut>> {
    let profile = state.profiles.partner(&partner).await?;
    Ok(Json(ProductsOut::of(&state.catalog, state.catalog.plan(profile.partner.plan()))))
}

pub(crate) async fn list_customers_for(
    state: &AppState,
    partner: &PartnerId,
    page: PageQuery,
) -> Reply<Json<CustomerListOut>> {
    let page = state.customers.list(partner, &page.into_page()?).await?;
    Ok(Json(CustomerListOut { customers: page.items.iter().map(Into::into).collect(), has_more: page.has_more }))
}

/// Your customers, oldest first. Pass `limit` (and then `starting_after`) to page.
#[utoipa::path(
    get, path = "/v1/partner/customers", tag = "Partner", operation_id = "listPartnerCustomers",
    security(("partnerKey" = [])), params(PageQuery),
    responses((status = 200, body = CustomerListOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_customers(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Reply<Json<CustomerListOut>> {
    list_customers_for(&state, &partner, page).await
}

pub(crate) async fn create_customer_for(state: &AppState, partner: &PartnerId, body: CustomerIn) -> Reply<CustomerOut> {
    let customer = state.customers.create(partner, body.into()).await?;
    Ok(CustomerOut::new(&customer))
}

/// Creates a customer. `name` and `tenantId` (a GUID) are required; e-mail addresses are checked.
#[utoipa::path(
    post, path = "/v1/partner/customers", tag = "Partner", operation_id = "createPartnerCustomer",
    security(("partnerKey" = [])), request_body = CustomerIn,
    responses(
        (status = 201, body = CustomerOut),
        (status = 400, description = "INVALID_JSON, MISSING_FIELD, INVALID_FIELD", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub(crate) async fn create_customer(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiJson(body): ApiJson<CustomerIn>,
) -> Reply<HttpResponse> {
    Ok(HttpResponse::Created().json(create_customer_for(&state, &partner, body).await?))
}

/// Creates up to 100 customers; each item is created or fails on its own.
#[utoipa::path(
    post, path = "/v1/partner/customers/bulk", tag = "Partner", operation_id = "bulkCreatePartnerCustomers",
    security(("partnerKey" = [])), request_body = BulkCustomersIn,
    responses(
        (status = 201, body = BulkCustomersOut),
        (status = 400, description = "TOO_MANY (nothing created), INVALID_JSON", body = ErrorBody),
    )
)]
pub(crate) async fn bulk_create_customers(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiJson(body): ApiJson<BulkCustomersIn>,
) -> Reply<HttpResponse> {
    let max = partnerd_domain::services::MAX_BULK_CUSTOMERS;
    if body.customers.len() > max {
        return Err(ApiError::too_many(max));
    }
    // Items that are not even customer-shaped fail here, one by one; the rest go to the service.
    let items = parse_each::<CustomerIn>(body.customers, "customers", "name");
    let (positions, drafts): (Vec<usize>, Vec<CustomerDraft>) =
        items.parsed.into_iter().map(|(index, c)| (index, c.into())).unzip();
    let results = state.customers.create_many(&partner, drafts).await?;
    Ok(HttpResponse::Created().json(BulkCustomersOut::new(bulk_rows(items.failed, results, &positions, "customers"))))
}

/// A customer with its receiver lists and its five most recent runs.
#[utoipa::path(
    get, path = "/v1/partner/customers/{id}", tag = "Partner", operation_id = "getPartnerCustomer",
    security(("partnerKey" = [])), params(("id" = String, Path, description = "Customer id")),
    responses((status = 200, body = CustomerDetailOut), (status = 404, body = ErrorBody))
)]
pub(crate) async fn get_customer(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    id: Path<String>,
) -> Reply<Json<CustomerDetailOut>> {
    Ok(Json(state.customers.get(&partner, &id).await?.into()))
}

/// Updates a customer: only the fields sent change (`"email": null` clears the e-mail).
#[utoipa::path(
    put, path = "/v1/partner/customers/{id}", tag = "Partner", operation_id = "updatePartnerCustomer",
    security(("partnerKey" = [])), params(("id" = String, Path)), request_body = CustomerPatchIn,
    responses((status = 200, body = CustomerOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub(crate) async fn update_customer(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    id: Path<String>,
    ApiJson(body): ApiJson<CustomerPatchIn>,
) -> Reply<Json<CustomerOut>> {
    let customer = state.customers.update(&partner, &id, body.into_patch()?).await?;
    Ok(Json(CustomerOut::new(&customer)))
}

/// Deletes a customer and all its runs. Units of the run limit already used stay used.
#[utoipa::path(
    delete, path = "/v1/partner/customers/{id}", tag = "Partner", operation_id = "deletePartnerCustomer",
    security(("partnerKey" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody))
)]
pub(crate) async fn delete_customer(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    id: Path<String>,
) -> Reply<HttpResponse> {
    state.customers.delete(&partner, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) async fn trigger_for(state: &AppState, partner: &PartnerId, body: TriggerIn) -> Reply<RunQueuedOut> {
    let run = state.assessments.trigger(partner, body.into()).await?;
    Ok(RunQueuedOut::from(&run))
}

/// Queues an assessment run against a customer (`202`). Takes one unit of this month's limit.
#[utoipa::path(
    post, path = "/v1/partner/assessments", tag = "Partner", operation_id = "triggerPartnerAssessment",
    security(("partnerKey" = [])), request_body = TriggerIn,
    responses(
        (status = 202, body = RunQueuedOut),
        (status = 400, description = "INVALID_PRODUCT, INVALID_FIELD (maturityTarget), MISSING_FIELD", body = ErrorBody),
        (status = 403, description = "PRODUCT_NOT_ALLOWED, RUN_LIMIT_REACHED", body = ErrorBody),
        (status = 404, description = "Unknown customer", body = ErrorBody),
    )
)]
pub(crate) async fn trigger(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiJson(body): ApiJson<TriggerIn>,
) -> Reply<HttpResponse> {
    Ok(HttpResponse::Accepted().json(trigger_for(&state, &partner, body).await?))
}

/// Queues the same product for up to 50 customers; each item is queued or fails on its own.
#[utoipa::path(
    post, path = "/v1/partner/assessments/bulk", tag = "Partner", operation_id = "bulkTriggerPartnerAssessments",
    security(("partnerKey" = [])), request_body = BulkTriggerIn,
    responses(
        (status = 202, body = BulkRunsOut),
        (status = 400, description = "TOO_MANY, INVALID_PRODUCT, INVALID_FIELD", body = ErrorBody),
        (status = 403, description = "PRODUCT_NOT_ALLOWED", body = ErrorBody),
    )
)]
pub(crate) async fn bulk_trigger(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiJson(body): ApiJson<BulkTriggerIn>,
) -> Reply<HttpResponse> {
    let results =
        state.assessments.trigger_many(&partner, &body.product, body.maturity_target, body.customer_ids).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(BulkRunsOut::from(results)))
}

pub(crate) async fn list_runs_for(state: &AppState, partner: &PartnerId, q: RunListQuery) -> Reply<Json<RunListOut>> {
    let page = PageQuery { limit: q.limit, starting_after: q.starting_after }.into_page()?;
    let query = RunQuery { month: q.month, product: q.product, customer_id: q.customer_id };
    let runs = state.assessments.list(partner, query, &page).await?;
    Ok(Json(RunListOut { runs: runs.items.iter().map(Into::into).collect(), has_more: runs.has_more }))
}

/// Your runs, newest first, filtered by `month`, `product` and `customerId`.
#[utoipa::path(
    get, path = "/v1/partner/assessments", tag = "Partner", operation_id = "listPartnerAssessments",
    security(("partnerKey" = [])), params(RunListQuery),
    responses((status = 200, body = RunListOut), (status = 400, description = "INVALID_FIELD, INVALID_PRODUCT", body = ErrorBody))
)]
pub(crate) async fn list_runs(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiQuery(query): ApiQuery<RunListQuery>,
) -> Reply<Json<RunListOut>> {
    list_runs_for(&state, &partner, query).await
}

/// One run with its results once it has them.
#[utoipa::path(
    get, path = "/v1/partner/assessments/{id}", tag = "Partner", operation_id = "getPartnerAssessment",
    security(("partnerKey" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RunOut), (status = 404, body = ErrorBody))
)]
pub(crate) async fn get_run(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    id: Path<String>,
) -> Reply<Json<RunOut>> {
    Ok(Json(RunOut::from(&state.assessments.get(&partner, &id).await?)))
}

/// Generates a key in the lowest free slot; the key is shown only in this response.
#[utoipa::path(
    post, path = "/v1/partner/keys", tag = "Partner", operation_id = "createPartnerKey",
    security(("partnerKey" = [])),
    responses((status = 201, body = KeyOut), (status = 409, description = "MAX_KEYS", body = ErrorBody))
)]
pub(crate) async fn create_key(state: Data<AppState>, PartnerAuth(partner): PartnerAuth) -> Reply<HttpResponse> {
    let key = state.keys.generate(&KeyOwner::Partner(partner)).await?;
    Ok(HttpResponse::Created().json(KeyOut::from(key)))
}

/// Revokes the key in slot 1 or 2; it stops working at once. The only active key cannot go.
#[utoipa::path(
    delete, path = "/v1/partner/keys/{slot}", tag = "Partner", operation_id = "revokePartnerKey",
    security(("partnerKey" = [])), params(("slot" = u8, Path, description = "1 or 2")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "INVALID_FIELD: slot is not 1 or 2", body = ErrorBody),
        (status = 404, description = "No key in that slot", body = ErrorBody),
        (status = 409, description = "LAST_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_key(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    slot: Path<String>,
) -> Reply<HttpResponse> {
    let slot = match slot.as_str() {
        "1" => 1,
        "2" => 2,
        _ => return Err(ApiError::invalid_field("slot", "must be 1 or 2")),
    };
    state.keys.revoke(&KeyOwner::Partner(partner), slot).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) async fn change_plan_for(
    state: &AppState,
    actor: Actor,
    partner: &PartnerId,
    body: PlanChangeIn,
) -> Reply<Json<PlanChangeOut>> {
    let outcome = state.plans.change(actor, partner, body.into()).await?;
    Ok(Json(PlanChangeOut::from(&outcome)))
}

/// Upgrades or downgrades your plan with proration; at most 10 changes an hour.
#[utoipa::path(
    post, path = "/v1/partner/plan", tag = "Partner", operation_id = "changePartnerPlan",
    security(("partnerKey" = [])), request_body = PlanChangeIn,
    responses(
        (status = 200, body = PlanChangeOut),
        (status = 400, description = "INVALID_JSON, PLAN_CHANGE_FAILED", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: more than 10 changes in an hour", body = ErrorBody),
    )
)]
pub(crate) async fn change_plan(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiJson(body): ApiJson<PlanChangeIn>,
) -> Reply<Json<PlanChangeOut>> {
    change_plan_for(&state, Actor::Partner(partner.clone()), &partner, body).await
}

pub(crate) async fn preview_plan_for(
    state: &AppState,
    partner: &PartnerId,
    body: PlanChangeIn,
) -> Reply<Json<PlanPreviewOut>> {
    Ok(Json(PlanPreviewOut::from(&state.plans.preview(partner, body.into()).await?)))
}

/// The proration a plan change would bill, changing nothing.
#[utoipa::path(
    post, path = "/v1/partner/plan/preview", tag = "Partner", operation_id = "previewPartnerPlanChange",
    security(("partnerKey" = [])), request_body = PlanChangeIn,
    responses((status = 200, body = PlanPreviewOut), (status = 400, description = "PLAN_CHANGE_FAILED", body = ErrorBody))
)]
pub(crate) async fn preview_plan(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiJson(body): ApiJson<PlanChangeIn>,
) -> Reply<Json<PlanPreviewOut>> {
    preview_plan_for(&state, &partner, body).await
}
