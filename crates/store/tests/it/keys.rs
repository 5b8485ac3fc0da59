use partnerd_domain::ports::SlotEvents;
use std::sync::Arc;

use partnerd_domain::keys::{ApiKey, KeyKind, KeyOwner, KeySlot};
use partnerd_domain::ports::{KeyInsertError, KeyRepository};
use partnerd_domain::testing::SequentialIds;
use sea_orm::{ConnectionTrait, Database};

use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    keys_fill_the_lowest_free_slot_then_refuse,
    concurrent_inserts_never_exceed_two_active_keys,
    reissue_revokes_every_key_and_fills_slot_one,
    find_principal_sees_owner_status_and_ignores_revoked_keys,
    the_keys_table_holds_no_plaintext,
    key_events_commit_with_the_key_for_the_slot_it_took,
    reissue_records_key_revoked_for_each_active_slot_and_key_created_in_its_transaction,
);

fn key(kind: KeyKind, ids: &SequentialIds) -> ApiKey {
    ApiKey::generate(kind, ids)
}

async fn keys_fill_the_lowest_free_slot_then_refuse(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    let first =
        ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &SlotEvents::none()).await;
    assert_eq!(first.unwrap(), KeySlot::FIRST);
    let second =
        ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &SlotEvents::none()).await;
    assert_eq!(second.unwrap(), KeySlot::SECOND);
    let third =
        ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &SlotEvents::none()).await;
    assert!(matches!(third, Err(KeyInsertError::SlotsFull)));
}

async fn concurrent_inserts_never_exceed_two_active_keys(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    ctx.store
        .insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &SlotEvents::none())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, owner) = (Arc::clone(&ctx.store), owner.clone());
            let hash = key(KeyKind::Partner, &ctx.ids).hash();
            tokio::spawn(async move { store.insert_in_free_slot(&owner, &hash, NOW, &SlotEvents::none()).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(slot) => {
                assert_eq!(slot, KeySlot::SECOND);
                created += 1;
            }
            Err(KeyInsertError::SlotsFull) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created, 1, "exactly one of 20 concurrent inserts fills the free slot");
}

async fn reissue_revokes_every_key_and_fills_slot_one(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    let (a, b, fresh) =
        (key(KeyKind::Partner, &ctx.ids), key(KeyKind::Partner, &ctx.ids), key(KeyKind::Partner, &ctx.ids));
    ctx.store.insert_in_free_slot(&owner, &a.hash(), NOW, &SlotEvents::none()).await.unwrap();
    ctx.store.insert_in_free_slot(&owner, &b.hash(), NOW, &SlotEvents::none()).await.unwrap();
    ctx.store.reissue(&owner, &fresh.hash(), NOW, &Default::default()).await.unwrap();
    assert_eq!(ctx.store.find_principal(&a.hash()).await.unwrap(), None);
    assert_eq!(ctx.store.find_principal(&b.hash()).await.unwrap(), None);
    let principal = ctx.store.find_principal(&fresh.hash()).await.unwrap().unwrap();
    assert_eq!((principal.owner, principal.slot), (owner.clone(), KeySlot::FIRST));
    let next =
        ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &SlotEvents::none()).await;
    assert_eq!(next.unwrap(), KeySlot::SECOND);
}

async fn find_principal_sees_owner_status_and_ignores_revoked_keys(ctx: &Ctx) {
    use partnerd_domain::account::AccountStatus;
    use partnerd_domain::ports::DistributorRepository;
    let d = ctx.distributor().await;
    let owner = KeyOwner::Distributor(d.id.clone());
    let k = key(KeyKind::Distributor, &ctx.ids);
    ctx.store.insert_in_free_slot(&owner, &k.hash(), NOW, &SlotEvents::none()).await.unwrap();
    let found = ctx.store.find_principal(&k.hash()).await.unwrap().unwrap();
    assert_eq!((found.owner.clone(), found.owner_status), (owner.clone(), AccountStatus::Active));
    assert_eq!(found.stored_hash, k.hash());
    ctx.store.set_status(&d.id, AccountStatus::Suspended, NOW).await.unwrap();
    let found = ctx.store.find_principal(&k.hash()).await.unwrap().unwrap();
    assert_eq!(found.owner_status, AccountStatus::Suspended);
    let unknown = key(KeyKind::Distributor, &ctx.ids);
    assert_eq!(ctx.store.find_principal(&unknown.hash()).await.unwrap(), None);
}

async fn the_keys_table_holds_no_plaintext(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    let secret = key(KeyKind::Partner, &ctx.ids);
    ctx.store.insert_in_free_slot(&owner, &secret.hash(), NOW, &SlotEvents::none()).await.unwrap();
    let raw = Database::connect(ctx.db.url()).await.unwrap();
    let sql = "SELECT key_hash, owner_kind, owner_id FROM api_keys";
    let rows = raw.query_all_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
    let columns: Vec<Vec<String>> =
        rows.iter().map(|r| (0..3).map(|i| r.try_get_by_index::<String>(i).unwrap()).collect()).collect();
    let body = secret.reveal().trim_start_matches("pk_live_");
    assert_eq!(columns, [vec![secret.hash().as_str().to_owned(), "partner".to_owned(), p.id.to_string()]]);
    assert!(columns.iter().flatten().all(|c| !c.contains(body)), "a key's body was stored");
    raw.close().await.unwrap();
}

