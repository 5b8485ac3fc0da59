use std::sync::Arc;

use time::OffsetDateTime;

use crate::event::EventType;
use crate::ids::EventId;
use crate::ports::{Clock, InfraError, KeyGenerator, Page, Paged, Resend, WebhookRepository};
use crate::values::FieldError;
use crate::webhook::{
    Delivery, DeliveryFilter, DeliveryStatus, Recipient, SECRET_OVERLAP, WebhookEndpoint, WebhookSecret, WebhookUrl,
};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No endpoint configured, or no such delivery of this account's.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// An endpoint as `PUT` leaves it; `secret` is there only when this `PUT` created it.
#[derive(Debug, Clone)]
pub struct ConfiguredEndpoint {
    pub endpoint: WebhookEndpoint,
    pub new_secret: Option<WebhookSecret>,
}

/// A replay request as it came in.
#[derive(Debug, Clone, Default)]
pub struct ReplayRequest {
    pub since: Option<String>,
    pub until: Option<String>,
    pub status: Option<String>,
}

/// An account's webhook settings and delivery log. Every method is scoped to the recipient.
pub struct WebhookService {
    webhooks: Arc<dyn WebhookRepository>,
    clock: Arc<dyn Clock>,
    keys: Arc<dyn KeyGenerator>,
    allow_private: bool,
}

impl WebhookService {
    /// `allow_private` accepts `http` and loopback/private addresses (tests, closed networks).
    pub fn new(
        webhooks: Arc<dyn WebhookRepository>,
        clock: Arc<dyn Clock>,
        keys: Arc<dyn KeyGenerator>,
        allow_private: bool,
    ) -> Self {
        Self { webhooks, clock, keys, allow_private }
    }

    pub async fn get(&self, recipient: &Recipient) -> Result<WebhookEndpoint, WebhookError> {
        self.webhooks.endpoint(recipient).await?.ok_or(WebhookError::NotFound)
    }

    /// Creates the endpoint (with a new secret) or points it at a new URL (keeping its secret,
    /// enabling it again if a `410` had disabled it).
    pub async fn put(&self, recipient: &Recipient, url: Option<&str>) -> Result<ConfiguredEndpoint, WebhookError> {
        let raw = url.ok_or_else(|| FieldError::Missing("url".into()))?;
        let url = FieldError::check("url", raw, |u| WebhookUrl::parse(u, self.allow_private))?;
        let candidate = WebhookSecret::generate(&*self.keys);
        let endpoint = self.webhooks.upsert_endpoint(recipient, &url, &candidate, self.clock.now()).await?;
        let new_secret = (endpoint.secret == candidate).then_some(candidate);
        Ok(ConfiguredEndpoint { endpoint, new_secret })
    }

    pub async fn delete(&self, recipient: &Recipient) -> Result<(), WebhookError> {
        if self.webhooks.delete_endpoint(recipient).await? { Ok(()) } else { Err(WebhookError::NotFound) }
    }

    /// A new secret; the old one keeps signing beside it for [`SECRET_OVERLAP`].
    pub async fn rotate_secret(&self, recipient: &Recipient) -> Result<(WebhookEndpoint, WebhookSecret), WebhookError> {
        let secret = WebhookSecret::generate(&*self.keys);
        let now = self.clock.now();
        let endpoint = self
            .webhooks
            .rotate_secret(recipient, &secret, now, now + SECRET_OVERLAP)
            .await?
            .ok_or(WebhookError::NotFound)?;
        Ok((endpoint, secret))
    }

    /// The delivery log; `status` and `type` as they came in the query string.
    pub async fn deliveries(
        &self,
        recipient: &Recipient,
        status: Option<&str>,
        event_type: Option<&str>,
        page: &Page,
    ) -> Result<Paged<Delivery>, WebhookError> {
        let filter = DeliveryFilter {
            status: status.map(|s| FieldError::check("status", s, DeliveryStatus::parse)).transpose()?,
            event_type: event_type
                .map(|t| EventType::parse(t).ok_or_else(|| FieldError::invalid("type", "is not an event type")))
                .transpose()?,
        };
        self.get(recipient).await?;
        Ok(self.webhooks.deliveries(recipient, &filter, page).await?)
    }

    /// Sends one event again now, with a fresh retry schedule.
    pub async fn retry(&self, recipient: &Recipient, event: &str) -> Result<Delivery, WebhookError> {
        let event = EventId::parse(event).map_err(|_| WebhookError::NotFound)?;
        self.get(recipient).await?;
        let now = self.clock.now();
        if self.webhooks.resend(recipient, &Resend::One(event.clone()), now).await? == 0 {
            return Err(WebhookError::NotFound);
        }
        self.webhooks.delivery(recipient, &event).await?.ok_or(WebhookError::NotFound)
    }

    /// Sends again every event of `[since, until)` addressed to this account (only those whose
    /// delivery is `status`, if given). Answers how many were scheduled.
    pub async fn replay(&self, recipient: &Recipient, request: ReplayRequest) -> Result<u64, WebhookError> {
        let since = timestamp("since", request.since.as_deref())?;
        let until = timestamp("until", request.until.as_deref())?;
        if since >= until {
            return Err(FieldError::invalid("until", "must be after since").into());
        }
        let status = request.status.map(|s| FieldError::check("status", &s, DeliveryStatus::parse)).transpose()?;
        self.get(recipient).await?;
        Ok(self.webhooks.resend(recipient, &Resend::Range { since, until, status }, self.clock.now()).await?)
    }
}

fn timestamp(field: &str, raw: Option<&str>) -> Result<OffsetDateTime, FieldError> {
    let raw = raw.ok_or_else(|| FieldError::Missing(field.into()))?;
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| FieldError::invalid(field, "must be an RFC 3339 timestamp such as 2026-04-03T08:15:22Z"))
}
