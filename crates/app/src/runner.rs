//! `partnerd worker`: executes queued runs with an external command (a scanner) over the worker
//! protocol (docs/workers.md). Each of `concurrency` slots claims a run, starts the command with
//! the claim's JSON on stdin, keeps the lease with heartbeats while it runs, and completes the run
//! with the result JSON the command prints, or fails it with the tail of the command's stderr.
//!
//! Network trouble never ends the worker: calls are retried with backoff. A server that refuses
//! the worker outright (a bad key, an unknown product) does: retrying cannot help.

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::WorkerArgs;

/// Most of a command's stdout that is read: a result is a few hundred bytes.
const MAX_OUTPUT: usize = 1024 * 1024;
/// Characters of stderr kept for a failure reason (the server keeps 2,000).
const STDERR_TAIL_CHARS: usize = 1000;
/// Bytes of stderr held while the command runs; only the tail is ever used.
const STDERR_KEEP: usize = 16 * 1024;
/// Longest one call to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the output pipes may stay open after the command exited (a background process it
/// left behind holds them) before its process group is killed.
const PIPE_GRACE: Duration = Duration::from_secs(5);
/// Result fields sent on to the server; anything else the command prints is ignored.
const RESULT_FIELDS: [&str; 6] = ["score", "critical", "high", "medium", "low", "reportUrl"];

/// What the worker is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Claim and execute runs.
    Work,
    /// Claim nothing more; let running commands finish and report them.
    Drain,
    /// Kill running commands and leave their runs unreported: the server queues them again when
    /// their leases end.
    Abort,
}

/// How a worker runs. `Debug` leaves the key out.
pub struct RunnerConfig {
    /// The server's base URL, without a trailing `/`.
    pub server: String,
    pub key: String,
    /// Empty: any product.
    pub products: Vec<String>,
    /// Run through `sh -c`.
    pub exec: String,
    pub concurrency: usize,
    pub lease_seconds: u32,
    pub timeout: Duration,
    pub poll_interval: Duration,
}

impl From<WorkerArgs> for RunnerConfig {
    fn from(a: WorkerArgs) -> Self {
        Self {
            server: a.server,
            key: a.key,
            products: a.products.into_iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
            exec: a.exec,
            concurrency: usize::from(a.concurrency.max(1)),
            lease_seconds: a.lease_seconds,
            timeout: a.timeout,
            poll_interval: a.poll_interval,
        }
    }
}

impl std::fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerConfig")
            .field("server", &self.server)
            .field("products", &self.products)
            .field("concurrency", &self.concurrency)
            .field("lease_seconds", &self.lease_seconds)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// Runs until SIGINT or SIGTERM, then drains: no new claims, running commands finish and are
/// reported. A second signal kills the running commands; their runs go back to the queue when
/// their leases end.
pub async fn run_until_signalled(config: RunnerConfig) -> anyhow::Result<()> {
    let mut signals = Signals::install().context("installing the signal handlers")?;
    let (phase, watching) = watch::channel(Phase::Work);
    let listener = tokio::spawn(async move {
        signals.next().await;
        tracing::info!("stopping: no new claims; running commands may finish (signal again to stop them now)");
        let _ = phase.send(Phase::Drain);
        signals.next().await;
        tracing::warn!("stopping now: killing running commands; their runs are queued again when their leases end");
        let _ = phase.send(Phase::Abort);
        // Keep the sender, so that the worker still sees `Abort` while it reports.
        std::future::pending::<()>().await;
    });
    let outcome = run(config, watching).await;
    listener.abort();
    outcome
}

