//! Repository port implementations, one module per aggregate.

mod accounts;
mod billing;
mod customers;
mod events;
mod invoices;
mod keys;
mod managed;
mod provider_accounts;
mod reports;
mod request_counts;
mod run_queue;
mod runs;
mod webhooks;

use partnerd_domain::keys::KeyOwner;
use partnerd_domain::ports::Page;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait, ModelTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};

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

/// Oldest-first keyset pagination over `(created, id)`. `scope` is the query already limited to
/// the owner, so a cursor from another owner is not found and yields an empty page. Answers the
/// rows and whether more follow.
pub(crate) async fn oldest_first<E: EntityTrait>(
    db: &DatabaseConnection,
    scope: Select<E>,
    created: E::Column,
    id: E::Column,
    page: &Page,
) -> Result<(Vec<E::Model>, bool), DbErr> {
    let mut query = scope.clone().order_by_asc(created).order_by_asc(id);
    if let Some(after) = &page.starting_after {
        let Some(cursor) = scope.filter(id.eq(after.as_str())).one(db).await? else { return Ok((vec![], false)) };
        let (at, key) = (cursor.get(created), cursor.get(id));
        query = query.filter(created.gt(at.clone()).or(created.eq(at).and(id.gt(key))));
    }
    if let Some(limit) = page.limit {
        query = query.limit(u64::from(limit) + 1);
    }
    let mut rows = query.all(db).await?;
    let has_more = page.limit.is_some_and(|l| rows.len() > l as usize);
    if let Some(limit) = page.limit {
        rows.truncate(limit as usize);
    }
    Ok((rows, has_more))
}
