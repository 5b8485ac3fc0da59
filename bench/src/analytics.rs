//! Analytics over a million runs: partnerd's report endpoints over HTTP, each beside the same
//! aggregations written by hand in SQL and sent on connections set up like the store's (no HTTP,
//! no authentication, no domain code), measured in the same run on the same database.
//!
//! Per back-end, on one fresh database (see `seed.rs` for the data): `partnerd serve`, then for
//! each endpoint its HTTP workload followed by its hand-SQL baseline, with the same count,
//! concurrency and time limit. The hand SQL is the store's (`crates/store/src/repo/reports.rs`,
//! the distributor totals in `accounts.rs` and the API request totals in `request_counts.rs`),
//! statement for statement, in the order the report service issues them for that request. Each
//! statement's plan (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL) is printed in one
//! line under the table, and any full scan of `runs` is called out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use partnerd_store::testing::Backend;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};
use serde_json::Value as Json;
use time::{Date, OffsetDateTime};

use crate::hand_sql::{self, Role};
use crate::load::{self, Outcome, Plan, Sample};
use crate::report::{Baseline, Report, Row, thousands};
use crate::seed::{self, DAYS, Seeded, Tree};
use crate::server::Partnerd;
use crate::{Args, backend_name, fresh_database, progress};

/// How many customers (or partners) analytics list as the top ones (the domain's `TOP_N`).
const TOP_N: u32 = 10;
/// The default analytics window, in days (the domain's `Period::DEFAULT_DAYS`).
const DEFAULT_DAYS: i64 = 30;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Per-status run counts as columns, to follow `SELECT` in a query that groups runs `r`.
const STATUS_COUNTS: &str = "COALESCE(SUM(CASE WHEN r.status = 'queued' THEN 1 ELSE 0 END), 0) AS queued, \
     COALESCE(SUM(CASE WHEN r.status = 'running' THEN 1 ELSE 0 END), 0) AS running, \
     COALESCE(SUM(CASE WHEN r.status = 'completed' THEN 1 ELSE 0 END), 0) AS completed, \
     COALESCE(SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed";

/// The method, printed once above the figures.
pub fn describe(args: &Args) -> String {
    let distributors = seed::PARTNERS_PER_DISTRIBUTOR.len();
    let partners = seed::PARTNERS_PER_DISTRIBUTOR.iter().sum::<usize>() + seed::DIRECT_PARTNERS;
    format!(
        "analytics: {runs} runs over {DAYS} days bulk-inserted beside {distributors} distributors, {partners} \
         partners and {customers} customers made by partnerd admin and HTTP; {requests} requests per endpoint \
         from {c} clients (up to {s} s); baseline = the statements partnerd's store issues for that request, \
         written by hand and run one after the other on a pool set up like the store's, no HTTP (set = one \
         request's statements)",
        runs = thousands(args.runs as u64),
        customers = thousands(seed::CUSTOMERS as u64),
        requests = thousands(args.analytics_requests as u64),
        c = args.analytics_concurrency,
        s = args.max_seconds,
    )
}

/// Whose runs a statement counts (the store's `ReportScope`).
#[derive(Debug, Clone)]
enum Scope {
    Partner(String),
    Distributor(String),
}

/// Days `from..=to` (UTC), as the store binds them: `[midnight of from, midnight after to)`.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Date,
    to: Date,
}

impl Window {
    fn days_ending(to: Date, days: i64) -> Self {
        Self { from: to - time::Duration::days(days - 1), to }
    }

    fn month_of(day: Date) -> Self {
        let first = day.replace_day(1).expect("every month has a first day");
        let next = if first.month() == time::Month::December {
            Date::from_calendar_date(first.year() + 1, time::Month::January, 1)
        } else {
            Date::from_calendar_date(first.year(), first.month().next(), 1)
        }
        .expect("the first of next month exists");
        Self { from: first, to: next.previous_day().expect("a month has a last day") }
    }

    fn start(self) -> i64 {
        seed::millis(seed::midnight(self.from))
    }

