//! The worker protocol's queue. A claim picks the oldest queued run with `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL (concurrent claimers take different runs without waiting) and inside
//! the single writer's transaction on SQLite; either way one run goes to one worker.

use async_trait::async_trait;
use partnerd_domain::catalog::ProductId;
use partnerd_domain::event::EventType;
use partnerd_domain::ids::{RunId, WorkerId};
use partnerd_domain::ports::{ExpiredLeases, InfraError, RunActionError, RunQueue};
use partnerd_domain::run::{ClaimedRun, RunResult, RunView, assessment_event};
use partnerd_domain::values::TenantId;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Value};
use time::OffsetDateTime;

use super::events;
use super::runs::{RUN_SELECT, RunRow};
use crate::Store;
use crate::convert::{corrupt, from_millis, infra, millis};
use crate::db::placeholders;

impl Store {
    /// The run as it stands inside `txn`, with its customer's tenant and its lease's end.
    async fn held_run(&self, txn: &DatabaseTransaction, run: &str) -> Result<ClaimedRun, InfraError> {
        let sql = format!("{RUN_SELECT} WHERE r.id = $1");
        let row = RunRow::find_by_statement(self.db.stmt(&sql, [run.into()])).one(txn).await.map_err(infra)?;
        let view = row.ok_or_else(|| InfraError::new("a run vanished inside its transaction"))?.into_view()?;
        let sql = "SELECT c.tenant_id, r.lease_expires_at FROM runs r JOIN customers c ON c.id = r.customer_id \
                   WHERE r.id = $1";
        let row = txn.query_one_raw(self.db.stmt(sql, [run.into()])).await.map_err(infra)?;
        let row = row.ok_or_else(|| InfraError::new("a run vanished inside its transaction"))?;
        let tenant: String = row.try_get_by_index(0).map_err(infra)?;
        let lease: Option<i64> = row.try_get_by_index(1).map_err(infra)?;
        Ok(ClaimedRun {
            customer_name: view.customer_name,
            run: view.run,
            tenant_id: TenantId::parse(&tenant).map_err(corrupt)?,
            lease_expires_at: from_millis(lease.unwrap_or(0))?,
        })
    }

    /// Why an update guarded by `status = 'running' AND lease_worker_id = …` touched nothing.
    async fn refusal(&self, txn: DatabaseTransaction, run: &RunId) -> Result<RunActionError, InfraError> {
        let sql = "SELECT status FROM runs WHERE id = $1";
        let exists = txn.query_one_raw(self.db.stmt(sql, [run.as_str().into()])).await.map_err(infra)?.is_some();
        txn.rollback().await.map_err(infra)?;
        Ok(if exists { RunActionError::Conflict } else { RunActionError::NotFound })
    }

    /// Ends a held run (`completed` or `failed`), records its event, and for a failure gives
    /// the run's unit back to its month's limit; all inside `txn`.
    async fn end_run(
        &self,
        txn: &DatabaseTransaction,
        run: &str,
        kind: EventType,
        now: OffsetDateTime,
    ) -> Result<RunView, InfraError> {
        if kind == EventType::AssessmentFailed {
            let sql = "UPDATE run_usage SET used = used - 1 WHERE used > 0 AND (partner_id, month) IN \
                       (SELECT partner_id, month FROM runs WHERE id = $1)";
            txn.execute_raw(self.db.stmt(sql, [run.into()])).await.map_err(infra)?;
        }
        let held = self.held_run(txn, run).await?;
        events::record(txn, &assessment_event(kind, &held.run, now)).await?;
        Ok(RunView { run: held.run, customer_name: held.customer_name })
    }
}

#[async_trait]
impl RunQueue for Store {
    async fn claim(
        &self,
        worker: &WorkerId,
        products: &[ProductId],
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ClaimedRun>, InfraError> {
        let mut values: Vec<Value> = Vec::new();
        let product_filter = if products.is_empty() {
            String::new()
        } else {
            values.extend(products.iter().map(|p| Value::from(p.as_str())));
            format!(" AND product IN ({})", placeholders(1, products.len()))
        };
        // An idle worker polls: find out that nothing is queued with a read, without taking the
        // (SQLite: single) write lock.
        let probe = format!("SELECT 1 FROM runs WHERE status = 'queued'{product_filter} LIMIT 1");
        let queued = self.db.reader().query_one_raw(self.db.stmt(&probe, values.clone())).await.map_err(infra)?;
        if queued.is_none() {
            return Ok(None);
        }
        let txn = self.db.begin_write().await.map_err(infra)?;
        let skip_locked = if self.db.backend() == DbBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT id, attempts FROM runs WHERE status = 'queued'{product_filter} \
             ORDER BY created_at, id LIMIT 1{skip_locked}"
        );
        let Some(row) = txn.query_one_raw(self.db.stmt(&sql, values)).await.map_err(infra)? else {
            txn.commit().await.map_err(infra)?;
            return Ok(None);
        };
        let id: String = row.try_get_by_index(0).map_err(infra)?;
        let attempts: i16 = row.try_get_by_index(1).map_err(infra)?;
        let sql = "UPDATE runs SET status = 'running', attempts = attempts + 1, lease_worker_id = $1, \
                   lease_expires_at = $2, started_at = COALESCE(started_at, $3) WHERE id = $4";
        let values = [worker.as_str().into(), millis(lease_until).into(), millis(now).into(), id.as_str().into()];
        txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        let claimed = self.held_run(&txn, &id).await?;
        if attempts == 0 {
            events::record(&txn, &assessment_event(EventType::AssessmentStarted, &claimed.run, now)).await?;
        }
        txn.commit().await.map_err(infra)?;
        Ok(Some(claimed))
    }

