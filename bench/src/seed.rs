//! The analytics data set. The tenant tree is made the way users make it: distributors, partners
//! and a worker by `partnerd admin`, customers over HTTP. The runs are then bulk-inserted
//! straight into the database (multi-row `INSERT`s in large transactions, with the secondary
//! indexes of `runs` dropped during the load and built again from their own definitions after
//! it), since a million triggers through the API would take far longer than the measurement.
//!
//! The shape: three distributors managing 30, 10 and 5 partners, plus 5 direct partners; 2,000
//! customers, 200 of them with the first partner (the one measured); runs spread evenly over the
//! last 90 days, 15 % of them the first partner's, the rest shared evenly by the other partners.
//! Within a partner, a few customers have most of the runs. Old runs are completed (93 %) or
//! failed; the last 90 minutes' are running (leased to the bench's worker) or queued.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sea_orm::sqlx::postgres::PgPoolCopyExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use time::{Date, OffsetDateTime, Time};

use crate::create_customers;
use crate::hand_sql::{self, Role};
use crate::server::{Account, Partner, Partnerd};

/// Partners managed by each distributor; the first distributor is the one measured.
pub const PARTNERS_PER_DISTRIBUTOR: [usize; 3] = [30, 10, 5];
/// Partners with no distributor.
pub const DIRECT_PARTNERS: usize = 5;
pub const CUSTOMERS: usize = 2_000;
/// Customers of the first partner (the measured one); the others share the rest evenly.
pub const FIRST_PARTNER_CUSTOMERS: usize = 200;
/// Per mille of the runs that are the first partner's.
const FIRST_PARTNER_SHARE: u64 = 150;
/// The runs span this many UTC days, today included.
pub const DAYS: i64 = 90;
/// Products (from the default catalog, all in the enterprise plan) with their weight in per cent.
const PRODUCTS: [(&str, u64); 4] = [("essential-eight", 50), ("nist-csf", 25), ("cis-controls", 15), ("iso-27001", 10)];
/// Runs younger than this are queued, then running until [`RUNNING_FOR`], then finished.
const QUEUED_FOR: i64 = 20 * 60_000;
const RUNNING_FOR: i64 = 90 * 60_000;
/// Per mille of the finished runs that failed.
const FAILED_SHARE: u64 = 70;
/// Rows per `INSERT` statement (SQLite) or per chunk of `COPY` data (PostgreSQL).
const ROWS_PER_CHUNK: usize = 1_000;
const ROWS_PER_TRANSACTION: usize = 100_000;

/// One partner of the tree: its account, its distributor (an index into `Tree::distributors`)
/// and its customers' ids.
pub struct SeededPartner {
    pub account: Partner,
    pub distributor: Option<usize>,
    pub customers: Vec<String>,
}

/// The accounts `partnerd admin` created; the first distributor and the first partner (one of
/// its partners) are the measured ones.
pub struct Tree {
    pub distributors: Vec<Account>,
    pub partners: Vec<SeededPartner>,
    pub worker_id: String,
}

/// Creates the distributors, partners and worker with `partnerd admin` (before `serve`).
pub async fn create_accounts(partnerd: &Partnerd, database_url: &str) -> Result<Tree> {
    let mut distributors = Vec::new();
    for n in 0..PARTNERS_PER_DISTRIBUTOR.len() {
        distributors.push(partnerd.create_distributor(database_url, n).await?);
    }
    let mut partners = Vec::new();
    let managed = PARTNERS_PER_DISTRIBUTOR.iter().enumerate().flat_map(|(d, n)| std::iter::repeat_n(Some(d), *n));
    for (n, distributor) in managed.chain(std::iter::repeat_n(None, DIRECT_PARTNERS)).enumerate() {
        let of = distributor.map(|d| distributors[d].id.as_str());
        let account = partnerd.create_partner_of(database_url, n, of).await?;
        partners.push(SeededPartner { account, distributor, customers: Vec::new() });
    }
    let worker_id = partnerd.create_worker(database_url, "bench-scanner").await?;
    Ok(Tree { distributors, partners, worker_id })
}

