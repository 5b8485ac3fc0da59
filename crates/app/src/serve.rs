//! `partnerd serve` and `partnerd quickstart`.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;
use partnerd_domain::keys::{ApiKey, KeyOwner};
use partnerd_domain::services::NewPartner;
use partnerd_domain::values::{BillingInterval, Currency};
use partnerd_http::{HttpConfig, RateLimits, RequestCounter};
use std::time::Duration;

use partnerd_domain::services::{InvoiceService, IssueReport, WorkerService};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::cli::{BillingProviderKind, ServeArgs};
use crate::runner::{self, Phase, RunnerConfig};
use crate::wiring::{Platform, redact_url};

/// Binds, announces the address on stdout (`listening on http://…`), and serves until a signal.
pub async fn serve(platform: Platform, args: &ServeArgs, listener: TcpListener) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let config = HttpConfig {
        require_https: args.require_https,
        workers: args.http_workers,
        rate_limits: RateLimits {
            partner: args.partner_rate_limit,
            distributor: args.distributor_rate_limit,
            worker: args.worker_rate_limit,
        },
    };
    let state = platform.app_state(args.webhooks.allow_private, platform.billing(&args.billing)?);
    let request_counts = state.request_counts.clone();
    let server = partnerd_http::build(listener, state, config)?;
    let (stop_dispatcher, stopped) = watch::channel(false);
    let dispatcher = tokio::spawn(platform.dispatcher(&args.webhooks)?.run(stopped.clone()));
    let flusher = tokio::spawn(flush_request_counts(request_counts.clone(), args.request_count_flush, stopped.clone()));
    // Under a Stripe-compatible provider Stripe issues the partners' invoices.
    let invoicer = (args.billing.provider == BillingProviderKind::Ledger)
        .then(|| tokio::spawn(issue_invoices(platform.invoices(), args.invoice_interval, stopped.clone())));
    let sweeper = tokio::spawn(sweep_leases(platform.workers(), stopped));
    tracing::info!(%addr, database = %redact_url(&args.database.database_url), backend = platform.store.backend_name(), "serving");
    println!("listening on http://{addr}");
    let served = server.await;
    // Attempts in flight finish (each within the webhook timeout) and record their outcome.
    let _ = stop_dispatcher.send(true);
    // Every request has been answered (and so counted): record what the last flush left.
    let _ = flusher.await;
    last_flush(&request_counts).await;
    let _ = dispatcher.await;
    let _ = sweeper.await;
    if let Some(invoicer) = invoicer {
        let _ = invoicer.await;
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// How often runs whose worker lease ended are requeued (or failed): claims do it too, so this
/// only matters while no worker is claiming.
const LEASE_SWEEP: Duration = Duration::from_secs(10);

/// Waits `period`, or less if `stop` is raised meanwhile; `false` once the task should stop. A
/// pass under way is never cut short: stopping is only checked between passes.
async fn pause(period: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => {}
        changed = stop.changed() => if changed.is_err() { return false },
    }
    !*stop.borrow()
}

