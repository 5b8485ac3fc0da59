use std::sync::Arc;

use crate::customer::{Customer, CustomerDraft, CustomerPatch};
use crate::ids::{CustomerId, PartnerId};
use crate::ports::{Clock, CustomerRepository, IdGenerator, InfraError, Page, Paged, RunRepository};
use crate::run::Run;
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

/// One item of a bulk create: created with an id, or failed with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkCustomerResult {
    pub index: usize,
    pub name: Option<String>,
    pub outcome: Result<CustomerId, FieldError>,
}

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
        self.customers.insert(std::slice::from_ref(&customer)).await?;
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
        let mut valid = Vec::new();
        let results = drafts
            .into_iter()
            .enumerate()
            .map(|(index, draft)| {
                let name = draft.name.clone();
                let outcome = draft.validate(CustomerId::generate(&*self.ids), partner.clone(), now).map(|c| {
                    let id = c.id.clone();
                    valid.push(c);
                    id
                });
                BulkCustomerResult { index, name, outcome }
            })
            .collect();
        if !valid.is_empty() {
            self.customers.insert(&valid).await?;
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
        if !self.customers.update(&customer).await? {
            return Err(CustomerError::NotFound);
        }
        Ok(customer)
    }

    /// Deletes the customer and its runs. Units of the run limit already used stay used.
    pub async fn delete(&self, partner: &PartnerId, id: &str) -> Result<(), CustomerError> {
        let id = CustomerId::parse(id).map_err(|_| CustomerError::NotFound)?;
        if self.customers.delete(partner, &id).await? { Ok(()) } else { Err(CustomerError::NotFound) }
    }

    async fn find(&self, partner: &PartnerId, id: &str) -> Result<Customer, CustomerError> {
        let id = CustomerId::parse(id).map_err(|_| CustomerError::NotFound)?;
        self.customers.get(partner, &id).await?.ok_or(CustomerError::NotFound)
    }
}
