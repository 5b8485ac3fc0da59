use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::billing::Money;
use crate::catalog::{Catalog, PlanId, RunLimit};
use crate::ids::{DistributorId, PartnerId};
use crate::ports::{
    Clock, DistributorRepository, InfraError, PartnerRepository, ReportRepository, RequestCountRepository,
};
use crate::report::{
    ApiRequests, CustomerRuns, PartnerRuns, PartnerSpend, PartnerStatusCounts, Period, ReportScope, RunBreakdown,
    RunCounts,
};
use crate::values::{FieldError, InvalidValue, Month};

/// How many customers (or partners) analytics list as the top ones.
pub const TOP_N: u32 = 10;

/// Per cent of its monthly limit at which a partner counts as near it on a dashboard.
pub const NEAR_LIMIT_PERCENT: u32 = 80;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("account not found")]
    NotFound,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// What a distributor's usage report has one row per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    #[default]
    Partner,
    Customer,
    Product,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Customer => "customer",
            Self::Product => "product",
        }
    }
}

impl FromStr for GroupBy {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        [Self::Partner, Self::Customer, Self::Product]
            .into_iter()
            .find(|g| g.as_str() == raw)
            .ok_or(InvalidValue { reason: "must be one of partner, customer, product" })
    }
}

/// A partner's runs and customers in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerUsageReport {
    pub month: Month,
    /// Runs created in the month (those of deleted customers are gone with them).
    pub runs: RunBreakdown,
    /// Units of the month's limit used (a failed run gives its unit back; a deleted customer's
    /// runs keep theirs).
    pub units_used: u64,
    pub runs_limit: RunLimit,
    pub customers: u64,
    pub customers_with_runs: u64,
    /// API requests made with the partner's keys on the month's days, as flushed so far.
    pub api_requests: u64,
}

/// The rows of a distributor's usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageGroups {
    Partners(Vec<PartnerRuns>),
    Customers(Vec<CustomerRuns>),
    Products(BTreeMap<String, RunCounts>),
}

