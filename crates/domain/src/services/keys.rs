use std::sync::Arc;

use time::OffsetDateTime;

use crate::event::{Event, EventType};
use crate::ids::{EventId, PartnerId};
use crate::keys::{ApiKey, KeyOwner, KeySlot};
use crate::ports::{
    Clock, IdGenerator, InfraError, KeyEvents, KeyGenerator, KeyInsertError, KeyRepository, RevokeKeyError, SlotEvents,
};

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
    ids: Arc<dyn IdGenerator>,
}

/// A `key.*` event for the partner's own endpoint. It names the slot, never the key.
pub(crate) fn key_event(
    ids: &dyn IdGenerator,
    event_type: EventType,
    partner: &PartnerId,
    slot: KeySlot,
    at: OffsetDateTime,
) -> Event {
    Event::new(EventId::generate(ids), event_type, at)
        .to_partner(partner.clone())
        .with("partnerId", partner.to_string())
        .with("slot", i64::from(slot.get()))
}

/// The `key.*` events of a change that revokes every key of `owner` and, with `issues`, stores a
/// fresh slot-1 key: events only for partners, whose endpoints receive them.
pub(crate) fn revoke_all_events(
    ids: &dyn IdGenerator,
    owner: &KeyOwner,
    issues: bool,
    at: OffsetDateTime,
) -> KeyEvents {
    let KeyOwner::Partner(partner) = owner else { return KeyEvents::default() };
    KeyEvents {
        revoked: SlotEvents::new(|slot| key_event(ids, EventType::KeyRevoked, partner, slot, at)),
        created: issues.then(|| key_event(ids, EventType::KeyCreated, partner, KeySlot::FIRST, at)),
    }
}

impl KeyService {
    pub fn new(
        keys: Arc<dyn KeyRepository>,
        clock: Arc<dyn Clock>,
        key_gen: Arc<dyn KeyGenerator>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { keys, clock, key_gen, ids }
    }

    fn event(&self, event_type: EventType, partner: &PartnerId, slot: KeySlot, at: OffsetDateTime) -> Event {
        key_event(&*self.ids, event_type, partner, slot, at)
    }

    /// Generates a key in the lowest free slot; a partner's `key.created` is recorded with it.
    pub async fn generate(&self, owner: &KeyOwner) -> Result<IssuedKey, KeyError> {
        let key = ApiKey::generate(owner.kind(), &*self.key_gen);
        let now = self.clock.now();
        let events = match owner {
            KeyOwner::Partner(partner) => SlotEvents::new(|slot| self.event(EventType::KeyCreated, partner, slot, now)),
            _ => SlotEvents::none(),
        };
        let slot = self.keys.insert_in_free_slot(owner, &key.hash(), now, &events).await.map_err(|e| match e {
            KeyInsertError::SlotsFull => KeyError::MaxKeys,
            KeyInsertError::Internal(e) => KeyError::Internal(e),
        })?;
        Ok(IssuedKey { slot, key, created_at: now })
    }

    /// Revokes the key in `slot` (as given on the wire).
    pub async fn revoke(&self, owner: &KeyOwner, slot: i64) -> Result<(), KeyError> {
        let slot = KeySlot::new(slot).ok_or(KeyError::InvalidSlot)?;
        let now = self.clock.now();
        let event = match owner {
            KeyOwner::Partner(partner) => Some(self.event(EventType::KeyRevoked, partner, slot, now)),
            _ => None,
        };
        self.keys.revoke_slot(owner, slot, now, event).await.map_err(|e| match e {
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
        let service = KeyService::new(
            store.clone(),
            Arc::new(FixedClock::at(datetime!(2026-04-03 10:20 UTC))),
            ids.clone(),
            ids.clone(),
        );
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

    #[tokio::test]
    async fn a_partners_key_changes_are_recorded_as_events_naming_the_slot_never_the_key() {
        use crate::event::EventValue;
        use crate::ids::DistributorId;
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let clock = Arc::new(FixedClock::at(datetime!(2026-04-03 10:20 UTC)));
        let service = KeyService::new(store.clone(), clock, ids.clone(), ids.clone());
        let partner = PartnerId::generate(&*ids);
        let owner = KeyOwner::Partner(partner.clone());
        service.generate(&owner).await.unwrap();
        let second = service.generate(&owner).await.unwrap();
        assert!(service.generate(&owner).await.is_err());
        service.revoke(&owner, 1).await.unwrap();
        assert!(service.revoke(&owner, 2).await.is_err(), "the last key stays");
        service.generate(&KeyOwner::Distributor(DistributorId::generate(&*ids))).await.unwrap();
        let events = store.events();
        let summary: Vec<(&str, Option<EventValue>)> = events
            .iter()
            .map(|e| (e.event_type.as_str(), e.data.iter().find(|(k, _)| k == "slot").map(|(_, v)| v.clone())))
            .collect();
        assert_eq!(
            summary,
            [
                ("key.created", Some(EventValue::Int(1))),
                ("key.created", Some(EventValue::Int(2))),
                ("key.revoked", Some(EventValue::Int(1))),
            ],
            "refusals and distributor keys record nothing"
        );
        assert!(events.iter().all(|e| e.to_partner.as_ref() == Some(&partner)));
        let text = format!("{events:?}");
        assert!(!text.contains(second.key.reveal()), "an event never carries a key");
    }
}
