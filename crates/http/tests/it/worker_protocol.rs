//! The worker protocol (`X-Worker-Key`): `POST /v1/worker/runs/claim` and
//! `POST /v1/worker/runs/{id}/heartbeat|complete|fail`.

use std::collections::BTreeSet;

use partnerd_domain::event::{Event, EventValue};
use partnerd_domain::keys::ApiKey;
use partnerd_domain::ports::Clock;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::support::{Caller, NOW, Reply, TestApp, assert_error, contoso, no_rate_limits, oversized_body};

const CLAIM: &str = "/v1/worker/runs/claim";
const UNKNOWN_RUN: &str = "run_0000000000000000000000ff";

fn heartbeat(run: &str) -> String {
    format!("/v1/worker/runs/{run}/heartbeat")
}

fn complete(run: &str) -> String {
    format!("/v1/worker/runs/{run}/complete")
}

fn fail(run: &str) -> String {
    format!("/v1/worker/runs/{run}/fail")
}

/// The four worker routes, for `run`.
fn routes(run: &str) -> [String; 4] {
    [CLAIM.to_owned(), heartbeat(run), complete(run), fail(run)]
}

/// The reference's full completion.
fn results() -> Value {
    json!({"score": 72, "critical": 2, "high": 5, "medium": 4, "low": 3, "reportUrl": "https://reports.example/r/1.pdf"})
}

/// A professional partner with one customer (Contoso), `runs` queued `essential-eight` runs
/// (created a minute apart from 10:00), and two workers; the clock stands at 10:30.
struct World {
    app: TestApp,
    partner: ApiKey,
    workers: [ApiKey; 2],
    customer: String,
    runs: Vec<String>,
}

impl World {
    async fn new(runs: usize) -> Self {
        Self::with_products(&vec!["essential-eight"; runs]).await
    }

    async fn with_products(products: &[&str]) -> Self {
        let app = TestApp::start_with(no_rate_limits()).await;
        let (_, partner) = app.partner_on("professional").await;
        let (_, first) = app.worker("scanner-1").await;
        let (_, second) = app.worker("scanner-2").await;
        let caller = app.as_partner(&partner);
        let customer = caller.create_customer(&contoso()).await;
        let mut runs = Vec::new();
        for (i, product) in products.iter().enumerate() {
            app.clock.set(NOW + Duration::minutes(i as i64));
            runs.push(caller.trigger(&customer, product).await);
        }
        app.clock.set(NOW + Duration::minutes(30));
        Self { app, partner, workers: [first, second], customer, runs }
    }

    fn partner(&self) -> Caller<'_> {
        self.app.as_partner(&self.partner)
    }

    /// The first worker.
    fn worker(&self) -> Caller<'_> {
        self.app.as_worker(&self.workers[0])
    }

    fn other_worker(&self) -> Caller<'_> {
        self.app.as_worker(&self.workers[1])
    }

    fn later(&self, seconds: i64) {
        self.app.clock.set(self.app.clock.now() + Duration::seconds(seconds));
    }

    /// The run as the partner sees it.
    async fn run(&self, id: &str) -> Value {
        let reply = self.partner().get(&format!("/v1/partner/assessments/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    async fn status(&self, id: &str) -> String {
        self.run(id).await["status"].as_str().unwrap().to_owned()
    }

    /// Everything a rejected request must leave alone: the partner's runs, its usage, and the
    /// events recorded.
    async fn snapshot(&self) -> (Value, u64, usize) {
        (self.partner().runs().await, self.partner().runs_used().await, self.app.store.events().len())
    }

    /// `(type, assessmentId)` of every `assessment.*` event, in order.
    fn assessment_events(&self) -> Vec<(String, String)> {
        assessment_events(&self.app)
            .iter()
            .map(|e| (e.event_type.as_str().to_owned(), text(e, "assessmentId").to_owned()))
            .collect()
    }
}

fn assessment_events(app: &TestApp) -> Vec<Event> {
    app.store.events().into_iter().filter(|e| e.event_type.as_str().starts_with("assessment.")).collect()
}

fn field<'a>(event: &'a Event, key: &str) -> &'a EventValue {
    event.data.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no {key} in {event:?}"))
}

