use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::account::{AccountStatus, Distributor, IllegalTransition, Partner, Worker};
use crate::billing::Subscription;
use crate::catalog::{Catalog, PlanId};
use crate::ids::{DistributorId, PartnerId, WorkerId};
use crate::invoice::DiscountPercent;
use crate::keys::{ApiKey, KeyKind, KeyOwner};
use crate::ports::{
    Clock, DistributorRepository, IdGenerator, InfraError, KeyGenerator, KeyRepository, PartnerRepository,
    WorkerRepository,
};
use crate::values::{BillingInterval, Currency, DisplayName, Email, InvalidValue};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{field} {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("no distributor has id {0}")]
    DistributorNotFound(String),
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error(transparent)]
    Internal(#[from] InfraError),
}

fn field(field: &'static str) -> impl FnOnce(InvalidValue) -> AdminError {
    move |e| AdminError::InvalidField { field, reason: e.reason.to_owned() }
}

/// What the operator gives to create a partner.
#[derive(Debug, Clone)]
pub struct NewPartner {
    pub company: String,
    pub email: String,
    pub name: String,
    pub plan: String,
    pub distributor: Option<String>,
    pub currency: Currency,
    pub interval: BillingInterval,
}

/// The operator's use cases (`partnerd admin …`, `partnerd quickstart`). Accounts created here
/// are active and come with their first key, shown once.
pub struct AdminService {
    distributors: Arc<dyn DistributorRepository>,
    partners: Arc<dyn PartnerRepository>,
    workers: Arc<dyn WorkerRepository>,
    keys: Arc<dyn KeyRepository>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    key_gen: Arc<dyn KeyGenerator>,
}

