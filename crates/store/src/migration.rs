//! Schema migrations: plain SQL files that run unchanged on SQLite and PostgreSQL, applied in
//! order and recorded by sea-orm-migration. Append new files; never edit one that has shipped.

use crate::db::Db;
use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait};

struct SqlMigration {
    name: &'static str,
    sql: &'static str,
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in statements(self.sql) {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Splits a file into statements at semicolons that end a line, dropping `--` comments.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let code = line.split("--").next().unwrap_or("").trim_end();
        if code.trim().is_empty() {
            continue;
        }
        current.push_str(code);
        current.push('\n');
        if code.ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

pub(crate) struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(SqlMigration {
                name: "m0001_accounts_and_keys",
                sql: include_str!("migrations/0001_accounts_and_keys.sql"),
            }),
            Box::new(SqlMigration {
                name: "m0002_runs_and_billing",
                sql: include_str!("migrations/0002_runs_and_billing.sql"),
            }),
            Box::new(SqlMigration {
                name: "m0003_partner_lifecycle_and_events",
                sql: include_str!("migrations/0003_partner_lifecycle_and_events.sql"),
            }),
            Box::new(SqlMigration {
                name: "m0004_usage_thresholds",
                sql: include_str!("migrations/0004_usage_thresholds.sql"),
            }),
            Box::new(SqlMigration { name: "m0005_webhooks", sql: include_str!("migrations/0005_webhooks.sql") }),
            Box::new(SqlMigration { name: "m0006_run_leases", sql: include_str!("migrations/0006_run_leases.sql") }),
            Box::new(SqlMigration {
                name: "m0007_reporting_indexes",
                sql: include_str!("migrations/0007_reporting_indexes.sql"),
            }),
            Box::new(SqlMigration { name: "m0008_invoices", sql: include_str!("migrations/0008_invoices.sql") }),
            Box::new(SqlMigration {
                name: "m0009_invoiced_until",
                sql: include_str!("migrations/0009_invoiced_until.sql"),
            }),
            Box::new(SqlMigration {
                name: "m0010_provider_accounts",
                sql: include_str!("migrations/0010_provider_accounts.sql"),
            }),
            Box::new(SqlMigration {
                name: "m0011_api_requests",
                sql: include_str!("migrations/0011_api_requests.sql"),
            }),
            Box::new(SqlMigration {
                name: "m0012_invoice_spend_index",
                sql: include_str!("migrations/0012_invoice_spend_index.sql"),
            }),
        ]
    }
}

/// An arbitrary constant naming partnerd's migration lock on PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x0070_6172_746e_6572; // "partner" in ASCII

/// Brings the schema up to date. Safe to run from several processes at once: on PostgreSQL the
/// work runs under a transaction-scoped advisory lock; on SQLite the single writer serialises it.
pub(crate) async fn migrate(db: &Db) -> Result<(), DbErr> {
    let txn = db.begin_write().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")).await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits_statements_and_drops_comments() {
        let sql = "-- head\nCREATE TABLE a (\n  x TEXT -- note\n);\nCREATE INDEX i ON a (x);\n";
        assert_eq!(statements(sql), ["CREATE TABLE a (\n  x TEXT\n);\n", "CREATE INDEX i ON a (x);\n"]);
    }
}
