use std::sync::Arc;

use partnerd_domain::billing::{Money, ProrationKind, ProrationLine, Subscription};
use partnerd_domain::catalog::{Catalog, PlanId};
use partnerd_domain::ids::{InvoiceId, PlanChangeId};
use partnerd_domain::invoice::{InvoiceAccount, InvoiceLineKind};
use partnerd_domain::ports::{
    Actor, InvoiceRepository, LedgerRepository, Page, PartnerRepository, PlanChange, PlanChangeRepository,
};
use partnerd_domain::services::InvoiceService;
use partnerd_domain::testing::SequentialIds;
use partnerd_domain::values::Currency;
use partnerd_store::{DbConfig, Store};
use rust_decimal::{Decimal, dec};
use sea_orm::{ConnectionTrait, Database};
use time::{Duration, OffsetDateTime};

use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    concurrent_issuers_on_two_connections_issue_one_invoice_and_renew_once,
    a_change_after_the_first_invoice_moves_the_paid_until_date,
    only_applied_items_are_invoiced_and_each_exactly_once,
    distributor_invoices_cover_each_partner_invoice_once_less_the_discount,
    invoices_are_listed_newest_first_and_scoped_to_their_account,
    spend_adds_up_the_invoices_issued_in_the_window,
);

/// The end of the test partner's first period (professional, quarterly, AUD, from `NOW`).
const FIRST_END: OffsetDateTime = time::macros::datetime!(2026-07-03 10:00 UTC);

fn service(store: Arc<Store>, ids: Arc<SequentialIds>) -> InvoiceService {
    InvoiceService::new(store, Arc::new(Catalog::default()), ids)
}

/// A plan change to `plan` with one AUD line of `amount`, ending `reserved`, `applied` or `released`.
async fn change(ctx: &Ctx, from: &Subscription, plan: &str, amount: Decimal, end: &str) -> Subscription {
    let partner = partner_of(ctx).await;
    let to = Subscription { plan: PlanId::parse(plan).unwrap(), ..from.clone() };
    let c = PlanChange {
        id: PlanChangeId::generate(ctx.ids()),
        partner: partner.clone(),
        actor: Actor::Partner(partner),
        from: from.clone(),
        to: to.clone(),
        lines: vec![ProrationLine {
            kind: ProrationKind::RemainingTime,
            description: format!("{end} change"),
            amount: Money::new(amount, Currency::Aud),
            period_start: NOW,
            period_end: from.period_end,
        }],
        requested_at: NOW,
    };
    ctx.store.reserve(&c, NOW - Duration::HOUR, 10).await.unwrap();
    ctx.store.record_proration(&c, NOW).await.unwrap();
    match end {
        "applied" => {
            ctx.store.apply(&c, NOW).await.unwrap();
            to
        }
        "released" => {
            ctx.store.release(&c.id).await.unwrap();
            from.clone()
        }
        _ => from.clone(),
    }
}

async fn partner_of(ctx: &Ctx) -> partnerd_domain::ids::PartnerId {
    let raw = Database::connect(ctx.db.url()).await.unwrap();
    let sql = "SELECT id FROM partners ORDER BY id LIMIT 1";
    let row = raw.query_one_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
    let id: String = row.unwrap().try_get_by_index(0).unwrap();
    raw.close().await.unwrap();
    partnerd_domain::ids::PartnerId::parse(&id).unwrap()
}

/// `(kind, amount_minor, invoiced)` of every ledger item, in order of amount.
async fn items(ctx: &Ctx) -> Vec<(String, i64, Option<String>)> {
    let raw = Database::connect(ctx.db.url()).await.unwrap();
    let sql = "SELECT description, amount_minor, invoice_id FROM invoice_items ORDER BY amount_minor";
    let rows = raw.query_all_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
    let out = rows
        .iter()
        .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
        .collect();
    raw.close().await.unwrap();
    out
}

/// Four issuers at `at`, two on each of two connection pools (as two processes would be); the
/// partner invoices they issued between them.
async fn race_issuers(ctx: &Ctx, other: &Arc<Store>, at: OffsetDateTime, round: usize) -> u64 {
    let tasks: Vec<_> = [ctx.store.clone(), other.clone(), ctx.store.clone(), other.clone()]
        .into_iter()
        .enumerate()
        .map(|(i, store)| {
            // Distinct invoice ids per issuer, as separate processes would draw.
            let ids = Arc::new(SequentialIds::default());
            for _ in 0..(round * 4 + i) * 1000 {
                partnerd_domain::ports::IdGenerator::id_body(&*ids);
            }
            tokio::spawn(async move { service(store, ids).issue_due(at).await.unwrap() })
        })
        .collect();
    let mut issued = 0;
    for t in tasks {
        issued += t.await.unwrap().partner_invoices;
    }
    issued
}

