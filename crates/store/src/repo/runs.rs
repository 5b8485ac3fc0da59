use std::collections::HashSet;

use async_trait::async_trait;
use partnerd_domain::catalog::{ProductId, RunLimit};
use partnerd_domain::ids::{CustomerId, PartnerId, RunId};
use partnerd_domain::keys::KeyOwner;
use partnerd_domain::ports::{CreateRunsError, InfraError, Page, Paged, RunBatch, RunBatchOutcome, RunRepository};
use partnerd_domain::run::{MaturityTarget, Run, RunFilter, RunResult, RunView};
use partnerd_domain::values::Month;
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, IntoActiveModel, Value};

use super::{events, lock_owner};
use crate::Store;
use crate::convert::{corrupt, from_millis, infra, millis};
use crate::db::placeholders;
use crate::entity::run;

/// A run row joined with its customer's name.
#[derive(Debug, FromQueryResult)]
pub(super) struct RunRow {
    id: String,
    partner_id: String,
    customer_id: String,
    product: String,
    maturity_target: i16,
    status: String,
    month: String,
    created_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    score: Option<i16>,
    critical: Option<i64>,
    high: Option<i64>,
    medium: Option<i64>,
    low: Option<i64>,
    report_url: Option<String>,
    failure_reason: Option<String>,
    customer_name: String,
}

pub(super) const RUN_SELECT: &str = "SELECT r.id, r.partner_id, r.customer_id, r.product, r.maturity_target, r.status, \
    r.month, r.created_at, r.started_at, r.completed_at, r.score, r.critical, r.high, r.medium, r.low, \
    r.report_url, r.failure_reason, c.name AS customer_name FROM runs r JOIN customers c ON c.id = r.customer_id";

fn count(raw: Option<i64>) -> Result<u32, InfraError> {
    u32::try_from(raw.unwrap_or(0)).map_err(corrupt)
}

impl RunRow {
    pub(super) fn into_view(self) -> Result<RunView, InfraError> {
        let result = match self.score {
            Some(score) => Some(RunResult {
                score: u8::try_from(score).map_err(corrupt)?,
                critical: count(self.critical)?,
                high: count(self.high)?,
                medium: count(self.medium)?,
                low: count(self.low)?,
                report_url: self.report_url,
            }),
            None => None,
        };
        let run = Run {
            id: RunId::parse(&self.id).map_err(corrupt)?,
            partner_id: PartnerId::parse(&self.partner_id).map_err(corrupt)?,
            customer_id: CustomerId::parse(&self.customer_id).map_err(corrupt)?,
            product: ProductId::parse(&self.product).map_err(corrupt)?,
            maturity_target: MaturityTarget::new(i64::from(self.maturity_target)).map_err(corrupt)?,
            status: self.status.parse().map_err(corrupt)?,
            month: Month::parse(&self.month).map_err(corrupt)?,
            created_at: from_millis(self.created_at)?,
            started_at: self.started_at.map(from_millis).transpose()?,
            completed_at: self.completed_at.map(from_millis).transpose()?,
            result,
            failure_reason: self.failure_reason,
        };
        Ok(RunView { run, customer_name: self.customer_name })
    }
}

fn to_row(r: &Run) -> run::Model {
    let result = r.result.as_ref();
    run::Model {
        id: r.id.to_string(),
        partner_id: r.partner_id.to_string(),
        customer_id: r.customer_id.to_string(),
        product: r.product.to_string(),
        maturity_target: i16::from(r.maturity_target.get()),
        status: r.status.as_str().to_owned(),
        month: r.month.to_string(),
        created_at: millis(r.created_at),
        started_at: r.started_at.map(millis),
        completed_at: r.completed_at.map(millis),
        score: result.map(|x| i16::from(x.score)),
        critical: result.map(|x| i64::from(x.critical)),
        high: result.map(|x| i64::from(x.high)),
        medium: result.map(|x| i64::from(x.medium)),
        low: result.map(|x| i64::from(x.low)),
        report_url: result.and_then(|x| x.report_url.clone()),
        failure_reason: r.failure_reason.clone(),
        attempts: 0,
        lease_worker_id: None,
        lease_expires_at: None,
    }
}

