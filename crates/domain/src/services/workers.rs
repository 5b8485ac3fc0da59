use std::sync::Arc;

use crate::catalog::{Catalog, ProductId};
use crate::ids::{RunId, WorkerId};
use crate::ports::{Clock, ExpiredLeases, InfraError, RunActionError, RunQueue};
use crate::run::{ClaimedRun, LeaseSeconds, MAX_FAILURE_REASON, MAX_RUN_ATTEMPTS, RunResult, RunView};
use crate::values::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("run not found")]
    NotFound,
    #[error("the run is not running under this worker's lease")]
    RunStateConflict,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Internal(#[from] InfraError),
}

impl From<RunActionError> for WorkerError {
    fn from(e: RunActionError) -> Self {
        match e {
            RunActionError::NotFound => Self::NotFound,
            RunActionError::Conflict => Self::RunStateConflict,
            RunActionError::Internal(e) => Self::Internal(e),
        }
    }
}

/// A claim as it came in.
#[derive(Debug, Clone, Default)]
pub struct ClaimRequest {
    /// Products this worker executes; absent or empty means any.
    pub products: Option<Vec<String>>,
    pub lease_seconds: Option<i64>,
}

/// A completion as it came in.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub score: Option<i64>,
    pub critical: Option<i64>,
    pub high: Option<i64>,
    pub medium: Option<i64>,
    pub low: Option<i64>,
    pub report_url: Option<String>,
}

impl Completion {
    fn validate(self) -> Result<RunResult, FieldError> {
        let score = self.score.ok_or_else(|| FieldError::Missing("score".into()))?;
        let score = u8::try_from(score)
            .ok()
            .filter(|s| *s <= 100)
            .ok_or_else(|| FieldError::invalid("score", "must be an integer from 0 to 100"))?;
        let count = |field: &str, raw: Option<i64>| {
            u32::try_from(raw.unwrap_or(0))
                .map_err(|_| FieldError::invalid(field, "must be an integer from 0 to 4294967295"))
        };
        let report_url = self.report_url.map(|raw| check_report_url(&raw).map(|()| raw)).transpose()?;
        Ok(RunResult {
            score,
            critical: count("critical", self.critical)?,
            high: count("high", self.high)?,
            medium: count("medium", self.medium)?,
            low: count("low", self.low)?,
            report_url,
        })
    }
}

fn check_report_url(raw: &str) -> Result<(), FieldError> {
    let ok = raw.len() <= 2048
        && !raw.chars().any(char::is_control)
        && url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok { Ok(()) } else { Err(FieldError::invalid("reportUrl", "must be an absolute http(s) URL")) }
}

/// The worker protocol: workers claim queued runs under a lease, keep it with heartbeats, and
/// complete or fail them. Runs whose lease ends go back to the queue, at most
/// [`MAX_RUN_ATTEMPTS`] times.
pub struct WorkerService {
    queue: Arc<dyn RunQueue>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
}

impl WorkerService {
    pub fn new(queue: Arc<dyn RunQueue>, catalog: Arc<Catalog>, clock: Arc<dyn Clock>) -> Self {
        Self { queue, catalog, clock }
    }

    /// The oldest queued run of the asked products, now `running` under this worker's lease;
    /// `None` when nothing is queued. Expired leases are dealt with first, so a run abandoned
    /// by a crashed worker is claimable again.
    pub async fn claim(&self, worker: &WorkerId, request: ClaimRequest) -> Result<Option<ClaimedRun>, WorkerError> {
        let lease = lease(request.lease_seconds)?;
        let mut products = Vec::new();
        for (i, raw) in request.products.unwrap_or_default().iter().enumerate() {
            let field = format!("products[{i}]");
            let id = ProductId::parse(raw).map_err(|_| FieldError::invalid(&field, "is not a product id"))?;
            if self.catalog.product(&id).is_none() {
                return Err(FieldError::invalid(&field, "is not a product of the catalog").into());
            }
            // A product named twice counts once (the catalog keeps the list short).
            if !products.contains(&id) {
                products.push(id);
            }
        }
        let now = self.clock.now();
        self.queue.expire_leases(now, MAX_RUN_ATTEMPTS).await?;
        Ok(self.queue.claim(worker, &products, now, now + lease.duration()).await?)
    }

