//! Usage reports, dashboards and analytics: `GET /v1/partner/{usage,dashboard,analytics}` and
//! `GET /v1/distributor/{reports/usage,dashboard,analytics}`.

use partnerd_domain::account::AccountStatus;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, NOW, TestApp, contoso, msp_alpha, new_msp};

const E8: &str = "essential-eight";
const NIST: &str = "nist-csf";

/// What the fixture made: the busy partner's id and key, its customers, and ids that belong
/// to other accounts.
struct Fixture {
    distributor_key: String,
    partner: String,
    partner_key: String,
    contoso: String,
    fabrikam: String,
    pending: String,
    strangers: Vec<String>,
}

impl Fixture {
    fn distributor<'a>(&self, app: &'a TestApp) -> Caller<'a> {
        app.as_distributor_key(&self.distributor_key)
    }

    fn partner<'a>(&self, app: &'a TestApp) -> Caller<'a> {
        app.as_partner_key(&self.partner_key)
    }
}

/// A distributor with an active partner and a pending one. The active one has two customers, a
/// nist-csf run on 1 April (completed) and four runs on 3 April: essential-eight for Contoso
/// (failed, running) and Fabrikam (queued), nist-csf for Contoso (queued). Plus another
/// distributor's partner and a direct partner, both with customers and runs.
async fn fixture(app: &TestApp) -> Fixture {
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (partner, partner_key) = distributor.provision_active(&new_msp()).await;
    let pending = distributor.provision(&msp_alpha()).await;
    let p = app.as_partner_key(&partner_key);
    let contoso = p.create_customer(&crate::support::contoso()).await;
    let fabrikam = p.create_customer(&crate::support::fabrikam()).await;
    app.clock.set(datetime!(2026-04-01 08:00 UTC));
    p.trigger(&contoso, NIST).await;
    app.clock.set(NOW);
    p.trigger(&contoso, E8).await;
    p.trigger(&contoso, E8).await;
    p.trigger(&fabrikam, E8).await;
    p.trigger(&contoso, NIST).await;
    // The worker takes the three oldest: completes the 1 April run, fails the next, keeps one.
    let (_, wk) = app.worker("scanner").await;
    let worker = app.as_worker(&wk);
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let reply = worker.post("/v1/worker/runs/claim", &json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        claimed.push(reply.body["run"]["id"].as_str().unwrap().to_owned());
    }
    let done = worker.post(&format!("/v1/worker/runs/{}/complete", claimed[0]), &json!({"score": 80})).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let failed = worker.post(&format!("/v1/worker/runs/{}/fail", claimed[1]), &json!({"reason": "timeout"})).await;
    assert_eq!(failed.status, 200, "{}", failed.body);

    // Strangers: another distributor's partner and a direct partner, with customers and runs.
    let (_, other_key) = app.distributor(AccountStatus::Active).await;
    let (foreign, foreign_key) = app.as_distributor(&other_key).provision_active(&new_msp()).await;
    let f = app.as_partner_key(&foreign_key);
    let fc = f.create_customer(&crate::support::contoso()).await;
    f.trigger(&fc, E8).await;
    let (direct, direct_key) = app.partner_on("professional").await;
    let d = app.as_partner(&direct_key);
    let dc = d.create_customer(&crate::support::fabrikam()).await;
    d.trigger(&dc, E8).await;
    Fixture {
        distributor_key: dk.reveal().to_owned(),
        partner,
        partner_key,
        contoso,
        fabrikam,
        pending,
        strangers: vec![foreign, fc, direct.id.to_string(), dc],
    }
}

fn assert_none_of(body: &Value, ids: &[String]) {
    let text = body.to_string();
    for id in ids {
        assert!(!text.contains(id.as_str()), "{id} belongs to another account: {text}");
    }
}

fn counts(runs: u64, queued: u64, running: u64, completed: u64, failed: u64) -> Value {
    json!({"runs": runs, "queued": queued, "running": running, "completed": completed, "failed": failed})
}

#[tokio::test]
async fn a_partners_usage_counts_its_own_runs_by_product_and_status() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let reply = f.partner(&app).get("/v1/partner/usage").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "month": "2026-04",
            "runs": {
                "total": 5,
                "used": 4,
                "limit": 200,
                "byProduct": {
                    "cis-controls": counts(0, 0, 0, 0, 0),
                    "essential-eight": counts(3, 1, 1, 0, 1),
                    "iso-27001": counts(0, 0, 0, 0, 0),
                    "nist-csf": counts(2, 1, 0, 1, 0),
                },
                "byStatus": {"queued": 2, "running": 1, "completed": 1, "failed": 1},
            },
            "customers": {"total": 2, "withRuns": 2},
            // Counted requests reach reports when the server flushes them; no flusher runs here.
            "apiRequests": 0,
        })
    );
    let march = f.partner(&app).get("/v1/partner/usage?month=2026-03").await.body;
    assert_eq!((march["runs"]["total"].clone(), march["runs"]["used"].clone()), (json!(0), json!(0)));
    let api = f.partner(&app).get("/api/v1/partner/usage").await;
    assert_eq!((api.status, api.body), (200, reply.body));
}

