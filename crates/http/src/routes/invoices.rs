//! Invoices for partners and distributors: the list, one invoice with its lines, and its PDF.
//! Each account reaches only its own invoices; another account's id is not found.

use actix_web::HttpResponse;
use actix_web::http::header::{CacheControl, CacheDirective, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::{Data, Json, Path};
use partnerd_domain::invoice::InvoiceAccount;

use crate::AppState;
use crate::auth::{DistributorAuth, PartnerAuth};
use crate::dto::{InvoiceDetailOut, InvoiceListOut, InvoiceListQuery};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::pdf::invoice_pdf;

type Reply<T> = Result<T, ApiError>;

async fn list(state: &AppState, account: InvoiceAccount, q: InvoiceListQuery) -> Reply<Json<InvoiceListOut>> {
    Ok(Json((&state.invoices.list(&account, &q.into_page()?).await?).into()))
}

async fn get(state: &AppState, account: InvoiceAccount, id: &str) -> Reply<Json<InvoiceDetailOut>> {
    Ok(Json((&state.invoices.get(&account, id).await?).into()))
}

async fn pdf(state: &AppState, account: InvoiceAccount, id: &str) -> Reply<HttpResponse> {
    let invoice = state.invoices.get(&account, id).await?;
    let file = format!("{}.pdf", invoice.id);
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Inline,
            parameters: vec![DispositionParam::Filename(file)],
        })
        .insert_header(CacheControl(vec![CacheDirective::Private, CacheDirective::NoStore]))
        .body(invoice_pdf(&invoice)))
}

/// Your invoices, newest first: one per billing period (and currency), the plan fee for the
/// period plus your plan changes' proration. Pass `limit` (default 10) and `starting_after`.
#[utoipa::path(
    get, path = "/v1/partner/billing/invoices", tag = "Partner", operation_id = "listPartnerInvoices",
    security(("partnerKey" = [])), params(InvoiceListQuery),
    responses(
        (status = 200, body = InvoiceListOut),
        (status = 400, description = "INVALID_FIELD (limit)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn partner_list(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    ApiQuery(q): ApiQuery<InvoiceListQuery>,
) -> Reply<Json<InvoiceListOut>> {
    list(&state, InvoiceAccount::Partner(partner), q).await
}

/// One of your invoices with its lines.
#[utoipa::path(
    get, path = "/v1/partner/billing/invoices/{id}", tag = "Partner", operation_id = "getPartnerInvoice",
    security(("partnerKey" = [])), params(("id" = String, Path, description = "The invoice id (`inv_…`)")),
    responses(
        (status = 200, body = InvoiceDetailOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    )
)]
pub(crate) async fn partner_get(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    id: Path<String>,
) -> Reply<Json<InvoiceDetailOut>> {
    get(&state, InvoiceAccount::Partner(partner), &id).await
}

/// One of your invoices as a PDF: the same lines and totals.
#[utoipa::path(
    get, path = "/v1/partner/billing/invoices/{id}/pdf", tag = "Partner", operation_id = "getPartnerInvoicePdf",
    security(("partnerKey" = [])), params(("id" = String, Path, description = "The invoice id (`inv_…`)")),
    responses(
        (status = 200, description = "The invoice", content_type = "application/pdf", body = Vec<u8>),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    )
)]
pub(crate) async fn partner_pdf(
    state: Data<AppState>,
    PartnerAuth(partner): PartnerAuth,
    id: Path<String>,
) -> Reply<HttpResponse> {
    pdf(&state, InvoiceAccount::Partner(partner), &id).await
}

/// Your invoices, newest first: one per calendar month (and currency) over your partners'
/// invoices of that month, less your discount. Pass `limit` (default 10) and `starting_after`.
#[utoipa::path(
    get, path = "/v1/distributor/billing/invoices", tag = "Distributor", operation_id = "listDistributorInvoices",
    security(("distributorKey" = [])), params(InvoiceListQuery),
    responses(
        (status = 200, body = InvoiceListOut),
        (status = 400, description = "INVALID_FIELD (limit)", body = ErrorBody),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
    )
)]
pub(crate) async fn distributor_list(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    ApiQuery(q): ApiQuery<InvoiceListQuery>,
) -> Reply<Json<InvoiceListOut>> {
    list(&state, InvoiceAccount::Distributor(distributor), q).await
}

/// One of your invoices with its lines (one per partner invoice it covers).
#[utoipa::path(
    get, path = "/v1/distributor/billing/invoices/{id}", tag = "Distributor", operation_id = "getDistributorInvoice",
    security(("distributorKey" = [])), params(("id" = String, Path, description = "The invoice id (`inv_…`)")),
    responses(
        (status = 200, body = InvoiceDetailOut),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    )
)]
pub(crate) async fn distributor_get(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
) -> Reply<Json<InvoiceDetailOut>> {
    get(&state, InvoiceAccount::Distributor(distributor), &id).await
}

/// One of your invoices as a PDF: the same lines and totals.
#[utoipa::path(
    get, path = "/v1/distributor/billing/invoices/{id}/pdf", tag = "Distributor",
    operation_id = "getDistributorInvoicePdf",
    security(("distributorKey" = [])), params(("id" = String, Path, description = "The invoice id (`inv_…`)")),
    responses(
        (status = 200, description = "The invoice", content_type = "application/pdf", body = Vec<u8>),
        (status = 401, description = "MISSING_KEY or INVALID_KEY", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    )
)]
pub(crate) async fn distributor_pdf(
    state: Data<AppState>,
    DistributorAuth(distributor): DistributorAuth,
    id: Path<String>,
) -> Reply<HttpResponse> {
    pdf(&state, InvoiceAccount::Distributor(distributor), &id).await
}
