//! `POST /v1/partner/keys` and `DELETE /v1/partner/keys/{slot}`: two slots, never zero keys.

use serde_json::Value;

use crate::support::{Caller, TestApp};

/// Generates a key, asserting `201` and the reference shape; returns (slot, key).
async fn generate(partner: &Caller<'_>) -> (u64, String) {
    let reply = partner.post_raw("/v1/partner/keys", "").await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.body.as_object().unwrap();
    let mut fields: Vec<&str> = body.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["createdAt", "key", "slot"], "{}", reply.body);
    assert_eq!(body["createdAt"], "2026-04-03T10:00:00Z");
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pk_live_") && key.len() > "pk_live_".len() + 20, "{key}");
    (body["slot"].as_u64().unwrap(), key)
}

async fn works(app: &TestApp, key: &str) -> bool {
    let reply = app.as_partner_key(key).get("/v1/partner/me").await;
    match reply.status {
        200 => true,
        401 => {
            crate::support::assert_error(&reply.body, "INVALID_KEY");
            false
        }
        other => panic!("unexpected {other}: {}", reply.body),
    }
}

#[tokio::test]
async fn a_new_key_goes_in_slot_two_and_both_keys_work() {
    let app = TestApp::start().await;
    let (partner, first) = app.partner_on("professional").await;
    let (slot, second) = generate(&app.as_partner(&first)).await;
    assert_eq!(slot, 2);
    assert_ne!(second, first.reveal());
    assert!(works(&app, first.reveal()).await);
    assert!(works(&app, &second).await);
    assert_eq!(app.as_partner_key(&second).me().await["id"], partner.id.to_string(), "the key is the same partner's");
    let stored = app.store.stored_key_hashes();
    assert!(!stored.iter().any(|h| h.contains(&second) || second.contains(h.as_str())), "only a hash is stored");
}

#[tokio::test]
async fn a_third_key_is_max_keys_and_changes_nothing() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let (_, second) = generate(&app.as_partner(&first)).await;
    let stored = app.store.stored_key_hashes().len();
    for key in [first.reveal(), second.as_str()] {
        let message = app.as_partner_key(key).post_raw("/v1/partner/keys", "").await.error(409, "MAX_KEYS");
        assert!(message.contains('2'), "{message}");
    }
    assert_eq!(app.store.stored_key_hashes().len(), stored, "no key was stored");
    assert!(works(&app, first.reveal()).await);
    assert!(works(&app, &second).await);
}

#[tokio::test]
async fn rotation_revoke_slot_one_then_the_next_key_reuses_it() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let (_, second) = generate(&app.as_partner(&first)).await;
    let reply = app.as_partner_key(&second).delete("/v1/partner/keys/1").await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.body, Value::Null);
    assert!(!works(&app, first.reveal()).await, "a revoked key fails the very next request");
    assert!(works(&app, &second).await);
    let (slot, third) = generate(&app.as_partner_key(&second)).await;
    assert_eq!(slot, 1, "the lowest free slot");
    assert!(works(&app, &third).await);
    assert!(!works(&app, first.reveal()).await, "the old slot-1 key stays revoked");
}

#[tokio::test]
async fn a_key_may_revoke_its_own_slot_when_another_is_active() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let (_, second) = generate(&app.as_partner(&first)).await;
    assert_eq!(app.as_partner_key(&second).delete("/v1/partner/keys/2").await.status, 204);
    assert!(!works(&app, &second).await);
    assert!(works(&app, first.reveal()).await);
}

#[tokio::test]
async fn the_only_active_key_cannot_be_revoked() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let partner = app.as_partner(&first);
    partner.delete("/v1/partner/keys/1").await.error(409, "LAST_KEY");
    assert!(works(&app, first.reveal()).await);
    // After a rotation the survivor is the last key in its turn.
    let (_, second) = generate(&partner).await;
    assert_eq!(partner.delete("/v1/partner/keys/1").await.status, 204);
    app.as_partner_key(&second).delete("/v1/partner/keys/2").await.error(409, "LAST_KEY");
    assert!(works(&app, &second).await);
}

#[tokio::test]
async fn an_empty_slot_is_not_found() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let partner = app.as_partner(&first);
    partner.delete("/v1/partner/keys/2").await.error(404, "NOT_FOUND");
    let (_, second) = generate(&partner).await;
    assert_eq!(partner.delete("/v1/partner/keys/2").await.status, 204);
    partner.delete("/v1/partner/keys/2").await.error(404, "NOT_FOUND");
    assert!(!works(&app, &second).await);
    assert!(works(&app, first.reveal()).await);
}

#[tokio::test]
async fn a_slot_other_than_one_or_two_is_invalid_field_and_revokes_nothing() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let partner = app.as_partner(&first);
    let (_, second) = generate(&partner).await;
    for slot in ["3", "0", "-1", "abc", "1.0", "99999999999999999999999", "%201"] {
        partner.delete(&format!("/v1/partner/keys/{slot}")).await.field_error("INVALID_FIELD", "slot");
    }
    assert!(works(&app, first.reveal()).await);
    assert!(works(&app, &second).await);
}

#[tokio::test]
async fn keys_are_per_partner() {
    let app = TestApp::start().await;
    let (_, a_first) = app.partner_on("professional").await;
    let (_, b_first) = app.partner_on("professional").await;
    let (_, a_second) = generate(&app.as_partner(&a_first)).await;
    let b = app.as_partner(&b_first);
    // B's slot 2 is empty, whatever A has there; B's slot 1 is B's last key.
    b.delete("/v1/partner/keys/2").await.error(404, "NOT_FOUND");
    b.delete("/v1/partner/keys/1").await.error(409, "LAST_KEY");
    assert!(works(&app, &a_second).await);
    assert!(works(&app, a_first.reveal()).await);
    // A's two keys do not use up B's slots.
    let (slot, _) = generate(&b).await;
    assert_eq!(slot, 2);
    // And A revoking its slot 1 leaves B's slot 1 alone.
    assert_eq!(app.as_partner_key(&a_second).delete("/v1/partner/keys/1").await.status, 204);
    assert!(works(&app, b_first.reveal()).await);
    assert!(!works(&app, a_first.reveal()).await);
}

#[tokio::test]
async fn concurrent_generation_fills_the_free_slot_once() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let partner = app.as_partner(&first);
    let replies = futures_util::future::join_all((0..10).map(|_| partner.post_raw("/v1/partner/keys", ""))).await;
    let mut outcomes: Vec<String> = replies
        .iter()
        .map(|r| if r.status == 201 { format!("slot {}", r.body["slot"]) } else { r.body["error"]["code"].to_string() })
        .collect();
    outcomes.sort();
    let mut expected = vec!["\"MAX_KEYS\"".to_owned(); 9];
    expected.push("slot 2".to_owned());
    assert_eq!(outcomes, expected);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_payload_too_large_even_where_no_body_is_needed() {
    let app = TestApp::start().await;
    let (_, first) = app.partner_on("professional").await;
    let partner = app.as_partner(&first);
    let stored = app.store.stored_key_hashes().len();
    partner.post_raw("/v1/partner/keys", crate::support::oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(app.store.stored_key_hashes().len(), stored, "no key was created");
}