/// Creates every partner's customers over HTTP (`POST /v1/partner/customers/bulk`).
pub async fn create_tree_customers(client: &reqwest::Client, base: &str, tree: &mut Tree) -> Result<()> {
    let (others, rest) = (tree.partners.len().saturating_sub(1).max(1), CUSTOMERS - FIRST_PARTNER_CUSTOMERS);
    let mut first = 0;
    for (n, partner) in tree.partners.iter_mut().enumerate() {
        let count = if n == 0 { FIRST_PARTNER_CUSTOMERS } else { rest / others + usize::from(n <= rest % others) };
        partner.customers = create_customers(client, base, &partner.account, first, count).await?;
        first += count;
    }
    Ok(())
}

/// What [`insert_runs`] wrote.
pub struct Seeded {
    /// Runs per partner, in `Tree::partners` order.
    pub per_partner: Vec<u64>,
    /// Runs by status: queued, running, completed, failed.
    pub by_status: [u64; 4],
    /// Dropping the secondary indexes of `runs` and inserting the rows.
    pub inserting: Duration,
    /// How many secondary indexes `runs` has, and building them again after the rows.
    pub indexes: usize,
    pub indexing: Duration,
    /// `run_usage` rows, then [`Seeded::finishing_step`].
    pub finishing: Duration,
    /// `VACUUM (ANALYZE)` (PostgreSQL) or `PRAGMA wal_checkpoint(TRUNCATE)` (SQLite).
    pub finishing_step: &'static str,
}

impl Seeded {
    pub fn total(&self) -> u64 {
        self.per_partner.iter().sum()
    }
}

/// Inserts `n` runs over the [`DAYS`] days ending at `now`, then the `run_usage` rows that
/// count them (failed runs give their unit back). On PostgreSQL it then runs `VACUUM (ANALYZE)`,
/// which autovacuum would do shortly after such a load anyway, so the measurement does not race
/// it. SQLite gets no `ANALYZE`, as partnerd never runs one: its planner works without statistics.
pub async fn insert_runs(database_url: &str, tree: &Tree, n: usize, now: OffsetDateTime) -> Result<Seeded> {
    let db = hand_sql::connect(database_url, Role::Writer).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // For this (one) loading connection only; partnerd's own are untouched. A page cache
        // that holds the indexes being filled (with the default 2 MB every insert re-reads
        // pages), and no fsync.
        for setting in ["PRAGMA cache_size = -1048576", "PRAGMA synchronous = OFF"] {
            db.execute_unprepared(setting).await.with_context(|| setting.to_owned())?;
        }
    }
    let generator = Generator::new(tree, n, now);
    let started = Instant::now();
    // Filling the secondary indexes row by row would take most of the time: drop them and build
    // them again from their own definitions once the rows are in.
    let indexes = secondary_indexes(&db, "runs").await?;
    for (name, _) in &indexes {
        db.execute_unprepared(&format!("DROP INDEX {name}")).await.with_context(|| format!("dropping {name}"))?;
    }
    // One thread encodes the rows while the database takes in the previous chunk.
    let backend = db.get_database_backend();
    let encoding = if backend == DbBackend::Postgres { Encoding::CopyText } else { Encoding::SqlValues };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    let writer = std::thread::spawn(move || {
        let mut generator = generator;
        let mut tallies = (vec![0u64; generator.partners.len()], [0u64; 4]);
        let mut i = 0;
        while i < generator.n {
            let rows: Vec<[Field; 20]> = (i..generator.n.min(i + ROWS_PER_CHUNK))
                .map(|j| {
                    let run = generator.run(j);
                    tallies.0[run.partner] += 1;
                    tallies.1[run.status as usize] += 1;
                    generator.fields(&run, j)
                })
                .collect();
            i += rows.len();
            if tx.blocking_send(encoding.chunk(&rows)).is_err() {
                break;
            }
        }
        tallies
    });
    match encoding {
        Encoding::SqlValues => {
            let mut txn = db.begin().await?;
            let mut in_transaction = 0;
            while let Some(sql) = rx.recv().await {
                txn.execute_unprepared(&sql).await.context("inserting runs")?;
                in_transaction += ROWS_PER_CHUNK;
                if in_transaction >= ROWS_PER_TRANSACTION {
                    txn.commit().await?;
                    txn = db.begin().await?;
                    in_transaction = 0;
                }
            }
            txn.commit().await?;
        }
        Encoding::CopyText => {
            // One `COPY`: a single statement, so all the rows or none.
            let pool = db.get_postgres_connection_pool();
            let mut copy = pool.copy_in_raw(&format!("COPY runs ({RUN_COLUMNS}) FROM STDIN")).await?;
            while let Some(lines) = rx.recv().await {
                if let Err(e) = copy.send(lines.into_bytes()).await {
                    return Err(anyhow::Error::new(e).context("copying runs"));
                }
            }
            copy.finish().await.context("copying runs")?;
        }
    }
    let (per_partner, by_status) = writer.join().map_err(|_| anyhow::anyhow!("the run generator panicked"))?;
    let inserting = started.elapsed();

    let started = Instant::now();
    for (name, create) in &indexes {
        db.execute_unprepared(create).await.with_context(|| format!("building {name} again"))?;
    }
    let indexing = started.elapsed();

    let started = Instant::now();
    db.execute_unprepared(
        "INSERT INTO run_usage (partner_id, month, used) \
         SELECT partner_id, month, COUNT(*) FROM runs WHERE status <> 'failed' GROUP BY partner_id, month",
    )
    .await
    .context("counting the seeded runs into run_usage")?;
    let finishing_step = match db.get_database_backend() {
        DbBackend::Postgres => "VACUUM (ANALYZE)",
        _ => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    db.execute_unprepared(finishing_step).await.with_context(|| finishing_step.to_owned())?;
    let finishing = started.elapsed();
    db.close().await?;
    Ok(Seeded { per_partner, by_status, inserting, indexes: indexes.len(), indexing, finishing, finishing_step })
}