    fn end(self) -> i64 {
        seed::millis(seed::midnight(self.to.next_day().expect("a day after to")))
    }

    /// `?from_date=…&to_date=…`.
    fn query(self) -> String {
        format!("from_date={}&to_date={}", wire_date(self.from), wire_date(self.to))
    }
}

fn wire_date(day: Date) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day())
}

/// One statement as the store sends it: `$n` placeholders and bound values.
#[derive(Debug, Clone)]
struct Query {
    /// The store method it copies, and its scope: `run_tallies (partner)`.
    name: String,
    sql: String,
    values: Vec<Value>,
}

/// The join and condition that keep runs `r` to the scope's partners (the store's `scoped_runs`).
fn scoped_runs(scope: &Scope, window: Window) -> (&'static str, Vec<Value>, &'static str) {
    let (clause, id, label) = match scope {
        Scope::Partner(p) => ("FROM runs r WHERE r.partner_id = $1", p, "partner"),
        Scope::Distributor(d) => {
            ("FROM runs r JOIN partners p ON p.id = r.partner_id WHERE p.distributor_id = $1", d, "distributor")
        }
    };
    (clause, vec![id.clone().into(), window.start().into(), window.end().into()], label)
}

fn limit_clause(limit: Option<u32>) -> String {
    limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
}

/// `ReportRepository::run_tallies`.
fn run_tallies(scope: &Scope, window: Window) -> Query {
    let (from, values, label) = scoped_runs(scope, window);
    let sql = format!(
        "SELECT r.created_at / {MILLIS_PER_DAY} AS day, r.product, r.status, COUNT(*) AS runs {from} \
         AND r.created_at >= $2 AND r.created_at < $3 \
         GROUP BY r.created_at / {MILLIS_PER_DAY}, r.product, r.status"
    );
    Query { name: format!("run_tallies ({label})"), sql, values }
}

/// `ReportRepository::customers_with_runs`.
fn customers_with_runs(scope: &Scope, window: Window) -> Query {
    let (from, values, label) = scoped_runs(scope, window);
    let sql = format!("SELECT COUNT(DISTINCT r.customer_id) AS n {from} AND r.created_at >= $2 AND r.created_at < $3");
    Query { name: format!("customers_with_runs ({label})"), sql, values }
}

/// `ReportRepository::customer_runs`.
fn customer_runs(scope: &Scope, window: Window, limit: Option<u32>) -> Query {
    let (from, values, label) = scoped_runs(scope, window);
    let from = from.replacen("FROM runs r", "FROM runs r JOIN customers c ON c.id = r.customer_id", 1);
    let sql = format!(
        "SELECT r.customer_id AS id, c.partner_id, c.name, {STATUS_COUNTS} {from} \
         AND r.created_at >= $2 AND r.created_at < $3 \
         GROUP BY r.customer_id, c.partner_id, c.name ORDER BY COUNT(*) DESC, r.customer_id{}",
        limit_clause(limit)
    );
    Query { name: format!("customer_runs ({label})"), sql, values }
}

/// `ReportRepository::partner_runs`.
fn partner_runs(distributor: &str, window: Window, limit: Option<u32>) -> Query {
    let sql = format!(
        "SELECT p.id, p.company, p.status, {STATUS_COUNTS}, \
           (SELECT COUNT(*) FROM customers c WHERE c.partner_id = p.id) AS customers \
         FROM partners p LEFT JOIN runs r ON r.partner_id = p.id AND r.created_at >= $2 AND r.created_at < $3 \
         WHERE p.distributor_id = $1 \
         GROUP BY p.id, p.company, p.status ORDER BY COUNT(r.created_at) DESC, p.id{}",
        limit_clause(limit)
    );
    let values = vec![distributor.into(), window.start().into(), window.end().into()];
    let name = if limit.is_some() { "partner_runs (top)" } else { "partner_runs (all)" };
    Query { name: name.into(), sql, values }
}

