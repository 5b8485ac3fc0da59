//! Accounts: distributors, partners and the lifecycle they share.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::billing::Subscription;
use crate::catalog::PlanId;
use crate::ids::{DistributorId, InvalidId, PartnerId, WorkerId};
use crate::keys::KeyOwner;
use crate::values::{DisplayName, Email, InvalidValue};

/// Where an account is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// Provisioned, not yet activated: its keys (if any) are refused.
    Pending,
    Active,
    /// Stopped by its distributor or the operator.
    Suspended,
}

/// A lifecycle change that is not allowed from the current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    #[error("the account is already active")]
    AlreadyActive,
    #[error("the account is already suspended")]
    AlreadySuspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn is_active(self) -> bool {
        self == Self::Active
    }

    /// Pending or suspended → active.
    pub fn activate(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Pending | Self::Suspended => Ok(Self::Active),
            Self::Active => Err(IllegalTransition::AlreadyActive),
        }
    }

    /// Active or pending → suspended.
    pub fn suspend(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Pending | Self::Active => Ok(Self::Suspended),
            Self::Suspended => Err(IllegalTransition::AlreadySuspended),
        }
    }
}

impl FromStr for AccountStatus {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            _ => Err(InvalidValue { reason: "must be one of active, suspended, pending" }),
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distributor {
    pub id: DistributorId,
    pub company: DisplayName,
    pub email: Email,
    pub status: AccountStatus,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    /// `None` for a direct partner that no distributor manages.
    pub distributor_id: Option<DistributorId>,
    pub company: DisplayName,
    pub email: Email,
    /// The admin contact's name.
    pub name: DisplayName,
    pub status: AccountStatus,
    /// Plan, billing terms and current period: the one record of what the partner pays for.
    pub subscription: Subscription,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Partner {
    pub fn plan(&self) -> &PlanId {
        &self.subscription.plan
    }
}

/// A worker: one of the vendor's scanners, which executes runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub id: WorkerId,
    pub name: DisplayName,
    pub created_at: OffsetDateTime,
}

/// A partner or a distributor: the accounts that hold invoices and make counted API requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountRef {
    Partner(PartnerId),
    Distributor(DistributorId),
}

impl AccountRef {
    /// The account whose requests a key's owner makes, or `None` for a worker.
    pub fn of(owner: &KeyOwner) -> Option<Self> {
        match owner {
            KeyOwner::Partner(id) => Some(Self::Partner(id.clone())),
            KeyOwner::Distributor(id) => Some(Self::Distributor(id.clone())),
            KeyOwner::Worker(_) => None,
        }
    }

    /// `partner` or `distributor`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Partner(_) => "partner",
            Self::Distributor(_) => "distributor",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Partner(id) => id.as_str(),
            Self::Distributor(id) => id.as_str(),
        }
    }

    /// Rebuilds an account from its stored kind and id.
    pub fn parse(kind: &str, id: &str) -> Result<Self, InvalidId> {
        match kind {
            "partner" => PartnerId::parse(id).map(Self::Partner),
            _ => DistributorId::parse(id).map(Self::Distributor),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AccountStatus::*;
    use super::*;

    #[test]
    fn legal_transitions() {
        assert_eq!(Pending.activate(), Ok(Active));
        assert_eq!(Suspended.activate(), Ok(Active));
        assert_eq!(Active.suspend(), Ok(Suspended));
        assert_eq!(Pending.suspend(), Ok(Suspended));
    }

    #[test]
    fn repeated_transitions_are_refused() {
        assert_eq!(Active.activate(), Err(IllegalTransition::AlreadyActive));
        assert_eq!(Suspended.suspend(), Err(IllegalTransition::AlreadySuspended));
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [Pending, Active, Suspended] {
            assert_eq!(s.as_str().parse::<AccountStatus>(), Ok(s));
        }
        assert!("Active".parse::<AccountStatus>().is_err());
    }
}
