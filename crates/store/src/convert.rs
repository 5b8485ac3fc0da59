//! Conversions between stored columns and domain values, at the store's edge.

use partnerd_domain::account::AccountStatus;
use partnerd_domain::ports::InfraError;
use sea_orm::DbErr;
use time::OffsetDateTime;

/// Timestamps are stored as unix milliseconds.
pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("timestamps fit in i64 milliseconds")
}

pub(crate) fn from_millis(ms: i64) -> Result<OffsetDateTime, InfraError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(corrupt)
}

pub(crate) fn status(raw: &str) -> Result<AccountStatus, InfraError> {
    raw.parse().map_err(corrupt)
}

/// A stored value the domain refuses: the database was edited by hand or a migration is missing.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> InfraError {
    InfraError::new(format!("stored value is not valid: {e}"))
}

pub(crate) fn infra(e: DbErr) -> InfraError {
    InfraError::new(e)
}
