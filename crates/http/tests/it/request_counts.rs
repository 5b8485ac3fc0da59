//! API requests counted per account: which requests count (authenticated partner and distributor
//! requests; not workers', not refused ones), that each account's usage shows exactly its own,
//! that a request shows in reads after it and never in its own answer, and the UTC day cut.
//! No flusher runs here: each test flushes the server's counter itself.

use std::sync::Arc;

use partnerd_domain::account::AccountStatus;
use partnerd_domain::testing::{FixedClock, InMemoryStore, SequentialIds};
use partnerd_http::{HttpConfig, RateLimits, RequestCounter};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, NOW, TestApp, in_memory_state, serve};

/// A server over an in-memory store, and its request counter.
fn start(config: HttpConfig) -> (TestApp, Arc<RequestCounter>) {
    let store = Arc::new(InMemoryStore::new());
    let clock = Arc::new(FixedClock::at(NOW));
    let state = in_memory_state(store.clone(), clock.clone());
    let counter = state.request_counts.clone();
    let app = TestApp {
        base: serve(state, config),
        store,
        ids: SequentialIds::default(),
        client: reqwest::Client::new(),
        clock,
    };
    (app, counter)
}

#[track_caller]
fn ok(reply: &crate::support::Reply) -> &Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    &reply.body
}

async fn usage(caller: &Caller<'_>, query: &str) -> u64 {
    ok(&caller.get(&format!("/v1/partner/usage{query}")).await)["apiRequests"].as_u64().unwrap()
}

async fn times(caller: &Caller<'_>, n: usize, path: &str) {
    for _ in 0..n {
        ok(&caller.get(path).await);
    }
}

#[tokio::test]
async fn each_account_sees_exactly_its_own_requests_and_a_read_never_counts_itself() {
    let (app, counter) = start(HttpConfig::default());
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (a, ak) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let (_, bk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let (_, sk) = app.partner(None, AccountStatus::Active).await;
    let (dist, alpha, beta, stranger) =
        (app.as_distributor(&dk), app.as_partner(&ak), app.as_partner(&bk), app.as_partner(&sk));

    times(&alpha, 2, "/v1/partner/me").await;
    times(&alpha, 1, "/api/v1/partner/me").await;
    times(&beta, 4, "/v1/partner/customers").await;
    // An error answer to an authenticated request counts too.
    assert_eq!(beta.get("/v1/partner/customers/cus_000000000000000000000000").await.status, 404);
    times(&stranger, 6, "/v1/partner/me").await;
    times(&dist, 2, "/v1/distributor/me").await;
    assert_eq!(counter.pending(), 3 + 5 + 6 + 2);
    // Nothing reaches a report before a flush; this read itself counts once answered.
    assert_eq!(usage(&alpha, "").await, 0);
    assert_eq!(counter.flush().await.unwrap(), 3 + 1 + 5 + 6 + 2);
    assert_eq!(counter.pending(), 0);

    assert_eq!(usage(&alpha, "").await, 4, "three requests and the earlier read, not this one");
    assert_eq!(usage(&beta, "?month=2026-04").await, 5);
    assert_eq!(usage(&stranger, "").await, 6);
    assert_eq!(usage(&alpha, "?month=2026-03").await, 0, "another month");
    counter.flush().await.unwrap();
    assert_eq!(usage(&alpha, "").await, 6, "the two reads before, once flushed");

    // The distributor: its own requests plus its partners', and each partner on its row.
    let report = ok(&dist.get("/v1/distributor/reports/usage").await).clone();
    assert_eq!(report["summary"]["ownApiRequests"], 2);
    assert_eq!(report["summary"]["apiRequests"], 2 + 6 + 6, "own + alpha's + beta's, not the direct partner's");
    let rows: Vec<(String, u64)> = report["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p["apiRequests"].as_u64().unwrap()))
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.contains(&(a.id.to_string(), 6)), "{rows:?}");
    assert!(rows.iter().any(|(id, n)| id != a.id.as_str() && *n == 6), "{rows:?}");
    for group_by in ["customer", "product"] {
        let other = ok(&dist.get(&format!("/v1/distributor/reports/usage?group_by={group_by}")).await).clone();
        assert_eq!(other["summary"]["ownApiRequests"], 2, "the summary is the same whatever the grouping");
    }
}

#[tokio::test]
async fn workers_and_refused_requests_are_not_counted() {
    let config =
        HttpConfig { rate_limits: RateLimits { partner: 2, ..RateLimits::default() }, ..HttpConfig::default() };
    let (app, counter) = start(config);
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (_, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let (_, wk) = app.worker("scanner").await;
    let partner = app.as_partner(&pk);

    assert_eq!(app.as_worker(&wk).post("/v1/worker/runs/claim", &json!({})).await.status, 204);
    assert_eq!(app.client.get(app.url("/v1/partner/me")).send().await.unwrap().status(), 401, "no key");
    assert_eq!(app.as_partner_key("pk_live_nope").get("/v1/partner/me").await.status, 401);
    assert_eq!(partner.get("/v1/distributor/me").await.status, 401, "a partner key on a distributor route");
    assert_eq!(app.as_distributor(&dk).get("/v1/partner/me").await.status, 401);
    assert_eq!(partner.get("/v1/partner/nowhere").await.status, 404, "an unknown route authenticates nothing");
    assert_eq!(counter.pending(), 0);

    // An inactive account's key does not authenticate.
    let (_, suspended) = app.partner(None, AccountStatus::Suspended).await;
    assert_eq!(app.as_partner(&suspended).get("/v1/partner/me").await.status, 403);
    assert_eq!(counter.pending(), 0);

    // Two allowed by the rate limit, the third refused before it reaches a handler.
    times(&partner, 2, "/v1/partner/me").await;
    assert_eq!(partner.get("/v1/partner/me").await.status, 429);
    assert_eq!(counter.pending(), 2);
}

#[tokio::test]
async fn requests_count_on_their_utc_day_and_dashboards_show_todays() {
    let (app, counter) = start(HttpConfig::default());
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (_, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let (dist, partner) = (app.as_distributor(&dk), app.as_partner(&pk));

    app.clock.set(datetime!(2026-04-30 23:59:59 UTC));
    times(&partner, 2, "/v1/partner/me").await;
    times(&dist, 1, "/v1/distributor/me").await;
    app.clock.set(datetime!(2026-05-01 00:00:01 UTC));
    times(&partner, 3, "/v1/partner/me").await;
    counter.flush().await.unwrap();

    let dash = ok(&partner.get("/v1/partner/dashboard").await).clone();
    assert_eq!(dash["apiRequestsToday"], 3, "1 May only");
    assert_eq!(usage(&partner, "?month=2026-04").await, 2);
    assert_eq!(usage(&partner, "").await, 3, "May so far, without the dashboard read (not flushed yet)");
    let dash = ok(&dist.get("/v1/distributor/dashboard").await).clone();
    assert_eq!(dash["apiRequestsToday"], 3, "the partner's 3 today; the distributor's own was yesterday");
    let april = ok(&dist.get("/v1/distributor/reports/usage?month=2026-04").await).clone();
    assert_eq!((&april["summary"]["apiRequests"], &april["summary"]["ownApiRequests"]), (&json!(3), &json!(1)));
    assert_eq!(april["partners"][0]["apiRequests"], 2);
}
