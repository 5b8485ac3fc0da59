//! `…/webhook`, `…/webhook/rotate-secret`, `…/webhook/deliveries`, `…/deliveries/{eventId}/retry`
//! and `…/webhook/replay`. Partners and distributors have the same seven routes under their own
//! prefix, so the scenarios here take the account kind; `distributor_webhooks` runs them for
//! distributors. The dispatcher is not part of this tier: where a scenario needs attempts, it
//! plays the dispatcher against the in-memory queue. Rate limits are off: they are not the subject.

use partnerd_domain::account::AccountStatus;
use partnerd_domain::event::{Event, EventType};
use partnerd_domain::ids::EventId;
use partnerd_domain::keys::{ApiKey, KeyKind};
use partnerd_domain::ports::DeliveryQueue;
use partnerd_domain::webhook::{DeliveryAttempt, DeliveryStatus, Recipient};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{Caller, NOW, Reply, TestApp, assert_error, contoso, no_rate_limits, oversized_body};

pub(crate) const URL: &str = "https://hooks.acmemsp.example/partnerd";

/// Which account's webhook API a scenario drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Partner,
    Distributor,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Distributor => "distributor",
        }
    }

    /// A new active account of this kind.
    pub(crate) async fn account(self, app: &TestApp) -> Account<'_> {
        match self {
            Self::Partner => {
                let (p, key) = app.partner(None, AccountStatus::Active).await;
                Account { app, side: self, recipient: Recipient::Partner(p.id), key }
            }
            Self::Distributor => {
                let (d, key) = app.distributor(AccountStatus::Active).await;
                Account { app, side: self, recipient: Recipient::Distributor(d.id), key }
            }
        }
    }

    /// The event type an account of this kind receives from [`Account::cause_event`].
    pub(crate) fn caused(self) -> &'static str {
        match self {
            Self::Partner => "customer.created",
            Self::Distributor => "partner.suspended",
        }
    }
}

/// One account, its key, and its webhook API.
pub(crate) struct Account<'a> {
    pub app: &'a TestApp,
    pub side: Side,
    pub recipient: Recipient,
    pub key: ApiKey,
}

