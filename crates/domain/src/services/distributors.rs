use std::sync::Arc;

use time::OffsetDateTime;

use crate::account::{AccountStatus, Partner};
use crate::billing::Subscription;
use crate::catalog::{Catalog, PlanId, RunLimit};
use crate::event::{Event, EventType};
use crate::ids::{DistributorId, EventId, PartnerId};
use crate::keys::{ApiKey, KeyKind, KeyOwner};
use crate::ports::{
    Clock, IdGenerator, InfraError, KeyGenerator, ManagedPartnerRepository, Page, Paged, PartnerListing,
    PartnerRepository, PartnerTransition, PartnerUsageRow,
};
use crate::services::bulk::{BulkItem, validate_each};
use crate::services::profile::UsageSummary;
use crate::values::{BillingInterval, Currency, DisplayName, Email, FieldError, Month};

/// Most partners one bulk request may provision.
pub const MAX_BULK_PARTNERS: usize = 50;
/// Longest suspension reason kept.
const MAX_REASON_CHARS: usize = 500;
/// How often an activation or suspension that lost a race decides again.
const TRANSITION_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum DistributorError {
    /// Not this distributor's partner (or no such partner): never told apart.
    #[error("partner not found")]
    PartnerNotFound,
    /// The partner is pending or suspended, so nothing can be done on its behalf.
    #[error("the partner account is suspended or pending activation")]
    PartnerInactive,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("at most {max} items per request")]
    TooMany { max: usize },
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// A partner as a distributor submits it. Absent required fields are `Missing`, so one bad
/// item of a bulk request fails alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerDraft {
    pub email: Option<String>,
    pub company: Option<String>,
    pub name: Option<String>,
    pub plan: Option<String>,
    /// `None` when the `billing` object itself is absent.
    pub billing: Option<BillingDraft>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingDraft {
    pub currency: Option<String>,
    pub interval: Option<String>,
}

/// A partial update: absent fields stay; `billing` fields are merged, not replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerPatch {
    pub company: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub plan: Option<String>,
    pub billing: Option<BillingDraft>,
}

/// What a partner looks like to its distributor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPartner {
    pub partner: Partner,
    pub usage: UsageSummary,
}

/// The result of activating a partner: when it had no active key, a fresh slot-1 key, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub partner: PartnerId,
    pub activated_at: OffsetDateTime,
    pub key: Option<ApiKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub partner: PartnerId,
    pub suspended_at: OffsetDateTime,
    pub reason: Option<String>,
}

/// One item of a bulk provisioning request, labelled with the partner's company.
pub type BulkPartnerResult = BulkItem<PartnerId>;

/// The distributor's usage report for a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    pub month: Month,
    pub partners: Vec<PartnerUsageRow>,
}

/// What a distributor does with its partners. Every method is scoped to the distributor.
pub struct DistributorService {
    managed: Arc<dyn ManagedPartnerRepository>,
    partners: Arc<dyn PartnerRepository>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    key_gen: Arc<dyn KeyGenerator>,
}

fn required(field: &str, value: Option<String>) -> Result<String, FieldError> {
    value.ok_or_else(|| FieldError::Missing(field.to_owned()))
}

impl DistributorService {
    pub fn new(
        managed: Arc<dyn ManagedPartnerRepository>,
        partners: Arc<dyn PartnerRepository>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        key_gen: Arc<dyn KeyGenerator>,
    ) -> Self {
        Self { managed, partners, catalog, clock, ids, key_gen }
    }

    pub async fn list(
        &self,
        distributor: &DistributorId,
        status: Option<&str>,
        page: &Page,
    ) -> Result<Paged<PartnerListing>, DistributorError> {
        let status = status.map(|s| FieldError::check("status", s, |s| s.parse::<AccountStatus>())).transpose()?;
        Ok(self.managed.list(distributor, status, page).await?)
    }

