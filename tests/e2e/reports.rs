//! Usage reports, dashboards and analytics through the real binary: a small fixture built
//! through the public API only (a distributor, its partners, their customers, runs moved through
//! the worker protocol), then the exact figures of each of the six report endpoints, another
//! distributor's view of none of it, and the `400 INVALID_FIELD` cases of their parameters.

use std::collections::BTreeMap;

use partnerd_e2e::{Server, str_field};
use reqwest::Method;
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime};

use crate::support::{
    Ctx, DistributorApi, PartnerApi, array, assert_error, assert_keys, assert_ok, assert_status, assert_timestamp,
    create_distributor, create_partner, create_worker, on_both_backends,
};

on_both_backends!(
    reports_dashboards_and_analytics_count_exactly_the_distributors_runs,
    report_parameters_are_checked_and_named,
);

/// No per-key rate limit of any kind: the scenarios send many requests per key. And no flush of
/// the API request counts while a scenario runs, so every `apiRequests` figure is exactly 0
/// (tests/e2e/request_counts.rs checks the counts themselves); and no invoicing pass (its first
/// comes an hour after start), so every spend is empty (tests/e2e/invoices.rs and the HTTP tier
/// check spend).
const NO_LIMITS: [&str; 10] = [
    "--partner-rate-limit",
    "0",
    "--distributor-rate-limit",
    "0",
    "--worker-rate-limit",
    "0",
    "--request-count-flush",
    "1h",
    "--invoice-interval",
    "1h",
];

const WORKER_HEADER: &str = "X-Worker-Key";
const PRODUCTS: [&str; 4] = ["cis-controls", "essential-eight", "iso-27001", "nist-csf"];

