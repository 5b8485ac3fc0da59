//! partnerd's storage adapter: every repository port of the domain over sea-orm, on SQLite (the
//! embedded default) or PostgreSQL, with migrations that run on both from one source.

mod convert;
mod db;
mod entity;
mod migration;
mod repo;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::DbConfig;
use partnerd_domain::ports::InfraError;

/// The store: one value implements every repository port. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: db::Db,
}

impl Store {
    /// Connects (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(config: &DbConfig) -> Result<Self, InfraError> {
        Ok(Self { db: db::Db::connect(config).await.map_err(InfraError::new)? })
    }

    /// Connects and brings the schema up to date.
    pub async fn open(config: &DbConfig) -> Result<Self, InfraError> {
        let store = Self::connect(config).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), InfraError> {
        migration::migrate(&self.db).await.map_err(InfraError::new)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.db.backend() {
            sea_orm::DbBackend::Postgres => "postgres",
            sea_orm::DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    pub async fn close(self) -> Result<(), InfraError> {
        self.db.close().await.map_err(InfraError::new)
    }
}
