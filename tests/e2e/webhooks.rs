//! Webhooks as a receiver sees them: every delivery is signed both ways (Standard Webhooks and
//! `X-Baref00t-Signature`), checked by the independent verifier, and any tampering is caught; a
//! secret rotation keeps the old secret signing beside the new one; each event reaches exactly
//! the accounts it concerns; and without `--webhook-allow-private` no endpoint may point at a
//! loopback, private or metadata address.

use std::time::Duration;

use partnerd_e2e::receiver::{Received, Receiver};
use partnerd_e2e::verifier::{VerifyError, verify_baref00t, verify_standard};
use partnerd_e2e::{Server, str_field};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{
    Ctx, DistributorApi, Hooks, NO_RATE_LIMITS, PartnerApi, WEBHOOK_WAIT, about_customer, assert_current_month,
    assert_error, assert_keys, assert_no_content, assert_ok, assert_signed, assert_status, assert_timestamp, contoso,
    create_customer_as, create_distributor, create_partner, event_types, on_both_backends, serve_webhooks,
    webhook_partner,
};

on_both_backends!(
    a_delivery_is_signed_both_ways_and_tampering_is_caught,
    after_a_rotation_both_secrets_sign_until_the_next_rotation,
    each_event_reaches_exactly_the_accounts_it_concerns,
    private_and_loopback_urls_are_refused_without_allow_private,
    a_host_name_that_resolves_to_a_private_address_is_refused_at_delivery,
);

/// Retries every 200 ms: nothing in these scenarios should need one.
const FAST: &str = "200ms,200ms,200ms,200ms,200ms";
/// Long enough for a delivery that should not happen to have happened (the dispatcher polls
/// every 200 ms).
const QUIET: Duration = Duration::from_millis(1500);
/// Another valid secret (32 bytes of 0x01) that signs nothing of partnerd's.
const FOREIGN_SECRET: &str = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// `headers` with the value of `name` replaced.
fn with_header(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| if k.eq_ignore_ascii_case(name) { (k.clone(), value.to_owned()) } else { (k.clone(), v.clone()) })
        .collect()
}

/// The one `webhook-timestamp` of a request, as unix seconds.
fn webhook_timestamp(r: &Received) -> i64 {
    let raw = r.header("webhook-timestamp").unwrap_or_else(|| panic!("no webhook-timestamp on {r:?}"));
    raw.parse().unwrap_or_else(|_| panic!("webhook-timestamp {raw:?} is not unix seconds"))
}

/// The `v1,` entries of `webhook-signature`.
fn standard_signatures(r: &Received) -> Vec<String> {
    let raw = r.header("webhook-signature").unwrap_or_else(|| panic!("no webhook-signature on {r:?}"));
    raw.split_whitespace().map(str::to_owned).collect()
}