fn text<'a>(event: &'a Event, key: &str) -> &'a str {
    match field(event, key) {
        EventValue::Text(s) => s,
        other => panic!("{key} is not text: {other:?}"),
    }
}

fn pair(kind: &str, run: &str) -> (String, String) {
    (kind.to_owned(), run.to_owned())
}

/// Claims, asserting `200`; returns the claimed run's id.
async fn claim_one(worker: &Caller<'_>, body: &Value) -> String {
    let reply = worker.post(CLAIM, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["run"]["id"].as_str().unwrap().to_owned()
}

#[track_caller]
fn assert_no_content(reply: &Reply) {
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(reply.body, Value::Null, "a 204 has no body");
}

// ---- POST /v1/worker/runs/claim ----

#[tokio::test]
async fn a_claim_answers_200_with_the_oldest_run_and_its_lease_as_designed() {
    let w = World::new(2).await;
    let reply = w.worker().post_empty(CLAIM).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let partner = w.partner().me().await;
    assert_eq!(
        reply.body,
        json!({
            "run": {
                "id": w.runs[0],
                "customerId": w.customer,
                "customerName": "Contoso Ltd",
                "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
                "partnerId": partner["id"],
                "product": "essential-eight",
                "maturityTarget": 2,
            },
            "leaseExpiresAt": "2026-04-03T10:35:00Z",
        })
    );
    let seen = w.run(&w.runs[0]).await;
    assert_eq!((&seen["status"], &seen["startedAt"]), (&json!("running"), &json!("2026-04-03T10:30:00Z")));
    assert_eq!(w.status(&w.runs[1]).await, "queued", "one claim takes one run");
    assert_eq!(w.partner().runs_used().await, 2, "a claim takes no further unit");
}

#[tokio::test]
async fn a_claim_announces_assessment_started_to_the_partner() {
    let w = World::new(1).await;
    claim_one(&w.worker(), &json!({})).await;
    let events = assessment_events(&w.app);
    assert_eq!(events.len(), 1, "{events:?}");
    let started = &events[0];
    assert_eq!(started.event_type.as_str(), "assessment.started");
    let partner = w.partner().me().await;
    assert_eq!(started.to_partner.as_ref().map(|p| p.as_str()), partner["id"].as_str(), "sent to the partner");
    assert_eq!(text(started, "assessmentId"), w.runs[0]);
    assert_eq!(text(started, "customerId"), w.customer);
    assert_eq!(text(started, "product"), "essential-eight");
    assert_eq!(text(started, "status"), "running");
}

#[tokio::test]
async fn a_claim_answers_204_with_no_body_when_nothing_is_queued() {
    let w = World::new(0).await;
    assert_no_content(&w.worker().post_empty(CLAIM).await);
    assert_no_content(&w.worker().post(CLAIM, &json!({})).await);
    assert!(assessment_events(&w.app).is_empty());
}

#[tokio::test]
async fn a_claim_takes_only_the_asked_products_and_empty_means_any() {
    let w = World::with_products(&["essential-eight", "nist-csf", "essential-eight"]).await;
    let nist = claim_one(&w.worker(), &json!({"products": ["nist-csf"]})).await;
    assert_eq!(nist, w.runs[1]);
    assert_no_content(&w.worker().post(CLAIM, &json!({"products": ["nist-csf"]})).await);
    assert_no_content(&w.worker().post(CLAIM, &json!({"products": ["cis-controls", "iso-27001"]})).await);
    assert_eq!(claim_one(&w.worker(), &json!({"products": []})).await, w.runs[0], "an empty list means any");
    let both = json!({"products": ["nist-csf", "essential-eight"], "leaseSeconds": 600});
    assert_eq!(claim_one(&w.worker(), &both).await, w.runs[2]);
    assert_no_content(&w.worker().post(CLAIM, &json!({"products": null, "leaseSeconds": null})).await);
}

#[tokio::test]
async fn a_claim_holds_the_run_for_the_asked_lease_from_10_seconds_to_an_hour() {
    let w = World::new(3).await;
    for (seconds, expected) in [(10, "2026-04-03T10:30:10Z"), (3600, "2026-04-03T11:30:00Z")] {
        let reply = w.worker().post(CLAIM, &json!({"leaseSeconds": seconds})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["leaseExpiresAt"], expected, "{seconds}");
    }
    let reply = w.worker().post(CLAIM, &json!({"leaseSeconds": null})).await;
    assert_eq!(reply.body["leaseExpiresAt"], "2026-04-03T10:35:00Z", "null is the default");
}

#[tokio::test]
async fn a_bad_claim_is_400_naming_the_field_and_claims_nothing() {
    let w = World::new(1).await;
    let before = w.snapshot().await;
    let worker = w.worker();
    for (body, field) in [
        (json!({"products": "essential-eight"}), "products"),
        (json!({"products": {"essential-eight": true}}), "products"),
        (json!({"products": ["quantum-audit"]}), "products[0]"),
        (json!({"products": ["essential-eight", "Not A Product!"]}), "products[1]"),
        (json!({"products": [1]}), "products[0]"),
        (json!({"products": [null]}), "products[0]"),
        (json!({"leaseSeconds": 9}), "leaseSeconds"),
        (json!({"leaseSeconds": 3601}), "leaseSeconds"),
        (json!({"leaseSeconds": 0}), "leaseSeconds"),
        (json!({"leaseSeconds": -300}), "leaseSeconds"),
        (json!({"leaseSeconds": "x"}), "leaseSeconds"),
        (json!({"leaseSeconds": "300"}), "leaseSeconds"),
        (json!({"leaseSeconds": 300.5}), "leaseSeconds"),
        (json!({"leaseSeconds": 1e30}), "leaseSeconds"),
        (json!({"leaseSeconds": i64::MAX}), "leaseSeconds"),
        (json!({"leaseSeconds": u64::MAX}), "leaseSeconds"),
        (json!({"leaseSeconds": 60, "priority": "high"}), "priority"),
    ] {
        worker.post(CLAIM, &body).await.field_error("INVALID_FIELD", field);
    }
    // Bigger than any integer JSON libraries agree on: still a bad value, not a crash.
    worker
        .post_raw(CLAIM, r#"{"leaseSeconds": 99999999999999999999999}"#)
        .await
        .field_error("INVALID_FIELD", "leaseSeconds");
    worker.post_raw(CLAIM, "[]").await.error(400, "INVALID_FIELD");
    worker.post_raw(CLAIM, "\"essential-eight\"").await.error(400, "INVALID_FIELD");
    worker.post_raw(CLAIM, r#"{"products": ["#).await.error(400, "INVALID_JSON");
    worker.post_raw(CLAIM, "leaseSeconds=60").await.error(400, "INVALID_JSON");
    assert_eq!(w.snapshot().await, before, "nothing was claimed");
    assert_eq!(w.status(&w.runs[0]).await, "queued");
}

// ---- POST /v1/worker/runs/{id}/heartbeat ----

#[tokio::test]
async fn a_heartbeat_answers_200_with_the_run_and_the_lease_from_now() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({"leaseSeconds": 60})).await;
    w.later(50);
    let reply = w.worker().post_empty(&heartbeat(&run)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["leaseExpiresAt"], "2026-04-03T10:35:50Z", "the default 300 s from now");
    assert_eq!(reply.body["run"], w.run(&run).await, "the run as the partner sees it");
    assert_eq!(reply.body["run"]["status"], "running");
    let reply = w.worker().post(&heartbeat(&run), &json!({"leaseSeconds": 10})).await;
    assert_eq!((reply.status, &reply.body["leaseExpiresAt"]), (200, &json!("2026-04-03T10:31:00Z")));
    let reply = w.worker().post(&heartbeat(&run), &json!({})).await;
    assert_eq!(reply.status, 200, "an empty object is the default too: {}", reply.body);
    assert_eq!(w.assessment_events(), [pair("assessment.started", &run)], "a heartbeat announces nothing");
}

#[tokio::test]
async fn a_heartbeat_keeps_the_run_past_its_first_lease() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({"leaseSeconds": 60})).await;
    w.later(45);
    assert_eq!(w.worker().post(&heartbeat(&run), &json!({"leaseSeconds": 60})).await.status, 200);
    w.later(45);
    assert_no_content(&w.other_worker().post_empty(CLAIM).await);
    assert_eq!(w.status(&run).await, "running");
    assert_eq!(w.worker().post(&complete(&run), &json!({"score": 80})).await.status, 200);
}

