//! Ports: what the domain needs from the outside world. Adapters implement them; services hold
//! them as `Arc<dyn Port>`. Each repository method documents the invariant its implementation
//! must keep atomically.

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{AccountStatus, Distributor, Partner, Worker};
use crate::ids::{DistributorId, PartnerId};
use crate::keys::{KeyHash, KeyOwner, KeySlot};
use crate::values::{Email, Month};

/// An infrastructure failure (database down, driver error). Opaque on purpose: callers can only
/// report it. Its cause chain is kept for the log, never shown to API clients.
pub struct InfraError(Box<dyn StdError + Send + Sync>);

impl InfraError {
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

impl fmt::Display for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for InfraError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// The current time. Services never read the system clock directly.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// Randomness for ids (96 bits each).
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn id_body(&self) -> [u8; 12];
}

/// Randomness for API keys: must come from the operating system's CSPRNG.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    fn key_bytes(&self) -> [u8; 32];
}

/// An active key found by its hash, with its owner's current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub owner: KeyOwner,
    pub slot: KeySlot,
    /// The hash as stored, for a constant-time comparison with the presented key's hash.
    pub stored_hash: KeyHash,
    pub owner_status: AccountStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyInsertError {
    #[error("the account already has the maximum number of active keys")]
    SlotsFull,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// API keys, stored only as hashes.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait KeyRepository: Send + Sync {
    /// Stores `hash` as an active key in the owner's lowest free slot and returns the slot.
    /// Atomic: an owner never holds more than [`KeySlot::MAX_ACTIVE`] active keys, however many
    /// inserts race (`SlotsFull` for the losers).
    async fn insert_in_free_slot(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        now: OffsetDateTime,
    ) -> Result<KeySlot, KeyInsertError>;

    /// Revokes every active key of `owner` and stores `hash` in slot 1, in one transaction.
    async fn reissue(&self, owner: &KeyOwner, hash: &KeyHash, now: OffsetDateTime) -> Result<(), InfraError>;

    /// The active (not revoked) key with this hash, if any, and its owner's status, read in one
    /// statement so a revoke or a suspension is seen by the very next request.
    async fn find_principal(&self, hash: &KeyHash) -> Result<Option<Principal>, InfraError>;
}

/// A partner's usage in one month, from live data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartnerUsage {
    /// Runs that count against the monthly limit (failed runs give theirs back).
    pub runs_used: u64,
    pub customers_count: u64,
}

/// A distributor's totals across its partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DistributorTotals {
    pub partners_count: u64,
    /// Runs counted against its partners' limits in the month (a failed run gives its unit back).
    pub runs_in_month: u64,
    pub customers_count: u64,
}

#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait DistributorRepository: Send + Sync {
    /// Inserts the distributor and, when given, its first key in slot 1, in one transaction.
    async fn insert(&self, distributor: &Distributor, first_key: Option<KeyHash>) -> Result<(), InfraError>;

    async fn get(&self, id: &DistributorId) -> Result<Option<Distributor>, InfraError>;

    /// The oldest distributor with this e-mail address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Distributor>, InfraError>;

    /// Sets the status; `false` when no such distributor exists.
    async fn set_status(
        &self,
        id: &DistributorId,
        status: AccountStatus,
        now: OffsetDateTime,
    ) -> Result<bool, InfraError>;

    /// Partner, run and customer counts computed from the data, in one round of aggregate queries.
    async fn totals(&self, id: &DistributorId, month: Month) -> Result<DistributorTotals, InfraError>;
}

#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PartnerRepository: Send + Sync {
    /// Inserts the partner and, when given, its first key in slot 1, in one transaction.
    async fn insert(&self, partner: &Partner, first_key: Option<KeyHash>) -> Result<(), InfraError>;

    async fn get(&self, id: &PartnerId) -> Result<Option<Partner>, InfraError>;

    /// The oldest partner with this e-mail address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Partner>, InfraError>;

    async fn usage(&self, id: &PartnerId, month: Month) -> Result<PartnerUsage, InfraError>;
}

#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait WorkerRepository: Send + Sync {
    /// Inserts the worker and its first key in slot 1, in one transaction.
    async fn insert(&self, worker: &Worker, first_key: KeyHash) -> Result<(), InfraError>;

    /// The oldest worker with this name.
    async fn find_by_name(&self, name: &str) -> Result<Option<Worker>, InfraError>;
}
