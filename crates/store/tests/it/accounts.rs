use partnerd_domain::account::AccountStatus;
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::ports::{DistributorRepository, DistributorTotals, PartnerRepository, PartnerUsage};
use partnerd_domain::values::{Email, Month};

use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    accounts_round_trip,
    unknown_ids_are_none,
    distributor_status_changes_stick,
    totals_of_an_empty_distributor_are_counted_not_invented,
    migrating_twice_changes_nothing,
);

async fn accounts_round_trip(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let p = ctx.partner(Some(&d.id)).await;
    assert_eq!(DistributorRepository::get(&*ctx.store, &d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(PartnerRepository::get(&*ctx.store, &p.id).await.unwrap(), Some(p.clone()));
    let email = Email::parse("admin@acmemsp.com").unwrap();
    assert_eq!(PartnerRepository::find_by_email(&*ctx.store, &email).await.unwrap(), Some(p));
}

async fn unknown_ids_are_none(ctx: &Ctx) {
    let d = DistributorId::generate(ctx.ids());
    let p = PartnerId::generate(ctx.ids());
    assert_eq!(DistributorRepository::get(&*ctx.store, &d).await.unwrap(), None);
    assert_eq!(PartnerRepository::get(&*ctx.store, &p).await.unwrap(), None);
    assert!(!ctx.store.set_status(&d, AccountStatus::Suspended, NOW).await.unwrap());
}

async fn distributor_status_changes_stick(ctx: &Ctx) {
    let d = ctx.distributor().await;
    assert!(ctx.store.set_status(&d.id, AccountStatus::Suspended, NOW).await.unwrap());
    let stored = DistributorRepository::get(&*ctx.store, &d.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AccountStatus::Suspended);
}

async fn totals_of_an_empty_distributor_are_counted_not_invented(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let other = ctx.distributor().await;
    let month = Month::containing(NOW);
    assert_eq!(ctx.store.totals(&d.id, month).await.unwrap(), DistributorTotals::default());
    let p1 = ctx.partner(Some(&d.id)).await;
    ctx.partner(Some(&d.id)).await;
    ctx.partner(Some(&other.id)).await;
    ctx.partner(None).await;
    let totals = ctx.store.totals(&d.id, month).await.unwrap();
    assert_eq!(totals, DistributorTotals { partners_count: 2, runs_in_month: 0, customers_count: 0 });
    assert_eq!(ctx.store.usage(&p1.id, month).await.unwrap(), PartnerUsage::default());
}

async fn migrating_twice_changes_nothing(ctx: &Ctx) {
    let d = ctx.distributor().await;
    ctx.store.migrate().await.unwrap();
    assert_eq!(DistributorRepository::get(&*ctx.store, &d.id).await.unwrap(), Some(d));
}
