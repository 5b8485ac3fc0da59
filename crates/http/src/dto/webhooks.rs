//! Webhook settings and the delivery log.

use partnerd_domain::services::{ConfiguredEndpoint, ReplayRequest};
use partnerd_domain::webhook::{Delivery, DeliveryAttempt, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::timestamp;

/// `PUT …/webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookIn {
    /// Where events are `POST`ed: an absolute `https` URL on a public address.
    #[schema(example = "https://hooks.acmemsp.example/partnerd")]
    pub url: String,
}

/// An account's webhook endpoint. The secret appears only in the answer to the `PUT` that
/// created the endpoint (and in `rotate-secret`'s answer).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOut {
    #[schema(example = "https://hooks.acmemsp.example/partnerd")]
    pub url: String,
    /// `whsec_…`: shown once, when the endpoint is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAbCdEfGhIjk=")]
    pub secret: Option<String>,
    /// `false` after the endpoint answered `410 Gone`; a `PUT` enables it again.
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Until when the secret before the last rotation still signs, beside the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl WebhookOut {
    pub fn new(endpoint: &WebhookEndpoint, secret: Option<String>) -> Self {
        Self {
            url: endpoint.url.as_str().to_owned(),
            secret,
            enabled: endpoint.disabled.is_none(),
            disabled_at: endpoint.disabled.as_ref().map(|d| timestamp(d.at)),
            disabled_reason: endpoint.disabled.as_ref().map(|d| d.reason.clone()),
            previous_secret_expires_at: endpoint.previous_secret.as_ref().map(|(_, until)| timestamp(*until)),
            created_at: timestamp(endpoint.created_at),
            updated_at: timestamp(endpoint.updated_at),
        }
    }
}

impl From<ConfiguredEndpoint> for WebhookOut {
    fn from(c: ConfiguredEndpoint) -> Self {
        Self::new(&c.endpoint, c.new_secret.map(|s| s.reveal().to_owned()))
    }
}

/// `POST …/webhook/rotate-secret`: the new secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecretOut {
    #[schema(example = "whsec_9Yc2PnZ0y0aVQ8u1bq2q3xkR5dLwZ3sFh1mNcTt0e4Y=")]
    pub secret: String,
    /// Until then the old secret also signs every delivery.
    pub previous_secret_expires_at: String,
}

/// `GET …/webhook/deliveries`: newest event first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `retrying`, `delivered` or `failed`.
    pub status: Option<String>,
    /// An event type, e.g. `customer.created`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// At most this many deliveries (1–100, default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `eventId` of the last delivery of the previous page.
    pub starting_after: Option<String>,
}

/// Deliveries per page unless `limit` says otherwise, and the most one page may hold.
pub const DEFAULT_DELIVERY_PAGE: u32 = 50;
pub const MAX_DELIVERY_PAGE: u32 = 100;

/// One HTTP attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub attempted_at: String,
    /// The receiver's status code; absent when no answer came (timeout, refused connection).
    pub http_status: Option<u16>,
    pub latency_ms: u32,
    /// Why the attempt failed.
    pub error: Option<String>,
    /// The delivery's status after this attempt.
    #[schema(example = "retrying")]
    pub status: &'static str,
    pub next_retry_at: Option<String>,
}

impl From<&DeliveryAttempt> for AttemptOut {
    fn from(a: &DeliveryAttempt) -> Self {
        Self {
            attempt: a.attempt,
            attempted_at: timestamp(a.attempted_at),
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            status: a.status.as_str(),
            next_retry_at: a.next_retry_at.map(timestamp),
        }
    }
}

/// One event's delivery to this account's endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOut {
    /// The event id: the `webhook-id` header and the payload's `id`.
    #[schema(example = "evt_5f0c6d1e2a3b4c5d6e7f8091")]
    pub event_id: String,
    #[serde(rename = "type")]
    #[schema(example = "customer.created")]
    pub event_type: &'static str,
    /// `pending`, `retrying`, `delivered` or `failed`.
    pub status: &'static str,
    pub occurred_at: String,
    /// Attempts made so far.
    pub attempt_count: usize,
    /// The last attempt's HTTP status code, if it got an answer.
    pub http_status: Option<u16>,
    /// The last attempt's latency.
    pub latency_ms: Option<u32>,
    /// When the next attempt is due (`pending` and `retrying` only).
    pub next_retry_at: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptOut>,
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        let last = d.attempts.last();
        Self {
            event_id: d.event_id.to_string(),
            event_type: d.event_type.as_str(),
            status: d.status.as_str(),
            occurred_at: timestamp(d.occurred_at),
            attempt_count: d.attempts.len(),
            http_status: last.and_then(|a| a.http_status),
            latency_ms: last.map(|a| a.latency_ms),
            next_retry_at: d.next_attempt_at.map(timestamp),
            attempts: d.attempts.iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryListOut {
    pub deliveries: Vec<DeliveryOut>,
    /// More deliveries follow: ask again with `starting_after` = the last `eventId`.
    pub has_more: bool,
}

/// `POST …/webhook/replay`: send again every event of a time range.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayIn {
    /// Start of the range (inclusive), RFC 3339.
    #[schema(example = "2026-04-01T00:00:00Z")]
    pub since: String,
    /// End of the range (exclusive), RFC 3339.
    #[schema(example = "2026-04-02T00:00:00Z")]
    pub until: String,
    /// Only deliveries in this status (e.g. `failed`); omit to send every event of the range,
    /// including those that occurred while no endpoint was configured.
    pub status: Option<String>,
}

impl From<ReplayIn> for ReplayRequest {
    fn from(r: ReplayIn) -> Self {
        Self { since: Some(r.since), until: Some(r.until), status: r.status }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    /// Deliveries scheduled to be sent again.
    pub replayed: u64,
}
