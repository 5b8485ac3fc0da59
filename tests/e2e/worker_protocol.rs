//! The worker protocol through the real binary: worker keys and account keys never open each
//! other's routes, a run goes from a partner's trigger through a worker to its end, and on
//! PostgreSQL eight workers spread over two `partnerd` processes take each of 200 queued runs
//! exactly once.

use std::collections::{BTreeMap, BTreeSet};

use partnerd_e2e::{Endpoint, Reply, Server, str_field};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, PartnerApi, array, assert_error, assert_ok, assert_status,
    create_distributor, create_partner, create_worker, on_both_backends, on_postgres_only,
};

on_both_backends!(
    worker_keys_and_account_keys_never_open_each_others_routes,
    a_run_goes_from_the_partners_trigger_through_a_worker_to_completed,
    a_failed_run_gives_its_unit_back_and_cannot_end_twice,
    an_abandoned_run_goes_back_to_the_queue_when_its_lease_runs_out,
    a_claim_listing_a_product_many_times_is_no_server_error,
    a_nul_in_a_reason_or_report_url_is_no_server_error,
);
on_postgres_only!(eight_claimers_on_two_processes_take_each_of_200_runs_exactly_once);

const WORKER_HEADER: &str = "X-Worker-Key";
const CLAIM: &str = "/v1/worker/runs/claim";

/// No per-key rate limit of any kind: the scenarios send many requests per key.
const NO_LIMITS: [&str; 6] = ["--partner-rate-limit", "0", "--distributor-rate-limit", "0", "--worker-rate-limit", "0"];

/// A worker key aimed at one server.
#[derive(Debug, Clone)]
struct WorkerApi {
    endpoint: Endpoint,
    key: String,
}

impl WorkerApi {
    fn new(server: &Server, key: &str) -> Self {
        Self { endpoint: server.endpoint(), key: key.to_owned() }
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        let body = Some(body.to_string().into_bytes());
        self.endpoint.send(Method::POST, path, &[(WORKER_HEADER, &self.key)], body).await
    }

    /// `POST …/claim`: the claimed run's body, or `None` on `204`.
    async fn claim(&self) -> Option<Value> {
        let reply = self.post(CLAIM, &json!({"leaseSeconds": 600})).await;
        if reply.status == 204 {
            assert!(reply.text.is_empty(), "a 204 has no body: {:?}", reply.text);
            return None;
        }
        Some(assert_ok(&reply).clone())
    }

    async fn complete(&self, run: &str, body: &Value) -> Reply {
        self.post(&format!("/v1/worker/runs/{run}/complete"), body).await
    }

    async fn fail(&self, run: &str, reason: &str) -> Reply {
        self.post(&format!("/v1/worker/runs/{run}/fail"), &json!({ "reason": reason })).await
    }
}

/// `leaseExpiresAt` is an RFC 3339 UTC time about `seconds` from now (in the future, and not
/// beyond it).
#[track_caller]
fn assert_lease_ahead(claimed: &Value, seconds: i64) {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let text = str_field(claimed, "leaseExpiresAt");
    assert!(text.ends_with('Z'), "{text}");
    let at = OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"));
    let now = OffsetDateTime::now_utc();
    assert!(at > now && at <= now + time::Duration::seconds(seconds), "lease {text} is not within {seconds} s of now");
}

/// A partner on `plan` with `customers` customers, on `server`.
async fn partner_with_customers(ctx: &Ctx, server: &Server, plan: &str, customers: usize) -> (PartnerApi, Vec<String>) {
    let created = create_partner(ctx, "Scan MSP", "ops@scan-msp.example", plan, None).await;
    let api = PartnerApi::new(server, str_field(&created, "key"));
    let ids = if customers == 0 { vec![] } else { api.bulk_customers(customers, "Scan").await };
    (api, ids)
}

/// Every run of the partner (up to 1000), by id.
async fn runs_by_id(api: &PartnerApi) -> BTreeMap<String, Value> {
    let reply = api.get("/v1/partner/assessments?limit=1000").await;
    array(assert_ok(&reply), "runs").iter().map(|r| (str_field(r, "id").to_owned(), r.clone())).collect()
}

