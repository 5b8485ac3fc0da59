//! The worker protocol's queue (`RunQueue`): claims, leases, completion and failure, on both
//! back-ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use partnerd_domain::catalog::{PlanId, ProductId, RunLimit};
use partnerd_domain::customer::Customer;
use partnerd_domain::ids::{PartnerId, RunId, WorkerId};
use partnerd_domain::ports::{
    CustomerRepository, ExpiredLeases, PartnerRepository, RunActionError, RunBatch, RunQueue, RunRepository,
};
use partnerd_domain::run::{MaturityTarget, Run, RunResult, RunStatus, RunView};
use partnerd_domain::values::Month;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::runs::customer;
use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    a_claim_takes_the_oldest_queued_run_of_the_asked_products,
    a_claim_hands_over_the_run_running_under_the_lease_and_records_started,
    eight_concurrent_claimers_take_each_of_200_runs_exactly_once,
    a_heartbeat_extends_only_the_holders_lease,
    completing_stores_the_results_and_records_completed_in_the_same_change,
    failing_gives_the_unit_back_and_records_the_reason,
    only_the_holder_may_act_and_a_refusal_changes_nothing,
    an_expired_lease_requeues_the_run_without_a_second_started_event,
    the_third_expired_lease_fails_the_run_and_gives_its_unit_back,
    a_run_ends_once_however_many_end_it_at_once,
    a_sweep_racing_the_holders_completion_never_does_both,
    a_final_sweep_racing_the_holders_completion_gives_back_only_the_failed_units,
);

const E8: &str = "essential-eight";
const NIST: &str = "nist-csf";

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// A professional partner with one customer.
async fn setup(ctx: &Ctx) -> (PartnerId, Customer) {
    let p = ctx.partner(None).await;
    let c = customer(ctx, &p.id, "Contoso Ltd");
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), &[]).await.unwrap();
    (p.id, c)
}

/// Queues one run per product, created a second apart in that order (after `offset` seconds).
async fn queue(ctx: &Ctx, c: &Customer, products: &[&str], offset: i64) -> Vec<RunId> {
    let runs: Vec<Run> = products
        .iter()
        .enumerate()
        .map(|(i, product)| Run {
            id: RunId::generate(ctx.ids()),
            partner_id: c.partner_id.clone(),
            customer_id: c.id.clone(),
            product: ProductId::parse(product).unwrap(),
            maturity_target: MaturityTarget::new(3).unwrap(),
            status: RunStatus::Queued,
            month: Month::containing(NOW),
            created_at: NOW + secs(offset + i as i64),
            started_at: None,
            completed_at: None,
            result: None,
            failure_reason: None,
        })
        .collect();
    let batch = RunBatch {
        partner: c.partner_id.clone(),
        plan: PlanId::parse("professional").unwrap(),
        limit: RunLimit::Unlimited,
        month: Month::containing(NOW),
        runs: runs.clone(),
        thresholds: vec![],
    };
    let outcome = ctx.store.create(&batch).await.unwrap();
    assert_eq!(outcome.created.len(), runs.len());
    runs.into_iter().map(|r| r.id).collect()
}

async fn units(ctx: &Ctx, partner: &PartnerId) -> u64 {
    PartnerRepository::usage(&*ctx.store, partner, Month::containing(NOW)).await.unwrap().runs_used
}

async fn view(ctx: &Ctx, partner: &PartnerId, run: &RunId) -> RunView {
    RunRepository::get(&*ctx.store, partner, run).await.unwrap().expect("the run exists")
}

async fn status(ctx: &Ctx, partner: &PartnerId, run: &RunId) -> RunStatus {
    view(ctx, partner, run).await.run.status
}

fn worker(ctx: &Ctx) -> WorkerId {
    WorkerId::generate(ctx.ids())
}

fn products(names: &[&str]) -> Vec<ProductId> {
    names.iter().map(|p| ProductId::parse(p).unwrap()).collect()
}

async fn claim(ctx: &Ctx, w: &WorkerId, now: OffsetDateTime, lease: i64) -> Option<RunView> {
    let claimed = ctx.store.claim(w, &[], now, now + secs(lease)).await.unwrap();
    claimed.map(|c| RunView { run: c.run, customer_name: c.customer_name })
}

fn result(score: u8) -> RunResult {
    RunResult {
        score,
        critical: 2,
        high: 5,
        medium: 4,
        low: 3,
        report_url: Some("https://reports.example/r.pdf".into()),
    }
}

