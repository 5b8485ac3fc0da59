//! The dispatcher: a loop that claims due deliveries in batches (as many as it has free sending
//! slots), sends each on its own task, and records the outcome. Claims are leases: a process
//! that dies mid-attempt leaves its deliveries to be claimed again once the lease ends, so a
//! committed event is delivered at least once; the event id (`webhook-id`) lets receivers drop
//! the rare repeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use partnerd_domain::ids::hex_encode;
use partnerd_domain::ports::{ClaimedDelivery, Clock, DeliveryQueue, IdGenerator, InfraError};
use partnerd_domain::values::wire_timestamp;
use partnerd_domain::webhook::{AttemptResult, DeliveryAttempt, RetrySchedule, after_attempt};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use tokio::sync::{Semaphore, watch};

use crate::guard::{self, Blocked, GuardedResolver};
use crate::sign;

/// How the dispatcher behaves; the defaults are the reference's.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Waits between attempts (default 1m, 5m, 30m, 2h, 12h, then `failed`).
    pub schedule: RetrySchedule,
    /// Let endpoints reach loopback and private addresses (tests and closed networks only).
    pub allow_private: bool,
    /// Longest an attempt may take, connection included.
    pub timeout: Duration,
    /// Deliveries sent at once by this process.
    pub concurrency: usize,
    /// Most deliveries claimed by one query.
    pub batch: u32,
    /// Pause between polls when nothing is due.
    pub idle_poll: Duration,
    /// How long a claim hides a delivery from other dispatchers: longer than any attempt.
    pub lease: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            schedule: RetrySchedule::default(),
            allow_private: false,
            timeout: Duration::from_secs(10),
            concurrency: 64,
            batch: 100,
            idle_poll: Duration::from_millis(200),
            lease: Duration::from_secs(60),
        }
    }
}

/// The request body of an event: `{id, type, timestamp, data}`, built the same on every attempt.
pub fn payload(claimed: &ClaimedDelivery) -> String {
    // Ids, type names and timestamps are plain ASCII; `data` is stored JSON, sent as stored.
    format!(
        r#"{{"id":"{}","type":"{}","timestamp":"{}","data":{}}}"#,
        claimed.event_id,
        claimed.event_type.as_str(),
        wire_timestamp(claimed.occurred_at),
        claimed.data
    )
}

pub struct Dispatcher {
    queue: Arc<dyn DeliveryQueue>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    http: reqwest::Client,
    config: DispatcherConfig,
}

impl Dispatcher {
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        config: DispatcherConfig,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(GuardedResolver { allow_private: config.allow_private })
            .pool_max_idle_per_host(config.concurrency)
            .build()?;
        Ok(Self { queue, clock, ids, http, config })
    }

    /// Delivers until `stop` turns true, then waits for the attempts in flight to finish.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let concurrency = u32::try_from(self.config.concurrency.max(1)).unwrap_or(u32::MAX);
        while !*stop.borrow() {
            let free = u32::try_from(slots.available_permits()).unwrap_or(u32::MAX);
            if free == 0 {
                // Wait until an attempt ends.
                tokio::select! {
                    _ = slots.acquire() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let wanted = free.min(self.config.batch);
            let claimed = match self.claim(wanted).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "webhook dispatcher could not claim deliveries; retrying");
                    Self::pause(&mut stop, Duration::from_secs(1)).await;
                    continue;
                }
            };
            let drained = claimed.len() < wanted as usize;
            for delivery in claimed {
                let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                let me = self.clone();
                tokio::spawn(async move {
                    me.attempt_and_record(delivery).await;
                    drop(permit);
                });
            }
            if drained {
                Self::pause(&mut stop, self.config.idle_poll).await;
            }
        }
        // Let attempts in flight record their outcome (they are bounded by the timeout).
        let _ = slots.acquire_many(concurrency).await;
    }

    async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }

    async fn claim(&self, max: u32) -> Result<Vec<ClaimedDelivery>, InfraError> {
        let now = self.clock.now();
        let lease = format!("lse_{}", hex_encode(&self.ids.id_body()));
        self.queue.claim(&lease, now, now + self.config.lease, max).await
    }

    /// Claims what is due now and attempts it all, waiting for every outcome; answers how many
    /// deliveries were attempted. For tests and one-shot use; [`Dispatcher::run`] is the loop.
    pub async fn dispatch_due(&self) -> Result<usize, InfraError> {
        let claimed = self.claim(self.config.batch).await?;
        let count = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|d| self.attempt_and_record(d))).await;
        Ok(count)
    }

    async fn attempt_and_record(&self, delivery: ClaimedDelivery) {
        record(&*self.queue, &*self.clock, &self.config.schedule, self.config.allow_private, &self.http, delivery)
            .await;
    }
}