/// The secondary indexes of `table` as the schema defines them: their names and the statements
/// that create them (a primary key's index is left out; it stays).
async fn secondary_indexes(db: &DatabaseConnection, table: &str) -> Result<Vec<(String, String)>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL \
             ORDER BY name"
        }
        _ => {
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 \
             AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = CAST($1 AS regclass)) \
             ORDER BY indexname"
        }
    };
    let rows = db
        .query_all_raw(hand_sql::statement(backend, sql, [table.into()]))
        .await
        .with_context(|| format!("listing the indexes of {table}"))?;
    rows.iter().map(|r| Ok((r.try_get_by_index::<String>(0)?, r.try_get_by_index::<String>(1)?))).collect()
}

const RUN_COLUMNS: &str = "id, partner_id, customer_id, product, maturity_target, status, month, created_at, \
    started_at, completed_at, score, critical, high, medium, low, report_url, failure_reason, attempts, \
    lease_worker_id, lease_expires_at";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Queued = 0,
    Running = 1,
    Completed = 2,
    Failed = 3,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// One generated run: indexes into the generator's partners, customers and products.
#[derive(Debug)]
struct Run {
    partner: usize,
    customer: usize,
    product: usize,
    status: Status,
    created_at: i64,
    /// Draws for the run's details (maturity target, score, findings).
    detail: u64,
}

/// Deterministic runs over the window: the same `n` and `now` give the same rows.
struct Generator {
    partners: Vec<(String, Vec<String>)>,
    worker_id: String,
    n: usize,
    /// The window: midnight UTC of its first day, and `now`, in unix milliseconds.
    start: i64,
    now: i64,
    rng: SplitMix64,
}

impl Generator {
    fn new(tree: &Tree, n: usize, now: OffsetDateTime) -> Self {
        let first_day = now.date() - time::Duration::days(DAYS - 1);
        Self {
            partners: tree.partners.iter().map(|p| (p.account.id.clone(), p.customers.clone())).collect(),
            worker_id: tree.worker_id.clone(),
            n,
            start: millis(midnight(first_day)),
            now: millis(now),
            rng: SplitMix64(0x5eed_a11a_1e7c_5000),
        }
    }