/// The `assessment.*` events in the outbox: `(type, to_partner, data)`, oldest first.
async fn assessment_events(ctx: &Ctx) -> Vec<(String, Option<String>, Value)> {
    ctx.partner_outbox()
        .await
        .into_iter()
        .filter(|(kind, _, _)| kind.starts_with("assessment."))
        .map(|(kind, to, data)| (kind, to, serde_json::from_str(&data).expect("event data is JSON")))
        .collect()
}

/// `(type, assessmentId)` of each `assessment.*` event.
async fn assessment_kinds(ctx: &Ctx) -> Vec<(String, String)> {
    assessment_events(ctx)
        .await
        .into_iter()
        .map(|(kind, _, data)| (kind, data["assessmentId"].as_str().expect("an assessmentId").to_owned()))
        .collect()
}

fn pair(kind: &str, run: &RunId) -> (String, String) {
    (kind.to_owned(), run.to_string())
}

async fn a_claim_takes_the_oldest_queued_run_of_the_asked_products(ctx: &Ctx) {
    let (_, c) = setup(ctx).await;
    // Created out of order on purpose: the queue goes by creation time, not insertion.
    let late = queue(ctx, &c, &[E8], 100).await;
    let early = queue(ctx, &c, &[NIST, E8], 0).await;
    let w = worker(ctx);
    let now = NOW + secs(200);
    let only_e8 = ctx.store.claim(&w, &products(&[E8]), now, now + secs(60)).await.unwrap().unwrap();
    assert_eq!(only_e8.run.id, early[1], "the oldest essential-eight run");
    let any = ctx.store.claim(&w, &[], now, now + secs(60)).await.unwrap().unwrap();
    assert_eq!(any.run.id, early[0], "the oldest of any product");
    assert!(ctx.store.claim(&w, &products(&[NIST]), now, now + secs(60)).await.unwrap().is_none());
    assert!(ctx.store.claim(&w, &products(&["cis-controls"]), now, now + secs(60)).await.unwrap().is_none());
    let both = ctx.store.claim(&w, &products(&[NIST, E8]), now, now + secs(60)).await.unwrap().unwrap();
    assert_eq!(both.run.id, late[0]);
    assert!(ctx.store.claim(&w, &[], now, now + secs(60)).await.unwrap().is_none(), "the queue is empty");
}

async fn a_claim_hands_over_the_run_running_under_the_lease_and_records_started(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8], 0).await;
    let w = worker(ctx);
    let now = NOW + secs(30);
    let claimed = ctx.store.claim(&w, &[], now, now + secs(300)).await.unwrap().unwrap();
    assert_eq!(claimed.customer_name, "Contoso Ltd");
    assert_eq!(claimed.tenant_id, c.tenant_id);
    assert_eq!(claimed.lease_expires_at, now + secs(300));
    assert_eq!((claimed.run.status, claimed.run.started_at), (RunStatus::Running, Some(now)));
    assert_eq!((&claimed.run.partner_id, &claimed.run.customer_id), (&p, &c.id));
    assert_eq!(view(ctx, &p, &runs[0]).await.run, claimed.run, "the partner sees what the worker got");
    let events = assessment_events(ctx).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (kind, to, data) = &events[0];
    assert_eq!((kind.as_str(), to.as_deref()), ("assessment.started", Some(p.as_str())));
    assert_eq!(data["assessmentId"], runs[0].as_str());
    assert_eq!(data["customerId"], c.id.as_str());
    assert_eq!(data["status"], "running");
    assert_eq!(units(ctx, &p).await, 1, "a claim takes no further unit");
}