async fn a_delivery_is_signed_both_ways_and_tampering_is_caught(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Signed MSP").await;
    assert_error(&hooks.get().await, 404, "NOT_FOUND");

    let receiver = Receiver::start();
    let secret = hooks.configure(&receiver.url()).await;
    // The secret is shown once: GET never shows it.
    let reply = hooks.get().await;
    let endpoint = assert_ok(&reply);
    assert_eq!((&endpoint["url"], &endpoint["enabled"]), (&json!(receiver.url()), &json!(true)), "{}", reply.text);
    assert!(endpoint.get("secret").is_none() && !reply.text.contains(&secret), "GET shows the secret: {}", reply.text);

    let customer = create_customer_as(&partner, "Signed MSP", 1).await;
    let all = receiver.wait_for(|r| !r.is_empty(), WEBHOOK_WAIT).await;
    let r = &all[0];
    assert_eq!((r.method.as_str(), r.path.as_str(), r.attempt), ("POST", "/hook", 1), "{r:?}");
    let content_type = r.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "content-type {content_type:?}");

    // Both signatures check out with the secret the PUT returned.
    assert_signed(r, &secret);
    let signatures = standard_signatures(r);
    assert_eq!(signatures.len(), 1, "one secret, one signature: {signatures:?}");
    assert!(signatures[0].starts_with("v1,"), "{signatures:?}");
    assert!(r.header("x-baref00t-signature-previous").is_none(), "no rotation, no previous signature: {r:?}");
    let sent_at = webhook_timestamp(r);
    assert!(
        (r.unix_time - sent_at).abs() <= 5,
        "webhook-timestamp {sent_at} is not the time of sending ({})",
        r.unix_time
    );

    // The body: {id, type, timestamp, data}, the id being the webhook-id.
    let payload = r.json();
    assert_keys(&payload, &["id", "type", "timestamp", "data"]);
    assert_eq!(payload["type"], "customer.created");
    let event_id = str_field(&payload, "id").to_owned();
    assert!(event_id.starts_with("evt_"), "event id {event_id:?}");
    assert_eq!(r.webhook_id(), event_id, "webhook-id is the payload's id");
    assert_timestamp(&payload["timestamp"]);
    assert_eq!(payload["timestamp"], customer["createdAt"], "the event occurred when the customer was created");
    let data = &payload["data"];
    assert_keys(data, &["customerId", "name", "tenantId", "email"]);
    assert_eq!(data["customerId"], customer["id"], "{payload}");
    assert_eq!(data["name"], customer["name"], "{payload}");
    assert_eq!(data["tenantId"], customer["tenantId"], "{payload}");
    assert_eq!(data["email"], customer["email"], "{payload}");

    // What a receiver must reject, checked on the real delivery.
    let now = r.unix_time;
    let body = String::from_utf8(r.body.clone()).expect("the body is UTF-8");
    let tampered = body.replace("Signed MSP 1", "Signed MSP 2");
    assert_ne!(tampered, body, "the body names the customer");
    let hex = r.header("x-baref00t-signature").expect("signed");
    let bad = Err(VerifyError::BadSignature);
    assert_eq!(verify_standard(&secret, &r.headers, tampered.as_bytes(), now, 300), bad, "tampered body");
    assert_eq!(verify_baref00t(&secret, hex, tampered.as_bytes()), bad, "tampered body");
    let mut truncated = r.body.clone();
    truncated.pop();
    assert_eq!(verify_standard(&secret, &r.headers, &truncated, now, 300), bad, "truncated body");
    assert_eq!(verify_baref00t(&secret, hex, &truncated), bad, "truncated body");
    let other_id = format!("{}x", r.webhook_id());
    let headers = with_header(&r.headers, "webhook-id", &other_id);
    assert_eq!(verify_standard(&secret, &headers, &r.body, now, 300), bad, "tampered webhook-id");
    let headers = with_header(&r.headers, "webhook-timestamp", &(sent_at + 1).to_string());
    assert_eq!(verify_standard(&secret, &headers, &r.body, sent_at + 1, 300), bad, "tampered webhook-timestamp");
    for later in [sent_at + 301, sent_at + 3600] {
        assert_eq!(
            verify_standard(&secret, &r.headers, &r.body, later, 300),
            Err(VerifyError::StaleTimestamp),
            "replayed at {later}, {}s after it was sent",
            later - sent_at
        );
    }
    assert_eq!(verify_standard(FOREIGN_SECRET, &r.headers, &r.body, now, 300), bad, "another secret");
    assert_eq!(verify_baref00t(FOREIGN_SECRET, hex, &r.body), bad, "another secret");

    // The log says the same.
    let delivery = hooks.wait_settled(&event_id, "delivered").await;
    assert_eq!((&delivery["type"], &delivery["occurredAt"]), (&json!("customer.created"), &payload["timestamp"]));
    assert_eq!((&delivery["attemptCount"], &delivery["httpStatus"]), (&json!(1), &json!(200)), "{delivery}");
    assert!(delivery["nextRetryAt"].is_null(), "{delivery}");
    let attempt = &delivery["attempts"][0];
    assert_eq!((&attempt["attempt"], &attempt["httpStatus"]), (&json!(1), &json!(200)), "{delivery}");
    assert_eq!(attempt["status"], "delivered", "{delivery}");
    assert!(attempt["error"].is_null() && attempt["nextRetryAt"].is_null(), "{delivery}");
    assert_timestamp(&attempt["attemptedAt"]);

    // The log's filters.
    assert_eq!(hooks.deliveries("?type=customer.created&status=delivered").await.len(), 1);
    assert!(hooks.deliveries("?type=key.created").await.is_empty());
    assert!(hooks.deliveries("?status=failed").await.is_empty());
    for (query, field) in [
        ("?status=lost", "status"),
        ("?type=customer.exploded", "type"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
    ] {
        let reply = hooks.send(reqwest::Method::GET, &format!("/deliveries{query}"), None).await;
        let message = assert_error(&reply, 400, "INVALID_FIELD");
        assert!(message.contains(&format!("'{field}'")), "{query}: {message}");
    }

    // Delivered means done: no second request.
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    assert!(!server.logs().contains(&secret), "the server logged the signing secret");
}