async fn concurrent_issuers_on_two_connections_issue_one_invoice_and_renew_once(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let other = Arc::new(Store::open(&DbConfig::new(ctx.db.url())).await.unwrap());
    let account = InvoiceAccount::Partner(p.id.clone());
    // The first period is invoiced as soon as the partner is active.
    assert_eq!(race_issuers(ctx, &other, NOW, 0).await, 1, "one issuer wins the first invoice");
    let restart = service(ctx.store.clone(), Arc::new(SequentialIds::default()));
    assert_eq!(
        restart.issue_due(FIRST_END - Duration::SECOND).await.unwrap().partner_invoices,
        0,
        "paid until the end"
    );
    // The renewal at the period's end, raced the same way.
    assert_eq!(race_issuers(ctx, &other, FIRST_END, 1).await, 1, "one issuer wins the renewal");
    assert_eq!(restart.issue_due(FIRST_END + Duration::MINUTE).await.unwrap().partner_invoices, 0);
    let invoices = ctx.store.list(&account, &Page::default()).await.unwrap().items;
    let periods: Vec<_> = invoices.iter().map(|i| (i.period_start, i.period_end)).collect();
    assert_eq!(periods, [(FIRST_END, time::macros::datetime!(2026-10-03 10:00 UTC)), (NOW, FIRST_END)], "newest first");
    for inv in &invoices {
        assert_eq!([inv.subtotal, inv.total].map(|m| m.to_decimal_string()), ["1279.65", "1279.65"]);
        assert_eq!(inv.lines.len(), 1);
    }
    let renewed = PartnerRepository::get(&*ctx.store, &p.id).await.unwrap().unwrap().subscription;
    assert_eq!((renewed.period_start, renewed.period_end), periods[0], "the period moved on");
}

/// A change that starts a new period (here: to monthly) is paid for by its proration: the
/// invoicing that follows does not charge that period again, and the next invoice comes when it
/// ends, carrying the change's items.
async fn a_change_after_the_first_invoice_moves_the_paid_until_date(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let account = InvoiceAccount::Partner(p.id.clone());
    let invoices = service(ctx.store.clone(), Arc::new(SequentialIds::default()));
    assert_eq!(invoices.issue_due(NOW).await.unwrap().partner_invoices, 1);
    let monthly_start = NOW + Duration::days(10);
    let monthly = Subscription::starting(
        p.subscription.plan.clone(),
        partnerd_domain::values::BillingInterval::Monthly,
        Currency::Aud,
        monthly_start,
    );
    let c = PlanChange {
        id: PlanChangeId::generate(ctx.ids()),
        partner: p.id.clone(),
        actor: Actor::Partner(p.id.clone()),
        from: p.subscription.clone(),
        to: monthly.clone(),
        lines: vec![ProrationLine {
            kind: ProrationKind::RemainingTime,
            description: "the new monthly period".to_owned(),
            amount: Money::new(dec!(449.00), Currency::Aud),
            period_start: monthly.period_start,
            period_end: monthly.period_end,
        }],
        requested_at: monthly_start,
    };
    ctx.store.reserve(&c, monthly_start - Duration::HOUR, 10).await.unwrap();
    ctx.store.record_proration(&c, monthly_start).await.unwrap();
    ctx.store.apply(&c, monthly_start).await.unwrap();
    assert_eq!(invoices.issue_due(monthly.period_end - Duration::SECOND).await.unwrap().partner_invoices, 0);
    assert_eq!(invoices.issue_due(monthly.period_end).await.unwrap().partner_invoices, 1);
    let newest = &ctx.store.list(&account, &Page::default()).await.unwrap().items[0];
    assert_eq!(newest.period_start, monthly.period_end);
    let amounts: Vec<String> = newest.lines.iter().map(|l| l.amount.to_decimal_string()).collect();
    assert_eq!(amounts, ["449.00", "449.00"], "the next month's fee and the change's item");
}

