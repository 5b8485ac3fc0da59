//! `ReportRepository`: every figure equals a brute-force recount of the fixture it was computed
//! over, on both back-ends.

use std::collections::{BTreeMap, BTreeSet};

use partnerd_domain::account::AccountStatus;
use partnerd_domain::catalog::{PlanId, ProductId, RunLimit};
use partnerd_domain::customer::Customer;
use partnerd_domain::event::EventType;
use partnerd_domain::ids::{CustomerId, DistributorId, PartnerId, RunId, WorkerId};
use partnerd_domain::ports::{
    CustomerRepository, ManagedPartnerRepository, PartnerTransition, ReportRepository, RunBatch, RunQueue,
    RunRepository,
};
use partnerd_domain::report::{CustomerRuns, PartnerRuns, PartnerStatusCounts, Period, ReportScope, RunCounts};
use partnerd_domain::run::{MaturityTarget, Run, RunResult, RunStatus};
use partnerd_domain::values::Month;
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

use crate::runs::customer;
use crate::support::{Ctx, NOW, on_both_backends};

on_both_backends!(every_figure_equals_a_recount_of_the_fixture, an_account_without_runs_has_zero_figures);

const PRODUCTS: [&str; 3] = ["essential-eight", "nist-csf", "cis-controls"];
const STATUSES: [RunStatus; 4] = [RunStatus::Queued, RunStatus::Running, RunStatus::Completed, RunStatus::Failed];

/// One run of the fixture, as defined (not as read back).
#[derive(Debug, Clone)]
struct Spec {
    partner: usize,
    customer: usize,
    product: &'static str,
    at: OffsetDateTime,
    status: RunStatus,
}

