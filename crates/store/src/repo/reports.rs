//! Aggregates for reports, dashboards and analytics: each method is one grouped query over
//! indexed columns (`runs_partner_report`, `customers_partner`, `partners_distributor`), so the
//! database counts and only the counts cross the wire.

use std::str::FromStr;

use async_trait::async_trait;
use partnerd_domain::billing::Money;
use partnerd_domain::catalog::{PlanId, ProductId};
use partnerd_domain::ids::{CustomerId, DistributorId, PartnerId};
use partnerd_domain::ports::{InfraError, ReportRepository};
use partnerd_domain::report::{
    CustomerRuns, PartnerRuns, PartnerSpend, PartnerStatusCounts, Period, ReportScope, RunCounts, RunTally,
};
use partnerd_domain::run::RunStatus;
use partnerd_domain::values::{Currency, Month};
use sea_orm::{FromQueryResult, Value};
use time::{Date, Duration, OffsetDateTime};

use crate::Store;
use crate::convert::{corrupt, infra, millis, status};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Per-status run counts as columns, to follow `SELECT` in a query that groups runs `r`.
const STATUS_COUNTS: &str = "COALESCE(SUM(CASE WHEN r.status = 'queued' THEN 1 ELSE 0 END), 0) AS queued, \
     COALESCE(SUM(CASE WHEN r.status = 'running' THEN 1 ELSE 0 END), 0) AS running, \
     COALESCE(SUM(CASE WHEN r.status = 'completed' THEN 1 ELSE 0 END), 0) AS completed, \
     COALESCE(SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed";

/// The join and condition that keep runs `r` to the scope's partners, with the scope's id as `$1`
/// and the period as `$2` (inclusive) to `$3` (exclusive) in unix milliseconds.
fn scoped_runs(scope: &ReportScope, period: &Period) -> (&'static str, [Value; 3]) {
    let (clause, id) = match scope {
        ReportScope::Partner(p) => ("FROM runs r WHERE r.partner_id = $1", p.to_string()),
        ReportScope::Distributor(d) => {
            ("FROM runs r JOIN partners p ON p.id = r.partner_id WHERE p.distributor_id = $1", d.to_string())
        }
    };
    (clause, [id.into(), millis(period.start()).into(), millis(period.end()).into()])
}

fn limit_clause(limit: Option<u32>) -> String {
    limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
}

fn count(n: i64) -> Result<u64, InfraError> {
    u64::try_from(n).map_err(corrupt)
}

#[derive(Debug, FromQueryResult)]
struct TallyRow {
    day: i64,
    product: String,
    status: String,
    runs: i64,
}

#[derive(Debug, FromQueryResult)]
struct Counts {
    queued: i64,
    running: i64,
    completed: i64,
    failed: i64,
}

impl Counts {
    fn into_domain(self) -> Result<RunCounts, InfraError> {
        Ok(RunCounts {
            queued: count(self.queued)?,
            running: count(self.running)?,
            completed: count(self.completed)?,
            failed: count(self.failed)?,
        })
    }
}

#[derive(Debug, FromQueryResult)]
struct CustomerRow {
    id: String,
    partner_id: String,
    name: String,
    #[sea_orm(nested)]
    counts: Counts,
}

#[derive(Debug, FromQueryResult)]
struct PartnerRow {
    id: String,
    company: String,
    status: String,
    customers: i64,
    #[sea_orm(nested)]
    counts: Counts,
}

#[derive(Debug, FromQueryResult)]
struct StatusRow {
    pending: i64,
    active: i64,
    suspended: i64,
    near_limit: i64,
}

#[derive(Debug, FromQueryResult)]
struct Total {
    n: i64,
}

/// The UTC date of a day number (days since 1970-01-01).
fn day_number(day: i64) -> Result<Date, InfraError> {
    OffsetDateTime::UNIX_EPOCH.date().checked_add(Duration::days(day)).ok_or_else(|| corrupt(format!("day {day}")))
}

#[async_trait]
impl ReportRepository for Store {
    async fn run_tallies(&self, scope: &ReportScope, period: &Period) -> Result<Vec<RunTally>, InfraError> {
        let (from, values) = scoped_runs(scope, period);
        // Integer division buckets unix milliseconds into UTC days on both back-ends.
        let sql = format!(
            "SELECT r.created_at / {MILLIS_PER_DAY} AS day, r.product, r.status, COUNT(*) AS runs {from} \
             AND r.created_at >= $2 AND r.created_at < $3 \
             GROUP BY r.created_at / {MILLIS_PER_DAY}, r.product, r.status"
        );
        let rows =
            TallyRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter()
            .map(|r| {
                Ok(RunTally {
                    day: day_number(r.day)?,
                    product: ProductId::parse(&r.product).map_err(corrupt)?,
                    status: r.status.parse::<RunStatus>().map_err(corrupt)?,
                    runs: count(r.runs)?,
                })
            })
            .collect()
    }

    async fn customers_with_runs(&self, scope: &ReportScope, period: &Period) -> Result<u64, InfraError> {
        let (from, values) = scoped_runs(scope, period);
        let sql =
            format!("SELECT COUNT(DISTINCT r.customer_id) AS n {from} AND r.created_at >= $2 AND r.created_at < $3");
        let row = Total::find_by_statement(self.db.stmt(&sql, values)).one(self.db.reader()).await.map_err(infra)?;
        count(row.map_or(0, |r| r.n))
    }

