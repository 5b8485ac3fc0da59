use partnerd_domain::event::EventType;
use std::sync::Arc;

use partnerd_domain::catalog::{PlanId, RunLimit};
use partnerd_domain::customer::Customer;
use partnerd_domain::ids::{CustomerId, PartnerId, RunId};
use partnerd_domain::ports::{CreateRunsError, CustomerRepository, Page, PartnerRepository, RunBatch, RunRepository};
use partnerd_domain::run::{MaturityTarget, Run, RunFilter, RunStatus};
use partnerd_domain::values::{DisplayName, Month, TenantId};
use time::Duration;

use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(
    runs_round_trip_with_the_customer_name,
    concurrent_single_triggers_never_overshoot_the_limit,
    concurrent_bulk_batches_queue_exactly_what_is_left,
    unlimited_plans_take_units_without_a_cap,
    a_changed_plan_or_an_inactive_partner_creates_nothing,
    runs_for_other_partners_customers_are_refused,
    listing_filters_pages_and_orders_newest_first,
    deleting_a_customer_removes_its_runs_but_keeps_the_units_used,
    usage_thresholds_are_announced_once_each_with_the_runs_that_reach_them,
);

pub fn customer(ctx: &Ctx, partner: &PartnerId, name: &str) -> Customer {
    Customer {
        id: CustomerId::generate(ctx.ids()),
        partner_id: partner.clone(),
        name: DisplayName::parse(name).unwrap(),
        tenant_id: TenantId::parse("d4f5a678-1234-5678-9abc-def012345678").unwrap(),
        email: None,
        receivers: vec![],
        questionnaire_recipients: vec![],
        created_at: NOW,
        updated_at: NOW,
    }
}

fn run(ctx: &Ctx, c: &Customer, product: &str, at_offset_secs: i64) -> Run {
    Run {
        id: RunId::generate(ctx.ids()),
        partner_id: c.partner_id.clone(),
        customer_id: c.id.clone(),
        product: partnerd_domain::catalog::ProductId::parse(product).unwrap(),
        maturity_target: MaturityTarget::new(3).unwrap(),
        status: RunStatus::Queued,
        month: Month::containing(NOW),
        created_at: NOW + Duration::seconds(at_offset_secs),
        started_at: None,
        completed_at: None,
        result: None,
        failure_reason: None,
    }
}

fn batch(partner: &PartnerId, limit: RunLimit, runs: Vec<Run>) -> RunBatch {
    RunBatch {
        partner: partner.clone(),
        plan: PlanId::parse("professional").unwrap(),
        limit,
        month: Month::containing(NOW),
        runs,
        thresholds: vec![],
    }
}

async fn setup(ctx: &Ctx) -> (PartnerId, Customer) {
    let p = ctx.partner(None).await;
    let c = customer(ctx, &p.id, "Contoso Ltd");
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c), &[]).await.unwrap();
    (p.id, c)
}

async fn units(ctx: &Ctx, partner: &PartnerId) -> u64 {
    PartnerRepository::usage(&*ctx.store, partner, Month::containing(NOW)).await.unwrap().runs_used
}

async fn runs_round_trip_with_the_customer_name(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let r = run(ctx, &c, "essential-eight", 0);
    let outcome = ctx.store.create(&batch(&p, RunLimit::Limited(5), vec![r.clone()])).await.unwrap();
    assert_eq!(outcome.created, std::slice::from_ref(&r.id));
    let view = RunRepository::get(&*ctx.store, &p, &r.id).await.unwrap().unwrap();
    assert_eq!(view.run, r);
    assert_eq!(view.customer_name, "Contoso Ltd");
    assert_eq!(units(ctx, &p).await, 1);
}

async fn concurrent_single_triggers_never_overshoot_the_limit(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let first: Vec<Run> = (0..9).map(|i| run(ctx, &c, "essential-eight", i)).collect();
    ctx.store.create(&batch(&p, RunLimit::Limited(10), first)).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&ctx.store);
            let b = batch(&p, RunLimit::Limited(10), vec![run(ctx, &c, "essential-eight", 100 + i)]);
            tokio::spawn(async move { store.create(&b).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        created += outcome.created.len();
        assert_eq!(outcome.created.len() + outcome.over_limit.len(), 1);
    }
    assert_eq!(created, 1, "exactly one of 50 concurrent triggers gets the last unit");
    assert_eq!(units(ctx, &p).await, 10);
}