/// Runs `config.concurrency` slots until `phase` leaves [`Phase::Work`] and every slot has
/// reported what it held. Fails when the server refuses the worker (a key it does not know, a
/// product it does not have): the other slots are drained first.
pub async fn run(config: RunnerConfig, mut phase: watch::Receiver<Phase>) -> anyhow::Result<()> {
    let api = Api::new(&config)?;
    tracing::info!(
        server = %config.server,
        products = %if config.products.is_empty() { "any".to_owned() } else { config.products.join(",") },
        concurrency = config.concurrency,
        lease_seconds = config.lease_seconds,
        timeout = %human(config.timeout),
        "worker started"
    );
    let shared = Arc::new(Slot { api, config });
    // The slots follow `phase`, and also stop when one of them meets a refusal.
    let (slot_phase, slots_watch) = watch::channel(*phase.borrow());
    let mut slots = JoinSet::new();
    for _ in 0..shared.config.concurrency {
        slots.spawn(Arc::clone(&shared).work(slots_watch.clone()));
    }
    let mut refused = None;
    let mut asking = true;
    loop {
        tokio::select! {
            joined = slots.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => {
                    tracing::error!("{error:#}; stopping the worker");
                    slot_phase.send_if_modified(|p| escalate(p, Phase::Drain));
                    refused.get_or_insert(error);
                }
                Some(Err(panic)) => {
                    slot_phase.send_if_modified(|p| escalate(p, Phase::Drain));
                    refused.get_or_insert(anyhow!("a worker slot panicked: {panic}"));
                }
            },
            changed = phase.changed(), if asking => match changed {
                Ok(()) => {
                    let asked = *phase.borrow_and_update();
                    slot_phase.send_if_modified(|p| escalate(p, asked));
                }
                // Nobody can ask for anything any more: the slots work on.
                Err(_) => asking = false,
            },
        }
    }
    tracing::info!("worker stopped");
    refused.map_or(Ok(()), Err)
}

/// Moves `current` forward to `asked` (phases only go forward); whether it changed.
fn escalate(current: &mut Phase, asked: Phase) -> bool {
    if asked > *current {
        *current = asked;
        true
    } else {
        false
    }
}

struct Slot {
    api: Api,
    config: RunnerConfig,
}

/// What the command came to.
enum Verdict {
    /// The result fields to complete the run with.
    Complete(Map<String, Value>),
    /// The reason to fail it with.
    Fail(String),
    /// Report nothing: the run is no longer ours, or the worker is stopping at once.
    Lost,
}

impl Slot {
    /// Claims and executes runs one after another until told to stop.
    async fn work(self: Arc<Self>, mut phase: watch::Receiver<Phase>) -> anyhow::Result<()> {
        let mut backoff = Backoff::default();
        while *phase.borrow_and_update() == Phase::Work {
            match self.api.claim(&self.config).await {
                Ok(Some(claimed)) => {
                    backoff.reset();
                    self.execute(claimed, &mut phase).await;
                }
                Ok(None) => {
                    backoff.reset();
                    pause(self.config.poll_interval, &mut phase).await;
                }
                Err(CallError::Refused { status, code, message }) => {
                    return Err(anyhow!("the server refused the claim ({status} {code}): {message}"));
                }
                Err(error) => {
                    let wait = backoff.next(error.retry_after());
                    tracing::warn!(%error, retry_in = ?wait, "could not claim a run");
                    pause(wait, &mut phase).await;
                }
            }
        }
        Ok(())
    }

    async fn execute(&self, claimed: Claimed, phase: &mut watch::Receiver<Phase>) {
        let started = Instant::now();
        tracing::info!(
            run = %claimed.id, product = %claimed.product, customer = %claimed.customer,
            lease_expires_at = %claimed.lease_expires_at, "run claimed: running the command"
        );
        let verdict = self.run_command(&claimed, phase).await;
        let took = started.elapsed();
        match verdict {
            Verdict::Complete(result) => match self.report(&claimed, Report::Complete(&result), phase).await {
                Reported::Done(run) => tracing::info!(
                    run = %claimed.id, status = %run["status"].as_str().unwrap_or("completed"),
                    score = %run["score"], findings = %run["findings"], took = ?took, "run completed"
                ),
                Reported::Invalid(message) => {
                    let reason = format!("the scanner's result was refused: {message}");
                    tracing::warn!(run = %claimed.id, %reason, "result refused by the server; failing the run");
                    self.report_failure(&claimed, &reason, took, phase).await;
                }
                Reported::Abandoned => {}
            },
            Verdict::Fail(reason) => self.report_failure(&claimed, &reason, took, phase).await,
            Verdict::Lost => {}
        }
    }

