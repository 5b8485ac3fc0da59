use std::sync::Arc;

use crate::account::Partner;
use crate::catalog::{Catalog, ProductId, RunLimit};
use crate::event::{Event, EventType};
use crate::ids::{CustomerId, EventId, PartnerId, RunId};
use crate::ports::{
    Clock, CreateRunsError, IdGenerator, InfraError, Page, Paged, PartnerRepository, RunBatch, RunRepository,
    UsageThreshold,
};
use crate::run::{MaturityTarget, Run, RunFilter, RunStatus, RunView};
use crate::values::{FieldError, Month};

/// Most customers one bulk trigger may name.
pub const MAX_BULK_RUNS: usize = 50;
/// How often a trigger is retried when the plan changes under it.
const PLAN_CHANGE_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AssessmentError {
    #[error("customer not found")]
    CustomerNotFound,
    #[error("run not found")]
    RunNotFound,
    #[error("the product '{0}' is not recognised")]
    InvalidProduct(String),
    #[error("your plan does not include the product '{0}'")]
    ProductNotAllowed(String),
    #[error("the monthly assessment run limit of your plan ({limit}) has been reached")]
    RunLimitReached { limit: u32 },
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("at most {max} items per request")]
    TooMany { max: usize },
    #[error("the partner account is suspended or pending activation")]
    PartnerInactive,
    #[error("partner not found")]
    PartnerNotFound,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// A trigger as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerRequest {
    pub customer_id: String,
    pub product: String,
    pub maturity_target: Option<i64>,
}

/// Why one item of a bulk trigger was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkRunFailure {
    CustomerNotFound,
    RunLimitReached { limit: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRunResult {
    pub index: usize,
    pub customer_id: String,
    pub outcome: Result<RunId, BulkRunFailure>,
}

/// Run filters as submitted on the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    pub month: Option<String>,
    pub product: Option<String>,
    pub customer_id: Option<String>,
}

/// Triggering and reading assessment runs, metered against the plan's monthly limit.
pub struct AssessmentService {
    runs: Arc<dyn RunRepository>,
    partners: Arc<dyn PartnerRepository>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

/// A validated product and maturity, shared by single and bulk triggers.
struct Order {
    product: ProductId,
    maturity: MaturityTarget,
}

impl AssessmentService {
    pub fn new(
        runs: Arc<dyn RunRepository>,
        partners: Arc<dyn PartnerRepository>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { runs, partners, catalog, clock, ids }
    }

    /// Queues one run. Errors, in the order checked: `maturityTarget` (400), unknown product
    /// (400), product outside the plan (403), unknown customer (404), limit reached (403).
    pub async fn trigger(&self, partner: &PartnerId, request: TriggerRequest) -> Result<Run, AssessmentError> {
        let (mut results, mut created) =
            self.queue(partner, &request.product, request.maturity_target, vec![request.customer_id]).await?;
        match results.pop().map(|r| r.outcome) {
            Some(Ok(_)) => Ok(created.pop().expect("a queued item has its run")),
            Some(Err(BulkRunFailure::RunLimitReached { limit })) => Err(AssessmentError::RunLimitReached { limit }),
            _ => Err(AssessmentError::CustomerNotFound),
        }
    }

    /// Queues one run per customer, as many as the limit allows, in request order. Request-level
    /// problems (too many, product, maturity) fail the whole request; unknown customers and the
    /// limit fail single items.
    pub async fn trigger_many(
        &self,
        partner: &PartnerId,
        product: &str,
        maturity_target: Option<i64>,
        customer_ids: Vec<String>,
    ) -> Result<Vec<BulkRunResult>, AssessmentError> {
        if customer_ids.len() > MAX_BULK_RUNS {
            return Err(AssessmentError::TooMany { max: MAX_BULK_RUNS });
        }
        Ok(self.queue(partner, product, maturity_target, customer_ids).await?.0)
    }

