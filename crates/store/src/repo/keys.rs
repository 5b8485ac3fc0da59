use async_trait::async_trait;
use partnerd_domain::event::Event;
use partnerd_domain::ids::{DistributorId, PartnerId, WorkerId};
use partnerd_domain::keys::{KeyHash, KeyOwner, KeySlot};
use partnerd_domain::ports::{
    InfraError, KeyEvents, KeyInsertError, KeyRepository, Principal, RevokeKeyError, SlotEvents,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, SqlErr};
use time::OffsetDateTime;

use super::{events, lock_owner};
use crate::convert::{corrupt, infra, millis, status};
use crate::{Store, db};

/// How often an insert that lost a race for a slot looks again before reporting the slots full.
const SLOT_RACE_RETRIES: usize = 3;

pub(crate) fn owner_kind(owner: &KeyOwner) -> &'static str {
    owner.kind().as_str()
}

fn owner_from_row(kind: &str, id: &str) -> Result<KeyOwner, InfraError> {
    Ok(match kind {
        "partner" => KeyOwner::Partner(PartnerId::parse(id).map_err(corrupt)?),
        "distributor" => KeyOwner::Distributor(DistributorId::parse(id).map_err(corrupt)?),
        "worker" => KeyOwner::Worker(WorkerId::parse(id).map_err(corrupt)?),
        other => return Err(corrupt(format!("unknown key owner kind {other}"))),
    })
}

/// Revokes every active key of `owner` inside `txn`, recording the event of each slot revoked.
pub(crate) async fn revoke_all(
    txn: &DatabaseTransaction,
    owner: &KeyOwner,
    now: OffsetDateTime,
    slot_events: &SlotEvents,
) -> Result<(), InfraError> {
    let sql = "UPDATE api_keys SET revoked_at = $1 WHERE owner_kind = $2 AND owner_id = $3 AND revoked_at IS NULL \
               RETURNING slot";
    let values = [millis(now).into(), owner_kind(owner).into(), owner.id().into()];
    let rows = txn.query_all_raw(db::stmt(txn.get_database_backend(), sql, values)).await.map_err(infra)?;
    for row in rows {
        let slot: i16 = row.try_get_by_index(0).map_err(infra)?;
        let slot = KeySlot::new(i64::from(slot)).ok_or_else(|| corrupt(format!("key slot {slot}")))?;
        events::record_all(txn, slot_events.for_slot(slot).cloned().as_slice()).await?;
    }
    Ok(())
}

/// Inserts an active key in `slot` within `txn`.
pub(crate) async fn insert_key(
    txn: &DatabaseTransaction,
    owner: &KeyOwner,
    slot: KeySlot,
    hash: &KeyHash,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    let sql = "INSERT INTO api_keys (key_hash, owner_kind, owner_id, slot, created_at) VALUES ($1, $2, $3, $4, $5)";
    let values = [
        hash.as_str().into(),
        owner_kind(owner).into(),
        owner.id().into(),
        i16::from(slot.get()).into(),
        millis(now).into(),
    ];
    txn.execute_raw(db::stmt(txn.get_database_backend(), sql, values)).await?;
    Ok(())
}