#[tokio::test]
async fn a_bad_heartbeat_is_400_and_leaves_the_lease_alone() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({"leaseSeconds": 60})).await;
    let before = w.snapshot().await;
    for (body, field) in [
        (json!({"leaseSeconds": 9}), "leaseSeconds"),
        (json!({"leaseSeconds": 3601}), "leaseSeconds"),
        (json!({"leaseSeconds": "x"}), "leaseSeconds"),
        (json!({"leaseSeconds": 1e30}), "leaseSeconds"),
        (json!({"leaseSeconds": -1}), "leaseSeconds"),
        (json!({"lease": 60}), "lease"),
    ] {
        w.worker().post(&heartbeat(&run), &body).await.field_error("INVALID_FIELD", field);
    }
    w.worker().post_raw(&heartbeat(&run), "{").await.error(400, "INVALID_JSON");
    assert_eq!(w.snapshot().await, before);
    // The lease was not extended by any of them: it ends after 60 s.
    w.later(61);
    assert_eq!(claim_one(&w.other_worker(), &json!({})).await, run, "the first lease ran out");
}

// ---- POST /v1/worker/runs/{id}/complete ----

#[tokio::test]
async fn completing_answers_200_with_the_completed_run_the_partner_now_sees() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    w.later(120);
    let reply = w.worker().post(&complete(&run), &results()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"run": {
            "id": run,
            "customerId": w.customer,
            "customerName": "Contoso Ltd",
            "product": "essential-eight",
            "maturityTarget": 2,
            "status": "completed",
            "score": 72,
            "findings": 14,
            "critical": 2,
            "high": 5,
            "medium": 4,
            "low": 3,
            "reportUrl": "https://reports.example/r/1.pdf",
            "createdAt": "2026-04-03T10:00:00Z",
            "startedAt": "2026-04-03T10:30:00Z",
            "completedAt": "2026-04-03T10:32:00Z",
        }})
    );
    assert_eq!(w.run(&run).await, reply.body["run"], "the partner sees the same run");
    assert_eq!(w.partner().runs_used().await, 1, "a completed run keeps its unit");
}