async fn only_applied_items_are_invoiced_and_each_exactly_once(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let terms = change(ctx, &p.subscription, "starter", dec!(1.00), "released").await;
    let terms = change(ctx, &terms, "enterprise", dec!(10.00), "applied").await;
    let terms = change(ctx, &terms, "starter", dec!(100.00), "reserved").await;
    assert_eq!(terms.plan.as_str(), "enterprise");
    let ids = Arc::new(SequentialIds::default());
    for _ in 0..1000 {
        partnerd_domain::ports::IdGenerator::id_body(&*ids);
    }
    let invoices = service(ctx.store.clone(), ids.clone());
    invoices.issue_due(FIRST_END).await.unwrap();
    let account = InvoiceAccount::Partner(p.id.clone());
    let first = ctx.store.list(&account, &Page::default()).await.unwrap().items;
    let lines: Vec<(InvoiceLineKind, String)> =
        first[0].lines.iter().map(|l| (l.kind, l.amount.to_decimal_string())).collect();
    assert_eq!(
        lines,
        [(InvoiceLineKind::PlanFee, "3417.15".to_owned()), (InvoiceLineKind::RemainingTime, "10.00".to_owned())]
    );
    let by_item = items(ctx).await;
    assert_eq!(
        by_item,
        [
            ("released change".to_owned(), 100, None),
            ("applied change".to_owned(), 1000, Some(first[0].id.to_string())),
            ("reserved change".to_owned(), 10000, None),
        ]
    );
    // The next renewal charges the fee alone: the applied item is not taken twice.
    invoices.issue_due(time::macros::datetime!(2026-10-03 10:00 UTC)).await.unwrap();
    let all = ctx.store.list(&account, &Page::default()).await.unwrap().items;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].total.to_decimal_string(), "3417.15");
    assert_eq!(items(ctx).await, by_item);
}

async fn distributor_invoices_cover_each_partner_invoice_once_less_the_discount(ctx: &Ctx) {
    let d = ctx.distributor().await;
    ctx.partner(Some(&d.id)).await;
    ctx.partner(Some(&d.id)).await;
    ctx.partner(None).await;
    let ids = Arc::new(SequentialIds::default());
    for _ in 0..1000 {
        partnerd_domain::ports::IdGenerator::id_body(&*ids);
    }
    let invoices = service(ctx.store.clone(), ids);
    let account = InvoiceAccount::Distributor(d.id.clone());
    invoices.issue_due(FIRST_END).await.unwrap();
    assert!(ctx.store.list(&account, &Page::default()).await.unwrap().items.is_empty(), "July has not ended");
    let raw = Database::connect(ctx.db.url()).await.unwrap();
    let sql = format!("UPDATE distributors SET discount_percent = '12.5' WHERE id = '{}'", d.id);
    raw.execute_unprepared(&sql).await.unwrap();
    raw.close().await.unwrap();
    let august = time::macros::datetime!(2026-08-01 00:00 UTC);
    let report = invoices.issue_due(august).await.unwrap();
    assert_eq!(report.distributor_invoices, 1);
    assert_eq!(invoices.issue_due(august + Duration::MINUTE).await.unwrap().distributor_invoices, 0);
    let list = ctx.store.list(&account, &Page::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "issued once");
    let inv = &list[0];
    assert_eq!(inv.period_start, time::macros::datetime!(2026-07-01 00:00 UTC));
    // Two partner invoices of 1279.65 AUD; 12.5 % of 2559.30 = 319.9125 → 319.91.
    assert_eq!(
        [inv.subtotal, inv.discount, inv.total].map(|m| m.to_decimal_string()),
        ["2559.30", "319.91", "2239.39"]
    );
    assert_eq!(inv.lines.len(), 2);
    assert!(inv.lines.iter().all(|l| l.kind == InvoiceLineKind::PartnerInvoice));
}

