//! How deliveries go when the receiver does not simply answer 200: failures are retried on the
//! schedule with the same `webhook-id` and body (and fresh, valid signatures) until delivered or
//! failed; `Retry-After` on a 429 is honoured; `410 Gone` disables the endpoint until the next
//! `PUT`; redirects are failures and never followed; a slow receiver times out; and failed
//! deliveries can be sent again one by one (`…/retry`) or by time range (`…/replay`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use partnerd_e2e::receiver::{Received, Receiver, Reply as Answer};
use partnerd_e2e::{Server, str_field};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{
    Ctx, WEBHOOK_WAIT, about_customer, assert_error, assert_ok, assert_signed, assert_status, assert_timestamp,
    create_customer_as, on_both_backends, serve_webhooks, webhook_partner,
};

on_both_backends!(
    three_failures_then_success_make_four_attempts_of_the_same_event,
    a_receiver_that_always_fails_gets_six_attempts_then_the_delivery_fails,
    retry_after_on_a_429_or_503_postpones_the_next_attempt,
    a_410_disables_the_endpoint_until_the_next_put,
    a_redirect_is_a_failed_attempt_and_is_not_followed,
    a_receiver_slower_than_the_timeout_fails_its_attempt,
    failed_deliveries_are_sent_again_by_retry_and_by_replay,
    webhook_concurrency_1_sends_one_delivery_at_a_time,
);

/// Five retries, 200 ms apart: six attempts in all.
const FAST: &str = "200ms,200ms,200ms,200ms,200ms";
/// Long enough for an attempt that should not happen to have happened (the dispatcher polls
/// every 200 ms and the waits are at most 200 ms).
const QUIET: Duration = Duration::from_millis(1500);

/// The one event the receiver got for `customer`: all its requests, in order.
async fn wait_attempts(receiver: &Receiver, customer: &Value, n: usize) -> Vec<Received> {
    let id = str_field(customer, "id");
    let all = receiver.wait_for(|r| about_customer(r, id).len() >= n, WEBHOOK_WAIT).await;
    about_customer(&all, id)
}

/// Attempt `i` of a delivery in the log, checked as one that failed with `http_status` and left
/// the delivery `status`.
#[track_caller]
fn assert_failed_attempt(delivery: &Value, i: usize, http_status: Option<u16>, status: &str) -> Value {
    let attempt = &delivery["attempts"][i];
    assert_eq!(attempt["attempt"], i + 1, "attempt numbers count from 1: {delivery}");
    assert_eq!(attempt["httpStatus"], json!(http_status), "attempt {}: {delivery}", i + 1);
    assert_eq!(attempt["status"], status, "attempt {}: {delivery}", i + 1);
    let error = attempt["error"].as_str().unwrap_or_else(|| panic!("attempt {} has no error: {delivery}", i + 1));
    assert!(!error.is_empty(), "{delivery}");
    assert_timestamp(&attempt["attemptedAt"]);
    if status == "retrying" {
        let next = attempt["nextRetryAt"].as_str().unwrap_or_else(|| panic!("no nextRetryAt: {delivery}"));
        assert!(next >= attempt["attemptedAt"].as_str().unwrap(), "{delivery}");
    } else {
        assert!(attempt["nextRetryAt"].is_null(), "{delivery}");
    }
    attempt.clone()
}

/// The last attempt of `delivery` delivered it with a 200.
#[track_caller]
fn assert_delivered_at(delivery: &Value, attempts: usize) {
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["attemptCount"], attempts, "{delivery}");
    assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(attempts), "{delivery}");
    assert_eq!(delivery["httpStatus"], 200, "{delivery}");
    assert!(delivery["nextRetryAt"].is_null(), "{delivery}");
    let last = &delivery["attempts"][attempts - 1];
    assert_eq!(
        (&last["attempt"], &last["httpStatus"], &last["status"]),
        (&json!(attempts), &json!(200), &json!("delivered"))
    );
    assert!(last["error"].is_null() && last["nextRetryAt"].is_null(), "{delivery}");
}