#[tokio::test]
async fn completing_announces_assessment_completed_with_the_score() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    assert_eq!(w.worker().post(&complete(&run), &results()).await.status, 200);
    assert_eq!(w.assessment_events(), [pair("assessment.started", &run), pair("assessment.completed", &run)]);
    let events = assessment_events(&w.app);
    let completed = &events[1];
    let partner = w.partner().me().await;
    assert_eq!(completed.to_partner.as_ref().map(|p| p.as_str()), partner["id"].as_str());
    assert_eq!(field(completed, "score"), &EventValue::Int(72));
    assert_eq!(field(completed, "findings"), &EventValue::Int(14));
    assert_eq!(text(completed, "status"), "completed");
}

#[tokio::test]
async fn counts_default_to_zero_and_the_score_may_be_0_or_100() {
    let w = World::new(2).await;
    let first = claim_one(&w.worker(), &json!({})).await;
    let reply = w.worker().post(&complete(&first), &json!({"score": 0})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body["run"];
    assert_eq!(
        [&body["score"], &body["findings"], &body["critical"], &body["high"], &body["medium"], &body["low"]],
        [&json!(0); 6]
    );
    assert_eq!(body.get("reportUrl"), None, "no report, no reportUrl");
    let second = claim_one(&w.worker(), &json!({})).await;
    let max = json!({"score": 100, "critical": 4294967295u32, "reportUrl": "http://reports.example/x"});
    let reply = w.worker().post(&complete(&second), &max).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!((&reply.body["run"]["score"], &reply.body["run"]["findings"]), (&json!(100), &json!(4294967295u32)));
}

#[tokio::test]
async fn a_bad_completion_is_400_naming_the_field_and_completes_nothing() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let before = w.snapshot().await;
    let worker = w.worker();
    let path = complete(&run);
    for body in [json!({}), json!({"score": null}), json!({"critical": 1, "reportUrl": "https://r.example/"})] {
        worker.post(&path, &body).await.field_error("MISSING_FIELD", "score");
    }
    for (body, field) in [
        (json!({"score": -1}), "score"),
        (json!({"score": 101}), "score"),
        (json!({"score": 256}), "score"),
        (json!({"score": "72"}), "score"),
        (json!({"score": 72.5}), "score"),
        (json!({"score": 1e30}), "score"),
        (json!({"score": true}), "score"),
        (json!({"score": 72, "critical": -1}), "critical"),
        (json!({"score": 72, "high": -5}), "high"),
        (json!({"score": 72, "medium": 4294967296u64}), "medium"),
        (json!({"score": 72, "low": 1e30}), "low"),
        (json!({"score": 72, "low": "3"}), "low"),
        (json!({"score": 72, "reportUrl": "ftp://reports.example/r.pdf"}), "reportUrl"),
        (json!({"score": 72, "reportUrl": "javascript:alert(1)"}), "reportUrl"),
        (json!({"score": 72, "reportUrl": "reports.example/r.pdf"}), "reportUrl"),
        (json!({"score": 72, "reportUrl": ""}), "reportUrl"),
        (json!({"score": 72, "reportUrl": 5}), "reportUrl"),
        (json!({"score": 72, "findings": 14}), "findings"),
    ] {
        worker.post(&path, &body).await.field_error("INVALID_FIELD", field);
    }
    worker.post_raw(&path, r#"{"score": 99999999999999999999999}"#).await.field_error("INVALID_FIELD", "score");
    worker.post_raw(&path, r#"{"score": 72,}"#).await.error(400, "INVALID_JSON");
    worker.post_raw(&path, "").await.error(400, "INVALID_JSON");
    worker.post_empty(&path).await.error(400, "INVALID_JSON");
    worker.post_raw(&path, "[72]").await.error(400, "INVALID_FIELD");
    assert_eq!(w.snapshot().await, before, "nothing changed");
    assert_eq!(w.status(&run).await, "running");
    // The run is still the worker's to complete.
    assert_eq!(worker.post(&path, &json!({"score": 1})).await.status, 200);
}

// ---- POST /v1/worker/runs/{id}/fail ----

#[tokio::test]
async fn failing_answers_200_with_the_failed_run_and_gives_the_unit_back() {
    let w = World::new(2).await;
    assert_eq!(w.partner().runs_used().await, 2);
    let run = claim_one(&w.worker(), &json!({})).await;
    w.later(10);
    let reply = w.worker().post(&fail(&run), &json!({"reason": "scanner exited with status 2"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"run": {
            "id": run,
            "customerId": w.customer,
            "customerName": "Contoso Ltd",
            "product": "essential-eight",
            "maturityTarget": 2,
            "status": "failed",
            "failureReason": "scanner exited with status 2",
            "createdAt": "2026-04-03T10:00:00Z",
            "startedAt": "2026-04-03T10:30:00Z",
            "completedAt": "2026-04-03T10:30:10Z",
        }})
    );
    assert_eq!(w.run(&run).await, reply.body["run"]);
    assert_eq!(w.partner().runs_used().await, 1, "the failed run's unit is given back");
}

#[tokio::test]
async fn failing_announces_assessment_failed_with_the_reason() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let reason = "tenant consent missing";
    assert_eq!(w.worker().post(&fail(&run), &json!({ "reason": reason })).await.status, 200);
    assert_eq!(w.assessment_events(), [pair("assessment.started", &run), pair("assessment.failed", &run)]);
    let events = assessment_events(&w.app);
    let partner = w.partner().me().await;
    assert_eq!(events[1].to_partner.as_ref().map(|p| p.as_str()), partner["id"].as_str());
    assert_eq!(text(&events[1], "error"), reason);
    assert_eq!(text(&events[1], "status"), "failed");
}

#[tokio::test]
async fn a_long_reason_is_kept_to_2000_characters() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let reason = "ü".repeat(5000);
    let reply = w.worker().post(&fail(&run), &json!({ "reason": reason })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["run"]["failureReason"].as_str().unwrap().chars().count(), 2000);
}

