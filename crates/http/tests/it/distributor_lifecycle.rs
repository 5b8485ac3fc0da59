//! `POST /v1/distributor/partners/{id}/activate`, `…/reactivate` and `…/suspend`: a partner's
//! status, its keys, and the `partner.*` events its distributor receives.

use partnerd_domain::account::AccountStatus;
use partnerd_domain::event::{Event, EventType, EventValue};
use partnerd_domain::ids::DistributorId;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, contoso, new_msp};

fn action(id: &str, verb: &str) -> String {
    format!("/v1/distributor/partners/{id}/{verb}")
}

/// `/v1/partner/me` with `key`: its status and the error code, if any.
async fn partner_me(app: &TestApp, key: &str) -> (u16, Option<String>) {
    let reply = app.as_partner_key(key).get("/v1/partner/me").await;
    (reply.status, reply.body["error"]["code"].as_str().map(str::to_owned))
}

const WORKS: (u16, Option<String>) = (200, None);

fn invalid_key() -> (u16, Option<String>) {
    (401, Some("INVALID_KEY".to_owned()))
}

fn text(event: &Event, field: &str) -> Option<EventValue> {
    event.data.iter().find(|(k, _)| k == field).map(|(_, v)| v.clone())
}

/// Asserts a `partner.*` event for `partner`, addressed to `distributor` only.
#[track_caller]
fn assert_partner_event(event: &Event, kind: EventType, distributor: &DistributorId, partner: &str, status: &str) {
    assert_eq!(event.event_type, kind);
    assert_eq!(event.to_distributor.as_ref(), Some(distributor), "partner.* goes to the distributor");
    assert_eq!(event.to_partner, None);
    assert_eq!(text(event, "partnerId"), Some(EventValue::Text(partner.to_owned())));
    assert_eq!(text(event, "status"), Some(EventValue::Text(status.to_owned())));
    assert_eq!(text(event, "company"), Some(EventValue::Text("New MSP Pty Ltd".to_owned())));
}

/// Asserts a `key.*` event about `partner`'s key in `slot`, addressed to `partner` only.
#[track_caller]
fn assert_key_event(event: &Event, kind: EventType, partner: &str, slot: i64) {
    assert_eq!(event.event_type, kind);
    assert_eq!(event.to_partner.as_ref().map(|p| p.as_str()), Some(partner), "key.* goes to the partner");
    assert_eq!(event.to_distributor, None);
    assert_eq!(
        event.data,
        [("partnerId".into(), EventValue::Text(partner.to_owned())), ("slot".into(), EventValue::Int(slot))]
    );
}