fn day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn month_of(d: Date) -> String {
    format!("{:04}-{:02}", d.year(), u8::from(d.month()))
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// `{"runs", "queued", "running", "completed", "failed"}` with `runs` their sum.
fn counts(queued: u64, running: u64, completed: u64, failed: u64) -> Value {
    json!({"runs": queued + running + completed + failed, "queued": queued, "running": running,
        "completed": completed, "failed": failed})
}

/// `value` with the fields of `extra` added (both objects).
fn with(mut value: Value, extra: &Value) -> Value {
    let object = value.as_object_mut().expect("an object");
    for (k, v) in extra.as_object().expect("an object") {
        object.insert(k.clone(), v.clone());
    }
    value
}

/// Every catalog product, zero unless named in `some`.
fn every_product(some: &[(&str, Value)], zero: &Value) -> Value {
    let map: serde_json::Map<String, Value> = PRODUCTS
        .iter()
        .map(|p| {
            let v = some.iter().find(|(id, _)| id == p).map_or_else(|| zero.clone(), |(_, v)| v.clone());
            ((*p).to_owned(), v)
        })
        .collect();
    Value::Object(map)
}

fn by_status(queued: u64, running: u64, completed: u64, failed: u64) -> Value {
    json!({"queued": queued, "running": running, "completed": completed, "failed": failed})
}

/// Queues one run of `product` for `customer` through the Partner API; returns its id.
async fn trigger(api: &PartnerApi, customer: &str, product: &str) -> String {
    let reply = api.post("/v1/partner/assessments", &json!({"customerId": customer, "product": product})).await;
    str_field(assert_status(&reply, 202), "id").to_owned()
}

/// Claims every queued run with `worker`'s key; returns their ids.
async fn claim_all(server: &Server, worker: &str) -> Vec<String> {
    let mut claimed = Vec::new();
    loop {
        let body = Some(json!({"leaseSeconds": 600}).to_string().into_bytes());
        let reply =
            server.endpoint().send(Method::POST, "/v1/worker/runs/claim", &[(WORKER_HEADER, worker)], body).await;
        if reply.status == 204 {
            return claimed;
        }
        claimed.push(str_field(&assert_ok(&reply)["run"], "id").to_owned());
    }
}

async fn end_run(server: &Server, worker: &str, run: &str, how: &str) {
    let body = match how {
        "complete" => json!({"score": 80, "critical": 0, "high": 1, "medium": 2, "low": 3}),
        _ => json!({"reason": "tenant consent missing"}),
    };
    let path = format!("/v1/worker/runs/{run}/{how}");
    let reply = server
        .endpoint()
        .send(Method::POST, &path, &[(WORKER_HEADER, worker)], Some(body.to_string().into_bytes()))
        .await;
    assert_ok(&reply);
}

/// `timeSeries` has one entry per day from `from` to `to`, in order, all zero except `busy`.
#[track_caller]
fn assert_time_series(series: &Value, from: Date, to: Date, busy: (Date, Value)) {
    let series = series.as_array().unwrap_or_else(|| panic!("timeSeries is not an array: {series}"));
    let days = (to - from).whole_days() + 1;
    assert_eq!(series.len() as i64, days, "one entry per day from {from} to {to}");
    for (n, entry) in series.iter().enumerate() {
        let date = from + Duration::days(n as i64);
        let expected = if date == busy.0 {
            with(json!({"date": day(date)}), &busy.1)
        } else {
            json!({"date": day(date), "runs": 0, "completed": 0, "failed": 0})
        };
        assert_eq!(entry, &expected, "timeSeries[{n}]");
    }
}

/// A distributor's fixture, built through the public API: partner `alpha` (professional, three
/// customers, two with runs), partner `beta` (starter, one customer with runs), partner
/// `gamma` (pending). Runs: alpha's `a0` e8 completed, nist-csf failed, e8 queued; `a1`
/// nist-csf running, e8 queued; beta's `b0` e8 completed, e8 queued.
struct Fixture {
    distributor: DistributorApi,
    other: DistributorApi,
    alpha: PartnerApi,
    beta: PartnerApi,
    alpha_id: String,
    beta_id: String,
    gamma_id: String,
    a: Vec<String>,
    b0: String,
    other_partner_id: String,
    other_customer: String,
    run_day: Date,
}

async fn fixture(ctx: &Ctx, server: &Server) -> Fixture {
    let created = create_distributor(ctx, "Reports Distribution", "ops@reports-dist.example").await;
    let distributor = DistributorApi::new(server, str_field(&created, "key"));
    let created = create_distributor(ctx, "Other Distribution", "ops@other-dist.example").await;
    let other = DistributorApi::new(server, str_field(&created, "key"));
    let provision = |company: &str, plan: &str| {
        json!({"email": "admin@msp.example", "company": company, "name": "Jane Smith", "plan": plan,
            "billing": {"currency": "AUD", "interval": "monthly"}})
    };
    let alpha_id = distributor.provision(&provision("Alpha MSP", "professional")).await;
    let beta_id = distributor.provision(&provision("Beta MSP", "starter")).await;
    let gamma_id = distributor.provision(&provision("Gamma MSP", "starter")).await;
    let alpha = PartnerApi::new(server, &distributor.activate(&alpha_id).await);
    let beta = PartnerApi::new(server, &distributor.activate(&beta_id).await);
    let other_partner_id = other.provision(&provision("Other MSP", "enterprise")).await;
    let other_partner = PartnerApi::new(server, &other.activate(&other_partner_id).await);
    // A direct partner (no distributor), whose runs count for nobody's reports but its own.
    let direct = create_partner(ctx, "Direct MSP", "ops@direct.example", "professional", None).await;
    let direct = PartnerApi::new(server, str_field(&direct, "key"));

    let a = alpha.bulk_customers(3, "Alpha").await;
    let b0 = beta.bulk_customers(1, "Beta").await.remove(0);
    let other_customer = other_partner.bulk_customers(1, "Other").await.remove(0);
    let direct_customer = direct.bulk_customers(1, "Direct").await.remove(0);

    // The runs that leave the queue: claimed now, then ended (or left running) by id.
    let worker = str_field(&create_worker(ctx, "reports-scanner").await, "key").to_owned();
    let mut fate = BTreeMap::new();
    let first_run = trigger(&alpha, &a[0], "essential-eight").await;
    fate.insert(first_run.clone(), "complete");
    fate.insert(trigger(&alpha, &a[0], "nist-csf").await, "fail");
    fate.insert(trigger(&alpha, &a[1], "nist-csf").await, "running");
    fate.insert(trigger(&beta, &b0, "essential-eight").await, "complete");
    let mut claimed = claim_all(server, &worker).await;
    claimed.sort();
    assert_eq!(claimed, fate.keys().cloned().collect::<Vec<_>>(), "the worker claims the four queued runs");
    for (run, how) in &fate {
        if *how != "running" {
            end_run(server, &worker, run, how).await;
        }
    }
    // The runs that stay queued, and those of other accounts.
    trigger(&alpha, &a[0], "essential-eight").await;
    trigger(&alpha, &a[1], "essential-eight").await;
    let last = trigger(&beta, &b0, "essential-eight").await;
    trigger(&other_partner, &other_customer, "essential-eight").await;
    trigger(&direct, &direct_customer, "nist-csf").await;

    // The fixture's first run (the map's first key is whichever id sorts first: maybe Beta's).
    let seen = alpha.get(&format!("/v1/partner/assessments/{first_run}")).await;
    let first = assert_timestamp(&assert_ok(&seen)["createdAt"]).date();
    let seen = beta.get(&format!("/v1/partner/assessments/{last}")).await;
    let run_day = assert_timestamp(&assert_ok(&seen)["createdAt"]).date();
    assert_eq!(first, run_day, "the fixture's runs were all created on one UTC day (not across midnight)");

    Fixture {
        distributor,
        other,
        alpha,
        beta,
        alpha_id,
        beta_id,
        gamma_id,
        a,
        b0,
        other_partner_id,
        other_customer,
        run_day,
    }
}

async fn reports_dashboards_and_analytics_count_exactly_the_distributors_runs(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let f = fixture(ctx, &server).await;
    let today = today();
    if today != f.run_day {
        eprintln!("skipped: the UTC day changed while the fixture was built");
        return;
    }
    let month = month_of(today);
    let zero = counts(0, 0, 0, 0);

    // GET /v1/partner/usage, explicit month and default month alike.
    let alpha_usage = json!({
        "month": month,
        "runs": {
            "total": 5,
            "used": 4,
            "limit": 200,
            "byProduct": every_product(&[("essential-eight", counts(2, 0, 1, 0)), ("nist-csf", counts(0, 1, 0, 1))], &zero),
            "byStatus": by_status(2, 1, 1, 1),
        },
        "customers": {"total": 3, "withRuns": 2},
        "apiRequests": 0,
    });
    assert_eq!(assert_ok(&f.alpha.get(&format!("/v1/partner/usage?month={month}")).await), &alpha_usage);
    assert_eq!(assert_ok(&f.alpha.get("/v1/partner/usage").await), &alpha_usage);
    let beta_usage = json!({
        "month": month,
        "runs": {
            "total": 2,
            "used": 2,
            "limit": 50,
            "byProduct": every_product(&[("essential-eight", counts(1, 0, 1, 0))], &zero),
            "byStatus": by_status(1, 0, 1, 0),
        },
        "customers": {"total": 1, "withRuns": 1},
        "apiRequests": 0,
    });
    assert_eq!(assert_ok(&f.beta.get("/v1/partner/usage").await), &beta_usage);
    // A month without runs: zeros, but the customers are counted now.
    let before = month_of(today - Duration::days(40));
    let empty = assert_ok(&f.alpha.get(&format!("/v1/partner/usage?month={before}")).await).clone();
    assert_eq!(empty["month"], before);
    assert_eq!(empty["runs"]["total"], 0);
    assert_eq!(empty["runs"]["byStatus"], by_status(0, 0, 0, 0));
    assert_eq!(empty["runs"]["byProduct"], every_product(&[], &zero));
    assert_eq!(empty["customers"]["withRuns"], 0);

    // GET /v1/partner/dashboard.
    let dash = assert_ok(&f.alpha.get("/v1/partner/dashboard").await).clone();
    assert_keys(&dash, &["generatedAt", "month", "customers", "runs", "apiRequestsToday"]);
    assert_timestamp(&dash["generatedAt"]);
    assert_eq!(dash["month"], month);
    assert_eq!(dash["apiRequestsToday"], 0);
    assert_eq!(dash["customers"], json!({"total": 3, "withRuns": 2}));
    assert_eq!(dash["runs"], json!({"today": 5, "thisMonth": 4, "limit": 200, "remaining": 196}));
    let dash = assert_ok(&f.beta.get("/v1/partner/dashboard").await).clone();
    assert_eq!(dash["customers"], json!({"total": 1, "withRuns": 1}));
    assert_eq!(dash["runs"], json!({"today": 2, "thisMonth": 2, "limit": 50, "remaining": 48}));

    // GET /v1/partner/analytics: the default window, then an explicit one.
    let from = today - Duration::days(29);
    let a = assert_ok(&f.alpha.get("/v1/partner/analytics").await).clone();
    assert_keys(&a, &["period", "totals", "byProduct", "byStatus", "timeSeries", "topCustomers"]);
    assert_eq!(a["period"], json!({"from": day(from), "to": day(today)}));
    // Nothing was invoiced: the invoicing task waits an hour (NO_LIMITS), so spend is empty.
    assert_eq!(a["totals"], with(counts(2, 1, 1, 1), &json!({"customers": 2, "spend": []})));
    let e8 = json!({"runs": 3, "completed": 1, "failed": 0});
    let nist = json!({"runs": 2, "completed": 0, "failed": 1});
    let none = json!({"runs": 0, "completed": 0, "failed": 0});
    assert_eq!(a["byProduct"], every_product(&[("essential-eight", e8.clone()), ("nist-csf", nist.clone())], &none));
    assert_eq!(a["byStatus"], by_status(2, 1, 1, 1));
    assert_time_series(&a["timeSeries"], from, today, (today, json!({"runs": 5, "completed": 1, "failed": 1})));
    assert_eq!(
        a["topCustomers"],
        json!([{"id": f.a[0], "name": "Alpha 0", "runs": 3}, {"id": f.a[1], "name": "Alpha 1", "runs": 2}])
    );
    let from = today - Duration::days(3);
    let query = format!("/v1/partner/analytics?from_date={}&to_date={}", day(from), day(today));
    let explicit = assert_ok(&f.alpha.get(&query).await).clone();
    assert_eq!(explicit["period"], json!({"from": day(from), "to": day(today)}));
    assert_time_series(&explicit["timeSeries"], from, today, (today, json!({"runs": 5, "completed": 1, "failed": 1})));
    assert_eq!((&explicit["totals"], &explicit["topCustomers"]), (&a["totals"], &a["topCustomers"]));
    // A window before the runs: nothing.
    let (from, to) = (today - Duration::days(10), today - Duration::days(1));
    let query = format!("/v1/partner/analytics?from_date={}&to_date={}", day(from), day(to));
    let past = assert_ok(&f.alpha.get(&query).await).clone();
    assert_eq!(past["totals"], with(zero.clone(), &json!({"customers": 0, "spend": []})));
    assert_eq!(past["topCustomers"], json!([]));
    assert_eq!(past["timeSeries"].as_array().map(Vec::len), Some(10));

    // GET /v1/distributor/reports/usage, by partner (the default), customer and product.
    let header = json!({
        "month": month,
        "totalPartners": 3,
        "activePartners": 2,
        "summary": with(counts(3, 1, 2, 1), &json!({"customers": 4, "apiRequests": 0, "ownApiRequests": 0})),
    });
    let partners = json!([
        with(
            json!({"id": f.alpha_id, "company": "Alpha MSP", "status": "active", "customers": 3, "apiRequests": 0}),
            &counts(2, 1, 1, 1)
        ),
        with(
            json!({"id": f.beta_id, "company": "Beta MSP", "status": "active", "customers": 1, "apiRequests": 0}),
            &counts(1, 0, 1, 0)
        ),
        with(
            json!({"id": f.gamma_id, "company": "Gamma MSP", "status": "pending", "customers": 0, "apiRequests": 0}),
            &zero
        ),
    ]);
    let by_partner = with(header.clone(), &json!({"groupBy": "partner", "partners": partners}));
    let reply = f.distributor.get(&format!("/v1/distributor/reports/usage?month={month}&group_by=partner")).await;
    assert_eq!(assert_ok(&reply), &by_partner);
    assert_eq!(assert_ok(&f.distributor.get("/v1/distributor/reports/usage").await), &by_partner);

    // Customers with runs: a0 (3), then a1 and b0 (2 each) by id.
    let mut tied = vec![
        with(json!({"id": f.a[1], "name": "Alpha 1", "partnerId": f.alpha_id}), &counts(1, 1, 0, 0)),
        with(json!({"id": f.b0, "name": "Beta 0", "partnerId": f.beta_id}), &counts(1, 0, 1, 0)),
    ];
    tied.sort_by(|x, y| str_field(x, "id").cmp(str_field(y, "id")));
    let mut customers =
        vec![with(json!({"id": f.a[0], "name": "Alpha 0", "partnerId": f.alpha_id}), &counts(1, 0, 1, 1))];
    customers.extend(tied);
    let reply = f.distributor.get("/v1/distributor/reports/usage?group_by=customer").await;
    assert_eq!(assert_ok(&reply), &with(header.clone(), &json!({"groupBy": "customer", "customers": customers})));

    let products = json!([
        with(json!({"id": "essential-eight"}), &counts(3, 0, 2, 0)),
        with(json!({"id": "nist-csf"}), &counts(0, 1, 0, 1)),
        with(json!({"id": "cis-controls"}), &zero),
        with(json!({"id": "iso-27001"}), &zero),
    ]);
    let reply = f.distributor.get(&format!("/v1/distributor/reports/usage?group_by=product&month={month}")).await;
    assert_eq!(assert_ok(&reply), &with(header.clone(), &json!({"groupBy": "product", "products": products})));

    // GET /v1/distributor/dashboard.
    let dash = assert_ok(&f.distributor.get("/v1/distributor/dashboard").await).clone();
    assert_keys(&dash, &["generatedAt", "month", "partners", "customers", "runs", "apiRequestsToday"]);
    assert_timestamp(&dash["generatedAt"]);
    assert_eq!(dash["month"], month);
    assert_eq!(dash["apiRequestsToday"], 0);
    assert_eq!(dash["partners"], json!({"total": 3, "active": 2, "pending": 1, "suspended": 0, "nearLimit": 0}));
    assert_eq!(dash["customers"], json!({"total": 4}));
    assert_eq!(dash["runs"], json!({"today": 7, "thisMonth": 6}));

    // GET /v1/distributor/analytics (default window).
    let from = today - Duration::days(29);
    let d = assert_ok(&f.distributor.get("/v1/distributor/analytics").await).clone();
    assert_keys(
        &d,
        &[
            "period",
            "totals",
            "byProduct",
            "byStatus",
            "timeSeries",
            "topCustomers",
            "topPartners",
            "topPartnersBySpend",
        ],
    );
    assert_eq!(d["topPartnersBySpend"], json!([]));
    assert_eq!(d["period"], json!({"from": day(from), "to": day(today)}));
    assert_eq!(d["totals"], with(counts(3, 1, 2, 1), &json!({"customers": 3, "spend": []})));
    let e8 = json!({"runs": 5, "completed": 2, "failed": 0});
    assert_eq!(d["byProduct"], every_product(&[("essential-eight", e8), ("nist-csf", nist)], &none));
    assert_eq!(d["byStatus"], by_status(3, 1, 2, 1));
    assert_time_series(&d["timeSeries"], from, today, (today, json!({"runs": 7, "completed": 2, "failed": 1})));
    let top: Vec<Value> = customers
        .iter()
        .map(|c| json!({"id": c["id"], "name": c["name"], "runs": c["runs"], "partnerId": c["partnerId"]}))
        .collect();
    assert_eq!(d["topCustomers"], json!(top));
    assert_eq!(
        d["topPartners"],
        json!([{"id": f.alpha_id, "company": "Alpha MSP", "runs": 5}, {"id": f.beta_id, "company": "Beta MSP", "runs": 2}]),
        "partners without runs are left out"
    );

    // The other distributor sees its own partner's one run, and none of the first one's.
    let o = assert_ok(&f.other.get("/v1/distributor/reports/usage?group_by=partner").await).clone();
    assert_eq!((&o["totalPartners"], &o["activePartners"]), (&json!(1), &json!(1)));
    assert_eq!(o["summary"], with(counts(1, 0, 0, 0), &json!({"customers": 1, "apiRequests": 0, "ownApiRequests": 0})));
    assert_eq!(array(&o, "partners").len(), 1);
    assert_eq!(o["partners"][0]["id"], f.other_partner_id);
    let o = assert_ok(&f.other.get("/v1/distributor/reports/usage?group_by=customer").await).clone();
    assert_eq!(
        o["customers"],
        json!([with(
            json!({"id": f.other_customer, "name": "Other 0", "partnerId": f.other_partner_id}),
            &counts(1, 0, 0, 0)
        )])
    );
    let o = assert_ok(&f.other.get("/v1/distributor/dashboard").await).clone();
    assert_eq!(o["partners"], json!({"total": 1, "active": 1, "pending": 0, "suspended": 0, "nearLimit": 0}));
    assert_eq!((&o["customers"], &o["runs"]), (&json!({"total": 1}), &json!({"today": 1, "thisMonth": 1})));
    let o = assert_ok(&f.other.get("/v1/distributor/analytics").await).clone();
    assert_eq!(o["totals"], with(counts(1, 0, 0, 0), &json!({"customers": 1, "spend": []})));
    assert_eq!(
        (&o["topPartners"], o["topCustomers"].as_array().map(Vec::len)),
        (&json!([{"id": f.other_partner_id, "company": "Other MSP", "runs": 1}]), Some(1))
    );
}

async fn report_parameters_are_checked_and_named(ctx: &Ctx) {
    let server = Server::serve_with(ctx.url(), &NO_LIMITS).await;
    let created = create_distributor(ctx, "Checked Distribution", "ops@checked-dist.example").await;
    let distributor = DistributorApi::new(&server, str_field(&created, "key"));
    let created = create_partner(ctx, "Checked MSP", "ops@checked.example", "starter", None).await;
    let partner = PartnerApi::new(&server, str_field(&created, "key"));

    #[track_caller]
    fn names(reply: &partnerd_e2e::Reply, field: &str, what: &str) {
        let message = assert_error(reply, 400, "INVALID_FIELD");
        assert!(message.contains(field), "{what}: the message names {field}: {message}");
    }

    for bad in ["2026-13", "2026-4", "2026-00", "April", "", "1969-12", "2026-04-01"] {
        names(&partner.get(&format!("/v1/partner/usage?month={bad}")).await, "month", bad);
        names(&distributor.get(&format!("/v1/distributor/reports/usage?month={bad}")).await, "month", bad);
    }
    for bad in ["Partner", "partners", "account", "", "PRODUCT"] {
        let reply = distributor.get(&format!("/v1/distributor/reports/usage?group_by={bad}")).await;
        names(&reply, "group_by", bad);
    }

    let today = today();
    let cases = [
        (format!("from_date=2026-02-30&to_date={}", day(today)), "from_date"),
        ("from_date=2026-4-1".to_owned(), "from_date"),
        ("from_date=yesterday".to_owned(), "from_date"),
        ("to_date=2026-4-1".to_owned(), "to_date"),
        ("to_date=2026-02-29".to_owned(), "to_date"),
        (format!("from_date={}&to_date={}", day(today), day(today - Duration::days(1))), "to_date"),
        (format!("from_date={}&to_date={}", day(today - Duration::days(366)), day(today)), "to_date"),
        ("from_date=2025-01-01&to_date=2026-01-02".to_owned(), "to_date"),
    ];
    for (query, field) in &cases {
        names(&partner.get(&format!("/v1/partner/analytics?{query}")).await, field, query);
        names(&distributor.get(&format!("/v1/distributor/analytics?{query}")).await, field, query);
    }

    // The edges that pass: a one-day window, and one of exactly 366 days.
    let one = format!("from_date={0}&to_date={0}", day(today));
    let a = assert_ok(&partner.get(&format!("/v1/partner/analytics?{one}")).await).clone();
    assert_eq!(a["timeSeries"].as_array().map(Vec::len), Some(1));
    let long = format!("from_date={}&to_date={}", day(today - Duration::days(365)), day(today));
    let d = assert_ok(&distributor.get(&format!("/v1/distributor/analytics?{long}")).await).clone();
    assert_eq!(d["timeSeries"].as_array().map(Vec::len), Some(366));
    assert_eq!(d["topPartners"], json!([]));
    // Only from_date: the window runs to today.
    let from = today - Duration::days(5);
    let a = assert_ok(&partner.get(&format!("/v1/partner/analytics?from_date={}", day(from))).await).clone();
    assert_eq!(a["period"], json!({"from": day(from), "to": day(today)}));
    // Only to_date: the 30 days ending then.
    let to = today - Duration::days(100);
    let a = assert_ok(&partner.get(&format!("/v1/partner/analytics?to_date={}", day(to))).await).clone();
    assert_eq!(a["period"], json!({"from": day(to - Duration::days(29)), "to": day(to)}));

    // Without a key, every report route asks for one.
    for path in [
        "/v1/partner/usage",
        "/v1/partner/dashboard",
        "/v1/partner/analytics",
        "/v1/distributor/reports/usage",
        "/v1/distributor/dashboard",
        "/v1/distributor/analytics",
    ] {
        assert_error(&server.get(path, &[]).await, 401, "MISSING_KEY");
    }
    // A partner key opens no distributor report, and the other way round.
    assert_error(
        &server.get_with("/v1/distributor/dashboard", "X-Partner-Key", &partner.key).await,
        401,
        "MISSING_KEY",
    );
    assert_error(
        &server.get_with("/v1/partner/dashboard", "X-Distributor-Key", &distributor.key).await,
        401,
        "MISSING_KEY",
    );
}