impl Account<'_> {
    pub(crate) fn caller(&self) -> Caller<'_> {
        match self.side {
            Side::Partner => self.app.as_partner(&self.key),
            Side::Distributor => self.app.as_distributor(&self.key),
        }
    }

    /// `/v1/{partner|distributor}/webhook{rest}`.
    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/v1/{}/webhook{rest}", self.side.name())
    }

    /// `PUT …/webhook`, asserting `200`.
    pub(crate) async fn configure(&self, url: &str) -> Value {
        let reply = self.caller().put(&self.path(""), &json!({"url": url})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// `GET …/webhook`: the reply as it came.
    pub(crate) async fn webhook(&self) -> Reply {
        self.caller().get(&self.path("")).await
    }

    /// `GET …/webhook/deliveries{query}`, asserting `200`.
    pub(crate) async fn deliveries(&self, query: &str) -> Value {
        let reply = self.caller().get(&self.path(&format!("/deliveries{query}"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// The event ids of the delivery log (first page of 100), in the order listed.
    pub(crate) async fn logged(&self) -> Vec<String> {
        let body = self.deliveries("?limit=100").await;
        body["deliveries"].as_array().unwrap().iter().map(|d| d["eventId"].as_str().unwrap().to_owned()).collect()
    }

    pub(crate) async fn retry(&self, event: &str) -> Reply {
        self.caller().post_empty(&self.path(&format!("/deliveries/{event}/retry"))).await
    }

    pub(crate) async fn replay(&self, body: &Value) -> Reply {
        self.caller().post(&self.path("/replay"), body).await
    }

    /// Makes something happen through the API that this account's endpoint hears about: a
    /// partner creates a customer (`customer.created`); a distributor suspends a new partner of
    /// its own (`partner.suspended`). Returns the event's id, read from the outbox.
    pub(crate) async fn cause_event(&self) -> String {
        match &self.recipient {
            Recipient::Partner(_) => {
                self.caller().create_customer(&contoso()).await;
            }
            Recipient::Distributor(d) => {
                let (p, _) = self.app.partner(Some(d), AccountStatus::Active).await;
                let reply = self.caller().post_empty(&format!("/v1/distributor/partners/{}/suspend", p.id)).await;
                assert_eq!(reply.status, 200, "{}", reply.body);
            }
        }
        let last = self.app.store.events().pop().expect("an event was recorded");
        assert_eq!(last.event_type.as_str(), self.side.caused());
        last.id.to_string()
    }

    /// Records an event for this account straight into the outbox, as a change would, at `at`.
    pub(crate) fn record(&self, kind: EventType, at: OffsetDateTime) -> String {
        let event = Event::new(EventId::generate(&self.app.ids), kind, at);
        let event = match &self.recipient {
            Recipient::Partner(p) => event.to_partner(p.clone()),
            Recipient::Distributor(d) => event.to_distributor(Some(d.clone())),
        };
        let id = event.id.to_string();
        self.app.store.record_events(vec![event]);
        id
    }

    /// An event type this kind of account receives, other than [`Side::caused`].
    pub(crate) fn other_kind(&self) -> EventType {
        match self.side {
            Side::Partner => EventType::KeyCreated,
            Side::Distributor => EventType::PartnerActivated,
        }
    }
}

/// Plays the dispatcher once at the server's current time: claims every due delivery and records
/// an attempt with `http` for each, leaving it in `status` (`next` for `retrying`); a `410`
/// disables the endpoint. Returns the event ids attempted.
pub(crate) async fn dispatch(
    app: &TestApp,
    http: Option<u16>,
    status: DeliveryStatus,
    next: Option<OffsetDateTime>,
) -> Vec<String> {
    use partnerd_domain::ports::Clock as _;
    let now = app.clock.now();
    let claimed = app.store.claim("test-dispatcher", now, now + time::Duration::minutes(1), 1000).await.unwrap();
    let mut attempted = Vec::new();
    for c in claimed {
        let attempt = DeliveryAttempt {
            attempt: c.attempt,
            attempted_at: now,
            http_status: http,
            latency_ms: 87,
            error: (status != DeliveryStatus::Delivered).then(|| format!("HTTP {}", http.unwrap_or(0))),
            status,
            next_retry_at: next,
        };
        assert!(app.store.finish(&c, &attempt, http == Some(410)).await.unwrap());
        attempted.push(c.event_id.to_string());
    }
    attempted
}

/// A delivery as the log shows it before any attempt.
pub(crate) fn pending(event: &str, kind: &str, occurred: &str, next: &str) -> Value {
    json!({
        "eventId": event,
        "type": kind,
        "status": "pending",
        "occurredAt": occurred,
        "attemptCount": 0,
        "httpStatus": null,
        "latencyMs": null,
        "nextRetryAt": next,
        "attempts": [],
    })
}

/// Sorted field names of a JSON object.
pub(crate) fn fields(body: &Value) -> Vec<&str> {
    let mut names: Vec<&str> =
        body.as_object().unwrap_or_else(|| panic!("not an object: {body}")).keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

/// Asserts a secret as shown: `whsec_` and the base64 of 32 bytes.
#[track_caller]
pub(crate) fn assert_secret(value: &Value) -> String {
    let secret = value.as_str().unwrap_or_else(|| panic!("no secret: {value}"));
    let encoded = secret.strip_prefix("whsec_").unwrap_or_else(|| panic!("{secret} lacks whsec_"));
    // Standard base64 of 32 bytes: 43 symbols and one `=`.
    let (symbols, pad) = encoded.split_at(encoded.len().saturating_sub(1));
    assert_eq!((symbols.len(), pad), (43, "="), "{secret}");
    assert!(symbols.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'), "{secret}");
    let key = partnerd_domain::webhook::WebhookSecret::from_stored(secret.to_owned()).key_bytes();
    assert_eq!(key.len(), 32, "{secret}");
    secret.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Scenarios for either kind of account.
// ---------------------------------------------------------------------------------------------

pub(crate) async fn nothing_configured_is_not_found_everywhere(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let event = me.cause_event().await;
    let caller = me.caller();
    me.webhook().await.error(404, "NOT_FOUND");
    caller.delete(&me.path("")).await.error(404, "NOT_FOUND");
    caller.post_empty(&me.path("/rotate-secret")).await.error(404, "NOT_FOUND");
    caller.get(&me.path("/deliveries")).await.error(404, "NOT_FOUND");
    me.retry(&event).await.error(404, "NOT_FOUND");
    let range = json!({"since": "2026-04-01T00:00:00Z", "until": "2026-04-05T00:00:00Z"});
    me.replay(&range).await.error(404, "NOT_FOUND");
    me.webhook().await.error(404, "NOT_FOUND");
}

pub(crate) async fn the_first_put_shows_the_secret_once_and_later_puts_keep_it(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let created = me.configure(URL).await;
    assert_eq!(fields(&created), ["createdAt", "enabled", "secret", "updatedAt", "url"], "{created}");
    let secret = assert_secret(&created["secret"]);
    assert_eq!(
        created,
        json!({"url": URL, "secret": secret, "enabled": true, "createdAt": "2026-04-03T10:00:00Z", "updatedAt": "2026-04-03T10:00:00Z"})
    );
    let shown = me.webhook().await;
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.body,
        json!({"url": URL, "enabled": true, "createdAt": "2026-04-03T10:00:00Z", "updatedAt": "2026-04-03T10:00:00Z"})
    );
    assert!(!shown.body.to_string().contains(&secret));

    app.clock.set(datetime!(2026-04-03 12:30 UTC));
    let moved = me.configure("https://hooks.acmemsp.example/v2").await;
    assert_eq!(
        moved,
        json!({
            "url": "https://hooks.acmemsp.example/v2",
            "enabled": true,
            "createdAt": "2026-04-03T10:00:00Z",
            "updatedAt": "2026-04-03T12:30:00Z",
        }),
        "a later PUT never shows the secret and keeps createdAt"
    );
    let again = me.configure("https://hooks.acmemsp.example/v2").await;
    assert!(again.get("secret").is_none(), "{again}");
    assert_eq!(me.webhook().await.body, moved);
    // The kept secret still signs: the fake's endpoint has it.
    let stored =
        partnerd_domain::ports::WebhookRepository::endpoint(&*app.store, &me.recipient).await.unwrap().unwrap();
    assert_eq!(stored.secret.reveal(), secret);
}

pub(crate) async fn urls_are_normalised_and_accepted_up_to_2048_characters(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let created = me.configure("  https://Hooks.AcmeMSP.example  ").await;
    assert_eq!(created["url"], "https://hooks.acmemsp.example/");
    let base = "https://hooks.example.com/";
    let longest = format!("{base}{}", "a".repeat(2048 - base.len()));
    assert_eq!(longest.len(), 2048);
    assert_eq!(me.configure(&longest).await["url"], longest.as_str());
    let too_long = format!("{longest}a");
    me.caller().put(&me.path(""), &json!({"url": too_long})).await.field_error("INVALID_FIELD", "url");
    assert_eq!(me.webhook().await.body["url"], longest.as_str());
}

/// URLs the API refuses while private addresses are not allowed (the tests' setting).
pub(crate) const REFUSED_URLS: &[&str] = &[
    "http://hooks.acmemsp.example/partnerd",
    "https://127.0.0.1/hook",
    "https://127.1/hook",
    "https://0x7f000001/hook",
    "https://2852039166/latest/meta-data",
    "https://[::]/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://LOCALHOST./hook",
    "https://api.localhost/hook",
    "https://10.0.0.8/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/hook",
    "https://0.0.0.0/hook",
    "https://user:pw@hooks.acmemsp.example/",
    "https://token@hooks.acmemsp.example/",
    "ftp://hooks.acmemsp.example/",
    "javascript:alert(1)",
    "not a url",
    "hooks.acmemsp.example/partnerd",
    "/relative/path",
    "",
];

pub(crate) async fn refused_urls_are_invalid_field_and_change_nothing(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let caller = me.caller();
    let too_long = format!("https://hooks.example.com/{}", "a".repeat(2048));
    for url in REFUSED_URLS.iter().copied().chain([too_long.as_str()]) {
        caller.put(&me.path(""), &json!({"url": url})).await.field_error("INVALID_FIELD", "url");
    }
    me.webhook().await.error(404, "NOT_FOUND");
    assert!(app.store.events().is_empty());

    let created = me.configure(URL).await;
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    for url in REFUSED_URLS.iter().copied().chain([too_long.as_str()]) {
        caller.put(&me.path(""), &json!({"url": url})).await.field_error("INVALID_FIELD", "url");
    }
    let shown = me.webhook().await.body;
    assert_eq!((shown["url"].as_str(), &shown["updatedAt"]), (Some(URL), &created["updatedAt"]), "unchanged");
}

pub(crate) async fn malformed_put_bodies_are_refused_and_change_nothing(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let caller = me.caller();
    let path = me.path("");
    caller.put(&path, &json!({})).await.field_error("MISSING_FIELD", "url");
    caller.put(&path, &json!({"uri": URL})).await.error(400, "INVALID_FIELD");
    caller.put(&path, &json!({"url": null})).await.field_error("INVALID_FIELD", "url");
    caller.put(&path, &json!({"url": 42})).await.field_error("INVALID_FIELD", "url");
    caller.put(&path, &json!({"url": [URL]})).await.field_error("INVALID_FIELD", "url");
    caller.put(&path, &json!({"url": URL, "secret": "whsec_mine"})).await.field_error("INVALID_FIELD", "secret");
    caller.put(&path, &json!([URL])).await.error(400, "INVALID_FIELD");
    for raw in ["", "{", "{\"url\": ", "url=https://x.example", "{\"url\": \"https://x.example\"} trailing"] {
        caller.put_raw(&path, raw).await.error(400, "INVALID_JSON");
    }
    let message = caller.put_raw(&path, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert!(message.contains("1024 KiB"), "{message}");
    me.webhook().await.error(404, "NOT_FOUND");
    me.configure(URL).await;
    caller.put(&path, &json!({"url": "https://elsewhere.example/"})).await;
    caller.put_raw(&path, "{").await.error(400, "INVALID_JSON");
    caller.put(&path, &json!({})).await.field_error("MISSING_FIELD", "url");
    assert_eq!(me.webhook().await.body["url"], "https://elsewhere.example/");
}

pub(crate) async fn rotation_shows_a_new_secret_and_the_old_ones_expiry(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let first = assert_secret(&me.configure(URL).await["secret"]);
    app.clock.set(datetime!(2026-04-03 10:30 UTC));
    let reply = me.caller().post_empty(&me.path("/rotate-secret")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let second = assert_secret(&reply.body["secret"]);
    assert_ne!(second, first);
    assert_eq!(reply.body, json!({"secret": second, "previousSecretExpiresAt": "2026-04-04T10:30:00Z"}));
    let shown = me.webhook().await.body;
    assert_eq!(
        shown,
        json!({
            "url": URL,
            "enabled": true,
            "previousSecretExpiresAt": "2026-04-04T10:30:00Z",
            "createdAt": "2026-04-03T10:00:00Z",
            "updatedAt": "2026-04-03T10:30:00Z",
        })
    );
    assert!(!shown.to_string().contains("whsec_"));
    // A PUT after the rotation keeps the new secret, and shows none.
    assert!(me.configure(URL).await.get("secret").is_none());
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let third = me.caller().post_raw(&me.path("/rotate-secret"), "").await;
    assert_eq!(third.status, 200, "{}", third.body);
    let third_secret = assert_secret(&third.body["secret"]);
    assert!(third_secret != first && third_secret != second);
    assert_eq!(third.body["previousSecretExpiresAt"], "2026-04-04T11:00:00Z");
    let stored =
        partnerd_domain::ports::WebhookRepository::endpoint(&*app.store, &me.recipient).await.unwrap().unwrap();
    assert_eq!(stored.secret.reveal(), third_secret);
    assert_eq!(stored.previous_secret.map(|(s, _)| s.reveal().to_owned()), Some(second), "the one it replaced");
}

pub(crate) async fn delete_removes_the_endpoint_and_its_log(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let first = assert_secret(&me.configure(URL).await["secret"]);
    let event = me.cause_event().await;
    assert_eq!(me.logged().await, std::slice::from_ref(&event));
    let reply = me.caller().delete(&me.path("")).await;
    assert_eq!((reply.status, &reply.body), (204, &Value::Null));
    me.webhook().await.error(404, "NOT_FOUND");
    me.caller().get(&me.path("/deliveries")).await.error(404, "NOT_FOUND");
    me.caller().delete(&me.path("")).await.error(404, "NOT_FOUND");
    // Events while no endpoint exists queue nothing.
    me.cause_event().await;
    let recreated = me.configure(URL).await;
    let second = assert_secret(&recreated["secret"]);
    assert_ne!(second, first, "a new endpoint has a new secret");
    assert!(me.logged().await.is_empty(), "the old log went with the old endpoint");
}

pub(crate) async fn events_appear_in_the_log_as_pending_deliveries_newest_first(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let secret = assert_secret(&me.configure(URL).await["secret"]);
    let first = me.cause_event().await;
    app.clock.set(datetime!(2026-04-03 10:05 UTC));
    let second = me.cause_event().await;
    let body = me.deliveries("").await;
    let kind = side.caused();
    assert_eq!(
        body,
        json!({
            "deliveries": [
                pending(&second, kind, "2026-04-03T10:05:00Z", "2026-04-03T10:05:00Z"),
                pending(&first, kind, "2026-04-03T10:00:00Z", "2026-04-03T10:00:00Z"),
            ],
            "has_more": false,
        })
    );
    assert!(!body.to_string().contains(&secret), "the secret never appears in the log");
    assert!(!body.to_string().contains("whsec_"));
}

pub(crate) async fn the_log_shows_attempts_and_filters_by_status_and_type(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    let caused = me.cause_event().await;
    let other = me.record(me.other_kind(), datetime!(2026-04-03 09:00 UTC));
    // The dispatcher tries both: a 500, another attempt due in a minute.
    let retry_at = datetime!(2026-04-03 10:01 UTC);
    let mut attempted = dispatch(&app, Some(500), DeliveryStatus::Retrying, Some(retry_at)).await;
    attempted.sort();
    let mut both = vec![caused.clone(), other.clone()];
    both.sort();
    assert_eq!(attempted, both);
    app.clock.set(retry_at);
    me.record(me.other_kind(), datetime!(2026-04-03 10:01 UTC));
    // The next round: the two retried ones are delivered (and the new one too).
    app.clock.set(datetime!(2026-04-03 10:02 UTC));
    assert_eq!(dispatch(&app, Some(200), DeliveryStatus::Delivered, None).await.len(), 3);
    let newest = me.record(me.other_kind(), datetime!(2026-04-03 10:02 UTC));

    let first_attempt = json!({
        "attempt": 1,
        "attemptedAt": "2026-04-03T10:00:00Z",
        "httpStatus": 500,
        "latencyMs": 87,
        "error": "HTTP 500",
        "status": "retrying",
        "nextRetryAt": "2026-04-03T10:01:00Z",
    });
    let second_attempt = json!({
        "attempt": 2,
        "attemptedAt": "2026-04-03T10:02:00Z",
        "httpStatus": 200,
        "latencyMs": 87,
        "error": null,
        "status": "delivered",
        "nextRetryAt": null,
    });
    let delivered = me.deliveries(&format!("?status=delivered&type={}", side.caused())).await;
    assert_eq!(
        delivered,
        json!({
            "deliveries": [{
                "eventId": caused,
                "type": side.caused(),
                "status": "delivered",
                "occurredAt": "2026-04-03T10:00:00Z",
                "attemptCount": 2,
                "httpStatus": 200,
                "latencyMs": 87,
                "nextRetryAt": null,
                "attempts": [first_attempt, second_attempt],
            }],
            "has_more": false,
        })
    );
    let other_kind = me.other_kind().as_str();
    let by_type = me.deliveries(&format!("?type={other_kind}")).await;
    let ids: Vec<&str> =
        by_type["deliveries"].as_array().unwrap().iter().map(|d| d["eventId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!((ids[0], ids[2]), (newest.as_str(), other.as_str()), "newest first");
    let pending_only = me.deliveries("?status=pending").await;
    assert_eq!(pending_only["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(pending_only["deliveries"][0]["eventId"], newest.as_str());
    assert_eq!(me.deliveries("?status=failed").await, json!({"deliveries": [], "has_more": false}));
    assert_eq!(me.deliveries("?status=retrying").await, json!({"deliveries": [], "has_more": false}));
    assert_eq!(me.deliveries("?type=assessment.failed").await, json!({"deliveries": [], "has_more": false}));
}

pub(crate) async fn the_log_pages_with_limit_and_starting_after(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    // 120 events a second apart: the newest at the end.
    let ids: Vec<String> =
        (0..120).map(|i| me.record(me.other_kind(), NOW - time::Duration::seconds(120 - i))).collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let page_ids = |body: &Value| -> Vec<String> {
        body["deliveries"].as_array().unwrap().iter().map(|d| d["eventId"].as_str().unwrap().to_owned()).collect()
    };
    let default = me.deliveries("").await;
    assert_eq!(page_ids(&default), newest_first[..50], "50 by default");
    assert_eq!(default["has_more"], true);
    let next = me.deliveries(&format!("?starting_after={}", newest_first[49])).await;
    assert_eq!(page_ids(&next), newest_first[50..100]);
    assert_eq!(next["has_more"], true);
    let last = me.deliveries(&format!("?starting_after={}&limit=100", newest_first[99])).await;
    assert_eq!(page_ids(&last), newest_first[100..]);
    assert_eq!(last["has_more"], false);
    let one = me.deliveries("?limit=1").await;
    assert_eq!((page_ids(&one), &one["has_more"]), (vec![newest_first[0].clone()], &json!(true)));
    let hundred = me.deliveries("?limit=100").await;
    assert_eq!(page_ids(&hundred), newest_first[..100]);
    let exact = me.deliveries(&format!("?limit=20&starting_after={}", newest_first[99])).await;
    assert_eq!(
        (page_ids(&exact).len(), &exact["has_more"]),
        (20, &json!(false)),
        "a page ending at the last is the last"
    );
    // A cursor that is no delivery of ours gives an empty page.
    for cursor in ["evt_000000000000000000000999", "nope"] {
        assert_eq!(
            me.deliveries(&format!("?starting_after={cursor}")).await,
            json!({"deliveries": [], "has_more": false})
        );
    }
}

pub(crate) async fn bad_log_queries_are_invalid_field(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    let caller = me.caller();
    for limit in ["0", "101", "-1", "abc", "1.5", "99999999999"] {
        caller.get(&me.path(&format!("/deliveries?limit={limit}"))).await.field_error("INVALID_FIELD", "limit");
    }
    for status in ["sent", "PENDING", "delivered,failed"] {
        caller.get(&me.path(&format!("/deliveries?status={status}"))).await.field_error("INVALID_FIELD", "status");
    }
    for kind in ["customer", "partner.deleted", "Customer.Created"] {
        caller.get(&me.path(&format!("/deliveries?type={kind}"))).await.field_error("INVALID_FIELD", "type");
    }
}

pub(crate) async fn retry_sends_a_delivery_again_with_a_fresh_schedule(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    let event = me.cause_event().await;
    assert_eq!(dispatch(&app, Some(503), DeliveryStatus::Failed, None).await, std::slice::from_ref(&event));
    app.clock.set(datetime!(2026-04-03 14:00 UTC));
    let reply = me.retry(&event).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "eventId": event,
            "type": side.caused(),
            "status": "pending",
            "occurredAt": "2026-04-03T10:00:00Z",
            "attemptCount": 1,
            "httpStatus": 503,
            "latencyMs": 87,
            "nextRetryAt": "2026-04-03T14:00:00Z",
            "attempts": [{
                "attempt": 1,
                "attemptedAt": "2026-04-03T10:00:00Z",
                "httpStatus": 503,
                "latencyMs": 87,
                "error": "HTTP 503",
                "status": "failed",
                "nextRetryAt": null,
            }],
        })
    );
    assert_eq!(me.deliveries("").await["deliveries"][0], reply.body, "the log shows the same");
    // The dispatcher picks it up again as attempt 2, first of a new round.
    let now = datetime!(2026-04-03 14:00 UTC);
    let claimed = app.store.claim("again", now, now + time::Duration::minutes(1), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].attempt, claimed[0].round_attempt), (2, 0));
}

pub(crate) async fn retry_of_an_event_from_before_the_endpoint_creates_its_delivery(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let early = me.cause_event().await;
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    me.configure(URL).await;
    assert!(me.logged().await.is_empty());
    let reply = me.retry(&early).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body, pending(&early, side.caused(), "2026-04-03T10:00:00Z", "2026-04-03T11:00:00Z"));
    assert_eq!(me.logged().await, [early]);
}

pub(crate) async fn retry_of_anything_not_ours_is_not_found(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let other = side.account(&app).await;
    me.configure(URL).await;
    other.configure(URL).await;
    let theirs = other.cause_event().await;
    let mine = me.cause_event().await;
    for event in [theirs.as_str(), "evt_000000000000000000000999", "nope", "evt_", "cust_000000000000000000000001"] {
        me.retry(event).await.error(404, "NOT_FOUND");
    }
    assert_eq!(me.logged().await, [mine]);
    assert_eq!(other.logged().await, std::slice::from_ref(&theirs), "their delivery is untouched");
    assert_eq!(other.deliveries("").await["deliveries"][0]["nextRetryAt"], "2026-04-03T10:00:00Z");
}

pub(crate) async fn replay_counts_exactly_the_events_of_the_range(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let other = side.account(&app).await;
    let kind = me.other_kind();
    // Two before the endpoint exists, three after; one of another account in the range.
    let at = |h: u8| datetime!(2026-04-03 00:00 UTC) + time::Duration::hours(i64::from(h));
    let before = [me.record(kind, at(6)), me.record(kind, at(8))];
    me.configure(URL).await;
    let after = [me.record(kind, at(9)), me.record(kind, at(10)), me.record(kind, at(11))];
    other.configure(URL).await;
    other.record(kind, at(9));
    assert_eq!(me.logged().await.len(), 3);
    // 09:00 and 10:00 of ours are in [08:30, 11:00); 11:00 is not, nor is anything of theirs.
    let reply = me.replay(&json!({"since": "2026-04-03T08:30:00Z", "until": "2026-04-03T11:00:00Z"})).await;
    assert_eq!((reply.status, &reply.body), (202, &json!({"replayed": 2})));
    // `since` is inclusive and takes events from before the endpoint existed.
    let reply = me.replay(&json!({"since": "2026-04-03T06:00:00Z", "until": "2026-04-03T08:00:01Z"})).await;
    assert_eq!((reply.status, &reply.body), (202, &json!({"replayed": 2})));
    let mut logged = me.logged().await;
    logged.sort();
    let mut all: Vec<String> = before.iter().chain(after.iter()).cloned().collect();
    all.sort();
    assert_eq!(logged, all, "the replay created the missing deliveries");
    // An offset other than Z means the same instant.
    let reply = me.replay(&json!({"since": "2026-04-03T11:00:00+02:00", "until": "2026-04-03T10:00:00Z"})).await;
    assert_eq!(reply.body, json!({"replayed": 1}), "09:00Z only");
    let reply = me.replay(&json!({"since": "2026-04-04T00:00:00Z", "until": "2026-04-05T00:00:00Z"})).await;
    assert_eq!((reply.status, &reply.body), (202, &json!({"replayed": 0})));
    assert_eq!(other.logged().await.len(), 1);
}

pub(crate) async fn replay_by_status_sends_only_those_deliveries(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    let kind = me.other_kind();
    let a = me.record(kind, datetime!(2026-04-03 09:00 UTC));
    let b = me.record(kind, datetime!(2026-04-03 09:10 UTC));
    assert_eq!(dispatch(&app, Some(500), DeliveryStatus::Failed, None).await.len(), 2);
    let c = me.record(kind, datetime!(2026-04-03 09:20 UTC));
    app.clock.set(datetime!(2026-04-03 12:00 UTC));
    let range =
        |status: &str| json!({"since": "2026-04-03T00:00:00Z", "until": "2026-04-04T00:00:00Z", "status": status});
    assert_eq!(me.replay(&range("delivered")).await.body, json!({"replayed": 0}));
    let reply = me.replay(&range("failed")).await;
    assert_eq!((reply.status, &reply.body), (202, &json!({"replayed": 2})));
    let log = me.deliveries("").await;
    let by_id = |id: &str| log["deliveries"].as_array().unwrap().iter().find(|d| d["eventId"] == id).unwrap().clone();
    for id in [&a, &b] {
        let d = by_id(id);
        assert_eq!(
            (d["status"].as_str(), d["nextRetryAt"].as_str(), d["attemptCount"].as_u64()),
            (Some("pending"), Some("2026-04-03T12:00:00Z"), Some(1))
        );
    }
    assert_eq!(by_id(&c)["nextRetryAt"], "2026-04-03T09:20:00Z", "a pending delivery not replayed keeps its time");
    assert_eq!(me.replay(&range("failed")).await.body, json!({"replayed": 0}));
    assert_eq!(me.replay(&range("pending")).await.body, json!({"replayed": 3}));
}

pub(crate) async fn bad_replay_requests_are_refused_and_send_nothing(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    me.record(me.other_kind(), datetime!(2026-04-03 09:00 UTC));
    dispatch(&app, Some(500), DeliveryStatus::Failed, None).await;
    let (since, until) = ("2026-04-03T00:00:00Z", "2026-04-04T00:00:00Z");
    let caller = me.caller();
    let path = me.path("/replay");
    caller.post(&path, &json!({"until": until})).await.field_error("MISSING_FIELD", "since");
    caller.post(&path, &json!({"since": since})).await.field_error("MISSING_FIELD", "until");
    for bad in ["", "yesterday", "2026-04-03", "2026-04-03 00:00:00", "2026-02-30T00:00:00Z"] {
        caller.post(&path, &json!({"since": bad, "until": until})).await.field_error("INVALID_FIELD", "since");
        caller.post(&path, &json!({"since": since, "until": bad})).await.field_error("INVALID_FIELD", "until");
    }
    caller.post(&path, &json!({"since": 1_712_000_000, "until": until})).await.field_error("INVALID_FIELD", "since");
    caller.post(&path, &json!({"since": since, "until": since})).await.field_error("INVALID_FIELD", "until");
    caller.post(&path, &json!({"since": until, "until": since})).await.field_error("INVALID_FIELD", "until");
    for status in ["sent", "FAILED", ""] {
        caller
            .post(&path, &json!({"since": since, "until": until, "status": status}))
            .await
            .field_error("INVALID_FIELD", "status");
    }
    caller
        .post(&path, &json!({"since": since, "until": until, "type": "customer.created"}))
        .await
        .field_error("INVALID_FIELD", "type");
    for raw in ["", "{", "{\"since\": "] {
        caller.post_raw(&path, raw).await.error(400, "INVALID_JSON");
    }
    caller.post_raw(&path, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    let log = me.deliveries("").await;
    assert_eq!(log["deliveries"][0]["status"], "failed", "nothing was sent again");
}

pub(crate) async fn every_route_wants_this_kinds_key(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    let (_, partner_key) = app.partner(None, AccountStatus::Active).await;
    let (_, distributor_key) = app.distributor(AccountStatus::Active).await;
    let (header, other_header, wrong_kind, unknown) = match side {
        Side::Partner => {
            ("X-Partner-Key", "X-Distributor-Key", distributor_key, ApiKey::generate(KeyKind::Partner, &app.ids))
        }
        Side::Distributor => {
            ("X-Distributor-Key", "X-Partner-Key", partner_key, ApiKey::generate(KeyKind::Distributor, &app.ids))
        }
    };
    let put = json!({"url": URL}).to_string();
    let replay = json!({"since": "2026-04-01T00:00:00Z", "until": "2026-04-05T00:00:00Z"}).to_string();
    let routes: Vec<(reqwest::Method, String, Option<String>)> = vec![
        (reqwest::Method::GET, me.path(""), None),
        (reqwest::Method::PUT, me.path(""), Some(put)),
        (reqwest::Method::DELETE, me.path(""), None),
        (reqwest::Method::POST, me.path("/rotate-secret"), None),
        (reqwest::Method::GET, me.path("/deliveries"), None),
        (reqwest::Method::POST, me.path("/deliveries/evt_000000000000000000000001/retry"), None),
        (reqwest::Method::POST, me.path("/replay"), Some(replay)),
    ];
    for (method, path, body) in &routes {
        let send = |headers: Vec<(&'static str, String)>| {
            let mut req = app.client.request(method.clone(), app.url(path));
            for (name, value) in headers {
                req = req.header(name, value);
            }
            if let Some(body) = body {
                req = req.header("Content-Type", "application/json").body(body.clone());
            }
            async move {
                let res = req.send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        let cases = [
            (vec![], "MISSING_KEY"),
            (vec![(header, unknown.reveal().to_owned())], "INVALID_KEY"),
            (vec![(header, "garbage".to_owned())], "INVALID_KEY"),
            (vec![(header, wrong_kind.reveal().to_owned())], "INVALID_KEY"),
            (vec![(other_header, me.key.reveal().to_owned())], "MISSING_KEY"),
        ];
        for (headers, code) in cases {
            let (status, body) = send(headers).await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            let message = assert_error(&body, code);
            if code == "MISSING_KEY" {
                assert!(message.contains(header), "{message}");
            }
        }
    }
    me.webhook().await.error(404, "NOT_FOUND");
}

pub(crate) async fn wrong_methods_are_method_not_allowed(side: Side) {
    use reqwest::Method;
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    let retry = me.path("/deliveries/evt_000000000000000000000001/retry");
    let cases = [
        (Method::POST, me.path("")),
        (Method::PATCH, me.path("")),
        (Method::GET, me.path("/rotate-secret")),
        (Method::PUT, me.path("/rotate-secret")),
        (Method::DELETE, me.path("/rotate-secret")),
        (Method::POST, me.path("/deliveries")),
        (Method::DELETE, me.path("/deliveries")),
        (Method::GET, retry.clone()),
        (Method::DELETE, retry),
        (Method::GET, me.path("/replay")),
        (Method::PUT, me.path("/replay")),
    ];
    for (method, path) in cases {
        me.caller().send(method.clone(), &path, None).await.error(405, "METHOD_NOT_ALLOWED");
    }
    assert_eq!(me.webhook().await.body["url"], URL, "nothing changed");
}

pub(crate) async fn accounts_of_a_kind_never_see_each_others_webhooks(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let a = side.account(&app).await;
    let b = side.account(&app).await;
    let a_secret = assert_secret(&a.configure(URL).await["secret"]);
    b.webhook().await.error(404, "NOT_FOUND");
    b.caller().get(&b.path("/deliveries")).await.error(404, "NOT_FOUND");
    let a_event = a.cause_event().await;
    let b_secret = assert_secret(&b.configure("https://b.example/hook").await["secret"]);
    assert_ne!(a_secret, b_secret);
    let b_event = b.cause_event().await;
    assert_eq!(a.logged().await, std::slice::from_ref(&a_event));
    assert_eq!(b.logged().await, std::slice::from_ref(&b_event));
    b.retry(&a_event).await.error(404, "NOT_FOUND");
    let everything = json!({"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"});
    assert_eq!(b.replay(&everything).await.body, json!({"replayed": 1}));
    assert_eq!(b.logged().await, [b_event]);
    assert!(!b.deliveries("").await.to_string().contains(&a_event));
    assert_eq!(b.deliveries(&format!("?starting_after={a_event}")).await["deliveries"], json!([]));
    // B's rotation and deletion leave A alone.
    b.caller().post_empty(&b.path("/rotate-secret")).await;
    assert_eq!(b.caller().delete(&b.path("")).await.status, 204);
    assert_eq!(a.webhook().await.body["url"], URL);
    assert!(a.webhook().await.body.get("previousSecretExpiresAt").is_none());
    assert_eq!(a.logged().await, [a_event]);
}

pub(crate) async fn a_gone_endpoint_shows_disabled_until_a_put_enables_it(side: Side) {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = side.account(&app).await;
    me.configure(URL).await;
    me.cause_event().await;
    me.record(me.other_kind(), datetime!(2026-04-03 09:00 UTC));
    app.clock.set(datetime!(2026-04-03 10:10 UTC));
    let now = datetime!(2026-04-03 10:10 UTC);
    let claimed = app.store.claim("d", now, now + time::Duration::minutes(1), 1).await.unwrap();
    let gone = DeliveryAttempt {
        attempt: 1,
        attempted_at: now,
        http_status: Some(410),
        latency_ms: 5,
        error: Some("HTTP 410".into()),
        status: DeliveryStatus::Failed,
        next_retry_at: None,
    };
    assert!(app.store.finish(&claimed[0], &gone, true).await.unwrap());
    let shown = me.webhook().await.body;
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["disabledAt"], "2026-04-03T10:10:00Z");
    assert!(shown["disabledReason"].as_str().unwrap().contains("410"), "{shown}");
    assert!(shown.get("secret").is_none());
    let log = me.deliveries("").await;
    let statuses: Vec<&str> =
        log["deliveries"].as_array().unwrap().iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "failed"], "every open delivery failed with the endpoint: {log}");
    assert!(log["deliveries"].as_array().unwrap().iter().all(|d| d["nextRetryAt"].is_null()));
    app.clock.set(datetime!(2026-04-03 10:20 UTC));
    let enabled = me.configure(URL).await;
    assert_eq!(
        enabled,
        json!({"url": URL, "enabled": true, "createdAt": "2026-04-03T10:00:00Z", "updatedAt": "2026-04-03T10:20:00Z"})
    );
    let next = me.cause_event().await;
    assert_eq!(me.logged().await[0], next, "deliveries are queued again");
}

/// Runs each named scenario as a test `<scenario>::<test>` for accounts of kind `Side::<side>`.
macro_rules! scenarios_for {
    ($side:ident as $test:ident => $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn $test() {
                    $crate::partner_webhooks::$name($crate::partner_webhooks::Side::$side).await;
                }
            }
        )*
    };
}
pub(crate) use scenarios_for;

scenarios_for!(Partner as partner =>
    nothing_configured_is_not_found_everywhere,
    the_first_put_shows_the_secret_once_and_later_puts_keep_it,
    urls_are_normalised_and_accepted_up_to_2048_characters,
    refused_urls_are_invalid_field_and_change_nothing,
    malformed_put_bodies_are_refused_and_change_nothing,
    rotation_shows_a_new_secret_and_the_old_ones_expiry,
    delete_removes_the_endpoint_and_its_log,
    events_appear_in_the_log_as_pending_deliveries_newest_first,
    the_log_shows_attempts_and_filters_by_status_and_type,
    the_log_pages_with_limit_and_starting_after,
    bad_log_queries_are_invalid_field,
    retry_sends_a_delivery_again_with_a_fresh_schedule,
    retry_of_an_event_from_before_the_endpoint_creates_its_delivery,
    retry_of_anything_not_ours_is_not_found,
    replay_counts_exactly_the_events_of_the_range,
    replay_by_status_sends_only_those_deliveries,
    bad_replay_requests_are_refused_and_send_nothing,
    every_route_wants_this_kinds_key,
    wrong_methods_are_method_not_allowed,
    accounts_of_a_kind_never_see_each_others_webhooks,
    a_gone_endpoint_shows_disabled_until_a_put_enables_it,
);

// ---------------------------------------------------------------------------------------------
// Partner only.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_partners_customer_and_key_events_reach_its_log_and_not_its_distributors() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (p, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let partner = app.as_partner(&pk);
    let distributor = app.as_distributor(&dk);
    assert_eq!(partner.put("/v1/partner/webhook", &json!({"url": URL})).await.status, 200);
    assert_eq!(distributor.put("/v1/distributor/webhook", &json!({"url": "https://dist.example/"})).await.status, 200);

    let customer = partner.create_customer(&contoso()).await;
    app.clock.set(datetime!(2026-04-03 10:01 UTC));
    assert_eq!(partner.post_empty("/v1/partner/keys").await.status, 201);
    app.clock.set(datetime!(2026-04-03 10:02 UTC));
    assert_eq!(partner.delete(&format!("/v1/partner/customers/{customer}")).await.status, 204);

    let log = partner.get("/v1/partner/webhook/deliveries").await.body;
    let kinds: Vec<&str> = log["deliveries"].as_array().unwrap().iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["customer.deleted", "key.created", "customer.created"], "{log}");
    let events = app.store.events();
    let created = events.iter().find(|e| e.event_type == EventType::CustomerCreated).unwrap();
    assert_eq!(created.to_partner.as_ref(), Some(&p.id));
    assert_eq!(
        log["deliveries"][2],
        pending(created.id.as_str(), "customer.created", "2026-04-03T10:00:00Z", "2026-04-03T10:00:00Z")
    );
    let theirs = distributor.get("/v1/distributor/webhook/deliveries").await.body;
    assert_eq!(theirs, json!({"deliveries": [], "has_more": false}), "customer.* and key.* are the partner's alone");
    // The distributor cannot retry the partner's event either.
    distributor
        .post_empty(&format!("/v1/distributor/webhook/deliveries/{}/retry", created.id))
        .await
        .error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_partners_webhook_is_not_its_distributors() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (_, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let partner = app.as_partner(&pk);
    let distributor = app.as_distributor(&dk);
    let reply = partner.put("/v1/partner/webhook", &json!({"url": URL})).await;
    assert_eq!(reply.status, 200);
    distributor.get("/v1/distributor/webhook").await.error(404, "NOT_FOUND");
    assert_eq!(partner.delete("/v1/partner/webhook").await.status, 204);
    let reply = distributor.put("/v1/distributor/webhook", &json!({"url": URL})).await;
    assert_eq!(reply.status, 200);
    assert_secret(&reply.body["secret"]);
    partner.get("/v1/partner/webhook").await.error(404, "NOT_FOUND");
}

#[tokio::test]
async fn no_stored_url_is_longer_than_2048_characters() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let me = Side::Partner.account(&app).await;
    // 2018 bytes as sent; every `é` becomes `%C3%A9` once the URL is normalised.
    let url = format!("https://hooks.example.com/{}", "é".repeat(1000));
    assert!(url.len() <= 2048);
    let reply = me.caller().put(&me.path(""), &json!({"url": url})).await;
    match reply.status {
        400 => reply.field_error("INVALID_FIELD", "url"),
        200 => {
            let stored = reply.body["url"].as_str().unwrap();
            assert!(stored.chars().count() <= 2048, "stored a URL of {} characters", stored.chars().count());
        }
        other => panic!("unexpected {other}: {}", reply.body),
    }
}