/// Sends one delivery and records the attempt.
async fn record(
    queue: &dyn DeliveryQueue,
    clock: &dyn Clock,
    schedule: &RetrySchedule,
    allow_private: bool,
    http: &reqwest::Client,
    delivery: ClaimedDelivery,
) {
    let started = Instant::now();
    let attempted_at = clock.now();
    let (result, http_status, error) = send(http, allow_private, &delivery, attempted_at.unix_timestamp()).await;
    let latency_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let (status, next_retry_at) = after_attempt(schedule, delivery.round_attempt, &result, clock.now());
    let attempt = DeliveryAttempt {
        attempt: delivery.attempt,
        attempted_at,
        http_status,
        latency_ms,
        error,
        status,
        next_retry_at,
    };
    tracing::debug!(
        event = %delivery.event_id, recipient = %delivery.recipient, attempt = delivery.attempt,
        http_status, latency_ms, status = status.as_str(), "webhook attempt"
    );
    let gone = result == AttemptResult::Gone;
    match queue.finish(&delivery, &attempt, gone).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(event = %delivery.event_id, "webhook delivery was taken over; outcome dropped"),
        // The lease will end and the delivery be attempted again: at least once, never lost.
        Err(error) => tracing::warn!(%error, event = %delivery.event_id, "could not record a webhook attempt"),
    }
}

/// One HTTP attempt: what it came to, the status code if any, and the error for the log.
async fn send(
    http: &reqwest::Client,
    allow_private: bool,
    delivery: &ClaimedDelivery,
    timestamp: i64,
) -> (AttemptResult, Option<u16>, Option<String>) {
    let failed = AttemptResult::Failed { retry_after: None };
    let url = match reqwest::Url::parse(delivery.url.as_str()) {
        Ok(url) => url,
        Err(_) => return (failed, None, Some("the endpoint URL does not parse".into())),
    };
    if let Err(blocked) =
        guard::check_scheme(&url, allow_private).and_then(|()| guard::check_literal(&url, allow_private))
    {
        return (failed, None, Some(format!("refused: {blocked}")));
    }
    let body = payload(delivery);
    let mut request = http
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(concat!("partnerd-webhooks/", env!("CARGO_PKG_VERSION"))));
    for (name, value) in sign::headers(&delivery.secrets, delivery.event_id.as_str(), timestamp, body.as_bytes()) {
        request = request.header(name, value);
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => return (failed, None, Some(describe(error))),
    };
    let status = response.status();
    let code = Some(status.as_u16());
    if status.is_success() {
        return (AttemptResult::Delivered, code, None);
    }
    if status == StatusCode::GONE {
        return (AttemptResult::Gone, code, Some("410 Gone: the endpoint is disabled".into()));
    }
    if status.is_redirection() {
        return (failed, code, Some(format!("{status}: redirects are not followed")));
    }
    let retry_after = if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
    } else {
        None
    };
    (AttemptResult::Failed { retry_after }, code, Some(format!("answered {status}")))
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A send error for the owner's delivery log: the kind and cause, never the URL (its query may
/// hold a token) nor anything signed.
fn describe(error: reqwest::Error) -> String {
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return format!("refused: {blocked}");
        }
        source = cause.source();
    }
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        let cause = std::error::Error::source(&error).and_then(|c| c.source()).map(ToString::to_string);
        format!("could not connect{}", cause.map(|c| format!(": {c}")).unwrap_or_default())
    } else {
        format!("request failed: {}", error.without_url())
    }
}

