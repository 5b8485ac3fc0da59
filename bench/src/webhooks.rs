//! Webhook deliveries per second, from the real `partnerd serve` (its dispatcher) to a local
//! receiver, beside the same receiver driven by a plain reqwest client.
//!
//! Per back-end, on a fresh database, one enterprise partner, `partnerd serve
//! --webhook-allow-private --webhook-concurrency C` (and the rate limits off):
//!
//! 1. **Drain.** N customers are created in bulk while the partner has no endpoint (events are
//!    stored, no delivery is queued). Then `PUT /v1/partner/webhook` points it at the receiver,
//!    and `POST /v1/partner/webhook/replay` over all time queues every event at once. Measured:
//!    distinct `webhook-id`s received over the time from the first to the last arrival, so the
//!    figure is the dispatcher's sending rate with a full queue. How long the dispatcher took to
//!    notice the queue (it polls when idle) is printed beside it.
//! 2. **Live.** N more customers, 100 per bulk request one after another, with the endpoint in
//!    place: from the first bulk request to the last delivery, and each delivery's lag after its
//!    bulk request was answered.
//! 3. **Baseline.** The same receiver, the same number of requests, the same concurrency: a
//!    reqwest client (configured like the dispatcher's) POSTing a copy of a delivered request
//!    (headers and body, a fresh `webhook-id` each), with nothing read from or written to a
//!    database. Its rate is measured the same way, at the receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hyper::body::Bytes;
use partnerd_store::testing::Backend;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::load::{self, Plan, Sample};
use crate::receiver::{Receiver, Tally};
use crate::report::{align, ms, thousands};
use crate::server::Partner;
use crate::{Args, BULK_MAX, backend_name, create_customers, fresh_database, progress};

/// Pause after a phase so the dispatcher records its last outcomes before the next one starts.
const SETTLE: Duration = Duration::from_millis(500);

/// One measured phase at the receiver.
pub struct Phase {
    pub expected: usize,
    pub tally: Tally,
    pub timed_out: bool,
    /// The time the rate is over.
    pub span: Duration,
    /// Extra cells (pick-up delay, lag percentiles, client latencies).
    pub detail: Vec<String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        let secs = self.span.as_secs_f64();
        if secs > 0.0 { self.tally.distinct() as f64 / secs } else { 0.0 }
    }

    fn cells(&self) -> Vec<String> {
        let count = if self.timed_out {
            format!("{}/{} (time limit)", thousands(self.tally.distinct() as u64), thousands(self.expected as u64))
        } else {
            thousands(self.tally.distinct() as u64)
        };
        vec![
            count,
            format!("{} /s", thousands(self.rate().round() as u64)),
            format!("repeats {}", self.tally.repeats()),
            format!("body {} B", self.tally.mean_body()),
        ]
    }
}

pub struct WebhookReport {
    pub backend: &'static str,
    pub drain: Phase,
    pub live: Phase,
    pub baseline: Phase,
    /// Baseline requests that did not answer 200, by kind: (count, first detail).
    pub baseline_failures: Vec<(String, usize, String)>,
    pub notes: Vec<String>,
}

impl WebhookReport {
    pub fn render(&self) -> String {
        let base = self.baseline.rate();
        let mut lines = Vec::new();
        for (what, phase) in [("webhook drain", &self.drain), ("webhook live", &self.live)] {
            let mut line = vec![self.backend.to_owned(), what.to_owned(), "partnerd dispatcher".to_owned()];
            line.extend(phase.cells());
            line.push("|".into());
            line.push("baseline raw POST".into());
            line.extend(self.baseline.cells());
            line.extend(self.baseline.detail.iter().cloned());
            line.push("|".into());
            let ratio = if base > 0.0 { phase.rate() / base } else { f64::NAN };
            line.push(format!("{ratio:.2}x baseline rate"));
            line.push("|".into());
            line.extend(phase.detail.iter().cloned());
            lines.push(line);
        }
        // Text on the left; the phase's own details (various in number) at the end.
        let mut out = align(&lines, &|c| c <= 2 || c == 8 || c >= 18);
        for (kind, n, detail) in &self.baseline_failures {
            out.push_str(&format!("  {} baseline raw POST: {n} x {kind}; first: {detail}\n", self.backend));
        }
        for note in &self.notes {
            out.push_str(&format!("  {}: {note}\n", self.backend));
        }
        out
    }
}

/// The method, printed once above the figures.
pub fn describe(args: &Args) -> String {
    format!(
        "webhooks: partnerd serve --webhook-allow-private --webhook-concurrency {c}; a local hyper receiver \
         answers 200 and counts distinct webhook-ids. drain = {n} events queued at once by \
         POST /v1/partner/webhook/replay, rate over first to last arrival; live = {n} customers created \
         in bulk ({b} per request) while the dispatcher runs, rate from the first bulk request to the last \
         delivery, lag after each bulk answer; baseline = reqwest POSTing a copy of a delivered request \
         (fresh webhook-id each) to the same receiver, {c} at once, rate over first to last arrival",
        c = args.webhook_concurrency,
        n = thousands(args.webhook_events as u64),
        b = BULK_MAX,
    )
}

