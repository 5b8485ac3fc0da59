//! `partnerd worker` as an operator runs it: a real worker process, with a scanner script written
//! for the test, executes runs triggered through the Partner API, and the partner sees what the
//! scanner reported: its numbers, or its stderr as the failure reason (with the run's unit of the
//! monthly limit given back). On SIGTERM the worker claims nothing more, lets the running scan
//! finish, reports it and exits 0.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use partnerd_e2e::{Server, key_like_tokens, str_field};
use serde_json::{Value, json};

use crate::support::{
    Ctx, PartnerApi, assert_ok, assert_status, create_customer_as, create_partner, create_worker, on_both_backends,
    tenant_guid,
};

on_both_backends!(
    a_worker_completes_a_run_with_its_scanners_numbers,
    a_failing_scanner_fails_the_run_with_its_stderr_and_gives_the_unit_back,
    timeouts_and_unreadable_output_fail_runs,
    sigterm_lets_the_running_scan_finish_and_claims_nothing_more,
    a_worker_the_server_refuses_exits_with_the_reason,
);

/// How long a run may take to settle, or the worker to exit: generous for small CI machines;
/// every wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(30);

/// The worker's flags in every scenario: it asks often, so the scenarios are quick.
const QUICK: [&str; 2] = ["--poll-interval", "100ms"];

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A directory of its own for one scenario's scanner, its traces and the worker's log.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "partnerd_e2e_worker_{}_{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes an executable `sh` script `scanner` whose body may use `$DIR` (this directory);
    /// returns the `--exec` that runs it.
    fn scanner(&self, body: &str) -> String {
        let path = self.path("scanner");
        std::fs::write(&path, format!("#!/bin/sh\nDIR='{}'\n{body}\n", self.0.display())).expect("write the scanner");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the scanner");
        }
        format!("'{}'", path.display())
    }

    /// Waits until `name` exists (the scanner writes it).
    async fn wait_for(&self, name: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.path(name).exists() {
            assert!(Instant::now() < deadline, "the scanner never wrote {name} within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `partnerd worker`, given its key the recommended way (`PARTNERD_WORKER_KEY`), its
/// logs in a file. Killed on drop; its logs are printed when the scenario fails.
struct Worker {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Worker {
    async fn start(server: &Server, key: &str, exec: &str, scratch: &Scratch, args: &[&str]) -> Self {
        let log = scratch.path("worker.log");
        let mut cmd = tokio::process::Command::new(partnerd_e2e::binary());
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("PARTNERD_") || text == "RUST_LOG" {
                cmd.env_remove(&name);
            }
        }
        cmd.args(["worker", "--server", server.base_url(), "--exec", exec])
            .args(QUICK)
            .args(args)
            .env("PARTNERD_WORKER_KEY", key)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the worker log"))
            .kill_on_drop(true);
        Self { child: cmd.spawn().expect("spawn partnerd worker"), log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `SIGTERM`, as `systemctl stop` or `docker stop` does.
    fn terminate(&self) {
        let pid = self.child.id().expect("the worker is running");
        let sent = std::process::Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    }

    /// Waits for the process to exit by itself.
    async fn exit(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the worker did not exit within {WAIT:?}; its log:\n{}", self.logs()))
            .expect("wait for the worker")
    }

    /// Its logs carry no key, neither its own nor any other.
    #[track_caller]
    fn assert_logs_hold_no_key(&self) {
        let logs = self.logs();
        assert!(key_like_tokens(&logs).is_empty(), "the worker logged a key:\n{logs}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- partnerd worker log ---\n{}--- end of worker log ---", self.logs());
        }
    }
}

/// A starter partner with one customer per label, a worker account, and a server whose rate
/// limits stay out of the way of a worker that polls every 100 ms.
struct World {
    server: Server,
    api: PartnerApi,
    worker_key: String,
    customers: Vec<String>,
}

async fn world(ctx: &Ctx, labels: &[&str]) -> World {
    let created = create_partner(ctx, "Runner MSP", "ops@runner-msp.example", "starter", None).await;
    let worker = create_worker(ctx, "scanner-1").await;
    let server = Server::serve_with(ctx.url(), &["--partner-rate-limit", "0", "--worker-rate-limit", "0"]).await;
    let api = PartnerApi::new(&server, str_field(&created, "key"));
    let mut customers = Vec::new();
    for label in labels {
        customers.push(str_field(&create_customer_as(&api, label, 0).await, "id").to_owned());
    }
    World { server, api, worker_key: str_field(&worker, "key").to_owned(), customers }
}

/// `POST /v1/partner/assessments` for an `essential-eight` run at maturity 3: `202 queued`.
async fn trigger(api: &PartnerApi, customer: &str) -> String {
    let reply = api
        .post(
            "/v1/partner/assessments",
            &json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3}),
        )
        .await;
    let run = assert_status(&reply, 202);
    assert_eq!(run["status"], "queued", "{}", reply.text);
    str_field(run, "id").to_owned()
}

/// `GET /v1/partner/assessments/{id}`.
async fn run(api: &PartnerApi, id: &str) -> Value {
    assert_ok(&api.get(&format!("/v1/partner/assessments/{id}")).await).clone()
}

/// Polls the partner's view of run `id` until it is `completed` or `failed`; returns it.
async fn settled(api: &PartnerApi, worker: &Worker, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = run(api, id).await;
        if seen["status"] == "completed" || seen["status"] == "failed" {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} did not settle within {WAIT:?}; last seen {seen}; worker log:\n{}",
            worker.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_worker_completes_a_run_with_its_scanners_numbers(ctx: &Ctx) {
    let w = world(ctx, &["Contoso"]).await;
    let id = trigger(&w.api, &w.customers[0]).await;
    assert_eq!(run(&w.api, &id).await["status"], "queued", "nothing executes runs until a worker runs");
    assert_eq!(w.api.runs_used().await, 1);

    let scratch = Scratch::new();
    // The scanner keeps its input and what it could see of the worker key, logs on stderr, and
    // prints fields the protocol does not know next to the result.
    let exec = scratch.scanner(
        r#"cat > "$DIR/input.json"
echo "${PARTNERD_WORKER_KEY:-unset}" > "$DIR/key-seen-by-scanner"
echo "scanning the tenant" >&2
echo '{"score": 72, "critical": 2, "high": 5, "medium": 4, "low": 3, "reportUrl": "https://reports.example.com/r/72", "summary": "made up by the test", "engine": {"version": "9.9"}}'"#,
    );
    let worker =
        Worker::start(&w.server, &w.worker_key, &exec, &scratch, &["--products", "essential-eight,nist-csf"]).await;

    let done = settled(&w.api, &worker, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    for (field, expected) in [
        ("score", json!(72)),
        ("findings", json!(14)),
        ("critical", json!(2)),
        ("high", json!(5)),
        ("medium", json!(4)),
        ("low", json!(3)),
        ("reportUrl", json!("https://reports.example.com/r/72")),
    ] {
        assert_eq!(done[field], expected, "{field} of {done}");
    }
    assert!(done["failureReason"].is_null(), "{done}");
    assert!(done["startedAt"].is_string() && done["completedAt"].is_string(), "{done}");
    assert_eq!(w.api.runs_used().await, 1, "a completed run keeps its unit");

    // The scanner got the claim: the run and the tenant to assess.
    let input: Value = serde_json::from_str(&scratch.read("input.json")).expect("the scanner's stdin is JSON");
    let claimed = &input["run"];
    assert_eq!(claimed["id"], id.as_str(), "{input}");
    assert_eq!(claimed["customerId"], w.customers[0].as_str(), "{input}");
    assert_eq!(claimed["customerName"], "Contoso 0", "{input}");
    assert_eq!(claimed["tenantId"], tenant_guid("Contoso", 0), "{input}");
    assert_eq!(claimed["product"], "essential-eight", "{input}");
    assert_eq!(claimed["maturityTarget"], 3, "{input}");
    assert!(input["leaseExpiresAt"].is_string(), "{input}");
    assert_eq!(scratch.read("key-seen-by-scanner").trim(), "unset", "the scanner must not see the worker key");
    let logs = worker.logs();
    assert!(logs.contains(&id), "the worker logs the runs it handles:\n{logs}");
    worker.assert_logs_hold_no_key();
}

async fn a_failing_scanner_fails_the_run_with_its_stderr_and_gives_the_unit_back(ctx: &Ctx) {
    let w = world(ctx, &["Contoso"]).await;
    let id = trigger(&w.api, &w.customers[0]).await;
    assert_eq!(w.api.runs_used().await, 1);

    let scratch = Scratch::new();
    // 3,000 characters of noise, then the line that explains: only the tail reaches the partner.
    let exec = scratch.scanner(
        r#"cat > /dev/null
i=0; while [ $i -lt 60 ]; do printf 'noise-noise-noise-noise-noise-noise-noise-noise-\n' >&2; i=$((i+1)); done
echo "tenant consent missing for Contoso" >&2
echo '{"score": 99}'
exit 3"#,
    );
    let worker = Worker::start(&w.server, &w.worker_key, &exec, &scratch, &[]).await;

    let done = settled(&w.api, &worker, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let reason = str_field(&done, "failureReason");
    assert!(reason.ends_with("tenant consent missing for Contoso"), "the stderr tail is the reason: {reason:?}");
    assert!(reason.chars().count() <= 1000, "only the tail of stderr: {} characters", reason.chars().count());
    assert!(done["score"].is_null(), "a failed scan's stdout is not a result: {done}");
    assert_eq!(w.api.runs_used().await, 0, "a failed run gives its unit back");
    worker.assert_logs_hold_no_key();
}

async fn timeouts_and_unreadable_output_fail_runs(ctx: &Ctx) {
    let w = world(ctx, &["Slow Co", "Garbled Co"]).await;
    let slow = trigger(&w.api, &w.customers[0]).await;
    let garbled = trigger(&w.api, &w.customers[1]).await;

    let scratch = Scratch::new();
    let exec = scratch.scanner(
        r#"input=$(cat)
case "$input" in
  *"Slow Co"*) echo "waiting for the tenant" >&2; sleep 120 ;;
  *) echo "this is not JSON"; echo "parser crashed" >&2 ;;
esac"#,
    );
    let worker =
        Worker::start(&w.server, &w.worker_key, &exec, &scratch, &["--concurrency", "2", "--timeout", "2s"]).await;

    let timed_out = settled(&w.api, &worker, &slow).await;
    assert_eq!(timed_out["status"], "failed", "{timed_out}");
    let reason = str_field(&timed_out, "failureReason");
    assert!(reason.contains("longer than 2s") && reason.ends_with("waiting for the tenant"), "{reason:?}");

    let unreadable = settled(&w.api, &worker, &garbled).await;
    assert_eq!(unreadable["status"], "failed", "{unreadable}");
    let reason = str_field(&unreadable, "failureReason");
    assert!(reason.contains("not a result") && reason.ends_with("parser crashed"), "{reason:?}");
    assert_eq!(w.api.runs_used().await, 0, "both units are given back");
}

async fn sigterm_lets_the_running_scan_finish_and_claims_nothing_more(ctx: &Ctx) {
    let w = world(ctx, &["Contoso"]).await;
    let first = trigger(&w.api, &w.customers[0]).await;

    let scratch = Scratch::new();
    let exec = scratch.scanner(
        r#"cat > /dev/null
touch "$DIR/started"
sleep 2
echo '{"score": 50, "low": 1}'"#,
    );
    let mut worker = Worker::start(&w.server, &w.worker_key, &exec, &scratch, &[]).await;
    scratch.wait_for("started").await;
    assert_eq!(run(&w.api, &first).await["status"], "running");
    // Queued while the only slot is busy: a stopping worker must leave it for another.
    let second = trigger(&w.api, &w.customers[0]).await;

    worker.terminate();
    let status = worker.exit().await;
    assert!(status.success(), "a stopped worker exits 0, got {status}; log:\n{}", worker.logs());

    let done = run(&w.api, &first).await;
    assert_eq!((&done["status"], &done["score"], &done["findings"]), (&json!("completed"), &json!(50), &json!(1)));
    assert_eq!(run(&w.api, &second).await["status"], "queued", "no claim after SIGTERM");
    worker.assert_logs_hold_no_key();
}

async fn a_worker_the_server_refuses_exits_with_the_reason(ctx: &Ctx) {
    let w = world(ctx, &[]).await;
    let scratch = Scratch::new();
    let exec = scratch.scanner("exit 0");

    let wrong_key = format!("wk_live_{}", "0".repeat(64));
    let mut worker = Worker::start(&w.server, &wrong_key, &exec, &scratch, &[]).await;
    let status = worker.exit().await;
    assert!(!status.success(), "a refused key ends the worker");
    assert!(worker.logs().contains("401"), "the log says why:\n{}", worker.logs());
    worker.assert_logs_hold_no_key();

    let mut worker = Worker::start(&w.server, &w.worker_key, &exec, &scratch, &["--products", "no-such-product"]).await;
    let status = worker.exit().await;
    assert!(!status.success(), "an unknown product ends the worker");
    assert!(worker.logs().contains("products[0]"), "the log names the bad product:\n{}", worker.logs());
}
