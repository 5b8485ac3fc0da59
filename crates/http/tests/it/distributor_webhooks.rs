//! `/v1/distributor/webhook…`: the same routes as the partner's (the shared scenarios run here
//! for distributors), and the events a distributor's endpoint hears: `partner.*` and
//! `usage.threshold_reached` of its own partners, never theirs alone.

use partnerd_domain::account::{AccountStatus, Partner};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::PlanId;
use partnerd_domain::event::EventType;
use partnerd_domain::ids::DistributorId;
use partnerd_domain::keys::{ApiKey, KeyKind};
use partnerd_domain::ports::PartnerRepository;
use partnerd_domain::values::{BillingInterval, Currency};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::partner_webhooks::{URL, assert_secret, pending, scenarios_for};
use crate::support::{TestApp, no_rate_limits, partner};

scenarios_for!(Distributor as distributor =>
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

fn types(log: &Value) -> Vec<&str> {
    log["deliveries"].as_array().unwrap().iter().map(|d| d["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn suspending_a_partner_reaches_the_distributors_log_and_not_the_partners() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (p, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let partner_secret = {
        let reply = app.as_partner(&pk).put("/v1/partner/webhook", &json!({"url": URL})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_secret(&reply.body["secret"])
    };
    let reply = distributor.put("/v1/distributor/webhook", &json!({"url": "https://dist.example/hook"})).await;
    let distributor_secret = assert_secret(&reply.body["secret"]);
    assert_ne!(partner_secret, distributor_secret, "two endpoints, two secrets");

    app.clock.set(datetime!(2026-04-03 10:15 UTC));
    let reply =
        distributor.post(&format!("/v1/distributor/partners/{}/suspend", p.id), &json!({"reason": "unpaid"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (revoked, suspended) = match app.store.events().as_slice() {
        [.., revoked, suspended] => (revoked.clone(), suspended.clone()),
        other => panic!("expected the revoked key and the suspension: {other:?}"),
    };
    assert_eq!((revoked.event_type, suspended.event_type), (EventType::KeyRevoked, EventType::PartnerSuspended));
    assert_eq!(revoked.to_partner.as_ref(), Some(&p.id), "key.* goes to the partner");
    let log = distributor.get("/v1/distributor/webhook/deliveries").await.body;
    assert_eq!(
        log,
        json!({
            "deliveries": [pending(suspended.id.as_str(), "partner.suspended", "2026-04-03T10:15:00Z", "2026-04-03T10:15:00Z")],
            "has_more": false,
        })
    );

    // Reactivated (with a fresh key, the old ones went with the suspension), the partner's own
    // log has neither partner.* event, only the key.* events about its own keys.
    app.clock.set(datetime!(2026-04-03 10:20 UTC));
    let key = distributor.activate(p.id.as_str()).await.expect("a fresh key");
    let created = app.store.events().into_iter().rev().nth(1).unwrap();
    assert_eq!(created.event_type, EventType::KeyCreated);
    let partner = app.as_partner_key(&key);
    let own = partner.get("/v1/partner/webhook/deliveries").await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(
        own.body,
        json!({
            "deliveries": [
                pending(created.id.as_str(), "key.created", "2026-04-03T10:20:00Z", "2026-04-03T10:20:00Z"),
                pending(revoked.id.as_str(), "key.revoked", "2026-04-03T10:15:00Z", "2026-04-03T10:15:00Z"),
            ],
            "has_more": false,
        }),
        "partner.* goes to the distributor only"
    );
    partner.post_empty(&format!("/v1/partner/webhook/deliveries/{}/retry", suspended.id)).await.error(404, "NOT_FOUND");
    let log = distributor.get("/v1/distributor/webhook/deliveries").await.body;
    assert_eq!(types(&log), ["partner.activated", "partner.suspended"]);
    let by_type = distributor.get("/v1/distributor/webhook/deliveries?type=partner.activated").await.body;
    assert_eq!(types(&by_type), ["partner.activated"]);
    assert!(!log.to_string().contains(&distributor_secret));
}

#[tokio::test]
async fn another_distributors_partners_are_never_heard() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let (theirs, tk) = app.distributor(AccountStatus::Active).await;
    let (their_partner, _) = app.partner(Some(&theirs.id), AccountStatus::Active).await;
    let (direct, _) = app.partner(None, AccountStatus::Active).await;
    let me = app.as_distributor(&dk);
    let them = app.as_distributor(&tk);
    for d in [&me, &them] {
        assert_eq!(d.put("/v1/distributor/webhook", &json!({"url": URL})).await.status, 200);
    }
    // Suspending a partner that is not mine changes nothing and queues nothing.
    for id in [&their_partner.id, &direct.id] {
        me.post_empty(&format!("/v1/distributor/partners/{id}/suspend")).await.error(404, "NOT_FOUND");
    }
    assert!(app.store.events().is_empty());
    assert_eq!(them.post_empty(&format!("/v1/distributor/partners/{}/suspend", their_partner.id)).await.status, 200);
    let event = app.store.events().pop().unwrap();
    let empty = json!({"deliveries": [], "has_more": false});
    assert_eq!(me.get("/v1/distributor/webhook/deliveries").await.body, empty);
    me.post_empty(&format!("/v1/distributor/webhook/deliveries/{}/retry", event.id)).await.error(404, "NOT_FOUND");
    let everything = json!({"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"});
    let reply = me.post("/v1/distributor/webhook/replay", &everything).await;
    assert_eq!((reply.status, &reply.body), (202, &json!({"replayed": 0})));
    assert_eq!(me.get("/v1/distributor/webhook/deliveries").await.body, empty);
    assert_eq!(types(&them.get("/v1/distributor/webhook/deliveries").await.body), ["partner.suspended"]);
}

/// An active partner of `distributor` on the starter plan (50 runs a month), and its key.
async fn starter_partner_of(app: &TestApp, distributor: &DistributorId) -> ApiKey {
    let start = datetime!(2026-04-01 00:00 UTC);
    let p = Partner {
        subscription: Subscription::starting(
            PlanId::parse("starter").unwrap(),
            BillingInterval::Monthly,
            Currency::Usd,
            start,
        ),
        ..partner(&app.ids, Some(distributor), AccountStatus::Active)
    };
    let key = ApiKey::generate(KeyKind::Partner, &app.ids);
    PartnerRepository::insert(&*app.store, &p, Some(key.hash())).await.unwrap();
    key
}

#[tokio::test]
async fn a_usage_threshold_reaches_both_the_partner_and_its_distributor() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let pk = starter_partner_of(&app, &d.id).await;
    let partner = app.as_partner(&pk);
    let distributor = app.as_distributor(&dk);
    assert_eq!(partner.put("/v1/partner/webhook", &json!({"url": URL})).await.status, 200);
    assert_eq!(distributor.put("/v1/distributor/webhook", &json!({"url": URL})).await.status, 200);
    let customers = partner.create_customers(40).await;
    app.clock.set(datetime!(2026-04-03 10:30 UTC));
    let reply = partner
        .post("/v1/partner/assessments/bulk", &json!({"product": "essential-eight", "customerIds": customers}))
        .await;
    assert_eq!((reply.status, &reply.body["queued"]), (202, &json!(40)), "{}", reply.body);

    let query = "/webhook/deliveries?type=usage.threshold_reached";
    let theirs = distributor.get(&format!("/v1/distributor{query}")).await.body;
    let ours = partner.get(&format!("/v1/partner{query}")).await.body;
    let threshold = app.store.events().into_iter().find(|e| e.event_type == EventType::UsageThresholdReached).unwrap();
    let expected = json!({
        "deliveries": [pending(threshold.id.as_str(), "usage.threshold_reached", "2026-04-03T10:30:00Z", "2026-04-03T10:30:00Z")],
        "has_more": false,
    });
    assert_eq!(theirs, expected, "the distributor hears its partner's 80 %");
    assert_eq!(ours, expected, "and so does the partner, under the same event id");
    // The distributor hears nothing else of the partner's (40 customers were created).
    assert_eq!(types(&distributor.get("/v1/distributor/webhook/deliveries").await.body), ["usage.threshold_reached"]);
    let created = partner.get("/v1/partner/webhook/deliveries?type=customer.created").await.body;
    assert_eq!(created["deliveries"].as_array().unwrap().len(), 40, "the partner heard every customer");
    // Each may send its own delivery again; the other's stays as it was.
    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let reply = distributor.post_empty(&format!("/v1/distributor/webhook/deliveries/{}/retry", threshold.id)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["nextRetryAt"], "2026-04-03T11:00:00Z");
    let ours = partner.get(&format!("/v1/partner{query}")).await.body;
    assert_eq!(ours["deliveries"][0]["nextRetryAt"], "2026-04-03T10:30:00Z");
}

#[tokio::test]
async fn a_customer_created_on_behalf_is_the_partners_event_not_the_distributors() {
    let app = TestApp::start_with(no_rate_limits()).await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let (p, pk) = app.partner(Some(&d.id), AccountStatus::Active).await;
    let partner = app.as_partner(&pk);
    let distributor = app.as_distributor(&dk);
    assert_eq!(partner.put("/v1/partner/webhook", &json!({"url": URL})).await.status, 200);
    assert_eq!(distributor.put("/v1/distributor/webhook", &json!({"url": URL})).await.status, 200);
    let body = json!({"name": "Contoso Ltd", "tenantId": "d4f5a678-1234-5678-9abc-def012345678"});
    let reply = distributor.post(&format!("/v1/distributor/partners/{}/customers", p.id), &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let created = app.store.events().pop().unwrap();
    assert_eq!(created.event_type, EventType::CustomerCreated);
    let ours = partner.get("/v1/partner/webhook/deliveries").await.body;
    assert_eq!(
        ours,
        json!({
            "deliveries": [pending(created.id.as_str(), "customer.created", "2026-04-03T10:00:00Z", "2026-04-03T10:00:00Z")],
            "has_more": false,
        }),
        "whoever caused it, a customer event is the partner's"
    );
    let theirs = distributor.get("/v1/distributor/webhook/deliveries").await.body;
    assert_eq!(theirs, json!({"deliveries": [], "has_more": false}));
}