async fn eight_concurrent_claimers_take_each_of_200_runs_exactly_once(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let names: Vec<&str> = (0..200).map(|i| if i % 3 == 0 { NIST } else { E8 }).collect();
    let queued: BTreeSet<RunId> = queue(ctx, &c, &names, 0).await.into_iter().collect();
    let now = NOW + secs(300);
    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&ctx.store);
            let w = worker(ctx);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claimed) = store.claim(&w, &[], now, now + secs(600)).await.unwrap() {
                    assert_eq!(claimed.run.status, RunStatus::Running);
                    mine.push(claimed.run.id);
                }
                (w, mine)
            })
        })
        .collect();
    let mut holder: BTreeMap<RunId, WorkerId> = BTreeMap::new();
    let mut claims = 0;
    let mut busy_claimers = 0;
    for task in claimers {
        let (w, mine) = task.await.unwrap();
        claims += mine.len();
        busy_claimers += usize::from(!mine.is_empty());
        for run in mine {
            if let Some(first) = holder.insert(run.clone(), w.clone()) {
                panic!("{run} was claimed by both {first} and {w}");
            }
        }
    }
    assert_eq!(claims, 200, "200 claims in all");
    assert_eq!(holder.keys().cloned().collect::<BTreeSet<_>>(), queued, "every queued run was claimed once");
    assert!(busy_claimers > 1, "the claimers really ran side by side ({busy_claimers} got work)");
    // Each run is held by the worker that got it: only that one may complete it.
    for (run, w) in &holder {
        assert_eq!(status(ctx, &p, run).await, RunStatus::Running);
        let intruder = worker(ctx);
        assert!(matches!(ctx.store.complete(&intruder, run, &result(1), now).await, Err(RunActionError::Conflict)));
        ctx.store.complete(w, run, &result(50), now).await.unwrap();
    }
    let events = assessment_kinds(ctx).await;
    let started: BTreeSet<String> =
        events.iter().filter(|(k, _)| k == "assessment.started").map(|(_, r)| r.clone()).collect();
    assert_eq!(events.iter().filter(|(k, _)| k == "assessment.started").count(), 200, "one started per run");
    assert_eq!(started.len(), 200);
    assert_eq!(events.iter().filter(|(k, _)| k == "assessment.completed").count(), 200);
    assert_eq!(units(ctx, &p).await, 200);
}

async fn a_heartbeat_extends_only_the_holders_lease(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8], 0).await;
    let (holder, other) = (worker(ctx), worker(ctx));
    let t0 = NOW + secs(10);
    claim(ctx, &holder, t0, 60).await.unwrap();
    let beat = ctx.store.heartbeat(&holder, &runs[0], t0 + secs(500)).await.unwrap();
    assert_eq!(beat.lease_expires_at, t0 + secs(500));
    assert_eq!((beat.run.status, beat.customer_name.as_str()), (RunStatus::Running, "Contoso Ltd"));
    assert!(matches!(ctx.store.heartbeat(&other, &runs[0], t0 + secs(900)).await, Err(RunActionError::Conflict)));
    let unknown = RunId::generate(ctx.ids());
    assert!(matches!(ctx.store.heartbeat(&holder, &unknown, t0 + secs(900)).await, Err(RunActionError::NotFound)));
    // Past the first lease but within the extended one: nothing to sweep.
    assert_eq!(ctx.store.expire_leases(t0 + secs(400), 3).await.unwrap(), ExpiredLeases::default());
    assert_eq!(status(ctx, &p, &runs[0]).await, RunStatus::Running);
    // The other worker's heartbeat did not move the lease either.
    assert_eq!(
        ctx.store.expire_leases(t0 + secs(501), 3).await.unwrap(),
        ExpiredLeases { requeued: 1, failed: 0 },
        "the lease ends where the holder's heartbeat put it"
    );
}

async fn completing_stores_the_results_and_records_completed_in_the_same_change(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8], 0).await;
    let w = worker(ctx);
    let claimed = claim(ctx, &w, NOW + secs(10), 60).await.unwrap();
    let done_at = NOW + secs(40);
    let done = ctx.store.complete(&w, &runs[0], &result(72), done_at).await.unwrap();
    assert_eq!(done.run.status, RunStatus::Completed);
    assert_eq!((done.run.started_at, done.run.completed_at), (claimed.run.started_at, Some(done_at)));
    assert_eq!(done.run.result, Some(result(72)));
    assert_eq!(done.run.result.as_ref().map(RunResult::findings), Some(14));
    assert_eq!(view(ctx, &p, &runs[0]).await, done, "stored as returned");
    let events = assessment_events(ctx).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (kind, to, data) = &events[1];
    assert_eq!((kind.as_str(), to.as_deref()), ("assessment.completed", Some(p.as_str())));
    assert_eq!((&data["assessmentId"], &data["status"]), (&Value::from(runs[0].as_str()), &Value::from("completed")));
    assert_eq!((&data["score"], &data["findings"]), (&Value::from(72), &Value::from(14)));
    // It is over: completing again, failing, or a heartbeat is refused and changes nothing.
    let again = ctx.store.complete(&w, &runs[0], &result(10), done_at + secs(1)).await;
    assert!(matches!(again, Err(RunActionError::Conflict)), "{again:?}");
    let fail = ctx.store.fail(&w, &runs[0], "too late", done_at + secs(1)).await;
    assert!(matches!(fail, Err(RunActionError::Conflict)), "{fail:?}");
    assert!(matches!(ctx.store.heartbeat(&w, &runs[0], done_at + secs(60)).await, Err(RunActionError::Conflict)));
    assert_eq!(view(ctx, &p, &runs[0]).await, done);
    assert_eq!(assessment_events(ctx).await.len(), 2);
    assert_eq!(units(ctx, &p).await, 1, "a completed run keeps its unit");
    // A completed run's lease is gone: no sweep touches it.
    assert_eq!(ctx.store.expire_leases(done_at + secs(3600), 3).await.unwrap(), ExpiredLeases::default());
    assert_eq!(status(ctx, &p, &runs[0]).await, RunStatus::Completed);
}

