use async_trait::async_trait;
use partnerd_domain::account::{AccountStatus, Partner};
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::keys::{KeyOwner, KeySlot};
use partnerd_domain::ports::{
    InfraError, ManagedPartnerRepository, Page, Paged, PartnerListing, PartnerTransition, PartnerUsageRow,
};
use partnerd_domain::values::Month;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, Value};

use super::accounts::{partner_row, to_partner};
use super::keys::{insert_key, revoke_all};
use super::{events, lock_owner, oldest_first};
use crate::Store;
use crate::convert::{corrupt, infra, millis, status};
use crate::db::placeholders;
use crate::entity::partner;

#[derive(Debug, FromQueryResult)]
struct UsageRow {
    id: String,
    company: String,
    status: String,
    runs: i64,
    customers: i64,
}

#[async_trait]
impl ManagedPartnerRepository for Store {
    async fn list(
        &self,
        distributor: &DistributorId,
        status: Option<AccountStatus>,
        page: &Page,
    ) -> Result<Paged<PartnerListing>, InfraError> {
        let mut scope = partner::Entity::find().filter(partner::Column::DistributorId.eq(distributor.as_str()));
        if let Some(status) = status {
            scope = scope.filter(partner::Column::Status.eq(status.as_str()));
        }
        let (rows, has_more) =
            oldest_first(self.db.reader(), scope, partner::Column::CreatedAt, partner::Column::Id, page)
                .await
                .map_err(infra)?;
        // Customer counts for the whole page in one grouped query.
        let counts: std::collections::HashMap<String, i64> = if rows.is_empty() {
            Default::default()
        } else {
            let marks = placeholders(2, rows.len());
            let sql = format!(
                "SELECT c.partner_id, COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id \
                 WHERE p.distributor_id = $1 AND c.partner_id IN ({marks}) GROUP BY c.partner_id"
            );
            let values =
                std::iter::once(Value::from(distributor.as_str())).chain(rows.iter().map(|r| r.id.clone().into()));
            let found = self.db.reader().query_all_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
            found
                .iter()
                .map(|r| Ok((r.try_get_by_index::<String>(0)?, r.try_get_by_index::<i64>(1)?)))
                .collect::<Result<_, sea_orm::DbErr>>()
                .map_err(infra)?
        };
        let items = rows
            .into_iter()
            .map(|row| {
                let customers_count = counts.get(&row.id).copied().unwrap_or(0);
                Ok(PartnerListing {
                    partner: to_partner(row)?,
                    customers_count: u64::try_from(customers_count).map_err(corrupt)?,
                })
            })
            .collect::<Result<_, InfraError>>()?;
        Ok(Paged { items, has_more })
    }

    async fn get(&self, distributor: &DistributorId, id: &PartnerId) -> Result<Option<Partner>, InfraError> {
        let row = partner::Entity::find_by_id(id.as_str())
            .filter(partner::Column::DistributorId.eq(distributor.as_str()))
            .one(self.db.reader())
            .await
            .map_err(infra)?;
        row.map(to_partner).transpose()
    }

    async fn insert(&self, partners: &[Partner]) -> Result<(), InfraError> {
        if partners.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().await.map_err(infra)?;
        let rows = partners.iter().map(|p| partner_row(p).into_active_model());
        partner::Entity::insert_many(rows).exec(&txn).await.map_err(infra)?;
        txn.commit().await.map_err(infra)
    }

    async fn update_profile(&self, p: &Partner) -> Result<bool, InfraError> {
        // Scoped to the partner's distributor in SQL too, not only by the caller's lookup.
        let sql = "UPDATE partners SET company = $1, email = $2, name = $3, updated_at = $4 \
                   WHERE id = $5 AND distributor_id = $6";
        let values = [
            p.company.as_str().into(),
            p.email.as_str().into(),
            p.name.as_str().into(),
            millis(p.updated_at).into(),
            p.id.as_str().into(),
            p.distributor_id.as_ref().map(ToString::to_string).into(),
        ];
        let done = self.db.writer().execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        Ok(done.rows_affected() == 1)
    }

    async fn transition(&self, t: &PartnerTransition) -> Result<bool, InfraError> {
        let owner = KeyOwner::Partner(t.partner.clone());
        let txn = self.db.begin_write().await.map_err(infra)?;
        lock_owner(&txn, &owner).await.map_err(infra)?;
        let stamp = match t.to {
            AccountStatus::Active => "activated_at = $3, suspended_at = NULL, suspend_reason = $4",
            AccountStatus::Suspended => "suspended_at = $3, suspend_reason = $4",
            AccountStatus::Pending => "activated_at = NULL, suspend_reason = $4",
        };
        let sql = format!("UPDATE partners SET status = $1, updated_at = $3, {stamp} WHERE id = $2 AND status = $5");
        let reason: Value =
            if t.to == AccountStatus::Suspended { t.reason.clone().into() } else { Value::from(None::<String>) };
        let values: Vec<Value> =
            vec![t.to.as_str().into(), t.partner.as_str().into(), millis(t.at).into(), reason, t.from.as_str().into()];
        let done = txn.execute_raw(self.db.stmt(&sql, values)).await.map_err(infra)?;
        if done.rows_affected() != 1 {
            // Another transition got there first: nothing happens.
            txn.rollback().await.map_err(infra)?;
            return Ok(false);
        }
        if t.revoke_keys || t.issue_key.is_some() {
            revoke_all(&txn, &owner, t.at, &t.key_events.revoked).await?;
        }
        if let Some(hash) = &t.issue_key {
            insert_key(&txn, &owner, KeySlot::FIRST, hash, t.at).await.map_err(infra)?;
            events::record_all(&txn, t.key_events.created.as_slice()).await?;
        }
        events::record(&txn, &t.event).await?;
        txn.commit().await.map_err(infra)?;
        Ok(true)
    }

    async fn usage(&self, distributor: &DistributorId, month: Month) -> Result<Vec<PartnerUsageRow>, InfraError> {
        let sql = "SELECT p.id, p.company, p.status, \
                     CAST(COALESCE((SELECT u.used FROM run_usage u WHERE u.partner_id = p.id AND u.month = $2), 0) AS BIGINT) AS runs, \
                     (SELECT COUNT(*) FROM customers c WHERE c.partner_id = p.id) AS customers \
                   FROM partners p WHERE p.distributor_id = $1 ORDER BY p.created_at, p.id";
        let values = [distributor.as_str().into(), month.to_string().into()];
        let rows = UsageRow::find_by_statement(self.db.stmt(sql, values)).all(self.db.reader()).await.map_err(infra)?;
        rows.into_iter()
            .map(|r| {
                Ok(PartnerUsageRow {
                    partner_id: PartnerId::parse(&r.id).map_err(corrupt)?,
                    company: r.company,
                    status: status(&r.status)?,
                    runs: u64::try_from(r.runs).map_err(corrupt)?,
                    customers: u64::try_from(r.customers).map_err(corrupt)?,
                })
            })
            .collect()
    }
}
