//! Usage reports, dashboards and analytics on the wire (camelCase, dates `YYYY-MM-DD`).

use std::collections::BTreeMap;

use partnerd_domain::report::{CustomerRuns, PartnerRuns, RunBreakdown, RunCounts, wire_date};
use partnerd_domain::run::RunStatus;
use partnerd_domain::services::{
    Analytics, DistributorDashboard, DistributorUsageReport, PartnerDashboard, PartnerUsageReport, UsageGroups,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::timestamp;

/// `GET …/analytics?from_date=&to_date=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// First day, `YYYY-MM-DD` (UTC, inclusive); defaults to 29 days before `to_date`.
    pub from_date: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC, inclusive); defaults to today. At most 366 days in all.
    pub to_date: Option<String>,
}

/// `GET /v1/distributor/reports/usage?month=&group_by=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageReportQuery {
    /// `YYYY-MM`; defaults to the current month (UTC).
    pub month: Option<String>,
    /// `partner` (default), `customer` or `product`.
    pub group_by: Option<String>,
}

/// Runs by status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunCountsOut {
    /// All runs: the sum of the four statuses.
    pub runs: u64,
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
}

impl From<RunCounts> for RunCountsOut {
    fn from(c: RunCounts) -> Self {
        Self { runs: c.total(), queued: c.queued, running: c.running, completed: c.completed, failed: c.failed }
    }
}

fn by_status(c: RunCounts) -> BTreeMap<String, u64> {
    RunStatus::ALL.into_iter().map(|s| (s.as_str().to_owned(), c.get(s))).collect()
}