    /// Extends the lease from now.
    pub async fn heartbeat(
        &self,
        worker: &WorkerId,
        run: &str,
        lease_seconds: Option<i64>,
    ) -> Result<ClaimedRun, WorkerError> {
        let lease = lease(lease_seconds)?;
        let run = run_id(run)?;
        Ok(self.queue.heartbeat(worker, &run, self.clock.now() + lease.duration()).await?)
    }

    pub async fn complete(&self, worker: &WorkerId, run: &str, completion: Completion) -> Result<RunView, WorkerError> {
        let result = completion.validate()?;
        let run = run_id(run)?;
        Ok(self.queue.complete(worker, &run, &result, self.clock.now()).await?)
    }

    /// Fails the run with `reason` (kept to [`MAX_FAILURE_REASON`] characters); its unit of
    /// the monthly limit is given back.
    pub async fn fail(&self, worker: &WorkerId, run: &str, reason: Option<String>) -> Result<RunView, WorkerError> {
        let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        let reason = reason.ok_or_else(|| FieldError::Missing("reason".into()))?;
        // Line breaks and tabs stay (a stderr tail has them); other control characters (NUL,
        // which PostgreSQL cannot store, escape sequences) go.
        let reason: String =
            reason.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).take(MAX_FAILURE_REASON).collect();
        let run = run_id(run)?;
        Ok(self.queue.fail(worker, &run, &reason, self.clock.now()).await?)
    }

    /// Requeues or fails runs whose lease has ended (the server also does this periodically).
    pub async fn expire_leases(&self) -> Result<ExpiredLeases, WorkerError> {
        Ok(self.queue.expire_leases(self.clock.now(), MAX_RUN_ATTEMPTS).await?)
    }
}

fn lease(raw: Option<i64>) -> Result<LeaseSeconds, FieldError> {
    raw.map_or(Ok(LeaseSeconds::DEFAULT), |s| {
        LeaseSeconds::new(s).map_err(|e| FieldError::invalid("leaseSeconds", e.reason))
    })
}

/// A malformed id names no run.
fn run_id(raw: &str) -> Result<RunId, WorkerError> {
    RunId::parse(raw).map_err(|_| WorkerError::NotFound)
}

#[cfg(test)]
mod tests {
    use mockall::Sequence;
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::account::{AccountStatus, Partner};
    use crate::billing::Subscription;
    use crate::catalog::PlanId;
    use crate::customer::CustomerDraft;
    use crate::event::{EventType, EventValue};
    use crate::ids::PartnerId;
    use crate::ports::{IdGenerator, InfraError, MockRunQueue, PartnerRepository, RunRepository};
    use crate::run::{RunStatus, RunView};
    use crate::services::{AssessmentService, CustomerService, TriggerRequest};
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use crate::values::{BillingInterval, Currency, DisplayName, Email, Month};