async fn after_a_rotation_both_secrets_sign_until_the_next_rotation(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Rotating MSP").await;
    assert_error(&hooks.rotate().await, 404, "NOT_FOUND");
    let receiver = Receiver::start();
    let first = hooks.configure(&receiver.url()).await;

    let customer = create_customer_as(&partner, "Rotating MSP", 1).await;
    let all = receiver.wait_for(|r| !about_customer(r, str_field(&customer, "id")).is_empty(), WEBHOOK_WAIT).await;
    assert_signed(&all[0], &first);

    // Rotate: a new secret, shown once; the old one signs beside it for 24 hours.
    let reply = hooks.rotate().await;
    let rotated = assert_ok(&reply);
    assert_keys(rotated, &["secret", "previousSecretExpiresAt"]);
    let second = str_field(rotated, "secret").to_owned();
    assert!(second.starts_with("whsec_") && second != first, "{}", reply.text);
    let until = OffsetDateTime::parse(str_field(rotated, "previousSecretExpiresAt"), &Rfc3339)
        .unwrap_or_else(|e| panic!("previousSecretExpiresAt is not RFC 3339 ({e}): {}", reply.text));
    let overlap = until - OffsetDateTime::now_utc();
    assert!(
        overlap > time::Duration::hours(23) && overlap <= time::Duration::hours(24),
        "the old secret signs for 24 hours, not {overlap}"
    );
    let reply = hooks.get().await;
    let endpoint = assert_ok(&reply);
    assert_eq!(endpoint["previousSecretExpiresAt"], rotated["previousSecretExpiresAt"], "{}", reply.text);
    assert!(!reply.text.contains(&first) && !reply.text.contains(&second), "GET shows a secret: {}", reply.text);

    let customer = create_customer_as(&partner, "Rotating MSP", 2).await;
    let all = receiver.wait_for(|r| !about_customer(r, str_field(&customer, "id")).is_empty(), WEBHOOK_WAIT).await;
    let r = &about_customer(&all, str_field(&customer, "id"))[0];
    // Standard Webhooks: two v1 signatures, each secret verifies on its own.
    let signatures = standard_signatures(r);
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")), "{signatures:?}");
    assert_signed(r, &second);
    assert_eq!(verify_standard(&first, &r.headers, &r.body, r.unix_time, 300), Ok(()), "the old secret still signs");
    // X-Baref00t-Signature: the new secret; X-Baref00t-Signature-Previous: the old one.
    let current = r.header("x-baref00t-signature").expect("signed");
    let previous = r.header("x-baref00t-signature-previous").unwrap_or_else(|| panic!("no previous signature: {r:?}"));
    let bad = Err(VerifyError::BadSignature);
    assert_eq!(verify_baref00t(&second, current, &r.body), Ok(()));
    assert_eq!(verify_baref00t(&first, current, &r.body), bad, "X-Baref00t-Signature uses the new secret");
    assert_eq!(verify_baref00t(&first, previous, &r.body), Ok(()), "the previous header uses the old secret");
    assert_eq!(verify_baref00t(&second, previous, &r.body), bad);

    // A later PUT changes nothing about the secrets (and shows none).
    let reply = hooks.put(&receiver.url()).await;
    assert!(assert_ok(&reply).get("secret").is_none(), "a later PUT shows no secret: {}", reply.text);

    // A second rotation: the newest and the one before sign; the first no longer does.
    let reply = hooks.rotate().await;
    let third = str_field(assert_ok(&reply), "secret").to_owned();
    assert!(third != first && third != second, "{}", reply.text);
    let customer = create_customer_as(&partner, "Rotating MSP", 3).await;
    let all = receiver.wait_for(|r| !about_customer(r, str_field(&customer, "id")).is_empty(), WEBHOOK_WAIT).await;
    let r = &about_customer(&all, str_field(&customer, "id"))[0];
    assert_eq!(standard_signatures(r).len(), 2, "{r:?}");
    assert_signed(r, &third);
    assert_eq!(verify_standard(&second, &r.headers, &r.body, r.unix_time, 300), Ok(()));
    assert_eq!(verify_standard(&first, &r.headers, &r.body, r.unix_time, 300), bad, "two rotations ago");
    assert_eq!(verify_baref00t(&second, r.header("x-baref00t-signature-previous").expect("overlap"), &r.body), Ok(()));

    // DELETE removes the endpoint and its log: nothing is sent any more, and the next PUT
    // creates a new endpoint with a new secret that signs alone.
    assert_no_content(&hooks.delete().await);
    assert_error(&hooks.get().await, 404, "NOT_FOUND");
    assert_error(&hooks.send(reqwest::Method::GET, "/deliveries", None).await, 404, "NOT_FOUND");
    assert_error(&hooks.delete().await, 404, "NOT_FOUND");
    let before = receiver.received().len();
    create_customer_as(&partner, "Rotating MSP", 4).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.received().len(), before, "a deleted endpoint gets nothing: {:?}", receiver.received());
    let fourth = hooks.configure(&receiver.url()).await;
    assert!(![&first, &second, &third].contains(&&fourth), "a new endpoint has a new secret");
    assert!(hooks.deliveries("").await.is_empty(), "the old log went with the old endpoint");
    let customer = create_customer_as(&partner, "Rotating MSP", 5).await;
    let all = receiver.wait_for(|r| !about_customer(r, str_field(&customer, "id")).is_empty(), WEBHOOK_WAIT).await;
    let r = &about_customer(&all, str_field(&customer, "id"))[0];
    assert_signed(r, &fourth);
    assert_eq!(standard_signatures(r).len(), 1, "{r:?}");
    assert!(r.header("x-baref00t-signature-previous").is_none(), "{r:?}");
    assert_eq!(verify_standard(&third, &r.headers, &r.body, r.unix_time, 300), bad, "the deleted endpoint's secret");
}

