//! Repository port implementations, one module per aggregate.

mod accounts;
mod billing;
mod customers;
mod events;
mod keys;
mod managed;
mod runs;

use partnerd_domain::keys::KeyOwner;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};

use crate::db;

/// Locks the owner's account row until the transaction ends (PostgreSQL), so checks and writes
/// on its keys and quotas cannot interleave with another transaction's. SQLite needs nothing:
/// write transactions begin `IMMEDIATE` and so run one at a time.
pub(crate) async fn lock_owner(txn: &DatabaseTransaction, owner: &KeyOwner) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let table = match owner {
        KeyOwner::Partner(_) => "partners",
        KeyOwner::Distributor(_) => "distributors",
        KeyOwner::Worker(_) => "workers",
    };
    let sql = format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE");
    txn.execute_raw(db::stmt(DbBackend::Postgres, &sql, [owner.id().into()])).await?;
    Ok(())
}
