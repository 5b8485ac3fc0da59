use async_trait::async_trait;
use partnerd_domain::billing::ProrationKind;
use partnerd_domain::ids::PlanChangeId;
use partnerd_domain::keys::KeyOwner;
use partnerd_domain::ports::{
    Actor, InfraError, LedgerRepository, PLAN_CHANGE_IN_FLIGHT, PlanChange, PlanChangeRepository,
    ReservePlanChangeError,
};
use rust_decimal::prelude::ToPrimitive;
use sea_orm::{ConnectionTrait, Value};
use time::OffsetDateTime;

use super::lock_owner;
use crate::convert::{corrupt, from_millis, infra, millis};
use crate::{Store, db};

fn actor_columns(actor: &Actor) -> (&'static str, String) {
    match actor {
        Actor::Partner(id) => ("partner", id.to_string()),
        Actor::Distributor(id) => ("distributor", id.to_string()),
    }
}

#[async_trait]
impl PlanChangeRepository for Store {
    async fn reserve(
        &self,
        change: &PlanChange,
        window_start: OffsetDateTime,
        max: u32,
    ) -> Result<(), ReservePlanChangeError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        lock_owner(&txn, &KeyOwner::Partner(change.partner.clone())).await.map_err(infra)?;
        // Still the terms the change was prorated from, and no other change in flight?
        let sql = "SELECT p.plan, p.billing_interval, p.billing_currency, \
                     (SELECT COUNT(*) FROM plan_changes c WHERE c.partner_id = p.id AND c.state = 'reserved' \
                        AND c.requested_at > $2) \
                   FROM partners p WHERE p.id = $1";
        let in_flight_since = millis(change.requested_at - PLAN_CHANGE_IN_FLIGHT);
        let row = txn
            .query_one_raw(self.db.stmt(sql, [change.partner.as_str().into(), in_flight_since.into()]))
            .await
            .map_err(infra)?
            .ok_or(ReservePlanChangeError::Conflict)?;
        let (plan, interval, currency, in_flight): (String, String, String, i64) = (
            row.try_get_by_index(0).map_err(infra)?,
            row.try_get_by_index(1).map_err(infra)?,
            row.try_get_by_index(2).map_err(infra)?,
            row.try_get_by_index(3).map_err(infra)?,
        );
        let from = &change.from;
        let same_terms =
            plan == from.plan.as_str() && interval == from.interval.as_str() && currency == from.currency.code();
        if !same_terms || in_flight > 0 {
            return Err(ReservePlanChangeError::Conflict);
        }
        let sql = "SELECT requested_at FROM plan_changes WHERE partner_id = $1 AND state <> 'released' \
                   AND requested_at > $2 ORDER BY requested_at";
        let values = [change.partner.as_str().into(), millis(window_start).into()];
        let rows = txn.query_all_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        if rows.len() >= max as usize {
            let oldest: i64 = rows[0].try_get_by_index(0).map_err(infra)?;
            let window = change.requested_at - window_start;
            return Err(ReservePlanChangeError::RateLimited { retry_at: from_millis(oldest)? + window });
        }
        let (actor_kind, actor_id) = actor_columns(&change.actor);
        let sql = "INSERT INTO plan_changes (id, partner_id, actor_kind, actor_id, from_plan, to_plan, \
                   from_interval, to_interval, from_currency, to_currency, state, requested_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'reserved', $11)";
        let (from, to) = (&change.from, &change.to);
        let values: Vec<Value> = vec![
            change.id.as_str().into(),
            change.partner.as_str().into(),
            actor_kind.into(),
            actor_id.into(),
            from.plan.as_str().into(),
            to.plan.as_str().into(),
            from.interval.as_str().into(),
            to.interval.as_str().into(),
            from.currency.code().into(),
            to.currency.code().into(),
            millis(change.requested_at).into(),
        ];
        txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        txn.commit().await.map_err(infra)?;
        Ok(())
    }

    async fn apply(&self, change: &PlanChange, now: OffsetDateTime) -> Result<(), InfraError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        let to = &change.to;
        let sql = "UPDATE partners SET plan = $1, billing_interval = $2, billing_currency = $3, period_start = $4, \
                   period_end = $5, updated_at = $6, \
                   invoiced_until = CASE WHEN invoiced_until >= $8 THEN $5 ELSE invoiced_until END WHERE id = $7";
        let values: Vec<Value> = vec![
            to.plan.as_str().into(),
            to.interval.as_str().into(),
            to.currency.code().into(),
            millis(to.period_start).into(),
            millis(to.period_end).into(),
            millis(now).into(),
            change.partner.as_str().into(),
            millis(change.from.period_end).into(),
        ];
        txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        let sql = "UPDATE plan_changes SET state = 'applied', applied_at = $1 WHERE id = $2";
        txn.execute_raw(self.db.stmt(sql, [millis(now).into(), change.id.as_str().into()])).await.map_err(infra)?;
        txn.commit().await.map_err(infra)
    }

    async fn release(&self, id: &PlanChangeId) -> Result<(), InfraError> {
        let sql = "UPDATE plan_changes SET state = 'released' WHERE id = $1 AND state = 'reserved'";
        self.db.writer().execute_raw(self.db.stmt(sql, [id.as_str().into()])).await.map_err(infra)?;
        Ok(())
    }
}

#[async_trait]
impl LedgerRepository for Store {
    async fn record_proration(&self, change: &PlanChange, now: OffsetDateTime) -> Result<(), InfraError> {
        if change.lines.is_empty() {
            return Ok(());
        }
        let columns = 11;
        let mut values: Vec<Value> = Vec::with_capacity(change.lines.len() * columns);
        let mut rows = Vec::with_capacity(change.lines.len());
        for (line_no, line) in change.lines.iter().enumerate() {
            let scale = line.amount.currency().minor_unit_scale();
            let minor = (line.amount.amount() * rust_decimal::Decimal::from(10_i64.pow(scale)))
                .to_i64()
                .ok_or_else(|| corrupt("an invoice amount does not fit in 64 bits"))?;
            let kind = match line.kind {
                ProrationKind::UnusedTime => "unused_time",
                ProrationKind::RemainingTime => "remaining_time",
            };
            let base = values.len();
            rows.push(format!("({})", db::placeholders(base + 1, columns)));
            values.extend([
                change.id.as_str().into(),
                (line_no as i16).into(),
                "partner".into(),
                change.partner.as_str().into(),
                kind.into(),
                line.description.as_str().into(),
                minor.into(),
                line.amount.currency().code().into(),
                millis(line.period_start).into(),
                millis(line.period_end).into(),
                millis(now).into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO invoice_items (plan_change_id, line_no, account_kind, account_id, kind, description, \
             amount_minor, currency, period_start, period_end, created_at) VALUES {} \
             ON CONFLICT (plan_change_id, line_no) DO NOTHING",
            rows.join(", ")
        );
        self.db.writer().execute_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        Ok(())
    }
}
