//! Key slots under concurrency: at most two active keys, never zero, and a revoked key is dead
//! on the very next request — in every process that shares the database.

use partnerd_e2e::{Reply, Server, all_at_once, str_field};

use crate::support::{
    Ctx, PartnerApi, assert_error, assert_no_content, assert_status, create_partner, on_both_backends,
    on_postgres_only, serve_unlimited, warm_up,
};

on_both_backends!(
    concurrent_key_creation_makes_exactly_one_key,
    concurrent_revocation_of_both_keys_leaves_exactly_one,
    a_revoked_key_fails_the_very_next_request_in_every_process,
);
on_postgres_only!(
    concurrent_key_creation_across_two_processes_makes_exactly_one_key,
    concurrent_revocation_across_two_processes_leaves_exactly_one,
);

async fn new_partner(ctx: &Ctx, server: &Server) -> PartnerApi {
    let created = create_partner(ctx, "Key MSP", "ops@keys.example", "starter", None).await;
    PartnerApi::new(server, str_field(&created, "key"))
}

/// `POST /v1/partner/keys` → `201 {slot, key, createdAt}`; returns (slot, client with the key).
#[track_caller]
fn issued(reply: &Reply, api: &PartnerApi) -> (u64, PartnerApi) {
    let body = assert_status(reply, 201);
    let slot = body["slot"].as_u64().unwrap_or_else(|| panic!("no integer slot in {}", reply.text));
    let key = str_field(body, "key");
    assert!(key.starts_with("pk_live_"), "{}", reply.text);
    (slot, api.with_key(key))
}

/// 20 concurrent `POST /v1/partner/keys` on an account with one key: one `201` (slot 2),
/// nineteen `409 MAX_KEYS`; both keys work afterwards, and there is still no room for a third.
async fn key_creation_race(ctx: &Ctx, servers: &[&Server]) {
    const REQUESTS: usize = 20;
    let api = new_partner(ctx, servers[0]).await;
    let apis: Vec<PartnerApi> = servers.iter().map(|s| api.on(s)).collect();
    warm_up(&apis, REQUESTS).await;
    let replies = all_at_once(REQUESTS, |i| {
        let api = apis[i % apis.len()].clone();
        async move { api.post_empty("/v1/partner/keys").await }
    })
    .await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let created: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "exactly one key fits in the free slot; statuses {statuses:?}");
    let (slot, second) = issued(created[0], &api);
    assert_eq!(slot, 2, "{}", created[0].text);
    for reply in replies.iter().filter(|r| r.status != 201) {
        assert_error(reply, 409, "MAX_KEYS");
    }

    for server in servers {
        for client in [api.on(server), second.on(server)] {
            let me = client.me().await;
            assert_eq!(me["status"], "active", "{me}");
        }
    }
    assert_error(&api.post_empty("/v1/partner/keys").await, 409, "MAX_KEYS");
    assert_error(&second.post_empty("/v1/partner/keys").await, 409, "MAX_KEYS");
}