    async fn report_failure(
        &self,
        claimed: &Claimed,
        reason: &str,
        took: Duration,
        phase: &mut watch::Receiver<Phase>,
    ) {
        match self.report(claimed, Report::Fail(reason), phase).await {
            Reported::Done(_) => tracing::info!(run = %claimed.id, %reason, took = ?took, "run failed"),
            Reported::Invalid(message) => {
                tracing::error!(run = %claimed.id, %message, "the server refused to fail the run");
            }
            Reported::Abandoned => {}
        }
    }

    /// Runs the command for `claimed` to its end (or until it must be stopped), heartbeating.
    async fn run_command(&self, claimed: &Claimed, phase: &mut watch::Receiver<Phase>) -> Verdict {
        let mut child = match spawn(&self.config.exec) {
            Ok(child) => child,
            Err(e) => return Verdict::Fail(format!("the worker could not start the scanner: {e}")),
        };
        let group = child.id();
        let stdin = child.stdin.take().map(|mut pipe| {
            let input = claimed.input.clone();
            tokio::spawn(async move {
                // A command that reads none of its input closes the pipe early: that is its right.
                if pipe.write_all(&input).await.is_ok() {
                    let _ = pipe.write_all(b"\n").await;
                }
            })
        });
        let stdout = child.stdout.take().map(|pipe| tokio::spawn(read_capped(pipe, MAX_OUTPUT)));
        let stderr = child.stderr.take().map(|pipe| tokio::spawn(read_tail(pipe, STDERR_KEEP)));

        let ended = self.supervise(claimed, &mut child, phase).await;
        if !matches!(ended, Ended::Exited(_)) {
            kill(&mut child, group).await;
        }
        // The pipes close when every process holding them has exited.
        let outputs = async {
            let out = match stdout {
                Some(task) => task.await.unwrap_or_default(),
                None => Captured::default(),
            };
            let err = match stderr {
                Some(task) => task.await.unwrap_or_default(),
                None => Vec::new(),
            };
            (out, err)
        };
        tokio::pin!(outputs);
        let (out, err) = match tokio::time::timeout(PIPE_GRACE, &mut outputs).await {
            Ok(both) => both,
            Err(_) => {
                tracing::warn!(run = %claimed.id, "the command left processes holding its output open; killing them");
                kill(&mut child, group).await;
                outputs.await
            }
        };
        if let Some(task) = stdin {
            task.abort();
        }
        let stderr_tail = tail(&err, STDERR_TAIL_CHARS);
        match ended {
            Ended::Exited(status) if status.success() => {
                if out.truncated {
                    return Verdict::Fail(with_stderr(
                        "the scanner printed more than 1 MiB on stdout".to_owned(),
                        &stderr_tail,
                    ));
                }
                match result_fields(&out.bytes) {
                    Ok(fields) => Verdict::Complete(fields),
                    Err(problem) => Verdict::Fail(with_stderr(
                        format!("the scanner's output is not a result: {problem}"),
                        &stderr_tail,
                    )),
                }
            }
            Ended::Exited(status) => {
                tracing::info!(run = %claimed.id, status = %describe(status), "the command failed");
                if stderr_tail.is_empty() {
                    Verdict::Fail(format!("the scanner {} and wrote nothing on stderr", describe(status)))
                } else {
                    Verdict::Fail(stderr_tail)
                }
            }
            Ended::TimedOut => {
                tracing::warn!(run = %claimed.id, timeout = ?self.config.timeout, "the command timed out; killed it");
                Verdict::Fail(with_stderr(
                    format!("the scanner ran longer than {} and was stopped", human(self.config.timeout)),
                    &stderr_tail,
                ))
            }
            Ended::Aborted => {
                tracing::warn!(run = %claimed.id, "stopped its command; the run is queued again when its lease ends");
                Verdict::Lost
            }
            Ended::Untracked(e) => Verdict::Fail(format!("the worker lost track of its command: {e}")),
            Ended::Lost(why) => {
                tracing::warn!(run = %claimed.id, %why, "the run is no longer this worker's; killed its command");
                Verdict::Lost
            }
        }
    }

