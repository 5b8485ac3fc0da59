use std::sync::Arc;

use crate::account::Partner;
use crate::catalog::{Catalog, ProductId, RunLimit};
use crate::ids::{CustomerId, PartnerId, RunId};
use crate::ports::{
    Clock, CreateRunsError, IdGenerator, InfraError, Page, Paged, PartnerRepository, RunBatch, RunRepository,
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
