//! `RequestCountRepository`: per-day API request counters (`api_request_counts`). A flush adds
//! its batch with one multi-row upsert that does the addition in the database, so concurrent
//! flushes from any number of processes add up; reports sum the days of a period per account
//! with the primary key's index.

use std::collections::BTreeMap;

use async_trait::async_trait;
use partnerd_domain::ports::{AccountRequests, CountedAccount, InfraError, RequestCount, RequestCountRepository};
use partnerd_domain::report::{Period, ReportScope};
use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use time::{Date, Time};

use crate::Store;
use crate::convert::{corrupt, infra, millis};
use crate::db;

/// Counters per statement: four bound values each, well under both back-ends' limits.
const CHUNK: usize = 500;

/// The stored `day`: the day's first instant (00:00 UTC) in unix milliseconds.
fn day_start(day: Date) -> i64 {
    millis(day.with_time(Time::MIDNIGHT).assume_utc())
}

#[derive(Debug, FromQueryResult)]
struct SumRow {
    account_kind: String,
    account_id: String,
    requests: i64,
}

#[async_trait]
impl RequestCountRepository for Store {
    async fn add(&self, batch: &[RequestCount]) -> Result<(), InfraError> {
        // One row per counter (PostgreSQL refuses an upsert that reaches a row twice), in key
        // order: concurrent flushes then lock the counters they share in the same order, so they
        // wait for each other instead of deadlocking.
        let mut merged: BTreeMap<(&'static str, &str, i64), u64> = BTreeMap::new();
        for count in batch.iter().filter(|c| c.requests > 0) {
            let key = (count.account.kind(), count.account.id(), day_start(count.day));
            *merged.entry(key).or_default() += count.requests;
        }
        if merged.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = merged.into_iter().collect();
        let txn = self.db.begin_write().await.map_err(infra)?;
        let backend = txn.get_database_backend();
        for chunk in rows.chunks(CHUNK) {
            let mut tuples = Vec::with_capacity(chunk.len());
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
            for (i, ((kind, id, day), requests)) in chunk.iter().enumerate() {
                let requests = i64::try_from(*requests)
                    .map_err(|_| InfraError::new(format!("{requests} requests do not fit in a counter")))?;
                tuples.push(format!("({})", db::placeholders(i * 4 + 1, 4)));
                values.extend([(*kind).into(), (*id).into(), (*day).into(), requests.into()]);
            }
            let sql = format!(
                "INSERT INTO api_request_counts (account_kind, account_id, day, requests) VALUES {} \
                 ON CONFLICT (account_kind, account_id, day) \
                 DO UPDATE SET requests = api_request_counts.requests + excluded.requests",
                tuples.join(", ")
            );
            txn.execute_raw(db::stmt(backend, &sql, values)).await.map_err(infra)?;
        }
        txn.commit().await.map_err(infra)
    }

    async fn totals(&self, scope: &ReportScope, period: &Period) -> Result<Vec<AccountRequests>, InfraError> {
        const SUM: &str = "SELECT c.account_kind, c.account_id, CAST(SUM(c.requests) AS BIGINT) AS requests \
                           FROM api_request_counts c";
        const DAYS: &str = "c.day >= $2 AND c.day < $3 GROUP BY c.account_kind, c.account_id";
        let (sql, id) = match scope {
            ReportScope::Partner(p) => {
                (format!("{SUM} WHERE c.account_kind = 'partner' AND c.account_id = $1 AND {DAYS}"), p.to_string())
            }
            // The distributor's own counters, then its partners' (a join on the partners'
            // distributor, as run reports scope runs): each half reads the primary key's index.
            ReportScope::Distributor(d) => (
                format!(
                    "{SUM} WHERE c.account_kind = 'distributor' AND c.account_id = $1 AND {DAYS} \
                     UNION ALL \
                     {SUM} JOIN partners p ON p.id = c.account_id \
                     WHERE c.account_kind = 'partner' AND p.distributor_id = $1 AND {DAYS}"
                ),
                d.to_string(),
            ),
        };
        let values = [id.into(), millis(period.start()).into(), millis(period.end()).into()];
        let rows = SumRow::find_by_statement(self.db.stmt(&sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter()
            .map(|r| {
                Ok(AccountRequests {
                    account: CountedAccount::parse(&r.account_kind, &r.account_id).map_err(corrupt)?,
                    requests: u64::try_from(r.requests).map_err(corrupt)?,
                })
            })
            .collect()
    }
}
