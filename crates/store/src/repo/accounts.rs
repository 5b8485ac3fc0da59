use async_trait::async_trait;
use partnerd_domain::account::{AccountStatus, Distributor, Partner, Worker};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::PlanId;
use partnerd_domain::ids::{DistributorId, PartnerId, WorkerId};
use partnerd_domain::invoice::DiscountPercent;
use partnerd_domain::keys::{KeyHash, KeyOwner, KeySlot};
use partnerd_domain::ports::{
    DistributorRepository, DistributorTotals, InfraError, PartnerRepository, PartnerUsage, WorkerRepository,
};
use partnerd_domain::values::{DisplayName, Email, Month};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use time::OffsetDateTime;

use super::keys::insert_key;
use crate::Store;
use crate::convert::{corrupt, from_millis, infra, millis, status};
use crate::entity::{distributor, partner, worker};

fn to_distributor(row: distributor::Model) -> Result<Distributor, InfraError> {
    Ok(Distributor {
        id: DistributorId::parse(&row.id).map_err(corrupt)?,
        company: DisplayName::parse(&row.company).map_err(corrupt)?,
        email: Email::parse(&row.email).map_err(corrupt)?,
        status: status(&row.status)?,
        created_at: from_millis(row.created_at)?,
    })
}

pub(super) fn to_partner(row: partner::Model) -> Result<Partner, InfraError> {
    Ok(Partner {
        id: PartnerId::parse(&row.id).map_err(corrupt)?,
        distributor_id: row.distributor_id.as_deref().map(DistributorId::parse).transpose().map_err(corrupt)?,
        company: DisplayName::parse(&row.company).map_err(corrupt)?,
        email: Email::parse(&row.email).map_err(corrupt)?,
        name: DisplayName::parse(&row.name).map_err(corrupt)?,
        status: status(&row.status)?,
        subscription: Subscription {
            plan: PlanId::parse(&row.plan).map_err(corrupt)?,
            interval: row.billing_interval.parse().map_err(corrupt)?,
            currency: row.billing_currency.parse().map_err(corrupt)?,
            period_start: from_millis(row.period_start)?,
            period_end: from_millis(row.period_end)?,
        },
        created_at: from_millis(row.created_at)?,
        updated_at: from_millis(row.updated_at)?,
    })
}

fn to_worker(row: worker::Model) -> Result<Worker, InfraError> {
    Ok(Worker {
        id: WorkerId::parse(&row.id).map_err(corrupt)?,
        name: DisplayName::parse(&row.name).map_err(corrupt)?,
        created_at: from_millis(row.created_at)?,
    })
}

pub(super) fn partner_row(p: &Partner) -> partner::Model {
    let sub = &p.subscription;
    partner::Model {
        id: p.id.to_string(),
        distributor_id: p.distributor_id.as_ref().map(ToString::to_string),
        company: p.company.as_str().to_owned(),
        email: p.email.as_str().to_owned(),
        name: p.name.as_str().to_owned(),
        plan: sub.plan.to_string(),
        status: p.status.as_str().to_owned(),
        billing_currency: sub.currency.code().to_owned(),
        billing_interval: sub.interval.as_str().to_owned(),
        period_start: millis(sub.period_start),
        period_end: millis(sub.period_end),
        created_at: millis(p.created_at),
        updated_at: millis(p.updated_at),
    }
}

/// Reads one `BIGINT` column of a single-row aggregate query.
fn count(row: &sea_orm::QueryResult, index: usize) -> Result<u64, InfraError> {
    let n: i64 = row.try_get_by_index(index).map_err(infra)?;
    u64::try_from(n).map_err(corrupt)
}

impl Store {
    /// Inserts an account row and, when given, its first key, in one write transaction.
    async fn insert_account<A>(
        &self,
        row: A,
        owner: KeyOwner,
        first_key: Option<KeyHash>,
        now: OffsetDateTime,
    ) -> Result<(), InfraError>
    where
        A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    {
        let txn = self.db.begin_write().await.map_err(infra)?;
        row.insert(&txn).await.map_err(infra)?;
        if let Some(hash) = first_key {
            insert_key(&txn, &owner, KeySlot::FIRST, &hash, now).await.map_err(infra)?;
        }
        txn.commit().await.map_err(infra)
    }
}

#[async_trait]
impl DistributorRepository for Store {
    async fn insert(&self, d: &Distributor, first_key: Option<KeyHash>) -> Result<(), InfraError> {
        let row = distributor::Model {
            id: d.id.to_string(),
            company: d.company.as_str().to_owned(),
            email: d.email.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            created_at: millis(d.created_at),
            updated_at: millis(d.created_at),
        };
        self.insert_account(row.into_active_model(), KeyOwner::Distributor(d.id.clone()), first_key, d.created_at).await
    }