/// `ReportRepository::partner_statuses` as the usage report calls it: with no near-limit
/// thresholds, so that condition is `1 = 0`.
fn partner_statuses(distributor: &str, month: &str) -> Query {
    let sql = "SELECT COALESCE(SUM(CASE WHEN p.status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
           COALESCE(SUM(CASE WHEN p.status = 'active' THEN 1 ELSE 0 END), 0) AS active, \
           COALESCE(SUM(CASE WHEN p.status = 'suspended' THEN 1 ELSE 0 END), 0) AS suspended, \
           COALESCE(SUM(CASE WHEN 1 = 0 THEN 1 ELSE 0 END), 0) AS near_limit \
         FROM partners p LEFT JOIN run_usage u ON u.partner_id = p.id AND u.month = $2 \
         WHERE p.distributor_id = $1";
    Query { name: "partner_statuses".into(), sql: sql.into(), values: vec![distributor.into(), month.into()] }
}

/// `ReportRepository::partner_spend`: invoices issued in the window, per partner and currency.
fn partner_spend(scope: &Scope, window: Window) -> Query {
    let (condition, id, label) = match scope {
        Scope::Partner(p) => ("i.account_id = $1", p, "partner"),
        Scope::Distributor(d) => ("i.distributor_id = $1", d, "distributor"),
    };
    let sql = format!(
        "SELECT i.account_id AS id, p.company, i.currency, CAST(SUM(i.total_minor) AS BIGINT) AS spend \
         FROM invoices i JOIN partners p ON p.id = i.account_id \
         WHERE i.account_kind = 'partner' AND {condition} AND i.issued_at >= $2 AND i.issued_at < $3 \
         GROUP BY i.account_id, p.company, i.currency \
         ORDER BY i.currency, SUM(i.total_minor) DESC, i.account_id"
    );
    let values = vec![id.clone().into(), window.start().into(), window.end().into()];
    Query { name: format!("partner_spend ({label})"), sql, values }
}

/// `RequestCountRepository::totals` for a distributor: its own API requests, then its partners'.
fn request_totals(distributor: &str, window: Window) -> Query {
    const SUM: &str = "SELECT c.account_kind, c.account_id, CAST(SUM(c.requests) AS BIGINT) AS requests \
                       FROM api_request_counts c";
    const DAYS: &str = "c.day >= $2 AND c.day < $3 GROUP BY c.account_kind, c.account_id";
    let sql = format!(
        "{SUM} WHERE c.account_kind = 'distributor' AND c.account_id = $1 AND {DAYS} \
         UNION ALL \
         {SUM} JOIN partners p ON p.id = c.account_id \
         WHERE c.account_kind = 'partner' AND p.distributor_id = $1 AND {DAYS}"
    );
    let values = vec![distributor.into(), window.start().into(), window.end().into()];
    Query { name: "api request totals (distributor)".into(), sql, values }
}

/// `DistributorRepository::totals`.
fn distributor_totals(distributor: &str, month: &str) -> Query {
    let sql = "SELECT \
          (SELECT COUNT(*) FROM partners WHERE distributor_id = $1), \
          (SELECT CAST(COALESCE(SUM(u.used), 0) AS BIGINT) FROM run_usage u \
             JOIN partners p ON p.id = u.partner_id WHERE p.distributor_id = $1 AND u.month = $2), \
          (SELECT COUNT(*) FROM customers c JOIN partners p ON p.id = c.partner_id WHERE p.distributor_id = $1)";
    Query { name: "distributor totals".into(), sql: sql.into(), values: vec![distributor.into(), month.into()] }
}

/// The statements of `GET /v1/{partner|distributor}/analytics` (`ReportService::analytics`).
fn analytics_statements(scope: &Scope, window: Window) -> Vec<Query> {
    let mut set =
        vec![run_tallies(scope, window), customers_with_runs(scope, window), customer_runs(scope, window, Some(TOP_N))];
    if let Scope::Distributor(d) = scope {
        set.push(partner_runs(d, window, Some(TOP_N)));
    }
    set.push(partner_spend(scope, window));
    set
}