#[tokio::test]
async fn a_failure_without_a_reason_is_400_and_fails_nothing() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let before = w.snapshot().await;
    let worker = w.worker();
    let path = fail(&run);
    for body in [json!({}), json!({"reason": null}), json!({"reason": ""}), json!({"reason": "   "})] {
        let reply = worker.post(&path, &body).await;
        let message = reply.error(400, "MISSING_FIELD");
        assert!(message.contains("'reason'"), "{message}");
    }
    for body in [json!({"reason": 5}), json!({"reason": ["x"]}), json!({"reason": "x", "code": 2})] {
        let reply = worker.post(&path, &body).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_error(&reply.body, "INVALID_FIELD");
    }
    worker.post_raw(&path, "{\"reason\": ").await.error(400, "INVALID_JSON");
    worker.post_empty(&path).await.error(400, "INVALID_JSON");
    assert_eq!(w.snapshot().await, before, "nothing changed, no unit given back");
    assert_eq!(w.status(&run).await, "running");
}

// ---- 404 and 409 ----

#[tokio::test]
async fn an_unknown_or_malformed_run_is_404_on_every_run_route() {
    let w = World::new(1).await;
    claim_one(&w.worker(), &json!({})).await;
    let before = w.snapshot().await;
    for run in [UNKNOWN_RUN, "nope", "run_123", "cust_000000000000000000000001", "RUN_0000000000000000000000FF"] {
        let worker = w.worker();
        worker.post_empty(&heartbeat(run)).await.error(404, "NOT_FOUND");
        worker.post(&complete(run), &json!({"score": 50})).await.error(404, "NOT_FOUND");
        worker.post(&fail(run), &json!({"reason": "x"})).await.error(404, "NOT_FOUND");
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn another_workers_run_is_409_and_stays_theirs() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let before = w.snapshot().await;
    let intruder = w.other_worker();
    intruder.post_empty(&heartbeat(&run)).await.error(409, "RUN_STATE_CONFLICT");
    intruder.post(&complete(&run), &json!({"score": 1})).await.error(409, "RUN_STATE_CONFLICT");
    intruder.post(&fail(&run), &json!({"reason": "mine now"})).await.error(409, "RUN_STATE_CONFLICT");
    assert_eq!(w.snapshot().await, before);
    assert_eq!(w.worker().post(&complete(&run), &json!({"score": 64})).await.status, 200);
}

#[tokio::test]
async fn a_queued_run_is_409_until_it_is_claimed() {
    let w = World::new(1).await;
    let run = &w.runs[0];
    let before = w.snapshot().await;
    w.worker().post_empty(&heartbeat(run)).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&complete(run), &json!({"score": 1})).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&fail(run), &json!({"reason": "x"})).await.error(409, "RUN_STATE_CONFLICT");
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_completed_run_cannot_be_completed_failed_or_kept_alive_again() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let done = w.worker().post(&complete(&run), &results()).await;
    assert_eq!(done.status, 200);
    let before = w.snapshot().await;
    w.worker().post(&complete(&run), &results()).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&complete(&run), &json!({"score": 3})).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&fail(&run), &json!({"reason": "late"})).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post_empty(&heartbeat(&run)).await.error(409, "RUN_STATE_CONFLICT");
    assert_eq!(w.snapshot().await, before, "the unit stays used and no event follows");
    assert_eq!(w.run(&run).await, done.body["run"]);
}

