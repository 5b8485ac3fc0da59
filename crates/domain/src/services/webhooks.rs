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
        let endpoint = self.webhooks.endpoint(recipient).await?.ok_or(WebhookError::NotFound)?;
        Ok(endpoint.as_of(self.clock.now()))
    }

    /// Creates the endpoint (with a new secret) or points it at a new URL (keeping its secret,
    /// enabling it again if a `410` had disabled it).
    pub async fn put(&self, recipient: &Recipient, url: Option<&str>) -> Result<ConfiguredEndpoint, WebhookError> {
        let raw = url.ok_or_else(|| FieldError::Missing("url".into()))?;
        let url = FieldError::check("url", raw, |u| WebhookUrl::parse(u, self.allow_private))?;
        let candidate = WebhookSecret::generate(&*self.keys);
        let now = self.clock.now();
        let endpoint = self.webhooks.upsert_endpoint(recipient, &url, &candidate, now).await?.as_of(now);
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::event::Event;
    use crate::ids::{DistributorId, PartnerId};
    use crate::ports::{DeliveryQueue, MockWebhookRepository};
    use crate::testing::{FixedClock, InMemoryStore, SequentialIds};
    use crate::webhook::{AttemptResult, DeliveryAttempt, RetrySchedule, after_attempt};

    const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);
    const URL: &str = "https://hooks.acmemsp.example/partnerd";

    struct Setup {
        service: WebhookService,
        store: Arc<InMemoryStore>,
        clock: Arc<FixedClock>,
        ids: Arc<SequentialIds>,
    }

    fn setup(allow_private: bool) -> Setup {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(FixedClock::at(NOW));
        let ids = Arc::new(SequentialIds::default());
        let service = WebhookService::new(store.clone(), clock.clone(), ids.clone(), allow_private);
        Setup { service, store, clock, ids }
    }

    /// A service over a repository that fails the test if it is called at all.
    fn untouchable() -> WebhookService {
        let clock = Arc::new(FixedClock::at(NOW));
        WebhookService::new(Arc::new(MockWebhookRepository::new()), clock, Arc::new(SequentialIds::default()), false)
    }

    fn partner(ids: &SequentialIds) -> Recipient {
        Recipient::Partner(PartnerId::generate(ids))
    }

    fn event_for(ids: &SequentialIds, kind: EventType, to: &Recipient, at: OffsetDateTime) -> Event {
        let event = Event::new(EventId::generate(ids), kind, at);
        match to {
            Recipient::Partner(p) => event.to_partner(p.clone()),
            Recipient::Distributor(d) => event.to_distributor(Some(d.clone())),
        }
    }

    #[track_caller]
    fn assert_invalid(result: Result<impl std::fmt::Debug, WebhookError>, field: &str) {
        match result {
            Err(WebhookError::Field(FieldError::Invalid { field: f, reason })) => {
                assert_eq!(f, field, "{reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("expected INVALID_FIELD {field}, got {other:?}"),
        }
    }

    #[track_caller]
    fn assert_missing(result: Result<impl std::fmt::Debug, WebhookError>, field: &str) {
        match result {
            Err(WebhookError::Field(FieldError::Missing(f))) => assert_eq!(f, field),
            other => panic!("expected MISSING_FIELD {field}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn put_without_a_url_is_missing_field_and_touches_nothing() {
        let me = partner(&SequentialIds::default());
        assert_missing(untouchable().put(&me, None).await, "url");
    }

    #[tokio::test]
    async fn put_refuses_unacceptable_urls_as_invalid_url_and_stores_nothing() {
        let me = partner(&SequentialIds::default());
        let service = untouchable();
        let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
        for bad in [
            "",
            "not a url",
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://user:pw@hooks.example.com/",
            "https://169.254.169.254/latest/meta-data",
            long.as_str(),
        ] {
            assert_invalid(service.put(&me, Some(bad)).await, "url");
        }
    }

    #[tokio::test]
    async fn private_addresses_and_http_are_accepted_only_when_allowed() {
        let s = setup(true);
        let me = partner(&s.ids);
        let configured = s.service.put(&me, Some("http://127.0.0.1:9000/hook")).await.unwrap();
        assert_eq!(configured.endpoint.url.as_str(), "http://127.0.0.1:9000/hook");
        let strict = setup(false);
        assert_invalid(strict.service.put(&me, Some("http://127.0.0.1:9000/hook")).await, "url");
        assert!(matches!(strict.service.get(&me).await, Err(WebhookError::NotFound)));
    }

    #[tokio::test]
    async fn the_first_put_creates_a_secret_and_later_puts_keep_it_without_showing_it() {
        let s = setup(false);
        let me = partner(&s.ids);
        let created = s.service.put(&me, Some(URL)).await.unwrap();
        let secret = created.new_secret.clone().expect("the creating PUT shows the secret");
        assert!(secret.reveal().starts_with("whsec_") && secret.reveal().len() > "whsec_".len() + 40);
        assert_eq!(created.endpoint.secret, secret);
        assert_eq!((created.endpoint.created_at, created.endpoint.updated_at), (NOW, NOW));
        assert_eq!(created.endpoint.disabled, None);

        let later = NOW + time::Duration::hours(2);
        s.clock.set(later);
        let moved = s.service.put(&me, Some("https://hooks.acmemsp.example/v2")).await.unwrap();
        assert!(moved.new_secret.is_none(), "a later PUT never shows the secret");
        assert_eq!(moved.endpoint.secret, secret, "and keeps it");
        assert_eq!(moved.endpoint.url.as_str(), "https://hooks.acmemsp.example/v2");
        assert_eq!((moved.endpoint.created_at, moved.endpoint.updated_at), (NOW, later));
        assert_eq!(s.service.get(&me).await.unwrap(), moved.endpoint);
    }

    #[tokio::test]
    async fn each_account_has_its_own_endpoint_and_secret() {
        let s = setup(false);
        let a = partner(&s.ids);
        let b = partner(&s.ids);
        let d = Recipient::Distributor(DistributorId::generate(&*s.ids));
        let sa = s.service.put(&a, Some(URL)).await.unwrap().new_secret.unwrap();
        let sd = s.service.put(&d, Some("https://dist.example/hook")).await.unwrap().new_secret.unwrap();
        assert_ne!(sa, sd);
        assert!(matches!(s.service.get(&b).await, Err(WebhookError::NotFound)));
        assert_eq!(s.service.get(&d).await.unwrap().url.as_str(), "https://dist.example/hook");
        s.service.delete(&a).await.unwrap();
        assert!(matches!(s.service.get(&a).await, Err(WebhookError::NotFound)));
        assert!(s.service.get(&d).await.is_ok(), "deleting one account's endpoint leaves the others");
    }

    #[tokio::test]
    async fn a_put_enables_an_endpoint_that_a_410_disabled() {
        let s = setup(false);
        let me = partner(&s.ids);
        s.service.put(&me, Some(URL)).await.unwrap();
        s.store.record_events(vec![event_for(&s.ids, EventType::CustomerCreated, &me, NOW)]);
        let claimed = s.store.claim("lease-1", NOW, NOW + time::Duration::minutes(1), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let gone = DeliveryAttempt {
            attempt: 1,
            attempted_at: NOW,
            http_status: Some(410),
            latency_ms: 12,
            error: None,
            status: DeliveryStatus::Failed,
            next_retry_at: None,
        };
        assert!(s.store.finish(&claimed[0], &gone, true).await.unwrap());
        assert!(s.service.get(&me).await.unwrap().disabled.is_some());
        let again = s.service.put(&me, Some(URL)).await.unwrap();
        assert_eq!(again.endpoint.disabled, None);
        assert!(again.new_secret.is_none());
    }

    #[tokio::test]
    async fn get_delete_rotate_deliveries_retry_and_replay_need_an_endpoint() {
        let s = setup(false);
        let me = partner(&s.ids);
        assert!(matches!(s.service.get(&me).await, Err(WebhookError::NotFound)));
        assert!(matches!(s.service.delete(&me).await, Err(WebhookError::NotFound)));
        assert!(matches!(s.service.rotate_secret(&me).await, Err(WebhookError::NotFound)));
        assert!(matches!(s.service.deliveries(&me, None, None, &Page::default()).await, Err(WebhookError::NotFound)));
        let event = event_for(&s.ids, EventType::CustomerCreated, &me, NOW);
        s.store.record_events(vec![event.clone()]);
        assert!(matches!(s.service.retry(&me, event.id.as_str()).await, Err(WebhookError::NotFound)));
        let replay = ReplayRequest {
            since: Some("2026-04-01T00:00:00Z".into()),
            until: Some("2026-04-05T00:00:00Z".into()),
            status: None,
        };
        assert!(matches!(s.service.replay(&me, replay).await, Err(WebhookError::NotFound)));
        assert!(
            s.store.deliveries(&me, &DeliveryFilter::default(), &Page::default()).await.unwrap().items.is_empty(),
            "nothing was queued for an account without an endpoint"
        );
    }

    #[tokio::test]
    async fn rotation_makes_a_new_secret_and_keeps_the_old_one_signing_for_a_day() {
        let s = setup(false);
        let me = partner(&s.ids);
        let old = s.service.put(&me, Some(URL)).await.unwrap().new_secret.unwrap();
        let later = NOW + time::Duration::minutes(30);
        s.clock.set(later);
        let (endpoint, new) = s.service.rotate_secret(&me).await.unwrap();
        assert!(new.reveal().starts_with("whsec_"));
        assert_ne!(new, old);
        assert_eq!(endpoint.secret, new);
        assert_eq!(endpoint.previous_secret, Some((old.clone(), later + time::Duration::hours(24))));
        assert_eq!((endpoint.created_at, endpoint.updated_at), (NOW, later));
        assert_eq!(endpoint.signing_secrets(later), vec![new.clone(), old.clone()]);
        assert_eq!(endpoint.signing_secrets(later + time::Duration::hours(24)), vec![new.clone()]);
        assert_eq!(
            s.service.get(&me).await.unwrap().previous_secret,
            Some((old.clone(), later + time::Duration::hours(24)))
        );
        s.clock.set(later + time::Duration::hours(24));
        assert_eq!(s.service.get(&me).await.unwrap().previous_secret, None, "the overlap has ended");
        s.clock.set(later);
        let after_put = s.service.put(&me, Some(URL)).await.unwrap();
        assert!(after_put.new_secret.is_none());
        assert_eq!(after_put.endpoint.secret, new, "a PUT after a rotation keeps the rotated secret");
    }

    #[tokio::test]
    async fn delivery_filters_are_parsed_before_anything_is_read() {
        let me = partner(&SequentialIds::default());
        let service = untouchable();
        let page = Page::default();
        for bad in ["", "PENDING", "sent", "delivered,failed"] {
            assert_invalid(service.deliveries(&me, Some(bad), None, &page).await, "status");
        }
        for bad in ["", "customer", "customer.*", "Customer.Created", "partner.deleted"] {
            assert_invalid(service.deliveries(&me, None, Some(bad), &page).await, "type");
        }
    }

    #[tokio::test]
    async fn delivery_filters_reach_the_repository_parsed() {
        let mut repo = MockWebhookRepository::new();
        let ids = SequentialIds::default();
        let me = partner(&ids);
        let found = WebhookEndpoint {
            recipient: me.clone(),
            url: WebhookUrl::from_stored(URL.into()),
            secret: WebhookSecret::from_stored("whsec_x".into()),
            previous_secret: None,
            disabled: None,
            created_at: NOW,
            updated_at: NOW,
        };
        repo.expect_endpoint().times(1).returning(move |_| Ok(Some(found.clone())));
        let expected_page = Page { limit: Some(7), starting_after: Some("evt_000000000000000000000001".into()) };
        let wanted = expected_page.clone();
        repo.expect_deliveries()
            .withf(move |r, filter, page| {
                matches!(r, Recipient::Partner(_))
                    && *filter
                        == DeliveryFilter {
                            status: Some(DeliveryStatus::Retrying),
                            event_type: Some(EventType::UsageThresholdReached),
                        }
                    && *page == wanted
            })
            .times(1)
            .returning(|_, _, _| Ok(Paged { items: vec![], has_more: false }));
        let service = WebhookService::new(
            Arc::new(repo),
            Arc::new(FixedClock::at(NOW)),
            Arc::new(SequentialIds::default()),
            false,
        );
        let listed =
            service.deliveries(&me, Some("retrying"), Some("usage.threshold_reached"), &expected_page).await.unwrap();
        assert_eq!(listed, Paged { items: vec![], has_more: false });
    }

    #[tokio::test]
    async fn replay_validates_its_range_and_status_before_anything_is_read() {
        let me = partner(&SequentialIds::default());
        let service = untouchable();
        let request = |since: Option<&str>, until: Option<&str>, status: Option<&str>| ReplayRequest {
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            status: status.map(str::to_owned),
        };
        let (a, b) = ("2026-04-01T00:00:00Z", "2026-04-02T00:00:00Z");
        assert_missing(service.replay(&me, request(None, Some(b), None)).await, "since");
        assert_missing(service.replay(&me, request(Some(a), None, None)).await, "until");
        for bad in ["", "yesterday", "2026-04-01", "2026-04-01 00:00:00", "2026-13-01T00:00:00Z", "1712000000"] {
            assert_invalid(service.replay(&me, request(Some(bad), Some(b), None)).await, "since");
            assert_invalid(service.replay(&me, request(Some(a), Some(bad), None)).await, "until");
        }
        assert_invalid(service.replay(&me, request(Some(a), Some(a), None)).await, "until");
        assert_invalid(service.replay(&me, request(Some(b), Some(a), None)).await, "until");
        // The same instant written in another offset is still not after `since`.
        assert_invalid(service.replay(&me, request(Some(a), Some("2026-04-01T02:00:00+02:00"), None)).await, "until");
        for bad in ["", "FAILED", "done"] {
            assert_invalid(service.replay(&me, request(Some(a), Some(b), Some(bad))).await, "status");
        }
    }

    #[tokio::test]
    async fn replay_passes_the_parsed_range_and_answers_the_repositorys_count() {
        let mut repo = MockWebhookRepository::new();
        let ids = SequentialIds::default();
        let me = partner(&ids);
        let endpoint = WebhookEndpoint {
            recipient: me.clone(),
            url: WebhookUrl::from_stored(URL.into()),
            secret: WebhookSecret::from_stored("whsec_x".into()),
            previous_secret: None,
            disabled: None,
            created_at: NOW,
            updated_at: NOW,
        };
        repo.expect_endpoint().returning(move |_| Ok(Some(endpoint.clone())));
        repo.expect_resend()
            .withf(|_, selection, now| {
                *now == NOW
                    && *selection
                        == Resend::Range {
                            since: datetime!(2026-04-01 00:00 UTC),
                            until: datetime!(2026-04-02 00:00 UTC),
                            status: Some(DeliveryStatus::Failed),
                        }
            })
            .times(1)
            .returning(|_, _, _| Ok(42));
        let service = WebhookService::new(
            Arc::new(repo),
            Arc::new(FixedClock::at(NOW)),
            Arc::new(SequentialIds::default()),
            false,
        );
        let request = ReplayRequest {
            since: Some("2026-04-01T02:00:00+02:00".into()),
            until: Some("2026-04-02T00:00:00Z".into()),
            status: Some("failed".into()),
        };
        assert_eq!(service.replay(&me, request).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn replay_counts_exactly_the_events_of_the_half_open_range() {
        let s = setup(false);
        let me = partner(&s.ids);
        let other = partner(&s.ids);
        s.service.put(&me, Some(URL)).await.unwrap();
        let at = |h: i64| NOW + time::Duration::hours(h);
        let mine: Vec<Event> =
            [-1, 0, 1, 2, 3].into_iter().map(|h| event_for(&s.ids, EventType::CustomerUpdated, &me, at(h))).collect();
        s.store.record_events(mine);
        s.store.record_events(vec![event_for(&s.ids, EventType::CustomerUpdated, &other, at(1))]);
        let request = ReplayRequest {
            since: Some("2026-04-03T10:00:00Z".into()),
            until: Some("2026-04-03T13:00:00Z".into()),
            status: None,
        };
        assert_eq!(s.service.replay(&me, request).await.unwrap(), 3, "10:00, 11:00 and 12:00; not 09:00 nor 13:00");
    }

    #[tokio::test]
    async fn retry_of_a_malformed_event_id_is_not_found_without_reading_anything() {
        let me = partner(&SequentialIds::default());
        let service = untouchable();
        for bad in ["", "nope", "evt_", "evt_XYZ", "cust_000000000000000000000001", "evt_0000000000000000000000011"] {
            assert!(matches!(service.retry(&me, bad).await, Err(WebhookError::NotFound)), "{bad}");
        }
    }

    #[tokio::test]
    async fn retry_finds_only_the_accounts_own_events_and_creates_a_missing_delivery() {
        let s = setup(false);
        let me = partner(&s.ids);
        let other = partner(&s.ids);
        // Before the endpoint exists: no delivery is queued.
        let early = event_for(&s.ids, EventType::KeyCreated, &me, NOW - time::Duration::hours(1));
        let theirs = event_for(&s.ids, EventType::KeyCreated, &other, NOW);
        s.store.record_events(vec![early.clone(), theirs.clone()]);
        s.service.put(&me, Some(URL)).await.unwrap();
        assert!(s.service.deliveries(&me, None, None, &Page::default()).await.unwrap().items.is_empty());

        assert!(matches!(s.service.retry(&me, theirs.id.as_str()).await, Err(WebhookError::NotFound)));
        let unknown = EventId::generate(&*s.ids);
        assert!(matches!(s.service.retry(&me, unknown.as_str()).await, Err(WebhookError::NotFound)));

        let later = NOW + time::Duration::minutes(5);
        s.clock.set(later);
        let delivery = s.service.retry(&me, early.id.as_str()).await.unwrap();
        assert_eq!(
            delivery,
            Delivery {
                event_id: early.id.clone(),
                event_type: EventType::KeyCreated,
                occurred_at: early.occurred_at,
                status: DeliveryStatus::Pending,
                next_attempt_at: Some(later),
                attempts: vec![],
            }
        );
        let listed = s.service.deliveries(&me, None, None, &Page::default()).await.unwrap();
        assert_eq!(listed.items, vec![delivery]);
    }

    #[tokio::test]
    async fn retry_restarts_the_schedule_of_a_failed_delivery_and_keeps_its_attempts() {
        let s = setup(false);
        let me = partner(&s.ids);
        s.service.put(&me, Some(URL)).await.unwrap();
        let event = event_for(&s.ids, EventType::CustomerCreated, &me, NOW);
        s.store.record_events(vec![event.clone()]);
        let schedule = RetrySchedule::new(vec![]);
        let claimed = s.store.claim("l1", NOW, NOW + time::Duration::minutes(1), 1).await.unwrap().remove(0);
        assert_eq!((claimed.attempt, claimed.round_attempt), (1, 0));
        let (status, next) = after_attempt(&schedule, 0, &AttemptResult::Failed { retry_after: None }, NOW);
        let attempt = DeliveryAttempt {
            attempt: 1,
            attempted_at: NOW,
            http_status: Some(500),
            latency_ms: 30,
            error: Some("HTTP 500".into()),
            status,
            next_retry_at: next,
        };
        assert!(s.store.finish(&claimed, &attempt, false).await.unwrap());
        let failed = s.service.deliveries(&me, Some("failed"), None, &Page::default()).await.unwrap();
        assert_eq!(failed.items.len(), 1);

        let later = NOW + time::Duration::hours(1);
        s.clock.set(later);
        let retried = s.service.retry(&me, event.id.as_str()).await.unwrap();
        assert_eq!(retried.status, DeliveryStatus::Pending);
        assert_eq!(retried.next_attempt_at, Some(later));
        assert_eq!(retried.attempts, vec![attempt], "the log keeps the earlier attempt");
        let again = s.store.claim("l2", later, later + time::Duration::minutes(1), 1).await.unwrap().remove(0);
        assert_eq!((again.attempt, again.round_attempt), (2, 0), "numbering goes on; the schedule starts over");
    }
}