/// An account with keys in slots 1 and 2; each key concurrently revokes its own slot. Exactly
/// one `204` and one `409 LAST_KEY`, ten times over; the account always keeps a working key.
async fn revocation_race(ctx: &Ctx, servers: &[&Server]) {
    const ROUNDS: usize = 10;
    let first = new_partner(ctx, servers[0]).await;
    let (slot, second) = issued(&first.post_empty("/v1/partner/keys").await, &first);
    assert_eq!(slot, 2);
    // keys[0] is slot 1's key, keys[1] slot 2's.
    let mut keys = [first, second];

    for round in 0..ROUNDS {
        // Each key revokes its own slot, on its own server: the loser's key is never the one
        // revoked, so whatever the interleaving it must be answered LAST_KEY (never 401).
        let clients: Vec<PartnerApi> =
            keys.iter().enumerate().map(|(i, k)| k.on(servers[(i + round) % servers.len()])).collect();
        warm_up(&clients, 2).await;
        let replies = all_at_once(2, |i| {
            let api = clients[i].clone();
            async move { api.delete(&format!("/v1/partner/keys/{}", i + 1)).await }
        })
        .await;

        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        let revoked: Vec<usize> = (0..2).filter(|&i| replies[i].status == 204).collect();
        assert_eq!(revoked.len(), 1, "round {round}: exactly one revocation succeeds; statuses {statuses:?}");
        let (gone, kept) = (revoked[0], 1 - revoked[0]);
        assert_no_content(&replies[gone]);
        assert_error(&replies[kept], 409, "LAST_KEY");

        for server in servers {
            assert_error(&keys[gone].on(server).get("/v1/partner/me").await, 401, "INVALID_KEY");
            assert_eq!(keys[kept].on(server).me().await["status"], "active", "round {round}");
        }
        // The survivor alone cannot be revoked…
        assert_error(&keys[kept].delete(&format!("/v1/partner/keys/{}", kept + 1)).await, 409, "LAST_KEY");
        // …and refills the freed slot for the next round.
        let (slot, fresh) = issued(&keys[kept].post_empty("/v1/partner/keys").await, &keys[kept]);
        assert_eq!(slot as usize, gone + 1, "round {round}: the new key takes the freed slot");
        keys[gone] = fresh;
    }
    for key in &keys {
        assert_eq!(key.me().await["status"], "active");
    }
}

async fn concurrent_key_creation_makes_exactly_one_key(ctx: &Ctx) {
    let server = serve_unlimited(ctx).await;
    key_creation_race(ctx, &[&server]).await;
}

async fn concurrent_revocation_of_both_keys_leaves_exactly_one(ctx: &Ctx) {
    let server = serve_unlimited(ctx).await;
    revocation_race(ctx, &[&server]).await;
}

async fn concurrent_key_creation_across_two_processes_makes_exactly_one_key(ctx: &Ctx) {
    let (a, b) = tokio::join!(serve_unlimited(ctx), serve_unlimited(ctx));
    key_creation_race(ctx, &[&a, &b]).await;
}

async fn concurrent_revocation_across_two_processes_leaves_exactly_one(ctx: &Ctx) {
    let (a, b) = tokio::join!(serve_unlimited(ctx), serve_unlimited(ctx));
    revocation_race(ctx, &[&a, &b]).await;
}

/// Key rotation as the reference describes it, five times, alternating the process that does
/// it: after `DELETE /keys/{slot}` answers `204`, the old key gets `401 INVALID_KEY` on its
/// very next request, on this process and on a second one sharing the database — even though
/// both had just served it.
async fn a_revoked_key_fails_the_very_next_request_in_every_process(ctx: &Ctx) {
    let (a, b) = tokio::join!(serve_unlimited(ctx), serve_unlimited(ctx));
    let servers = [&a, &b];
    let mut current = new_partner(ctx, &a).await;
    let mut current_slot = 1;
    for round in 0..5 {
        let (here, there) = (servers[round % 2], servers[(round + 1) % 2]);
        // Both processes serve the key (whatever they might remember about it, they now do).
        for server in servers {
            assert_eq!(current.on(server).me().await["status"], "active");
        }
        let (slot, next) = issued(&current.on(here).post_empty("/v1/partner/keys").await, &current);
        assert_ne!(slot, current_slot, "a second key takes the other slot");
        assert_no_content(&next.on(here).delete(&format!("/api/v1/partner/keys/{current_slot}")).await);

        // The very next request with the old key, on either process and either prefix.
        assert_error(&current.on(there).get("/v1/partner/me").await, 401, "INVALID_KEY");
        assert_error(&current.on(here).get("/api/v1/partner/me").await, 401, "INVALID_KEY");
        assert_error(&current.on(here).get("/v1/partner/customers").await, 401, "INVALID_KEY");
        assert_error(&current.on(there).post_empty("/v1/partner/keys").await, 401, "INVALID_KEY");
        // The new key works everywhere.
        for server in servers {
            assert_eq!(next.on(server).me().await["status"], "active");
        }
        current = next;
        current_slot = slot;
    }
}