    /// Run `i` of `n`: created in the `i`-th slice of the window (so in time order), for the first
    /// partner [`FIRST_PARTNER_SHARE`] of the time, else for any other partner.
    fn run(&mut self, i: usize) -> Run {
        let span = self.now - self.start;
        let slice = span / self.n.max(1) as i64;
        let created_at =
            self.start + (i as i64 * span) / self.n.max(1) as i64 + self.rng.below(slice.max(1) as u64) as i64;
        let partner = if self.partners.len() == 1 || self.rng.below(1_000) < FIRST_PARTNER_SHARE {
            0
        } else {
            1 + self.rng.below(self.partners.len() as u64 - 1) as usize
        };
        // u² skews the pick towards the first customers: a few busy ones, a long tail.
        let customers = self.partners[partner].1.len();
        let u = self.rng.unit();
        let customer = ((u * u * customers as f64) as usize).min(customers - 1);
        let mut pick = self.rng.below(100);
        let product = PRODUCTS
            .iter()
            .position(|(_, weight)| {
                let hit = pick < *weight;
                pick = pick.saturating_sub(*weight);
                hit
            })
            .unwrap_or(0);
        let age = self.now - created_at;
        let status = if age < QUEUED_FOR {
            Status::Queued
        } else if age < RUNNING_FOR {
            Status::Running
        } else if self.rng.below(1_000) < FAILED_SHARE {
            Status::Failed
        } else {
            Status::Completed
        };
        Run { partner, customer, product, status, created_at, detail: self.rng.next() }
    }

    /// The run's values, in [`RUN_COLUMNS`]' order.
    fn fields(&self, run: &Run, i: usize) -> [Field; 20] {
        let (partner_id, customers) = &self.partners[run.partner];
        let created = run.created_at;
        let d = run.detail;
        let id = format!("run_{i:024x}");
        let (started, completed, failure, attempts, lease) = match run.status {
            Status::Queued => (None, None, None, 0, None),
            Status::Running => (Some(created + 30_000), None, None, 1, Some(created + 2 * 3_600_000)),
            Status::Completed => (Some(created + 30_000), Some(created + 15 * 60_000), None, 1, None),
            Status::Failed => {
                (Some(created + 30_000), Some(created + 5 * 60_000), Some("scan timed out"), 1 + (d >> 8) % 3, None)
            }
        };
        let completed_with = |value: Field| if run.status == Status::Completed { value } else { Field::Null };
        let int = |v: Option<i64>| v.map_or(Field::Null, Field::Int);
        [
            Field::Text(id.clone()),
            Field::Text(partner_id.clone()),
            Field::Text(customers[run.customer].clone()),
            Field::Text(PRODUCTS[run.product].0.to_owned()),
            Field::Int(1 + (d % 5) as i64),
            Field::Text(run.status.as_str().to_owned()),
            Field::Text(month_of(created)),
            Field::Int(created),
            int(started),
            int(completed),
            completed_with(Field::Int(40 + ((d >> 40) % 61) as i64)),
            completed_with(Field::Int(((d >> 8) % 4) as i64)),
            completed_with(Field::Int(((d >> 16) % 12) as i64)),
            completed_with(Field::Int(((d >> 24) % 30) as i64)),
            completed_with(Field::Int(((d >> 32) % 60) as i64)),
            completed_with(Field::Text(format!("https://reports.example/{id}"))),
            failure.map_or(Field::Null, |f| Field::Text(f.to_owned())),
            Field::Int(attempts as i64),
            lease.map_or(Field::Null, |_| Field::Text(self.worker_id.clone())),
            int(lease),
        ]
    }
}

/// One column's value. Every text is generated here (ids, fixed words, dates), with no quote,
/// tab, backslash or newline in it, so both encodings below write it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Text(String),
    Int(i64),
    Null,
}

/// How rows travel to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// `INSERT … VALUES (…), (…)` statements (SQLite).
    SqlValues,
    /// `COPY … FROM STDIN` text: tab-separated, `\N` for NULL (PostgreSQL).
    CopyText,
}