    /// Provisions a pending partner (no key until it is activated).
    pub async fn create(&self, distributor: &DistributorId, draft: PartnerDraft) -> Result<Partner, DistributorError> {
        let partner = self.validate(distributor, draft, self.clock.now())?;
        self.managed.insert(std::slice::from_ref(&partner)).await?;
        Ok(partner)
    }

    /// Provisions every valid item in one transaction; invalid items fail alone.
    pub async fn create_many(
        &self,
        distributor: &DistributorId,
        drafts: Vec<PartnerDraft>,
    ) -> Result<Vec<BulkPartnerResult>, DistributorError> {
        if drafts.len() > MAX_BULK_PARTNERS {
            return Err(DistributorError::TooMany { max: MAX_BULK_PARTNERS });
        }
        let now = self.clock.now();
        let (results, valid) =
            validate_each(drafts, |d| d.company.clone(), |d| self.validate(distributor, d, now), |p| p.id.clone());
        if !valid.is_empty() {
            self.managed.insert(&valid).await?;
        }
        Ok(results)
    }

    pub async fn get(&self, distributor: &DistributorId, id: &str) -> Result<ManagedPartner, DistributorError> {
        let partner = self.owned(distributor, id).await?;
        let month = Month::containing(self.clock.now());
        let usage = self.partners.usage(&partner.id, month).await?;
        let runs_limit = self.catalog.plan(partner.plan()).map_or(RunLimit::Limited(0), |p| p.run_limit);
        Ok(ManagedPartner {
            usage: UsageSummary {
                month,
                runs_used: usage.runs_used,
                runs_limit,
                customers_count: usage.customers_count,
            },
            partner,
        })
    }

    /// The partner as `patch` would leave its profile fields (company, e-mail, name), checked
    /// but not stored. Plan and billing changes go through the plan service (proration, hourly
    /// allowance), so a caller can check everything before it changes anything.
    pub fn prepare_profile(&self, current: &Partner, patch: &PartnerPatch) -> Result<Partner, DistributorError> {
        let mut partner = current.clone();
        if let Some(company) = &patch.company {
            partner.company = FieldError::check("company", company, DisplayName::parse)?;
        }
        if let Some(email) = &patch.email {
            partner.email = FieldError::check("email", email, Email::parse)?;
        }
        if let Some(name) = &patch.name {
            partner.name = FieldError::check("name", name, DisplayName::parse)?;
        }
        if partner != *current {
            partner.updated_at = self.clock.now();
        }
        Ok(partner)
    }

    /// Stores the profile fields of a partner from [`Self::prepare_profile`].
    pub async fn save_profile(&self, partner: &Partner) -> Result<(), DistributorError> {
        if self.managed.update_profile(partner).await? { Ok(()) } else { Err(DistributorError::PartnerNotFound) }
    }

    /// Pending or suspended → active. When the partner has no active key (first activation, or
    /// after a suspension revoked them all) a fresh slot-1 key comes back, shown once. Activating
    /// an active partner changes nothing. Of two racing changes exactly one happens; the other
    /// decides again from the status that won.
    pub async fn activate(&self, distributor: &DistributorId, id: &str) -> Result<Activation, DistributorError> {
        for _ in 0..TRANSITION_RETRIES {
            let partner = self.owned(distributor, id).await?;
            let now = self.clock.now();
            let Ok(status) = partner.status.activate() else {
                return Ok(Activation { partner: partner.id, activated_at: now, key: None });
            };
            let key = ApiKey::generate(KeyKind::Partner, &*self.key_gen);
            let event = Event::new(EventId::generate(&*self.ids), EventType::PartnerActivated, now)
                .to_distributor(partner.distributor_id.clone())
                .with("partnerId", partner.id.to_string())
                .with("company", partner.company.as_str())
                .with("status", status.as_str());
            let transition = PartnerTransition {
                partner: partner.id.clone(),
                from: partner.status,
                to: status,
                at: now,
                reason: None,
                revoke_keys: false,
                issue_key: Some(key.hash()),
                key_events: super::revoke_all_events(&*self.ids, &KeyOwner::Partner(partner.id.clone()), true, now),
                event,
            };
            if self.managed.transition(&transition).await? {
                return Ok(Activation { partner: partner.id, activated_at: now, key: Some(key) });
            }
        }
        Err(InfraError::new("the partner's status kept changing during activation").into())
    }

