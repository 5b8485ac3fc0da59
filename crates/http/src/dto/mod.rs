//! Wire types: named for the wire, camelCase as in the reference, converted from domain types.

use partnerd_domain::services::{DistributorProfile, PartnerProfile};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// RFC 3339 in UTC with a `Z`, to the second: `2026-04-03T10:10:00Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    partnerd_domain::values::wire_timestamp(at)
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUsageOut {
    /// The current calendar month in UTC, `YYYY-MM`.
    #[schema(example = "2026-04")]
    pub month: String,
    /// Runs counted against this month's limit (a run that fails gives its unit back).
    pub runs_used: u64,
    /// The plan's monthly run limit; `-1` means unlimited.
    pub runs_limit: i64,
    pub customers_count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerMeOut {
    #[schema(example = "prt_3f9a0c1b2d4e5f6a7b8c9d0e")]
    pub id: String,
    pub company: String,
    pub email: String,
    #[schema(example = "professional")]
    pub plan: String,
    #[schema(example = "active")]
    pub status: String,
    pub usage: PartnerUsageOut,
    #[schema(example = "2026-01-15T09:30:00Z")]
    pub created_at: String,
}

impl From<PartnerProfile> for PartnerMeOut {
    fn from(p: PartnerProfile) -> Self {
        Self {
            id: p.partner.id.to_string(),
            company: p.partner.company.as_str().to_owned(),
            email: p.partner.email.as_str().to_owned(),
            plan: p.partner.plan().to_string(),
            status: p.partner.status.to_string(),
            usage: PartnerUsageOut {
                month: p.usage.month.to_string(),
                runs_used: p.usage.runs_used,
                runs_limit: p.usage.runs_limit.as_wire(),
                customers_count: p.usage.customers_count,
            },
            created_at: timestamp(p.partner.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributorUsageOut {
    #[schema(example = "2026-04")]
    pub month: String,
    /// Runs this month across all the distributor's partners, as counted against their limits.
    pub total_runs: u64,
    /// Customers of all the distributor's partners.
    pub total_customers: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributorMeOut {
    #[schema(example = "dist_3f9a0c1b2d4e5f6a7b8c9d0e")]
    pub id: String,
    pub company: String,
    pub email: String,
    pub status: String,
    pub partners_count: u64,
    pub usage: DistributorUsageOut,
    pub created_at: String,
}

impl From<DistributorProfile> for DistributorMeOut {
    fn from(p: DistributorProfile) -> Self {
        Self {
            id: p.distributor.id.to_string(),
            company: p.distributor.company.as_str().to_owned(),
            email: p.distributor.email.as_str().to_owned(),
            status: p.distributor.status.to_string(),
            partners_count: p.totals.partners_count,
            usage: DistributorUsageOut {
                month: p.month.to_string(),
                total_runs: p.totals.runs_in_month,
                total_customers: p.totals.customers_count,
            },
            created_at: timestamp(p.distributor.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_are_utc_seconds_with_z() {
        assert_eq!(timestamp(datetime!(2026-04-03 20:10:00.987 +10:00)), "2026-04-03T10:10:00Z");
    }
}

mod assessments;
mod billing;
mod customers;
mod distributors;
mod events;
mod invoices;
mod reports;
mod webhooks;
mod workers;

pub use assessments::*;
pub use billing::*;
pub use customers::*;
pub use distributors::*;
pub use events::*;
pub use invoices::*;
pub use reports::*;
pub use webhooks::*;
pub use workers::*;

/// `?limit=&starting_after=`: optional pagination for lists that grow.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1–1000); omit for the whole list.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The id of the last item of the previous page.
    pub starting_after: Option<String>,
}

impl PageQuery {
    pub fn into_page(self) -> Result<partnerd_domain::ports::Page, crate::ApiError> {
        Ok(partnerd_domain::ports::Page {
            limit: checked_limit(self.limit, 1000)?,
            starting_after: self.starting_after,
        })
    }
}

/// A page size from the query string: `None` stays `None`; anything outside `1..=max` is
/// `INVALID_FIELD` naming `limit`.
pub fn checked_limit(limit: Option<u32>, max: u32) -> Result<Option<u32>, crate::ApiError> {
    match limit {
        Some(n) if !(1..=max).contains(&n) => {
            Err(crate::ApiError::invalid_field("limit", format!("must be from 1 to {max}")))
        }
        _ => Ok(limit),
    }
}

/// One row of a bulk answer: the item's index in the request, its label, and its new id or
/// why it failed.
#[derive(Debug)]
pub struct BulkRow {
    pub index: usize,
    pub label: Option<String>,
    pub outcome: Result<String, ItemError>,
}

/// Merges the items that failed to parse with the service's results (whose indexes count only
/// the parsed items; `positions` maps them back to the request) into rows in request order.
/// Validation errors are named inside their item: `prefix[i].field`.
pub fn bulk_rows<Id: std::fmt::Display>(
    failed: Vec<(usize, Option<String>, crate::ApiError)>,
    results: Vec<partnerd_domain::services::BulkItem<Id>>,
    positions: &[usize],
    prefix: &str,
) -> Vec<BulkRow> {
    let mut rows: Vec<BulkRow> =
        failed.into_iter().map(|(index, label, e)| BulkRow { index, label, outcome: Err(e.into()) }).collect();
    for r in results {
        let index = positions[r.index];
        let outcome = r
            .outcome
            .map(|id| id.to_string())
            .map_err(|e| crate::ApiError::from(e.within(&format!("{prefix}[{index}]"))).into());
        rows.push(BulkRow { index, label: r.label, outcome });
    }
    rows.sort_by_key(|r| r.index);
    rows
}

/// An item-level error inside a bulk response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
}

impl From<crate::ApiError> for ItemError {
    fn from(e: crate::ApiError) -> Self {
        Self { code: e.code(), message: e.message().to_owned() }
    }
}