    const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);
    const WELL_FORMED_RUN: &str = "run_000000000000000000000001";

    fn seconds(n: i64) -> time::Duration {
        time::Duration::seconds(n)
    }

    fn over(queue: MockRunQueue) -> WorkerService {
        WorkerService::new(Arc::new(queue), Arc::new(Catalog::default()), Arc::new(FixedClock::at(NOW)))
    }

    /// A service over a queue that fails the test if it is called at all.
    fn untouchable() -> WorkerService {
        over(MockRunQueue::new())
    }

    fn worker() -> WorkerId {
        WorkerId::generate(&SequentialIds::default())
    }

    fn claim(products: Option<&[&str]>, lease_seconds: Option<i64>) -> ClaimRequest {
        ClaimRequest { products: products.map(|p| p.iter().map(|s| (*s).to_owned()).collect()), lease_seconds }
    }

    fn completion(score: i64) -> Completion {
        Completion { score: Some(score), ..Completion::default() }
    }

    #[track_caller]
    fn assert_invalid(err: WorkerError, expected: &str) {
        match err {
            WorkerError::Field(FieldError::Invalid { field, .. }) => assert_eq!(field, expected),
            other => panic!("expected '{expected}' to be invalid, got {other:?}"),
        }
    }

    #[track_caller]
    fn assert_missing(err: WorkerError, expected: &str) {
        match err {
            WorkerError::Field(FieldError::Missing(field)) => assert_eq!(field, expected),
            other => panic!("expected '{expected}' to be missing, got {other:?}"),
        }
    }

    // ---- validation: bad input is refused before the queue is touched ----

    #[tokio::test]
    async fn a_lease_outside_ten_seconds_to_an_hour_is_refused_before_anything_is_claimed() {
        let service = untouchable();
        let w = worker();
        for bad in [9, 3601, 0, -1, i64::MIN, i64::MAX, i64::from(u32::MAX) + 10] {
            assert_invalid(service.claim(&w, claim(None, Some(bad))).await.unwrap_err(), "leaseSeconds");
            let err = service.heartbeat(&w, WELL_FORMED_RUN, Some(bad)).await.unwrap_err();
            assert_invalid(err, "leaseSeconds");
        }
    }

    #[tokio::test]
    async fn an_unknown_or_malformed_product_is_named_by_its_index() {
        let service = untouchable();
        let w = worker();
        let err = service.claim(&w, claim(Some(&["essential-eight", "quantum-audit"]), None)).await.unwrap_err();
        assert_invalid(err, "products[1]");
        let err = service.claim(&w, claim(Some(&["Not A Product!"]), None)).await.unwrap_err();
        assert_invalid(err, "products[0]");
        let err = service.claim(&w, claim(Some(&[""]), None)).await.unwrap_err();
        assert_invalid(err, "products[0]");
    }

    #[tokio::test]
    async fn a_completion_needs_a_score_from_0_to_100() {
        let service = untouchable();
        let w = worker();
        let err = service.complete(&w, WELL_FORMED_RUN, Completion::default()).await.unwrap_err();
        assert_missing(err, "score");
        for bad in [-1, 101, 256, 356, i64::MIN, i64::MAX] {
            assert_invalid(service.complete(&w, WELL_FORMED_RUN, completion(bad)).await.unwrap_err(), "score");
        }
    }

    #[tokio::test]
    async fn finding_counts_must_be_non_negative_and_fit_in_32_bits() {
        let service = untouchable();
        let w = worker();
        type Set = fn(&mut Completion, i64);
        let fields: [(&str, Set); 4] = [
            ("critical", |c, n| c.critical = Some(n)),
            ("high", |c, n| c.high = Some(n)),
            ("medium", |c, n| c.medium = Some(n)),
            ("low", |c, n| c.low = Some(n)),
        ];
        for (name, set) in fields {
            for bad in [-1, i64::from(u32::MAX) + 1, i64::MAX, i64::MIN] {
                let mut c = completion(50);
                set(&mut c, bad);
                assert_invalid(service.complete(&w, WELL_FORMED_RUN, c).await.unwrap_err(), name);
            }
        }
    }

    #[tokio::test]
    async fn a_report_url_must_be_an_absolute_http_url() {
        let service = untouchable();
        let w = worker();
        let too_long = format!("https://reports.example/{}", "a".repeat(2048));
        for bad in [
            "ftp://reports.example/r.pdf",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "/relative/report.pdf",
            "reports.example/r.pdf",
            "https://",
            "",
            too_long.as_str(),
        ] {
            let c = Completion { report_url: Some(bad.to_owned()), ..completion(50) };
            assert_invalid(service.complete(&w, WELL_FORMED_RUN, c).await.unwrap_err(), "reportUrl");
        }
    }

    #[tokio::test]
    async fn a_failure_needs_a_reason_that_is_not_blank() {
        let service = untouchable();
        let w = worker();
        for bad in [None, Some(""), Some("   \n\t ")] {
            let err = service.fail(&w, WELL_FORMED_RUN, bad.map(str::to_owned)).await.unwrap_err();
            assert_missing(err, "reason");
        }
    }

    #[tokio::test]
    async fn a_malformed_run_id_names_no_run() {
        let service = untouchable();
        let w = worker();
        for bad in ["nope", "", "run_", "cust_000000000000000000000001", "run_00000000000000000000000g"] {
            assert!(matches!(service.heartbeat(&w, bad, None).await, Err(WorkerError::NotFound)), "{bad}");
            assert!(matches!(service.complete(&w, bad, completion(1)).await, Err(WorkerError::NotFound)), "{bad}");
            assert!(matches!(service.fail(&w, bad, Some("x".into())).await, Err(WorkerError::NotFound)), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_body_is_checked_before_the_run_id() {
        let service = untouchable();
        let w = worker();
        assert_invalid(service.heartbeat(&w, "nope", Some(1)).await.unwrap_err(), "leaseSeconds");
        assert_missing(service.complete(&w, "nope", Completion::default()).await.unwrap_err(), "score");
        assert_missing(service.fail(&w, "nope", None).await.unwrap_err(), "reason");
    }

    // ---- what reaches the queue ----

    #[tokio::test]
    async fn a_claim_sweeps_expired_leases_first_then_claims_for_the_default_300_seconds() {
        let w = worker();
        let mut queue = MockRunQueue::new();
        let mut order = Sequence::new();
        queue
            .expect_expire_leases()
            .withf(|now, max| *now == NOW && *max == MAX_RUN_ATTEMPTS)
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _| Ok(ExpiredLeases::default()));
        let expected = w.clone();
        queue
            .expect_claim()
            .withf(move |who, products, now, until| {
                *who == expected && products.is_empty() && *now == NOW && *until == NOW + seconds(300)
            })
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _, _| Ok(None));
        let service = over(queue);
        assert_eq!(service.claim(&w, claim(None, None)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_claim_passes_the_asked_products_and_lease() {
        let mut queue = MockRunQueue::new();
        queue.expect_expire_leases().returning(|_, _| Ok(ExpiredLeases::default()));
        queue
            .expect_claim()
            .withf(|_, products, _, until| {
                let names: Vec<&str> = products.iter().map(ProductId::as_str).collect();
                names == ["nist-csf", "essential-eight"] && *until == NOW + seconds(10)
            })
            .times(1)
            .returning(|_, _, _, _| Ok(None));
        queue
            .expect_claim()
            .withf(|_, products, _, until| products.is_empty() && *until == NOW + seconds(3600))
            .times(1)
            .returning(|_, _, _, _| Ok(None));
        let service = over(queue);
        let w = worker();
        service.claim(&w, claim(Some(&["nist-csf", "essential-eight"]), Some(10))).await.unwrap();
        service.claim(&w, claim(Some(&[]), Some(3600))).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_sweep_fails_the_claim_without_claiming() {
        let mut queue = MockRunQueue::new();
        queue.expect_expire_leases().returning(|_, _| Err(InfraError::new("database is down")));
        queue.expect_claim().never();
        let err = over(queue).claim(&worker(), ClaimRequest::default()).await.unwrap_err();
        assert!(matches!(err, WorkerError::Internal(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_heartbeat_extends_the_lease_from_now() {
        let mut queue = MockRunQueue::new();
        queue
            .expect_heartbeat()
            .withf(|_, run, until| run.as_str() == WELL_FORMED_RUN && *until == NOW + seconds(300))
            .times(1)
            .returning(|_, _, _| Err(RunActionError::Conflict));
        queue
            .expect_heartbeat()
            .withf(|_, _, until| *until == NOW + seconds(45))
            .times(1)
            .returning(|_, _, _| Err(RunActionError::NotFound));
        let service = over(queue);
        let w = worker();
        assert!(matches!(service.heartbeat(&w, WELL_FORMED_RUN, None).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(service.heartbeat(&w, WELL_FORMED_RUN, Some(45)).await, Err(WorkerError::NotFound)));
    }

    #[tokio::test]
    async fn a_completion_reaches_the_queue_whole_with_absent_counts_as_zero() {
        let mut queue = MockRunQueue::new();
        queue
            .expect_complete()
            .withf(|_, _, result, now| {
                *now == NOW
                    && *result
                        == RunResult {
                            score: 72,
                            critical: 2,
                            high: 5,
                            medium: 4,
                            low: 3,
                            report_url: Some("https://reports.example/r/1.pdf".into()),
                        }
            })
            .times(1)
            .returning(|_, _, _, _| Err(RunActionError::Internal(InfraError::new("disk full"))));
        queue
            .expect_complete()
            .withf(|_, _, result, _| {
                *result == RunResult { score: 0, critical: 0, high: 0, medium: u32::MAX, low: 0, report_url: None }
            })
            .times(1)
            .returning(|_, _, _, _| Err(RunActionError::Conflict));
        queue
            .expect_complete()
            .withf(|_, _, result, _| result.score == 100)
            .times(1)
            .returning(|_, _, _, _| Err(RunActionError::NotFound));
        let service = over(queue);
        let w = worker();
        let full = Completion {
            score: Some(72),
            critical: Some(2),
            high: Some(5),
            medium: Some(4),
            low: Some(3),
            report_url: Some("https://reports.example/r/1.pdf".into()),
        };
        let err = service.complete(&w, WELL_FORMED_RUN, full).await.unwrap_err();
        assert!(matches!(err, WorkerError::Internal(_)), "{err:?}");
        let edge = Completion { medium: Some(i64::from(u32::MAX)), ..completion(0) };
        assert!(matches!(service.complete(&w, WELL_FORMED_RUN, edge).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(service.complete(&w, WELL_FORMED_RUN, completion(100)).await, Err(WorkerError::NotFound)));
    }

    #[tokio::test]
    async fn a_failure_reason_is_trimmed_and_kept_to_2000_characters() {
        let long: String = "é".repeat(MAX_FAILURE_REASON + 500);
        let mut queue = MockRunQueue::new();
        queue
            .expect_fail()
            .withf(|_, _, reason, _| reason == "scanner exited with status 2")
            .times(1)
            .returning(|_, _, _, _| Err(RunActionError::Conflict));
        queue
            .expect_fail()
            .withf(|_, _, reason, _| reason.chars().count() == MAX_FAILURE_REASON && reason.chars().all(|c| c == 'é'))
            .times(1)
            .returning(|_, _, _, _| Err(RunActionError::Conflict));
        let service = over(queue);
        let w = worker();
        for reason in ["  scanner exited with status 2 \n".to_owned(), long] {
            assert!(matches!(
                service.fail(&w, WELL_FORMED_RUN, Some(reason)).await,
                Err(WorkerError::RunStateConflict)
            ));
        }
    }

    // ---- the protocol end to end over the in-memory store ----

    struct Fixture {
        service: WorkerService,
        store: Arc<InMemoryStore>,
        clock: Arc<FixedClock>,
        ids: Arc<SequentialIds>,
        partner: PartnerId,
        runs: Vec<String>,
    }

    /// A professional partner with `products.len()` runs queued a second apart, in that order.
    async fn fixture(products: &[&str]) -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let clock = Arc::new(FixedClock::at(NOW));
        let catalog = Arc::new(Catalog::default());
        let partner = Partner {
            id: PartnerId::generate(&*ids),
            distributor_id: None,
            company: DisplayName::parse("Acme MSP").unwrap(),
            email: Email::parse("admin@acmemsp.com").unwrap(),
            name: DisplayName::parse("John").unwrap(),
            status: AccountStatus::Active,
            subscription: Subscription::starting(
                PlanId::parse("professional").unwrap(),
                BillingInterval::Monthly,
                Currency::Usd,
                NOW,
            ),
            created_at: NOW,
            updated_at: NOW,
        };
        PartnerRepository::insert(&*store, &partner, None).await.unwrap();
        let customers = CustomerService::new(store.clone(), store.clone(), clock.clone(), ids.clone());
        let draft = CustomerDraft {
            name: Some("Contoso Ltd".into()),
            tenant_id: Some("d4f5a678-1234-5678-9abc-def012345678".into()),
            ..Default::default()
        };
        let customer = customers.create(&partner.id, draft).await.unwrap().id.to_string();
        let assessments =
            AssessmentService::new(store.clone(), store.clone(), catalog.clone(), clock.clone(), ids.clone());
        let mut runs = Vec::new();
        for (i, product) in products.iter().enumerate() {
            clock.set(NOW + seconds(i as i64));
            let request = TriggerRequest {
                customer_id: customer.clone(),
                product: (*product).to_owned(),
                maturity_target: Some(3),
            };
            runs.push(assessments.trigger(&partner.id, request).await.unwrap().id.to_string());
        }
        clock.set(NOW + seconds(60));
        let service = WorkerService::new(store.clone(), catalog, clock.clone());
        Fixture { service, store, clock, ids, partner: partner.id, runs }
    }

    impl Fixture {
        fn worker(&self) -> WorkerId {
            WorkerId::generate(&*self.ids as &dyn IdGenerator)
        }

        async fn run(&self, id: &str) -> RunView {
            RunRepository::get(&*self.store, &self.partner, &RunId::parse(id).unwrap()).await.unwrap().unwrap()
        }

        fn units(&self) -> u32 {
            self.store.units_used(&self.partner, Month::containing(NOW))
        }

        /// `(type, assessmentId)` of every `assessment.*` event, in order.
        fn assessment_events(&self) -> Vec<(EventType, String)> {
            self.store
                .events()
                .into_iter()
                .filter(|e| e.event_type.as_str().starts_with("assessment."))
                .map(|e| {
                    let id = e.data.iter().find(|(k, _)| k == "assessmentId").map(|(_, v)| v.clone());
                    let Some(EventValue::Text(id)) = id else { panic!("no assessmentId in {e:?}") };
                    (e.event_type, id)
                })
                .collect()
        }

        fn later(&self, by: i64) {
            self.clock.set(self.clock.now() + seconds(by));
        }
    }

    fn data<'a>(event: &'a crate::event::Event, key: &str) -> Option<&'a EventValue> {
        event.data.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[tokio::test]
    async fn runs_are_claimed_oldest_first_within_the_asked_products() {
        let f = fixture(&["essential-eight", "nist-csf", "essential-eight"]).await;
        let w = f.worker();
        let nist = f.service.claim(&w, claim(Some(&["nist-csf"]), None)).await.unwrap().unwrap();
        assert_eq!(nist.run.id.as_str(), f.runs[1]);
        assert_eq!(f.service.claim(&w, claim(Some(&["nist-csf"]), None)).await.unwrap(), None);
        let first = f.service.claim(&w, ClaimRequest::default()).await.unwrap().unwrap();
        assert_eq!(first.run.id.as_str(), f.runs[0]);
        let last = f.service.claim(&w, claim(Some(&["essential-eight", "nist-csf"]), None)).await.unwrap().unwrap();
        assert_eq!(last.run.id.as_str(), f.runs[2]);
        assert_eq!(f.service.claim(&w, ClaimRequest::default()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_claim_hands_over_the_run_running_under_a_lease_and_announces_it_once() {
        let f = fixture(&["essential-eight"]).await;
        let claimed = f.service.claim(&f.worker(), claim(None, Some(120))).await.unwrap().unwrap();
        assert_eq!(claimed.customer_name, "Contoso Ltd");
        assert_eq!(claimed.tenant_id.as_str(), "d4f5a678-1234-5678-9abc-def012345678");
        assert_eq!(claimed.lease_expires_at, NOW + seconds(60 + 120));
        assert_eq!((claimed.run.status, claimed.run.started_at), (RunStatus::Running, Some(NOW + seconds(60))));
        let seen = f.run(&f.runs[0]).await;
        assert_eq!(seen.run.status, RunStatus::Running, "the partner sees it running");
        assert_eq!(f.assessment_events(), [(EventType::AssessmentStarted, f.runs[0].clone())]);
        let started = f.store.events().into_iter().find(|e| e.event_type == EventType::AssessmentStarted).unwrap();
        assert_eq!(started.to_partner.as_ref(), Some(&f.partner), "sent to the partner");
        assert_eq!(data(&started, "status"), Some(&EventValue::Text("running".into())));
    }

    #[tokio::test]
    async fn a_completed_run_carries_its_results_and_the_completed_event_its_score() {
        let f = fixture(&["essential-eight"]).await;
        let w = f.worker();
        f.service.claim(&w, ClaimRequest::default()).await.unwrap().unwrap();
        f.later(30);
        let done = Completion {
            score: Some(72),
            critical: Some(2),
            high: Some(5),
            medium: Some(4),
            low: Some(3),
            report_url: Some("https://reports.example/r/1.pdf".into()),
        };
        let view = f.service.complete(&w, &f.runs[0], done).await.unwrap();
        assert_eq!(view.run.status, RunStatus::Completed);
        assert_eq!(view.run.completed_at, Some(NOW + seconds(90)));
        let result = view.run.result.clone().unwrap();
        assert_eq!((result.score, result.findings()), (72, 14));
        assert_eq!(f.run(&f.runs[0]).await, view, "what the worker is told is what the partner sees");
        assert_eq!(f.units(), 1, "a completed run keeps its unit");
        let completed = f.store.events().into_iter().find(|e| e.event_type == EventType::AssessmentCompleted).unwrap();
        assert_eq!(data(&completed, "score"), Some(&EventValue::Int(72)));
        assert_eq!(data(&completed, "findings"), Some(&EventValue::Int(14)));
        assert_eq!(completed.to_partner.as_ref(), Some(&f.partner));
        // Nothing more may happen to it.
        let again = f.service.complete(&w, &f.runs[0], completion(10)).await;
        assert!(matches!(again, Err(WorkerError::RunStateConflict)), "{again:?}");
        let fail = f.service.fail(&w, &f.runs[0], Some("late".into())).await;
        assert!(matches!(fail, Err(WorkerError::RunStateConflict)), "{fail:?}");
        let beat = f.service.heartbeat(&w, &f.runs[0], None).await;
        assert!(matches!(beat, Err(WorkerError::RunStateConflict)), "{beat:?}");
        assert_eq!(f.run(&f.runs[0]).await, view);
        assert_eq!(f.assessment_events().len(), 2, "started and completed only");
    }

    #[tokio::test]
    async fn a_failed_run_gives_its_unit_back_and_the_failed_event_says_why() {
        let f = fixture(&["essential-eight", "essential-eight"]).await;
        assert_eq!(f.units(), 2);
        let w = f.worker();
        f.service.claim(&w, ClaimRequest::default()).await.unwrap().unwrap();
        let view = f.service.fail(&w, &f.runs[0], Some("tenant consent missing".into())).await.unwrap();
        assert_eq!(view.run.status, RunStatus::Failed);
        assert_eq!(view.run.failure_reason.as_deref(), Some("tenant consent missing"));
        assert_eq!(f.units(), 1, "the failed run's unit is given back");
        let failed = f.store.events().into_iter().find(|e| e.event_type == EventType::AssessmentFailed).unwrap();
        assert_eq!(data(&failed, "error"), Some(&EventValue::Text("tenant consent missing".into())));
        assert_eq!(failed.to_partner.as_ref(), Some(&f.partner));
        let again = f.service.fail(&w, &f.runs[0], Some("again".into())).await;
        assert!(matches!(again, Err(WorkerError::RunStateConflict)), "{again:?}");
        assert_eq!(f.units(), 1, "failing twice gives back nothing more");
    }

    #[tokio::test]
    async fn only_the_worker_holding_the_lease_may_act_on_the_run() {
        let f = fixture(&["essential-eight"]).await;
        let (holder, other) = (f.worker(), f.worker());
        f.service.claim(&holder, ClaimRequest::default()).await.unwrap().unwrap();
        let run = &f.runs[0];
        assert!(matches!(f.service.heartbeat(&other, run, None).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(f.service.complete(&other, run, completion(5)).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(f.service.fail(&other, run, Some("x".into())).await, Err(WorkerError::RunStateConflict)));
        assert_eq!(f.run(run).await.run.status, RunStatus::Running);
        assert_eq!(f.units(), 1);
        let unknown = "run_0000000000000000000000ff";
        assert!(matches!(f.service.heartbeat(&holder, unknown, None).await, Err(WorkerError::NotFound)));
        f.service.complete(&holder, run, completion(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_queued_run_cannot_be_acted_on_before_it_is_claimed() {
        let f = fixture(&["essential-eight"]).await;
        let w = f.worker();
        let run = &f.runs[0];
        assert!(matches!(f.service.heartbeat(&w, run, None).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(f.service.complete(&w, run, completion(5)).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(f.service.fail(&w, run, Some("x".into())).await, Err(WorkerError::RunStateConflict)));
        assert_eq!(f.run(run).await.run.status, RunStatus::Queued);
        assert!(f.assessment_events().is_empty());
    }

    #[tokio::test]
    async fn an_expired_lease_requeues_the_run_for_another_worker_without_a_second_started_event() {
        let f = fixture(&["essential-eight"]).await;
        let (first, second) = (f.worker(), f.worker());
        let run = &f.runs[0];
        let claimed = f.service.claim(&first, claim(None, Some(60))).await.unwrap().unwrap();
        f.clock.set(claimed.lease_expires_at);
        assert_eq!(f.service.claim(&second, ClaimRequest::default()).await.unwrap(), None, "not yet expired");
        f.later(1);
        let again = f.service.claim(&second, ClaimRequest::default()).await.unwrap().unwrap();
        assert_eq!(again.run.id.as_str(), run);
        assert_eq!(again.run.started_at, claimed.run.started_at, "started_at is the first claim's");
        assert!(matches!(f.service.heartbeat(&first, run, None).await, Err(WorkerError::RunStateConflict)));
        assert!(matches!(f.service.complete(&first, run, completion(1)).await, Err(WorkerError::RunStateConflict)));
        f.service.complete(&second, run, completion(88)).await.unwrap();
        let kinds: Vec<EventType> = f.assessment_events().into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [EventType::AssessmentStarted, EventType::AssessmentCompleted]);
    }

    #[tokio::test]
    async fn the_third_expired_lease_fails_the_run_and_gives_its_unit_back() {
        let f = fixture(&["essential-eight"]).await;
        let run = &f.runs[0];
        for attempt in 1..=MAX_RUN_ATTEMPTS {
            let claimed = f.service.claim(&f.worker(), claim(None, Some(10))).await.unwrap();
            assert_eq!(claimed.map(|c| c.run.id.to_string()).as_deref(), Some(run.as_str()), "attempt {attempt}");
            f.later(11);
            let swept = f.service.expire_leases().await.unwrap();
            let expected = if attempt < MAX_RUN_ATTEMPTS {
                ExpiredLeases { requeued: 1, failed: 0 }
            } else {
                ExpiredLeases { requeued: 0, failed: 1 }
            };
            assert_eq!(swept, expected, "attempt {attempt}");
        }
        let view = f.run(run).await;
        assert_eq!(view.run.status, RunStatus::Failed);
        assert!(view.run.failure_reason.as_deref().is_some_and(|r| r.contains("expired")), "{view:?}");
        assert_eq!(f.units(), 0);
        assert_eq!(f.service.claim(&f.worker(), ClaimRequest::default()).await.unwrap(), None);
        let kinds: Vec<EventType> = f.assessment_events().into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [EventType::AssessmentStarted, EventType::AssessmentFailed]);
        assert_eq!(f.service.expire_leases().await.unwrap(), ExpiredLeases::default(), "nothing left to sweep");
    }

    #[tokio::test]
    async fn a_heartbeat_keeps_a_run_past_its_first_lease() {
        let f = fixture(&["essential-eight"]).await;
        let (holder, other) = (f.worker(), f.worker());
        let run = &f.runs[0];
        f.service.claim(&holder, claim(None, Some(60))).await.unwrap().unwrap();
        f.later(50);
        let beat = f.service.heartbeat(&holder, run, Some(60)).await.unwrap();
        assert_eq!(beat.lease_expires_at, f.clock.now() + seconds(60));
        f.later(50);
        assert_eq!(f.service.claim(&other, ClaimRequest::default()).await.unwrap(), None);
        assert_eq!(f.service.expire_leases().await.unwrap(), ExpiredLeases::default());
        f.service.complete(&holder, run, completion(60)).await.unwrap();
    }
}
