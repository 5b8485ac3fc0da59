//! Invoices on the wire: spec 000's list shape (`invoices`, `total`, `has_more`), money as
//! decimal strings in the invoice's currency, and the lines on the detail.

use partnerd_domain::invoice::{Invoice, InvoiceAccount, InvoiceLine, InvoiceLineKind};
use partnerd_domain::ports::Page;
use partnerd_domain::services::InvoiceList;
use partnerd_domain::values::Month;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::timestamp;
use crate::ApiError;

/// Invoices per page unless `limit` says otherwise, and the most a page holds.
const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceListQuery {
    /// Invoices per page, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The id of the last invoice of the previous page.
    pub starting_after: Option<String>,
}

impl InvoiceListQuery {
    pub fn into_page(self) -> Result<Page, ApiError> {
        let limit = super::checked_limit(Some(self.limit.unwrap_or(DEFAULT_LIMIT)), MAX_LIMIT)?;
        Ok(Page { limit, starting_after: self.starting_after })
    }
}

/// One invoice as a list shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceOut {
    #[schema(example = "inv_3f9a0c1b2d4e5f6a7b8c9d0e")]
    pub id: String,
    /// The calendar month (UTC) the invoiced period starts in, `YYYY-MM`.
    #[schema(example = "2026-05")]
    pub period: String,
    pub period_start: String,
    /// Exclusive.
    pub period_end: String,
    /// Distributor invoices: the partners whose invoices it covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_accounts: Option<u64>,
    #[schema(example = "4560.00")]
    pub subtotal: String,
    #[schema(example = "912.00")]
    pub discount: String,
    #[schema(example = "3648.00")]
    pub total: String,
    /// ISO 4217, lower case as in the reference.
    #[schema(example = "usd")]
    pub currency: String,
    /// `open`: issued; collecting payment happens outside partnerd's ledger.
    #[schema(example = "open")]
    pub status: &'static str,
    pub issued_at: String,
    /// This invoice as a PDF (a path on this server).
    #[schema(example = "/v1/partner/billing/invoices/inv_3f9a0c1b2d4e5f6a7b8c9d0e/pdf")]
    pub pdf_url: String,
}

/// One line of an invoice.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLineOut {
    /// `plan_fee`, `unused_time` (a credit), `remaining_time` or `partner_invoice`.
    #[schema(example = "plan_fee")]
    pub kind: &'static str,
    pub description: String,
    /// Decimal string in the invoice's currency; negative for a credit.
    #[schema(example = "449.00")]
    pub amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_end: Option<String>,
}

/// `GET …/billing/invoices/{id}`: the invoice and its lines.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceDetailOut {
    #[serde(flatten)]
    pub invoice: InvoiceOut,
    pub lines: Vec<InvoiceLineOut>,
}

/// `GET …/billing/invoices`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceListOut {
    pub invoices: Vec<InvoiceOut>,
    /// All the account's invoices, on every page.
    pub total: u64,
    pub has_more: bool,
}

impl From<&Invoice> for InvoiceOut {
    fn from(i: &Invoice) -> Self {
        let total_accounts = match i.account {
            InvoiceAccount::Partner(_) => None,
            InvoiceAccount::Distributor(_) => {
                Some(i.lines.iter().filter(|l| l.kind == InvoiceLineKind::PartnerInvoice).count() as u64)
            }
        };
        Self {
            id: i.id.to_string(),
            period: Month::containing(i.period_start).to_string(),
            period_start: timestamp(i.period_start),
            period_end: timestamp(i.period_end),
            total_accounts,
            subtotal: i.subtotal.to_decimal_string(),
            discount: i.discount.to_decimal_string(),
            total: i.total.to_decimal_string(),
            currency: i.currency.code().to_ascii_lowercase(),
            status: "open",
            issued_at: timestamp(i.issued_at),
            pdf_url: format!("/v1/{}/billing/invoices/{}/pdf", i.account.kind(), i.id),
        }
    }
}

impl From<&InvoiceLine> for InvoiceLineOut {
    fn from(l: &InvoiceLine) -> Self {
        Self {
            kind: l.kind.as_str(),
            description: l.description.clone(),
            amount: l.amount.to_decimal_string(),
            period_start: l.period.map(|p| timestamp(p.start)),
            period_end: l.period.map(|p| timestamp(p.end)),
        }
    }
}

impl From<&Invoice> for InvoiceDetailOut {
    fn from(i: &Invoice) -> Self {
        Self { invoice: i.into(), lines: i.lines.iter().map(Into::into).collect() }
    }
}

impl From<&InvoiceList> for InvoiceListOut {
    fn from(list: &InvoiceList) -> Self {
        Self { invoices: list.invoices.iter().map(Into::into).collect(), total: list.total, has_more: list.has_more }
    }
}