fn by_product(b: &RunBreakdown) -> BTreeMap<String, RunCountsOut> {
    b.by_product.iter().map(|(p, c)| (p.clone(), (*c).into())).collect()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUsageRunsOut {
    /// Runs created in the month (a deleted customer's runs go with it).
    pub total: u64,
    /// Units of the monthly limit used: failed runs give theirs back, deleted customers' keep theirs.
    pub used: u64,
    /// The plan's monthly run limit; `-1` means unlimited.
    pub limit: i64,
    /// Every catalog product, with its runs by status.
    pub by_product: BTreeMap<String, RunCountsOut>,
    /// `queued`, `running`, `completed`, `failed`.
    pub by_status: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerCountsOut {
    pub total: u64,
    /// Customers with at least one run in the period.
    pub with_runs: u64,
}

/// `GET /v1/partner/usage`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUsageReportOut {
    #[schema(example = "2026-04")]
    pub month: String,
    pub runs: PartnerUsageRunsOut,
    pub customers: CustomerCountsOut,
}

impl From<&PartnerUsageReport> for PartnerUsageReportOut {
    fn from(r: &PartnerUsageReport) -> Self {
        Self {
            month: r.month.to_string(),
            runs: PartnerUsageRunsOut {
                total: r.runs.totals.total(),
                used: r.units_used,
                limit: r.runs_limit.as_wire(),
                by_product: by_product(&r.runs),
                by_status: by_status(r.runs.totals),
            },
            customers: CustomerCountsOut { total: r.customers, with_runs: r.customers_with_runs },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerRunsOut {
    pub id: String,
    pub company: String,
    pub status: String,
    /// Current customer count.
    pub customers: u64,
    #[serde(flatten)]
    pub runs: RunCountsOut,
}

impl From<&PartnerRuns> for PartnerRunsOut {
    fn from(p: &PartnerRuns) -> Self {
        Self {
            id: p.id.to_string(),
            company: p.company.clone(),
            status: p.status.to_string(),
            customers: p.customers,
            runs: p.runs.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRunsOut {
    pub id: String,
    pub name: String,
    pub partner_id: String,
    #[serde(flatten)]
    pub runs: RunCountsOut,
}

impl From<&CustomerRuns> for CustomerRunsOut {
    fn from(c: &CustomerRuns) -> Self {
        Self { id: c.id.to_string(), name: c.name.clone(), partner_id: c.partner_id.to_string(), runs: c.runs.into() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductRunsOut {
    pub id: String,
    #[serde(flatten)]
    pub runs: RunCountsOut,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageSummaryOut {
    #[serde(flatten)]
    pub runs: RunCountsOut,
    /// Current customers of your partners.
    pub customers: u64,
}

/// `GET /v1/distributor/reports/usage`: totals plus one row per partner, customer or product
/// (only the list named by `groupBy` is present).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReportOut {
    #[schema(example = "2026-04")]
    pub month: String,
    #[schema(example = "partner")]
    pub group_by: String,
    pub total_partners: u64,
    pub active_partners: u64,
    pub summary: UsageSummaryOut,
    /// Every partner, most runs first (`group_by=partner`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partners: Option<Vec<PartnerRunsOut>>,
    /// Customers with runs in the month, most runs first (`group_by=customer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customers: Option<Vec<CustomerRunsOut>>,
    /// Every catalog product (`group_by=product`), most runs first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<ProductRunsOut>>,
}

impl From<&DistributorUsageReport> for UsageReportOut {
    fn from(r: &DistributorUsageReport) -> Self {
        let (mut partners, mut customers, mut products) = (None, None, None);
        match &r.groups {
            UsageGroups::Partners(rows) => partners = Some(rows.iter().map(Into::into).collect()),
            UsageGroups::Customers(rows) => customers = Some(rows.iter().map(Into::into).collect()),
            UsageGroups::Products(rows) => {
                let mut rows: Vec<ProductRunsOut> =
                    rows.iter().map(|(id, c)| ProductRunsOut { id: id.clone(), runs: (*c).into() }).collect();
                rows.sort_by(|a, b| b.runs.runs.cmp(&a.runs.runs).then_with(|| a.id.cmp(&b.id)));
                products = Some(rows);
            }
        }
        Self {
            month: r.month.to_string(),
            group_by: r.group_by.as_str().to_owned(),
            total_partners: r.partners.total(),
            active_partners: r.partners.active,
            summary: UsageSummaryOut { runs: r.runs.into(), customers: r.customers },
            partners,
            customers,
            products,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerDashboardRunsOut {
    /// Runs created today (UTC).
    pub today: u64,
    /// Units of this month's limit used.
    pub this_month: u64,
    /// `-1` means unlimited.
    pub limit: i64,
    /// `null` when unlimited.
    pub remaining: Option<u64>,
}

/// `GET /v1/partner/dashboard`: a live snapshot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerDashboardOut {
    #[schema(example = "2026-04-03T10:00:00Z")]
    pub generated_at: String,
    #[schema(example = "2026-04")]
    pub month: String,
    /// `withRuns`: customers with a run this month.
    pub customers: CustomerCountsOut,
    pub runs: PartnerDashboardRunsOut,
}

impl From<&PartnerDashboard> for PartnerDashboardOut {
    fn from(d: &PartnerDashboard) -> Self {
        let remaining = match d.runs_limit {
            partnerd_domain::catalog::RunLimit::Limited(n) => Some(u64::from(n).saturating_sub(d.runs_this_month)),
            partnerd_domain::catalog::RunLimit::Unlimited => None,
        };
        Self {
            generated_at: timestamp(d.generated_at),
            month: d.month.to_string(),
            customers: CustomerCountsOut { total: d.customers, with_runs: d.active_customers },
            runs: PartnerDashboardRunsOut {
                today: d.runs_today,
                this_month: d.runs_this_month,
                limit: d.runs_limit.as_wire(),
                remaining,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerCountsOut {
    pub total: u64,
    pub active: u64,
    pub pending: u64,
    pub suspended: u64,
    /// Partners that used at least 80 % of this month's run limit (unlimited plans never do).
    pub near_limit: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributorDashboardRunsOut {
    pub today: u64,
    /// Units of their limits your partners used this month.
    pub this_month: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalOut {
    pub total: u64,
}

/// `GET /v1/distributor/dashboard`: a live snapshot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributorDashboardOut {
    #[schema(example = "2026-04-03T10:00:00Z")]
    pub generated_at: String,
    #[schema(example = "2026-04")]
    pub month: String,
    pub partners: PartnerCountsOut,
    pub customers: TotalOut,
    pub runs: DistributorDashboardRunsOut,
}

impl From<&DistributorDashboard> for DistributorDashboardOut {
    fn from(d: &DistributorDashboard) -> Self {
        let p = d.partners;
        Self {
            generated_at: timestamp(d.generated_at),
            month: d.month.to_string(),
            partners: PartnerCountsOut {
                total: p.total(),
                active: p.active,
                pending: p.pending,
                suspended: p.suspended,
                near_limit: p.near_limit,
            },
            customers: TotalOut { total: d.customers },
            runs: DistributorDashboardRunsOut { today: d.runs_today, this_month: d.runs_this_month },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodOut {
    #[schema(example = "2026-03-05")]
    pub from: String,
    #[schema(example = "2026-04-03")]
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsTotalsOut {
    #[serde(flatten)]
    pub runs: RunCountsOut,
    /// Distinct customers with a run in the period.
    pub customers: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductTotalsOut {
    pub runs: u64,
    pub completed: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayOut {
    #[schema(example = "2026-04-01")]
    pub date: String,
    pub runs: u64,
    pub completed: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopCustomerOut {
    pub id: String,
    pub name: String,
    pub runs: u64,
    /// Distributor analytics only: the customer's partner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopPartnerOut {
    pub id: String,
    pub company: String,
    pub runs: u64,
}

/// `GET …/analytics`: runs created in the period (by UTC day of creation).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsOut {
    pub period: PeriodOut,
    pub totals: AnalyticsTotalsOut,
    /// Every catalog product.
    pub by_product: BTreeMap<String, ProductTotalsOut>,
    /// `queued`, `running`, `completed`, `failed`.
    pub by_status: BTreeMap<String, u64>,
    /// One entry per day of the period, oldest first, days without runs included.
    pub time_series: Vec<DayOut>,
    /// At most 10, most runs first.
    pub top_customers: Vec<TopCustomerOut>,
    /// Distributor analytics only: at most 10 partners with runs, most first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_partners: Option<Vec<TopPartnerOut>>,
}

impl From<&Analytics> for AnalyticsOut {
    fn from(a: &Analytics) -> Self {
        let distributor = a.top_partners.is_some();
        Self {
            period: PeriodOut { from: wire_date(a.period.first()), to: wire_date(a.period.last()) },
            totals: AnalyticsTotalsOut { runs: a.runs.totals.into(), customers: a.customers },
            by_product: a
                .runs
                .by_product
                .iter()
                .map(|(p, c)| {
                    (p.clone(), ProductTotalsOut { runs: c.total(), completed: c.completed, failed: c.failed })
                })
                .collect(),
            by_status: by_status(a.runs.totals),
            time_series: a
                .runs
                .by_day
                .iter()
                .map(|(d, c)| DayOut { date: wire_date(*d), runs: c.total(), completed: c.completed, failed: c.failed })
                .collect(),
            top_customers: a
                .top_customers
                .iter()
                .map(|c| TopCustomerOut {
                    id: c.id.to_string(),
                    name: c.name.clone(),
                    runs: c.runs.total(),
                    partner_id: distributor.then(|| c.partner_id.to_string()),
                })
                .collect(),
            top_partners: a.top_partners.as_ref().map(|rows| {
                rows.iter()
                    .map(|p| TopPartnerOut { id: p.id.to_string(), company: p.company.clone(), runs: p.runs.total() })
                    .collect()
            }),
        }
    }
}