    async fn get(&self, id: &DistributorId) -> Result<Option<Distributor>, InfraError> {
        let row = distributor::Entity::find_by_id(id.as_str()).one(self.db.reader()).await.map_err(infra)?;
        row.map(to_distributor).transpose()
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Distributor>, InfraError> {
        let row = distributor::Entity::find()
            .filter(distributor::Column::Email.eq(email.as_str()))
            .order_by_asc(distributor::Column::CreatedAt)
            .one(self.db.reader())
            .await
            .map_err(infra)?;
        row.map(to_distributor).transpose()
    }

    async fn set_status(
        &self,
        id: &DistributorId,
        new: AccountStatus,
        now: OffsetDateTime,
    ) -> Result<bool, InfraError> {
        let sql = "UPDATE distributors SET status = $1, updated_at = $2 WHERE id = $3";
        let values = [new.as_str().into(), millis(now).into(), id.as_str().into()];
        let done = self.db.writer().execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_discount(&self, id: &DistributorId, discount: Option<DiscountPercent>) -> Result<bool, InfraError> {
        let sql = "UPDATE distributors SET discount_percent = $1 WHERE id = $2";
        let values = [discount.map(|d| d.value().to_string()).into(), id.as_str().into()];
        let done = self.db.writer().execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        Ok(done.rows_affected() == 1)
    }

    async fn totals(&self, id: &DistributorId, month: Month) -> Result<DistributorTotals, InfraError> {
        let sql = "SELECT \
              (SELECT COUNT(*) FROM partners WHERE distributor_id = $1), \
              (SELECT CAST(COALESCE(SUM(u.used), 0) AS BIGINT) FROM run_usage u \
                 JOIN partners p ON p.id = u.partner_id WHERE p.distributor_id = $1 AND u.month = $2), \
              (SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE p.distributor_id = $1)";
        let values = [id.as_str().into(), month.to_string().into()];
        let row = self.db.reader().query_one_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        let row = row.ok_or_else(|| corrupt("aggregate query returned no row"))?;
        Ok(DistributorTotals {
            partners_count: count(&row, 0)?,
            runs_in_month: count(&row, 1)?,
            customers_count: count(&row, 2)?,
        })
    }
}

#[async_trait]
impl PartnerRepository for Store {
    async fn insert(&self, p: &Partner, first_key: Option<KeyHash>) -> Result<(), InfraError> {
        let row = partner_row(p);
        self.insert_account(row.into_active_model(), KeyOwner::Partner(p.id.clone()), first_key, p.created_at).await
    }

    async fn get(&self, id: &PartnerId) -> Result<Option<Partner>, InfraError> {
        let row = partner::Entity::find_by_id(id.as_str()).one(self.db.reader()).await.map_err(infra)?;
        row.map(to_partner).transpose()
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Partner>, InfraError> {
        let row = partner::Entity::find()
            .filter(partner::Column::Email.eq(email.as_str()))
            .order_by_asc(partner::Column::CreatedAt)
            .one(self.db.reader())
            .await
            .map_err(infra)?;
        row.map(to_partner).transpose()
    }

    async fn usage(&self, id: &PartnerId, month: Month) -> Result<PartnerUsage, InfraError> {
        let sql = "SELECT \
              (SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM run_usage WHERE partner_id = $1 AND month = $2), \
              (SELECT COUNT(*) FROM customers WHERE partner_id = $1)";
        let values = [id.as_str().into(), month.to_string().into()];
        let row = self.db.reader().query_one_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        let row = row.ok_or_else(|| corrupt("aggregate query returned no row"))?;
        Ok(PartnerUsage { runs_used: count(&row, 0)?, customers_count: count(&row, 1)? })
    }
}

#[async_trait]
impl WorkerRepository for Store {
    async fn insert(&self, w: &Worker, first_key: KeyHash) -> Result<(), InfraError> {
        let row = worker::Model {
            id: w.id.to_string(),
            name: w.name.as_str().to_owned(),
            status: AccountStatus::Active.as_str().to_owned(),
            created_at: millis(w.created_at),
        };
        self.insert_account(row.into_active_model(), KeyOwner::Worker(w.id.clone()), Some(first_key), w.created_at)
            .await
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Worker>, InfraError> {
        let row = worker::Entity::find()
            .filter(worker::Column::Name.eq(name))
            .order_by_asc(worker::Column::CreatedAt)
            .one(self.db.reader())
            .await
            .map_err(infra)?;
        row.map(to_worker).transpose()
    }
}
