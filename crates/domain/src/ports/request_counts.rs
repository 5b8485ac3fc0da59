//! API requests counted per account and UTC day. The HTTP adapter counts authenticated requests
//! in memory and hands them over in batches every few seconds; the store adds each batch to its
//! per-day counters, which usage reports and dashboards read.

use async_trait::async_trait;
use time::Date;

use super::InfraError;
use crate::account::AccountRef;
use crate::report::{Period, ReportScope};

/// The account an API request is counted for. Only partner and distributor keys are counted:
/// workers are the vendor's own scanners, not API consumers ([`AccountRef::of`]).
pub type CountedAccount = AccountRef;

/// Requests of one account on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    pub account: CountedAccount,
    pub day: Date,
    pub requests: u64,
}

/// Requests of one account summed over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRequests {
    pub account: CountedAccount,
    pub requests: u64,
}

/// The per-day request counters.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RequestCountRepository: Send + Sync {
    /// Adds each count of `batch` to its `(account, day)` counter (a counter that does not exist
    /// yet starts at zero), **in one transaction**: on `Err` nothing of the batch was added, so
    /// the caller may offer the same counts again. The addition happens in the database (one
    /// upsert, never a read followed by a write), so concurrent batches, from this process or
    /// others, that touch the same counter add up exactly. A batch may name one counter more
    /// than once; its counts are summed.
    async fn add(&self, batch: &[RequestCount]) -> Result<(), InfraError>;

    /// The requests counted on the days of `period`, one line per account with any, in one
    /// grouped query: for a partner scope, the partner's own; for a distributor scope, the
    /// distributor's own and those of each of its partners (by the partners' current
    /// distributor, as run reports count them). Only what was added so far: requests still
    /// waiting in a process's memory are not there yet.
    async fn totals(&self, scope: &ReportScope, period: &Period) -> Result<Vec<AccountRequests>, InfraError>;
}