impl Store {
    async fn query_runs(&self, sql: &str, values: Vec<Value>) -> Result<Vec<RunView>, InfraError> {
        let rows = RunRow::find_by_statement(self.db.stmt(sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter().map(RunRow::into_view).collect()
    }

    /// The subset of `ids` that are customers of `partner`, read inside `txn`.
    async fn owned_customers(
        &self,
        txn: &DatabaseTransaction,
        partner: &PartnerId,
        ids: &HashSet<&CustomerId>,
    ) -> Result<HashSet<String>, InfraError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = format!("SELECT id FROM customers WHERE partner_id = $1 AND id IN ({})", placeholders(2, ids.len()));
        let values = std::iter::once(partner.as_str().into()).chain(ids.iter().map(|id| id.as_str().into()));
        let rows = txn.query_all_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        rows.iter().map(|r| r.try_get_by_index::<String>(0).map_err(infra)).collect()
    }
}

#[async_trait]
impl RunRepository for Store {
    async fn create(&self, batch: &RunBatch) -> Result<RunBatchOutcome, CreateRunsError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        lock_owner(&txn, &KeyOwner::Partner(batch.partner.clone())).await.map_err(infra)?;
        let sql = "SELECT plan, status FROM partners WHERE id = $1";
        let row = txn.query_one_raw(self.db.stmt(sql, [batch.partner.as_str().into()])).await.map_err(infra)?;
        let row = row.ok_or(CreateRunsError::PartnerGone)?;
        let (plan, status): (String, String) =
            (row.try_get_by_index(0).map_err(infra)?, row.try_get_by_index(1).map_err(infra)?);
        if plan != batch.plan.as_str() {
            return Err(CreateRunsError::PlanChanged);
        }
        if status != "active" {
            return Err(CreateRunsError::PartnerInactive);
        }
        let wanted: HashSet<&CustomerId> = batch.runs.iter().map(|r| &r.customer_id).collect();
        let owned = self.owned_customers(&txn, &batch.partner, &wanted).await?;
        let sql = "SELECT used FROM run_usage WHERE partner_id = $1 AND month = $2";
        let values = [batch.partner.as_str().into(), batch.month.to_string().into()];
        let used_before = match txn.query_one_raw(self.db.stmt(sql, values)).await.map_err(infra)? {
            Some(row) => row.try_get_by_index::<i64>(0).map_err(infra)?,
            None => 0,
        };
        let mut outcome = RunBatchOutcome { created: vec![], over_limit: vec![], customer_gone: vec![] };
        let mut granted = Vec::new();
        for r in &batch.runs {
            let used = used_before + granted.len() as i64;
            if !owned.contains(r.customer_id.as_str()) {
                outcome.customer_gone.push(r.id.clone());
            } else if matches!(batch.limit, RunLimit::Limited(limit) if used >= i64::from(limit)) {
                outcome.over_limit.push(r.id.clone());
            } else {
                outcome.created.push(r.id.clone());
                granted.push(to_row(r).into_active_model());
            }
        }
        if !granted.is_empty() {
            let sql = "INSERT INTO run_usage (partner_id, month, used) VALUES ($1, $2, $3) \
                       ON CONFLICT (partner_id, month) DO UPDATE SET used = run_usage.used + excluded.used";
            let values = [batch.partner.as_str().into(), batch.month.to_string().into(), (granted.len() as i64).into()];
            txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
            let used_after = used_before + granted.len() as i64;
            run::Entity::insert_many(granted).exec(&txn).await.map_err(infra)?;
            // Thresholds this batch reached: each is announced once per partner and month (the
            // row's primary key decides, inside this transaction).
            for t in batch.thresholds.iter().filter(|t| used_after >= i64::from(t.units)) {
                let sql = "INSERT INTO usage_thresholds (partner_id, month, threshold, reached_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (partner_id, month, threshold) DO NOTHING";
                let values = [
                    batch.partner.as_str().into(),
                    batch.month.to_string().into(),
                    i16::from(t.percent).into(),
                    millis(t.event.occurred_at).into(),
                ];
                if txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?.rows_affected() == 1 {
                    events::record(&txn, &t.event).await?;
                }
            }
        }
        txn.commit().await.map_err(infra)?;
        Ok(outcome)
    }

    async fn get(&self, partner: &PartnerId, id: &RunId) -> Result<Option<RunView>, InfraError> {
        let sql = format!("{RUN_SELECT} WHERE r.id = $1 AND r.partner_id = $2");
        let mut runs = self.query_runs(&sql, vec![id.as_str().into(), partner.as_str().into()]).await?;
        Ok(runs.pop())
    }

    async fn list(&self, partner: &PartnerId, filter: &RunFilter, page: &Page) -> Result<Paged<RunView>, InfraError> {
        let mut sql = format!("{RUN_SELECT} WHERE r.partner_id = $1");
        let mut values: Vec<Value> = vec![partner.as_str().into()];
        let mut push = |clause: &str, value: Value| {
            values.push(value);
            sql.push_str(&format!(" AND {clause} ${}", values.len()));
        };
        if let Some(month) = filter.month {
            push("r.month =", month.to_string().into());
        }
        if let Some(product) = &filter.product {
            push("r.product =", product.as_str().into());
        }
        if let Some(customer) = &filter.customer_id {
            push("r.customer_id =", customer.as_str().into());
        }
        if let Some(after) = &page.starting_after {
            let cursor = "SELECT created_at FROM runs WHERE id = $1 AND partner_id = $2";
            let row = self
                .db
                .reader()
                .query_one_raw(self.db.stmt(cursor, [after.as_str().into(), partner.as_str().into()]))
                .await
                .map_err(infra)?;
            let Some(row) = row else { return Ok(Paged { items: vec![], has_more: false }) };
            let created: i64 = row.try_get_by_index(0).map_err(infra)?;
            values.push(created.into());
            values.push(after.as_str().into());
            let (c, i) = (values.len() - 1, values.len());
            sql.push_str(&format!(" AND (r.created_at < ${c} OR (r.created_at = ${c} AND r.id < ${i}))"));
        }
        sql.push_str(" ORDER BY r.created_at DESC, r.id DESC");
        if let Some(limit) = page.limit {
            sql.push_str(&format!(" LIMIT {}", u64::from(limit) + 1));
        }
        let mut items = self.query_runs(&sql, values).await?;
        let has_more = page.limit.is_some_and(|l| items.len() > l as usize);
        if let Some(limit) = page.limit {
            items.truncate(limit as usize);
        }
        Ok(Paged { items, has_more })
    }

    async fn recent_for_customer(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        limit: u32,
    ) -> Result<Vec<Run>, InfraError> {
        let sql = format!(
            "{RUN_SELECT} WHERE r.partner_id = $1 AND r.customer_id = $2 ORDER BY r.created_at DESC, r.id DESC LIMIT {limit}"
        );
        let views = self.query_runs(&sql, vec![partner.as_str().into(), customer.as_str().into()]).await?;
        Ok(views.into_iter().map(|v| v.run).collect())
    }
}