    /// Waits for the command to exit, heartbeating every third of the lease; stops waiting when
    /// it times out, when the run is taken away, or when the worker must stop at once.
    async fn supervise(&self, claimed: &Claimed, child: &mut Child, phase: &mut watch::Receiver<Phase>) -> Ended {
        let every = Duration::from_secs(u64::from(self.config.lease_seconds)) / 3;
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let mut next_beat = tokio::time::Instant::now() + every;
        let mut backoff = Backoff::default();
        loop {
            tokio::select! {
                status = child.wait() => return match status {
                    Ok(status) => Ended::Exited(status),
                    Err(e) => Ended::Untracked(e),
                },
                () = tokio::time::sleep_until(deadline) => return Ended::TimedOut,
                () = until_abort(phase) => return Ended::Aborted,
                () = tokio::time::sleep_until(next_beat) => {
                    match self.api.heartbeat(&claimed.id, self.config.lease_seconds).await {
                        Ok(_) => {
                            backoff.reset();
                            next_beat = tokio::time::Instant::now() + every;
                        }
                        Err(CallError::Refused { status: 404 | 409, message, .. }) => return Ended::Lost(message),
                        Err(error) => {
                            let wait = backoff.next(error.retry_after()).min(every);
                            tracing::warn!(run = %claimed.id, %error, retry_in = ?wait, "heartbeat failed");
                            next_beat = tokio::time::Instant::now() + wait;
                        }
                    }
                }
            }
        }
    }

    /// Sends the outcome, retrying through network trouble for up to a lease (by then the server
    /// has put the run back in the queue anyway); only once when stopping at once.
    async fn report(&self, claimed: &Claimed, report: Report<'_>, phase: &mut watch::Receiver<Phase>) -> Reported {
        let started = Instant::now();
        let patience = Duration::from_secs(u64::from(self.config.lease_seconds)).max(Duration::from_secs(60));
        let mut backoff = Backoff::default();
        loop {
            let sent = match report {
                Report::Complete(result) => self.api.complete(&claimed.id, result).await,
                Report::Fail(reason) => self.api.fail(&claimed.id, reason).await,
            };
            let error = match sent {
                Ok(run) => return Reported::Done(run),
                Err(CallError::Refused { status: 400, message, .. }) => return Reported::Invalid(message),
                Err(CallError::Refused { status: 404 | 409, message, .. }) => {
                    tracing::warn!(run = %claimed.id, %message, "the run is no longer this worker's; outcome dropped");
                    return Reported::Abandoned;
                }
                Err(error @ CallError::Refused { .. }) => {
                    tracing::error!(run = %claimed.id, %error, "the server refused the outcome");
                    return Reported::Abandoned;
                }
                Err(error) => error,
            };
            let wait = backoff.next(error.retry_after());
            if *phase.borrow() == Phase::Abort {
                tracing::warn!(run = %claimed.id, %error, "stopping without reporting the run; its lease will end");
                return Reported::Abandoned;
            }
            if started.elapsed() + wait > patience {
                tracing::error!(
                    run = %claimed.id, %error,
                    "could not report the run; when its lease ends the server queues it again"
                );
                return Reported::Abandoned;
            }
            tracing::warn!(run = %claimed.id, %error, retry_in = ?wait, "could not report the run");
            pause(wait, phase).await;
        }
    }
}