#[tokio::test]
async fn activate_suspend_reactivate_walks_the_keys_and_records_the_events() {
    let app = TestApp::start().await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let id = distributor.provision(&new_msp()).await;

    app.clock.set(datetime!(2026-04-03 11:20 UTC));
    let reply = distributor.post_empty(&action(&id, "activate")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let k1 = reply.body["key"].as_str().expect("the first activation issues a key").to_owned();
    assert!(k1.starts_with("pk_live_"), "{k1}");
    assert_eq!(reply.body, json!({"id": id, "status": "active", "activatedAt": "2026-04-03T11:20:00Z", "key": k1}));
    let me = app.as_partner_key(&k1).me().await;
    assert_eq!((me["id"].as_str(), me["status"].as_str()), (Some(id.as_str()), Some("active")));
    assert_eq!(distributor.partner_detail(&id).await["status"], "active");
    let events = app.store.events();
    assert_eq!(events.len(), 2, "the new key, then the activation");
    assert_key_event(&events[0], EventType::KeyCreated, &id, 1);
    assert_partner_event(&events[1], EventType::PartnerActivated, &d.id, &id, "active");

    app.clock.set(datetime!(2026-04-03 11:25 UTC));
    let reply = distributor.post(&action(&id, "suspend"), &json!({"reason": "unpaid invoice"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"id": id, "status": "suspended", "suspendedAt": "2026-04-03T11:25:00Z", "reason": "unpaid invoice"})
    );
    assert_eq!(partner_me(&app, &k1).await, invalid_key(), "the very next request with K1 fails");
    assert_eq!(distributor.partner_detail(&id).await["status"], "suspended");
    let events = app.store.events();
    assert_eq!(events.len(), 4, "the revoked key, then the suspension");
    assert_key_event(&events[2], EventType::KeyRevoked, &id, 1);
    assert_partner_event(&events[3], EventType::PartnerSuspended, &d.id, &id, "suspended");
    assert_eq!(text(&events[3], "reason"), Some(EventValue::Text("unpaid invoice".into())));

    app.clock.set(datetime!(2026-04-03 11:30 UTC));
    let reply = distributor.post_empty(&action(&id, "reactivate")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let k2 = reply.body["key"].as_str().expect("reactivation issues a fresh key").to_owned();
    assert_ne!(k2, k1);
    assert_eq!(reply.body, json!({"id": id, "status": "active", "activatedAt": "2026-04-03T11:30:00Z", "key": k2}));
    assert_eq!(partner_me(&app, &k2).await, WORKS);
    assert_eq!(partner_me(&app, &k1).await, invalid_key(), "K1 stays dead");
    let events = app.store.events();
    assert_eq!(events.len(), 6, "the fresh key, then the reactivation");
    assert_key_event(&events[4], EventType::KeyCreated, &id, 1);
    assert_partner_event(&events[5], EventType::PartnerActivated, &d.id, &id, "active");
    let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.id).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");
}

#[tokio::test]
async fn activating_an_active_partner_returns_no_key_and_changes_nothing() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let (keys, events) = (app.store.stored_key_hashes(), app.store.events());
    app.clock.set(datetime!(2026-04-03 12:00 UTC));
    for verb in ["activate", "reactivate"] {
        let reply = distributor.post_empty(&action(&id, verb)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, json!({"id": id, "status": "active", "activatedAt": "2026-04-03T12:00:00Z"}), "{verb}");
    }
    assert_eq!(partner_me(&app, &key).await, WORKS, "the partner's key still works");
    assert_eq!(app.store.stored_key_hashes(), keys, "no key was issued or revoked");
    assert_eq!(app.store.events(), events, "no event was recorded");
}

#[tokio::test]
async fn suspending_twice_is_fine_and_records_one_event() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let first = distributor.post(&action(&id, "suspend"), &json!({"reason": "unpaid invoice"})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let events = app.store.events();
    let second = distributor.post_empty(&action(&id, "suspend")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["status"], "suspended");
    assert_eq!(second.body["id"], id.as_str());
    assert_eq!(app.store.events(), events, "nothing more happened");
    assert_eq!(distributor.partner_detail(&id).await["status"], "suspended");
    assert_eq!(partner_me(&app, &key).await, invalid_key());
}

#[tokio::test]
async fn the_suspend_body_is_optional() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    app.clock.set(datetime!(2026-04-03 11:25 UTC));
    let bodies: [Option<&str>; 5] = [None, Some(""), Some("  \n"), Some("{}"), Some("{\"reason\": \"   \"}")];
    for body in bodies {
        let (id, _) = distributor.provision_active(&new_msp()).await;
        let path = action(&id, "suspend");
        let reply = match body {
            None => distributor.post_empty(&path).await,
            Some(raw) => distributor.post_raw(&path, raw).await,
        };
        assert_eq!(reply.status, 200, "{body:?}: {}", reply.body);
        assert_eq!(
            reply.body,
            json!({"id": id, "status": "suspended", "suspendedAt": "2026-04-03T11:25:00Z"}),
            "{body:?}: no reason, no reason field"
        );
        let event = app.store.events().pop().unwrap();
        assert_eq!(event.event_type, EventType::PartnerSuspended);
        assert_eq!(text(&event, "reason"), Some(EventValue::Null), "{body:?}");
    }
}

#[tokio::test]
async fn the_reason_is_trimmed_and_kept_in_the_event() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let reply = distributor.post(&action(&id, "suspend"), &json!({"reason": "  contract ended  "})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["reason"], "contract ended");
    let event = app.store.events().pop().unwrap();
    assert_eq!(text(&event, "reason"), Some(EventValue::Text("contract ended".into())));
}