#[cfg(test)]
mod tests {
    use partnerd_domain::event::{Event, EventType};
    use partnerd_domain::ids::{EventId, PartnerId};
    use partnerd_domain::ports::{Resend, WebhookRepository};
    use partnerd_domain::testing::{FixedClock, InMemoryStore, SequentialIds};
    use partnerd_domain::webhook::{DeliveryFilter, DeliveryStatus, Recipient, WebhookSecret, WebhookUrl};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_payload_is_the_reference_shape_with_data_as_stored() {
        let claimed = ClaimedDelivery {
            event_id: EventId::parse("evt_00000000000000000000000a").unwrap(),
            event_type: EventType::CustomerCreated,
            occurred_at: datetime!(2026-04-03 08:15:22.123 UTC),
            data: r#"{"customerId":"cust_1","name":"Contoso"}"#.into(),
            recipient: Recipient::Partner(PartnerId::parse("prt_00000000000000000000000b").unwrap()),
            url: WebhookUrl::from_stored("https://a.example/".into()),
            secrets: vec![],
            attempt: 1,
            round_attempt: 0,
            lease: "l".into(),
        };
        assert_eq!(
            payload(&claimed),
            r#"{"id":"evt_00000000000000000000000a","type":"customer.created","timestamp":"2026-04-03T08:15:22Z","data":{"customerId":"cust_1","name":"Contoso"}}"#
        );
    }

    /// A refused address is a failed attempt with the reason logged, retried on schedule.
    #[tokio::test]
    async fn a_private_endpoint_fails_its_attempt_when_private_addresses_are_refused() {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(FixedClock::at(datetime!(2026-04-03 10:00 UTC)));
        let partner = PartnerId::parse("prt_00000000000000000000000b").unwrap();
        let me = Recipient::Partner(partner.clone());
        // Stored as if accepted earlier (e.g. while private addresses were allowed).
        let url = WebhookUrl::parse("http://127.0.0.1:9/hook", true).unwrap();
        let secret = WebhookSecret::from_stored("whsec_c2VjcmV0".into());
        store.upsert_endpoint(&me, &url, &secret, clock.now()).await.unwrap();
        let event =
            Event::new(EventId::parse("evt_00000000000000000000000a").unwrap(), EventType::KeyCreated, clock.now())
                .to_partner(partner);
        store.record_events(vec![event]);
        let dispatcher = Dispatcher::new(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
            DispatcherConfig::default(),
        )
        .unwrap();

        assert_eq!(dispatcher.dispatch_due().await.unwrap(), 1);

        let log = store.deliveries(&me, &DeliveryFilter::default(), &Default::default()).await.unwrap();
        let delivery = &log.items[0];
        assert_eq!(delivery.status, DeliveryStatus::Retrying);
        let attempt = &delivery.attempts[0];
        assert_eq!((attempt.attempt, attempt.http_status), (1, None));
        assert!(attempt.error.as_deref().unwrap().starts_with("refused: 127.0.0.1"), "{attempt:?}");
        assert_eq!(attempt.next_retry_at, Some(clock.now() + time::Duration::minutes(1)));
        // Nothing else is due until the retry.
        assert_eq!(dispatcher.dispatch_due().await.unwrap(), 0);
        assert_eq!(store.resend(&me, &Resend::One(delivery.event_id.clone()), clock.now()).await.unwrap(), 1);
        assert_eq!(dispatcher.dispatch_due().await.unwrap(), 1);
    }
}