/// The statements of `GET /v1/distributor/reports/usage?group_by=partner`
/// (`ReportService::distributor_usage`, with the API request counts it adds).
fn usage_statements(distributor: &str, month: Window) -> Vec<Query> {
    let scope = Scope::Distributor(distributor.to_owned());
    let name = format!("{:04}-{:02}", month.from.year(), u8::from(month.from.month()));
    vec![
        run_tallies(&scope, month),
        partner_statuses(distributor, &name),
        distributor_totals(distributor, &name),
        partner_runs(distributor, month, None),
        request_totals(distributor, month),
    ]
}

/// The baseline's connections: a pool set up like the store's readers.
struct HandAnalytics {
    db: DatabaseConnection,
    backend: DbBackend,
}

impl HandAnalytics {
    async fn connect(url: &str) -> Result<Self> {
        let db = hand_sql::connect(url, Role::Readers).await?;
        let backend = db.get_database_backend();
        Ok(Self { db, backend })
    }

    /// Runs one request's statements in order, reading every row; returns the rows read.
    async fn run(&self, set: &[Query]) -> Result<usize, DbErr> {
        let mut rows = 0;
        for q in set {
            let stmt = hand_sql::statement(self.backend, &q.sql, q.values.iter().cloned());
            rows += self.db.query_all_raw(stmt).await?.len();
        }
        Ok(rows)
    }

    /// The statement's plan in one line, and whether it reads the whole `runs` table (or the
    /// whole of one of its indexes).
    async fn explain(&self, q: &Query) -> Result<(String, bool)> {
        let (prefix, column) = match self.backend {
            DbBackend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            _ => ("EXPLAIN ", "QUERY PLAN"),
        };
        let stmt = hand_sql::statement(self.backend, &format!("{prefix}{}", q.sql), q.values.iter().cloned());
        let rows = self.db.query_all_raw(stmt).await.with_context(|| format!("explaining {}", q.name))?;
        let mut lines = Vec::new();
        for row in rows {
            lines.push(row.try_get::<String>("", column).with_context(|| format!("reading the plan of {}", q.name))?);
        }
        Ok(match self.backend {
            DbBackend::Sqlite => sqlite_plan(&lines),
            _ => postgres_plan(&lines),
        })
    }

    async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }
}

/// SQLite's `EXPLAIN QUERY PLAN` details joined; a `SCAN` of `runs` (alias `r`) reads all of it.
fn sqlite_plan(details: &[String]) -> (String, bool) {
    let full = details.iter().any(|d| d.starts_with("SCAN r ") || d == "SCAN r" || d.starts_with("SCAN runs"));
    (details.join("; "), full)
}

/// PostgreSQL's plan nodes without costs, outermost first; a `Seq Scan on runs` reads all of it.
fn postgres_plan(lines: &[String]) -> (String, bool) {
    let nodes: Vec<String> = lines
        .iter()
        .map(|l| l.trim().trim_start_matches("->").trim())
        .filter(|l| !l.contains(':') || l.starts_with("InitPlan") || l.starts_with("SubPlan"))
        .map(|l| l.split("  (cost=").next().unwrap_or(l).trim().to_owned())
        .collect();
    let full = nodes.iter().any(|n| n.starts_with("Seq Scan on runs") || n.contains("Parallel Seq Scan on runs"));
    (nodes.join(" > "), full)
}