#[derive(Clone, Copy)]
enum Report<'a> {
    Complete(&'a Map<String, Value>),
    Fail(&'a str),
}

enum Reported {
    /// The run as the server now has it.
    Done(Value),
    /// `400`: the server's message.
    Invalid(String),
    /// Not reported, and never will be: already logged.
    Abandoned,
}

/// Why supervision ended.
enum Ended {
    Exited(ExitStatus),
    TimedOut,
    /// The worker must stop at once.
    Aborted,
    /// Waiting for the command failed: nothing is known of it.
    Untracked(std::io::Error),
    /// The server says the run is not held under this worker's lease any more.
    Lost(String),
}

/// Resolves when the phase becomes [`Phase::Abort`]; never if nobody can change it any more.
async fn until_abort(phase: &mut watch::Receiver<Phase>) {
    while *phase.borrow_and_update() != Phase::Abort {
        if phase.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Sleeps `wait`, or less if the phase changes.
async fn pause(wait: Duration, phase: &mut watch::Receiver<Phase>) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        changed = phase.changed() => if changed.is_err() { tokio::time::sleep(wait).await },
    }
}

/// `sh -c exec` in a process group of its own, so that a Ctrl-C at the worker's terminal does not
/// reach it (the worker decides when it stops) and a kill reaches everything it started. It
/// inherits the worker's environment less every `PARTNERD_*` variable: the worker key stays here.
fn spawn(exec: &str) -> std::io::Result<Child> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(exec);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PARTNERD_") {
            cmd.env_remove(name);
        }
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.spawn()
}

/// Kills the command and whatever it started (its process group), then reaps it.
async fn kill(child: &mut Child, group: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = group.and_then(|g| i32::try_from(g).ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = group;
    let _ = child.kill().await;
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    /// More than the cap was written; the rest was read and dropped.
    truncated: bool,
}

/// Reads a pipe to its end, keeping at most `cap` bytes (the rest is drained, so the writer
/// never blocks on a full pipe).
async fn read_capped(mut pipe: impl AsyncRead + Unpin, cap: usize) -> Captured {
    let mut captured = Captured::default();
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = cap - captured.bytes.len();
        captured.bytes.extend_from_slice(&chunk[..n.min(room)]);
        captured.truncated |= n > room;
    }
    captured
}

/// Reads a pipe to its end, keeping the last `keep` bytes or so.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * keep {
            kept.drain(..kept.len() - keep);
        }
    }
    kept
}

/// The last `chars` characters of `bytes` (as lossy UTF-8), trimmed; `…` marks a cut.
fn tail(bytes: &[u8], chars: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let count = text.chars().count();
    if count <= chars {
        return text.to_owned();
    }
    let cut: String = text.chars().skip(count - (chars - 1)).collect();
    format!("…{}", cut.trim_start())
}

fn with_stderr(description: String, stderr_tail: &str) -> String {
    if stderr_tail.is_empty() { description } else { format!("{description}; stderr: {stderr_tail}") }
}

/// The result fields of a command's stdout: one JSON object (or, when it printed other lines
/// first, its last line). Values are sent as they are: the server checks them.
fn result_fields(stdout: &[u8]) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(stdout).map_err(|_| "stdout is not UTF-8".to_owned())?;
    let text = text.trim();
    if text.is_empty() {
        return Err("stdout is empty".to_owned());
    }
    let parsed = serde_json::from_str::<Value>(text).or_else(|whole| {
        let last = text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default();
        serde_json::from_str::<Value>(last).map_err(|_| format!("stdout is not a JSON object ({whole})"))
    })?;
    let Value::Object(mut object) = parsed else {
        return Err("stdout is JSON but not an object".to_owned());
    };
    Ok(RESULT_FIELDS.iter().filter_map(|f| object.remove_entry(*f)).collect())
}

#[cfg(unix)]
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(not(unix))]
fn describe(status: ExitStatus) -> String {
    status.to_string()
}

