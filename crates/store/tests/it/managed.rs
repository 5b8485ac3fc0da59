use partnerd_domain::account::AccountStatus;
use partnerd_domain::catalog::{PlanId, RunLimit};
use partnerd_domain::event::{Event, EventType};
use partnerd_domain::ids::{EventId, PartnerId};
use partnerd_domain::keys::{ApiKey, KeyKind, KeyOwner};
use partnerd_domain::ports::SlotEvents;
use partnerd_domain::ports::{
    CustomerRepository, KeyRepository, ManagedPartnerRepository, Page, PartnerTransition, RunBatch, RunRepository as _,
};
use partnerd_domain::values::Month;

use crate::runs::customer;
use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    a_distributor_sees_only_its_partners_with_customer_counts,
    suspension_revokes_keys_and_records_the_event_in_one_transaction,
    activation_issues_a_slot_one_key,
    suspension_records_key_revoked_for_each_slot_it_revokes,
    the_usage_report_counts_units_and_customers_per_partner,
);

fn event(ctx: &Ctx, kind: EventType, partner: &PartnerId) -> Event {
    Event::new(EventId::generate(ctx.ids()), kind, NOW).with("partnerId", partner.to_string())
}

async fn a_distributor_sees_only_its_partners_with_customer_counts(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let other = ctx.distributor().await;
    let p1 = ctx.partner(Some(&d.id)).await;
    let p2 = ctx.partner(Some(&d.id)).await;
    let theirs = ctx.partner(Some(&other.id)).await;
    let direct = ctx.partner(None).await;
    let customers = [customer(ctx, &p1.id, "A"), customer(ctx, &p1.id, "B"), customer(ctx, &theirs.id, "C")];
    CustomerRepository::insert(&*ctx.store, &customers, &[]).await.unwrap();
    let listed = ManagedPartnerRepository::list(&*ctx.store, &d.id, None, &Page::default()).await.unwrap();
    let counts: Vec<(PartnerId, u64)> =
        listed.items.iter().map(|l| (l.partner.id.clone(), l.customers_count)).collect();
    assert_eq!(counts.len(), 2);
    assert!(counts.contains(&(p1.id.clone(), 2)) && counts.contains(&(p2.id.clone(), 0)));
    for foreign in [&theirs.id, &direct.id] {
        assert_eq!(ManagedPartnerRepository::get(&*ctx.store, &d.id, foreign).await.unwrap(), None);
    }
    let all = Page::default();
    let pending = ManagedPartnerRepository::list(&*ctx.store, &d.id, Some(AccountStatus::Pending), &all).await.unwrap();
    assert!(pending.items.is_empty());
    let page = Page { limit: Some(1), starting_after: None };
    let first = ManagedPartnerRepository::list(&*ctx.store, &d.id, None, &page).await.unwrap();
    assert!(first.has_more && first.items.len() == 1);
}

