//! API request counts through the real binary: every authenticated partner and distributor
//! request is counted once for its account (workers and refused requests are not), reaches the
//! usage reports after a flush, and never shows in the answer of the request that reads it; a
//! graceful stop records what the last flush left, while `kill -9` loses it (the documented
//! window of one flush interval).

use std::time::{Duration, Instant};

use partnerd_e2e::{Server, str_field};
use serde_json::Value;

use crate::support::{
    Ctx, DistributorApi, PartnerApi, assert_ok, create_distributor, create_partner, create_worker, on_both_backends,
};

on_both_backends!(usage_counts_each_authenticated_request_once_it_is_flushed, a_graceful_stop_records_the_last_counts);

/// Longest wait for counts to reach the database (a flush every 100 ms when the test sets it).
const WAIT: Duration = Duration::from_secs(20);

/// Waits out the last minute of a UTC day, so that a scenario's requests all fall on one day
/// (and in one month).
async fn away_from_midnight() {
    let now = time::OffsetDateTime::now_utc();
    let left = now.date().next_day().expect("a next day").midnight().assume_utc() - now;
    if left < time::Duration::seconds(60) {
        tokio::time::sleep(left.unsigned_abs() + Duration::from_secs(1)).await;
    }
}

async fn partner_usage(api: &PartnerApi) -> u64 {
    let reply = api.get("/v1/partner/usage").await;
    assert_ok(&reply)["apiRequests"].as_u64().unwrap_or_else(|| panic!("no apiRequests: {}", reply.text))
}

async fn distributor_usage(api: &DistributorApi) -> Value {
    assert_ok(&api.get("/v1/distributor/reports/usage?group_by=partner").await).clone()
}

/// The `apiRequests` of `partner`'s row in a distributor's usage report.
fn row(report: &Value, partner: &str) -> u64 {
    let rows = report["partners"].as_array().unwrap_or_else(|| panic!("no partners in {report}"));
    let found = rows.iter().find(|r| r["id"] == partner).unwrap_or_else(|| panic!("no row for {partner} in {report}"));
    found["apiRequests"].as_u64().unwrap()
}