#[tokio::test]
async fn dashboards_are_live_snapshots_of_the_callers_own_data() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let partner = f.partner(&app).get("/v1/partner/dashboard").await;
    assert_eq!(partner.status, 200, "{}", partner.body);
    assert_eq!(
        partner.body,
        json!({
            "generatedAt": "2026-04-03T10:00:00Z",
            "month": "2026-04",
            "customers": {"total": 2, "withRuns": 2},
            "runs": {"today": 4, "thisMonth": 4, "limit": 200, "remaining": 196},
            "apiRequestsToday": 0,
        })
    );
    let distributor = f.distributor(&app).get("/v1/distributor/dashboard").await;
    assert_eq!(distributor.status, 200, "{}", distributor.body);
    assert_eq!(
        distributor.body,
        json!({
            "generatedAt": "2026-04-03T10:00:00Z",
            "month": "2026-04",
            "partners": {"total": 2, "active": 1, "pending": 1, "suspended": 0, "nearLimit": 0},
            "customers": {"total": 2},
            "runs": {"today": 4, "thisMonth": 4},
            "apiRequestsToday": 0,
        })
    );
}

#[tokio::test]
async fn a_partner_near_its_limit_is_counted_on_the_distributors_dashboard() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let mut starter = new_msp();
    starter["plan"] = json!("starter");
    let (_, key) = distributor.provision_active(&starter).await;
    let p = app.as_partner_key(&key);
    let c = p.create_customer(&contoso()).await;
    let near = |body: &Value| body["partners"]["nearLimit"].clone();
    for _ in 0..39 {
        p.trigger(&c, E8).await;
    }
    assert_eq!(near(&distributor.get("/v1/distributor/dashboard").await.body), 0, "39 of 50 is under 80 %");
    p.trigger(&c, E8).await;
    assert_eq!(near(&distributor.get("/v1/distributor/dashboard").await.body), 1, "40 of 50 is 80 %");
}

#[tokio::test]
async fn analytics_zero_fill_every_day_and_rank_customers() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let reply = f.partner(&app).get("/v1/partner/analytics?from_date=2026-03-31&to_date=2026-04-03").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let day = |date: &str, runs: u64, completed: u64, failed: u64| json!({"date": date, "runs": runs, "completed": completed, "failed": failed});
    let product =
        |runs: u64, completed: u64, failed: u64| json!({"runs": runs, "completed": completed, "failed": failed});
    assert_eq!(
        reply.body,
        json!({
            "period": {"from": "2026-03-31", "to": "2026-04-03"},
            "totals": {"runs": 5, "queued": 2, "running": 1, "completed": 1, "failed": 1, "customers": 2, "spend": []},
            "byProduct": {
                "cis-controls": product(0, 0, 0),
                "essential-eight": product(3, 0, 1),
                "iso-27001": product(0, 0, 0),
                "nist-csf": product(2, 1, 0),
            },
            "byStatus": {"queued": 2, "running": 1, "completed": 1, "failed": 1},
            "timeSeries": [
                day("2026-03-31", 0, 0, 0),
                day("2026-04-01", 1, 1, 0),
                day("2026-04-02", 0, 0, 0),
                day("2026-04-03", 4, 0, 1),
            ],
            "topCustomers": [
                {"id": f.contoso, "name": "Contoso Ltd", "runs": 4},
                {"id": f.fabrikam, "name": "Fabrikam Inc", "runs": 1},
            ],
        })
    );
    // The default window is the 30 days ending today.
    let default = f.partner(&app).get("/v1/partner/analytics").await.body;
    assert_eq!(default["period"], json!({"from": "2026-03-05", "to": "2026-04-03"}));
    assert_eq!(default["timeSeries"].as_array().unwrap().len(), 30);
    assert_eq!(default["totals"]["runs"], 5);
    assert!(default.get("topPartners").is_none(), "a partner has no partners");
}

#[tokio::test]
async fn distributor_analytics_rank_its_partners_and_their_customers_only() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let reply = f.distributor(&app).get("/v1/distributor/analytics?from_date=2026-04-01&to_date=2026-04-30").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["period"], json!({"from": "2026-04-01", "to": "2026-04-30"}));
    assert_eq!(body["timeSeries"].as_array().unwrap().len(), 30);
    assert_eq!(
        body["totals"],
        json!({"runs": 5, "queued": 2, "running": 1, "completed": 1, "failed": 1, "customers": 2, "spend": []})
    );
    assert_eq!(body["topPartners"], json!([{"id": f.partner, "company": "New MSP Pty Ltd", "runs": 5}]));
    assert_eq!(body["topPartnersBySpend"], json!([]), "nothing was invoiced");
    assert_eq!(
        body["topCustomers"],
        json!([
            {"id": f.contoso, "name": "Contoso Ltd", "runs": 4, "partnerId": f.partner},
            {"id": f.fabrikam, "name": "Fabrikam Inc", "runs": 1, "partnerId": f.partner},
        ])
    );
    assert_none_of(body, &f.strangers);
    assert!(!body.to_string().contains(&f.pending), "a partner without runs is no top partner");
}

