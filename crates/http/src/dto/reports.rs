//! Usage reports, dashboards and analytics on the wire (camelCase, dates `YYYY-MM-DD`).

use std::collections::BTreeMap;

use partnerd_domain::billing::Money;
use partnerd_domain::report::{ApiRequests, CustomerRuns, PartnerRuns, RunBreakdown, RunCounts, wire_date};
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
    /// Authenticated requests made with your keys on the month's days (UTC). Counts reach the
    /// report within a few seconds (the server's flush interval); the request that reads the
    /// report is counted after its answer, so it shows in later reads, never in its own.
    pub api_requests: u64,
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
            api_requests: r.api_requests,
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
    /// Authenticated requests made with this partner's keys in the month.
    pub api_requests: u64,
}

impl PartnerRunsOut {
    fn new(p: &PartnerRuns, requests: &ApiRequests) -> Self {
        Self {
            id: p.id.to_string(),
            company: p.company.clone(),
            status: p.status.to_string(),
            customers: p.customers,
            runs: p.runs.into(),
            api_requests: requests.of_partner(&p.id),
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
    /// Authenticated requests in the month (UTC days) made with your keys and with your
    /// partners' keys: `ownApiRequests` plus every partner's `apiRequests`. Counts reach the
    /// report within a few seconds (the server's flush interval).
    pub api_requests: u64,
    /// The part of `apiRequests` made with your own keys (this report's reads included, once
    /// counted: a read is counted after its answer).
    pub own_api_requests: u64,
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
            UsageGroups::Partners(rows) => {
                partners = Some(rows.iter().map(|p| PartnerRunsOut::new(p, &r.api_requests)).collect());
            }
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
            summary: UsageSummaryOut {
                runs: r.runs.into(),
                customers: r.customers,
                api_requests: r.api_requests.total(),
                own_api_requests: r.api_requests.own,
            },
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
    /// Authenticated requests made with your keys today (UTC), as counted a few seconds ago
    /// (the server's flush interval).
    pub api_requests_today: u64,
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
            api_requests_today: d.api_requests_today,
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
    /// Authenticated requests today (UTC) made with your keys and your partners' keys, as
    /// counted a few seconds ago (the server's flush interval).
    pub api_requests_today: u64,
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
            api_requests_today: d.api_requests_today,
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
    /// What was invoiced in the period (invoices issued in it: the partner's own, or the
    /// distributor's partners'), one entry per currency. Empty when nothing was.
    pub spend: Vec<AmountOut>,
}

/// An amount of money: a decimal string in a currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct AmountOut {
    /// ISO 4217, lower case as in the reference.
    #[schema(example = "aud")]
    pub currency: String,
    #[schema(example = "598.00")]
    pub amount: String,
}

impl From<Money> for AmountOut {
    fn from(m: Money) -> Self {
        Self { currency: m.currency().code().to_ascii_lowercase(), amount: m.to_decimal_string() }
    }
}

/// A partner among the period's top spenders.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopSpenderOut {
    pub id: String,
    pub company: String,
    #[schema(example = "aud")]
    pub currency: String,
    /// The partner's invoices issued in the period, in this currency.
    #[schema(example = "449.00")]
    pub spend: String,
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
    /// Distributor analytics only: per currency (by code), at most 10 partners invoiced most in
    /// the period, most first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_partners_by_spend: Option<Vec<TopSpenderOut>>,
}

impl From<&Analytics> for AnalyticsOut {
    fn from(a: &Analytics) -> Self {
        let distributor = a.top_partners.is_some();
        Self {
            period: PeriodOut { from: wire_date(a.period.first()), to: wire_date(a.period.last()) },
            totals: AnalyticsTotalsOut {
                runs: a.runs.totals.into(),
                customers: a.customers,
                spend: a.spend.iter().copied().map(Into::into).collect(),
            },
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
            top_partners_by_spend: a.top_spenders.as_ref().map(|rows| {
                rows.iter()
                    .map(|p| TopSpenderOut {
                        id: p.id.to_string(),
                        company: p.company.clone(),
                        currency: p.spend.currency().code().to_ascii_lowercase(),
                        spend: p.spend.to_decimal_string(),
                    })
                    .collect()
            }),
        }
    }
}