/// One measured endpoint: its request and the statements partnerd issues for it.
struct Endpoint {
    workload: &'static str,
    baseline: &'static str,
    path: String,
    key: (&'static str, String),
    statements: Arc<Vec<Query>>,
}

/// The four measured requests, for the first distributor and its first partner (the busiest).
fn endpoints(tree: &Tree, today: Date) -> Vec<Endpoint> {
    let (distributor, partner) = (&tree.distributors[0], &tree.partners[0].account);
    let (last_30, last_90, month) =
        (Window::days_ending(today, DEFAULT_DAYS), Window::days_ending(today, DAYS), Window::month_of(today));
    let partner_scope = Scope::Partner(partner.id.clone());
    let distributor_scope = Scope::Distributor(distributor.id.clone());
    let partner_key = ("X-Partner-Key", partner.key.clone());
    let distributor_key = ("X-Distributor-Key", distributor.key.clone());
    vec![
        Endpoint {
            workload: "analytics GET /v1/partner/analytics (default 30 days)",
            baseline: "hand SQL x4, no HTTP",
            path: "/v1/partner/analytics".into(),
            key: partner_key.clone(),
            statements: Arc::new(analytics_statements(&partner_scope, last_30)),
        },
        Endpoint {
            workload: "analytics GET /v1/partner/analytics?from_date&to_date (90 days)",
            baseline: "hand SQL x4, no HTTP",
            path: format!("/v1/partner/analytics?{}", last_90.query()),
            key: partner_key,
            statements: Arc::new(analytics_statements(&partner_scope, last_90)),
        },
        Endpoint {
            workload: "analytics GET /v1/distributor/analytics?from_date&to_date (90 days)",
            baseline: "hand SQL x5, no HTTP",
            path: format!("/v1/distributor/analytics?{}", last_90.query()),
            key: distributor_key.clone(),
            statements: Arc::new(analytics_statements(&distributor_scope, last_90)),
        },
        Endpoint {
            workload: "usage GET /v1/distributor/reports/usage?group_by=partner (this month)",
            baseline: "hand SQL x5, no HTTP",
            path: "/v1/distributor/reports/usage?group_by=partner".into(),
            key: distributor_key,
            statements: Arc::new(usage_statements(&distributor.id, month)),
        },
    ]
}

/// The whole analytics measurement on one back-end.
pub async fn bench(args: &Args, partnerd: &Partnerd, backend: Backend) -> Result<Report> {
    let name = backend_name(backend);
    let mut notes = Vec::new();
    let db = fresh_database(backend).await?;

    // --- the data: tenants through partnerd, runs straight into the database ---------------------
    let started = Instant::now();
    progress(&format!("{name}: analytics: distributors, partners and a worker with partnerd admin"));
    let mut tree = seed::create_accounts(partnerd, db.url()).await?;
    let server = partnerd.serve(db.url()).await?;
    let base = server.base_url.clone();
    progress(&format!("{name}: analytics: partnerd serving at {base}; {} customers over HTTP", seed::CUSTOMERS));
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.analytics_concurrency)
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")?;
    seed::create_tree_customers(&client, &base, &mut tree).await?;
    let tenants_took = started.elapsed();
    // The load takes the write lock for seconds at a time: partnerd is stopped meanwhile, and
    // started again over the full data set, as after a restart.
    let mut logs = vec![server.stop().await?];
    progress(&format!("{name}: analytics: inserting {} runs", thousands(args.runs as u64)));
    let now = OffsetDateTime::now_utc();
    let seeded = seed::insert_runs(db.url(), &tree, args.runs, now).await?;
    notes.push(seeding_note(&tree, &seeded, tenants_took));
    let server = partnerd.serve(db.url()).await?;
    let base = server.base_url.clone();
    progress(&format!("{name}: analytics: partnerd serving again at {base}"));

    // --- what is measured ------------------------------------------------------------------------
    let endpoints = endpoints(&tree, now.date());
    let hand = Arc::new(HandAnalytics::connect(db.url()).await?);
    notes.extend(plans(&hand, &endpoints).await?);
    notes.extend(checks(&client, &base, &endpoints, &tree, &seeded).await);

    let plan = Plan {
        requests: args.analytics_requests,
        concurrency: args.analytics_concurrency,
        max_time: Duration::from_secs(args.max_seconds),
    };
    // One request each way opens the connections and reads the pages in; at up to seconds per
    // request, more would only lengthen the run.
    let warm = Plan { requests: 1, concurrency: 1, ..plan };
    let mut rows = Vec::new();
    let mut baselines = Vec::new();
    for endpoint in &endpoints {
        progress(&format!(
            "{name}: {} ({} requests, then its baseline)",
            endpoint.workload,
            thousands(plan.requests as u64)
        ));
        let _ = over_http(warm, &client, &base, endpoint).await;
        let sample = over_http(plan, &client, &base, endpoint).await;
        let _ = by_hand(warm, &hand, endpoint).await;
        let baseline = by_hand(plan, &hand, endpoint).await;
        rows.push(Row {
            workload: endpoint.workload,
            subject: "partnerd/http",
            sample,
            failure_word: "non-200",
            unit: "req",
            baseline: baselines.len(),
        });
        baselines.push(Baseline { label: endpoint.baseline, sample: baseline, failure_word: "errors", unit: "set" });
    }