async fn failing_gives_the_unit_back_and_records_the_reason(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8, E8], 0).await;
    assert_eq!(units(ctx, &p).await, 2);
    let w = worker(ctx);
    claim(ctx, &w, NOW + secs(10), 60).await.unwrap();
    let failed = ctx.store.fail(&w, &runs[0], "tenant consent missing", NOW + secs(20)).await.unwrap();
    assert_eq!(failed.run.status, RunStatus::Failed);
    assert_eq!(failed.run.failure_reason.as_deref(), Some("tenant consent missing"));
    assert_eq!((failed.run.completed_at, &failed.run.result), (Some(NOW + secs(20)), &None));
    assert_eq!(view(ctx, &p, &runs[0]).await, failed);
    assert_eq!(units(ctx, &p).await, 1, "the failed run's unit is given back");
    let events = assessment_events(ctx).await;
    let (kind, to, data) = events.last().unwrap();
    assert_eq!((kind.as_str(), to.as_deref()), ("assessment.failed", Some(p.as_str())));
    assert_eq!(
        (&data["assessmentId"], &data["error"]),
        (&Value::from(runs[0].as_str()), &Value::from("tenant consent missing"))
    );
    let again = ctx.store.fail(&w, &runs[0], "again", NOW + secs(30)).await;
    assert!(matches!(again, Err(RunActionError::Conflict)), "{again:?}");
    let complete = ctx.store.complete(&w, &runs[0], &result(1), NOW + secs(30)).await;
    assert!(matches!(complete, Err(RunActionError::Conflict)), "{complete:?}");
    assert_eq!(units(ctx, &p).await, 1, "nothing more is given back");
    assert_eq!(assessment_events(ctx).await.len(), 2, "started and failed");
}

async fn only_the_holder_may_act_and_a_refusal_changes_nothing(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8, E8], 0).await;
    let (holder, other) = (worker(ctx), worker(ctx));
    let now = NOW + secs(10);
    // A queued run is nobody's yet.
    assert!(matches!(ctx.store.complete(&holder, &runs[1], &result(5), now).await, Err(RunActionError::Conflict)));
    assert!(matches!(ctx.store.fail(&holder, &runs[1], "x", now).await, Err(RunActionError::Conflict)));
    assert!(matches!(ctx.store.heartbeat(&holder, &runs[1], now).await, Err(RunActionError::Conflict)));
    claim(ctx, &holder, now, 60).await.unwrap();
    let before = (view(ctx, &p, &runs[0]).await, view(ctx, &p, &runs[1]).await, units(ctx, &p).await);
    let events_before = ctx.partner_outbox().await;
    assert!(matches!(ctx.store.complete(&other, &runs[0], &result(5), now).await, Err(RunActionError::Conflict)));
    assert!(matches!(ctx.store.fail(&other, &runs[0], "stolen", now).await, Err(RunActionError::Conflict)));
    let unknown = RunId::generate(ctx.ids());
    assert!(matches!(ctx.store.complete(&holder, &unknown, &result(5), now).await, Err(RunActionError::NotFound)));
    assert!(matches!(ctx.store.fail(&holder, &unknown, "x", now).await, Err(RunActionError::NotFound)));
    let after = (view(ctx, &p, &runs[0]).await, view(ctx, &p, &runs[1]).await, units(ctx, &p).await);
    assert_eq!(after, before);
    assert_eq!(ctx.partner_outbox().await, events_before, "a refusal records no event");
    ctx.store.fail(&holder, &runs[0], "done", now).await.unwrap();
}

