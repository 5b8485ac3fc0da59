//! In-memory fakes of every port, for tests in this and other crates (feature `mocks`).
//! They keep the same atomicity promises as the real store: each method holds one lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{AccountStatus, Distributor, Partner, Worker};
use crate::ids::{DistributorId, PartnerId};
use crate::keys::{KeyHash, KeyOwner, KeySlot};
use crate::ports::{
    Clock, DistributorRepository, DistributorTotals, IdGenerator, InfraError, KeyGenerator, KeyInsertError,
    KeyRepository, PartnerRepository, PartnerUsage, Principal, WorkerRepository,
};
use crate::values::{Email, Month};

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(now: OffsetDateTime) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap() = now;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Ids and keys from a counter: distinct, predictable, not secret.
#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn id_body(&self) -> [u8; 12] {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut body = [0; 12];
        body[4..].copy_from_slice(&n.to_be_bytes());
        body
    }
}

impl KeyGenerator for SequentialIds {
    fn key_bytes(&self) -> [u8; 32] {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut body = [0; 32];
        body[24..].copy_from_slice(&n.to_be_bytes());
        body
    }
}

struct StoredKey {
    owner: KeyOwner,
    slot: KeySlot,
    hash: KeyHash,
    revoked: bool,
}

#[derive(Default)]
struct State {
    distributors: Vec<Distributor>,
    partners: Vec<Partner>,
    workers: Vec<Worker>,
    keys: Vec<StoredKey>,
}

impl State {
    fn active_slots(&self, owner: &KeyOwner) -> Vec<KeySlot> {
        self.keys.iter().filter(|k| &k.owner == owner && !k.revoked).map(|k| k.slot).collect()
    }

    fn add_key(&mut self, owner: KeyOwner, slot: KeySlot, hash: KeyHash) {
        self.keys.push(StoredKey { owner, slot, hash, revoked: false });
    }

    fn status_of(&self, owner: &KeyOwner) -> Option<AccountStatus> {
        match owner {
            KeyOwner::Partner(id) => self.partners.iter().find(|p| &p.id == id).map(|p| p.status),
            KeyOwner::Distributor(id) => self.distributors.iter().find(|d| &d.id == id).map(|d| d.status),
            KeyOwner::Worker(id) => self.workers.iter().any(|w| &w.id == id).then_some(AccountStatus::Active),
        }
    }
}

/// Every repository port over one in-memory state.
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes of every key ever stored, revoked ones included (for tests that look for leaks).
    pub fn stored_key_hashes(&self) -> Vec<String> {
        self.state.lock().unwrap().keys.iter().map(|k| k.hash.as_str().to_owned()).collect()
    }
}

#[async_trait]
impl KeyRepository for InMemoryStore {
    async fn insert_in_free_slot(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        _now: OffsetDateTime,
    ) -> Result<KeySlot, KeyInsertError> {
        let mut state = self.state.lock().unwrap();
        let taken = state.active_slots(owner);
        let slot = KeySlot::ALL.into_iter().find(|s| !taken.contains(s)).ok_or(KeyInsertError::SlotsFull)?;
        state.add_key(owner.clone(), slot, hash.clone());
        Ok(slot)
    }

    async fn reissue(&self, owner: &KeyOwner, hash: &KeyHash, _now: OffsetDateTime) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.keys.iter_mut().filter(|k| &k.owner == owner).for_each(|k| k.revoked = true);
        state.add_key(owner.clone(), KeySlot::FIRST, hash.clone());
        Ok(())
    }

    async fn find_principal(&self, hash: &KeyHash) -> Result<Option<Principal>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.keys.iter().find(|k| &k.hash == hash && !k.revoked).and_then(|k| {
            Some(Principal {
                owner: k.owner.clone(),
                slot: k.slot,
                stored_hash: k.hash.clone(),
                owner_status: state.status_of(&k.owner)?,
            })
        }))
    }
}

#[async_trait]
impl DistributorRepository for InMemoryStore {
    async fn insert(&self, distributor: &Distributor, first_key: Option<KeyHash>) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.distributors.push(distributor.clone());
        if let Some(hash) = first_key {
            state.add_key(KeyOwner::Distributor(distributor.id.clone()), KeySlot::FIRST, hash);
        }
        Ok(())
    }

    async fn get(&self, id: &DistributorId) -> Result<Option<Distributor>, InfraError> {
        Ok(self.state.lock().unwrap().distributors.iter().find(|d| &d.id == id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Distributor>, InfraError> {
        Ok(self.state.lock().unwrap().distributors.iter().find(|d| &d.email == email).cloned())
    }

    async fn set_status(
        &self,
        id: &DistributorId,
        status: AccountStatus,
        _now: OffsetDateTime,
    ) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        Ok(state.distributors.iter_mut().find(|d| &d.id == id).map(|d| d.status = status).is_some())
    }

    async fn totals(&self, id: &DistributorId, _month: Month) -> Result<DistributorTotals, InfraError> {
        let state = self.state.lock().unwrap();
        let partners = state.partners.iter().filter(|p| p.distributor_id.as_ref() == Some(id)).count();
        Ok(DistributorTotals { partners_count: partners as u64, runs_in_month: 0, customers_count: 0 })
    }
}

#[async_trait]
impl PartnerRepository for InMemoryStore {
    async fn insert(&self, partner: &Partner, first_key: Option<KeyHash>) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.partners.push(partner.clone());
        if let Some(hash) = first_key {
            state.add_key(KeyOwner::Partner(partner.id.clone()), KeySlot::FIRST, hash);
        }
        Ok(())
    }

    async fn get(&self, id: &PartnerId) -> Result<Option<Partner>, InfraError> {
        Ok(self.state.lock().unwrap().partners.iter().find(|p| &p.id == id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Partner>, InfraError> {
        Ok(self.state.lock().unwrap().partners.iter().find(|p| &p.email == email).cloned())
    }

    async fn usage(&self, _id: &PartnerId, _month: Month) -> Result<PartnerUsage, InfraError> {
        Ok(PartnerUsage::default())
    }
}

#[async_trait]
impl WorkerRepository for InMemoryStore {
    async fn insert(&self, worker: &Worker, first_key: KeyHash) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.workers.push(worker.clone());
        state.add_key(KeyOwner::Worker(worker.id.clone()), KeySlot::FIRST, first_key);
        Ok(())
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Worker>, InfraError> {
        Ok(self.state.lock().unwrap().workers.iter().find(|w| w.name.as_str() == name).cloned())
    }
}