async fn sweep_leases(workers: WorkerService, mut stop: watch::Receiver<bool>) {
    loop {
        match workers.expire_leases().await {
            Ok(swept) if swept.requeued + swept.failed > 0 => {
                tracing::info!(requeued = swept.requeued, failed = swept.failed, "expired run leases");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not sweep expired run leases"),
        }
        if !pause(LEASE_SWEEP, &mut stop).await {
            return;
        }
    }
}

/// Issues the invoices that are due every `every` (the first pass one interval after start)
/// until `stop` (each invoice is one transaction, so stopping mid-pass would be safe too).
async fn issue_invoices(invoices: InvoiceService, every: Duration, mut stop: watch::Receiver<bool>) {
    while pause(every, &mut stop).await {
        match invoices.issue_due(OffsetDateTime::now_utc()).await {
            Ok(report) if report != IssueReport::default() => tracing::info!(
                partners = report.partners_renewed,
                partner_invoices = report.partner_invoices,
                distributor_invoices = report.distributor_invoices,
                unpriced = report.unpriced,
                stale = report.stale,
                "issued invoices"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not issue the invoices that are due"),
        }
    }
}

/// Writes the counted API requests to the database every `every` until `stop`. A flush that
/// fails keeps its counts for the next one.
async fn flush_request_counts(counter: Arc<RequestCounter>, every: Duration, mut stop: watch::Receiver<bool>) {
    while pause(every, &mut stop).await {
        if let Err(error) = counter.flush().await {
            let pending = counter.pending();
            tracing::warn!(%error, pending, "could not record API request counts; keeping them for the next flush");
        }
    }
}

/// Tries of the flush after the server stopped, a second apart.
const LAST_FLUSH_ATTEMPTS: u32 = 3;

async fn last_flush(counter: &RequestCounter) {
    for attempt in 1..=LAST_FLUSH_ATTEMPTS {
        match counter.flush().await {
            Ok(_) => return,
            Err(error) if attempt < LAST_FLUSH_ATTEMPTS => {
                tracing::warn!(%error, pending = counter.pending(), "could not record API request counts; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => {
                let lost = counter.pending();
                tracing::error!(%error, lost, "could not record API request counts before stopping; they are lost");
            }
        }
    }
}

pub fn bind(args: &ServeArgs) -> anyhow::Result<TcpListener> {
    TcpListener::bind(args.bind).with_context(|| format!("binding {}", args.bind))
}

const DEMO_DISTRIBUTOR_EMAIL: &str = "ops@demo-distributor.example";
const DEMO_PARTNER_EMAIL: &str = "admin@demo-msp.example";
const DEMO_WORKER_NAME: &str = "demo-worker";

struct DemoKeys {
    distributor: ApiKey,
    partner: ApiKey,
    worker: ApiKey,
}

/// Finds or creates the demo accounts. Keys are stored only as hashes, so accounts that already
/// exist get fresh keys (their old ones stop working).
async fn demo_accounts(platform: &Platform) -> anyhow::Result<DemoKeys> {
    let admin = platform.admin();
    let (distributor_id, distributor) = match admin.find_distributor_by_email(DEMO_DISTRIBUTOR_EMAIL).await? {
        Some(d) => (d.id.clone(), admin.reissue_key(&KeyOwner::Distributor(d.id)).await?),
        None => {
            let (d, key) = admin.create_distributor("Demo Distributor", DEMO_DISTRIBUTOR_EMAIL).await?;
            (d.id, key)
        }
    };
    let partner = match admin.find_partner_by_email(DEMO_PARTNER_EMAIL).await? {
        Some(p) => admin.reissue_key(&KeyOwner::Partner(p.id)).await?,
        None => {
            let new = NewPartner {
                company: "Demo MSP".into(),
                email: DEMO_PARTNER_EMAIL.into(),
                name: "Demo Admin".into(),
                plan: "professional".into(),
                distributor: Some(distributor_id.to_string()),
                currency: Currency::Usd,
                interval: BillingInterval::Monthly,
            };
            admin.create_partner(new).await?.1
        }
    };
    let worker = match admin.find_worker_by_name(DEMO_WORKER_NAME).await? {
        Some(w) => admin.reissue_key(&KeyOwner::Worker(w.id)).await?,
        None => admin.create_worker(DEMO_WORKER_NAME).await?.1,
    };
    Ok(DemoKeys { distributor, partner, worker })
}

/// The sample scanner, built into the binary: quickstart's demo worker runs its text through
/// `sh -c` (as `partnerd worker` runs any `--exec`), so it works from any directory, from an
/// installed binary and with `/tmp` mounted `noexec`, and nothing is written to disk.
const SAMPLE_SCANNER: &str = include_str!("../../../examples/scanners/sample-scanner");

/// The demo worker's lease: short, so that a run cut off by stopping quickstart is queued again
/// soon after the next start.
const DEMO_LEASE_SECONDS: u32 = 30;

pub async fn quickstart(args: &ServeArgs) -> anyhow::Result<()> {
    let platform = Platform::open(&args.database).await?;
    let keys = demo_accounts(&platform).await?;
    let listener = bind(args)?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "partnerd quickstart — database {db}\n\n\
         Demo keys (shown once; running quickstart again issues new ones):\n  \
         distributor  {d}\n  partner      {p}\n  worker       {w}\n\n\
         Try, in another terminal:\n  \
         curl -s {base}/v1/partner/me -H \"X-Partner-Key: {p}\"\n  \
         curl -s {base}/v1/distributor/me -H \"X-Distributor-Key: {d}\"\n  \
         curl -s {base}/openapi.json\n\n\
         A demo worker runs examples/scanners/sample-scanner (its results are SAMPLE DATA): an\n\
         assessment the partner triggers goes queued -> running -> completed in a few seconds.\n\
         docs/workers.md shows how, and how to plug in a real scanner.\n",
        db = redact_url(&args.database.database_url),
        d = keys.distributor.reveal(),
        p = keys.partner.reveal(),
        w = keys.worker.reveal(),
    );
    let demo = RunnerConfig {
        server: base,
        key: keys.worker.reveal().to_owned(),
        products: Vec::new(),
        exec: SAMPLE_SCANNER.to_owned(),
        concurrency: 1,
        lease_seconds: DEMO_LEASE_SECONDS,
        timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(1),
    };
    let (stop_worker, phase) = watch::channel(Phase::Work);
    let worker = tokio::spawn(async move {
        // A rerun of quickstart reissues the worker key: this worker then stops, the server serves on.
        if let Err(error) = runner::run(demo, phase).await {
            tracing::warn!("the demo worker stopped: {error:#}");
        }
    });
    let served = serve(platform, args, listener).await;
    // The server is gone: a scan in progress cannot be reported, so stop it now (its run is
    // queued again when its lease ends).
    let _ = stop_worker.send(Phase::Abort);
    let _ = tokio::time::timeout(Duration::from_secs(15), worker).await;
    served
}