async fn worker_keys_and_account_keys_never_open_each_others_routes(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let worker = str_field(&create_worker(ctx, "scanner-iso").await, "key").to_owned();
    let partner =
        str_field(&create_partner(ctx, "Iso MSP", "ops@iso.example", "starter", None).await, "key").to_owned();
    let distributor =
        str_field(&create_distributor(ctx, "Iso Distribution", "ops@iso-dist.example").await, "key").to_owned();

    // Each key works where it belongs.
    assert_ok(&server.get_with("/v1/partner/me", PARTNER_HEADER, &partner).await);
    assert_ok(&server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, &distributor).await);
    let nothing = server.endpoint().send(Method::POST, CLAIM, &[(WORKER_HEADER, &worker)], None).await;
    assert_eq!(nothing.status, 204, "the worker key claims (nothing is queued): {}", nothing.text);

    // A worker key in an account's header is not that account's key.
    assert_error(&server.get_with("/v1/partner/me", PARTNER_HEADER, &worker).await, 401, "INVALID_KEY");
    assert_error(&server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, &worker).await, 401, "INVALID_KEY");
    // And in its own header it opens no account route.
    assert_error(&server.get_with("/v1/partner/me", WORKER_HEADER, &worker).await, 401, "MISSING_KEY");
    assert_error(&server.get_with("/v1/distributor/me", WORKER_HEADER, &worker).await, 401, "MISSING_KEY");

    // Account keys in the worker's header are no worker keys, on every worker route.
    let run = "run_0000000000000000000000ff";
    for path in [
        CLAIM.to_owned(),
        format!("/v1/worker/runs/{run}/heartbeat"),
        format!("/v1/worker/runs/{run}/complete"),
        format!("/v1/worker/runs/{run}/fail"),
    ] {
        for key in [&partner, &distributor] {
            let reply = server.endpoint().send(Method::POST, &path, &[(WORKER_HEADER, key)], None).await;
            assert_error(&reply, 401, "INVALID_KEY");
        }
        for (header, key) in [(PARTNER_HEADER, &partner), (DISTRIBUTOR_HEADER, &distributor)] {
            let reply = server.endpoint().send(Method::POST, &path, &[(header, key)], None).await;
            let message = assert_error(&reply, 401, "MISSING_KEY");
            assert!(message.contains(WORKER_HEADER), "the message names the header to use: {message}");
        }
    }
}

async fn a_run_goes_from_the_partners_trigger_through_a_worker_to_completed(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let (partner, customers) = partner_with_customers(ctx, &server, "professional", 1).await;
    let worker = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-1").await, "key"));
    let other = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-2").await, "key"));
    let trigger = json!({"customerId": customers[0], "product": "nist-csf", "maturityTarget": 4});
    let reply = partner.post("/v1/partner/assessments", &trigger).await;
    let run = str_field(assert_status(&reply, 202), "id").to_owned();

    let claimed = worker.claim().await.expect("the queued run");
    let me = partner.me().await;
    assert_eq!(
        claimed["run"],
        json!({
            "id": run,
            "customerId": customers[0],
            "customerName": "Scan 0",
            "tenantId": crate::support::tenant_guid("Scan", 0),
            "partnerId": me["id"],
            "product": "nist-csf",
            "maturityTarget": 4,
        })
    );
    assert_lease_ahead(&claimed, 600);
    assert!(other.claim().await.is_none(), "one run, one claim");
    let seen = partner.get(&format!("/v1/partner/assessments/{run}")).await;
    assert_eq!(assert_ok(&seen)["status"], "running");

    let heartbeat = worker.post(&format!("/v1/worker/runs/{run}/heartbeat"), &json!({"leaseSeconds": 120})).await;
    assert_eq!(assert_ok(&heartbeat)["run"]["status"], "running");
    let stolen = other.complete(&run, &json!({"score": 1})).await;
    assert_error(&stolen, 409, "RUN_STATE_CONFLICT");
    let bad = worker.complete(&run, &json!({"score": 101})).await;
    assert_error(&bad, 400, "INVALID_FIELD");

    let results = json!({"score": 72, "critical": 2, "high": 5, "medium": 4, "low": 3,
        "reportUrl": "https://reports.example/r/1.pdf"});
    let done = worker.complete(&run, &results).await;
    let done = assert_ok(&done)["run"].clone();
    assert_eq!((&done["status"], &done["score"], &done["findings"]), (&json!("completed"), &json!(72), &json!(14)));
    let seen = partner.get(&format!("/v1/partner/assessments/{run}")).await;
    assert_eq!(assert_ok(&seen), &done, "the partner sees what the worker reported");
    assert_error(&worker.complete(&run, &results).await, 409, "RUN_STATE_CONFLICT");
    assert_eq!(partner.runs_used().await, 1);
}