/// Every request is the same event, byte for byte, validly signed at its own time.
#[track_caller]
fn assert_same_event(requests: &[Received], secret: &str) -> String {
    let first = &requests[0];
    let id = first.webhook_id().to_owned();
    assert_eq!(first.json()["id"], id.as_str());
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.attempt as usize, i + 1, "{r:?}");
        assert_eq!(r.webhook_id(), id, "the same webhook-id on every attempt");
        assert_eq!(r.body, first.body, "the same body on every attempt");
        assert_signed(r, secret);
    }
    id
}

/// The time between consecutive arrivals.
fn gaps(requests: &[Received]) -> Vec<Duration> {
    requests.windows(2).map(|w| w[1].at.duration_since(w[0].at)).collect()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("every time formats")
}

async fn three_failures_then_success_make_four_attempts_of_the_same_event(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Flaky MSP").await;
    let receiver = Receiver::start_with(|_, attempt| Answer::Status(if attempt <= 3 { 500 } else { 200 }));
    let secret = hooks.configure(&receiver.url()).await;

    let customer = create_customer_as(&partner, "Flaky MSP", 0).await;
    let requests = wait_attempts(&receiver, &customer, 4).await;
    let event = assert_same_event(&requests, &secret);
    let statuses: Vec<u16> = requests.iter().map(|r| r.status_sent).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    for gap in gaps(&requests) {
        assert!(gap >= Duration::from_millis(180), "retries follow the 200 ms schedule: gaps {:?}", gaps(&requests));
    }

    let delivery = hooks.wait_settled(&event, "delivered").await;
    assert_eq!(delivery["type"], "customer.created");
    assert_delivered_at(&delivery, 4);
    for i in 0..3 {
        let attempt = assert_failed_attempt(&delivery, i, Some(500), "retrying");
        assert!(attempt["error"].as_str().unwrap().contains("500"), "{attempt}");
    }

    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.received().len(), 4, "nothing after the delivery: {:?}", receiver.received());
}

async fn a_receiver_that_always_fails_gets_six_attempts_then_the_delivery_fails(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Broken MSP").await;
    let receiver = Receiver::start_with(|_, _| Answer::Status(500));
    let secret = hooks.configure(&receiver.url()).await;

    let customer = create_customer_as(&partner, "Broken MSP", 0).await;
    let requests = wait_attempts(&receiver, &customer, 6).await;
    let event = assert_same_event(&requests, &secret);
    let delivery = hooks.wait_settled(&event, "failed").await;
    // Well past when a seventh attempt would have come.
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.received().len(), 6, "1 + 5 retries, no more: {:?}", receiver.received());

    assert_eq!((&delivery["attemptCount"], &delivery["httpStatus"]), (&json!(6), &json!(500)), "{delivery}");
    assert!(delivery["nextRetryAt"].is_null(), "{delivery}");
    for i in 0..5 {
        assert_failed_attempt(&delivery, i, Some(500), "retrying");
    }
    assert_failed_attempt(&delivery, 5, Some(500), "failed");
    // The log's status filter agrees.
    let failed = hooks.deliveries("?status=failed").await;
    assert_eq!(failed.iter().map(|d| &d["eventId"]).collect::<Vec<_>>(), [&json!(event)]);
    assert!(hooks.deliveries("?status=delivered").await.is_empty());
    assert!(hooks.deliveries("?status=retrying").await.is_empty());
}

/// `attempt[later] - attempt[earlier]`, from the log's whole-second timestamps.
fn log_wait(attempt: &Value, earlier: &str, later: &str) -> time::Duration {
    let at = |field: &str| {
        OffsetDateTime::parse(str_field(attempt, field), &Rfc3339)
            .unwrap_or_else(|e| panic!("{field}: {e} in {attempt}"))
    };
    at(later) - at(earlier)
}