/// A distributor's aggregated usage report for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributorUsageReport {
    pub month: Month,
    pub group_by: GroupBy,
    pub partners: PartnerStatusCounts,
    pub customers: u64,
    pub runs: RunCounts,
    /// API requests on the month's days, as flushed so far: the distributor's own and each of
    /// its partners'.
    pub api_requests: ApiRequests,
    pub groups: UsageGroups,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerDashboard {
    pub generated_at: OffsetDateTime,
    pub month: Month,
    pub customers: u64,
    /// Customers with a run created this month.
    pub active_customers: u64,
    pub runs_today: u64,
    /// Units of this month's limit used.
    pub runs_this_month: u64,
    pub runs_limit: RunLimit,
    /// API requests made with the partner's keys today (UTC), as flushed so far.
    pub api_requests_today: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributorDashboard {
    pub generated_at: OffsetDateTime,
    pub month: Month,
    pub partners: PartnerStatusCounts,
    pub customers: u64,
    pub runs_today: u64,
    /// Units of their limits the distributor's partners used this month.
    pub runs_this_month: u64,
    /// API requests today (UTC), as flushed so far: the distributor's own plus its partners'.
    pub api_requests_today: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analytics {
    pub period: Period,
    pub runs: RunBreakdown,
    /// Distinct customers with a run created in the period.
    pub customers: u64,
    pub top_customers: Vec<CustomerRuns>,
    /// Distributors only: partners with runs in the period, most first.
    pub top_partners: Option<Vec<PartnerRuns>>,
    /// What was invoiced in the period (the partner's invoices, or the distributor's partners'),
    /// one amount per currency, by currency code.
    pub spend: Vec<Money>,
    /// Distributors only: per currency, the partners invoiced most in the period (at most
    /// [`TOP_N`] each), by currency code, then most first.
    pub top_spenders: Option<Vec<PartnerSpend>>,
}

/// Totals per currency (by code) of `rows`, and per currency the first [`TOP_N`] rows (the
/// store sorts them by currency, then most first).
fn spend_of(rows: Vec<PartnerSpend>) -> (Vec<Money>, Vec<PartnerSpend>) {
    let mut totals: Vec<Money> = Vec::new();
    let mut top: Vec<PartnerSpend> = Vec::new();
    let mut shown = 0;
    for row in rows {
        match totals.last_mut() {
            Some(total) if total.currency() == row.spend.currency() => {
                *total = Money::new(total.amount() + row.spend.amount(), total.currency());
            }
            _ => {
                totals.push(row.spend);
                shown = 0;
            }
        }
        if shown < TOP_N as usize {
            shown += 1;
            top.push(row);
        }
    }
    (totals, top)
}

/// Usage reports, dashboards and analytics. Every figure is an aggregate the store computes;
/// this service picks the period, fills in plan limits from the catalog and zero-fills.
pub struct ReportService {
    reports: Arc<dyn ReportRepository>,
    requests: Arc<dyn RequestCountRepository>,
    partners: Arc<dyn PartnerRepository>,
    distributors: Arc<dyn DistributorRepository>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
}

impl ReportService {
    pub fn new(
        reports: Arc<dyn ReportRepository>,
        requests: Arc<dyn RequestCountRepository>,
        partners: Arc<dyn PartnerRepository>,
        distributors: Arc<dyn DistributorRepository>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { reports, requests, partners, distributors, catalog, clock }
    }

    async fn api_requests(&self, scope: &ReportScope, period: &Period) -> Result<ApiRequests, InfraError> {
        Ok(ApiRequests::of(scope, &self.requests.totals(scope, period).await?))
    }

    fn month_or_current(&self, month: Option<&str>) -> Result<Month, FieldError> {
        match month {
            Some(raw) => FieldError::check("month", raw, Month::parse),
            None => Ok(Month::containing(self.clock.now())),
        }
    }

    fn limit_of(&self, plan: &PlanId) -> RunLimit {
        // A plan removed from the catalog after the partner chose it keeps no allowance.
        self.catalog.plan(plan).map_or(RunLimit::Limited(0), |p| p.run_limit)
    }

    fn breakdown(&self, period: &Period, tallies: &[crate::report::RunTally]) -> RunBreakdown {
        RunBreakdown::of(period, tallies, self.catalog.products().iter().map(|p| &p.id))
    }

    /// `GET /v1/partner/usage?month=` (default: this month).
    pub async fn partner_usage(
        &self,
        partner: &PartnerId,
        month: Option<&str>,
    ) -> Result<PartnerUsageReport, ReportError> {
        let month = self.month_or_current(month)?;
        let found = self.partners.get(partner).await?.ok_or(ReportError::NotFound)?;
        let period = Period::month(month);
        let scope = ReportScope::Partner(partner.clone());
        let tallies = self.reports.run_tallies(&scope, &period).await?;
        let usage = self.partners.usage(partner, month).await?;
        let customers_with_runs = self.reports.customers_with_runs(&scope, &period).await?;
        let api_requests = self.api_requests(&scope, &period).await?;
        Ok(PartnerUsageReport {
            month,
            runs: self.breakdown(&period, &tallies),
            units_used: usage.runs_used,
            runs_limit: self.limit_of(found.plan()),
            customers: usage.customers_count,
            customers_with_runs,
            api_requests: api_requests.total(),
        })
    }

    /// `GET /v1/distributor/reports/usage?month=&group_by=` (defaults: this month, by partner).
    pub async fn distributor_usage(
        &self,
        distributor: &DistributorId,
        month: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<DistributorUsageReport, ReportError> {
        let month = self.month_or_current(month)?;
        let group_by = group_by.map(|raw| FieldError::check("group_by", raw, GroupBy::from_str)).transpose()?;
        let group_by = group_by.unwrap_or_default();
        let period = Period::month(month);
        let scope = ReportScope::Distributor(distributor.clone());
        let tallies = self.reports.run_tallies(&scope, &period).await?;
        let breakdown = self.breakdown(&period, &tallies);
        let partners = self.reports.partner_statuses(distributor, month, &[]).await?;
        let totals = self.distributors.totals(distributor, month).await?;
        let groups = match group_by {
            GroupBy::Partner => UsageGroups::Partners(self.reports.partner_runs(distributor, &period, None).await?),
            GroupBy::Customer => UsageGroups::Customers(self.reports.customer_runs(&scope, &period, None).await?),
            GroupBy::Product => UsageGroups::Products(breakdown.by_product),
        };
        let api_requests = self.api_requests(&scope, &period).await?;
        Ok(DistributorUsageReport {
            month,
            group_by,
            partners,
            customers: totals.customers_count,
            runs: breakdown.totals,
            api_requests,
            groups,
        })
    }

    pub async fn partner_dashboard(&self, partner: &PartnerId) -> Result<PartnerDashboard, ReportError> {
        let now = self.clock.now();
        let month = Month::containing(now);
        let found = self.partners.get(partner).await?.ok_or(ReportError::NotFound)?;
        let scope = ReportScope::Partner(partner.clone());
        let today = self.reports.run_tallies(&scope, &Period::day_of(now)).await?;
        let usage = self.partners.usage(partner, month).await?;
        let active_customers = self.reports.customers_with_runs(&scope, &Period::month(month)).await?;
        let requests_today = self.api_requests(&scope, &Period::day_of(now)).await?;
        Ok(PartnerDashboard {
            generated_at: now,
            month,
            customers: usage.customers_count,
            active_customers,
            runs_today: today.iter().map(|t| t.runs).sum(),
            runs_this_month: usage.runs_used,
            runs_limit: self.limit_of(found.plan()),
            api_requests_today: requests_today.total(),
        })
    }

    pub async fn distributor_dashboard(
        &self,
        distributor: &DistributorId,
    ) -> Result<DistributorDashboard, ReportError> {
        let now = self.clock.now();
        let month = Month::containing(now);
        let scope = ReportScope::Distributor(distributor.clone());
        let today = self.reports.run_tallies(&scope, &Period::day_of(now)).await?;
        let totals = self.distributors.totals(distributor, month).await?;
        let partners = self.reports.partner_statuses(distributor, month, &self.near_limit_units()).await?;
        let requests_today = self.api_requests(&scope, &Period::day_of(now)).await?;
        Ok(DistributorDashboard {
            generated_at: now,
            month,
            partners,
            customers: totals.customers_count,
            runs_today: today.iter().map(|t| t.runs).sum(),
            runs_this_month: totals.runs_in_month,
            api_requests_today: requests_today.total(),
        })
    }

    /// For each limited plan, the first whole number of units at or past [`NEAR_LIMIT_PERCENT`]
    /// of its limit (at least one), as the usage thresholds count them.
    fn near_limit_units(&self) -> Vec<(PlanId, u32)> {
        self.catalog
            .plans()
            .iter()
            .filter_map(|p| match p.run_limit {
                RunLimit::Limited(limit) => {
                    let units = (u64::from(limit) * u64::from(NEAR_LIMIT_PERCENT)).div_ceil(100).max(1);
                    Some((p.id.clone(), u32::try_from(units).unwrap_or(u32::MAX)))
                }
                RunLimit::Unlimited => None,
            })
            .collect()
    }

    /// `GET /v1/{partner|distributor}/analytics?from_date=&to_date=`.
    pub async fn analytics(
        &self,
        scope: &ReportScope,
        from_date: Option<&str>,
        to_date: Option<&str>,
    ) -> Result<Analytics, ReportError> {
        let today = self.clock.now().to_offset(time::UtcOffset::UTC).date();
        let period = Period::from_query(from_date, to_date, today)?;
        let tallies = self.reports.run_tallies(scope, &period).await?;
        let customers = self.reports.customers_with_runs(scope, &period).await?;
        let top_customers = self.reports.customer_runs(scope, &period, Some(TOP_N)).await?;
        let top_partners = match scope {
            ReportScope::Distributor(d) => {
                let mut top = self.reports.partner_runs(d, &period, Some(TOP_N)).await?;
                // The query lists partners without runs too (after those with some).
                top.retain(|p| p.runs.total() > 0);
                Some(top)
            }
            ReportScope::Partner(_) => None,
        };
        let (spend, top_spenders) = spend_of(self.reports.partner_spend(scope, &period).await?);
        let top_spenders = matches!(scope, ReportScope::Distributor(_)).then_some(top_spenders);
        Ok(Analytics {
            period,
            runs: self.breakdown(&period, &tallies),
            customers,
            top_customers,
            top_partners,
            spend,
            top_spenders,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountStatus, Partner};
    use crate::billing::Subscription;
    use crate::catalog::ProductId;
    use crate::ports::{
        AccountRequests, CountedAccount, MockDistributorRepository, MockPartnerRepository, MockReportRepository,
        MockRequestCountRepository, PartnerUsage,
    };
    use crate::report::RunTally;
    use crate::run::RunStatus;
    use crate::testing::{FixedClock, SequentialIds};
    use crate::values::{BillingInterval, Currency, DisplayName, Email};
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);

    fn service(
        reports: MockReportRepository,
        partners: MockPartnerRepository,
        distributors: MockDistributorRepository,
    ) -> ReportService {
        service_counting(reports, MockRequestCountRepository::new(), partners, distributors)
    }

    fn service_counting(
        reports: MockReportRepository,
        requests: MockRequestCountRepository,
        partners: MockPartnerRepository,
        distributors: MockDistributorRepository,
    ) -> ReportService {
        ReportService::new(
            Arc::new(reports),
            Arc::new(requests),
            Arc::new(partners),
            Arc::new(distributors),
            Arc::new(Catalog::default()),
            Arc::new(FixedClock::at(NOW)),
        )
    }

    /// A service whose ports must not be called: validation fails first.
    fn untouched() -> ReportService {
        service(MockReportRepository::new(), MockPartnerRepository::new(), MockDistributorRepository::new())
    }

    fn invalid_field(e: ReportError) -> String {
        match e {
            ReportError::Field(FieldError::Invalid { field, .. }) => field,
            other => panic!("expected INVALID_FIELD, got {other:?}"),
        }
    }

    fn partner(ids: &SequentialIds, plan: &str) -> Partner {
        Partner {
            id: PartnerId::generate(ids),
            distributor_id: None,
            company: DisplayName::parse("Acme MSP").unwrap(),
            email: Email::parse("admin@acmemsp.com").unwrap(),
            name: DisplayName::parse("John Doe").unwrap(),
            status: AccountStatus::Active,
            subscription: Subscription::starting(
                PlanId::parse(plan).unwrap(),
                BillingInterval::Monthly,
                Currency::Usd,
                NOW,
            ),
            created_at: NOW,
            updated_at: NOW,
        }
    }

    #[tokio::test]
    async fn bad_months_group_bys_and_dates_are_refused_before_any_query() {
        let ids = SequentialIds::default();
        let p = PartnerId::generate(&ids);
        let d = DistributorId::generate(&ids);
        let s = untouched();
        for bad in ["2026-4", "2026-13", "April", "", "1969-12"] {
            assert_eq!(invalid_field(s.partner_usage(&p, Some(bad)).await.unwrap_err()), "month");
            assert_eq!(invalid_field(s.distributor_usage(&d, Some(bad), None).await.unwrap_err()), "month");
        }
        for bad in ["account", "Partner", "", "partners"] {
            let e = s.distributor_usage(&d, Some("2026-04"), Some(bad)).await.unwrap_err();
            assert_eq!(invalid_field(e), "group_by", "{bad}");
        }
        let scope = ReportScope::Distributor(d);
        let cases = [
            (Some("2026-02-30"), None, "from_date"),
            (None, Some("2026-4-1"), "to_date"),
            (Some("2026-04-02"), Some("2026-04-01"), "to_date"),
            (Some("2025-01-01"), Some("2026-01-02"), "to_date"),
        ];
        for (from, to, field) in cases {
            assert_eq!(invalid_field(s.analytics(&scope, from, to).await.unwrap_err()), field, "{from:?} {to:?}");
        }
    }

    #[tokio::test]
    async fn partner_usage_defaults_to_this_month_and_zero_fills_products() {
        let ids = SequentialIds::default();
        let found = partner(&ids, "professional");
        let id = found.id.clone();
        let mut partners = MockPartnerRepository::new();
        partners.expect_get().returning(move |_| Ok(Some(found.clone())));
        partners
            .expect_usage()
            .withf(|_, m| m.to_string() == "2026-04")
            .returning(|_, _| Ok(PartnerUsage { runs_used: 3, customers_count: 5 }));
        let mut reports = MockReportRepository::new();
        let april = Period::month(Month::parse("2026-04").unwrap());
        reports.expect_run_tallies().withf(move |_, p| *p == april).returning(|_, _| {
            let e8 = ProductId::parse("essential-eight").unwrap();
            Ok(vec![
                RunTally { day: date!(2026 - 04 - 01), product: e8.clone(), status: RunStatus::Completed, runs: 2 },
                RunTally { day: date!(2026 - 04 - 02), product: e8, status: RunStatus::Failed, runs: 1 },
            ])
        });
        reports.expect_customers_with_runs().returning(|_, _| Ok(2));
        let mut requests = MockRequestCountRepository::new();
        let me = id.clone();
        requests.expect_totals().withf(move |_, p| *p == april).returning(move |_, _| {
            Ok(vec![AccountRequests { account: CountedAccount::Partner(me.clone()), requests: 41 }])
        });
        let s = service_counting(reports, requests, partners, MockDistributorRepository::new());
        let report = s.partner_usage(&id, None).await.unwrap();
        assert_eq!(report.api_requests, 41);
        assert_eq!(report.month.to_string(), "2026-04");
        assert_eq!((report.units_used, report.runs_limit), (3, RunLimit::Limited(200)));
        assert_eq!((report.customers, report.customers_with_runs), (5, 2));
        assert_eq!(report.runs.totals, RunCounts { completed: 2, failed: 1, ..Default::default() });
        assert_eq!(report.runs.by_product.len(), 4, "every catalog product, with or without runs");
        assert_eq!(report.runs.by_product["nist-csf"], RunCounts::default());
    }

    #[tokio::test]
    async fn near_limit_thresholds_come_from_the_catalogs_limited_plans() {
        let ids = SequentialIds::default();
        let d = DistributorId::generate(&ids);
        let mut reports = MockReportRepository::new();
        reports.expect_run_tallies().returning(|_, p| {
            assert_eq!(p.len(), 1, "runs today");
            Ok(vec![])
        });
        reports
            .expect_partner_statuses()
            .withf(|_, _, near| {
                let mut got: Vec<(String, u32)> = near.iter().map(|(p, n)| (p.to_string(), *n)).collect();
                got.sort();
                got == [("professional".to_owned(), 160), ("starter".to_owned(), 40)]
            })
            .returning(|_, _, _| Ok(PartnerStatusCounts { active: 2, near_limit: 1, ..Default::default() }));
        let mut distributors = MockDistributorRepository::new();
        distributors.expect_totals().returning(|_, _| {
            Ok(crate::ports::DistributorTotals { partners_count: 2, runs_in_month: 7, customers_count: 4 })
        });
        let mut requests = MockRequestCountRepository::new();
        let (me, theirs) = (d.clone(), PartnerId::generate(&ids));
        requests.expect_totals().returning(move |_, p| {
            assert_eq!(p.len(), 1, "requests today");
            Ok(vec![
                AccountRequests { account: CountedAccount::Distributor(me.clone()), requests: 2 },
                AccountRequests { account: CountedAccount::Partner(theirs.clone()), requests: 3 },
            ])
        });
        let s = service_counting(reports, requests, MockPartnerRepository::new(), distributors);
        let dash = s.distributor_dashboard(&d).await.unwrap();
        assert_eq!((dash.partners.near_limit, dash.runs_this_month, dash.customers), (1, 7, 4));
        assert_eq!(dash.api_requests_today, 5, "the distributor's own requests and its partners'");
    }

    #[tokio::test]
    async fn a_distributors_top_partners_leave_out_those_without_runs() {
        let ids = SequentialIds::default();
        let d = DistributorId::generate(&ids);
        let busy = PartnerId::generate(&ids);
        let idle = PartnerId::generate(&ids);
        let mut reports = MockReportRepository::new();
        reports.expect_run_tallies().returning(|_, _| Ok(vec![]));
        reports.expect_customers_with_runs().returning(|_, _| Ok(0));
        reports.expect_customer_runs().withf(|_, _, limit| *limit == Some(TOP_N)).returning(|_, _, _| Ok(vec![]));
        reports.expect_partner_spend().returning(|_, _| Ok(vec![]));
        reports.expect_partner_runs().returning(move |_, _, _| {
            let row = |id: &PartnerId, completed| PartnerRuns {
                id: id.clone(),
                company: "X".into(),
                status: AccountStatus::Active,
                runs: RunCounts { completed, ..Default::default() },
                customers: 1,
            };
            Ok(vec![row(&busy, 3), row(&idle, 0)])
        });
        let s = service(reports, MockPartnerRepository::new(), MockDistributorRepository::new());
        let a = s.analytics(&ReportScope::Distributor(d), None, None).await.unwrap();
        assert_eq!(a.top_partners.unwrap().len(), 1);
        assert_eq!((a.period.first(), a.period.last()), (date!(2026 - 03 - 05), date!(2026 - 04 - 03)));
        assert_eq!(a.runs.by_day.len(), 30);
    }

    #[tokio::test]
    async fn a_distributors_usage_counts_its_own_requests_and_each_partners() {
        let ids = SequentialIds::default();
        let d = DistributorId::generate(&ids);
        let (busy, idle) = (PartnerId::generate(&ids), PartnerId::generate(&ids));
        let mut reports = MockReportRepository::new();
        reports.expect_run_tallies().returning(|_, _| Ok(vec![]));
        reports.expect_partner_statuses().returning(|_, _, _| Ok(PartnerStatusCounts::default()));
        let rows = [busy.clone(), idle.clone()];
        reports.expect_partner_runs().returning(move |_, _, _| {
            Ok(rows
                .iter()
                .map(|id| PartnerRuns {
                    id: id.clone(),
                    company: "X".into(),
                    status: AccountStatus::Active,
                    runs: RunCounts::default(),
                    customers: 0,
                })
                .collect())
        });
        let mut distributors = MockDistributorRepository::new();
        distributors.expect_totals().returning(|_, _| {
            Ok(crate::ports::DistributorTotals { partners_count: 2, runs_in_month: 0, customers_count: 0 })
        });
        let mut requests = MockRequestCountRepository::new();
        let (scope, me, b) = (ReportScope::Distributor(d.clone()), d.clone(), busy.clone());
        let march = Period::month(Month::parse("2026-03").unwrap());
        requests.expect_totals().withf(move |s, p| *s == scope && *p == march).times(1).returning(move |_, _| {
            Ok(vec![
                AccountRequests { account: CountedAccount::Distributor(me.clone()), requests: 9 },
                AccountRequests { account: CountedAccount::Partner(b.clone()), requests: 30 },
            ])
        });
        let s = service_counting(reports, requests, MockPartnerRepository::new(), distributors);
        let report = s.distributor_usage(&d, Some("2026-03"), None).await.unwrap();
        let r = &report.api_requests;
        assert_eq!((r.own, r.of_partner(&busy), r.of_partner(&idle), r.total()), (9, 30, 0, 39));
        assert!(matches!(report.groups, UsageGroups::Partners(ref rows) if rows.len() == 2));
    }
}