async fn suspension_revokes_keys_and_records_the_event_in_one_transaction(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let p = ctx.partner(Some(&d.id)).await;
    let owner = KeyOwner::Partner(p.id.clone());
    let keys = [ApiKey::generate(KeyKind::Partner, &ctx.ids), ApiKey::generate(KeyKind::Partner, &ctx.ids)];
    for k in &keys {
        ctx.store.insert_in_free_slot(&owner, &k.hash(), NOW, &SlotEvents::none()).await.unwrap();
    }
    let transition = PartnerTransition {
        partner: p.id.clone(),
        from: AccountStatus::Active,
        to: AccountStatus::Suspended,
        at: NOW,
        reason: Some("unpaid".into()),
        revoke_keys: true,
        issue_key: None,
        key_events: Default::default(),
        event: event(ctx, EventType::PartnerSuspended, &p.id).to_distributor(Some(d.id.clone())),
    };
    assert!(ctx.store.transition(&transition).await.unwrap());
    for k in &keys {
        assert_eq!(ctx.store.find_principal(&k.hash()).await.unwrap(), None);
    }
    let stored = ManagedPartnerRepository::get(&*ctx.store, &d.id, &p.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Suspended);
    let recorded = ctx.outbox().await;
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].0.as_str(), recorded[0].1.clone()), ("partner.suspended", Some(d.id.to_string())));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&recorded[0].2).unwrap()["partnerId"], p.id.to_string());
    // A transition that fails leaves no event behind: the same event id cannot be recorded twice,
    // so the second transition rolls back whole, status included.
    let mut stale = transition.clone();
    stale.to = AccountStatus::Active;
    assert!(!ctx.store.transition(&stale).await.unwrap(), "decided from a status that is no longer the partner's");
    let mut again = stale.clone();
    again.from = AccountStatus::Suspended;
    assert!(ctx.store.transition(&again).await.is_err(), "the same event id cannot be recorded twice");
    let after = ManagedPartnerRepository::get(&*ctx.store, &d.id, &p.id).await.unwrap().unwrap();
    assert_eq!(after.status, AccountStatus::Suspended, "no change without its event");
    assert_eq!(ctx.outbox().await.len(), 1);
}

async fn activation_issues_a_slot_one_key(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let p = ctx.partner(Some(&d.id)).await;
    let key = ApiKey::generate(KeyKind::Partner, &ctx.ids);
    let transition = PartnerTransition {
        partner: p.id.clone(),
        from: AccountStatus::Active,
        to: AccountStatus::Active,
        at: NOW,
        reason: None,
        revoke_keys: false,
        issue_key: Some(key.hash()),
        key_events: Default::default(),
        event: event(ctx, EventType::PartnerActivated, &p.id),
    };
    assert!(ctx.store.transition(&transition).await.unwrap());
    let principal = ctx.store.find_principal(&key.hash()).await.unwrap().unwrap();
    assert_eq!(principal.slot, partnerd_domain::keys::KeySlot::FIRST);
}

/// `(type, to_partner, to_distributor, slot)` of a recorded event.
type Recorded = (String, Option<String>, Option<String>, Option<i64>);