    logs.push(server.stop().await?);
    let (errors, warnings) = logs.iter().fold((0, 0), |(e, w), log| (e + log.errors, w + log.warnings));
    notes.push(format!("partnerd's logs over the run: {errors} ERROR and {warnings} WARN lines"));
    if let Some(first) = logs.into_iter().find_map(|log| log.first_error) {
        notes.push(format!("first ERROR line: {first}"));
    }
    if let Ok(hand) = Arc::try_unwrap(hand) {
        hand.close().await?;
    }
    drop(db);
    Ok(Report { backend: name, rows, baselines, notes })
}

fn seeding_note(tree: &Tree, seeded: &Seeded, tenants_took: Duration) -> String {
    let of_distributor: u64 =
        tree.partners.iter().zip(&seeded.per_partner).filter(|(p, _)| p.distributor == Some(0)).map(|(_, n)| n).sum();
    let managed = tree.partners.iter().filter(|p| p.distributor == Some(0)).count();
    let [queued, running, completed, failed] = seeded.by_status.map(thousands);
    format!(
        "seeding: tenants {:.1} s ({} distributors, {} partners, {} customers); {} runs inserted in {:.1} s \
         ({queued} queued, {running} running, {completed} completed, {failed} failed), the {} secondary indexes \
         of runs built in {:.1} s, then run_usage and {} {:.1} s; measured partner {} runs ({} customers), \
         measured distributor {} runs over {managed} partners",
        tenants_took.as_secs_f64(),
        tree.distributors.len(),
        tree.partners.len(),
        thousands(tree.partners.iter().map(|p| p.customers.len() as u64).sum()),
        thousands(seeded.total()),
        seeded.inserting.as_secs_f64(),
        seeded.indexes,
        seeded.indexing.as_secs_f64(),
        seeded.finishing_step,
        seeded.finishing.as_secs_f64(),
        thousands(seeded.per_partner.first().copied().unwrap_or(0)),
        tree.partners.first().map_or(0, |p| p.customers.len()),
        thousands(of_distributor),
    )
}

/// One line per distinct statement: how long one run of it took alone (the second of two, so
/// with warm pages), its plan, and a warning for a full scan of `runs`.
async fn plans(hand: &HandAnalytics, endpoints: &[Endpoint]) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    let mut notes = Vec::new();
    for q in endpoints.iter().flat_map(|e| e.statements.iter()) {
        if seen.contains(&q.name) {
            continue;
        }
        seen.push(q.name.clone());
        let (plan, full) = hand.explain(q).await?;
        let once = std::slice::from_ref(q);
        hand.run(once).await.with_context(|| format!("running {}", q.name))?;
        let started = Instant::now();
        let rows = hand.run(once).await.with_context(|| format!("running {}", q.name))?;
        let took = crate::report::ms(Some(started.elapsed()));
        let warning = if full { "FULL SCAN OF runs: " } else { "" };
        notes.push(format!("plan {} ({took} alone, {rows} rows): {warning}{plan}", q.name));
    }
    Ok(notes)
}