/// Data of an event, by type, checked against what caused it.
#[track_caller]
fn assert_partner_event(r: &Received, event_type: &str, partner: &str, company: &str, status: &str) {
    let payload = r.json();
    assert_eq!(payload["type"], event_type, "{payload}");
    let data = &payload["data"];
    assert_eq!(
        (&data["partnerId"], &data["company"], &data["status"]),
        (&json!(partner), &json!(company), &json!(status))
    );
}

/// Sorted event types, for comparing what arrived with what should have, in any order.
fn sorted(types: Vec<String>) -> Vec<String> {
    let mut types = types;
    types.sort();
    types
}

fn many(event_type: &str, n: usize) -> Vec<String> {
    vec![event_type.to_owned(); n]
}

async fn each_event_reaches_exactly_the_accounts_it_concerns(ctx: &Ctx) {
    let server = serve_webhooks(ctx, FAST, &[]).await;
    let (dist, other_dist) = tokio::join!(
        create_distributor(ctx, "Routing Distribution", "ops@routing-dist.example"),
        create_distributor(ctx, "Other Distribution", "ops@other-dist.example"),
    );
    let (dist_id, other_dist_id) = (str_field(&dist, "id"), str_field(&other_dist, "id"));
    let (created, other_created) = tokio::join!(
        create_partner(ctx, "Routing MSP", "ops@routing-msp.example", "starter", Some(dist_id)),
        create_partner(ctx, "Other MSP", "ops@other-msp.example", "starter", Some(other_dist_id)),
    );
    let (partner_id, other_id) = (str_field(&created, "id").to_owned(), str_field(&other_created, "id").to_owned());
    let distributor = DistributorApi::new(&server, str_field(&dist, "key"));
    let other_distributor = DistributorApi::new(&server, str_field(&other_dist, "key"));
    let partner = PartnerApi::new(&server, str_field(&created, "key"));
    let other = PartnerApi::new(&server, str_field(&other_created, "key"));

    let (to_partner, to_distributor, to_other, to_other_distributor) =
        (Receiver::start(), Receiver::start(), Receiver::start(), Receiver::start());
    let partner_secret = Hooks::partner(&partner).configure(&to_partner.url()).await;
    let distributor_secret = Hooks::distributor(&distributor).configure(&to_distributor.url()).await;
    let other_secret = Hooks::partner(&other).configure(&to_other.url()).await;
    let other_distributor_secret = Hooks::distributor(&other_distributor).configure(&to_other_distributor.url()).await;

    // The partner's own doings: customer.* and key.*.
    let customer = create_customer_as(&partner, "Routing MSP", 0).await;
    let customer_id = str_field(&customer, "id").to_owned();
    let reply = partner.put(&format!("/v1/partner/customers/{customer_id}"), &json!({"name": "Renamed Ltd"})).await;
    assert_ok(&reply);
    let reply = partner.post_empty("/v1/partner/keys").await;
    assert_eq!(assert_status(&reply, 201)["slot"], 2, "{}", reply.text);
    assert_no_content(&partner.delete("/v1/partner/keys/2").await);
    assert_no_content(&partner.delete(&format!("/v1/partner/customers/{customer_id}")).await);
    // A customer the distributor creates on the partner's behalf is still the partner's event.
    let on_behalf = distributor.create_customer(&partner_id, &contoso()).await;

    // The distributor's doings on its partner: partner.* to the distributor, and the key.* of
    // the keys they revoke and issue to the partner (the suspension revokes slot 1, the only
    // active key; the reactivation issues a fresh slot-1 key).
    distributor.suspend(&partner_id).await;
    let reply = distributor.post_empty(&format!("/v1/distributor/partners/{partner_id}/reactivate")).await;
    let partner = partner.with_key(str_field(assert_ok(&reply), "key"));

    // Usage thresholds of the 50-run starter plan: 40 runs reach 80 %, 50 reach 100 %.
    let customers = partner.bulk_customers(50, "Routing Usage").await;
    partner.bulk_trigger_all(&customers[..40]).await;
    partner.bulk_trigger_all(&customers[40..]).await;

    // The other distributor's partner: its events (the suspension's key.revoked included) go to
    // its own accounts only.
    create_customer_as(&other, "Other MSP", 0).await;
    other_distributor.suspend(&other_id).await;

    let partner_expected = sorted(
        [
            vec!["customer.created", "customer.updated", "customer.deleted"].into_iter().map(str::to_owned).collect(),
            many("key.created", 2),
            many("key.revoked", 2),
            many("customer.created", 1 + 50),
            many("usage.threshold_reached", 2),
        ]
        .concat(),
    );
    let distributor_expected = sorted(
        [many("partner.suspended", 1), many("partner.activated", 1), many("usage.threshold_reached", 2)].concat(),
    );
    let partner_got = to_partner.wait_for(|r| r.len() >= partner_expected.len(), WEBHOOK_WAIT).await;
    let distributor_got = to_distributor.wait_for(|r| r.len() >= distributor_expected.len(), WEBHOOK_WAIT).await;
    let other_got = to_other.wait_for(|r| r.len() >= 2, WEBHOOK_WAIT).await;
    let other_distributor_got = to_other_distributor.wait_for(|r| !r.is_empty(), WEBHOOK_WAIT).await;
    // Nothing more arrives anywhere.
    tokio::time::sleep(QUIET).await;
    for (name, receiver, got) in [
        ("partner", &to_partner, &partner_got),
        ("distributor", &to_distributor, &distributor_got),
        ("other partner", &to_other, &other_got),
        ("other distributor", &to_other_distributor, &other_distributor_got),
    ] {
        assert_eq!(receiver.received().len(), got.len(), "{name}: more arrived late: {:?}", receiver.received());
    }
    assert_eq!(sorted(event_types(&partner_got)), partner_expected, "the partner's endpoint");
    assert_eq!(sorted(event_types(&distributor_got)), distributor_expected, "the distributor's endpoint");
    assert_eq!(sorted(event_types(&other_got)), ["customer.created", "key.revoked"], "the other partner's endpoint");
    assert_eq!(event_types(&other_distributor_got), ["partner.suspended"], "the other distributor's endpoint");

    // Each endpoint's deliveries are signed with its own secret (and not another's).
    for (got, secret) in [
        (&partner_got, &partner_secret),
        (&distributor_got, &distributor_secret),
        (&other_got, &other_secret),
        (&other_distributor_got, &other_distributor_secret),
    ] {
        for r in got.iter() {
            assert_eq!(r.attempt, 1, "every endpoint answered 200 at once: {r:?}");
            assert_signed(r, secret);
        }
    }
    let r = &distributor_got[0];
    assert_eq!(
        verify_standard(&partner_secret, &r.headers, &r.body, r.unix_time, 300),
        Err(VerifyError::BadSignature),
        "the distributor's deliveries are not signed with the partner's secret"
    );

    // Data of each kind.
    let by_type = |got: &[Received], t: &str| -> Vec<Received> {
        got.iter().filter(|r| r.json()["type"] == t).cloned().collect()
    };
    // Slot 2: the partner's own POST and DELETE; slot 1: the suspension and the reactivation.
    for t in ["key.created", "key.revoked"] {
        let mut data: Vec<Value> = by_type(&partner_got, t).iter().map(|r| r.json()["data"].clone()).collect();
        data.sort_by_key(|d| d["slot"].as_i64());
        assert_eq!(
            data,
            [json!({"partnerId": partner_id, "slot": 1}), json!({"partnerId": partner_id, "slot": 2})],
            "{t}"
        );
    }
    assert_eq!(by_type(&other_got, "key.revoked")[0].json()["data"], json!({"partnerId": other_id, "slot": 1}));
    let updated = &by_type(&partner_got, "customer.updated")[0];
    assert_eq!(updated.json()["data"]["name"], "Renamed Ltd");
    assert_eq!(by_type(&partner_got, "customer.deleted")[0].json()["data"]["customerId"], customer_id.as_str());
    assert_eq!(about_customer(&partner_got, &on_behalf).len(), 1, "the on-behalf customer's event");
    assert_partner_event(
        &by_type(&distributor_got, "partner.suspended")[0],
        "partner.suspended",
        &partner_id,
        "Routing MSP",
        "suspended",
    );
    assert_partner_event(
        &by_type(&distributor_got, "partner.activated")[0],
        "partner.activated",
        &partner_id,
        "Routing MSP",
        "active",
    );
    assert_partner_event(&other_distributor_got[0], "partner.suspended", &other_id, "Other MSP", "suspended");

    // The thresholds: one event each, delivered to both endpoints under the same id.
    let mut thresholds: Vec<Value> =
        by_type(&partner_got, "usage.threshold_reached").iter().map(Received::json).collect();
    thresholds.sort_by_key(|p| p["data"]["threshold"].as_i64());
    let mut for_distributor: Vec<Value> =
        by_type(&distributor_got, "usage.threshold_reached").iter().map(Received::json).collect();
    for_distributor.sort_by_key(|p| p["data"]["threshold"].as_i64());
    assert_eq!(thresholds, for_distributor, "the same events, byte for byte the same content");
    for (payload, (threshold, used)) in thresholds.iter().zip([(80, 40), (100, 50)]) {
        let data = &payload["data"];
        assert_keys(data, &["partnerId", "month", "threshold", "runsUsed", "runsLimit"]);
        assert_eq!(data["partnerId"], partner_id.as_str(), "{payload}");
        assert_eq!(
            (&data["threshold"], &data["runsUsed"], &data["runsLimit"]),
            (&json!(threshold), &json!(used), &json!(50))
        );
        assert_current_month(&data["month"]);
    }
    // The partner's log pages through every delivery, newest first, each once.
    let partner_hooks = Hooks::partner(&partner);
    let mut seen: Vec<Value> = Vec::new();
    let mut query = "?limit=20".to_owned();
    loop {
        let reply = partner_hooks.send(reqwest::Method::GET, &format!("/deliveries{query}"), None).await;
        let page = assert_ok(&reply);
        let deliveries = page["deliveries"].as_array().expect("deliveries").clone();
        assert!(deliveries.len() <= 20, "{}", reply.text);
        seen.extend(deliveries);
        if !page["has_more"].as_bool().unwrap_or_else(|| panic!("no boolean has_more: {}", reply.text)) {
            break;
        }
        query = format!("?limit=20&starting_after={}", str_field(seen.last().expect("a full page"), "eventId"));
    }
    assert_eq!(seen.len(), partner_expected.len(), "every delivery, once: {seen:?}");
    let mut ids: Vec<&str> = seen.iter().map(|d| str_field(d, "eventId")).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut arrived: Vec<&str> = partner_got.iter().map(Received::webhook_id).collect();
    arrived.sort_unstable();
    assert_eq!(ids, arrived, "the log lists exactly the events that arrived");
    let occurred: Vec<&str> = seen.iter().map(|d| str_field(d, "occurredAt")).collect();
    assert!(occurred.windows(2).all(|w| w[0] >= w[1]), "newest first: {occurred:?}");

    // The distributor's log lists them, delivered.
    let logged = Hooks::distributor(&distributor).deliveries("?type=usage.threshold_reached").await;
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(logged.iter().all(|d| d["status"] == "delivered"), "{logged:?}");
}

