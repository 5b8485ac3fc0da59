//! `partnerd-bench`, run by `cargo xtask bench`: measures the real `partnerd` binary over HTTP on
//! loopback and prints each figure beside a baseline measured in the same run. It measures; it
//! asserts nothing about speed.
//!
//! Per back-end (SQLite always; PostgreSQL when `PARTNERD_TEST_POSTGRES_URL` is set), each on
//! fresh throwaway databases:
//!
//! 1. **Trigger throughput.** `POST /v1/partner/assessments` from N concurrent clients, against
//!    the `enterprise` partners' pre-created customers. Baseline: the same run-limit reservation
//!    transaction written by hand in SQL, sent through sea-orm with the same concurrency and
//!    count, on a separate database migrated by `partnerd migrate` (no HTTP, no auth, no domain).
//! 2. **Read latency.** `GET /v1/partner/me` and `GET /v1/partner/assessments?limit=50` after the
//!    triggers. Baseline: `GET /openapi.json` (no auth, no database), measured the same way.
//! 3. **Webhook deliveries per second** from the dispatcher to a local receiver, draining a full
//!    queue and keeping up with live events. Baseline: the same receiver driven by a plain reqwest
//!    client with the same concurrency (see `webhooks.rs`).
//! 4. **Analytics latency** over a million runs: the partner and distributor analytics and the
//!    distributor usage report over HTTP. Baseline: the same aggregations written by hand in SQL
//!    on the same database, with each statement's plan (see `analytics.rs` and `seed.rs`).

mod analytics;
mod hand_sql;
mod load;
mod receiver;
mod report;
mod seed;
mod server;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use partnerd_store::testing::{Backend, POSTGRES_URL_VAR, TestDatabase};
use serde_json::{Value, json};

use crate::hand_sql::{HandSql, RunToQueue};
use crate::load::{Outcome, Plan, Sample};
use crate::report::{Baseline, Report, Row, thousands};
use crate::server::{Partner, Partnerd};

/// The product every trigger asks for (in every plan).
const PRODUCT: &str = "essential-eight";
/// Most customers one bulk request may create.
const BULK_MAX: usize = 100;

#[derive(Debug, Parser)]
#[command(
    name = "partnerd-bench",
    about = "Measures partnerd over HTTP beside same-run baselines (run it with `cargo xtask bench`)"
)]
struct Args {
    /// The partnerd binary to measure (`cargo xtask bench` passes target/release/partnerd).
    #[arg(long)]
    partnerd: PathBuf,

    /// Requests (or baseline transactions) per workload.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,

    /// Concurrent clients (or baseline tasks).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,

    /// No workload starts a request after this many seconds; the printout says when one stopped.
    #[arg(long, default_value_t = 15)]
    max_seconds: u64,

    /// Partner accounts (plan enterprise); requests go to them in turn.
    #[arg(long, default_value_t = 4)]
    partners: usize,

    /// Customers created for each partner before the triggers.
    #[arg(long, default_value_t = 25)]
    customers: usize,

    /// Which back-ends to measure. PostgreSQL needs PARTNERD_TEST_POSTGRES_URL (a server where
    /// throwaway databases may be created and dropped).
    #[arg(long, value_enum, default_value_t = Which::All)]
    backend: Which,

    /// Which workloads to run: the HTTP ones (trigger and reads), the webhook deliveries, the
    /// analytics over a million runs, or all of them.
    #[arg(long, value_enum, default_value_t = Workloads::All)]
    workloads: Workloads,

    /// Events per webhook phase (drain and live); each is one customer created in bulk.
    #[arg(long, default_value_t = 2_000)]
    webhook_events: usize,

    /// Deliveries in flight at once: partnerd's --webhook-concurrency, and the baseline's clients.
    #[arg(long, default_value_t = 64)]
    webhook_concurrency: usize,

    /// Runs bulk-inserted for the analytics workloads (over the last 90 days).
    #[arg(long, default_value_t = 1_000_000)]
    runs: usize,

    /// Requests (or baseline statement sets) per analytics endpoint.
    #[arg(long, default_value_t = 200)]
    analytics_requests: usize,

    /// Concurrent clients (or baseline tasks) for the analytics endpoints.
    #[arg(long, default_value_t = 4)]
    analytics_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workloads {
    All,
    Http,
    Webhooks,
    Analytics,
}

impl Workloads {
    fn http(self) -> bool {
        matches!(self, Self::All | Self::Http)
    }