    pub async fn get(&self, partner: &PartnerId, id: &str) -> Result<RunView, AssessmentError> {
        let id = RunId::parse(id).map_err(|_| AssessmentError::RunNotFound)?;
        self.runs.get(partner, &id).await?.ok_or(AssessmentError::RunNotFound)
    }

    /// Newest first. An unknown product is `INVALID_PRODUCT`; a customer id that is not the
    /// partner's simply matches nothing.
    pub async fn list(
        &self,
        partner: &PartnerId,
        query: RunQuery,
        page: &Page,
    ) -> Result<Paged<RunView>, AssessmentError> {
        let month = query.month.map(|m| FieldError::check("month", &m, Month::parse)).transpose()?;
        let product = query.product.map(|p| self.known_product(&p)).transpose()?;
        let customer_id = match query.customer_id {
            None => None,
            Some(raw) => match CustomerId::parse(&raw) {
                Ok(id) => Some(id),
                Err(_) => return Ok(Paged { items: vec![], has_more: false }),
            },
        };
        Ok(self.runs.list(partner, &RunFilter { month, product, customer_id }, page).await?)
    }

    fn known_product(&self, raw: &str) -> Result<ProductId, AssessmentError> {
        ProductId::parse(raw)
            .ok()
            .filter(|p| self.catalog.product(p).is_some())
            .ok_or_else(|| AssessmentError::InvalidProduct(raw.to_owned()))
    }

    /// The request-level checks that do not depend on the partner: maturity, then product.
    fn order(&self, product: &str, maturity_target: Option<i64>) -> Result<Order, AssessmentError> {
        let maturity = maturity_target
            .map(|m| MaturityTarget::new(m).map_err(|e| FieldError::invalid("maturityTarget", e.reason)))
            .transpose()?;
        let product = self.known_product(product)?;
        let default = self.catalog.product(&product).map_or(1, |p| p.default_maturity_target);
        let maturity = match maturity {
            Some(m) => m,
            None => {
                MaturityTarget::new(i64::from(default)).map_err(|e| FieldError::invalid("maturityTarget", e.reason))?
            }
        };
        Ok(Order { product, maturity })
    }

    /// The 80 % and 100 % points of a limited plan, each with its `usage.threshold_reached`
    /// event for the partner and its distributor.
    fn thresholds(
        &self,
        partner: &Partner,
        limit: RunLimit,
        month: Month,
        now: time::OffsetDateTime,
    ) -> Vec<UsageThreshold> {
        let RunLimit::Limited(limit) = limit else { return Vec::new() };
        [80u8, 100]
            .into_iter()
            .map(|percent| {
                // The first whole number of runs at or past the percentage (at least one run).
                let units = (u64::from(limit) * u64::from(percent)).div_ceil(100).max(1) as u32;
                let event = Event::new(EventId::generate(&*self.ids), EventType::UsageThresholdReached, now)
                    .to_partner(partner.id.clone())
                    .to_distributor(partner.distributor_id.clone())
                    .with("partnerId", partner.id.to_string())
                    .with("month", month.to_string())
                    .with("threshold", i64::from(percent))
                    .with("runsUsed", i64::from(units))
                    .with("runsLimit", i64::from(limit));
                UsageThreshold { percent, units, event }
            })
            .collect()
    }

    async fn active_partner(&self, partner: &PartnerId) -> Result<Partner, AssessmentError> {
        let p = self.partners.get(partner).await?.ok_or(AssessmentError::PartnerNotFound)?;
        if !p.status.is_active() {
            return Err(AssessmentError::PartnerInactive);
        }
        Ok(p)
    }