impl Encoding {
    /// `rows` encoded as one chunk: a whole statement, or lines of `COPY` data.
    fn chunk(self, rows: &[[Field; 20]]) -> String {
        let mut out = String::with_capacity(rows.len() * 280 + 400);
        if self == Self::SqlValues {
            let _ = write!(out, "INSERT INTO runs ({RUN_COLUMNS}) VALUES ");
        }
        for (n, row) in rows.iter().enumerate() {
            match self {
                Self::SqlValues => {
                    out.push_str(if n == 0 { "(" } else { ",(" });
                    for (c, field) in row.iter().enumerate() {
                        if c > 0 {
                            out.push(',');
                        }
                        let _ = match field {
                            Field::Text(t) => write!(out, "'{t}'"),
                            Field::Int(v) => write!(out, "{v}"),
                            Field::Null => write!(out, "NULL"),
                        };
                    }
                    out.push(')');
                }
                Self::CopyText => {
                    for (c, field) in row.iter().enumerate() {
                        if c > 0 {
                            out.push('\t');
                        }
                        let _ = match field {
                            Field::Text(t) => write!(out, "{t}"),
                            Field::Int(v) => write!(out, "{v}"),
                            Field::Null => write!(out, "\\N"),
                        };
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// A small, fast, deterministic generator (SplitMix64); the seed data needs no better.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n` (`n > 0`); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// In `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn midnight(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

pub fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `YYYY-MM` (UTC) of unix milliseconds.
fn month_of(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1_000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn tree(customers: &[usize]) -> Tree {
        let account = |id: String| Account { id, key: String::new() };
        Tree {
            distributors: Vec::new(),
            partners: customers
                .iter()
                .enumerate()
                .map(|(p, n)| SeededPartner {
                    account: account(format!("part_{p:024x}")),
                    distributor: None,
                    customers: (0..*n).map(|c| format!("cust_{p:012x}{c:012x}")).collect(),
                })
                .collect(),
            worker_id: "wrk_000000000000000000000001".into(),
        }
    }

    #[test]
    fn runs_fill_the_window_in_time_order_with_the_first_partners_share() {
        let now = datetime!(2026-11-23 06:00 UTC);
        let n = 20_000;
        let mut g = Generator::new(&tree(&[20, 5, 5, 5]), n, now);
        let runs: Vec<Run> = (0..n).map(|i| g.run(i)).collect();
        let start = millis(datetime!(2026-08-26 00:00 UTC));
        assert!(runs.iter().all(|r| (start..=millis(now)).contains(&r.created_at)));
        assert!(runs.windows(2).all(|w| w[0].created_at <= w[1].created_at + (millis(now) - start) / n as i64));
        let first = runs.iter().filter(|r| r.partner == 0).count() as f64 / n as f64;
        assert!((0.13..0.17).contains(&first), "first partner's share {first}");
        let statuses = |s| runs.iter().filter(|r| r.status == s).count();
        assert!(statuses(Status::Queued) > 0 && statuses(Status::Running) > statuses(Status::Queued));
        let failed = statuses(Status::Failed) as f64 / (statuses(Status::Failed) + statuses(Status::Completed)) as f64;
        assert!((0.05..0.09).contains(&failed), "failed share {failed}");
        assert!(runs.iter().all(|r| r.status != Status::Completed || millis(now) - r.created_at >= RUNNING_FOR));
    }

    #[test]
    fn both_encodings_carry_every_column_and_the_month_of_creation() {
        let now = datetime!(2026-11-23 06:00 UTC);
        let mut g = Generator::new(&tree(&[3]), 1_000, now);
        let run = g.run(0);
        let rows = [g.fields(&run, 7), g.fields(&run, 8)];
        assert_eq!(rows[0][6], Field::Text("2026-08".into()), "the first run is from 26 August");
        let columns = RUN_COLUMNS.split(',').count();
        let sql = Encoding::SqlValues.chunk(&rows);
        assert!(sql.starts_with("INSERT INTO runs (id, partner_id,"), "{sql}");
        assert!(sql.contains(" VALUES ('run_000000000000000000000007','part_"), "{sql}");
        assert_eq!(sql.matches(",(").count(), 1, "two tuples: {sql}");
        let copy = Encoding::CopyText.chunk(&rows);
        let lines: Vec<&str> = copy.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.split('\t').count() == columns), "{copy}");
        assert!(lines[1].starts_with("run_000000000000000000000008\tpart_"), "{copy}");
        assert_eq!(month_of(millis(datetime!(2026-11-30 23:59:59 UTC))), "2026-11");
        assert_eq!(month_of(millis(datetime!(2026-12-01 00:00 UTC))), "2026-12");
    }
}
