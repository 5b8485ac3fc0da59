use std::sync::Arc;

use time::Duration;

use crate::billing::{Proration, Subscription, prorate};
use crate::catalog::{Catalog, PlanId, RunLimit};
use crate::ids::{PartnerId, PlanChangeId};
use crate::ports::{
    Actor, BillingError, BillingProvider, Clock, IdGenerator, InfraError, PartnerRepository, PlanChange,
    PlanChangeRepository, ReservePlanChangeError,
};
use crate::values::{BillingInterval, Currency};

/// Successful plan changes allowed per partner in any [`PLAN_CHANGE_WINDOW`].
pub const MAX_PLAN_CHANGES_PER_HOUR: u32 = 10;
pub const PLAN_CHANGE_WINDOW: Duration = Duration::HOUR;
/// How often a change that lost a race to another is prorated again before giving up.
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum PlanChangeError {
    #[error("partner not found")]
    NotFound,
    /// `PLAN_CHANGE_FAILED`: an unknown plan, billing or currency, or no price.
    #[error("{0}")]
    Failed(String),
    /// `PLAN_CHANGE_FAILED` too: the partner already has exactly these terms.
    #[error("Already on the {0} plan with these billing terms.")]
    Unchanged(String),
    #[error("at most {MAX_PLAN_CHANGES_PER_HOUR} plan changes per hour; retry after {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// A plan change as submitted: `billing` is `monthly`, `quarterly`, or `rolling` (= annual);
/// absent values keep the current terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanChangeRequest {
    pub plan: String,
    pub billing: Option<String>,
    pub currency: Option<String>,
}

/// The subscription after a change, as the plan endpoints report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChangeOutcome {
    pub partner: PartnerId,
    pub subscription: Subscription,
    pub run_limit: RunLimit,
    pub proration: Proration,
}

/// The word the plan endpoints use for an interval: annual is `rolling`.
pub fn billing_word(interval: BillingInterval) -> &'static str {
    match interval {
        BillingInterval::Monthly => "monthly",
        BillingInterval::Quarterly => "quarterly",
        BillingInterval::Annual => "rolling",
    }
}

fn parse_billing(raw: &str) -> Option<BillingInterval> {
    match raw.to_ascii_lowercase().as_str() {
        "monthly" => Some(BillingInterval::Monthly),
        "quarterly" => Some(BillingInterval::Quarterly),
        "rolling" | "annual" => Some(BillingInterval::Annual),
        _ => None,
    }
}