/// `30m`, `90s`, `1h30m`, `1.5s`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// Exponential backoff from 1 s to 60 s, with up to 25 % jitter so that slots and workers that
/// failed together do not retry together. A server's `Retry-After` wins when it is longer.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let base = Self::FIRST.saturating_mul(1 << self.failures.min(6)).min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        let jitter = base.mul_f64(f64::from(getrandom::u32().unwrap_or(0) % 256) / 1024.0);
        (base + jitter).max(retry_after.unwrap_or_default())
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// The worker protocol, client side
// ---------------------------------------------------------------------------------------------

/// A claimed run: the claim's body as the server sent it (the command's stdin) and the fields the
/// worker needs.
struct Claimed {
    input: Vec<u8>,
    id: String,
    product: String,
    customer: String,
    lease_expires_at: String,
}

impl Claimed {
    fn parse(body: Vec<u8>) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(&body).map_err(|e| format!("the claim is not JSON: {e}"))?;
        let field = |path: &str| {
            value
                .pointer(path)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the claim has no {path}: {value}"))
        };
        Ok(Self {
            id: field("/run/id")?,
            product: field("/run/product")?,
            customer: field("/run/customerId")?,
            lease_expires_at: field("/leaseExpiresAt")?,
            input: body,
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Transport(String),
    /// `429` or `5xx`: try again later.
    #[error("the server answered {status}: {message}")]
    Unavailable { status: u16, message: String, retry_after: Option<Duration> },
    /// Any other `4xx`: the request itself is refused; sending it again changes nothing.
    #[error("the server answered {status} {code}: {message}")]
    Refused { status: u16, code: String, message: String },
}

impl CallError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: reqwest::header::HeaderValue,
}

impl Api {
    fn new(config: &RunnerConfig) -> anyhow::Result<Self> {
        let mut key = reqwest::header::HeaderValue::from_str(config.key.trim())
            .map_err(|_| anyhow!("the worker key holds characters a header cannot carry"))?;
        key.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("partnerd-worker/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base: config.server.clone(), key })
    }

    /// `Some` run, or `None` when nothing is queued (`204`).
    async fn claim(&self, config: &RunnerConfig) -> Result<Option<Claimed>, CallError> {
        let mut body = json!({ "leaseSeconds": config.lease_seconds });
        if !config.products.is_empty() {
            body["products"] = json!(config.products);
        }
        let Some(answer) = self.post("/v1/worker/runs/claim", &body).await? else { return Ok(None) };
        Claimed::parse(answer).map(Some).map_err(CallError::Transport)
    }

    async fn heartbeat(&self, run: &str, lease_seconds: u32) -> Result<Value, CallError> {
        self.post_for_run(run, "heartbeat", &json!({ "leaseSeconds": lease_seconds })).await
    }

    async fn complete(&self, run: &str, result: &Map<String, Value>) -> Result<Value, CallError> {
        self.post_for_run(run, "complete", &Value::Object(result.clone())).await
    }

    async fn fail(&self, run: &str, reason: &str) -> Result<Value, CallError> {
        self.post_for_run(run, "fail", &json!({ "reason": reason })).await
    }

    /// `POST /v1/worker/runs/{run}/{action}`; returns the answer's `run`.
    async fn post_for_run(&self, run: &str, action: &str, body: &Value) -> Result<Value, CallError> {
        let path = format!("/v1/worker/runs/{}/{action}", url_segment(run));
        let answer = self.post(&path, body).await?.unwrap_or_default();
        let value: Value = serde_json::from_slice(&answer).unwrap_or_default();
        Ok(value["run"].clone())
    }

    /// The body of a `2xx` (`None` for `204`), or why there is none.
    async fn post(&self, path: &str, body: &Value) -> Result<Option<Vec<u8>>, CallError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-Worker-Key", self.key.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| CallError::Transport(transport_message(&e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|e| CallError::Transport(transport_message(&e)))?;
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() {
            return Ok(Some(bytes.to_vec()));
        }
        let envelope: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let code = envelope["error"]["code"].as_str().unwrap_or("").to_owned();
        let message = envelope["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
        let status = status.as_u16();
        if status == 429 || status >= 500 {
            Err(CallError::Unavailable { status, message, retry_after })
        } else {
            Err(CallError::Refused { status, code, message })
        }
    }
}

/// A transport error with its causes (reqwest's own message is often just "error sending request").
fn transport_message(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Run ids are `run_` and hex, but a server could send anything: keep the path a path.
fn url_segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// SIGINT and SIGTERM (Ctrl-C only, off Unix).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stderr_tail_keeps_the_end() {
        assert_eq!(tail(b"  boom\n", 1000), "boom");
        let long = format!("{}\nconsent missing", "x".repeat(3000));
        let cut = tail(long.as_bytes(), 1000);
        assert!(cut.starts_with('…') && cut.ends_with("consent missing"), "{cut}");
        assert_eq!(cut.chars().count(), 1000);
        assert_eq!(tail("é".repeat(2000).as_bytes(), 10).chars().count(), 10);
    }