async fn an_expired_lease_requeues_the_run_without_a_second_started_event(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8], 0).await;
    let (first, second) = (worker(ctx), worker(ctx));
    let t0 = NOW + secs(10);
    let claimed = claim(ctx, &first, t0, 60).await.unwrap();
    let lease_end = t0 + secs(60);
    assert_eq!(ctx.store.expire_leases(lease_end, 3).await.unwrap(), ExpiredLeases::default(), "not before its end");
    assert_eq!(status(ctx, &p, &runs[0]).await, RunStatus::Running);
    let after = lease_end + Duration::milliseconds(1);
    assert_eq!(ctx.store.expire_leases(after, 3).await.unwrap(), ExpiredLeases { requeued: 1, failed: 0 });
    assert_eq!(status(ctx, &p, &runs[0]).await, RunStatus::Queued);
    // The first worker lost it.
    assert!(matches!(ctx.store.heartbeat(&first, &runs[0], after + secs(60)).await, Err(RunActionError::Conflict)));
    assert!(matches!(ctx.store.complete(&first, &runs[0], &result(1), after).await, Err(RunActionError::Conflict)));
    assert!(matches!(ctx.store.fail(&first, &runs[0], "x", after).await, Err(RunActionError::Conflict)));
    // Another takes it; started_at stays the first claim's, and started is not announced again.
    let reclaimed = claim(ctx, &second, after + secs(5), 60).await.unwrap();
    assert_eq!(reclaimed.run.id, runs[0]);
    assert_eq!(reclaimed.run.started_at, claimed.run.started_at);
    assert!(matches!(ctx.store.complete(&first, &runs[0], &result(1), after).await, Err(RunActionError::Conflict)));
    ctx.store.complete(&second, &runs[0], &result(90), after + secs(10)).await.unwrap();
    assert_eq!(
        assessment_kinds(ctx).await,
        [pair("assessment.started", &runs[0]), pair("assessment.completed", &runs[0])]
    );
    assert_eq!(units(ctx, &p).await, 1);
}

async fn the_third_expired_lease_fails_the_run_and_gives_its_unit_back(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8, E8], 0).await;
    let mut now = NOW + secs(10);
    for attempt in 1..=3u64 {
        // The other run stays held under a long lease throughout: only expired ones are swept.
        let claimed = claim(ctx, &worker(ctx), now, 10).await.unwrap();
        assert_eq!(claimed.run.id, runs[0], "attempt {attempt}");
        if attempt == 1 {
            claim(ctx, &worker(ctx), now, 3600).await.unwrap();
        }
        now += secs(11);
        let swept = ctx.store.expire_leases(now, 3).await.unwrap();
        let expected = if attempt < 3 { (1, 0) } else { (0, 1) };
        assert_eq!((swept.requeued, swept.failed), expected, "attempt {attempt}");
    }
    let failed = view(ctx, &p, &runs[0]).await.run;
    assert_eq!((failed.status, failed.completed_at), (RunStatus::Failed, Some(now)));
    let reason = failed.failure_reason.expect("a failed run says why");
    assert!(!reason.is_empty());
    assert_eq!(units(ctx, &p).await, 1, "the abandoned run's unit is given back");
    assert_eq!(status(ctx, &p, &runs[1]).await, RunStatus::Running, "the other run is untouched");
    assert!(claim(ctx, &worker(ctx), now, 10).await.is_none(), "a failed run is never claimed again");
    let events = assessment_events(ctx).await;
    let kinds: Vec<(&str, &str)> =
        events.iter().map(|(k, _, d)| (k.as_str(), d["assessmentId"].as_str().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("assessment.started", runs[0].as_str()),
            ("assessment.started", runs[1].as_str()),
            ("assessment.failed", runs[0].as_str()),
        ]
    );
    let (_, to, data) = &events[2];
    assert_eq!(to.as_deref(), Some(p.as_str()));
    assert_eq!(data["error"], reason.as_str(), "the event carries the reason the partner sees");
    assert_eq!(ctx.store.expire_leases(now + secs(7200), 3).await.unwrap(), ExpiredLeases { requeued: 1, failed: 0 });
}

async fn a_run_ends_once_however_many_end_it_at_once(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &[E8], 0).await;
    let w = worker(ctx);
    let now = NOW + secs(10);
    claim(ctx, &w, now, 600).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, w, run) = (Arc::clone(&ctx.store), w.clone(), runs[0].clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store.complete(&w, &run, &result(70), now).await.map(|v| v.run.status)
                } else {
                    store.fail(&w, &run, "scanner crashed", now).await.map(|v| v.run.status)
                }
            })
        })
        .collect();
    let mut ended = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(status) => ended.push(status),
            Err(RunActionError::Conflict) => {}
            Err(other) => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(ended.len(), 1, "exactly one of 8 concurrent ends wins: {ended:?}");
    assert_eq!(status(ctx, &p, &runs[0]).await, ended[0]);
    let expected_units = if ended[0] == RunStatus::Failed { 0 } else { 1 };
    assert_eq!(units(ctx, &p).await, expected_units, "the unit is given back at most once");
    let kinds = assessment_kinds(ctx).await;
    assert_eq!(kinds.len(), 2, "started and one end: {kinds:?}");
}