    async fn customer_runs(
        &self,
        scope: &ReportScope,
        period: &Period,
        limit: Option<u32>,
    ) -> Result<Vec<CustomerRuns>, InfraError> {
        let (from, values) = scoped_runs(scope, period);
        let from = from.replacen("FROM runs r", "FROM runs r JOIN customers c ON c.id = r.customer_id", 1);
        let sql = format!(
            "SELECT r.customer_id AS id, c.partner_id, c.name, {STATUS_COUNTS} {from} \
             AND r.created_at >= $2 AND r.created_at < $3 \
             GROUP BY r.customer_id, c.partner_id, c.name ORDER BY COUNT(*) DESC, r.customer_id{}",
            limit_clause(limit)
        );
        let rows =
            CustomerRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter()
            .map(|r| {
                Ok(CustomerRuns {
                    id: CustomerId::parse(&r.id).map_err(corrupt)?,
                    partner_id: PartnerId::parse(&r.partner_id).map_err(corrupt)?,
                    name: r.name,
                    runs: r.counts.into_domain()?,
                })
            })
            .collect()
    }

    async fn partner_runs(
        &self,
        distributor: &DistributorId,
        period: &Period,
        limit: Option<u32>,
    ) -> Result<Vec<PartnerRuns>, InfraError> {
        let sql = format!(
            "SELECT p.id, p.company, p.status, {STATUS_COUNTS}, \
               (SELECT COUNT(*) FROM customers c WHERE c.partner_id = p.id) AS customers \
             FROM partners p LEFT JOIN runs r ON r.partner_id = p.id AND r.created_at >= $2 AND r.created_at < $3 \
             WHERE p.distributor_id = $1 \
             GROUP BY p.id, p.company, p.status ORDER BY COUNT(r.created_at) DESC, p.id{}",
            limit_clause(limit)
        );
        let values = [distributor.to_string().into(), millis(period.start()).into(), millis(period.end()).into()];
        let rows =
            PartnerRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter()
            .map(|r| {
                Ok(PartnerRuns {
                    id: PartnerId::parse(&r.id).map_err(corrupt)?,
                    company: r.company,
                    status: status(&r.status)?,
                    runs: r.counts.into_domain()?,
                    customers: count(r.customers)?,
                })
            })
            .collect()
    }

    async fn partner_statuses(
        &self,
        distributor: &DistributorId,
        month: Month,
        near_limit: &[(PlanId, u32)],
    ) -> Result<PartnerStatusCounts, InfraError> {
        let mut values: Vec<Value> = vec![distributor.to_string().into(), month.to_string().into()];
        let mut near = Vec::with_capacity(near_limit.len());
        for (plan, units) in near_limit {
            let n = values.len();
            near.push(format!("(p.plan = ${} AND COALESCE(u.used, 0) >= ${})", n + 1, n + 2));
            values.push(plan.to_string().into());
            values.push(i64::from(*units).into());
        }
        let near = if near.is_empty() { "1 = 0".to_owned() } else { near.join(" OR ") };
        let sql = format!(
            "SELECT COALESCE(SUM(CASE WHEN p.status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
               COALESCE(SUM(CASE WHEN p.status = 'active' THEN 1 ELSE 0 END), 0) AS active, \
               COALESCE(SUM(CASE WHEN p.status = 'suspended' THEN 1 ELSE 0 END), 0) AS suspended, \
               COALESCE(SUM(CASE WHEN {near} THEN 1 ELSE 0 END), 0) AS near_limit \
             FROM partners p LEFT JOIN run_usage u ON u.partner_id = p.id AND u.month = $2 \
             WHERE p.distributor_id = $1"
        );
        let row =
            StatusRow::find_by_statement(self.db.stmt(&sql, values)).one(self.db.reader()).await.map_err(infra)?;
        let Some(r) = row else { return Ok(PartnerStatusCounts::default()) };
        Ok(PartnerStatusCounts {
            pending: count(r.pending)?,
            active: count(r.active)?,
            suspended: count(r.suspended)?,
            near_limit: count(r.near_limit)?,
        })
    }

    async fn partner_spend(&self, scope: &ReportScope, period: &Period) -> Result<Vec<PartnerSpend>, InfraError> {
        let (condition, id) = match scope {
            ReportScope::Partner(p) => ("i.account_id = $1", p.to_string()),
            ReportScope::Distributor(d) => ("i.distributor_id = $1", d.to_string()),
        };
        let sql = format!(
            "SELECT i.account_id AS id, p.company, i.currency, CAST(SUM(i.total_minor) AS BIGINT) AS spend \
             FROM invoices i JOIN partners p ON p.id = i.account_id \
             WHERE i.account_kind = 'partner' AND {condition} AND i.issued_at >= $2 AND i.issued_at < $3 \
             GROUP BY i.account_id, p.company, i.currency \
             ORDER BY i.currency, SUM(i.total_minor) DESC, i.account_id"
        );
        let values = [id.into(), millis(period.start()).into(), millis(period.end()).into()];
        let rows =
            SpendRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter()
            .map(|r| {
                let currency = Currency::from_str(&r.currency).map_err(corrupt)?;
                Ok(PartnerSpend {
                    id: PartnerId::parse(&r.id).map_err(corrupt)?,
                    company: r.company,
                    spend: Money::from_minor(r.spend, currency),
                })
            })
            .collect()
    }
}

#[derive(Debug, FromQueryResult)]
struct SpendRow {
    id: String,
    company: String,
    currency: String,
    spend: i64,
}