/// Reads the distributor's report until `done` holds (each read is a request of its own, counted
/// for the distributor), and returns that report and how many reads it took.
async fn report_until(api: &DistributorApi, what: &str, done: impl Fn(&Value, u64) -> bool) -> (Value, u64) {
    let deadline = Instant::now() + WAIT;
    let mut reads = 0;
    loop {
        let report = distributor_usage(api).await;
        reads += 1;
        if done(&report, reads) {
            return (report, reads);
        }
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}; last report {report}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn get_n(api: &PartnerApi, n: usize, path: &str) {
    for _ in 0..n {
        assert_ok(&api.get(path).await);
    }
}

async fn usage_counts_each_authenticated_request_once_it_is_flushed(ctx: &Ctx) {
    away_from_midnight().await;
    let server = Server::serve_with(ctx.url(), &["--request-count-flush", "100ms"]).await;
    let created = create_distributor(ctx, "Counting Distribution", "ops@counting-dist.example").await;
    let distributor = DistributorApi::new(&server, str_field(&created, "key"));
    let d = str_field(&created, "id").to_owned();
    let created = create_partner(ctx, "Busy MSP", "ops@busy.example", "starter", Some(&d)).await;
    let (busy, busy_id) = (PartnerApi::new(&server, str_field(&created, "key")), str_field(&created, "id").to_owned());
    let created = create_partner(ctx, "Quiet MSP", "ops@quiet.example", "starter", Some(&d)).await;
    let (quiet, quiet_id) =
        (PartnerApi::new(&server, str_field(&created, "key")), str_field(&created, "id").to_owned());
    let created = create_partner(ctx, "Direct MSP", "ops@direct.example", "starter", None).await;
    let direct = PartnerApi::new(&server, str_field(&created, "key"));
    let worker = str_field(&create_worker(ctx, "counting-scanner").await, "key").to_owned();

    // Not counted: a worker's requests, requests without a valid key, unknown routes.
    for _ in 0..3 {
        let headers = [("X-Worker-Key", worker.as_str())];
        let reply = server.endpoint().send(reqwest::Method::POST, "/v1/worker/runs/claim", &headers, None).await;
        assert_eq!(reply.status, 204, "{}", reply.text);
    }
    assert_eq!(server.get("/v1/partner/me", &[]).await.status, 401);
    assert_eq!(server.get_with("/v1/partner/me", "X-Partner-Key", "pk_live_nope").await.status, 401);
    assert_eq!(busy.get("/v1/partner/nowhere").await.status, 404);
    // Counted, in this order: the direct partner's 5, busy's 7 (on both path prefixes), quiet's 3.
    get_n(&direct, 5, "/v1/partner/me").await;
    get_n(&busy, 4, "/v1/partner/me").await;
    get_n(&busy, 3, "/api/v1/partner/customers").await;
    get_n(&quiet, 3, "/v1/partner/me").await;

    // Once quiet's last request is in the report, every request before it is too (a flush
    // takes every count recorded so far, and a request is recorded before its answer is sent).
    let (report, first_reads) =
        report_until(&distributor, "quiet's 3 requests flushed", |r, _| row(r, &quiet_id) == 3).await;
    assert_eq!(row(&report, &busy_id), 7, "exactly busy's own requests: {report}");
    assert_eq!(report["partners"].as_array().map(Vec::len), Some(2), "the direct partner is no row: {report}");

    // A read never counts itself; once flushed, it counts in the reads after it.
    assert_eq!(partner_usage(&busy).await, 7);
    let (_, second_reads) = report_until(&distributor, "busy's usage read flushed", |r, _| row(r, &busy_id) == 8).await;
    assert_eq!(partner_usage(&busy).await, 8);
    assert_eq!(partner_usage(&quiet).await, 3, "quiet never sees busy's requests");
    assert_eq!(partner_usage(&direct).await, 5);

    // The distributor's summary: its own reads plus its partners'. Read until every earlier read
    // of its own is in (read n sees the reads before it), with busy's and quiet's latest reads.
    let earlier = first_reads + second_reads;
    let (report, _) = report_until(&distributor, "the distributor's reads flushed", |r, n| {
        r["summary"]["ownApiRequests"] == earlier + n - 1 && row(r, &busy_id) == 9 && row(r, &quiet_id) == 4
    })
    .await;
    let own = report["summary"]["ownApiRequests"].as_u64().unwrap();
    assert_eq!(report["summary"]["apiRequests"].as_u64(), Some(own + 9 + 4), "own + busy's + quiet's: {report}");

    // Today's requests on the dashboard: busy's 7 and its two usage reads, not this read.
    let dashboard = assert_ok(&busy.get("/v1/partner/dashboard").await).clone();
    assert_eq!(dashboard["apiRequestsToday"], 9, "{dashboard}");
    let dashboard = assert_ok(&quiet.get("/v1/partner/dashboard").await).clone();
    assert_eq!(dashboard["apiRequestsToday"], 4, "{dashboard}");
}

async fn a_graceful_stop_records_the_last_counts(ctx: &Ctx) {
    // Flushes an hour apart: within the scenario, only the stop flushes.
    away_from_midnight().await;
    let args = ["--request-count-flush", "1h"];
    let created = create_distributor(ctx, "Stopping Distribution", "ops@stopping-dist.example").await;
    let (d, dk) = (str_field(&created, "id").to_owned(), str_field(&created, "key").to_owned());
    let created = create_partner(ctx, "Stopping MSP", "ops@stopping.example", "starter", Some(&d)).await;
    let (p, pk) = (str_field(&created, "id").to_owned(), str_field(&created, "key").to_owned());

    let first = Server::serve_with(ctx.url(), &args).await;
    get_n(&PartnerApi::new(&first, &pk), 4, "/v1/partner/me").await;
    assert_ok(&DistributorApi::new(&first, &dk).get("/v1/distributor/me").await);
    assert_ok(&DistributorApi::new(&first, &dk).get("/v1/distributor/me").await);
    let pid = first.pid();
    let sent = std::process::Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");

    // Another process on the same database sees the stopped one's counts once its last flush
    // committed (one transaction: all of them at once).
    let second = Server::serve_with(ctx.url(), &args).await;
    let distributor = DistributorApi::new(&second, &dk);
    let (report, _) = report_until(&distributor, "the stopped server's counts", |r, _| row(r, &p) > 0).await;
    assert_eq!(row(&report, &p), 4, "{report}\nlogs of the stopped server:\n{}", first.logs());
    assert_eq!(report["summary"]["ownApiRequests"], 2, "{report}");
    assert_eq!(report["summary"]["apiRequests"], 6, "{report}");
    drop(first);

    // A crash is different: what the last flush left is lost (at most one flush interval).
    get_n(&PartnerApi::new(&second, &pk), 3, "/v1/partner/me").await;
    let killed = second.kill9();
    assert!(killed.died_of_sigkill(), "{}", killed.logs);
    let third = Server::serve_with(ctx.url(), &args).await;
    let report = distributor_usage(&DistributorApi::new(&third, &dk)).await;
    assert_eq!(row(&report, &p), 4, "the crashed server's 3 requests were never flushed: {report}");
}
