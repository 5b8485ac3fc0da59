use partnerd_domain::ports::SlotEvents;
use std::sync::Arc;

use partnerd_domain::billing::{Money, ProrationKind, ProrationLine, Subscription};
use partnerd_domain::catalog::PlanId;
use partnerd_domain::ids::{PartnerId, PlanChangeId};
use partnerd_domain::keys::{ApiKey, KeyKind, KeyOwner, KeySlot};
use partnerd_domain::ports::{
    Actor, KeyRepository, LedgerRepository, PartnerRepository, PlanChange, PlanChangeRepository,
    ReservePlanChangeError, RevokeKeyError,
};
use partnerd_domain::values::Currency;
use rust_decimal::dec;
use sea_orm::{ConnectionTrait, Database};
use time::Duration;

use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    plan_changes_reserve_at_most_ten_an_hour_under_concurrency,
    applying_a_change_updates_the_subscription_and_releasing_frees_a_place,
    ledger_items_are_recorded_once_in_minor_units,
    concurrent_revocations_never_leave_an_account_without_a_key,
    a_change_prorated_from_replaced_terms_or_during_another_change_conflicts,
);

fn change(ctx: &Ctx, partner: &PartnerId, from: &Subscription) -> PlanChange {
    let to = Subscription { plan: PlanId::parse("enterprise").unwrap(), ..from.clone() };
    let line = |kind, amount| ProrationLine {
        kind,
        description: "proration".into(),
        amount: Money::new(amount, Currency::Aud),
        period_start: NOW,
        period_end: from.period_end,
    };
    PlanChange {
        id: PlanChangeId::generate(ctx.ids()),
        partner: partner.clone(),
        actor: Actor::Partner(partner.clone()),
        from: from.clone(),
        to,
        lines: vec![line(ProrationKind::UnusedTime, dec!(-74.50)), line(ProrationKind::RemainingTime, dec!(224.5))],
        requested_at: NOW,
    }
}

async fn plan_changes_reserve_at_most_ten_an_hour_under_concurrency(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    // Concurrent changes from the same terms: exactly one is reserved, the rest conflict.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&ctx.store);
            let c = change(ctx, &p.id, &p.subscription);
            tokio::spawn(async move { store.reserve(&c, NOW - Duration::HOUR, 10).await.map(|()| c) })
        })
        .collect();
    let mut reserved = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => reserved.push(c),
            Err(ReservePlanChangeError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(reserved.len(), 1, "one change at a time per partner");
    // Applied one after another, ten fit in the hour and the eleventh is refused until the
    // first leaves the window.
    let mut terms = reserved[0].to.clone();
    ctx.store.apply(&reserved[0], NOW).await.unwrap();
    for i in 1..10 {
        let mut c = change(ctx, &p.id, &terms);
        c.to.plan = PlanId::parse(if i % 2 == 0 { "enterprise" } else { "starter" }).unwrap();
        c.requested_at = NOW + Duration::minutes(i);
        ctx.store.reserve(&c, c.requested_at - Duration::HOUR, 10).await.unwrap();
        ctx.store.apply(&c, c.requested_at).await.unwrap();
        terms = c.to.clone();
    }
    let mut eleventh = change(ctx, &p.id, &terms);
    eleventh.requested_at = NOW + Duration::minutes(30);
    match ctx.store.reserve(&eleventh, eleventh.requested_at - Duration::HOUR, 10).await {
        Err(ReservePlanChangeError::RateLimited { retry_at }) => assert_eq!(retry_at, NOW + Duration::HOUR),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    eleventh.requested_at = NOW + Duration::HOUR + Duration::SECOND;
    ctx.store.reserve(&eleventh, eleventh.requested_at - Duration::HOUR, 10).await.expect("the window has moved on");
}

async fn applying_a_change_updates_the_subscription_and_releasing_frees_a_place(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    for _ in 0..10 {
        let c = change(ctx, &p.id, &p.subscription);
        ctx.store.reserve(&c, NOW - Duration::HOUR, 10).await.unwrap();
        ctx.store.release(&c.id).await.unwrap();
    }
    let c = change(ctx, &p.id, &p.subscription);
    ctx.store.reserve(&c, NOW - Duration::HOUR, 10).await.expect("released changes do not count");
    ctx.store.apply(&c, NOW).await.unwrap();
    let stored = PartnerRepository::get(&*ctx.store, &p.id).await.unwrap().unwrap();
    assert_eq!(stored.subscription, c.to);
}

async fn ledger_items_are_recorded_once_in_minor_units(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let c = change(ctx, &p.id, &p.subscription);
    ctx.store.reserve(&c, NOW - Duration::HOUR, 10).await.unwrap();
    ctx.store.record_proration(&c, NOW).await.unwrap();
    ctx.store.record_proration(&c, NOW).await.unwrap();
    let raw = Database::connect(ctx.db.url()).await.unwrap();
    let sql = "SELECT amount_minor, currency FROM invoice_items ORDER BY line_no";
    let rows = raw.query_all_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
    let items: Vec<(i64, String)> =
        rows.iter().map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap())).collect();
    assert_eq!(items, [(-7450, "AUD".to_owned()), (22450, "AUD".to_owned())]);
    raw.close().await.unwrap();
}

async fn concurrent_revocations_never_leave_an_account_without_a_key(ctx: &Ctx) {
    for _ in 0..5 {
        let p = ctx.partner(None).await;
        let owner = KeyOwner::Partner(p.id.clone());
        for _ in 0..2 {
            ctx.store
                .insert_in_free_slot(
                    &owner,
                    &ApiKey::generate(KeyKind::Partner, &ctx.ids).hash(),
                    NOW,
                    &SlotEvents::none(),
                )
                .await
                .unwrap();
        }
        let tasks: Vec<_> = KeySlot::ALL
            .into_iter()
            .map(|slot| {
                let (store, owner) = (Arc::clone(&ctx.store), owner.clone());
                tokio::spawn(async move { store.revoke_slot(&owner, slot, NOW, None).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(match t.await.unwrap() {
                Ok(()) => "revoked",
                Err(RevokeKeyError::LastKey) => "last",
                Err(e) => panic!("{e}"),
            });
        }
        outcomes.sort();
        assert_eq!(outcomes, ["last", "revoked"]);
    }
    let p = ctx.partner(None).await;
    let owner = KeyOwner::Partner(p.id.clone());
    assert!(matches!(ctx.store.revoke_slot(&owner, KeySlot::FIRST, NOW, None).await, Err(RevokeKeyError::EmptySlot)));
}

async fn a_change_prorated_from_replaced_terms_or_during_another_change_conflicts(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let first = change(ctx, &p.id, &p.subscription);
    let racer = change(ctx, &p.id, &p.subscription);
    ctx.store.reserve(&first, NOW - Duration::HOUR, 10).await.unwrap();
    let in_flight = ctx.store.reserve(&racer, NOW - Duration::HOUR, 10).await;
    assert!(matches!(in_flight, Err(ReservePlanChangeError::Conflict)), "another change is in flight");
    ctx.store.apply(&first, NOW).await.unwrap();
    let stale = ctx.store.reserve(&racer, NOW - Duration::HOUR, 10).await;
    assert!(matches!(stale, Err(ReservePlanChangeError::Conflict)), "prorated from terms that were replaced");
    let current = change(ctx, &p.id, &first.to);
    ctx.store.reserve(&current, NOW - Duration::HOUR, 10).await.expect("prorated from the terms in force");
}