#[async_trait]
impl KeyRepository for Store {
    async fn insert_in_free_slot(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        now: OffsetDateTime,
        events: &SlotEvents,
    ) -> Result<KeySlot, KeyInsertError> {
        // One statement picks the lowest slot with no active key and fills it; its event goes in
        // the same transaction. Two racing inserts may pick the same slot: the partial unique
        // index lets one win, and the loser (whose transaction is then void) tries again.
        let sql = "INSERT INTO api_keys (key_hash, owner_kind, owner_id, slot, created_at) \
                   SELECT $1, $2, $3, s.slot, $4 FROM (SELECT 1 AS slot UNION ALL SELECT 2 AS slot) s \
                   WHERE NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.owner_kind = $2 AND k.owner_id = $3 \
                                     AND k.slot = s.slot AND k.revoked_at IS NULL) \
                   ORDER BY s.slot LIMIT 1 RETURNING slot";
        for _ in 0..SLOT_RACE_RETRIES {
            let txn = self.db.begin_write().await.map_err(infra)?;
            let values = [hash.as_str().into(), owner_kind(owner).into(), owner.id().into(), millis(now).into()];
            match txn.query_one_raw(self.db.stmt(sql, values)).await {
                Ok(Some(row)) => {
                    let slot: i16 = row.try_get_by_index(0).map_err(infra)?;
                    let slot = KeySlot::new(slot.into()).ok_or_else(|| corrupt("slot out of range"))?;
                    if let Some(event) = events.for_slot(slot) {
                        events::record(&txn, event).await?;
                    }
                    txn.commit().await.map_err(infra)?;
                    return Ok(slot);
                }
                Ok(None) => return Err(KeyInsertError::SlotsFull),
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    txn.rollback().await.map_err(infra)?;
                    continue;
                }
                Err(e) => return Err(infra(e).into()),
            }
        }
        Err(KeyInsertError::SlotsFull)
    }

    async fn reissue(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        now: OffsetDateTime,
        key_events: &KeyEvents,
    ) -> Result<(), InfraError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        lock_owner(&txn, owner).await.map_err(infra)?;
        revoke_all(&txn, owner, now, &key_events.revoked).await?;
        insert_key(&txn, owner, KeySlot::FIRST, hash, now).await.map_err(infra)?;
        events::record_all(&txn, key_events.created.as_slice()).await?;
        txn.commit().await.map_err(infra)
    }

    async fn revoke_slot(
        &self,
        owner: &KeyOwner,
        slot: KeySlot,
        now: OffsetDateTime,
        event: Option<Event>,
    ) -> Result<(), RevokeKeyError> {
        let txn = self.db.begin_write().await.map_err(infra)?;
        lock_owner(&txn, owner).await.map_err(infra)?;
        let sql = "SELECT slot FROM api_keys WHERE owner_kind = $1 AND owner_id = $2 AND revoked_at IS NULL";
        let rows =
            txn.query_all_raw(self.db.stmt(sql, [owner_kind(owner).into(), owner.id().into()])).await.map_err(infra)?;
        let active: Vec<i16> = rows.iter().map(|r| r.try_get_by_index(0)).collect::<Result<_, _>>().map_err(infra)?;
        if !active.contains(&i16::from(slot.get())) {
            return Err(RevokeKeyError::EmptySlot);
        }
        if active.len() == 1 {
            return Err(RevokeKeyError::LastKey);
        }
        let revoke = "UPDATE api_keys SET revoked_at = $1 \
                      WHERE owner_kind = $2 AND owner_id = $3 AND slot = $4 AND revoked_at IS NULL";
        let values = [millis(now).into(), owner_kind(owner).into(), owner.id().into(), i16::from(slot.get()).into()];
        txn.execute_raw(self.db.stmt(revoke, values)).await.map_err(infra)?;
        if let Some(event) = &event {
            events::record(&txn, event).await?;
        }
        txn.commit().await.map_err(infra)?;
        Ok(())
    }

    async fn find_principal(&self, hash: &KeyHash) -> Result<Option<Principal>, InfraError> {
        let sql = "SELECT k.owner_kind, k.owner_id, k.slot, k.key_hash, \
                          COALESCE(p.status, d.status, w.status) AS owner_status \
                   FROM api_keys k \
                   LEFT JOIN partners p ON k.owner_kind = 'partner' AND p.id = k.owner_id \
                   LEFT JOIN distributors d ON k.owner_kind = 'distributor' AND d.id = k.owner_id \
                   LEFT JOIN workers w ON k.owner_kind = 'worker' AND w.id = k.owner_id \
                   WHERE k.key_hash = $1 AND k.revoked_at IS NULL";
        let Some(row) =
            self.db.reader().query_one_raw(self.db.stmt(sql, [hash.as_str().into()])).await.map_err(infra)?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get_by_index(0).map_err(infra)?;
        let id: String = row.try_get_by_index(1).map_err(infra)?;
        let slot: i16 = row.try_get_by_index(2).map_err(infra)?;
        let stored: String = row.try_get_by_index(3).map_err(infra)?;
        // A key whose owner row is gone opens nothing.
        let Some(owner_status) = row.try_get_by_index::<Option<String>>(4).map_err(infra)? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            owner: owner_from_row(&kind, &id)?,
            slot: KeySlot::new(slot.into()).ok_or_else(|| corrupt("slot out of range"))?,
            stored_hash: KeyHash::from_stored(stored),
            owner_status: status(&owner_status)?,
        }))
    }
}
