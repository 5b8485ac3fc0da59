use async_trait::async_trait;
use partnerd_domain::customer::Customer;
use partnerd_domain::event::Event;
use partnerd_domain::ids::{CustomerId, PartnerId};
use partnerd_domain::keys::KeyOwner;
use partnerd_domain::ports::{CustomerRepository, InfraError, Page, Paged};
use partnerd_domain::values::{DisplayName, Email, TenantId};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{events, lock_owner, oldest_first};
use crate::Store;
use crate::convert::{corrupt, from_millis, infra, millis};
use crate::entity::customer;

fn emails_to_json(emails: &[Email]) -> String {
    serde_json::to_string(&emails.iter().map(Email::as_str).collect::<Vec<_>>()).expect("strings serialise")
}

fn emails_from_json(raw: &str) -> Result<Vec<Email>, InfraError> {
    let list: Vec<String> = serde_json::from_str(raw).map_err(corrupt)?;
    list.iter().map(|e| Email::parse(e).map_err(corrupt)).collect()
}

fn to_row(c: &Customer) -> customer::Model {
    customer::Model {
        id: c.id.to_string(),
        partner_id: c.partner_id.to_string(),
        name: c.name.as_str().to_owned(),
        tenant_id: c.tenant_id.as_str().to_owned(),
        email: c.email.as_ref().map(|e| e.as_str().to_owned()),
        receivers: emails_to_json(&c.receivers),
        questionnaire_recipients: emails_to_json(&c.questionnaire_recipients),
        created_at: millis(c.created_at),
        updated_at: millis(c.updated_at),
    }
}

pub(crate) fn to_customer(row: customer::Model) -> Result<Customer, InfraError> {
    Ok(Customer {
        id: CustomerId::parse(&row.id).map_err(corrupt)?,
        partner_id: PartnerId::parse(&row.partner_id).map_err(corrupt)?,
        name: DisplayName::parse(&row.name).map_err(corrupt)?,
        tenant_id: TenantId::parse(&row.tenant_id).map_err(corrupt)?,
        email: row.email.as_deref().map(Email::parse).transpose().map_err(corrupt)?,
        receivers: emails_from_json(&row.receivers)?,
        questionnaire_recipients: emails_from_json(&row.questionnaire_recipients)?,
        created_at: from_millis(row.created_at)?,
        updated_at: from_millis(row.updated_at)?,
    })
}

#[async_trait]
impl CustomerRepository for Store {
    async fn insert(&self, customers: &[Customer], events: &[Event]) -> Result<(), InfraError> {
        if customers.is_empty() {
            return Ok(());
        }
        let rows = customers.iter().map(|c| sea_orm::IntoActiveModel::into_active_model(to_row(c)));
        let txn = self.db.begin_write().await.map_err(infra)?;
        customer::Entity::insert_many(rows).exec(&txn).await.map_err(infra)?;
        events::record_all(&txn, events).await?;
        txn.commit().await.map_err(infra)
    }

    async fn get(&self, partner: &PartnerId, id: &CustomerId) -> Result<Option<Customer>, InfraError> {
        let row = customer::Entity::find_by_id(id.as_str())
            .filter(customer::Column::PartnerId.eq(partner.as_str()))
            .one(self.db.reader())
            .await
            .map_err(infra)?;
        row.map(to_customer).transpose()
    }

    async fn list(&self, partner: &PartnerId, page: &Page) -> Result<Paged<Customer>, InfraError> {
        let scope = customer::Entity::find().filter(customer::Column::PartnerId.eq(partner.as_str()));
        let (rows, has_more) =
            oldest_first(self.db.reader(), scope, customer::Column::CreatedAt, customer::Column::Id, page)
                .await
                .map_err(infra)?;
        Ok(Paged { items: rows.into_iter().map(to_customer).collect::<Result<_, _>>()?, has_more })
    }

    async fn update(&self, c: &Customer, event: &Event) -> Result<bool, InfraError> {
        let sql = "UPDATE customers SET name = $1, tenant_id = $2, email = $3, receivers = $4, \
                   questionnaire_recipients = $5, updated_at = $6 WHERE id = $7 AND partner_id = $8";
        let values = [
            c.name.as_str().into(),
            c.tenant_id.as_str().into(),
            c.email.as_ref().map(|e| e.as_str().to_owned()).into(),
            emails_to_json(&c.receivers).into(),
            emails_to_json(&c.questionnaire_recipients).into(),
            millis(c.updated_at).into(),
            c.id.as_str().into(),
            c.partner_id.as_str().into(),
        ];
        let txn = self.db.begin_write().await.map_err(infra)?;
        let done = txn.execute_raw(self.db.stmt(sql, values)).await.map_err(infra)?;
        if done.rows_affected() != 1 {
            txn.rollback().await.map_err(infra)?;
            return Ok(false);
        }
        events::record(&txn, event).await?;
        txn.commit().await.map_err(infra)?;
        Ok(true)
    }

    async fn delete(&self, partner: &PartnerId, id: &CustomerId, event: &Event) -> Result<bool, InfraError> {
        // Under the partner's lock, so a trigger that has checked the customer cannot race the
        // delete; its runs go by ON DELETE CASCADE.
        let txn = self.db.begin_write().await.map_err(infra)?;
        lock_owner(&txn, &KeyOwner::Partner(partner.clone())).await.map_err(infra)?;
        let sql = "DELETE FROM customers WHERE id = $1 AND partner_id = $2";
        let done =
            txn.execute_raw(self.db.stmt(sql, [id.as_str().into(), partner.as_str().into()])).await.map_err(infra)?;
        if done.rows_affected() != 1 {
            txn.rollback().await.map_err(infra)?;
            return Ok(false);
        }
        events::record(&txn, event).await?;
        txn.commit().await.map_err(infra)?;
        Ok(true)
    }
}