async fn invoices_are_listed_newest_first_and_scoped_to_their_account(ctx: &Ctx) {
    let p = ctx.partner(None).await;
    let stranger = ctx.partner(None).await;
    let invoices = service(ctx.store.clone(), Arc::new(SequentialIds::default()));
    let mut at = FIRST_END;
    for _ in 0..3 {
        invoices.issue_due(at).await.unwrap();
        at = PartnerRepository::get(&*ctx.store, &p.id).await.unwrap().unwrap().subscription.period_end;
    }
    let account = InvoiceAccount::Partner(p.id.clone());
    let all = ctx.store.list(&account, &Page::default()).await.unwrap();
    assert_eq!(all.items.len(), 3);
    assert!(all.items.windows(2).all(|w| w[0].issued_at > w[1].issued_at), "newest first");
    let first = ctx.store.list(&account, &Page { limit: Some(2), starting_after: None }).await.unwrap();
    assert_eq!((first.items.len(), first.has_more), (2, true));
    let after = Some(first.items[1].id.to_string());
    let rest = ctx.store.list(&account, &Page { limit: Some(2), starting_after: after }).await.unwrap();
    assert_eq!((rest.items.len(), rest.has_more), (1, false));
    assert_eq!(rest.items[0].id, all.items[2].id);
    let id: &InvoiceId = &all.items[0].id;
    assert_eq!(InvoiceRepository::get(&*ctx.store, &account, id).await.unwrap().as_ref(), Some(&all.items[0]));
    let elsewhere = InvoiceAccount::Partner(stranger.id.clone());
    assert_eq!(
        InvoiceRepository::get(&*ctx.store, &elsewhere, id).await.unwrap(),
        None,
        "another account's invoice is not found"
    );
    let foreign_cursor = Page { limit: Some(2), starting_after: Some(id.to_string()) };
    assert_eq!(ctx.store.list(&elsewhere, &Page::default()).await.unwrap().items.len(), 3);
    assert!(
        ctx.store.list(&elsewhere, &foreign_cursor).await.unwrap().items.is_empty(),
        "a foreign cursor finds nothing"
    );
}

/// `ReportRepository::partner_spend` against a recount of the listed invoices: per partner and
/// currency, only invoices issued in the window, a distributor's partners only, most first.
async fn spend_adds_up_the_invoices_issued_in_the_window(ctx: &Ctx) {
    use partnerd_domain::ports::ReportRepository;
    use partnerd_domain::report::{Period, ReportScope};

    let d = ctx.distributor().await;
    let managed = [ctx.partner(Some(&d.id)).await, ctx.partner(Some(&d.id)).await];
    let direct = ctx.partner(None).await;
    let invoices = service(ctx.store.clone(), Arc::new(SequentialIds::default()));
    invoices.issue_due(NOW).await.unwrap();
    // Only the first managed partner renews in July (the other is suspended by then).
    let raw = Database::connect(ctx.db.url()).await.unwrap();
    let sql = format!("UPDATE partners SET status = 'suspended' WHERE id = '{}'", managed[1].id);
    raw.execute_unprepared(&sql).await.unwrap();
    raw.close().await.unwrap();
    invoices.issue_due(FIRST_END).await.unwrap();

    let day = |at: OffsetDateTime| partnerd_domain::report::wire_date(at.date());
    for (from, to) in [
        (NOW, FIRST_END),
        (NOW, NOW),
        (FIRST_END, FIRST_END),
        (FIRST_END + Duration::days(1), FIRST_END + Duration::days(30)),
    ] {
        let period = Period::from_query(Some(&day(from)), Some(&day(to)), to.date()).unwrap();
        let recount = |id: &partnerd_domain::ids::PartnerId| {
            let account = InvoiceAccount::Partner(id.clone());
            let store = ctx.store.clone();
            async move {
                let all = store.list(&account, &Page::default()).await.unwrap().items;
                all.iter().filter(|i| period.contains(i.issued_at)).map(|i| i.total.amount()).sum::<Decimal>()
            }
        };
        let mut expected = Vec::new();
        for p in &managed {
            let sum = recount(&p.id).await;
            if !sum.is_zero() {
                expected.push((p.id.clone(), sum));
            }
        }
        expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let got: Vec<_> = ctx
            .store
            .partner_spend(&ReportScope::Distributor(d.id.clone()), &period)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.spend.currency(), Currency::Aud);
                (r.id, r.spend.amount())
            })
            .collect();
        assert_eq!(got, expected, "{period:?}");
        let direct_rows = ctx.store.partner_spend(&ReportScope::Partner(direct.id.clone()), &period).await.unwrap();
        let direct_sum = recount(&direct.id).await;
        assert_eq!(direct_rows.iter().map(|r| r.spend.amount()).sum::<Decimal>(), direct_sum, "{period:?}");
        assert!(direct_rows.iter().all(|r| r.id == direct.id));
    }
}
