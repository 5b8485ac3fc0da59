use std::sync::Arc;

use crate::customer::{Customer, CustomerDraft, CustomerPatch};
use crate::event::{Event, EventType};
use crate::ids::{CustomerId, EventId, PartnerId};
use crate::ports::{Clock, CustomerRepository, IdGenerator, InfraError, Page, Paged, RunRepository};
use crate::run::Run;
use crate::services::bulk::{BulkItem, validate_each};
use crate::values::FieldError;

/// Most customers one bulk request may create.
pub const MAX_BULK_CUSTOMERS: usize = 100;
/// Runs shown with a customer.
pub const RECENT_RUNS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error("customer not found")]
    NotFound,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("at most {max} items per request")]
    TooMany { max: usize },
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// One item of a bulk create, labelled with the customer's name.
pub type BulkCustomerResult = BulkItem<CustomerId>;

/// A customer with its newest runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDetail {
    pub customer: Customer,
    pub recent_runs: Vec<Run>,
}

/// A partner's customers. Every method is scoped to the partner: another partner's customer
/// is `NotFound`, exactly like one that does not exist.
pub struct CustomerService {
    customers: Arc<dyn CustomerRepository>,
    runs: Arc<dyn RunRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl CustomerService {
    pub fn new(
        customers: Arc<dyn CustomerRepository>,
        runs: Arc<dyn RunRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { customers, runs, clock, ids }
    }

    pub async fn list(&self, partner: &PartnerId, page: &Page) -> Result<Paged<Customer>, CustomerError> {
        Ok(self.customers.list(partner, page).await?)
    }

    pub async fn create(&self, partner: &PartnerId, draft: CustomerDraft) -> Result<Customer, CustomerError> {
        let customer = draft.validate(CustomerId::generate(&*self.ids), partner.clone(), self.clock.now())?;
        self.customers
            .insert(std::slice::from_ref(&customer), &[self.event(EventType::CustomerCreated, &customer)])
            .await?;
        Ok(customer)
    }

    /// Creates every valid item in one transaction; invalid items fail alone. More than
    /// [`MAX_BULK_CUSTOMERS`] fails the whole request and creates nothing.
    pub async fn create_many(
        &self,
        partner: &PartnerId,
        drafts: Vec<CustomerDraft>,
    ) -> Result<Vec<BulkCustomerResult>, CustomerError> {
        if drafts.len() > MAX_BULK_CUSTOMERS {
            return Err(CustomerError::TooMany { max: MAX_BULK_CUSTOMERS });
        }
        let now = self.clock.now();
        let (results, valid) = validate_each(
            drafts,
            |d| d.name.clone(),
            |d| d.validate(CustomerId::generate(&*self.ids), partner.clone(), now),
            |c| c.id.clone(),
        );
        if !valid.is_empty() {
            let events: Vec<Event> = valid.iter().map(|c| self.event(EventType::CustomerCreated, c)).collect();
            self.customers.insert(&valid, &events).await?;
        }
        Ok(results)
    }

    pub async fn get(&self, partner: &PartnerId, id: &str) -> Result<CustomerDetail, CustomerError> {
        let customer = self.find(partner, id).await?;
        let recent_runs = self.runs.recent_for_customer(partner, &customer.id, RECENT_RUNS).await?;
        Ok(CustomerDetail { customer, recent_runs })
    }

    /// Applies a partial update; an empty patch changes nothing but still answers the customer.
    pub async fn update(&self, partner: &PartnerId, id: &str, patch: CustomerPatch) -> Result<Customer, CustomerError> {
        let changes = patch.validate()?;
        let mut customer = self.find(partner, id).await?;
        if changes.is_empty() {
            return Ok(customer);
        }
        changes.apply_to(&mut customer, self.clock.now());
        if !self.customers.update(&customer, &self.event(EventType::CustomerUpdated, &customer)).await? {
            return Err(CustomerError::NotFound);
        }
        Ok(customer)
    }

    /// Deletes the customer and its runs. Units of the run limit already used stay used.
    pub async fn delete(&self, partner: &PartnerId, id: &str) -> Result<(), CustomerError> {
        let id = CustomerId::parse(id).map_err(|_| CustomerError::NotFound)?;
        let event = Event::new(EventId::generate(&*self.ids), EventType::CustomerDeleted, self.clock.now())
            .to_partner(partner.clone())
            .with("customerId", id.to_string());
        if self.customers.delete(partner, &id, &event).await? { Ok(()) } else { Err(CustomerError::NotFound) }
    }

    /// A `customer.*` event for the partner's endpoint.
    fn event(&self, event_type: EventType, c: &Customer) -> Event {
        Event::new(EventId::generate(&*self.ids), event_type, c.updated_at)
            .to_partner(c.partner_id.clone())
            .with("customerId", c.id.to_string())
            .with("name", c.name.as_str())
            .with("tenantId", c.tenant_id.as_str())
            .with("email", c.email.as_ref().map(|e| e.as_str().to_owned()))
    }

    async fn find(&self, partner: &PartnerId, id: &str) -> Result<Customer, CustomerError> {
        let id = CustomerId::parse(id).map_err(|_| CustomerError::NotFound)?;
        self.customers.get(partner, &id).await?.ok_or(CustomerError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventValue;
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use time::macros::datetime;

    #[tokio::test]
    async fn every_change_records_its_event_for_the_partner_and_failures_record_none() {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let clock = Arc::new(FixedClock::at(datetime!(2026-04-03 10:00 UTC)));
        let service = CustomerService::new(store.clone(), store.clone(), clock, ids.clone());
        let partner = PartnerId::generate(&*ids);
        let draft = |name: Option<&str>| CustomerDraft {
            name: name.map(Into::into),
            tenant_id: Some("d4f5a678-1234-5678-9abc-def012345678".into()),
            ..Default::default()
        };
        let c = service.create(&partner, draft(Some("Contoso Ltd"))).await.unwrap();
        assert!(service.create(&partner, draft(None)).await.is_err());
        let results =
            service.create_many(&partner, vec![draft(Some("A")), draft(None), draft(Some("B"))]).await.unwrap();
        assert_eq!(results.iter().filter(|r| r.outcome.is_ok()).count(), 2);
        let patch = CustomerPatch { name: Some("Contoso Corporation".into()), ..Default::default() };
        service.update(&partner, c.id.as_str(), patch).await.unwrap();
        service.update(&partner, c.id.as_str(), CustomerPatch::default()).await.unwrap();
        service.delete(&partner, c.id.as_str()).await.unwrap();
        assert!(service.delete(&partner, c.id.as_str()).await.is_err());
        let events = store.events();
        let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            kinds,
            ["customer.created", "customer.created", "customer.created", "customer.updated", "customer.deleted"],
            "an empty patch and a failed delete record nothing"
        );
        assert!(events.iter().all(|e| e.to_partner.as_ref() == Some(&partner) && e.to_distributor.is_none()));
        assert!(events[3].data.contains(&("name".into(), EventValue::Text("Contoso Corporation".into()))));
    }
}