/// Upgrades and downgrades with proration, at most ten an hour per partner.
pub struct PlanService {
    partners: Arc<dyn PartnerRepository>,
    changes: Arc<dyn PlanChangeRepository>,
    billing: Arc<dyn BillingProvider>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl PlanService {
    pub fn new(
        partners: Arc<dyn PartnerRepository>,
        changes: Arc<dyn PlanChangeRepository>,
        billing: Arc<dyn BillingProvider>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { partners, changes, billing, catalog, clock, ids }
    }

    /// What the change would do, changing nothing.
    pub async fn preview(&self, partner: &PartnerId, request: PlanChangeRequest) -> Result<Proration, PlanChangeError> {
        Ok(self.plan(partner, &request).await?.1)
    }

    /// Changes the plan: reserve a place in the hourly allowance, put the change into effect
    /// with the billing provider, then apply it. A refused or failed billing step gives the
    /// place back and changes nothing.
    pub async fn change(
        &self,
        actor: Actor,
        partner: &PartnerId,
        request: PlanChangeRequest,
    ) -> Result<PlanChangeOutcome, PlanChangeError> {
        // A change prorated from terms that another change has just replaced is prorated again.
        let mut attempts = 0;
        let (change, proration) = loop {
            attempts += 1;
            let (from, proration) = self.plan(partner, &request).await?;
            let now = self.clock.now();
            let change = PlanChange {
                id: PlanChangeId::generate(&*self.ids),
                partner: partner.clone(),
                actor: actor.clone(),
                from,
                to: proration.subscription.clone(),
                lines: proration.lines.clone(),
                requested_at: now,
            };
            match self.changes.reserve(&change, now - PLAN_CHANGE_WINDOW, MAX_PLAN_CHANGES_PER_HOUR).await {
                Ok(()) => break (change, proration),
                Err(ReservePlanChangeError::Conflict) if attempts < CONFLICT_RETRIES => continue,
                Err(ReservePlanChangeError::Conflict) => {
                    return Err(PlanChangeError::Failed("Another plan change is in progress; try again.".into()));
                }
                Err(ReservePlanChangeError::RateLimited { retry_at }) => {
                    let secs = (retry_at - now).whole_seconds().max(1);
                    return Err(PlanChangeError::RateLimited { retry_after_secs: secs.unsigned_abs() });
                }
                Err(ReservePlanChangeError::Internal(e)) => return Err(e.into()),
            }
        };
        let now = change.requested_at;
        if let Err(e) = self.billing.change_subscription(&change).await {
            self.changes.release(&change.id).await?;
            return Err(match e {
                BillingError::Refused(reason) => PlanChangeError::Failed(reason),
                BillingError::Internal(e) => e.into(),
            });
        }
        self.changes.apply(&change, now).await?;
        let run_limit = self.catalog.plan(&change.to.plan).map_or(RunLimit::Limited(0), |p| p.run_limit);
        Ok(PlanChangeOutcome { partner: partner.clone(), subscription: change.to, run_limit, proration })
    }

    /// Validates the request against the partner's current subscription and prorates it.
    async fn plan(
        &self,
        partner: &PartnerId,
        request: &PlanChangeRequest,
    ) -> Result<(Subscription, Proration), PlanChangeError> {
        let failed = |reason: String| PlanChangeError::Failed(reason);
        let current = self.partners.get(partner).await?.ok_or(PlanChangeError::NotFound)?.subscription;
        let now = self.clock.now();
        let current = current.current_at(now);
        let target = PlanId::parse(&request.plan)
            .ok()
            .and_then(|id| self.catalog.plan(&id))
            .ok_or_else(|| failed(format!("Unknown plan '{}': use one of {}.", request.plan, self.plan_names())))?;
        let interval = match &request.billing {
            None => current.interval,
            Some(raw) => parse_billing(raw).ok_or_else(|| {
                failed(format!("Unknown billing '{raw}': use monthly, quarterly, or rolling (annual)."))
            })?,
        };
        let currency = match &request.currency {
            None => current.currency,
            Some(raw) => raw
                .parse::<Currency>()
                .map_err(|_| failed(format!("Unknown currency '{raw}': use usd, aud, gbp, eur, nzd or sgd.")))?,
        };
        if target.id == current.plan && interval == current.interval && currency == current.currency {
            return Err(PlanChangeError::Unchanged(target.id.to_string()));
        }
        let new_price = target.price(interval, currency).ok_or_else(|| {
            failed(format!("The {} plan is not sold {} in {}.", target.id, interval.as_str(), currency.code()))
        })?;
        let old_price = self
            .catalog
            .plan(&current.plan)
            .and_then(|p| p.price(current.interval, current.currency))
            .ok_or_else(|| failed(format!("The current plan {} has no price to prorate against.", current.plan)))?;
        let proration = prorate(&current, old_price, target.id.clone(), interval, currency, new_price, now);
        Ok((current, proration))
    }

    fn plan_names(&self) -> String {
        self.catalog.plans().iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountStatus, Partner};
    use crate::ports::{MockBillingProvider, PartnerRepository};
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use crate::values::{DisplayName, Email};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-04-16 00:00 UTC);

    async fn setup(billing: Arc<dyn BillingProvider>) -> (PlanService, Arc<InMemoryStore>, PartnerId) {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let partner = Partner {
            id: PartnerId::generate(&*ids),
            distributor_id: None,
            company: DisplayName::parse("Acme MSP").unwrap(),
            email: Email::parse("admin@acmemsp.com").unwrap(),
            name: DisplayName::parse("John Doe").unwrap(),
            status: AccountStatus::Active,
            subscription: Subscription::starting(
                PlanId::parse("starter").unwrap(),
                BillingInterval::Monthly,
                Currency::Aud,
                datetime!(2026-04-01 00:00 UTC),
            ),
            created_at: NOW,
            updated_at: NOW,
        };
        PartnerRepository::insert(&*store, &partner, None).await.unwrap();
        let service = PlanService::new(
            store.clone(),
            store.clone(),
            billing,
            Arc::new(Catalog::default()),
            Arc::new(FixedClock::at(NOW)),
            ids,
        );
        (service, store, partner.id)
    }

