//! `RequestCountRepository`: per-day API request counters add up exactly (across batches,
//! within one, under concurrent flushes), are cut at UTC midnight, and each report scope sums
//! only its own accounts; on both back-ends.

use std::collections::BTreeMap;
use std::sync::Arc;

use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::ports::{AccountRequests, CountedAccount, RequestCount, RequestCountRepository};
use partnerd_domain::report::{Period, ReportScope};
use partnerd_domain::values::Month;
use time::Date;
use time::macros::{date, datetime};

use crate::support::{Ctx, on_both_backends};

on_both_backends!(
    counts_add_up_across_batches_and_within_one,
    each_scope_sums_only_its_own_accounts,
    concurrent_flushes_of_the_same_counters_sum_exactly,
    months_and_days_are_cut_at_utc_midnight,
);

fn count(account: &CountedAccount, day: Date, requests: u64) -> RequestCount {
    RequestCount { account: account.clone(), day, requests }
}

fn partner(id: &PartnerId) -> CountedAccount {
    CountedAccount::Partner(id.clone())
}

fn distributor(id: &DistributorId) -> CountedAccount {
    CountedAccount::Distributor(id.clone())
}

/// The store's answer as a map, so the order of its lines does not matter.
async fn totals(ctx: &Ctx, scope: &ReportScope, period: &Period) -> BTreeMap<CountedAccount, u64> {
    let lines = ctx.store.totals(scope, period).await.unwrap();
    let map: BTreeMap<CountedAccount, u64> =
        lines.iter().map(|AccountRequests { account, requests }| (account.clone(), *requests)).collect();
    assert_eq!(map.len(), lines.len(), "one line per account: {lines:?}");
    map
}

fn month(raw: &str) -> Period {
    Period::month(Month::parse(raw).unwrap())
}

/// The table as stored: `(kind, id, day in unix ms, requests)`, in key order.
async fn rows(ctx: &Ctx) -> Vec<(String, String, i64, i64)> {
    use sea_orm::ConnectionTrait;
    let raw = sea_orm::Database::connect(ctx.db.url()).await.unwrap();
    let sql = "SELECT account_kind, account_id, day, requests FROM api_request_counts \
               ORDER BY account_kind, account_id, day";
    let found = raw.query_all_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
    let out = found
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
                r.try_get_by_index(3).unwrap(),
            )
        })
        .collect();
    raw.close().await.unwrap();
    out
}

async fn counts_add_up_across_batches_and_within_one(ctx: &Ctx) {
    let d = ctx.distributor().await.id;
    let p = ctx.partner(Some(&d)).await.id;
    let (april_3, april_4) = (date!(2026 - 04 - 03), date!(2026 - 04 - 04));
    // One batch naming a counter twice (summed), a zero (no row), and a new counter.
    let first = [count(&partner(&p), april_3, 2), count(&partner(&p), april_3, 3), count(&distributor(&d), april_3, 0)];
    ctx.store.add(&first).await.unwrap();
    ctx.store.add(&[count(&partner(&p), april_3, 5), count(&partner(&p), april_4, 1)]).await.unwrap();
    ctx.store.add(&[]).await.unwrap();

    let day_ms = |d: Date| (d - date!(1970 - 01 - 01)).whole_days() * 86_400_000;
    assert_eq!(
        rows(ctx).await,
        [
            ("partner".to_owned(), p.to_string(), day_ms(april_3), 10),
            ("partner".to_owned(), p.to_string(), day_ms(april_4), 1),
        ],
        "one row per account and day, the day stored as its midnight (UTC) in unix milliseconds"
    );
    let scope = ReportScope::Partner(p.clone());
    assert_eq!(totals(ctx, &scope, &month("2026-04")).await, BTreeMap::from([(partner(&p), 11)]));
    let day = Period::day_of(datetime!(2026-04-03 18:00 UTC));
    assert_eq!(totals(ctx, &scope, &day).await, BTreeMap::from([(partner(&p), 10)]));
    let distributor_scope = ReportScope::Distributor(d);
    assert_eq!(totals(ctx, &distributor_scope, &day).await, BTreeMap::from([(partner(&p), 10)]));
}

