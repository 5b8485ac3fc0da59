//! Connections. SQLite gets one writer connection (every write transaction `BEGIN IMMEDIATE`)
//! beside a pool of readers: concurrent deferred transactions fail with SQLITE_BUSY_SNAPSHOT
//! whatever the busy timeout, while one immediate writer never does. PostgreSQL uses one pool for
//! both, and write transactions lock the rows they guard (`FOR UPDATE`).

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

/// How long a SQLite connection waits for another process's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub(crate) struct Db {
    read: DatabaseConnection,
    write: DatabaseConnection,
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// `sqlite://path/to/file.db`, `sqlite::memory:` or `postgres://user@host/db`.
    pub url: String,
    /// Pool size for readers (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 16 }
    }
}

/// Accepts a plain file path as a SQLite database.
pub(crate) fn normalise_url(url: &str) -> String {
    if url.contains("://") || url.starts_with("sqlite:") { url.to_owned() } else { format!("sqlite://{url}") }
}

impl Db {
    pub(crate) async fn connect(config: &DbConfig) -> Result<Self, DbErr> {
        let url = normalise_url(&config.url);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = ConnectOptions::new(url);
            options
                .max_connections(config.max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .sqlx_logging(false);
            let pool = Database::connect(options).await?;
            return Ok(Self { read: pool.clone(), write: pool });
        }
        if !url.starts_with("sqlite:") {
            return Err(DbErr::Custom(format!(
                "unsupported database URL scheme in {}: use sqlite://FILE or postgres://…",
                url.split("://").next().unwrap_or("")
            )));
        }
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let sqlite = |max: u32| {
            let mut options = ConnectOptions::new(url.clone());
            options.max_connections(max).min_connections(1).sqlx_logging(false);
            options.map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
                let o = o
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .synchronous(SqliteSynchronous::Normal);
                if memory { o } else { o.journal_mode(SqliteJournalMode::Wal) }
            });
            // Keep connections for the life of the process: an in-memory database lives only
            // as long as its connection.
            options.idle_timeout(None::<Duration>).max_lifetime(None::<Duration>);
            options
        };
        let write = Database::connect(sqlite(1)).await?;
        // An in-memory database is private to its connection: readers must share the writer.
        let read = if memory { write.clone() } else { Database::connect(sqlite(config.max_connections)).await? };
        Ok(Self { read, write })
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// For single statements that only read.
    pub(crate) fn reader(&self) -> &DatabaseConnection {
        &self.read
    }

    /// For single statements that write (each its own transaction). On SQLite this is the one
    /// writer connection.
    pub(crate) fn writer(&self) -> &DatabaseConnection {
        &self.write
    }

    /// A transaction that may write. On SQLite it takes the write lock at `BEGIN`, so it never
    /// fails half-way with a stale snapshot.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let mode = match self.backend() {
            DbBackend::Sqlite => Some(SqliteTransactionMode::Immediate),
            _ => None,
        };
        self.write.begin_with_options(TransactionOptions { sqlite_transaction_mode: mode, ..Default::default() }).await
    }

    /// A read-only transaction whose statements all see one snapshot: `REPEATABLE READ` on
    /// PostgreSQL (`READ COMMITTED` would take a snapshot per statement); on SQLite a deferred
    /// transaction on a reader connection, which keeps the snapshot of its first read.
    pub(crate) async fn begin_snapshot(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = match self.backend() {
            DbBackend::Postgres => TransactionOptions {
                isolation_level: Some(IsolationLevel::RepeatableRead),
                access_mode: Some(AccessMode::ReadOnly),
                ..Default::default()
            },
            _ => TransactionOptions::default(),
        };
        self.read.begin_with_options(options).await
    }

    /// A statement written with PostgreSQL's `$1, $2…` placeholders, made right for this backend.
    pub(crate) fn stmt(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        stmt(self.backend(), sql, values)
    }

    pub(crate) async fn close(self) -> Result<(), DbErr> {
        self.read.close_by_ref().await?;
        self.write.close_by_ref().await
    }
}

/// `$first, $first+1, …` for `n` bound values (made right for SQLite by [`stmt`]).
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// See [`Db::stmt`]. SQLite binds `?N` by number, so `$N` becomes `?N` outside string literals.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => {
            let mut out = String::with_capacity(sql.len());
            let mut in_literal = false;
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\'' {
                    in_literal = !in_literal;
                }
                let numbered = !in_literal && c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
                out.push(if numbered { '?' } else { c });
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_sqlite_and_kept_for_postgres() {
        let sql = "SELECT '$1' FROM t WHERE a = $1 AND b = $12";
        assert_eq!(stmt(DbBackend::Sqlite, sql, []).sql, "SELECT '$1' FROM t WHERE a = ?1 AND b = ?12");
        assert_eq!(stmt(DbBackend::Postgres, sql, []).sql, sql);
    }

    #[test]
    fn bare_paths_are_sqlite_files() {
        assert_eq!(normalise_url("partnerd.db"), "sqlite://partnerd.db");
        assert_eq!(normalise_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(normalise_url("sqlite::memory:"), "sqlite::memory:");
    }
}
