//! Where a partner's subscription lives at an external (Stripe-compatible) billing provider. The
//! provider's adapter creates the customer and subscription the first time it bills the partner
//! and keeps their ids in partnerd's database through this port, so every later plan change,
//! from any process, finds the same ones.

use async_trait::async_trait;

use super::InfraError;
use crate::ids::PartnerId;

/// The provider's ids for a partner: its customer, its subscription and that subscription's one
/// item (the line whose plan a change replaces). Opaque strings such as `cus_…`, `sub_…`, `si_…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAccount {
    pub customer: String,
    pub subscription: String,
    pub item: String,
}

/// The partner → provider ids mapping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProviderAccountRepository: Send + Sync {
    /// The partner's account at the provider, `None` before it was first billed there.
    async fn get(&self, partner: &PartnerId) -> Result<Option<ProviderAccount>, InfraError>;

    /// Stores `account` for the partner **only if it has none yet** (insert-if-absent, decided by
    /// the database, never a read followed by a write in Rust), and answers the account stored
    /// for the partner afterwards: `account` when this call stored it, otherwise the one stored
    /// before. So two processes racing to open the same partner's account both get the winner's
    /// ids and can discard what they created for nothing. Never overwrites.
    async fn put(&self, partner: &PartnerId, account: &ProviderAccount) -> Result<ProviderAccount, InfraError>;
}