async fn suspension_records_key_revoked_for_each_slot_it_revokes(ctx: &Ctx) {
    use partnerd_domain::keys::KeySlot;
    use partnerd_domain::ports::KeyEvents;
    let d = ctx.distributor().await;
    let suspend = |p: &PartnerId| PartnerTransition {
        partner: p.clone(),
        from: AccountStatus::Active,
        to: AccountStatus::Suspended,
        at: NOW,
        reason: None,
        revoke_keys: true,
        issue_key: None,
        key_events: KeyEvents {
            revoked: SlotEvents::new(|slot| {
                event(ctx, EventType::KeyRevoked, p).to_partner(p.clone()).with("slot", i64::from(slot.get()))
            }),
            created: None,
        },
        event: event(ctx, EventType::PartnerSuspended, p).to_distributor(Some(d.id.clone())),
    };
    // The events about `p`, oldest first.
    let recorded = async |p: &PartnerId| -> Vec<Recorded> {
        let to_distributor = ctx.outbox().await;
        let to_partner = ctx.partner_outbox().await;
        to_partner
            .into_iter()
            .zip(to_distributor)
            .filter_map(|((t, to_p, data), (_, to_d, _))| {
                let data = serde_json::from_str::<serde_json::Value>(&data).unwrap();
                (data["partnerId"] == p.to_string()).then(|| (t, to_p, to_d, data["slot"].as_i64()))
            })
            .collect()
    };

    // Both slots active: one key.revoked each, to the partner, before partner.suspended.
    let both = ctx.partner(Some(&d.id)).await;
    let owner = KeyOwner::Partner(both.id.clone());
    let keys = [ApiKey::generate(KeyKind::Partner, &ctx.ids), ApiKey::generate(KeyKind::Partner, &ctx.ids)];
    for k in &keys {
        ctx.store.insert_in_free_slot(&owner, &k.hash(), NOW, &SlotEvents::none()).await.unwrap();
    }
    assert!(ctx.store.transition(&suspend(&both.id)).await.unwrap());
    for k in &keys {
        assert_eq!(ctx.store.find_principal(&k.hash()).await.unwrap(), None);
    }
    let (p, dist) = (Some(both.id.to_string()), Some(d.id.to_string()));
    assert_eq!(
        recorded(&both.id).await,
        [
            ("key.revoked".to_owned(), p.clone(), None, Some(1)),
            ("key.revoked".to_owned(), p.clone(), None, Some(2)),
            ("partner.suspended".to_owned(), None, dist.clone(), None),
        ]
    );

    // Only slot 2 active: one key.revoked, naming slot 2.
    let one = ctx.partner(Some(&d.id)).await;
    let owner = KeyOwner::Partner(one.id.clone());
    for k in [ApiKey::generate(KeyKind::Partner, &ctx.ids), ApiKey::generate(KeyKind::Partner, &ctx.ids)] {
        ctx.store.insert_in_free_slot(&owner, &k.hash(), NOW, &SlotEvents::none()).await.unwrap();
    }
    ctx.store.revoke_slot(&owner, KeySlot::FIRST, NOW, None).await.unwrap();
    assert!(ctx.store.transition(&suspend(&one.id)).await.unwrap());
    let p = Some(one.id.to_string());
    assert_eq!(
        recorded(&one.id).await,
        [("key.revoked".to_owned(), p, None, Some(2)), ("partner.suspended".to_owned(), None, dist.clone(), None),]
    );

    // No active key at all: only partner.suspended is recorded.
    let none = ctx.partner(Some(&d.id)).await;
    assert!(ctx.store.transition(&suspend(&none.id)).await.unwrap());
    assert_eq!(recorded(&none.id).await, [("partner.suspended".to_owned(), None, dist, None)]);
}

async fn the_usage_report_counts_units_and_customers_per_partner(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let p1 = ctx.partner(Some(&d.id)).await;
    let p2 = ctx.partner(Some(&d.id)).await;
    let c = customer(ctx, &p1.id, "Contoso");
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), &[]).await.unwrap();
    let run = |i| partnerd_domain::run::Run {
        id: partnerd_domain::ids::RunId::generate(ctx.ids()),
        partner_id: p1.id.clone(),
        customer_id: c.id.clone(),
        product: partnerd_domain::catalog::ProductId::parse("essential-eight").unwrap(),
        maturity_target: partnerd_domain::run::MaturityTarget::new(2).unwrap(),
        status: partnerd_domain::run::RunStatus::Queued,
        month: Month::containing(NOW),
        created_at: NOW + time::Duration::seconds(i),
        started_at: None,
        completed_at: None,
        result: None,
        failure_reason: None,
    };
    let batch = RunBatch {
        partner: p1.id.clone(),
        plan: PlanId::parse("professional").unwrap(),
        limit: RunLimit::Limited(200),
        month: Month::containing(NOW),
        runs: (0..3).map(run).collect(),
        thresholds: vec![],
    };
    ctx.store.create(&batch).await.unwrap();
    let rows = ManagedPartnerRepository::usage(&*ctx.store, &d.id, Month::containing(NOW)).await.unwrap();
    let by_id: Vec<(PartnerId, u64, u64)> = rows.iter().map(|r| (r.partner_id.clone(), r.runs, r.customers)).collect();
    assert_eq!(by_id, [(p1.id.clone(), 3, 1), (p2.id.clone(), 0, 0)]);
    let other_month =
        ManagedPartnerRepository::usage(&*ctx.store, &d.id, Month::parse("2026-05").unwrap()).await.unwrap();
    assert!(other_month.iter().all(|r| r.runs == 0));
}