    async fn heartbeat(
        &self,
        worker: &WorkerId,
        run: &RunId,
        lease_until: OffsetDateTime,
    ) -> Result<ClaimedRun, RunActionError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        let sql = "UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND status = 'running' \
                   AND lease_worker_id = $3";
        let values = [millis(lease_until).into(), run.as_str().into(), worker.as_str().into()];
        if txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?.rows_affected() != 1 {
            return Err(self.refusal(txn, run).await?);
        }
        let held = self.held_run(&txn, run.as_str()).await?;
        txn.commit().await.map_err(infra)?;
        Ok(held)
    }

    async fn complete(
        &self,
        worker: &WorkerId,
        run: &RunId,
        result: &RunResult,
        now: OffsetDateTime,
    ) -> Result<RunView, RunActionError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        let sql = "UPDATE runs SET status = 'completed', completed_at = $1, score = $2, critical = $3, high = $4, \
                   medium = $5, low = $6, report_url = $7, lease_worker_id = NULL, lease_expires_at = NULL \
                   WHERE id = $8 AND status = 'running' AND lease_worker_id = $9";
        let values = [
            millis(now).into(),
            i16::from(result.score).into(),
            i64::from(result.critical).into(),
            i64::from(result.high).into(),
            i64::from(result.medium).into(),
            i64::from(result.low).into(),
            result.report_url.clone().into(),
            run.as_str().into(),
            worker.as_str().into(),
        ];
        if txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?.rows_affected() != 1 {
            return Err(self.refusal(txn, run).await?);
        }
        let view = self.end_run(&txn, run.as_str(), EventType::AssessmentCompleted, now).await?;
        txn.commit().await.map_err(infra)?;
        Ok(view)
    }

    async fn fail(
        &self,
        worker: &WorkerId,
        run: &RunId,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<RunView, RunActionError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        let sql = "UPDATE runs SET status = 'failed', completed_at = $1, failure_reason = $2, \
                   lease_worker_id = NULL, lease_expires_at = NULL \
                   WHERE id = $3 AND status = 'running' AND lease_worker_id = $4";
        let values = [millis(now).into(), reason.into(), run.as_str().into(), worker.as_str().into()];
        if txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?.rows_affected() != 1 {
            return Err(self.refusal(txn, run).await?);
        }
        let view = self.end_run(&txn, run.as_str(), EventType::AssessmentFailed, now).await?;
        txn.commit().await.map_err(infra)?;
        Ok(view)
    }

    async fn expire_leases(&self, now: OffsetDateTime, max_attempts: u32) -> Result<ExpiredLeases, InfraError> {
        // Usually nothing has expired: find that out with a read, without taking the write lock.
        let sql = "SELECT 1 FROM runs WHERE status = 'running' AND lease_expires_at < $1 LIMIT 1";
        if self.db.reader().query_one_raw(self.db.stmt(sql, [millis(now).into()])).await.map_err(infra)?.is_none() {
            return Ok(ExpiredLeases::default());
        }
        let txn = self.db.begin_write().await.map_err(infra)?;
        let max = i64::from(max_attempts);
        let skip_locked = if self.db.backend() == DbBackend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT id FROM runs WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= $2{skip_locked}"
        );
        let rows = txn.query_all_raw(self.db.stmt(&sql, [millis(now).into(), max.into()])).await.map_err(infra)?;
        let mut outcome = ExpiredLeases::default();
        for row in rows {
            let id: String = row.try_get_by_index(0).map_err(infra)?;
            let reason = format!("the worker's lease expired {max_attempts} times; the run was abandoned");
            let sql = "UPDATE runs SET status = 'failed', completed_at = $1, failure_reason = $2, \
                       lease_worker_id = NULL, lease_expires_at = NULL WHERE id = $3";
            txn.execute_raw(self.db.stmt(sql, [millis(now).into(), reason.into(), id.as_str().into()]))
                .await
                .map_err(infra)?;
            self.end_run(&txn, &id, EventType::AssessmentFailed, now).await?;
            outcome.failed += 1;
        }
        let sql = "UPDATE runs SET status = 'queued', lease_worker_id = NULL, lease_expires_at = NULL \
                   WHERE status = 'running' AND lease_expires_at < $1 AND attempts < $2";
        let done = txn.execute_raw(self.db.stmt(sql, [millis(now).into(), max.into()])).await.map_err(infra)?;
        outcome.requeued = done.rows_affected();
        txn.commit().await.map_err(infra)?;
        Ok(outcome)
    }
}