async fn a_failed_run_gives_its_unit_back_and_cannot_end_twice(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let (partner, customers) = partner_with_customers(ctx, &server, "starter", 2).await;
    partner.bulk_trigger_all(&customers).await;
    assert_eq!(partner.runs_used().await, 2);
    let worker = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-f").await, "key"));
    let claimed = worker.claim().await.expect("a queued run");
    let run = str_field(&claimed["run"], "id").to_owned();
    let failed = worker.fail(&run, "tenant consent missing").await;
    let failed = assert_ok(&failed)["run"].clone();
    assert_eq!((&failed["status"], &failed["failureReason"]), (&json!("failed"), &json!("tenant consent missing")));
    assert_eq!(partner.runs_used().await, 1, "the failed run's unit is given back");
    assert_error(&worker.fail(&run, "again").await, 409, "RUN_STATE_CONFLICT");
    assert_error(&worker.complete(&run, &json!({"score": 5})).await, 409, "RUN_STATE_CONFLICT");
    assert_eq!(partner.runs_used().await, 1, "given back once");
    let runs = runs_by_id(&partner).await;
    assert_eq!(runs[&run]["status"], "failed");
}

async fn eight_claimers_on_two_processes_take_each_of_200_runs_exactly_once(ctx: &Ctx) {
    const RUNS: usize = 200;
    const CLAIMERS: usize = 8;
    let servers = [Server::serve_with(ctx.url(), &NO_LIMITS).await, Server::serve_with(ctx.url(), &NO_LIMITS).await];
    let (partner, customers) = partner_with_customers(ctx, &servers[0], "enterprise", 50).await;
    for _ in 0..RUNS / customers.len() {
        partner.bulk_trigger_all(&customers).await;
    }
    let queued = runs_by_id(&partner).await;
    assert_eq!(queued.len(), RUNS);
    assert!(queued.values().all(|r| r["status"] == "queued"));

    let mut claimers = tokio::task::JoinSet::new();
    for i in 0..CLAIMERS {
        let key = str_field(&create_worker(ctx, &format!("scanner-{i}")).await, "key").to_owned();
        let worker = WorkerApi::new(&servers[i % servers.len()], &key);
        claimers.spawn(async move {
            let mut mine = Vec::new();
            while let Some(claimed) = worker.claim().await {
                let run = str_field(&claimed["run"], "id").to_owned();
                let done = worker.complete(&run, &json!({"score": 50, "high": 1})).await;
                assert_eq!(done.status, 200, "completing {run}, which this worker claimed: {}", done.text);
                mine.push(run);
            }
            (i, mine)
        });
    }
    let mut holder: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_server = [0; 2];
    while let Some(joined) = claimers.join_next().await {
        let (i, mine) = joined.expect("a claimer panicked");
        per_server[i % 2] += mine.len();
        for run in mine {
            if let Some(first) = holder.insert(run.clone(), i) {
                panic!("{run} was claimed by claimer {first} and claimer {i}");
            }
        }
    }
    assert_eq!(
        holder.keys().collect::<BTreeSet<_>>(),
        queued.keys().collect::<BTreeSet<_>>(),
        "every queued run was claimed exactly once"
    );
    assert!(per_server.iter().all(|&n| n > 0), "both processes handed out runs: {per_server:?}");
    let ended = runs_by_id(&partner).await;
    let not_completed: Vec<&Value> = ended.values().filter(|r| r["status"] != "completed").collect();
    assert!(not_completed.is_empty(), "every run ended completed: {not_completed:?}");
    assert_eq!(partner.runs_used().await, RUNS as i64);
    let late = str_field(&create_worker(ctx, "scanner-late").await, "key").to_owned();
    for server in &servers {
        assert!(WorkerApi::new(server, &late).claim().await.is_none(), "nothing is left to claim");
    }
}