async fn a_sweep_racing_the_holders_completion_never_does_both(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let names = vec![E8; 20];
    let runs = queue(ctx, &c, &names, 0).await;
    let w = worker(ctx);
    let t0 = NOW + secs(10);
    for _ in &runs {
        claim(ctx, &w, t0, 10).await.unwrap();
    }
    let late = t0 + secs(11);
    let completions: Vec<_> = runs
        .iter()
        .map(|run| {
            let (store, w, run) = (Arc::clone(&ctx.store), w.clone(), run.clone());
            tokio::spawn(async move { (run.clone(), store.complete(&w, &run, &result(60), late).await) })
        })
        .collect();
    let sweepers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&ctx.store);
            tokio::spawn(async move { store.expire_leases(late, 3).await.unwrap() })
        })
        .collect();
    let mut completed = BTreeSet::new();
    for task in completions {
        match task.await.unwrap() {
            (run, Ok(_)) => {
                completed.insert(run);
            }
            (_, Err(RunActionError::Conflict)) => {}
            (_, Err(other)) => panic!("expected a conflict, got {other:?}"),
        }
    }
    let mut requeued = 0;
    for task in sweepers {
        let swept = task.await.unwrap();
        assert_eq!(swept.failed, 0);
        requeued += swept.requeued;
    }
    for run in &runs {
        let expected = if completed.contains(run) { RunStatus::Completed } else { RunStatus::Queued };
        assert_eq!(status(ctx, &p, run).await, expected, "{run}");
    }
    assert_eq!(requeued as usize + completed.len(), runs.len(), "each run was either completed or requeued, once");
    assert_eq!(units(ctx, &p).await, 20);
}

async fn a_final_sweep_racing_the_holders_completion_gives_back_only_the_failed_units(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs = queue(ctx, &c, &vec![E8; 20], 0).await;
    let w = worker(ctx);
    let mut now = NOW + secs(10);
    // Two leases run out: every run is on its third and last attempt.
    for _ in 0..2 {
        for _ in &runs {
            claim(ctx, &w, now, 10).await.unwrap();
        }
        now += secs(11);
        assert_eq!(ctx.store.expire_leases(now, 3).await.unwrap(), ExpiredLeases { requeued: 20, failed: 0 });
    }
    for _ in &runs {
        claim(ctx, &w, now, 10).await.unwrap();
    }
    let late = now + secs(11);
    let completions: Vec<_> = runs
        .iter()
        .map(|run| {
            let (store, w, run) = (Arc::clone(&ctx.store), w.clone(), run.clone());
            tokio::spawn(async move { (run.clone(), store.complete(&w, &run, &result(60), late).await) })
        })
        .collect();
    let sweepers: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&ctx.store);
            tokio::spawn(async move { store.expire_leases(late, 3).await.unwrap() })
        })
        .collect();
    let mut completed = BTreeSet::new();
    for task in completions {
        match task.await.unwrap() {
            (run, Ok(_)) => {
                completed.insert(run);
            }
            (_, Err(RunActionError::Conflict)) => {}
            (_, Err(other)) => panic!("expected a conflict, got {other:?}"),
        }
    }
    let mut failed = 0;
    for task in sweepers {
        let swept = task.await.unwrap();
        assert_eq!(swept.requeued, 0, "a third expiry never requeues");
        failed += swept.failed;
    }
    for run in &runs {
        let expected = if completed.contains(run) { RunStatus::Completed } else { RunStatus::Failed };
        assert_eq!(status(ctx, &p, run).await, expected, "{run}");
    }
    assert_eq!(failed as usize + completed.len(), runs.len(), "each run ended once");
    assert_eq!(units(ctx, &p).await, completed.len() as u64, "exactly the failed runs gave their unit back");
    let kinds = assessment_kinds(ctx).await;
    let count = |kind: &str| kinds.iter().filter(|(k, _)| k == kind).count();
    assert_eq!(
        (count("assessment.started"), count("assessment.completed"), count("assessment.failed")),
        (20, completed.len(), runs.len() - completed.len())
    );
}
