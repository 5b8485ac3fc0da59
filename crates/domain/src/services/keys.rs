use std::sync::Arc;

use time::OffsetDateTime;

use crate::keys::{ApiKey, KeyOwner, KeySlot};
use crate::ports::{Clock, InfraError, KeyGenerator, KeyInsertError, KeyRepository, RevokeKeyError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the account already has the maximum number of API keys ({})", KeySlot::MAX_ACTIVE)]
    MaxKeys,
    #[error("slot must be 1 or 2")]
    InvalidSlot,
    #[error("no active key in that slot")]
    EmptySlot,
    #[error("the only active key cannot be revoked: generate a new key first")]
    LastKey,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// A key just made, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    pub slot: KeySlot,
    pub key: ApiKey,
    pub created_at: OffsetDateTime,
}

/// Key rotation for an account: at most two active keys, never zero.
pub struct KeyService {
    keys: Arc<dyn KeyRepository>,
    clock: Arc<dyn Clock>,
    key_gen: Arc<dyn KeyGenerator>,
}

impl KeyService {
    pub fn new(keys: Arc<dyn KeyRepository>, clock: Arc<dyn Clock>, key_gen: Arc<dyn KeyGenerator>) -> Self {
        Self { keys, clock, key_gen }
    }

    /// Generates a key in the lowest free slot.
    pub async fn generate(&self, owner: &KeyOwner) -> Result<IssuedKey, KeyError> {
        let key = ApiKey::generate(owner.kind(), &*self.key_gen);
        let now = self.clock.now();
        let slot = self.keys.insert_in_free_slot(owner, &key.hash(), now).await.map_err(|e| match e {
            KeyInsertError::SlotsFull => KeyError::MaxKeys,
            KeyInsertError::Internal(e) => KeyError::Internal(e),
        })?;
        Ok(IssuedKey { slot, key, created_at: now })
    }

    /// Revokes the key in `slot` (as given on the wire).
    pub async fn revoke(&self, owner: &KeyOwner, slot: i64) -> Result<(), KeyError> {
        let slot = KeySlot::new(slot).ok_or(KeyError::InvalidSlot)?;
        self.keys.revoke_slot(owner, slot, self.clock.now()).await.map_err(|e| match e {
            RevokeKeyError::EmptySlot => KeyError::EmptySlot,
            RevokeKeyError::LastKey => KeyError::LastKey,
            RevokeKeyError::Internal(e) => KeyError::Internal(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PartnerId;
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use time::macros::datetime;

    #[tokio::test]
    async fn rotation_fills_slot_two_refuses_a_third_and_never_revokes_the_last() {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let service =
            KeyService::new(store.clone(), Arc::new(FixedClock::at(datetime!(2026-04-03 10:20 UTC))), ids.clone());
        let owner = KeyOwner::Partner(PartnerId::generate(&*ids));
        assert_eq!(service.generate(&owner).await.unwrap().slot, KeySlot::FIRST);
        let second = service.generate(&owner).await.unwrap();
        assert_eq!(second.slot, KeySlot::SECOND);
        assert!(second.key.reveal().starts_with("pk_live_"));
        assert!(matches!(service.generate(&owner).await, Err(KeyError::MaxKeys)));
        assert!(matches!(service.revoke(&owner, 3).await, Err(KeyError::InvalidSlot)));
        service.revoke(&owner, 1).await.unwrap();
        assert!(matches!(service.revoke(&owner, 1).await, Err(KeyError::EmptySlot)));
        assert!(matches!(service.revoke(&owner, 2).await, Err(KeyError::LastKey)));
        assert_eq!(service.generate(&owner).await.unwrap().slot, KeySlot::FIRST, "the freed slot is reused");
    }
}