#[tokio::test]
async fn a_failed_run_cannot_be_failed_or_completed_again() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    assert_eq!(w.worker().post(&fail(&run), &json!({"reason": "boom"})).await.status, 200);
    let before = w.snapshot().await;
    w.worker().post(&fail(&run), &json!({"reason": "boom"})).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&complete(&run), &json!({"score": 3})).await.error(409, "RUN_STATE_CONFLICT");
    assert_eq!(w.snapshot().await, before, "the unit is given back once");
    assert_eq!(w.partner().runs_used().await, 0);
}

// ---- leases ----

#[tokio::test]
async fn an_expired_lease_puts_the_run_back_for_another_worker_without_a_second_started() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({"leaseSeconds": 60})).await;
    w.later(60);
    assert_no_content(&w.other_worker().post_empty(CLAIM).await);
    w.later(1);
    // A claim for another product still sweeps: the run is back in the queue, nobody's.
    assert_no_content(&w.other_worker().post(CLAIM, &json!({"products": ["nist-csf"]})).await);
    assert_eq!(w.status(&run).await, "queued");
    let before = w.snapshot().await;
    w.worker().post_empty(&heartbeat(&run)).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&complete(&run), &json!({"score": 9})).await.error(409, "RUN_STATE_CONFLICT");
    w.worker().post(&fail(&run), &json!({"reason": "x"})).await.error(409, "RUN_STATE_CONFLICT");
    assert_eq!(w.snapshot().await, before);
    let reply = w.other_worker().post_empty(CLAIM).await;
    assert_eq!((reply.status, reply.body["run"]["id"].as_str()), (200, Some(run.as_str())), "{}", reply.body);
    assert_eq!(w.run(&run).await["startedAt"], "2026-04-03T10:30:00Z", "startedAt is the first claim's");
    w.worker().post_empty(&heartbeat(&run)).await.error(409, "RUN_STATE_CONFLICT");
    assert_eq!(w.other_worker().post(&complete(&run), &json!({"score": 77})).await.status, 200);
    assert_eq!(w.assessment_events(), [pair("assessment.started", &run), pair("assessment.completed", &run)]);
}