async fn each_scope_sums_only_its_own_accounts(ctx: &Ctx) {
    let (d1, d2) = (ctx.distributor().await.id, ctx.distributor().await.id);
    let (p1, p2) = (ctx.partner(Some(&d1)).await.id, ctx.partner(Some(&d1)).await.id);
    let idle = ctx.partner(Some(&d1)).await.id;
    let stranger = ctx.partner(Some(&d2)).await.id;
    let direct = ctx.partner(None).await.id;
    let day = date!(2026 - 04 - 03);
    let batch = [
        count(&distributor(&d1), day, 4),
        count(&partner(&p1), day, 7),
        count(&partner(&p2), day, 2),
        count(&distributor(&d2), day, 50),
        count(&partner(&stranger), day, 60),
        count(&partner(&direct), day, 70),
    ];
    ctx.store.add(&batch).await.unwrap();
    let april = month("2026-04");
    assert_eq!(
        totals(ctx, &ReportScope::Distributor(d1.clone()), &april).await,
        BTreeMap::from([(distributor(&d1), 4), (partner(&p1), 7), (partner(&p2), 2)]),
        "the distributor's own and its partners' (a partner without requests has no line)"
    );
    assert_eq!(
        totals(ctx, &ReportScope::Distributor(d2.clone()), &april).await,
        BTreeMap::from([(distributor(&d2), 50), (partner(&stranger), 60)])
    );
    assert_eq!(totals(ctx, &ReportScope::Partner(p1.clone()), &april).await, BTreeMap::from([(partner(&p1), 7)]));
    assert_eq!(
        totals(ctx, &ReportScope::Partner(direct.clone()), &april).await,
        BTreeMap::from([(partner(&direct), 70)])
    );
    assert!(totals(ctx, &ReportScope::Partner(idle), &april).await.is_empty());
}

async fn concurrent_flushes_of_the_same_counters_sum_exactly(ctx: &Ctx) {
    const FLUSHES: u64 = 40;
    let d = ctx.distributor().await.id;
    let (p1, p2) = (ctx.partner(Some(&d)).await.id, ctx.partner(Some(&d)).await.id);
    let day = date!(2026 - 04 - 03);
    let accounts = [partner(&p1), partner(&p2), distributor(&d)];
    let mut tasks = Vec::new();
    for n in 0..FLUSHES {
        let store = Arc::clone(&ctx.store);
        // The same three counters in every batch, listed in a different order each time.
        let mut batch: Vec<RequestCount> = accounts.iter().map(|a| count(a, day, n + 1)).collect();
        batch.rotate_left(n as usize % 3);
        if n % 2 == 1 {
            batch.reverse();
        }
        tasks.push(tokio::spawn(async move { store.add(&batch).await }));
    }
    for task in tasks {
        task.await.unwrap().expect("every concurrent flush commits (no deadlock, no busy database)");
    }
    let each = FLUSHES * (FLUSHES + 1) / 2;
    assert_eq!(
        totals(ctx, &ReportScope::Distributor(d.clone()), &month("2026-04")).await,
        BTreeMap::from([(partner(&p1), each), (partner(&p2), each), (distributor(&d), each)]),
        "1 + 2 + … + {FLUSHES} on every counter: no lost update"
    );
}

async fn months_and_days_are_cut_at_utc_midnight(ctx: &Ctx) {
    let p = ctx.partner(None).await.id;
    let a = partner(&p);
    let batch = [
        count(&a, date!(2026 - 03 - 31), 1),
        count(&a, date!(2026 - 04 - 01), 10),
        count(&a, date!(2026 - 04 - 30), 100),
        count(&a, date!(2026 - 05 - 01), 1_000),
        count(&a, date!(2024 - 02 - 29), 10_000),
        count(&a, date!(2024 - 03 - 01), 100_000),
    ];
    ctx.store.add(&batch).await.unwrap();
    let scope = ReportScope::Partner(p);
    let sum = |m: BTreeMap<CountedAccount, u64>| m.values().sum::<u64>();
    assert_eq!(sum(totals(ctx, &scope, &month("2026-03")).await), 1);
    assert_eq!(sum(totals(ctx, &scope, &month("2026-04")).await), 110);
    assert_eq!(sum(totals(ctx, &scope, &month("2026-05")).await), 1_000);
    assert_eq!(sum(totals(ctx, &scope, &month("2024-02")).await), 10_000, "29 February is in February");
    assert_eq!(sum(totals(ctx, &scope, &month("2026-06")).await), 0);
    let last_instant = Period::day_of(datetime!(2026-04-30 23:59:59.999 UTC));
    assert_eq!(sum(totals(ctx, &scope, &last_instant).await), 100);
    let first_instant = Period::day_of(datetime!(2026-05-01 00:00 UTC));
    assert_eq!(sum(totals(ctx, &scope, &first_instant).await), 1_000);
}