struct Fixture {
    distributors: Vec<DistributorId>,
    /// Partner ids, their distributor (index), company, plan and final status.
    partners: Vec<(PartnerId, Option<usize>, String, &'static str, AccountStatus)>,
    /// Customer and its partner (index).
    customers: Vec<(Customer, usize)>,
    runs: Vec<Spec>,
}

/// Three partners of distributor 0 (one ends suspended, one pending), one of distributor 1 and
/// a direct one; each with customers, and runs on varied days (month and day edges included),
/// products and statuses.
async fn fixture(ctx: &Ctx) -> Fixture {
    let distributors = vec![ctx.distributor().await.id, ctx.distributor().await.id];
    let layout: [(Option<usize>, &str, &str, AccountStatus); 5] = [
        (Some(0), "Alpha", "professional", AccountStatus::Active),
        (Some(0), "Beta", "starter", AccountStatus::Suspended),
        (Some(0), "Gamma", "professional", AccountStatus::Pending),
        (Some(1), "Stranger", "professional", AccountStatus::Active),
        (None, "Direct", "starter", AccountStatus::Active),
    ];
    let mut partners = Vec::new();
    for (d, company, plan, status) in layout {
        let p = ctx.partner(d.map(|i| &distributors[i])).await;
        partners.push((p.id, d, company.to_owned(), plan, status));
    }
    // Company names and plans as the layout says.
    for (id, _, company, plan, _) in &partners {
        use sea_orm::ConnectionTrait;
        let raw = sea_orm::Database::connect(ctx.db.url()).await.unwrap();
        let sql = format!("UPDATE partners SET company = '{company}', plan = '{plan}' WHERE id = '{id}'");
        raw.execute_unprepared(&sql).await.unwrap();
        raw.close().await.unwrap();
    }
    let mut customers = Vec::new();
    for (i, per_partner) in [3, 2, 1, 2, 1].into_iter().enumerate() {
        for n in 0..per_partner {
            customers.push((customer(ctx, &partners[i].0, &format!("Customer {i}.{n}")), i));
        }
    }
    let all: Vec<Customer> = customers.iter().map(|(c, _)| c.clone()).collect();
    CustomerRepository::insert(&*ctx.store, &all, &[]).await.unwrap();

    // Deterministic variety: partner i's customers, three products, four statuses, over
    // 2026-03-27 .. 2026-04-04, at the first and last millisecond of days too.
    let customers_of = |p: usize| customers.iter().enumerate().filter(move |(_, (_, o))| *o == p).map(|(i, _)| i);
    let instants = [
        datetime!(2026-03-27 12:00 UTC),
        datetime!(2026-03-31 23:59:59.999 UTC),
        datetime!(2026-04-01 00:00 UTC),
        datetime!(2026-04-01 08:30 UTC),
        datetime!(2026-04-02 17:00 UTC),
        datetime!(2026-04-03 00:00 UTC),
        datetime!(2026-04-03 09:59 UTC),
        datetime!(2026-04-03 23:59:59.999 UTC),
        datetime!(2026-04-04 00:00 UTC),
    ];
    let mut runs = Vec::new();
    let mut n = 0usize;
    for p in 0..partners.len() {
        let mine: Vec<usize> = customers_of(p).collect();
        let count = [14, 7, 4, 6, 5][p];
        for k in 0..count {
            runs.push(Spec {
                partner: p,
                customer: mine[(k * 7 + p) % mine.len()],
                product: PRODUCTS[(k + p) % PRODUCTS.len()],
                at: instants[(k * 5 + p * 3) % instants.len()] + Duration::milliseconds(-(k as i64 % 2)),
                status: STATUSES[(n + p) % STATUSES.len()],
            });
            n += 1;
        }
    }
    // Nudging by -1 ms moves a midnight run into the day before: recount from the spec, not from
    // the instants above.
    create_runs(ctx, &partners, &customers, &runs).await;
    for (id, _, _, _, status) in &partners {
        if *status != AccountStatus::Active {
            let t = PartnerTransition {
                partner: id.clone(),
                from: AccountStatus::Active,
                to: *status,
                at: NOW,
                reason: None,
                revoke_keys: false,
                issue_key: None,
                key_events: Default::default(),
                event: ctx.event(EventType::PartnerSuspended),
            };
            assert!(ctx.store.transition(&t).await.unwrap());
        }
    }
    Fixture { distributors, partners, customers, runs }
}

/// Creates the runs, then moves them to their status through the worker protocol: every run
/// that must leave `queued` is created and claimed first, the ones that stay queued after.
async fn create_runs(
    ctx: &Ctx,
    partners: &[(PartnerId, Option<usize>, String, &'static str, AccountStatus)],
    customers: &[(Customer, usize)],
    specs: &[Spec],
) {
    let to_run = |s: &Spec| Run {
        id: RunId::generate(ctx.ids()),
        partner_id: partners[s.partner].0.clone(),
        customer_id: customers[s.customer].0.id.clone(),
        product: ProductId::parse(s.product).unwrap(),
        maturity_target: MaturityTarget::new(2).unwrap(),
        status: RunStatus::Queued,
        month: Month::containing(s.at),
        created_at: s.at,
        started_at: None,
        completed_at: None,
        result: None,
        failure_reason: None,
    };
    let worker = WorkerId::generate(ctx.ids());
    for stay_queued in [false, true] {
        let mut wanted: BTreeMap<String, RunStatus> = BTreeMap::new();
        let mut batches: BTreeMap<(String, Month), Vec<Run>> = BTreeMap::new();
        for s in specs.iter().filter(|s| (s.status == RunStatus::Queued) == stay_queued) {
            let run = to_run(s);
            wanted.insert(run.id.to_string(), s.status);
            batches.entry((run.partner_id.to_string(), run.month)).or_default().push(run);
        }
        for ((_, month), runs) in batches {
            let batch = RunBatch {
                partner: runs[0].partner_id.clone(),
                plan: PlanId::parse(partners.iter().find(|p| p.0 == runs[0].partner_id).unwrap().3).unwrap(),
                limit: RunLimit::Unlimited,
                month,
                thresholds: vec![],
                runs,
            };
            let n = batch.runs.len();
            assert_eq!(ctx.store.create(&batch).await.unwrap().created.len(), n);
        }
        if stay_queued {
            break;
        }
        let lease = NOW + Duration::hours(1);
        while let Some(claimed) = ctx.store.claim(&worker, &[], NOW, lease).await.unwrap() {
            let id = claimed.run.id.clone();
            match wanted[&id.to_string()] {
                RunStatus::Completed => {
                    let result = RunResult { score: 70, critical: 0, high: 1, medium: 0, low: 0, report_url: None };
                    ctx.store.complete(&worker, &id, &result, NOW).await.unwrap();
                }
                RunStatus::Failed => {
                    ctx.store.fail(&worker, &id, "scanner crashed", NOW).await.unwrap();
                }
                _ => {}
            }
        }
    }
}

impl Fixture {
    fn scope_has(&self, scope: &ReportScope, partner: usize) -> bool {
        match scope {
            ReportScope::Partner(id) => &self.partners[partner].0 == id,
            ReportScope::Distributor(d) => self.partners[partner].1.is_some_and(|i| &self.distributors[i] == d),
        }
    }

    fn runs_in<'a>(&'a self, scope: &'a ReportScope, period: &'a Period) -> impl Iterator<Item = &'a Spec> + 'a {
        self.runs.iter().filter(move |s| self.scope_has(scope, s.partner) && period.contains(s.at))
    }

    fn tallies(&self, scope: &ReportScope, period: &Period) -> BTreeSet<(Date, String, String, u64)> {
        let mut cells: BTreeMap<(Date, String, String), u64> = BTreeMap::new();
        for s in self.runs_in(scope, period) {
            *cells.entry((s.at.date(), s.product.to_owned(), s.status.to_string())).or_default() += 1;
        }
        cells.into_iter().map(|((d, p, s), n)| (d, p, s, n)).collect()
    }

    fn customer_runs(&self, scope: &ReportScope, period: &Period, limit: Option<u32>) -> Vec<CustomerRuns> {
        let mut counts: BTreeMap<usize, RunCounts> = BTreeMap::new();
        for s in self.runs_in(scope, period) {
            counts.entry(s.customer).or_default().add(s.status, 1);
        }
        let mut rows: Vec<CustomerRuns> = counts
            .into_iter()
            .map(|(c, runs)| {
                let (customer, partner) = &self.customers[c];
                CustomerRuns {
                    id: customer.id.clone(),
                    partner_id: self.partners[*partner].0.clone(),
                    name: customer.name.as_str().to_owned(),
                    runs,
                }
            })
            .collect();
        rows.sort_by(|a, b| b.runs.total().cmp(&a.runs.total()).then(a.id.to_string().cmp(&b.id.to_string())));
        rows.truncate(limit.map_or(usize::MAX, |l| l as usize));
        rows
    }

    fn partner_runs(&self, distributor: usize, period: &Period, limit: Option<u32>) -> Vec<PartnerRuns> {
        let mut rows: Vec<PartnerRuns> = (0..self.partners.len())
            .filter(|p| self.partners[*p].1 == Some(distributor))
            .map(|p| {
                let (id, _, company, _, status) = &self.partners[p];
                let mut runs = RunCounts::default();
                self.runs_in(&ReportScope::Partner(id.clone()), period).for_each(|s| runs.add(s.status, 1));
                PartnerRuns {
                    id: id.clone(),
                    company: company.clone(),
                    status: *status,
                    runs,
                    customers: self.customers.iter().filter(|(_, o)| *o == p).count() as u64,
                }
            })
            .collect();
        rows.sort_by(|a, b| b.runs.total().cmp(&a.runs.total()).then(a.id.to_string().cmp(&b.id.to_string())));
        rows.truncate(limit.map_or(usize::MAX, |l| l as usize));
        rows
    }

    /// Units used: runs created in the month that did not fail.
    fn units(&self, partner: usize, month: Month) -> u32 {
        let month = Period::month(month);
        self.runs
            .iter()
            .filter(|s| s.partner == partner && month.contains(s.at) && s.status != RunStatus::Failed)
            .count() as u32
    }

    fn statuses(&self, distributor: usize, month: Month, near: &[(PlanId, u32)]) -> PartnerStatusCounts {
        let mut counts = PartnerStatusCounts::default();
        for (p, (_, d, _, plan, status)) in self.partners.iter().enumerate() {
            if *d != Some(distributor) {
                continue;
            }
            match status {
                AccountStatus::Pending => counts.pending += 1,
                AccountStatus::Active => counts.active += 1,
                AccountStatus::Suspended => counts.suspended += 1,
            }
            if near.iter().any(|(np, units)| np.as_str() == *plan && self.units(p, month) >= *units) {
                counts.near_limit += 1;
            }
        }
        counts
    }
}

fn period(from: Date, to: Date) -> Period {
    Period::from_query(
        Some(&partnerd_domain::report::wire_date(from)),
        Some(&partnerd_domain::report::wire_date(to)),
        to,
    )
    .unwrap()
}

async fn every_figure_equals_a_recount_of_the_fixture(ctx: &Ctx) {
    let f = fixture(ctx).await;
    let april = Month::parse("2026-04").unwrap();
    let march = Month::parse("2026-03").unwrap();
    let periods = [
        Period::month(april),
        Period::month(march),
        period(date!(2026 - 03 - 31), date!(2026 - 04 - 03)),
        period(date!(2026 - 04 - 03), date!(2026 - 04 - 03)),
        period(date!(2026 - 01 - 01), date!(2026 - 12 - 31)),
    ];
    let mut scopes: Vec<ReportScope> = f.partners.iter().map(|p| ReportScope::Partner(p.0.clone())).collect();
    scopes.extend(f.distributors.iter().map(|d| ReportScope::Distributor(d.clone())));
    let mut seen = 0;
    for scope in &scopes {
        for p in &periods {
            let tallies = ctx.store.run_tallies(scope, p).await.unwrap();
            let got: BTreeSet<(Date, String, String, u64)> =
                tallies.iter().map(|t| (t.day, t.product.to_string(), t.status.to_string(), t.runs)).collect();
            assert_eq!(got.len(), tallies.len(), "one cell per day, product and status");
            assert_eq!(got, f.tallies(scope, p), "tallies of {scope:?} in {p:?}");
            seen += got.iter().map(|c| c.3).sum::<u64>();

            let distinct: BTreeSet<&CustomerId> = f.runs_in(scope, p).map(|s| &f.customers[s.customer].0.id).collect();
            assert_eq!(ctx.store.customers_with_runs(scope, p).await.unwrap(), distinct.len() as u64);
            for limit in [None, Some(2)] {
                let got = ctx.store.customer_runs(scope, p, limit).await.unwrap();
                assert_eq!(got, f.customer_runs(scope, p, limit), "customers of {scope:?} in {p:?} ({limit:?})");
            }
        }
    }
    assert!(seen > 0, "the fixture has runs in the periods looked at");
    for (i, d) in f.distributors.iter().enumerate() {
        for p in &periods {
            for limit in [None, Some(1)] {
                let got = ctx.store.partner_runs(d, p, limit).await.unwrap();
                assert_eq!(got, f.partner_runs(i, p, limit), "partners of distributor {i} in {p:?} ({limit:?})");
            }
        }
        for month in [april, march] {
            for near in
                [vec![], vec![(PlanId::parse("professional").unwrap(), 3), (PlanId::parse("starter").unwrap(), 2)]]
            {
                let got = ctx.store.partner_statuses(d, month, &near).await.unwrap();
                assert_eq!(got, f.statuses(i, month, &near), "statuses of distributor {i} in {month}");
            }
        }
    }
    // The fixture is varied enough for the comparisons to mean something.
    let all = f.statuses(0, april, &[(PlanId::parse("professional").unwrap(), 3)]);
    assert_eq!((all.active, all.suspended, all.pending), (1, 1, 1));
    assert!(all.near_limit >= 1);
    let scope = ReportScope::Distributor(f.distributors[0].clone());
    let statuses: BTreeSet<String> = f.runs_in(&scope, &Period::month(april)).map(|s| s.status.to_string()).collect();
    assert_eq!(statuses.len(), 4, "every status occurs: {statuses:?}");
}

async fn an_account_without_runs_has_zero_figures(ctx: &Ctx) {
    let d = ctx.distributor().await;
    let p = ctx.partner(None).await;
    let april = Period::month(Month::parse("2026-04").unwrap());
    for scope in [ReportScope::Partner(p.id.clone()), ReportScope::Distributor(d.id.clone())] {
        assert!(ctx.store.run_tallies(&scope, &april).await.unwrap().is_empty());
        assert_eq!(ctx.store.customers_with_runs(&scope, &april).await.unwrap(), 0);
        assert!(ctx.store.customer_runs(&scope, &april, Some(10)).await.unwrap().is_empty());
    }
    assert!(ctx.store.partner_runs(&d.id, &april, None).await.unwrap().is_empty());
    let month = Month::parse("2026-04").unwrap();
    let near = [(PlanId::parse("professional").unwrap(), 1)];
    assert_eq!(ctx.store.partner_statuses(&d.id, month, &near).await.unwrap(), PartnerStatusCounts::default());
}