#[tokio::test]
async fn the_third_expired_lease_fails_the_run_tells_the_partner_and_gives_the_unit_back() {
    let w = World::new(1).await;
    let run = &w.runs[0];
    assert_eq!(w.partner().runs_used().await, 1);
    for attempt in 1..=3 {
        let worker = if attempt % 2 == 1 { w.worker() } else { w.other_worker() };
        assert_eq!(&claim_one(&worker, &json!({"leaseSeconds": 10})).await, run, "attempt {attempt}");
        w.later(11);
    }
    assert_no_content(&w.worker().post_empty(CLAIM).await);
    let seen = w.run(run).await;
    assert_eq!(seen["status"], "failed", "{seen}");
    let reason = seen["failureReason"].as_str().unwrap_or_else(|| panic!("no failureReason in {seen}"));
    assert!(!reason.is_empty());
    assert_eq!(w.partner().runs_used().await, 0, "the abandoned run's unit is given back");
    assert_eq!(w.assessment_events(), [pair("assessment.started", run), pair("assessment.failed", run)]);
    let events = assessment_events(&w.app);
    assert_eq!(text(&events[1], "error"), reason, "the event carries the reason the partner sees");
    assert_no_content(&w.other_worker().post_empty(CLAIM).await);
}

#[tokio::test]
async fn eight_concurrent_claimers_never_share_a_run() {
    let w = World::new(40).await;
    let (_, more) = w.app.worker("scanner-3").await;
    let keys = [&w.workers[0], &w.workers[1], &more];
    let claimers = (0..8).map(|i| {
        let worker = w.app.as_worker(keys[i % keys.len()]);
        async move {
            let mut mine = Vec::new();
            loop {
                let reply = worker.post_empty(CLAIM).await;
                if reply.status == 204 {
                    return mine;
                }
                assert_eq!(reply.status, 200, "{}", reply.body);
                let run = reply.body["run"]["id"].as_str().unwrap().to_owned();
                let done = worker.post(&complete(&run), &json!({"score": 50})).await;
                assert_eq!(done.status, 200, "{}", done.body);
                mine.push(run);
            }
        }
    });
    let claimed: Vec<String> = futures_util::future::join_all(claimers).await.into_iter().flatten().collect();
    let unique: BTreeSet<&String> = claimed.iter().collect();
    assert_eq!((claimed.len(), unique.len()), (40, 40));
    assert_eq!(unique, w.runs.iter().collect());
    let list = w.partner().runs().await;
    assert!(list["runs"].as_array().unwrap().iter().all(|r| r["status"] == "completed"), "{list}");
}