async fn private_and_loopback_urls_are_refused_without_allow_private(ctx: &Ctx) {
    // The default schedule and no --webhook-allow-private.
    let server = Server::serve_with(ctx.url(), &NO_RATE_LIMITS).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Guarded MSP").await;
    let dist = create_distributor(ctx, "Guarded Distribution", "ops@guarded-dist.example").await;
    let distributor = Hooks::distributor(&DistributorApi::new(&server, str_field(&dist, "key")));
    let receiver = Receiver::start();
    let port = receiver.url().split(':').nth(2).and_then(|p| p.split('/').next()).expect("a port").to_owned();

    let refused = [
        receiver.url(),
        format!("https://127.0.0.1:{port}/hook"),
        "https://10.0.0.1/".to_owned(),
        "https://192.168.1.10/hook".to_owned(),
        "https://172.16.0.1/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://[::1]/".to_owned(),
        "https://[::ffff:127.0.0.1]/".to_owned(),
        "https://[fd00:ec2::254]/".to_owned(),
        "https://0.0.0.0/".to_owned(),
        "https://localhost/".to_owned(),
        format!("https://localhost:{port}/hook"),
        "https://api.localhost/".to_owned(),
        "https://LOCALHOST./".to_owned(),
        // Other spellings of 127.0.0.1.
        "https://127.1/".to_owned(),
        "https://2130706433/".to_owned(),
        "https://0x7f000001/".to_owned(),
        // A public host, but plain http.
        "http://hooks.example.com/partnerd".to_owned(),
    ];
    for url in &refused {
        for (who, h) in [("partner", &hooks), ("distributor", &distributor)] {
            let reply = h.put(url).await;
            let message = assert_error(&reply, 400, "INVALID_FIELD");
            assert!(message.contains("'url'"), "{who} PUT {url}: the message names the field: {message}");
        }
    }
    // Malformed requests and URLs.
    let long = format!("https://hooks.example.com/{}", "x".repeat(2048));
    for url in
        ["", "hooks.example.com/partnerd", "ftp://hooks.example.com/", "https://user:pw@hooks.example.com/", &long]
    {
        let message = assert_error(&hooks.put(url).await, 400, "INVALID_FIELD");
        assert!(message.contains("'url'"), "PUT {url:?}: {message}");
    }
    let send = |body: &'static str| hooks.send_raw(reqwest::Method::PUT, "", body);
    assert!(assert_error(&send("{}").await, 400, "MISSING_FIELD").contains("'url'"));
    assert!(assert_error(&send(r#"{"url": 5}"#).await, 400, "INVALID_FIELD").contains("'url'"));
    assert_error(&send("{").await, 400, "INVALID_JSON");

    // Nothing was configured, so nothing is sent.
    assert_error(&hooks.get().await, 404, "NOT_FOUND");
    assert_error(&distributor.get().await, 404, "NOT_FOUND");
    create_customer_as(&partner, "Guarded MSP", 0).await;
    tokio::time::sleep(QUIET).await;
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());

    // A public https URL is accepted (a reserved name that never resolves, so nothing leaves the
    // machine); a private one still cannot replace it.
    let public = "https://hooks.partnerd.invalid/partnerd";
    hooks.configure(public).await;
    assert_error(&hooks.put(&receiver.url()).await, 400, "INVALID_FIELD");
    let reply = hooks.get().await;
    assert_eq!(assert_ok(&reply)["url"], public, "{}", reply.text);
    create_customer_as(&partner, "Guarded MSP", 1).await;
    tokio::time::sleep(QUIET).await;
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
}

/// This machine's host name, when it resolves only to loopback or private addresses (as it
/// does on most machines and containers): a name the URL check cannot know is private.
fn private_host_name() -> Option<String> {
    use std::net::{IpAddr, ToSocketAddrs};
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?.trim().to_owned();
    if name.is_empty() || name.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let addrs: Vec<IpAddr> = (name.as_str(), 443).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    let private = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    (!addrs.is_empty() && addrs.iter().all(private)).then_some(name)
}

async fn a_host_name_that_resolves_to_a_private_address_is_refused_at_delivery(ctx: &Ctx) {
    let Some(host) = private_host_name() else {
        eprintln!("skipped: this machine's host name does not resolve to private addresses only");
        return;
    };
    let server = Server::serve_with(ctx.url(), &NO_RATE_LIMITS).await;
    let (partner, hooks) = webhook_partner(ctx, &server, "Rebound MSP").await;
    // The name passes the URL check (it is not an address), so the resolver must catch it.
    hooks.configure(&format!("https://{host}/hook")).await;
    create_customer_as(&partner, "Rebound MSP", 0).await;
    let deadline = std::time::Instant::now() + WEBHOOK_WAIT;
    let delivery = loop {
        let log = hooks.deliveries("").await;
        if let Some(d) = log.iter().find(|d| d["attemptCount"].as_u64() >= Some(1)) {
            break d.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no attempt within {WEBHOOK_WAIT:?}: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let attempt = &delivery["attempts"][0];
    assert!(attempt["httpStatus"].is_null(), "{delivery}");
    assert_eq!(attempt["status"], "retrying", "{delivery}");
    let error = str_field(attempt, "error");
    assert!(error.starts_with("refused"), "{host} was not refused by the resolver: {error:?}");
}