    #[test]
    fn results_keep_only_the_protocol_fields() {
        let out = br#"{"score": 72, "critical": 2, "summary": "SAMPLE DATA", "reportUrl": "https://r.example/1"}"#;
        let fields = result_fields(out).unwrap();
        assert_eq!(Value::Object(fields), json!({"score": 72, "critical": 2, "reportUrl": "https://r.example/1"}));
        // Progress lines first, the result last.
        let fields = result_fields(b"scanning...\n50%\n{\"score\": 9}\n").unwrap();
        assert_eq!(Value::Object(fields), json!({"score": 9}));
        // The server judges the values (a missing score included).
        assert_eq!(result_fields(b"{\"low\": -1}").unwrap().len(), 1);
        for bad in [&b""[..], b"  \n", b"not json", b"[1, 2]", b"\xff\xfe"] {
            assert!(result_fields(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_minute_and_honours_retry_after() {
        let mut backoff = Backoff::default();
        let first = backoff.next(None);
        assert!(first >= Duration::from_secs(1) && first < Duration::from_millis(1250), "{first:?}");
        let second = backoff.next(None);
        assert!(second >= Duration::from_secs(2) && second < Duration::from_millis(2500), "{second:?}");
        for _ in 0..20 {
            assert!(backoff.next(None) < Duration::from_secs(75));
        }
        assert_eq!(backoff.next(Some(Duration::from_secs(600))), Duration::from_secs(600));
        backoff.reset();
        assert!(backoff.next(None) < Duration::from_secs(2));
    }

    #[test]
    fn durations_read_like_the_flags() {
        assert_eq!(human(Duration::from_secs(1800)), "30m");
        assert_eq!(human(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human(Duration::from_secs(1)), "1s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn run_ids_stay_one_path_segment() {
        assert_eq!(url_segment("run_0a1b"), "run_0a1b");
        assert_eq!(url_segment("../x y"), "..%2Fx%20y");
    }

    #[test]
    fn phases_only_go_forward() {
        let mut phase = Phase::Drain;
        assert!(!escalate(&mut phase, Phase::Work));
        assert!(escalate(&mut phase, Phase::Abort));
        assert_eq!(phase, Phase::Abort);
    }

    #[tokio::test]
    async fn a_command_gets_its_input_on_stdin() {
        let mut child = spawn("cat; echo done >&2").unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"{\"run\":{}}").await.unwrap();
        drop(stdin);
        let out = read_capped(child.stdout.take().unwrap(), MAX_OUTPUT).await;
        let err = read_tail(child.stderr.take().unwrap(), STDERR_KEEP).await;
        assert!(child.wait().await.unwrap().success());
        assert_eq!(out.bytes, b"{\"run\":{}}");
        assert_eq!(tail(&err, 100), "done");
    }

    #[tokio::test]
    async fn output_past_the_cap_is_drained_and_flagged() {
        let big = [b'x'; 100];
        let captured = read_capped(&big[..], 10).await;
        assert_eq!((captured.bytes.len(), captured.truncated), (10, true));
        let captured = read_capped(&big[..], 100).await;
        assert_eq!((captured.bytes.len(), captured.truncated), (100, false));
    }
}