impl AdminService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        distributors: Arc<dyn DistributorRepository>,
        partners: Arc<dyn PartnerRepository>,
        workers: Arc<dyn WorkerRepository>,
        keys: Arc<dyn KeyRepository>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        key_gen: Arc<dyn KeyGenerator>,
    ) -> Self {
        Self { distributors, partners, workers, keys, catalog, clock, ids, key_gen }
    }

    pub async fn create_distributor(&self, company: &str, email: &str) -> Result<(Distributor, ApiKey), AdminError> {
        let distributor = Distributor {
            id: DistributorId::generate(&*self.ids),
            company: DisplayName::parse(company).map_err(field("company"))?,
            email: Email::parse(email).map_err(field("email"))?,
            status: AccountStatus::Active,
            created_at: self.clock.now(),
        };
        let key = ApiKey::generate(KeyKind::Distributor, &*self.key_gen);
        self.distributors.insert(&distributor, Some(key.hash())).await?;
        Ok((distributor, key))
    }

    pub async fn create_partner(&self, new: NewPartner) -> Result<(Partner, ApiKey), AdminError> {
        let plan = PlanId::parse(&new.plan).ok().filter(|p| self.catalog.plan(p).is_some()).ok_or_else(|| {
            AdminError::InvalidField { field: "plan", reason: format!("must be one of {}", self.plan_names()) }
        })?;
        let distributor_id = match new.distributor.as_deref() {
            None => None,
            Some(raw) => {
                let id = DistributorId::parse(raw).map_err(|_| AdminError::DistributorNotFound(raw.to_owned()))?;
                if self.distributors.get(&id).await?.is_none() {
                    return Err(AdminError::DistributorNotFound(raw.to_owned()));
                }
                Some(id)
            }
        };
        let now = self.clock.now();
        let partner = Partner {
            id: PartnerId::generate(&*self.ids),
            distributor_id,
            company: DisplayName::parse(&new.company).map_err(field("company"))?,
            email: Email::parse(&new.email).map_err(field("email"))?,
            name: DisplayName::parse(&new.name).map_err(field("name"))?,
            status: AccountStatus::Active,
            subscription: Subscription::starting(plan, new.interval, new.currency, now),
            created_at: now,
            updated_at: now,
        };
        let key = ApiKey::generate(KeyKind::Partner, &*self.key_gen);
        self.partners.insert(&partner, Some(key.hash())).await?;
        Ok((partner, key))
    }

    pub async fn create_worker(&self, name: &str) -> Result<(Worker, ApiKey), AdminError> {
        let worker = Worker {
            id: WorkerId::generate(&*self.ids),
            name: DisplayName::parse(name).map_err(field("name"))?,
            created_at: self.clock.now(),
        };
        let key = ApiKey::generate(KeyKind::Worker, &*self.key_gen);
        self.workers.insert(&worker, key.hash()).await?;
        Ok((worker, key))
    }

    /// Sets the percentage taken off the distributor's future invoices (`None`: the default,
    /// 20 %). Invoices already issued keep theirs.
    pub async fn set_distributor_discount(
        &self,
        id: &str,
        percent: Option<&str>,
    ) -> Result<DiscountPercent, AdminError> {
        let id = DistributorId::parse(id).map_err(|_| AdminError::DistributorNotFound(id.to_owned()))?;
        let discount = percent
            .map(|raw| {
                let value = Decimal::from_str(raw.trim()).map_err(|_| AdminError::InvalidField {
                    field: "percent",
                    reason: "must be a number from 0 to 100, or 'default'".to_owned(),
                })?;
                DiscountPercent::new(value).map_err(field("percent"))
            })
            .transpose()?;
        if !self.distributors.set_discount(&id, discount).await? {
            return Err(AdminError::DistributorNotFound(id.to_string()));
        }
        Ok(discount.unwrap_or(DiscountPercent::DEFAULT))
    }

    pub async fn suspend_distributor(&self, id: &str) -> Result<Distributor, AdminError> {
        self.transition_distributor(id, AccountStatus::suspend).await
    }

    pub async fn activate_distributor(&self, id: &str) -> Result<Distributor, AdminError> {
        self.transition_distributor(id, AccountStatus::activate).await
    }

    /// Revokes every key of `owner` and issues a fresh one in slot 1 (the only way to show a
    /// key again, since keys are stored as hashes).
    pub async fn reissue_key(&self, owner: &KeyOwner) -> Result<ApiKey, AdminError> {
        let key = ApiKey::generate(owner.kind(), &*self.key_gen);
        let now = self.clock.now();
        let events = super::revoke_all_events(&*self.ids, owner, true, now);
        self.keys.reissue(owner, &key.hash(), now, &events).await?;
        Ok(key)
    }

    pub async fn find_distributor_by_email(&self, email: &str) -> Result<Option<Distributor>, AdminError> {
        let email = Email::parse(email).map_err(field("email"))?;
        Ok(self.distributors.find_by_email(&email).await?)
    }

    pub async fn find_partner_by_email(&self, email: &str) -> Result<Option<Partner>, AdminError> {
        let email = Email::parse(email).map_err(field("email"))?;
        Ok(self.partners.find_by_email(&email).await?)
    }

    pub async fn find_worker_by_name(&self, name: &str) -> Result<Option<Worker>, AdminError> {
        Ok(self.workers.find_by_name(name).await?)
    }

    async fn transition_distributor(
        &self,
        raw_id: &str,
        transition: fn(AccountStatus) -> Result<AccountStatus, IllegalTransition>,
    ) -> Result<Distributor, AdminError> {
        let not_found = || AdminError::DistributorNotFound(raw_id.to_owned());
        let id = DistributorId::parse(raw_id).map_err(|_| not_found())?;
        let mut distributor = self.distributors.get(&id).await?.ok_or_else(not_found)?;
        distributor.status = transition(distributor.status)?;
        if !self.distributors.set_status(&id, distributor.status, self.clock.now()).await? {
            return Err(not_found());
        }
        Ok(distributor)
    }

    fn plan_names(&self) -> String {
        self.catalog.plans().iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
    }
}