/// Checks, printed and not enforced, that partnerd's 90-day analytics count every seeded run of
/// the measured partner and distributor.
async fn checks(
    client: &reqwest::Client,
    base: &str,
    endpoints: &[Endpoint],
    tree: &Tree,
    seeded: &Seeded,
) -> Vec<String> {
    let partner = seeded.per_partner.first().copied().unwrap_or(0);
    let distributor: u64 =
        tree.partners.iter().zip(&seeded.per_partner).filter(|(p, _)| p.distributor == Some(0)).map(|(_, n)| n).sum();
    let mut notes = Vec::new();
    for (endpoint, seeded) in [(&endpoints[1], partner), (&endpoints[2], distributor)] {
        let answer: Result<Json> = async {
            let response =
                client.get(format!("{base}{}", endpoint.path)).header(endpoint.key.0, &endpoint.key.1).send().await?;
            Ok(response.error_for_status()?.json().await?)
        }
        .await;
        let counted = answer.map(|a| a["totals"]["runs"].as_u64());
        let what = endpoint.path.split('?').next().unwrap_or_default();
        notes.push(match counted {
            Ok(Some(n)) if n == seeded => format!("{what} over 90 days counts {} runs (= seeded)", thousands(n)),
            Ok(Some(n)) => {
                format!("{what} over 90 days counts {} runs but {} were seeded", thousands(n), thousands(seeded))
            }
            Ok(None) => format!("{what}: no totals.runs in the answer"),
            Err(e) => format!("{what}: could not check the totals: {e:#}"),
        });
    }
    notes
}

/// `GET endpoint.path` with its key, `plan.concurrency` at a time.
async fn over_http(plan: Plan, client: &reqwest::Client, base: &str, endpoint: &Endpoint) -> Sample {
    let client = client.clone();
    let url = format!("{base}{}", endpoint.path);
    let (header, key) = endpoint.key.clone();
    load::run(plan, move |_| load::http(client.get(&url).header(header, &key), 200)).await
}

/// The endpoint's statements by hand, `plan.concurrency` sets at a time.
async fn by_hand(plan: Plan, hand: &Arc<HandAnalytics>, endpoint: &Endpoint) -> Sample {
    let (hand, statements) = (Arc::clone(hand), Arc::clone(&endpoint.statements));
    load::run(plan, move |_| {
        let (hand, statements) = (Arc::clone(&hand), Arc::clone(&statements));
        async move {
            match hand.run(&statements).await {
                Ok(_) => Outcome::Ok { bytes: 0 },
                Err(e) => Outcome::Failed { kind: "database error".into(), detail: load::chain(&e) },
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn windows_cover_whole_utc_days() {
        let w = Window::days_ending(date!(2026 - 11 - 23), 90);
        assert_eq!((w.from, w.query()), (date!(2026 - 08 - 26), "from_date=2026-08-26&to_date=2026-11-23".into()));
        assert_eq!(w.end() - w.start(), 90 * MILLIS_PER_DAY);
        let dec = Window::month_of(date!(2026 - 12 - 31));
        assert_eq!((dec.from, dec.to), (date!(2026 - 12 - 01), date!(2026 - 12 - 31)));
    }

    #[test]
    fn each_baseline_label_counts_its_statements() {
        let account = |id: &str| crate::server::Account { id: id.into(), key: String::new() };
        let tree = Tree {
            distributors: vec![account("dist_1")],
            partners: vec![seed::SeededPartner { account: account("part_1"), distributor: Some(0), customers: vec![] }],
            worker_id: String::new(),
        };
        for e in endpoints(&tree, date!(2026 - 11 - 23)) {
            assert_eq!(e.baseline, format!("hand SQL x{}, no HTTP", e.statements.len()), "{}", e.workload);
        }
    }

    #[test]
    fn plans_that_read_all_runs_are_flagged() {
        let sqlite = |d: &[&str]| sqlite_plan(&d.iter().map(|s| s.to_string()).collect::<Vec<_>>()).1;
        assert!(sqlite(&["SCAN r"]));
        assert!(sqlite(&["SCAN r USING COVERING INDEX runs_queue"]));
        assert!(!sqlite(&["SEARCH r USING COVERING INDEX runs_partner_report (partner_id=? AND created_at>?)"]));
        let pg = postgres_plan(&[
            "HashAggregate  (cost=1.00..2.00 rows=1 width=8)".to_owned(),
            "  Group Key: r.product".to_owned(),
            "  ->  Seq Scan on runs r  (cost=0.00..1.00 rows=1 width=8)".to_owned(),
        ]);
        assert_eq!(pg, ("HashAggregate > Seq Scan on runs r".to_owned(), true));
    }
}
