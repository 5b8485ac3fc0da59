//! Per-key request rate limits on the Distributor API: 120 a minute by default, `429
//! RATE_LIMITED` with an integer `Retry-After` beyond the allowance.

use partnerd_domain::account::AccountStatus;
use partnerd_domain::ports::{ManagedPartnerRepository, Page};
use partnerd_http::{HttpConfig, RateLimits};

use crate::support::{TestApp, msp_alpha};

fn limited_to(distributor: u32) -> HttpConfig {
    HttpConfig { rate_limits: RateLimits { distributor, ..RateLimits::default() }, ..HttpConfig::default() }
}

#[tokio::test]
async fn the_default_is_one_hundred_and_twenty_requests_a_minute_per_key() {
    let app = TestApp::start().await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let reply = app.as_distributor(&key).get("/v1/distributor/me").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("ratelimit-policy"), Some("120;w=60"));
    assert_eq!(reply.header("ratelimit"), Some("limit=120, remaining=119, reset=1"));
}

#[tokio::test]
async fn the_third_request_of_two_a_minute_is_rate_limited_with_retry_after() {
    let app = TestApp::start_with(limited_to(2)).await;
    let (d, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    // Any route counts, and so does an answer that is itself an error.
    let replies = [
        distributor.get("/v1/distributor/partners").await,
        distributor.get("/v1/distributor/partners/prt_000000000000000000000999").await,
    ];
    assert_eq!(replies.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 404]);
    for reply in &replies {
        assert_eq!(reply.header("ratelimit-policy"), Some("2;w=60"));
    }

    let reply = distributor.post("/v1/distributor/partners", &msp_alpha()).await;
    let message = reply.error(429, "RATE_LIMITED");
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After is an integer number of seconds");
    assert!((1..=30).contains(&retry_after), "one request comes back every 30 s: {retry_after}");
    assert!(message.contains(&format!("Retry after {retry_after} seconds")), "{message}");
    assert_eq!(reply.header("ratelimit-policy"), Some("2;w=60"));
    let provisioned = ManagedPartnerRepository::list(&*app.store, &d.id, None, &Page::default()).await.unwrap();
    assert!(provisioned.items.is_empty(), "the refused request provisioned nothing");
    distributor.get("/v1/distributor/me").await.error(429, "RATE_LIMITED");
}

#[tokio::test]
async fn each_distributor_key_and_each_partner_key_has_its_own_allowance() {
    let app = TestApp::start_with(limited_to(2)).await;
    let (d, key) = app.distributor(AccountStatus::Active).await;
    let (_, other_key) = app.distributor(AccountStatus::Active).await;
    let (_, partner_key) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    for _ in 0..2 {
        assert_eq!(distributor.get("/v1/distributor/me").await.status, 200);
    }
    distributor.get("/v1/distributor/me").await.error(429, "RATE_LIMITED");

    let other = app.as_distributor(&other_key).get("/v1/distributor/me").await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("ratelimit"), Some("limit=2, remaining=1, reset=30"));
    // The distributor's partners are counted on the partner limit, per partner key.
    for _ in 0..5 {
        let reply = app.as_partner(&partner_key).get("/v1/partner/me").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("ratelimit-policy"), Some("60;w=60"));
    }
}

#[tokio::test]
async fn zero_turns_the_distributor_limit_off() {
    let app = TestApp::start_with(limited_to(0)).await;
    let (_, key) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&key);
    for _ in 0..150 {
        let reply = distributor.get("/v1/distributor/me").await;
        assert_eq!(reply.status, 200);
        assert!(reply.header("ratelimit").is_none() && reply.header("ratelimit-policy").is_none());
    }
}