/// Milliseconds under a second, seconds from there.
fn span(d: Option<Duration>) -> String {
    match d {
        Some(d) if d >= Duration::from_secs(1) => format!("{:.2} s", d.as_secs_f64()),
        other => ms(other),
    }
}

fn client(concurrency: usize) -> Result<reqwest::Client> {
    // Like the dispatcher's client: no proxy, no redirects, the same idle pool and timeout.
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building an HTTP client")
}

/// The whole webhook measurement on one back-end.
pub async fn bench(args: &Args, partnerd: &crate::server::Partnerd, backend: Backend) -> Result<WebhookReport> {
    let name = backend_name(backend);
    let n = args.webhook_events;
    let concurrency = args.webhook_concurrency;
    let wait = Duration::from_secs(args.max_seconds.max(1) * 4);
    let mut notes = Vec::new();

    let db = fresh_database(backend).await?;
    let partner = partnerd.create_partner(db.url(), 0).await?;
    let receiver = Receiver::start().await?;
    let c = concurrency.to_string();
    let server = partnerd.serve_with(db.url(), &["--webhook-allow-private", "--webhook-concurrency", &c]).await?;
    let base = server.base_url.clone();
    progress(&format!("{name}: webhooks: partnerd serving at {base}, receiver at {}", receiver.url));
    let api = client(8)?;

    // --- drain: a full queue -------------------------------------------------------------------
    progress(&format!("{name}: webhooks: {} events with no endpoint yet", thousands(n as u64)));
    create_customers(&api, &base, &partner, 0, n).await?;
    put_webhook(&api, &base, &partner, &receiver.url).await?;
    receiver.reset();
    progress(&format!("{name}: webhooks: replaying them all (drain)"));
    let replay_sent = Instant::now();
    let replayed = replay_all(&api, &base, &partner).await?;
    let replay_answered = Instant::now();
    let arrived = receiver.wait_for(replayed, wait).await;
    let tally = receiver.take();
    let (first, last) = tally.span().unwrap_or((replay_answered, replay_answered));
    let drain = Phase {
        expected: replayed,
        timed_out: !arrived,
        span: last.saturating_duration_since(first),
        detail: vec![
            format!("first {} after the replay", ms(Some(first.saturating_duration_since(replay_answered)))),
            format!("(replay POST {})", ms(Some(replay_answered - replay_sent))),
        ],
        tally,
    };
    tokio::time::sleep(SETTLE).await;

    // --- live: events committed while the dispatcher runs ---------------------------------------
    progress(&format!("{name}: webhooks: {} customers created with the endpoint in place (live)", thousands(n as u64)));
    receiver.reset();
    let started = Instant::now();
    let mut answered: HashMap<String, Instant> = HashMap::with_capacity(n);
    let mut next = n;
    while answered.len() < n {
        let batch = (n - answered.len()).min(BULK_MAX);
        let ids = create_customers(&api, &base, &partner, next, batch).await?;
        let at = Instant::now();
        next += batch;
        answered.extend(ids.into_iter().map(|id| (id, at)));
    }
    let created = started.elapsed();
    let arrived = receiver.wait_for(n, wait).await;
    let tally = receiver.take();
    let last = tally.span().map_or(started, |(_, last)| last);
    let mut lags: Vec<Duration> = tally
        .first_arrival
        .values()
        .filter_map(|(at, body)| {
            let body: Value = serde_json::from_slice(body).ok()?;
            let committed = answered.get(body["data"]["customerId"].as_str()?)?;
            Some(at.saturating_duration_since(*committed))
        })
        .collect();
    lags.sort_unstable();
    let lag = Sample { done: lags.len(), latencies: lags, ..Sample::default() };
    let live = Phase {
        expected: n,
        timed_out: !arrived,
        span: last.saturating_duration_since(started),
        detail: vec![
            format!("created in {:.2} s", created.as_secs_f64()),
            format!("lag p50 {}", span(lag.percentile(50.0))),
            format!("p95 {}", span(lag.percentile(95.0))),
            format!("max {}", span(lag.percentile(100.0))),
        ],
        tally,
    };
    if lag.done != live.tally.distinct() {
        notes.push(format!(
            "live: {} of {} deliveries could be matched to their bulk request",
            lag.done,
            live.tally.distinct()
        ));
    }
    tokio::time::sleep(SETTLE).await;
    match open_deliveries(&api, &base, &partner).await {
        Ok(open) if open.is_empty() => {
            notes.push("the delivery log has no pending, retrying or failed delivery after both phases".into())
        }
        Ok(open) => notes.push(format!("the delivery log still has deliveries in: {}", open.join(", "))),
        Err(e) => notes.push(format!("could not read the delivery log: {e:#}")),
    }
    let log = server.stop().await?;
    notes.push(format!("partnerd's log over the run: {} ERROR and {} WARN lines", log.errors, log.warnings));
    if let Some(first) = log.first_error {
        notes.push(format!("first ERROR line: {first}"));
    }
    drop(db);

    // --- baseline: raw HTTP to the same receiver ------------------------------------------------
    let (headers, body) = template(&drain.tally).context("the receiver got no delivery to copy")?;
    progress(&format!("{name}: webhooks: baseline, {} raw POSTs", thousands(replayed as u64)));
    let raw = client(concurrency)?;
    receiver.reset();
    let sample = {
        let (url, headers, body) = (Arc::new(receiver.url.clone()), Arc::new(headers), body);
        let plan = Plan { requests: replayed, concurrency, max_time: wait };
        load::run(plan, move |i| {
            let request = raw
                .post(url.as_str())
                .headers((*headers).clone())
                .header("webhook-id", format!("evt_bench{i:019}"))
                .body(body.clone());
            load::http(request, 200)
        })
        .await
    };
    let arrived = receiver.wait_for(replayed, Duration::from_secs(5)).await;
    let tally = receiver.take();
    let span = tally.span().map_or(Duration::ZERO, |(first, last)| last.saturating_duration_since(first));
    let baseline = Phase {
        expected: replayed,
        timed_out: !arrived || sample.timed_out,
        span,
        detail: vec![
            format!("client p50 {}", ms(sample.percentile(50.0))),
            format!("p99 {}", ms(sample.percentile(99.0))),
        ],
        tally,
    };
    let baseline_failures = sample.failures.into_iter().map(|(kind, (count, detail))| (kind, count, detail)).collect();
    Ok(WebhookReport { backend: name, drain, live, baseline, baseline_failures, notes })
}

