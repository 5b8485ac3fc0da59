//! A distributor suspends one of its partners: every key the partner holds fails its very next
//! request with `401 INVALID_KEY`; reactivation hands out a fresh key, and the old keys stay
//! dead. On PostgreSQL the same holds across two `partnerd` processes sharing the database: a
//! suspension through one process is seen by the other at once.

use partnerd_e2e::{Server, str_field};
use serde_json::{Value, json};

use crate::support::{
    Ctx, DistributorApi, PartnerApi, assert_error, assert_ok, assert_status, contoso, create_distributor, new_msp,
    on_both_backends, on_postgres_only, serve_open,
};

on_both_backends!(a_suspended_partners_keys_die_at_once_and_reactivation_gives_a_fresh_one);
on_postgres_only!(a_suspension_through_one_process_kills_the_keys_in_the_other);

/// The partner's key is refused on every kind of request, on both prefixes, on every server.
async fn assert_dead(key: &PartnerApi, servers: &[&Server], what: &str) {
    for server in servers {
        let key = key.on(server);
        for path in ["/v1/partner/me", "/api/v1/partner/me", "/v1/partner/customers"] {
            let reply = key.get(path).await;
            assert_eq!(reply.status, 401, "{what}: GET {path}: {}", reply.text);
            assert_error(&reply, 401, "INVALID_KEY");
        }
        assert_error(&key.post("/v1/partner/customers", &contoso()).await, 401, "INVALID_KEY");
        assert_error(&key.post_empty("/v1/partner/keys").await, 401, "INVALID_KEY");
    }
}

/// `POST …/reactivate` (or `…/activate`): 200, active, and a fresh key, which is returned.
async fn reactivate(api: &DistributorApi, partner: &str, route: &str) -> String {
    let reply = api.post_empty(&format!("/v1/distributor/partners/{partner}/{route}")).await;
    let body = assert_ok(&reply);
    assert_eq!((&body["id"], &body["status"]), (&json!(partner), &json!("active")), "{}", reply.text);
    let key = str_field(body, "key");
    assert!(key.starts_with("pk_live_"), "a suspended partner has no key left, so {route} returns one: {}", reply.text);
    key.to_owned()
}

/// What the partner owns, as it sees it: it survives suspension untouched.
async fn holdings(key: &PartnerApi) -> (Value, Vec<Value>, Vec<Value>) {
    let me = key.me().await;
    (json!({"plan": me["plan"], "usage": me["usage"]}), key.customers().await, key.runs().await)
}

async fn a_suspended_partners_keys_die_at_once_and_reactivation_gives_a_fresh_one(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let server = serve_open(ctx).await;
    let api = DistributorApi::new(&server, str_field(&distributor, "key"));
    let partner = api.provision(&new_msp()).await;
    let first = PartnerApi::new(&server, &api.activate(&partner).await);

    // The partner works, and takes a second key (slot 2) for rotation.
    let reply = first.post("/v1/partner/customers", &contoso()).await;
    let customer = str_field(assert_status(&reply, 201), "id").to_owned();
    let reply =
        first.post("/v1/partner/assessments", &json!({"customerId": customer, "product": "essential-eight"})).await;
    assert_status(&reply, 202);
    let second = first.new_key().await;
    let held = holdings(&first).await;
    // Both keys have just been served (whatever the server remembers about them, it now does).
    assert_eq!(first.me().await["status"], "active");
    assert_eq!(second.me().await["status"], "active");

    // Suspend, with a reason: both keys fail their very next request.
    let reply =
        api.post(&format!("/v1/distributor/partners/{partner}/suspend"), &json!({"reason": "Unpaid invoice"})).await;
    assert_eq!(assert_ok(&reply)["status"], "suspended", "{}", reply.text);
    assert_dead(&first, &[&server], "slot 1 after suspension").await;
    assert_dead(&second, &[&server], "slot 2 after suspension").await;
    assert_eq!(api.partner(&partner).await["status"], "suspended");

    // Reactivate: a fresh key works; neither old key comes back.
    let third = PartnerApi::new(&server, &reactivate(&api, &partner, "reactivate").await);
    assert_ne!(third.key, first.key);
    assert_ne!(third.key, second.key);
    assert_eq!(third.me().await["status"], "active");
    assert_eq!(holdings(&third).await, held, "suspension and reactivation kept the partner's data");
    assert_dead(&first, &[&server], "slot 1 after reactivation").await;
    assert_dead(&second, &[&server], "slot 2 after reactivation").await;
    // The fresh key is the only one: it cannot be revoked, and there is room for one more.
    assert_error(&third.delete("/v1/partner/keys/1").await, 409, "LAST_KEY");
    let fourth = third.new_key().await;

    // Again, with no body, then `activate`: both current keys die, the next fresh one works.
    api.suspend(&partner).await;
    assert_dead(&third, &[&server], "the reactivation key after a second suspension").await;
    assert_dead(&fourth, &[&server], "its slot-2 key after a second suspension").await;
    let fifth = PartnerApi::new(&server, &reactivate(&api, &partner, "activate").await);
    assert_eq!(holdings(&fifth).await, held);
    for old in [&first, &second, &third, &fourth] {
        assert_error(&old.get("/v1/partner/me").await, 401, "INVALID_KEY");
    }
    // Activating an active partner with a working key hands out no other key.
    let reply = api.post_empty(&format!("/v1/distributor/partners/{partner}/activate")).await;
    let body = assert_ok(&reply);
    assert_eq!(body["status"], "active", "{}", reply.text);
    assert!(body.get("key").is_none_or(Value::is_null), "no key while one is active: {}", reply.text);
    assert_eq!(fifth.me().await["status"], "active");
}

/// Two processes on one database, each having just served the partner's key; the suspension
/// goes through process 1, the very next request with the old key to process 2 is refused. The
/// reactivation goes through process 2; its key works on process 1 at once, the old one on
/// neither.
async fn a_suspension_through_one_process_kills_the_keys_in_the_other(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let (one, two) = tokio::join!(serve_open(ctx), serve_open(ctx));
    let servers = [&one, &two];
    let api = DistributorApi::new(&one, str_field(&distributor, "key"));
    let partner = api.provision(&new_msp()).await;
    let mut key = PartnerApi::new(&one, &api.activate(&partner).await);

    for round in 0..3 {
        let (here, there) = (servers[round % 2], servers[(round + 1) % 2]);
        for server in servers {
            assert_eq!(key.on(server).me().await["status"], "active", "round {round}");
        }
        api.on(here).suspend(&partner).await;
        let refused = key.on(there).get("/v1/partner/me").await;
        assert_eq!(refused.status, 401, "round {round}: the other process still served the key: {}", refused.text);
        assert_error(&refused, 401, "INVALID_KEY");
        assert_dead(&key, &servers, "after suspension").await;
        assert_eq!(api.on(there).partner(&partner).await["status"], "suspended");

        let fresh = PartnerApi::new(there, &reactivate(&api.on(there), &partner, "reactivate").await);
        assert_eq!(fresh.on(here).me().await["status"], "active", "round {round}: the new key works everywhere");
        assert_dead(&key, &servers, "after reactivation").await;
        key = fresh;
    }
}
