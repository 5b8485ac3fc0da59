//! The trigger baseline: the run-limit reservation transaction written by hand and sent through
//! sea-orm's raw statements, with no HTTP, no authentication and no domain code in between.
//!
//! The connections are set up the way partnerd's store sets up its own: on SQLite one writer
//! connection whose transactions begin `IMMEDIATE` (WAL, `synchronous = NORMAL`, foreign keys
//! on, a 30 s busy timeout); on PostgreSQL a pool of 16 connections, the transaction locking the
//! partner's row with `SELECT … FOR UPDATE` first.

use std::time::Duration;

use anyhow::{Context, Result};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, Value,
};
use time::OffsetDateTime;

/// partnerd's default `--database-max-connections`: its PostgreSQL pool, or its SQLite readers.
pub const POOL_SIZE: u32 = 16;

pub struct HandSql {
    db: DatabaseConnection,
    backend: DbBackend,
}

/// One run to queue: which partner, which of its customers, and the new run's id.
pub struct RunToQueue<'a> {
    pub partner_id: &'a str,
    pub customer_id: &'a str,
    pub run_id: &'a str,
}

/// Which of the store's connections to set up: on SQLite its one writer or its pool of readers
/// (one pool for both on PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Readers,
}

/// Connects to `url` the way partnerd's store does for `role`.
pub async fn connect(url: &str, role: Role) -> Result<DatabaseConnection> {
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut options = ConnectOptions::new(url.to_owned());
    options.acquire_timeout(Duration::from_secs(60)).sqlx_logging(false);
    if postgres {
        options.max_connections(POOL_SIZE);
    } else {
        let connections = if role == Role::Writer { 1 } else { POOL_SIZE };
        options.max_connections(connections).min_connections(1);
        options.map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
            o.foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .synchronous(SqliteSynchronous::Normal)
                .journal_mode(SqliteJournalMode::Wal)
        });
    }
    Database::connect(options).await.context("connecting for the hand-written SQL baseline")
}

/// A statement written with `$1, $2…`, turned into `?1, ?2…` for SQLite (no `$` may appear in
/// a string literal).
pub fn statement(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

impl HandSql {
    pub async fn connect(url: &str) -> Result<Self> {
        let db = connect(url, Role::Writer).await?;
        let backend = db.get_database_backend();
        Ok(Self { db, backend })
    }

    fn stmt(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        statement(self.backend, sql, values)
    }

    /// Inserts `n` customers for `partner_id` in one transaction and returns their ids.
    pub async fn insert_customers(&self, partner_id: &str, first: usize, n: usize) -> Result<Vec<String>> {
        let now = now_millis();
        let txn = self.db.begin().await?;
        let mut ids = Vec::with_capacity(n);
        for i in first..first + n {
            let id = format!("cust_{i:024x}");
            let sql = "INSERT INTO customers (id, partner_id, name, tenant_id, email, receivers, \
                       questionnaire_recipients, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, NULL, '[]', '[]', $5, $5)";
            let values = [
                id.clone().into(),
                partner_id.into(),
                format!("Bench customer {i}").into(),
                tenant_id(i).into(),
                now.into(),
            ];
            txn.execute_raw(self.stmt(sql, values)).await.context("inserting a baseline customer")?;
            ids.push(id);
        }
        txn.commit().await?;
        Ok(ids)
    }

    /// Opens and closes a connection's worth of trivial queries, so the measured transactions do
    /// not pay for connecting.
    pub async fn warm_up(&self) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..POOL_SIZE {
            let db = self.db.clone();
            let stmt = self.stmt("SELECT 1", []);
            tasks.spawn(async move { db.query_one_raw(stmt).await.map(drop) });
        }
        while let Some(r) = tasks.join_next().await {
            r.context("warm-up task")??;
        }
        Ok(())
    }

    /// The reservation transaction: take the write lock (`BEGIN IMMEDIATE` on SQLite, the
    /// partner's row `FOR UPDATE` on PostgreSQL), read this month's `run_usage`, upsert it, and
    /// insert the run row.
    pub async fn queue_run(&self, run: &RunToQueue<'_>) -> Result<(), DbErr> {
        let now = OffsetDateTime::now_utc();
        let month = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
        let created_at = millis(now);
        let txn = match self.backend {
            DbBackend::Sqlite => {
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                };
                self.db.begin_with_options(options).await?
            }
            _ => {
                let txn = self.db.begin().await?;
                let lock = self.stmt("SELECT id FROM partners WHERE id = $1 FOR UPDATE", [run.partner_id.into()]);
                txn.execute_raw(lock).await?;
                txn
            }
        };
        let read = self.stmt(
            "SELECT used FROM run_usage WHERE partner_id = $1 AND month = $2",
            [run.partner_id.into(), month.clone().into()],
        );
        let used: i64 = match txn.query_one_raw(read).await? {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        };
        // The enterprise plan is unlimited: there is no limit to compare `used` with, but it is
        // read all the same, as the real reservation does.
        std::hint::black_box(used);
        let upsert = self.stmt(
            "INSERT INTO run_usage (partner_id, month, used) VALUES ($1, $2, 1) \
             ON CONFLICT (partner_id, month) DO UPDATE SET used = run_usage.used + excluded.used",
            [run.partner_id.into(), month.clone().into()],
        );
        txn.execute_raw(upsert).await?;
        let insert = self.stmt(
            "INSERT INTO runs (id, partner_id, customer_id, product, maturity_target, status, month, created_at) \
             VALUES ($1, $2, $3, 'essential-eight', 3, 'queued', $4, $5)",
            [run.run_id.into(), run.partner_id.into(), run.customer_id.into(), month.into(), created_at.into()],
        );
        txn.execute_raw(insert).await?;
        txn.commit().await
    }

    /// Rows in `runs` (a check that every committed transaction left its row).
    pub async fn count_runs(&self) -> Result<i64> {
        let row = self.db.query_one_raw(self.stmt("SELECT COUNT(*) FROM runs", [])).await?.context("no count row")?;
        Ok(row.try_get_by_index(0)?)
    }

    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    millis(OffsetDateTime::now_utc())
}

/// A GUID-shaped tenant id, distinct for each `i`.
pub fn tenant_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}
