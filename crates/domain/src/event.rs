//! Events: what happened, recorded in the same transaction as the change (the outbox), for the
//! webhook dispatcher to deliver. `data` holds the event's fields under their wire names.

use std::fmt;

use time::OffsetDateTime;

use crate::ids::{DistributorId, EventId, PartnerId};

/// Every event type partnerd emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    AssessmentStarted,
    AssessmentCompleted,
    AssessmentFailed,
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    PartnerActivated,
    PartnerSuspended,
    KeyCreated,
    KeyRevoked,
    UsageThresholdReached,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        Self::AssessmentStarted,
        Self::AssessmentCompleted,
        Self::AssessmentFailed,
        Self::CustomerCreated,
        Self::CustomerUpdated,
        Self::CustomerDeleted,
        Self::PartnerActivated,
        Self::PartnerSuspended,
        Self::KeyCreated,
        Self::KeyRevoked,
        Self::UsageThresholdReached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssessmentStarted => "assessment.started",
            Self::AssessmentCompleted => "assessment.completed",
            Self::AssessmentFailed => "assessment.failed",
            Self::CustomerCreated => "customer.created",
            Self::CustomerUpdated => "customer.updated",
            Self::CustomerDeleted => "customer.deleted",
            Self::PartnerActivated => "partner.activated",
            Self::PartnerSuspended => "partner.suspended",
            Self::KeyCreated => "key.created",
            Self::KeyRevoked => "key.revoked",
            Self::UsageThresholdReached => "usage.threshold_reached",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value in an event's data: the few JSON shapes events need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventValue {
    Null,
    Text(String),
    Int(i64),
}

impl From<&str> for EventValue {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for EventValue {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for EventValue {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl<T: Into<EventValue>> From<Option<T>> for EventValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// An event and who receives it: a partner's endpoint gets events about its own customers,
/// runs and keys; a distributor's gets `partner.*` and usage thresholds of its partners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub event_type: EventType,
    pub occurred_at: OffsetDateTime,
    pub to_partner: Option<PartnerId>,
    pub to_distributor: Option<DistributorId>,
    /// Fields under their wire (camelCase) names; stored and sent as a JSON object, whose key
    /// order carries no meaning.
    pub data: Vec<(String, EventValue)>,
}

impl Event {
    pub fn new(id: EventId, event_type: EventType, occurred_at: OffsetDateTime) -> Self {
        Self { id, event_type, occurred_at, to_partner: None, to_distributor: None, data: Vec::new() }
    }

    pub fn to_partner(mut self, partner: PartnerId) -> Self {
        self.to_partner = Some(partner);
        self
    }

    pub fn to_distributor(mut self, distributor: Option<DistributorId>) -> Self {
        self.to_distributor = distributor;
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<EventValue>) -> Self {
        self.data.push((key.to_owned(), value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_through_their_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("partner.deleted"), None);
    }
}