// ---- keys, methods, sizes ----

#[tokio::test]
async fn every_worker_route_wants_a_valid_worker_key() {
    let w = World::new(1).await;
    let (_, distributor) = w.app.distributor(partnerd_domain::account::AccountStatus::Active).await;
    let run = &w.runs[0];
    let before = w.snapshot().await;
    for path in routes(run) {
        let res = w.app.client.post(w.app.url(&path)).json(&json!({"score": 5, "reason": "x"})).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        let message = assert_error(&res.json().await.unwrap(), "MISSING_KEY");
        assert!(message.contains("X-Worker-Key"), "the message names the header: {message}");
        // A partner key where the worker key goes, or a distributor key.
        w.app.as_worker(&w.partner).post_empty(&path).await.error(401, "INVALID_KEY");
        w.app.as_worker(&distributor).post_empty(&path).await.error(401, "INVALID_KEY");
        w.app.as_worker_key("wk_live_not-a-real-key").post_empty(&path).await.error(401, "INVALID_KEY");
        w.app.as_worker_key("").post_empty(&path).await.error(401, "INVALID_KEY");
        // Partner and distributor keys in their own headers open no worker route.
        w.app.as_partner(&w.partner).post_empty(&path).await.error(401, "MISSING_KEY");
        w.app.as_distributor(&distributor).post_empty(&path).await.error(401, "MISSING_KEY");
    }
    assert_eq!(w.snapshot().await, before, "nothing was claimed or changed");
}

#[tokio::test]
async fn a_worker_key_opens_no_partner_or_distributor_route() {
    let w = World::new(1).await;
    let key = w.workers[0].reveal();
    for (header, path) in [
        ("X-Partner-Key", "/v1/partner/me"),
        ("X-Partner-Key", "/v1/partner/assessments"),
        ("X-Distributor-Key", "/v1/distributor/me"),
        ("X-Distributor-Key", "/v1/distributor/partners"),
    ] {
        w.app.with_header(header, key).get(path).await.error(401, "INVALID_KEY");
        w.app.as_worker(&w.workers[0]).get(path).await.error(401, "MISSING_KEY");
    }
    let trigger = json!({"customerId": w.customer, "product": "essential-eight"});
    w.app.with_header("X-Partner-Key", key).post("/v1/partner/assessments", &trigger).await.error(401, "INVALID_KEY");
    assert_eq!(w.partner().runs_used().await, 1, "nothing was triggered");
}

#[tokio::test]
async fn the_worker_routes_answer_under_api_v1_too() {
    let w = World::new(1).await;
    let reply = w.worker().post_empty("/api/v1/worker/runs/claim").await;
    assert_eq!((reply.status, reply.body["run"]["id"].as_str()), (200, Some(w.runs[0].as_str())), "{}", reply.body);
    let reply = w.worker().post(&format!("/api{}", complete(&w.runs[0])), &json!({"score": 5})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn other_methods_are_405_on_every_worker_route() {
    let w = World::new(1).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let before = w.snapshot().await;
    for path in routes(&run) {
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            w.worker().send(method.clone(), &path, None).await.error(405, "METHOD_NOT_ALLOWED");
        }
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_body_over_1_mib_is_413_on_every_worker_route() {
    let w = World::new(2).await;
    let run = claim_one(&w.worker(), &json!({})).await;
    let before = w.snapshot().await;
    for path in routes(&run) {
        w.worker().post_raw(&path, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    }
    assert_eq!(w.snapshot().await, before, "nothing was claimed or ended");
}