async fn put_webhook(api: &reqwest::Client, base: &str, partner: &Partner, url: &str) -> Result<()> {
    let response = api
        .put(format!("{base}/v1/partner/webhook"))
        .header("X-Partner-Key", &partner.key)
        .json(&json!({ "url": url }))
        .send()
        .await
        .context("PUT /v1/partner/webhook")?;
    let status = response.status();
    if status.as_u16() != 200 {
        bail!("PUT /v1/partner/webhook answered {status}: {}", response.text().await.unwrap_or_default());
    }
    Ok(())
}

/// `POST /v1/partner/webhook/replay` from 2000 to tomorrow: every event of the partner.
async fn replay_all(api: &reqwest::Client, base: &str, partner: &Partner) -> Result<usize> {
    let until = (OffsetDateTime::now_utc() + time::Duration::days(1)).format(&Rfc3339)?;
    let response = api
        .post(format!("{base}/v1/partner/webhook/replay"))
        .header("X-Partner-Key", &partner.key)
        .json(&json!({ "since": "2000-01-01T00:00:00Z", "until": until }))
        .send()
        .await
        .context("POST /v1/partner/webhook/replay")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the replay answer")?;
    if status.as_u16() != 202 {
        bail!("POST /v1/partner/webhook/replay answered {status}: {body}");
    }
    let replayed = body["replayed"].as_u64().with_context(|| format!("no replayed count in {body}"))?;
    Ok(usize::try_from(replayed)?)
}

/// The delivery statuses other than `delivered` that the log still shows.
async fn open_deliveries(api: &reqwest::Client, base: &str, partner: &Partner) -> Result<Vec<String>> {
    let mut open = Vec::new();
    for status in ["pending", "retrying", "failed"] {
        let list: Value = api
            .get(format!("{base}/v1/partner/webhook/deliveries?status={status}&limit=1"))
            .header("X-Partner-Key", &partner.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if list["deliveries"].as_array().is_some_and(|d| !d.is_empty()) {
            open.push(status.to_owned());
        }
    }
    Ok(open)
}

/// A delivered request to copy: its headers (less the ones the client sets itself and the id)
/// and the body whose size is nearest the mean.
fn template(tally: &Tally) -> Option<(HeaderMap, Bytes)> {
    let sample = tally.sample.as_ref()?;
    let mean = tally.mean_body();
    let body = tally
        .first_arrival
        .values()
        .map(|(_, body)| body)
        .min_by_key(|body| (body.len() as u64).abs_diff(mean))
        .unwrap_or(&sample.body)
        .clone();
    let mut headers = sample.headers.clone();
    for name in ["host", "content-length", "connection", "webhook-id"] {
        headers.remove(name);
    }
    Some((headers, body))
}
