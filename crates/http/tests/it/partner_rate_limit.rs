//! Per-key request rate limits on the Partner API: `429 RATE_LIMITED` with an integer
//! `Retry-After`, and `RateLimit`/`RateLimit-Policy` headers on every authenticated answer.
//! (A key regains one request every 60/limit seconds; these tests finish long before that.)

use partnerd_domain::keys::{ApiKey, KeyKind, KeyOwner};
use partnerd_domain::ports::KeyRepository;
use partnerd_domain::ports::SlotEvents;
use partnerd_http::{HttpConfig, RateLimits};
use serde_json::json;

use crate::support::{NOW, TestApp, contoso};

fn limited_to(partner: u32) -> HttpConfig {
    HttpConfig { rate_limits: RateLimits { partner, ..RateLimits::default() }, ..HttpConfig::default() }
}

#[tokio::test]
async fn the_fourth_request_of_three_a_minute_is_rate_limited_with_retry_after() {
    let app = TestApp::start_with(limited_to(3)).await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    // Any route counts, and so does an answer that is itself an error.
    let replies = [
        partner.get("/v1/partner/me").await,
        partner.get("/v1/partner/customers/cust_000000000000000000000999").await,
        partner.get("/v1/partner/products").await,
    ];
    assert_eq!(replies.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 404, 200]);
    for (reply, (remaining, reset)) in replies.iter().zip([(2, 20), (1, 40), (0, 60)]) {
        assert_eq!(reply.header("ratelimit-policy"), Some("3;w=60"));
        assert_eq!(reply.header("ratelimit"), Some(format!("limit=3, remaining={remaining}, reset={reset}").as_str()));
        assert!(reply.header("retry-after").is_none());
    }

    let reply = partner.get("/v1/partner/me").await;
    let message = reply.error(429, "RATE_LIMITED");
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After is an integer number of seconds");
    assert!((1..=20).contains(&retry_after), "one request comes back every 20 s: {retry_after}");
    assert!(message.contains(&format!("Retry after {retry_after} seconds")), "{message}");
    assert_eq!(reply.header("ratelimit-policy"), Some("3;w=60"));
    assert_eq!(reply.header("ratelimit"), Some(format!("limit=3, remaining=0, reset={retry_after}").as_str()));
}

#[tokio::test]
async fn a_rate_limited_request_changes_nothing_and_other_keys_are_unaffected() {
    let app = TestApp::start_with(limited_to(3)).await;
    let (partner_row, key) = app.partner_on("professional").await;
    let (_, other_partners_key) = app.partner_on("professional").await;
    // The same partner's second key has its own allowance: the limit is per key.
    let second = ApiKey::generate(KeyKind::Partner, &app.ids);
    app.store
        .insert_in_free_slot(&KeyOwner::Partner(partner_row.id.clone()), &second.hash(), NOW, &SlotEvents::none())
        .await
        .unwrap();
    let partner = app.as_partner(&key);
    for _ in 0..3 {
        assert_eq!(partner.get("/v1/partner/customers").await.status, 200);
    }
    partner.post("/v1/partner/customers", &contoso()).await.error(429, "RATE_LIMITED");

    let other = app.as_partner(&other_partners_key).get("/v1/partner/me").await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("ratelimit"), Some("limit=3, remaining=2, reset=20"));
    let same_partner = app.as_partner(&second).get("/v1/partner/customers").await;
    assert_eq!(same_partner.status, 200);
    assert_eq!(same_partner.body, json!({"customers": [], "has_more": false}), "the refused create created nothing");
    assert_eq!(same_partner.header("ratelimit"), Some("limit=3, remaining=2, reset=20"));
    partner.get("/v1/partner/me").await.error(429, "RATE_LIMITED");
}

#[tokio::test]
async fn the_default_is_sixty_requests_a_minute_per_key() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let reply = app.as_partner(&key).get("/v1/partner/me").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("ratelimit-policy"), Some("60;w=60"));
    assert_eq!(reply.header("ratelimit"), Some("limit=60, remaining=59, reset=1"));
}

#[tokio::test]
async fn zero_turns_the_partner_limit_off() {
    let app = TestApp::start_with(limited_to(0)).await;
    let (_, key) = app.partner_on("professional").await;
    let partner = app.as_partner(&key);
    for _ in 0..100 {
        let reply = partner.get("/v1/partner/products").await;
        assert_eq!(reply.status, 200);
        assert!(reply.header("ratelimit").is_none() && reply.header("ratelimit-policy").is_none());
    }
}