    /// Active or pending → suspended: every key of the partner stops working at once.
    /// Suspending a suspended partner changes nothing.
    pub async fn suspend(
        &self,
        distributor: &DistributorId,
        id: &str,
        reason: Option<String>,
    ) -> Result<Suspension, DistributorError> {
        let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(FieldError::invalid("reason", format!("must be at most {MAX_REASON_CHARS} characters")).into());
        }
        for _ in 0..TRANSITION_RETRIES {
            let partner = self.owned(distributor, id).await?;
            let now = self.clock.now();
            let Ok(status) = partner.status.suspend() else {
                return Ok(Suspension { partner: partner.id, suspended_at: now, reason });
            };
            let event = Event::new(EventId::generate(&*self.ids), EventType::PartnerSuspended, now)
                .to_distributor(partner.distributor_id.clone())
                .with("partnerId", partner.id.to_string())
                .with("company", partner.company.as_str())
                .with("status", status.as_str())
                .with("reason", reason.clone());
            let transition = PartnerTransition {
                partner: partner.id.clone(),
                from: partner.status,
                to: status,
                at: now,
                reason: reason.clone(),
                revoke_keys: true,
                issue_key: None,
                key_events: super::revoke_all_events(&*self.ids, &KeyOwner::Partner(partner.id.clone()), false, now),
                event,
            };
            if self.managed.transition(&transition).await? {
                return Ok(Suspension { partner: partner.id, suspended_at: now, reason });
            }
        }
        Err(InfraError::new("the partner's status kept changing during suspension").into())
    }

    /// The partner, if it is this distributor's; for work done on its behalf it must be active.
    pub async fn act_for(&self, distributor: &DistributorId, id: &str) -> Result<PartnerId, DistributorError> {
        let partner = self.owned(distributor, id).await?;
        if !partner.status.is_active() {
            return Err(DistributorError::PartnerInactive);
        }
        Ok(partner.id)
    }

    /// The partner, if it is this distributor's (any status).
    pub async fn owned(&self, distributor: &DistributorId, id: &str) -> Result<Partner, DistributorError> {
        let id = PartnerId::parse(id).map_err(|_| DistributorError::PartnerNotFound)?;
        self.managed.get(distributor, &id).await?.ok_or(DistributorError::PartnerNotFound)
    }

    /// Runs and customers per partner for `month` (default: the current month).
    pub async fn usage(
        &self,
        distributor: &DistributorId,
        month: Option<&str>,
    ) -> Result<UsageReport, DistributorError> {
        let month = match month {
            Some(raw) => FieldError::check("month", raw, Month::parse)?,
            None => Month::containing(self.clock.now()),
        };
        Ok(UsageReport { month, partners: self.managed.usage(distributor, month).await? })
    }

    fn validate(
        &self,
        distributor: &DistributorId,
        draft: PartnerDraft,
        now: OffsetDateTime,
    ) -> Result<Partner, FieldError> {
        let email = required("email", draft.email)?;
        let company = required("company", draft.company)?;
        let name = required("name", draft.name)?;
        let plan = required("plan", draft.plan)?;
        let billing = draft.billing.ok_or_else(|| FieldError::Missing("billing".into()))?;
        let currency = required("billing.currency", billing.currency)?;
        let plan = PlanId::parse(&plan)
            .ok()
            .filter(|p| self.catalog.plan(p).is_some())
            .ok_or_else(|| FieldError::invalid("plan", format!("must be one of {}", self.plan_names())))?;
        let currency = FieldError::check("billing.currency", &currency, |c| c.parse::<Currency>())?;
        let interval = match billing.interval {
            None => BillingInterval::Quarterly,
            Some(raw) => FieldError::check("billing.interval", &raw, |i| i.parse::<BillingInterval>())?,
        };
        Ok(Partner {
            id: PartnerId::generate(&*self.ids),
            distributor_id: Some(distributor.clone()),
            company: FieldError::check("company", &company, DisplayName::parse)?,
            email: FieldError::check("email", &email, Email::parse)?,
            name: FieldError::check("name", &name, DisplayName::parse)?,
            status: AccountStatus::Pending,
            subscription: Subscription::starting(plan, interval, currency, now),
            created_at: now,
            updated_at: now,
        })
    }

    fn plan_names(&self) -> String {
        self.catalog.plans().iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Distributor;
    use crate::event::EventValue;
    use crate::ports::{DistributorRepository, KeyRepository};
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-04-03 11:00 UTC);

    async fn setup() -> (DistributorService, Arc<InMemoryStore>, DistributorId, DistributorId) {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let mut distributors = Vec::new();
        for _ in 0..2 {
            let d = Distributor {
                id: DistributorId::generate(&*ids),
                company: DisplayName::parse("Global Security Distribution").unwrap(),
                email: Email::parse("ops@globalsecdist.com").unwrap(),
                status: AccountStatus::Active,
                created_at: NOW,
            };
            DistributorRepository::insert(&*store, &d, None).await.unwrap();
            distributors.push(d.id);
        }
        let service = DistributorService::new(
            store.clone(),
            store.clone(),
            Arc::new(Catalog::default()),
            Arc::new(FixedClock::at(NOW)),
            ids.clone(),
            ids,
        );
        let other = distributors.pop().unwrap();
        (service, store, distributors.pop().unwrap(), other)
    }

    fn draft() -> PartnerDraft {
        PartnerDraft {
            email: Some("admin@newmsp.com".into()),
            company: Some("New MSP Pty Ltd".into()),
            name: Some("Jane Smith".into()),
            plan: Some("professional".into()),
            billing: Some(BillingDraft { currency: Some("AUD".into()), interval: None }),
        }
    }

    #[tokio::test]
    async fn new_partners_are_pending_quarterly_and_keyless() {
        let (service, store, d, _) = setup().await;
        let p = service.create(&d, draft()).await.unwrap();
        assert_eq!(p.status, AccountStatus::Pending);
        assert_eq!(p.subscription.interval, BillingInterval::Quarterly);
        assert_eq!(p.subscription.currency, Currency::Aud);
        assert!(store.stored_key_hashes().is_empty());
    }

    #[tokio::test]
    async fn missing_fields_are_named_including_nested_billing_currency() {
        let (service, _, d, _) = setup().await;
        let missing = |draft: PartnerDraft| async { service.create(&d, draft).await.unwrap_err() };
        let no_currency = PartnerDraft { billing: Some(BillingDraft::default()), ..draft() };
        assert!(
            matches!(missing(no_currency).await, DistributorError::Field(FieldError::Missing(f)) if f == "billing.currency")
        );
        assert!(
            matches!(missing(PartnerDraft { billing: None, ..draft() }).await, DistributorError::Field(FieldError::Missing(f)) if f == "billing")
        );
        assert!(
            matches!(missing(PartnerDraft { email: None, ..draft() }).await, DistributorError::Field(FieldError::Missing(f)) if f == "email")
        );
        let bad_plan = PartnerDraft { plan: Some("platinum".into()), ..draft() };
        assert!(
            matches!(missing(bad_plan).await, DistributorError::Field(FieldError::Invalid { field, .. }) if field == "plan")
        );
    }

    #[tokio::test]
    async fn activation_issues_a_key_and_records_the_event_once() {
        let (service, store, d, _) = setup().await;
        let p = service.create(&d, draft()).await.unwrap();
        let first = service.activate(&d, p.id.as_str()).await.unwrap();
        let key = first.key.expect("a pending partner gets its first key");
        let principal = store.find_principal(&key.hash()).await.unwrap().unwrap();
        assert_eq!(principal.owner_status, AccountStatus::Active);
        let again = service.activate(&d, p.id.as_str()).await.unwrap();
        assert_eq!(again.key, None, "activating an active partner changes nothing");
        let events = store.events();
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::KeyCreated, EventType::PartnerActivated], "one activation, one new key");
        assert_eq!(events[0].to_partner.as_ref(), Some(&p.id), "the key event goes to the partner");
        assert!(events[0].data.contains(&("slot".into(), EventValue::Int(1))));
        assert_eq!(events[1].to_distributor.as_ref(), Some(&d));
        assert_eq!(events[1].to_partner, None, "partner.* goes to the distributor only");
    }

    #[tokio::test]
    async fn suspension_revokes_every_key_and_reactivation_issues_a_new_one() {
        let (service, store, d, _) = setup().await;
        let p = service.create(&d, draft()).await.unwrap();
        let old = service.activate(&d, p.id.as_str()).await.unwrap().key.unwrap();
        let s = service.suspend(&d, p.id.as_str(), Some("  unpaid invoice ".into())).await.unwrap();
        assert_eq!(s.reason.as_deref(), Some("unpaid invoice"));
        assert_eq!(store.find_principal(&old.hash()).await.unwrap(), None);
        let events = store.events();
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [EventType::KeyCreated, EventType::PartnerActivated, EventType::KeyRevoked, EventType::PartnerSuspended]
        );
        assert!(events[2].data.contains(&("slot".into(), EventValue::Int(1))), "the revoked slot is named");
        assert!(events[3].data.contains(&("reason".into(), EventValue::Text("unpaid invoice".into()))));
        service.suspend(&d, p.id.as_str(), None).await.unwrap();
        assert_eq!(store.events().len(), 4, "suspending again changes nothing");
        let new = service.activate(&d, p.id.as_str()).await.unwrap().key.unwrap();
        assert_ne!(new, old);
        assert!(store.find_principal(&new.hash()).await.unwrap().is_some());
        assert_eq!(store.find_principal(&old.hash()).await.unwrap(), None, "old keys stay dead");
    }

    #[tokio::test]
    async fn another_distributors_partner_is_not_found_and_work_needs_an_active_partner() {
        let (service, _, d, other) = setup().await;
        let p = service.create(&d, draft()).await.unwrap();
        assert!(matches!(service.act_for(&d, p.id.as_str()).await, Err(DistributorError::PartnerInactive)));
        for result in [
            service.activate(&other, p.id.as_str()).await.map(|_| ()),
            service.suspend(&other, p.id.as_str(), None).await.map(|_| ()),
            service.get(&other, p.id.as_str()).await.map(|_| ()),
            service.act_for(&other, p.id.as_str()).await.map(|_| ()),
            service.get(&d, "not-an-id").await.map(|_| ()),
        ] {
            assert!(matches!(result, Err(DistributorError::PartnerNotFound)));
        }
        assert!(service.list(&other, None, &Page::default()).await.unwrap().items.is_empty());
    }

    #[tokio::test]
    async fn bulk_provisioning_fails_bad_items_alone() {
        let (service, _, d, _) = setup().await;
        let bad = PartnerDraft { email: Some("nope".into()), ..draft() };
        let results = service.create_many(&d, vec![draft(), bad, draft()]).await.unwrap();
        assert_eq!(results.iter().map(|r| r.outcome.is_ok()).collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(service.list(&d, Some("pending"), &Page::default()).await.unwrap().items.len(), 2);
        let too_many = service.create_many(&d, vec![draft(); 51]).await;
        assert!(matches!(too_many, Err(DistributorError::TooMany { max: 50 })));
        assert!(matches!(service.list(&d, Some("frozen"), &Page::default()).await, Err(DistributorError::Field(_))));
    }
}
