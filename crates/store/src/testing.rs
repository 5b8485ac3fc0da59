//! Throwaway databases for tests: a fresh SQLite file, or a fresh PostgreSQL database created
//! through the server named by `PARTNERD_TEST_POSTGRES_URL`. Each is removed when dropped.
//!
//! When that variable is unset, PostgreSQL tests are skipped with a message, except under
//! `CI=true`, where they fail: CI never skips the PostgreSQL back-end silently.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectionTrait, Database};

pub const POSTGRES_URL_VAR: &str = "PARTNERD_TEST_POSTGRES_URL";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos % 1_000_000_000)
}

/// Which back-end a test database lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new, empty database on `backend`, or `None` when PostgreSQL is not configured (and
    /// this is not CI).
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("partnerd_test_{}.db", unique_suffix()));
        Self { url: format!("sqlite://{}", path.display()), cleanup: Cleanup::File(path) }
    }

    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{POSTGRES_URL_VAR} is not set under CI=true: the PostgreSQL tests are mandatory there"
            );
            eprintln!("skipping a PostgreSQL test: {POSTGRES_URL_VAR} is not set");
            return None;
        };
        let name = format!("partnerd_test_{}", unique_suffix());
        let admin = Database::connect(&admin_url).await.expect("connect to the PostgreSQL test server");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
        admin.close().await.ok();
        let url = match admin_url.rsplit_once('/') {
            Some((server, _db))
                if server.contains("://") && server.split("://").nth(1).is_some_and(|s| !s.is_empty()) =>
            {
                format!("{server}/{name}")
            }
            _ => panic!("{POSTGRES_URL_VAR} must name a database, like postgres://postgres@127.0.0.1:5432/postgres"),
        };
        Some(Self { url, cleanup: Cleanup::Postgres { admin_url, name } })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    rt.block_on(async {
                        let admin = Database::connect(&admin_url).await.ok()?;
                        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()?;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
        }
    }
}