/// A receiver that answers `status` with `Retry-After: 2` once, then 200: the second attempt
/// comes 2 s later although the schedule says 100 ms, and its `webhook-timestamp` is its own.
async fn retry_after_is_honoured(ctx: &Ctx, server: &Server, status: u16) {
    let label = format!("Throttled {status} MSP");
    let (partner, hooks) = webhook_partner(ctx, server, &label).await;
    let receiver = Receiver::start_with(move |_, attempt| {
        if attempt == 1 { Answer::StatusWithHeader(status, "Retry-After", "2".into()) } else { Answer::Status(200) }
    });
    let secret = hooks.configure(&receiver.url()).await;

    let customer = create_customer_as(&partner, &label, 0).await;
    let requests = wait_attempts(&receiver, &customer, 2).await;
    let event = assert_same_event(&requests, &secret);
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(gap >= Duration::from_millis(1900), "{status}: Retry-After: 2 beats the 100 ms schedule: {gap:?}");
    let stamp = |r: &Received| r.header("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()).expect("stamped");
    assert!(stamp(&requests[1]) > stamp(&requests[0]), "each attempt is stamped with its own time: {requests:?}");

    let delivery = hooks.wait_settled(&event, "delivered").await;
    assert_delivered_at(&delivery, 2);
    let attempt = assert_failed_attempt(&delivery, 0, Some(status), "retrying");
    // Whole seconds on the wire: 2 s after an answer that came within the second.
    let wait = log_wait(&attempt, "attemptedAt", "nextRetryAt");
    assert!(
        (time::Duration::seconds(2)..=time::Duration::seconds(3)).contains(&wait),
        "{status}: nextRetryAt is {wait} after attemptedAt: {attempt}"
    );
}

/// An absurd `Retry-After` (the largest integer) neither breaks the dispatcher nor parks the
/// delivery for ever: the next attempt is due within a day.
async fn an_absurd_retry_after_is_capped(ctx: &Ctx, server: &Server) {
    let (partner, hooks) = webhook_partner(ctx, server, "Greedy MSP").await;
    let receiver = Receiver::start_with(|_, _| Answer::StatusWithHeader(429, "Retry-After", u64::MAX.to_string()));
    hooks.configure(&receiver.url()).await;
    let customer = create_customer_as(&partner, "Greedy MSP", 0).await;
    let event = wait_attempts(&receiver, &customer, 1).await[0].webhook_id().to_owned();
    // Wait for the delivery row too, not only the attempt: the log reads the two in separate
    // statements, so it can briefly show the attempt beside the row as claimed (`pending`).
    let delivery = hooks.wait_delivery(&event, |d| d["attemptCount"] == 1 && d["status"] == "retrying").await;
    assert_eq!(delivery["status"], "retrying", "{delivery}");
    let attempt = assert_failed_attempt(&delivery, 0, Some(429), "retrying");
    let wait = log_wait(&attempt, "attemptedAt", "nextRetryAt");
    assert!(
        (time::Duration::seconds(2)..=time::Duration::days(1) + time::Duration::seconds(2)).contains(&wait),
        "nextRetryAt is {wait} after attemptedAt: {attempt}"
    );
}

async fn retry_after_on_a_429_or_503_postpones_the_next_attempt(ctx: &Ctx) {
    let server = serve_webhooks(ctx, "100ms,100ms,100ms,100ms,100ms", &[]).await;
    tokio::join!(
        retry_after_is_honoured(ctx, &server, 429),
        retry_after_is_honoured(ctx, &server, 503),
        an_absurd_retry_after_is_capped(ctx, &server),
    );
}

async fn a_410_disables_the_endpoint_until_the_next_put(ctx: &Ctx) {
    let since = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Gone MSP").await;
    let gone = Arc::new(AtomicBool::new(true));
    let answer = Arc::clone(&gone);
    let receiver =
        Receiver::start_with(move |_, _| Answer::Status(if answer.load(Ordering::SeqCst) { 410 } else { 200 }));
    let secret = hooks.configure(&receiver.url()).await;

    // The first event meets a 410: failed at once, the endpoint disabled.
    let first = create_customer_as(&partner, "Gone MSP", 0).await;
    let requests = wait_attempts(&receiver, &first, 1).await;
    let first_event = requests[0].webhook_id().to_owned();
    let delivery = hooks.wait_settled(&first_event, "failed").await;
    assert_eq!((&delivery["attemptCount"], &delivery["httpStatus"]), (&json!(1), &json!(410)), "{delivery}");
    assert_failed_attempt(&delivery, 0, Some(410), "failed");
    let reply = hooks.get().await;
    let endpoint = assert_ok(&reply);
    assert_eq!(endpoint["enabled"], false, "{}", reply.text);
    let reason = str_field(endpoint, "disabledReason");
    assert!(reason.contains("410"), "disabledReason {reason:?}");
    assert_timestamp(&endpoint["disabledAt"]);

    // The receiver would take events now, but the endpoint stays disabled: nothing is sent, not
    // even a retry of the first event.
    gone.store(false, Ordering::SeqCst);
    let second = create_customer_as(&partner, "Gone MSP", 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.received().len(), 1, "a disabled endpoint gets nothing: {:?}", receiver.received());

    // PUT enables it again, keeping the secret; new events flow.
    let reply = hooks.put(&receiver.url()).await;
    let endpoint = assert_ok(&reply);
    assert_eq!(endpoint["enabled"], true, "{}", reply.text);
    assert!(endpoint.get("secret").is_none() && endpoint.get("disabledReason").is_none(), "{}", reply.text);
    let reply = hooks.get().await;
    assert_eq!(assert_ok(&reply)["enabled"], true, "{}", reply.text);
    let third = create_customer_as(&partner, "Gone MSP", 2).await;
    let requests = wait_attempts(&receiver, &third, 1).await;
    assert_signed(&requests[0], &secret);
    hooks.wait_settled(requests[0].webhook_id(), "delivered").await;
    tokio::time::sleep(QUIET).await;
    let all = receiver.received();
    assert_eq!(all.len(), 2, "the first event is not retried, the second was never queued: {all:?}");
    assert!(about_customer(&all, str_field(&second, "id")).is_empty(), "{all:?}");

    // A replay of the range without a status sends every event again, the one that occurred
    // while the endpoint was disabled included.
    let until = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let reply = hooks.replay(&json!({"since": rfc3339(since), "until": rfc3339(until)})).await;
    assert_eq!(assert_status(&reply, 202)["replayed"], 3, "{}", reply.text);
    let all = receiver.wait_for(|r| r.len() >= 5, WEBHOOK_WAIT).await;
    for customer in [&first, &second, &third] {
        let got = about_customer(&all, str_field(customer, "id"));
        assert!(!got.is_empty(), "customer {} was not replayed: {all:?}", customer["id"]);
        assert_signed(got.last().unwrap(), &secret);
    }
}

async fn a_redirect_is_a_failed_attempt_and_is_not_followed(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Moved MSP").await;
    let target = Receiver::start();
    let elsewhere = target.url().replace("/hook", "/moved");
    let receiver =
        Receiver::start_with(
            move |_, attempt| {
                if attempt == 1 { Answer::Redirect(elsewhere.clone()) } else { Answer::Status(200) }
            },
        );
    let secret = hooks.configure(&receiver.url()).await;

    let customer = create_customer_as(&partner, "Moved MSP", 0).await;
    let requests = wait_attempts(&receiver, &customer, 2).await;
    let event = assert_same_event(&requests, &secret);
    assert!(requests.iter().all(|r| r.path == "/hook"), "{requests:?}");
    let delivery = hooks.wait_settled(&event, "delivered").await;
    assert_delivered_at(&delivery, 2);
    let attempt = assert_failed_attempt(&delivery, 0, Some(307), "retrying");
    assert!(attempt["error"].as_str().unwrap().to_lowercase().contains("redirect"), "{attempt}");

    tokio::time::sleep(QUIET).await;
    assert!(target.received().is_empty(), "the redirect was followed: {:?}", target.received());
    assert_eq!(receiver.received().len(), 2, "{:?}", receiver.received());
}

async fn a_receiver_slower_than_the_timeout_fails_its_attempt(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &["--webhook-timeout", "1s"]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Slow MSP").await;
    let receiver = Receiver::start_with(|_, attempt| {
        if attempt == 1 { Answer::Delay(Duration::from_secs(3), 200) } else { Answer::Status(200) }
    });
    let secret = hooks.configure(&receiver.url()).await;

    let customer = create_customer_as(&partner, "Slow MSP", 0).await;
    let requests = wait_attempts(&receiver, &customer, 2).await;
    let event = assert_same_event(&requests, &secret);
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(gap >= Duration::from_millis(1000), "the first attempt waited for its 1 s timeout: {gap:?}");

    let delivery = hooks.wait_settled(&event, "delivered").await;
    assert_delivered_at(&delivery, 2);
    let attempt = assert_failed_attempt(&delivery, 0, None, "retrying");
    let error = attempt["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("timed out") || error.contains("timeout"), "{attempt}");
    let latency = attempt["latencyMs"].as_u64().unwrap_or_else(|| panic!("no latencyMs: {attempt}"));
    assert!((900..2900).contains(&latency), "the attempt gave up after about 1 s, not {latency} ms: {attempt}");

    // Nobody listening at all: every attempt fails without a status, and the delivery fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to close");
    let port = closed.local_addr().expect("bound").port();
    drop(closed);
    let (partner, hooks) = webhook_partner(ctx, &server, "Closed MSP").await;
    // The URL's query may hold the receiver's token: it never appears in the log or the logs.
    let token = "tok-3f9a1c-never-logged";
    hooks.configure(&format!("http://127.0.0.1:{port}/hook?token={token}")).await;
    create_customer_as(&partner, "Closed MSP", 0).await;
    let deadline = std::time::Instant::now() + WEBHOOK_WAIT;
    let delivery = loop {
        let log = hooks.deliveries("?status=failed").await;
        if let Some(d) = log.first() {
            break d.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not failed within {WEBHOOK_WAIT:?}: {:?}",
            hooks.deliveries("").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["attemptCount"], 6, "{delivery}");
    for i in 0..6 {
        let attempt = assert_failed_attempt(&delivery, i, None, if i < 5 { "retrying" } else { "failed" });
        let error = attempt["error"].as_str().unwrap();
        assert!(error.contains("connect") && !error.contains(token), "{attempt}");
    }
    assert!(!server.logs().contains(token), "the server logged the URL's token:\n{}", server.logs());
}

async fn failed_deliveries_are_sent_again_by_retry_and_by_replay(ctx: &Ctx) {
    let since = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    // One retry: two attempts, then failed.
    let server = serve_webhooks(ctx, "200ms", &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Replay MSP").await;
    let healthy = Arc::new(AtomicBool::new(true));
    let answer = Arc::clone(&healthy);
    let broken =
        Receiver::start_with(move |_, _| Answer::Status(if answer.load(Ordering::SeqCst) { 200 } else { 500 }));
    let secret = hooks.configure(&broken.url()).await;

    // One event delivered, then three that fail both their attempts.
    let ok = create_customer_as(&partner, "Replay MSP", 0).await;
    let ok_event = wait_attempts(&broken, &ok, 1).await[0].webhook_id().to_owned();
    hooks.wait_settled(&ok_event, "delivered").await;
    healthy.store(false, Ordering::SeqCst);
    let mut failed = Vec::new();
    for i in 1..=3 {
        let customer = create_customer_as(&partner, "Replay MSP", i).await;
        let requests = wait_attempts(&broken, &customer, 2).await;
        let event = assert_same_event(&requests, &secret);
        let delivery = hooks.wait_settled(&event, "failed").await;
        assert_eq!(delivery["attemptCount"], 2, "{delivery}");
        failed.push(event);
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(broken.received().len(), 1 + 3 * 2, "{:?}", broken.received());

    // Another partner's event, which this partner can neither retry nor replay.
    let (stranger, stranger_hooks) = webhook_partner(ctx, &server, "Stranger MSP").await;
    let stranger_receiver = Receiver::start();
    stranger_hooks.configure(&stranger_receiver.url()).await;
    let theirs = create_customer_as(&stranger, "Stranger MSP", 0).await;
    let their_event = wait_attempts(&stranger_receiver, &theirs, 1).await[0].webhook_id().to_owned();

    // The endpoint moves to a healthy receiver (same secret).
    let healed = Receiver::start();
    let reply = hooks.put(&healed.url()).await;
    assert!(assert_ok(&reply).get("secret").is_none(), "{}", reply.text);

    // Retry one failed delivery: it goes out again at once with a fresh schedule.
    let reply = hooks.retry(&failed[0]).await;
    let body = assert_status(&reply, 202);
    assert_eq!((&body["eventId"], &body["type"]), (&json!(failed[0]), &json!("customer.created")), "{}", reply.text);
    assert!(["pending", "delivered"].contains(&str_field(body, "status")), "{}", reply.text);
    let got = healed.wait_for(|r| !r.is_empty(), WEBHOOK_WAIT).await;
    assert_eq!(got[0].webhook_id(), failed[0]);
    assert_signed(&got[0], &secret);
    let delivery = hooks.wait_settled(&failed[0], "delivered").await;
    assert_delivered_at(&delivery, 3);
    for i in 0..2 {
        assert_failed_attempt(&delivery, i, Some(500), if i == 0 { "retrying" } else { "failed" });
    }

    // Not found: an unknown event, a malformed id, another account's event.
    let unknown = format!("{}0", &failed[0][..failed[0].len() - 1]);
    let unknown = if unknown == failed[0] { format!("{}1", &failed[0][..failed[0].len() - 1]) } else { unknown };
    for id in [unknown.as_str(), "not-an-event", their_event.as_str()] {
        assert_error(&hooks.retry(id).await, 404, "NOT_FOUND");
    }

    // Replay the failed ones of the range: exactly the two still failed.
    let until = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let range = json!({"since": rfc3339(since), "until": rfc3339(until), "status": "failed"});
    let reply = hooks.replay(&range).await;
    assert_eq!(assert_status(&reply, 202)["replayed"], 2, "{}", reply.text);
    let got = healed.wait_for(|r| r.len() >= 3, WEBHOOK_WAIT).await;
    for event in &failed[1..] {
        hooks.wait_settled(event, "delivered").await;
    }
    tokio::time::sleep(QUIET).await;
    let got_late = healed.received();
    assert_eq!(got_late.len(), got.len(), "{got_late:?}");
    let mut ids: Vec<&str> = got_late.iter().map(Received::webhook_id).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = failed.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "each failed event once; neither the delivered one nor another account's");
    for r in &got_late {
        assert_signed(r, &secret);
    }
    assert_eq!(broken.received().len(), 7, "nothing more went to the old URL");
    assert_eq!(stranger_receiver.received().len(), 1, "the stranger's endpoint got only its own event");

    // Nothing failed is left to replay; bad ranges are refused.
    assert_eq!(assert_status(&hooks.replay(&range).await, 202)["replayed"], 0);
    let backwards = json!({"since": rfc3339(until), "until": rfc3339(since)});
    assert_error(&hooks.replay(&backwards).await, 400, "INVALID_FIELD");
    assert_error(&hooks.replay(&json!({"until": rfc3339(until)})).await, 400, "MISSING_FIELD");
    let bad_status = json!({"since": rfc3339(since), "until": rfc3339(until), "status": "lost"});
    assert_error(&hooks.replay(&bad_status).await, 400, "INVALID_FIELD");
    let bad_time = json!({"since": "yesterday", "until": rfc3339(until)});
    assert_error(&hooks.replay(&bad_time).await, 400, "INVALID_FIELD");
}

async fn webhook_concurrency_1_sends_one_delivery_at_a_time(ctx: &Ctx) {
    const SLOW: Duration = Duration::from_millis(500);
    let server = serve_webhooks(ctx, FAST, &["--webhook-concurrency", "1"]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Serial MSP").await;
    let receiver = Receiver::start_with(|_, _| Answer::Delay(SLOW, 200));
    hooks.configure(&receiver.url()).await;

    // Three events committed together, all due at once.
    partner.bulk_customers(3, "Serial MSP").await;
    let all = receiver.wait_for(|r| r.len() >= 3, WEBHOOK_WAIT).await;
    for gap in gaps(&all) {
        assert!(
            gap >= SLOW - Duration::from_millis(50),
            "with --webhook-concurrency 1 an attempt starts only when the previous one ended: gaps {:?}",
            gaps(&all)
        );
    }
    for r in &all {
        hooks.wait_settled(r.webhook_id(), "delivered").await;
    }
    assert_eq!(all.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 1, 1]);
}