async fn key_events_commit_with_the_key_for_the_slot_it_took(ctx: &Ctx) {
    use partnerd_domain::event::{Event, EventType};
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    let events = |ctx: &Ctx| {
        SlotEvents::new(|slot| {
            ctx.event(EventType::KeyCreated).to_partner(p.id.clone()).with("slot", i64::from(slot.get()))
        })
    };
    ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &events(ctx)).await.unwrap();
    ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &events(ctx)).await.unwrap();
    let full = ctx.store.insert_in_free_slot(&owner, &key(KeyKind::Partner, &ctx.ids).hash(), NOW, &events(ctx)).await;
    assert!(matches!(full, Err(KeyInsertError::SlotsFull)));
    let revoked: Event = ctx.event(EventType::KeyRevoked).to_partner(p.id.clone()).with("slot", 2);
    ctx.store.revoke_slot(&owner, KeySlot::SECOND, NOW, Some(revoked.clone())).await.unwrap();
    let refused = ctx.store.revoke_slot(&owner, KeySlot::FIRST, NOW, Some(ctx.event(EventType::KeyRevoked))).await;
    assert!(matches!(refused, Err(partnerd_domain::ports::RevokeKeyError::LastKey)));
    let outbox = ctx.partner_outbox().await;
    let slots: Vec<(String, i64)> = outbox
        .iter()
        .map(|(t, _, data)| {
            (t.clone(), serde_json::from_str::<serde_json::Value>(data).unwrap()["slot"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        slots,
        [("key.created".to_owned(), 1), ("key.created".to_owned(), 2), ("key.revoked".to_owned(), 2)],
        "one event per key that was stored or revoked, naming its slot; refusals record nothing"
    );
}

/// `(type, to_partner, slot)` of each event in the outbox after the first `skip`, oldest first;
/// each must name `partner`.
async fn recorded_key_events(
    ctx: &Ctx,
    partner: &partnerd_domain::ids::PartnerId,
    skip: usize,
) -> Vec<(String, Option<String>, i64)> {
    let outbox = ctx.partner_outbox().await;
    outbox
        .into_iter()
        .skip(skip)
        .map(|(t, to, data)| {
            let data = serde_json::from_str::<serde_json::Value>(&data).unwrap();
            assert_eq!(data["partnerId"], partner.to_string());
            (t, to, data["slot"].as_i64().unwrap())
        })
        .collect()
}

async fn reissue_records_key_revoked_for_each_active_slot_and_key_created_in_its_transaction(ctx: &Ctx) {
    use partnerd_domain::event::EventType;
    use partnerd_domain::ports::KeyEvents;
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    let key_event = |kind: EventType, slot: KeySlot| {
        ctx.event(kind).to_partner(p.id.clone()).with("partnerId", p.id.to_string()).with("slot", i64::from(slot.get()))
    };
    let events = || KeyEvents {
        revoked: SlotEvents::new(|slot| key_event(EventType::KeyRevoked, slot)),
        created: Some(key_event(EventType::KeyCreated, KeySlot::FIRST)),
    };
    let recorded = |skip: usize| recorded_key_events(ctx, &p.id, skip);
    let to = Some(p.id.to_string());
    let row = |t: &str, slot: i64| (t.to_owned(), to.clone(), slot);

    // Both slots active: both are revoked, and slot 1 gets the fresh key.
    let (a, b, fresh) =
        (key(KeyKind::Partner, &ctx.ids), key(KeyKind::Partner, &ctx.ids), key(KeyKind::Partner, &ctx.ids));
    ctx.store.insert_in_free_slot(&owner, &a.hash(), NOW, &SlotEvents::none()).await.unwrap();
    ctx.store.insert_in_free_slot(&owner, &b.hash(), NOW, &SlotEvents::none()).await.unwrap();
    let first = events();
    ctx.store.reissue(&owner, &fresh.hash(), NOW, &first).await.unwrap();
    assert_eq!(
        recorded(0).await,
        [row("key.revoked", 1), row("key.revoked", 2), row("key.created", 1)],
        "one key.revoked per active slot, then the new key"
    );

    // Only slot 1 active (the key just issued): one key.revoked, for slot 1.
    let again = key(KeyKind::Partner, &ctx.ids);
    ctx.store.reissue(&owner, &again.hash(), NOW, &events()).await.unwrap();
    assert_eq!(recorded(3).await, [row("key.revoked", 1), row("key.created", 1)], "only the slot that was active");
    assert_eq!(ctx.store.find_principal(&fresh.hash()).await.unwrap(), None);

    // Only slot 2 active: the event names slot 2, not the slot the new key takes.
    let second = key(KeyKind::Partner, &ctx.ids);
    assert_eq!(
        ctx.store.insert_in_free_slot(&owner, &second.hash(), NOW, &SlotEvents::none()).await.unwrap(),
        KeySlot::SECOND
    );
    ctx.store.revoke_slot(&owner, KeySlot::FIRST, NOW, None).await.unwrap();
    let third = key(KeyKind::Partner, &ctx.ids);
    ctx.store.reissue(&owner, &third.hash(), NOW, &events()).await.unwrap();
    assert_eq!(recorded(5).await, [row("key.revoked", 2), row("key.created", 1)]);

    // One transaction: when the key.created cannot be recorded (its id is already in the
    // outbox), the revocation, its event and the new key are all rolled back.
    let mut clash = events();
    clash.created = first.created.clone();
    let before = ctx.partner_outbox().await;
    let refused = key(KeyKind::Partner, &ctx.ids);
    assert!(ctx.store.reissue(&owner, &refused.hash(), NOW, &clash).await.is_err());
    assert_eq!(ctx.partner_outbox().await, before, "no key.revoked without the reissue");
    assert_eq!(ctx.store.find_principal(&refused.hash()).await.unwrap(), None);
    assert_eq!(ctx.store.find_principal(&third.hash()).await.unwrap().unwrap().slot, KeySlot::FIRST, "still active");
}