    fn request(plan: &str, billing: Option<&str>, currency: Option<&str>) -> PlanChangeRequest {
        PlanChangeRequest { plan: plan.into(), billing: billing.map(Into::into), currency: currency.map(Into::into) }
    }

    fn ledger(store: &Arc<InMemoryStore>) -> Arc<dyn BillingProvider> {
        struct Ledger(Arc<InMemoryStore>);
        #[async_trait::async_trait]
        impl BillingProvider for Ledger {
            async fn change_subscription(&self, change: &PlanChange) -> Result<(), BillingError> {
                use crate::ports::LedgerRepository;
                Ok(self.0.record_proration(change, change.requested_at).await?)
            }
        }
        Arc::new(Ledger(store.clone()))
    }

    #[tokio::test]
    async fn an_upgrade_prorates_records_the_lines_and_applies_the_plan() {
        let store = Arc::new(InMemoryStore::new());
        let (service, partners, partner) = setup(ledger(&store)).await;
        let outcome = service
            .change(Actor::Partner(partner.clone()), &partner, request("professional", None, None))
            .await
            .unwrap();
        assert_eq!(outcome.run_limit, RunLimit::Limited(200));
        assert_eq!(outcome.subscription.plan.as_str(), "professional");
        let amounts: Vec<String> = store.ledger_lines().iter().map(|l| l.amount.to_decimal_string()).collect();
        assert_eq!(amounts, ["-74.50", "224.50"]);
        let stored = PartnerRepository::get(&*partners, &partner).await.unwrap().unwrap();
        assert_eq!(stored.plan().as_str(), "professional");
    }

    #[tokio::test]
    async fn unknown_terms_and_the_current_terms_fail_without_reserving() {
        let mut billing = MockBillingProvider::new();
        billing.expect_change_subscription().never();
        let (service, _, partner) = setup(Arc::new(billing)).await;
        let actor = || Actor::Partner(partner.clone());
        for bad in [
            request("platinum", None, None),
            request("professional", Some("weekly"), None),
            request("professional", None, Some("jpy")),
        ] {
            assert!(matches!(service.change(actor(), &partner, bad).await, Err(PlanChangeError::Failed(_))));
        }
        let same = service.change(actor(), &partner, request("starter", Some("monthly"), Some("AUD"))).await;
        assert!(matches!(same, Err(PlanChangeError::Unchanged(_))));
    }

    #[tokio::test]
    async fn a_refused_billing_change_gives_its_place_back_and_changes_nothing() {
        let mut billing = MockBillingProvider::new();
        billing.expect_change_subscription().returning(|_| Err(BillingError::Refused("card declined".into())));
        let (service, store, partner) = setup(Arc::new(billing)).await;
        for _ in 0..MAX_PLAN_CHANGES_PER_HOUR + 2 {
            let refused =
                service.change(Actor::Partner(partner.clone()), &partner, request("professional", None, None)).await;
            assert!(matches!(refused, Err(PlanChangeError::Failed(reason)) if reason == "card declined"));
        }
        let stored = PartnerRepository::get(&*store, &partner).await.unwrap().unwrap();
        assert_eq!(stored.plan().as_str(), "starter");
    }

    #[tokio::test]
    async fn the_eleventh_change_in_an_hour_is_rate_limited_until_the_first_leaves_the_window() {
        let store = Arc::new(InMemoryStore::new());
        let (service, _, partner) = setup(ledger(&store)).await;
        let plans = ["professional", "starter"];
        for i in 0..MAX_PLAN_CHANGES_PER_HOUR as usize {
            service.change(Actor::Partner(partner.clone()), &partner, request(plans[i % 2], None, None)).await.unwrap();
        }
        let limited =
            service.change(Actor::Partner(partner.clone()), &partner, request("enterprise", None, None)).await;
        assert!(matches!(limited, Err(PlanChangeError::RateLimited { retry_after_secs: 3600 })), "{limited:?}");
    }

    #[test]
    fn annual_is_called_rolling_on_the_plan_endpoints() {
        assert_eq!(billing_word(BillingInterval::Annual), "rolling");
        assert_eq!(parse_billing("ROLLING"), Some(BillingInterval::Annual));
        assert_eq!(parse_billing("annual"), Some(BillingInterval::Annual));
        assert_eq!(parse_billing("weekly"), None);
    }
}