    /// Builds and stores the runs; returns one result per customer id and the runs created.
    async fn queue(
        &self,
        partner_id: &PartnerId,
        product: &str,
        maturity_target: Option<i64>,
        customer_ids: Vec<String>,
    ) -> Result<(Vec<BulkRunResult>, Vec<Run>), AssessmentError> {
        let order = self.order(product, maturity_target)?;
        for _ in 0..PLAN_CHANGE_RETRIES {
            let partner = self.active_partner(partner_id).await?;
            let plan = self.catalog.plan(partner.plan());
            if !plan.is_some_and(|p| p.allows(&order.product)) {
                return Err(AssessmentError::ProductNotAllowed(order.product.to_string()));
            }
            let limit = plan.map_or(RunLimit::Limited(0), |p| p.run_limit);
            let now = self.clock.now();
            let month = Month::containing(now);
            // Ids that do not parse name no customer: they get no run and fail as not found.
            let runs: Vec<Option<Run>> = customer_ids
                .iter()
                .map(|raw| {
                    CustomerId::parse(raw).ok().map(|customer_id| Run {
                        id: RunId::generate(&*self.ids),
                        partner_id: partner_id.clone(),
                        customer_id,
                        product: order.product.clone(),
                        maturity_target: order.maturity,
                        status: RunStatus::Queued,
                        month,
                        created_at: now,
                        started_at: None,
                        completed_at: None,
                        result: None,
                        failure_reason: None,
                    })
                })
                .collect();
            let batch = RunBatch {
                partner: partner_id.clone(),
                plan: partner.plan().clone(),
                limit,
                month,
                runs: runs.iter().flatten().cloned().collect(),
                thresholds: self.thresholds(&partner, limit, month, now),
            };
            let outcome = match self.runs.create(&batch).await {
                Ok(outcome) => outcome,
                Err(CreateRunsError::PlanChanged) => continue,
                Err(CreateRunsError::PartnerInactive) => return Err(AssessmentError::PartnerInactive),
                Err(CreateRunsError::PartnerGone) => return Err(AssessmentError::PartnerNotFound),
                Err(CreateRunsError::Internal(e)) => return Err(e.into()),
            };
            let limit = match limit {
                RunLimit::Limited(n) => n,
                RunLimit::Unlimited => u32::MAX,
            };
            let mut created = Vec::with_capacity(outcome.created.len());
            let results = customer_ids
                .into_iter()
                .zip(runs)
                .enumerate()
                .map(|(index, (customer_id, run))| {
                    let outcome = match run {
                        Some(r) if outcome.created.contains(&r.id) => {
                            let id = r.id.clone();
                            created.push(r);
                            Ok(id)
                        }
                        Some(r) if outcome.over_limit.contains(&r.id) => Err(BulkRunFailure::RunLimitReached { limit }),
                        _ => Err(BulkRunFailure::CustomerNotFound),
                    };
                    BulkRunResult { index, customer_id, outcome }
                })
                .collect();
            return Ok((results, created));
        }
        Err(InfraError::new("the partner's plan kept changing while runs were being queued").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountStatus;
    use crate::billing::Subscription;
    use crate::catalog::PlanId;
    use crate::customer::CustomerDraft;
    use crate::ports::{CustomerRepository, PartnerRepository};
    use crate::services::CustomerService;
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use crate::values::{BillingInterval, Currency, DisplayName, Email};
    use time::macros::datetime;

    struct Fixture {
        service: AssessmentService,
        store: Arc<InMemoryStore>,
        partner: PartnerId,
        customers: Vec<String>,
    }

    async fn fixture(plan: &str, status: AccountStatus, customers: usize) -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let clock = Arc::new(FixedClock::at(datetime!(2026-04-03 10:00 UTC)));
        let partner = crate::account::Partner {
            id: PartnerId::generate(&*ids),
            distributor_id: None,
            company: DisplayName::parse("Acme MSP").unwrap(),
            email: Email::parse("admin@acmemsp.com").unwrap(),
            name: DisplayName::parse("John").unwrap(),
            status,
            subscription: Subscription::starting(
                PlanId::parse(plan).unwrap(),
                BillingInterval::Monthly,
                Currency::Usd,
                clock.now(),
            ),
            created_at: clock.now(),
            updated_at: clock.now(),
        };
        PartnerRepository::insert(&*store, &partner, None).await.unwrap();
        let customer_service = CustomerService::new(store.clone(), store.clone(), clock.clone(), ids.clone());
        let mut ids_out = Vec::new();
        for i in 0..customers {
            let draft = CustomerDraft {
                name: Some(format!("Customer {i}")),
                tenant_id: Some("d4f5a678-1234-5678-9abc-def012345678".into()),
                ..Default::default()
            };
            ids_out.push(customer_service.create(&partner.id, draft).await.unwrap().id.to_string());
        }
        let service = AssessmentService::new(store.clone(), store.clone(), Arc::new(Catalog::default()), clock, ids);
        Fixture { service, store, partner: partner.id, customers: ids_out }
    }

    fn trigger(customer: &str, product: &str, maturity: Option<i64>) -> TriggerRequest {
        TriggerRequest { customer_id: customer.into(), product: product.into(), maturity_target: maturity }
    }

    #[tokio::test]
    async fn a_trigger_queues_a_run_with_the_products_default_maturity() {
        let f = fixture("starter", AccountStatus::Active, 1).await;
        let run = f.service.trigger(&f.partner, trigger(&f.customers[0], "essential-eight", None)).await.unwrap();
        assert_eq!(
            (run.status, run.maturity_target.get(), run.month.to_string()),
            (RunStatus::Queued, 2, "2026-04".into())
        );
        assert_eq!(f.store.units_used(&f.partner, run.month), 1);
    }

    #[tokio::test]
    async fn errors_come_in_the_documented_order() {
        let f = fixture("starter", AccountStatus::Active, 1).await;
        let c = &f.customers[0];
        let err = |r| async { f.service.trigger(&f.partner, r).await.unwrap_err() };
        assert!(matches!(err(trigger("cust_nope", "nope", Some(9))).await, AssessmentError::Field(_)));
        assert!(matches!(err(trigger("cust_nope", "nope", Some(3))).await, AssessmentError::InvalidProduct(_)));
        assert!(matches!(err(trigger("cust_nope", "nist-csf", None)).await, AssessmentError::ProductNotAllowed(_)));
        assert!(matches!(err(trigger("cust_nope", "essential-eight", None)).await, AssessmentError::CustomerNotFound));
        assert!(matches!(err(trigger(c, "essential-eight", Some(0))).await, AssessmentError::Field(_)));
        assert_eq!(f.store.units_used(&f.partner, Month::parse("2026-04").unwrap()), 0, "no error takes a unit");
    }

    #[tokio::test]
    async fn the_limit_refuses_the_run_after_the_last_unit() {
        let f = fixture("starter", AccountStatus::Active, 1).await;
        let c = f.customers[0].clone();
        let results = f.service.trigger_many(&f.partner, "essential-eight", None, vec![c.clone(); 50]).await.unwrap();
        assert!(results.iter().all(|r| r.outcome.is_ok()));
        let refused = f.service.trigger(&f.partner, trigger(&c, "essential-eight", None)).await.unwrap_err();
        assert!(matches!(refused, AssessmentError::RunLimitReached { limit: 50 }));
    }

    #[tokio::test]
    async fn bulk_items_fail_alone_in_request_order() {
        let f = fixture("starter", AccountStatus::Active, 2).await;
        let c = &f.customers;
        let first = vec![c[0].clone(); 48];
        f.service.trigger_many(&f.partner, "essential-eight", None, first).await.unwrap();
        let ids =
            vec![c[0].clone(), "cust_000000000000000000000999".into(), "garbage".into(), c[1].clone(), c[0].clone()];
        let results = f.service.trigger_many(&f.partner, "essential-eight", Some(3), ids).await.unwrap();
        let outcomes: Vec<_> = results.iter().map(|r| r.outcome.as_ref().map(|_| ()).map_err(|e| *e)).collect();
        assert_eq!(
            outcomes,
            [
                Ok(()),
                Err(BulkRunFailure::CustomerNotFound),
                Err(BulkRunFailure::CustomerNotFound),
                Ok(()),
                Err(BulkRunFailure::RunLimitReached { limit: 50 }),
            ]
        );
        let too_many = f.service.trigger_many(&f.partner, "essential-eight", None, vec![c[0].clone(); 51]).await;
        assert!(matches!(too_many, Err(AssessmentError::TooMany { max: 50 })));
    }

    #[tokio::test]
    async fn an_inactive_partner_cannot_trigger() {
        let f = fixture("starter", AccountStatus::Suspended, 1).await;
        let err = f.service.trigger(&f.partner, trigger(&f.customers[0], "essential-eight", None)).await.unwrap_err();
        assert!(matches!(err, AssessmentError::PartnerInactive));
    }

    #[tokio::test]
    async fn listing_validates_the_month_and_product_and_scopes_to_the_partner() {
        let f = fixture("professional", AccountStatus::Active, 1).await;
        f.service.trigger(&f.partner, trigger(&f.customers[0], "nist-csf", None)).await.unwrap();
        let query = |month: Option<&str>, product: Option<&str>, customer: Option<&str>| RunQuery {
            month: month.map(Into::into),
            product: product.map(Into::into),
            customer_id: customer.map(Into::into),
        };
        let all =
            f.service.list(&f.partner, query(Some("2026-04"), Some("nist-csf"), None), &Page::default()).await.unwrap();
        assert_eq!(all.items.len(), 1);
        assert!(matches!(
            f.service.list(&f.partner, query(Some("2026-4"), None, None), &Page::default()).await,
            Err(AssessmentError::Field(_))
        ));
        assert!(matches!(
            f.service.list(&f.partner, query(None, Some("nope"), None), &Page::default()).await,
            Err(AssessmentError::InvalidProduct(_))
        ));
        let other = f.service.list(&f.partner, query(None, None, Some("not-an-id")), &Page::default()).await.unwrap();
        assert!(other.items.is_empty());
        let _ = CustomerRepository::list(&*f.store, &f.partner, &Page::default()).await.unwrap();
    }

    #[tokio::test]
    async fn usage_thresholds_are_announced_at_80_and_100_per_cent_once_each() {
        use crate::event::EventValue;
        let f = fixture("starter", AccountStatus::Active, 1).await;
        let c = f.customers[0].clone();
        let threshold_events = || {
            f.store
                .events()
                .into_iter()
                .filter(|e| e.event_type == EventType::UsageThresholdReached)
                .map(|e| e.data.iter().find(|(k, _)| k == "threshold").map(|(_, v)| v.clone()))
                .collect::<Vec<_>>()
        };
        f.service.trigger_many(&f.partner, "essential-eight", None, vec![c.clone(); 39]).await.unwrap();
        assert!(threshold_events().is_empty(), "39 of 50 reaches nothing");
        f.service.trigger(&f.partner, trigger(&c, "essential-eight", None)).await.unwrap();
        assert_eq!(threshold_events(), [Some(EventValue::Int(80))], "the 40th run reaches 80 %");
        f.service.trigger_many(&f.partner, "essential-eight", None, vec![c.clone(); 20]).await.unwrap();
        assert!(f.service.trigger(&f.partner, trigger(&c, "essential-eight", None)).await.is_err());
        assert_eq!(threshold_events(), [Some(EventValue::Int(80)), Some(EventValue::Int(100))]);
    }

    #[tokio::test]
    async fn unlimited_plans_have_no_thresholds() {
        let f = fixture("enterprise", AccountStatus::Active, 1).await;
        let c = f.customers[0].clone();
        f.service.trigger_many(&f.partner, "essential-eight", None, vec![c; 50]).await.unwrap();
        assert!(f.store.events().iter().all(|e| e.event_type != EventType::UsageThresholdReached));
    }
}