    fn webhooks(self) -> bool {
        matches!(self, Self::All | Self::Webhooks)
    }

    fn analytics(self) -> bool {
        matches!(self, Self::All | Self::Analytics)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    All,
    Sqlite,
    Postgres,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match bench(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partnerd-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

async fn bench(args: Args) -> Result<()> {
    if args.requests == 0 || args.concurrency == 0 || args.partners == 0 || args.customers == 0 {
        bail!("--requests, --concurrency, --partners and --customers must each be at least 1");
    }
    if args.webhook_events == 0 || !(1..=usize::from(u16::MAX)).contains(&args.webhook_concurrency) {
        bail!("--webhook-events must be at least 1 and --webhook-concurrency from 1 to 65535");
    }
    if args.runs == 0 || args.analytics_requests == 0 || args.analytics_concurrency == 0 {
        bail!("--runs, --analytics-requests and --analytics-concurrency must each be at least 1");
    }
    let partnerd = Partnerd::new(&args.partnerd)?;
    let postgres = std::env::var_os(POSTGRES_URL_VAR).is_some();
    let mut backends = Vec::new();
    if matches!(args.backend, Which::All | Which::Sqlite) {
        backends.push(Backend::Sqlite);
    }
    if matches!(args.backend, Which::All | Which::Postgres) {
        if postgres {
            backends.push(Backend::Postgres);
        } else if args.backend == Which::Postgres {
            bail!("--backend postgres needs {POSTGRES_URL_VAR}");
        } else {
            progress(&format!("{POSTGRES_URL_VAR} is not set: measuring SQLite only"));
        }
    }

    let started = Instant::now();
    println!("== partnerd bench ==");
    println!(
        "{} clients, up to {} requests or {} s per workload; {} enterprise partners x {} customers; \
         client and server share this machine ({} CPUs); fresh databases",
        args.concurrency,
        thousands(args.requests as u64),
        args.max_seconds,
        args.partners,
        args.customers,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    if args.workloads.http() {
        println!(
            "baselines: trigger = the reservation transaction written by hand, sea-orm raw SQL, no HTTP \
             (tx/s); reads = GET /openapi.json, no auth, no database"
        );
    }
    if args.workloads.webhooks() {
        println!("{}", webhooks::describe(&args));
    }
    if args.workloads.analytics() {
        println!("{}", analytics::describe(&args));
    }
    let mut failed = Vec::new();
    for backend in backends {
        let name = backend_name(backend);
        if args.workloads.http() {
            match bench_backend(&args, &partnerd, backend).await {
                Ok(report) => print!("{}", report.render()),
                Err(e) => {
                    eprintln!("bench: {name} failed: {e:#}");
                    failed.push(format!("{name} (http)"));
                }
            }
        }
        if args.workloads.webhooks() {
            match webhooks::bench(&args, &partnerd, backend).await {
                Ok(report) => print!("{}", report.render()),
                Err(e) => {
                    eprintln!("bench: {name} webhooks failed: {e:#}");
                    failed.push(format!("{name} (webhooks)"));
                }
            }
        }
        if args.workloads.analytics() {
            let started = Instant::now();
            match analytics::bench(&args, &partnerd, backend).await {
                Ok(report) => {
                    print!("{}", report.render());
                    println!("  {name}: analytics workload took {:.1} s in all", started.elapsed().as_secs_f64());
                }
                Err(e) => {
                    eprintln!("bench: {name} analytics failed: {e:#}");
                    failed.push(format!("{name} (analytics)"));
                }
            }
        }
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("could not measure: {}", failed.join(", "));
    }
    Ok(())
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

async fn fresh_database(backend: Backend) -> Result<TestDatabase> {
    TestDatabase::new(backend).await.with_context(|| format!("{POSTGRES_URL_VAR} is not set"))
}

fn plan(args: &Args) -> Plan {
    Plan { requests: args.requests, concurrency: args.concurrency, max_time: Duration::from_secs(args.max_seconds) }
}

/// A partner's key and its customers' ids.
struct Tenant {
    key: String,
    customers: Vec<String>,
}

/// The customer request `i` triggers a run for: partners in turn, then their customers in turn.
fn pick<T>(tenants: &[T], customers: impl Fn(&T) -> usize, i: usize) -> (usize, usize) {
    let p = i % tenants.len();
    (p, (i / tenants.len()) % customers(&tenants[p]))
}

async fn bench_backend(args: &Args, partnerd: &Partnerd, backend: Backend) -> Result<Report> {
    let name = backend_name(backend);
    let plan = plan(args);
    let mut notes = Vec::new();

    // --- partnerd over HTTP -------------------------------------------------------------------
    let db = fresh_database(backend).await?;
    progress(&format!("{name}: creating {} enterprise partners with partnerd admin", args.partners));
    let mut partners: Vec<Partner> = Vec::new();
    for n in 0..args.partners {
        partners.push(partnerd.create_partner(db.url(), n).await?);
    }
    let server = partnerd.serve(db.url()).await?;
    let base = server.base_url.clone();
    progress(&format!("{name}: partnerd serving at {base}"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;

    progress(&format!("{name}: creating {} customers per partner over HTTP", args.customers));
    let mut tenants = Vec::new();
    for (n, partner) in partners.iter().enumerate() {
        let customers = create_customers(&client, &base, partner, n * args.customers, args.customers).await?;
        tenants.push(Tenant { key: partner.key.clone(), customers });
    }
    let tenants = Arc::new(tenants);

    // Opens the client's connections so the first measured requests do not pay for them.
    let warm = Plan { requests: args.concurrency * 4, ..plan };
    let warm_up = get_workload(warm, &client, &base, "/v1/partner/me", &tenants).await;
    if warm_up.failed() > 0 {
        notes.push(format!("warm-up GET /v1/partner/me had {} failures", warm_up.failed()));
    }

    progress(&format!("{name}: trigger workload over HTTP ({} requests)", thousands(plan.requests as u64)));
    let trigger = {
        let (client, tenants) = (client.clone(), Arc::clone(&tenants));
        let url = format!("{base}/v1/partner/assessments");
        load::run(plan, move |i| {
            let (p, c) = pick(&tenants, |t| t.customers.len(), i);
            let body = json!({"customerId": tenants[p].customers[c], "product": PRODUCT}).to_string();
            let request = client
                .post(&url)
                .header("X-Partner-Key", &tenants[p].key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            load::http(request, 202)
        })
        .await
    };
    let accepted = trigger.done - trigger.failed();
    match runs_used(&client, &base, &tenants).await {
        Ok(used) if used == accepted as u64 => {
            notes.push(format!("runs counted by GET /me after the triggers: {} (= the 202 answers)", thousands(used)))
        }
        Ok(used) => notes.push(format!(
            "runs counted by GET /me after the triggers: {} but {} triggers answered 202",
            thousands(used),
            thousands(accepted as u64)
        )),
        Err(e) => notes.push(format!("could not read usage from GET /me: {e:#}")),
    }

    progress(&format!("{name}: read workloads over HTTP"));
    let me = get_workload(plan, &client, &base, "/v1/partner/me", &tenants).await;
    let list = get_workload(plan, &client, &base, "/v1/partner/assessments?limit=50", &tenants).await;
    let openapi = get_workload(plan, &client, &base, "/openapi.json", &tenants).await;
    let log = server.stop().await?;
    notes.push(format!("partnerd's log over the run: {} ERROR and {} WARN lines", log.errors, log.warnings));
    if let Some(first) = log.first_error {
        notes.push(format!("first ERROR line: {first}"));
    }
    drop(db);

    // --- the baseline: hand-written SQL through sea-orm, no HTTP -------------------------------
    let base_db = fresh_database(backend).await?;
    progress(&format!("{name}: baseline database (partnerd migrate, admin create-partner, customers by SQL)"));
    partnerd.migrate(base_db.url()).await?;
    let hand = HandSql::connect(base_db.url()).await?;
    let mut owners: Vec<(String, Vec<String>)> = Vec::new();
    for n in 0..args.partners {
        let partner = partnerd.create_partner(base_db.url(), n).await?;
        let customers = hand.insert_customers(&partner.id, n * args.customers, args.customers).await?;
        owners.push((partner.id, customers));
    }
    hand.warm_up().await?;
    progress(&format!("{name}: baseline trigger transactions ({} of them)", thousands(plan.requests as u64)));
    let hand = Arc::new(hand);
    let owners = Arc::new(owners);
    let baseline = {
        let (hand, owners) = (Arc::clone(&hand), Arc::clone(&owners));
        load::run(plan, move |i| {
            let (hand, owners) = (Arc::clone(&hand), Arc::clone(&owners));
            async move {
                let (p, c) = pick(&owners, |o| o.1.len(), i);
                let run_id = format!("run_{:024x}", i + 1);
                let run = RunToQueue { partner_id: &owners[p].0, customer_id: &owners[p].1[c], run_id: &run_id };
                match hand.queue_run(&run).await {
                    Ok(()) => Outcome::Ok { bytes: 0 },
                    Err(e) => Outcome::Failed { kind: "database error".into(), detail: load::chain(&e) },
                }
            }
        })
        .await
    };
    let committed = baseline.done - baseline.failed();
    match hand.count_runs().await {
        Ok(rows) if rows == committed as i64 => {}
        Ok(rows) => notes.push(format!(
            "baseline: {} run rows but {} committed transactions",
            thousands(rows.max(0) as u64),
            thousands(committed as u64)
        )),
        Err(e) => notes.push(format!("baseline: could not count run rows: {e:#}")),
    }
    drop(owners);
    if let Ok(hand) = Arc::try_unwrap(hand) {
        hand.close().await?;
    }
    drop(base_db);

    Ok(Report {
        backend: name,
        rows: vec![
            Row {
                workload: "trigger POST /v1/partner/assessments",
                subject: "partnerd/http",
                sample: trigger,
                failure_word: "non-202",
                unit: "req",
                baseline: 0,
            },
            Row {
                workload: "read GET /v1/partner/me",
                subject: "partnerd/http",
                sample: me,
                failure_word: "non-200",
                unit: "req",
                baseline: 1,
            },
            Row {
                workload: "read GET /v1/partner/assessments?limit=50",
                subject: "partnerd/http",
                sample: list,
                failure_word: "non-200",
                unit: "req",
                baseline: 1,
            },
        ],
        baselines: vec![
            Baseline { label: "hand SQL, no HTTP", sample: baseline, failure_word: "errors", unit: "tx" },
            Baseline { label: "GET /openapi.json", sample: openapi, failure_word: "non-200", unit: "req" },
        ],
        notes,
    })
}

/// Creates `n` customers for `partner` through `POST /v1/partner/customers/bulk`.
async fn create_customers(
    client: &reqwest::Client,
    base: &str,
    partner: &Partner,
    first: usize,
    n: usize,
) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    let mut next = first;
    while ids.len() < n {
        let batch: Vec<Value> = (next..next + (n - ids.len()).min(BULK_MAX))
            .map(|i| json!({"name": format!("Bench customer {i}"), "tenantId": hand_sql::tenant_id(i)}))
            .collect();
        next += batch.len();
        let response = client
            .post(format!("{base}/v1/partner/customers/bulk"))
            .header("X-Partner-Key", &partner.key)
            .json(&json!({ "customers": batch }))
            .send()
            .await
            .context("POST /v1/partner/customers/bulk")?;
        let status = response.status();
        let body: Value = response.json().await.context("reading the bulk customers answer")?;
        if status.as_u16() != 201 {
            bail!("POST /v1/partner/customers/bulk answered {status}: {body}");
        }
        for item in body["customers"].as_array().context("no customers list in the bulk answer")? {
            match item["id"].as_str() {
                Some(id) if item["status"] == "created" => ids.push(id.to_owned()),
                _ => bail!("a bench customer was not created: {item}"),
            }
        }
    }
    Ok(ids)
}

/// `GET path` from `plan.concurrency` clients; partner keys in turn (sent to `/openapi.json`
/// too, which ignores it, so every request has the same shape).
async fn get_workload(
    plan: Plan,
    client: &reqwest::Client,
    base: &str,
    path: &str,
    tenants: &Arc<Vec<Tenant>>,
) -> Sample {
    let (client, tenants) = (client.clone(), Arc::clone(tenants));
    let url = format!("{base}{path}");
    load::run(plan, move |i| {
        let key = &tenants[i % tenants.len()].key;
        load::http(client.get(&url).header("X-Partner-Key", key), 200)
    })
    .await
}

/// The runs counted against this month's limit, summed over the partners (`GET /v1/partner/me`).
async fn runs_used(client: &reqwest::Client, base: &str, tenants: &[Tenant]) -> Result<u64> {
    let mut total = 0;
    for tenant in tenants {
        let me: Value = client
            .get(format!("{base}/v1/partner/me"))
            .header("X-Partner-Key", &tenant.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        total += me["usage"]["runsUsed"].as_u64().with_context(|| format!("no usage.runsUsed in {me}"))?;
    }
    Ok(total)
}