#[tokio::test]
async fn a_bad_suspend_body_is_refused_and_the_partner_stays_active() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let events = app.store.events();
    let path = action(&id, "suspend");
    distributor.post(&path, &json!({"reason": 5})).await.field_error("INVALID_FIELD", "reason");
    distributor.post(&path, &json!({"reason": "x".repeat(501)})).await.field_error("INVALID_FIELD", "reason");
    distributor.post(&path, &json!({"why": "unpaid"})).await.field_error("INVALID_FIELD", "why");
    distributor.post(&path, &json!(["unpaid"])).await.error(400, "INVALID_FIELD");
    distributor.post_raw(&path, "{\"reason\": ").await.error(400, "INVALID_JSON");
    assert_eq!(partner_me(&app, &key).await, WORKS);
    assert_eq!(distributor.partner_detail(&id).await["status"], "active");
    assert_eq!(app.store.events(), events);
    // 500 characters is the longest reason kept.
    let reply = distributor.post(&path, &json!({"reason": "x".repeat(500)})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn suspension_revokes_every_slot_and_the_reactivated_partner_can_rotate_again() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, k1) = distributor.provision_active(&new_msp()).await;
    let second = app.as_partner_key(&k1).post_empty("/v1/partner/keys").await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.body["slot"], 2);
    let k1b = second.body["key"].as_str().unwrap().to_owned();
    assert_eq!(partner_me(&app, &k1b).await, WORKS);

    assert_eq!(distributor.post_empty(&action(&id, "suspend")).await.status, 200);
    assert_eq!(partner_me(&app, &k1).await, invalid_key());
    assert_eq!(partner_me(&app, &k1b).await, invalid_key(), "slot 2 is revoked too");

    let k2 = distributor.activate(&id).await.expect("a fresh key");
    assert_eq!(partner_me(&app, &k2).await, WORKS);
    assert_eq!(partner_me(&app, &k1b).await, invalid_key());
    let rotated = app.as_partner_key(&k2).post_empty("/v1/partner/keys").await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    assert_eq!(rotated.body["slot"], 2, "the fresh key is in slot 1, so slot 2 is free");
}

#[tokio::test]
async fn a_pending_partner_can_be_suspended_and_then_activated() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let id = distributor.provision(&new_msp()).await;
    let reply = distributor.post_empty(&action(&id, "suspend")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(distributor.partner_ids("?status=suspended").await, [id.as_str()]);
    let reply = distributor.post_empty(&action(&id, "reactivate")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let key = reply.body["key"].as_str().expect("a partner that never had a key gets one").to_owned();
    assert_eq!(partner_me(&app, &key).await, WORKS);
}

#[tokio::test]
async fn the_partners_data_survives_suspension() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, k1) = distributor.provision_active(&new_msp()).await;
    let partner = app.as_partner_key(&k1);
    let customer = partner.create_customer(&contoso()).await;
    partner.trigger(&customer, "essential-eight").await;
    let before: (Value, Value) = (partner.customers().await, partner.runs().await);
    distributor.post_empty(&action(&id, "suspend")).await;
    let k2 = distributor.activate(&id).await.unwrap();
    let partner = app.as_partner_key(&k2);
    assert_eq!((partner.customers().await, partner.runs().await), before);
    assert_eq!(partner.runs_used().await, 1);
}

#[tokio::test]
async fn activate_and_suspend_of_unknown_ids_are_not_found() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor: Caller<'_> = app.as_distributor(&dk);
    for verb in ["activate", "reactivate", "suspend"] {
        for id in ["prt_000000000000000000000999", "nope"] {
            distributor.post_empty(&action(id, verb)).await.error(404, "NOT_FOUND");
        }
        distributor.get(&action("prt_000000000000000000000999", verb)).await.error(405, "METHOD_NOT_ALLOWED");
    }
    assert!(app.store.events().is_empty());
}