async fn concurrent_bulk_batches_queue_exactly_what_is_left(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let first: Vec<Run> = (0..193).map(|i| run(ctx, &c, "essential-eight", i)).collect();
    ctx.store.create(&batch(&p, RunLimit::Limited(200), first)).await.unwrap();
    let tasks: Vec<_> = (0..5)
        .map(|b| {
            let store = Arc::clone(&ctx.store);
            let runs = (0..50).map(|i| run(ctx, &c, "essential-eight", 1000 + b * 100 + i)).collect();
            let req = batch(&p, RunLimit::Limited(200), runs);
            tokio::spawn(async move { store.create(&req).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap().unwrap().created.len();
    }
    assert_eq!(created, 7);
    assert_eq!(units(ctx, &p).await, 200);
    let all = RunRepository::list(&*ctx.store, &p, &RunFilter::default(), &Page::default()).await.unwrap();
    assert_eq!(all.items.len(), 200, "units and rows agree");
}

async fn unlimited_plans_take_units_without_a_cap(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let runs: Vec<Run> = (0..60).map(|i| run(ctx, &c, "essential-eight", i)).collect();
    let outcome = ctx.store.create(&batch(&p, RunLimit::Unlimited, runs)).await.unwrap();
    assert_eq!(outcome.created.len(), 60);
    assert_eq!(units(ctx, &p).await, 60);
}

async fn a_changed_plan_or_an_inactive_partner_creates_nothing(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let mut stale = batch(&p, RunLimit::Limited(5), vec![run(ctx, &c, "essential-eight", 0)]);
    stale.plan = PlanId::parse("starter").unwrap();
    assert!(matches!(ctx.store.create(&stale).await, Err(CreateRunsError::PlanChanged)));
    let gone = batch(&PartnerId::generate(ctx.ids()), RunLimit::Limited(5), vec![]);
    assert!(matches!(ctx.store.create(&gone).await, Err(CreateRunsError::PartnerGone)));
    assert_eq!(units(ctx, &p).await, 0);
}

async fn runs_for_other_partners_customers_are_refused(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let (other, theirs) = setup(ctx).await;
    let mine = run(ctx, &c, "essential-eight", 0);
    let mut foreign = run(ctx, &theirs, "essential-eight", 1);
    foreign.partner_id = p.clone();
    let outcome =
        ctx.store.create(&batch(&p, RunLimit::Limited(5), vec![foreign.clone(), mine.clone()])).await.unwrap();
    assert_eq!((outcome.created, outcome.customer_gone), (vec![mine.id.clone()], vec![foreign.id]));
    assert_eq!(units(ctx, &p).await, 1, "a refused item takes no unit");
    assert_eq!(
        RunRepository::get(&*ctx.store, &other, &mine.id).await.unwrap(),
        None,
        "runs are scoped to their partner"
    );
}

async fn listing_filters_pages_and_orders_newest_first(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let c2 = customer(ctx, &p, "Fabrikam Inc");
    CustomerRepository::insert(&*ctx.store, std::slice::from_ref(&c2), &[]).await.unwrap();
    let runs = vec![
        run(ctx, &c, "essential-eight", 0),
        run(ctx, &c2, "nist-csf", 1),
        run(ctx, &c, "nist-csf", 2),
        run(ctx, &c2, "essential-eight", 3),
    ];
    ctx.store.create(&batch(&p, RunLimit::Limited(50), runs.clone())).await.unwrap();
    let ids = |page: &partnerd_domain::ports::Paged<partnerd_domain::run::RunView>| {
        page.items.iter().map(|v| v.run.id.clone()).collect::<Vec<_>>()
    };
    let all = RunRepository::list(&*ctx.store, &p, &RunFilter::default(), &Page::default()).await.unwrap();
    assert_eq!(ids(&all), [&runs[3], &runs[2], &runs[1], &runs[0]].map(|r| r.id.clone()));
    let nist = RunFilter {
        product: Some(partnerd_domain::catalog::ProductId::parse("nist-csf").unwrap()),
        ..Default::default()
    };
    let filtered = RunRepository::list(&*ctx.store, &p, &nist, &Page::default()).await.unwrap();
    assert_eq!(ids(&filtered), [runs[2].id.clone(), runs[1].id.clone()]);
    let of_c2 = RunFilter { customer_id: Some(c2.id.clone()), ..Default::default() };
    assert_eq!(RunRepository::list(&*ctx.store, &p, &of_c2, &Page::default()).await.unwrap().items.len(), 2);
    let other_month = RunFilter { month: Some(Month::parse("2026-05").unwrap()), ..Default::default() };
    assert!(RunRepository::list(&*ctx.store, &p, &other_month, &Page::default()).await.unwrap().items.is_empty());
    let first = Page { limit: Some(3), starting_after: None };
    let page1 = RunRepository::list(&*ctx.store, &p, &RunFilter::default(), &first).await.unwrap();
    assert!(page1.has_more);
    let next = Page { limit: Some(3), starting_after: Some(runs[1].id.to_string()) };
    let page2 = RunRepository::list(&*ctx.store, &p, &RunFilter::default(), &next).await.unwrap();
    assert_eq!((ids(&page2), page2.has_more), (vec![runs[0].id.clone()], false));
    let recent = ctx.store.recent_for_customer(&p, &c.id, 1).await.unwrap();
    assert_eq!(recent.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), [runs[2].id.clone()]);
}

async fn deleting_a_customer_removes_its_runs_but_keeps_the_units_used(ctx: &Ctx) {
    let (p, c) = setup(ctx).await;
    let r = run(ctx, &c, "essential-eight", 0);
    ctx.store.create(&batch(&p, RunLimit::Limited(5), vec![r.clone()])).await.unwrap();
    let (other, _) = setup(ctx).await;
    assert!(
        !CustomerRepository::delete(&*ctx.store, &other, &c.id, &ctx.event(EventType::CustomerDeleted)).await.unwrap(),
        "another partner cannot delete it"
    );
    assert!(CustomerRepository::delete(&*ctx.store, &p, &c.id, &ctx.event(EventType::CustomerDeleted)).await.unwrap());
    assert_eq!(RunRepository::get(&*ctx.store, &p, &r.id).await.unwrap(), None);
    assert_eq!(units(ctx, &p).await, 1);
    assert_eq!(PartnerRepository::usage(&*ctx.store, &p, Month::containing(NOW)).await.unwrap().customers_count, 0);
}

async fn usage_thresholds_are_announced_once_each_with_the_runs_that_reach_them(ctx: &Ctx) {
    use partnerd_domain::ports::UsageThreshold;
    let (p, c) = setup(ctx).await;
    let thresholds = |ctx: &Ctx| {
        [(80u8, 8u32), (100, 10)]
            .map(|(percent, units)| UsageThreshold {
                percent,
                units,
                event: ctx
                    .event(EventType::UsageThresholdReached)
                    .to_partner(p.clone())
                    .with("threshold", i64::from(percent)),
            })
            .to_vec()
    };
    let mut b = batch(&p, RunLimit::Limited(10), (0..7).map(|i| run(ctx, &c, "essential-eight", i)).collect());
    b.thresholds = thresholds(ctx);
    ctx.store.create(&b).await.unwrap();
    assert!(ctx.partner_outbox().await.is_empty(), "7 of 10 reaches nothing");
    let mut b = batch(&p, RunLimit::Limited(10), (0..5).map(|i| run(ctx, &c, "essential-eight", 10 + i)).collect());
    b.thresholds = thresholds(ctx);
    let outcome = ctx.store.create(&b).await.unwrap();
    assert_eq!((outcome.created.len(), outcome.over_limit.len()), (3, 2));
    let mut b = batch(&p, RunLimit::Limited(10), vec![run(ctx, &c, "essential-eight", 20)]);
    b.thresholds = thresholds(ctx);
    ctx.store.create(&b).await.unwrap();
    let reached: Vec<i64> = ctx
        .partner_outbox()
        .await
        .iter()
        .map(|(_, _, data)| serde_json::from_str::<serde_json::Value>(data).unwrap()["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(reached, [80, 100], "both crossed by one batch, each announced once");
}
