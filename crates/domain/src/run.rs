//! Assessment runs: one product run against one customer, metered against the partner's
//! monthly run limit.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::catalog::ProductId;
use crate::event::{Event, EventType};
use crate::ids::{CustomerId, EventId, PartnerId, RunId};
use crate::values::{InvalidValue, Month, TenantId};

/// Where a run is: `queued → running → completed | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 4] = [Self::Queued, Self::Running, Self::Completed, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for RunStatus {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(InvalidValue { reason: "must be one of queued, running, completed, failed" })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A maturity level to assess against, 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaturityTarget(u8);

impl MaturityTarget {
    pub fn new(level: i64) -> Result<Self, InvalidValue> {
        match u8::try_from(level) {
            Ok(l @ 1..=5) => Ok(Self(l)),
            _ => Err(InvalidValue { reason: "must be an integer from 1 to 5" }),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// What a worker reports for a completed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// 0–100.
    pub score: u8,
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub report_url: Option<String>,
}

impl RunResult {
    /// All findings: the sum of the four severities.
    pub fn findings(&self) -> u64 {
        [self.critical, self.high, self.medium, self.low].into_iter().map(u64::from).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub partner_id: PartnerId,
    pub customer_id: CustomerId,
    pub product: ProductId,
    pub maturity_target: MaturityTarget,
    pub status: RunStatus,
    /// The month whose run limit this run counts against (the month it was created in, UTC).
    pub month: Month,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    pub result: Option<RunResult>,
    pub failure_reason: Option<String>,
}

/// A run as listed, with its customer's name for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    pub run: Run,
    pub customer_name: String,
}

/// Filters for listing runs; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub month: Option<Month>,
    pub product: Option<ProductId>,
    pub customer_id: Option<CustomerId>,
}

/// Claims a run may have: after its lease expires this many times it is `failed`.
pub const MAX_RUN_ATTEMPTS: u32 = 3;

/// How long a claim or heartbeat holds a run: 10 s to 1 h, 300 s unless asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSeconds(u32);

impl LeaseSeconds {
    pub const DEFAULT: Self = Self(300);

    pub fn new(seconds: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(seconds) {
            Ok(s @ 10..=3600) => Ok(Self(s)),
            _ => Err(InvalidValue { reason: "must be an integer from 10 to 3600" }),
        }
    }

    pub fn duration(self) -> time::Duration {
        time::Duration::seconds(i64::from(self.0))
    }
}

/// A run a worker holds, with what it needs to execute it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    pub run: Run,
    pub customer_name: String,
    pub tenant_id: TenantId,
    pub lease_expires_at: OffsetDateTime,
}

/// Longest failure reason kept (a scanner's stderr tail, say).
pub const MAX_FAILURE_REASON: usize = 2000;

/// The `assessment.*` event for `run` as it now stands, sent to its partner. Each kind happens
/// at most once per run, so its id derives from the run's: recording it twice is impossible.
pub fn assessment_event(kind: EventType, run: &Run, at: OffsetDateTime) -> Event {
    let id = EventId::derived(&format!("{}:{}", kind.as_str(), run.id));
    let mut event = Event::new(id, kind, at)
        .to_partner(run.partner_id.clone())
        .with("assessmentId", run.id.to_string())
        .with("customerId", run.customer_id.to_string())
        .with("product", run.product.to_string())
        .with("status", run.status.as_str());
    if let Some(result) = &run.result {
        event = event
            .with("score", i64::from(result.score))
            .with("findings", i64::try_from(result.findings()).unwrap_or(i64::MAX));
    }
    if let Some(reason) = &run.failure_reason {
        event = event.with("error", reason.clone());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_seconds_are_ten_to_an_hour() {
        assert_eq!(LeaseSeconds::new(10).unwrap().duration(), time::Duration::seconds(10));
        assert!(LeaseSeconds::new(3600).is_ok());
        for bad in [9, 3601, 0, -5, i64::MAX] {
            assert!(LeaseSeconds::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maturity_targets_are_one_to_five() {
        assert_eq!(MaturityTarget::new(3).unwrap().get(), 3);
        for bad in [0, 6, -1, 256, i64::MAX] {
            assert!(MaturityTarget::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn findings_are_the_sum_of_severities() {
        let r = RunResult { score: 72, critical: 2, high: 5, medium: 4, low: 3, report_url: None };
        assert_eq!(r.findings(), 14);
        let max = RunResult {
            score: 0,
            critical: u32::MAX,
            high: u32::MAX,
            medium: u32::MAX,
            low: u32::MAX,
            report_url: None,
        };
        assert_eq!(max.findings(), 4 * u64::from(u32::MAX));
    }
}