#[tokio::test]
async fn the_distributor_usage_report_groups_by_partner_customer_or_product() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let d = f.distributor(&app);
    let summary = json!({"runs": 5, "queued": 2, "running": 1, "completed": 1, "failed": 1, "customers": 2,
        "apiRequests": 0, "ownApiRequests": 0});
    let by_partner = d.get("/v1/distributor/reports/usage").await;
    assert_eq!(by_partner.status, 200, "{}", by_partner.body);
    let row = |extra: Value, c: Value| {
        let mut row = extra;
        row.as_object_mut().unwrap().extend(c.as_object().unwrap().clone());
        row
    };
    assert_eq!(
        by_partner.body,
        json!({
            "month": "2026-04",
            "groupBy": "partner",
            "totalPartners": 2,
            "activePartners": 1,
            "summary": summary,
            "partners": [
                row(json!({"id": f.partner, "company": "New MSP Pty Ltd", "status": "active", "customers": 2, "apiRequests": 0}), counts(5, 2, 1, 1, 1)),
                row(json!({"id": f.pending, "company": "MSP Alpha", "status": "pending", "customers": 0, "apiRequests": 0}), counts(0, 0, 0, 0, 0)),
            ],
        })
    );
    let by_customer = d.get("/v1/distributor/reports/usage?group_by=customer&month=2026-04").await.body;
    assert_eq!(
        by_customer["customers"],
        json!([
            row(json!({"id": f.contoso, "name": "Contoso Ltd", "partnerId": f.partner}), counts(4, 1, 1, 1, 1)),
            row(json!({"id": f.fabrikam, "name": "Fabrikam Inc", "partnerId": f.partner}), counts(1, 1, 0, 0, 0)),
        ])
    );
    assert!(by_customer.get("partners").is_none() && by_customer.get("products").is_none());
    let by_product = d.get("/v1/distributor/reports/usage?group_by=product").await.body;
    assert_eq!(by_product["summary"], summary);
    let products: Vec<(String, u64)> = by_product["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p["runs"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        products,
        [("essential-eight".into(), 3), ("nist-csf".into(), 2), ("cis-controls".into(), 0), ("iso-27001".into(), 0)]
    );
    for body in [&by_partner.body, &by_customer, &by_product] {
        assert_none_of(body, &f.strangers);
    }
    let march = d.get("/v1/distributor/reports/usage?month=2026-03").await.body;
    assert_eq!(march["summary"]["runs"], 0);
}

#[tokio::test]
async fn bad_months_group_bys_and_dates_are_invalid_field_naming_the_field() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let (p, d) = (f.partner(&app), f.distributor(&app));
    for bad in ["2026-4", "2026-13", "April", "", "1969-12"] {
        p.get(&format!("/v1/partner/usage?month={bad}")).await.field_error("INVALID_FIELD", "month");
        d.get(&format!("/v1/distributor/reports/usage?month={bad}")).await.field_error("INVALID_FIELD", "month");
    }
    for bad in ["account", "Partner", "", "partners"] {
        let reply = d.get(&format!("/v1/distributor/reports/usage?group_by={bad}")).await;
        reply.field_error("INVALID_FIELD", "group_by");
    }
    let cases = [
        ("from_date=2026-02-30", "from_date"),
        ("from_date=2026-4-1", "from_date"),
        ("to_date=20260403", "to_date"),
        ("to_date=2026-04-31", "to_date"),
        ("from_date=2026-04-03&to_date=2026-04-02", "to_date"),
        ("from_date=2025-01-01&to_date=2026-01-02", "to_date"),
    ];
    for (query, field) in cases {
        p.get(&format!("/v1/partner/analytics?{query}")).await.field_error("INVALID_FIELD", field);
        d.get(&format!("/v1/distributor/analytics?{query}")).await.field_error("INVALID_FIELD", field);
    }
    let year = p.get("/v1/partner/analytics?from_date=2025-04-04&to_date=2026-04-04").await;
    assert_eq!(year.status, 200, "366 days are allowed: {}", year.body);
}

#[tokio::test]
async fn every_report_route_wants_its_own_kind_of_key() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let partner_routes = ["/v1/partner/usage", "/v1/partner/dashboard", "/v1/partner/analytics"];
    let distributor_routes =
        ["/v1/distributor/reports/usage", "/v1/distributor/dashboard", "/v1/distributor/analytics"];
    for path in partner_routes.iter().chain(&distributor_routes) {
        let reply = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(reply.status(), 401, "{path}");
        crate::support::assert_error(&reply.json().await.unwrap(), "MISSING_KEY");
        let bogus = app.with_header("X-Partner-Key", "pk_live_nope").get(path).await;
        assert_eq!(bogus.status, 401, "{path}: {}", bogus.body);
    }
    for path in distributor_routes {
        assert_eq!(f.partner(&app).get(path).await.status, 401, "a partner key is no distributor key: {path}");
    }
    for path in partner_routes {
        assert_eq!(f.distributor(&app).get(path).await.status, 401, "a distributor key is no partner key: {path}");
    }
}