async fn an_abandoned_run_goes_back_to_the_queue_when_its_lease_runs_out(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let (partner, customers) = partner_with_customers(ctx, &server, "starter", 1).await;
    partner.bulk_trigger_all(&customers).await;
    let crashed = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-crashed").await, "key"));
    let next = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-next").await, "key"));
    let reply = crashed.post(CLAIM, &json!({"leaseSeconds": 10})).await;
    let run = str_field(&assert_ok(&reply)["run"], "id").to_owned();
    // Nobody claims: the server's own sweep must notice the lease ran out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    loop {
        let status = runs_by_id(&partner).await[&run]["status"].clone();
        if status == "queued" {
            break;
        }
        assert_eq!(status, "running", "the run is held until its lease runs out");
        assert!(std::time::Instant::now() < deadline, "the run never went back to the queue");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_error(&crashed.complete(&run, &json!({"score": 1})).await, 409, "RUN_STATE_CONFLICT");
    let again = next.claim().await.expect("the requeued run");
    assert_eq!(again["run"]["id"], run.as_str());
    assert_error(&crashed.fail(&run, "back from the dead").await, 409, "RUN_STATE_CONFLICT");
    assert_eq!(assert_ok(&next.complete(&run, &json!({"score": 33})).await)["run"]["status"], "completed");
    assert_eq!(partner.runs_used().await, 1);
}

/// A request the server cannot store must be refused (`400`) and change nothing, or be
/// accepted (`200`) and stored; never `500`.
async fn a_claim_listing_a_product_many_times_is_no_server_error(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let (partner, customers) = partner_with_customers(ctx, &server, "starter", 1).await;
    partner.bulk_trigger_all(&customers).await;
    let worker = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-dup").await, "key"));
    let products = vec!["essential-eight"; 45_000];
    let body = json!({ "products": products });
    assert!(body.to_string().len() < 1024 * 1024, "under the body limit");
    let reply = worker.post(CLAIM, &body).await;
    match reply.status {
        200 => assert_eq!(reply.body["run"]["product"], "essential-eight", "{}", reply.text),
        400 => {
            assert_error(&reply, 400, "INVALID_FIELD");
            assert_eq!(runs_by_id(&partner).await.values().next().unwrap()["status"], "queued");
        }
        other => panic!("{other}: {}", reply.text),
    }
    let products = vec!["nist-csf"; 80_000];
    let body = json!({ "products": products });
    assert!(body.to_string().len() < 1024 * 1024, "under the body limit");
    let reply = worker.post(CLAIM, &body).await;
    assert!(reply.status == 204 || reply.status == 400, "{}: {}", reply.status, reply.text);
}

async fn a_nul_in_a_reason_or_report_url_is_no_server_error(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let (partner, customers) = partner_with_customers(ctx, &server, "starter", 2).await;
    partner.bulk_trigger_all(&customers).await;
    let worker = WorkerApi::new(&server, str_field(&create_worker(ctx, "scanner-nul").await, "key"));
    let first = str_field(&worker.claim().await.expect("a run")["run"], "id").to_owned();
    let second = str_field(&worker.claim().await.expect("a run")["run"], "id").to_owned();
    let failed = worker.fail(&first, "scanner output: \u{0}\u{1b}[31mERROR").await;
    let report = json!({"score": 5, "reportUrl": "https://reports.example/a\u{0}b"});
    let completed = worker.complete(&second, &report).await;
    let ends = [(first, failed, "failed"), (second, completed, "completed")];
    for (run, reply, ended) in ends {
        let status = &runs_by_id(&partner).await[&run]["status"];
        match reply.status {
            200 => assert_eq!(status, ended, "{}", reply.text),
            400 => {
                assert_error(&reply, 400, "INVALID_FIELD");
                assert_eq!(status, "running", "a refused end changes nothing");
            }
            other => panic!("{other} for {run}: {}", reply.text),
        }
    }
}
