//! `GET /v1/distributor/usage?month=` and the usage in `GET /v1/distributor/me`.

use partnerd_domain::account::AccountStatus;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, contoso, fabrikam, msp_alpha, msp_beta, new_msp, numbered_customer};

const USAGE: &str = "/v1/distributor/usage";

/// `byPartner` sorted by id, so the comparison does not depend on the listing order.
fn by_partner_sorted(report: &Value) -> Vec<Value> {
    let mut lines = report["byPartner"].as_array().unwrap().clone();
    lines.sort_by_key(|l| l["partnerId"].as_str().unwrap().to_owned());
    lines
}

fn sorted(mut lines: Vec<Value>) -> Vec<Value> {
    lines.sort_by_key(|l| l["partnerId"].as_str().unwrap().to_owned());
    lines
}

/// Activates a partner, gives it `customers` customers and `runs` runs (half through the
/// distributor), and returns its key.
async fn busy_partner(app: &TestApp, distributor: &Caller<'_>, id: &str, customers: usize, runs: usize) -> String {
    let key = distributor.activate(id).await.unwrap();
    let partner = app.as_partner_key(&key);
    let mut ids = Vec::new();
    for n in 0..customers {
        ids.push(partner.create_customer(&numbered_customer(n)).await);
    }
    for n in 0..runs {
        if n % 2 == 0 {
            partner.trigger(&ids[n % customers], "essential-eight").await;
        } else {
            let body = json!({"customerId": ids[n % customers], "product": "essential-eight"});
            let reply = distributor.post(&format!("/v1/distributor/partners/{id}/assessments"), &body).await;
            assert_eq!(reply.status, 202, "{}", reply.body);
        }
    }
    key
}

/// Partners of another distributor and a direct partner, each with customers and runs.
async fn strangers(app: &TestApp) -> Vec<String> {
    let (_, other_key) = app.distributor(AccountStatus::Active).await;
    let other = app.as_distributor(&other_key);
    let foreign = other.provision(&new_msp()).await;
    busy_partner(app, &other, &foreign, 2, 4).await;
    let (direct, direct_key) = app.partner_on("professional").await;
    let direct_partner = app.as_partner(&direct_key);
    let c = direct_partner.create_customer(&contoso()).await;
    direct_partner.trigger(&c, "essential-eight").await;
    direct_partner.create_customer(&fabrikam()).await;
    vec![foreign, direct.id.to_string()]
}

#[tokio::test]
async fn the_report_sums_this_months_runs_and_customers_per_partner() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let foreign = strangers(&app).await;
    let a = distributor.provision(&new_msp()).await;
    busy_partner(&app, &distributor, &a, 2, 3).await;
    let b = distributor.provision(&msp_beta()).await;
    busy_partner(&app, &distributor, &b, 1, 0).await;
    let c = distributor.provision(&msp_alpha()).await;

    let reply = distributor.get(USAGE).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut report = reply.body.clone();
    let lines = by_partner_sorted(&report);
    report["byPartner"] = json!(null);
    assert_eq!(
        report,
        json!({
            "month": "2026-04",
            "totalPartners": 3,
            "activePartners": 2,
            "totalCustomers": 3,
            "totalRuns": 3,
            "byPartner": null,
        })
    );
    assert_eq!(
        lines,
        sorted(vec![
            json!({"partnerId": a, "company": "New MSP Pty Ltd", "runs": 3, "customers": 2}),
            json!({"partnerId": b, "company": "MSP Beta", "runs": 0, "customers": 1}),
            json!({"partnerId": c, "company": "MSP Alpha", "runs": 0, "customers": 0}),
        ])
    );
    let text = reply.body.to_string();
    for id in &foreign {
        assert!(!text.contains(id.as_str()), "{id} is not this distributor's: {text}");
    }

    // /me agrees.
    let me = distributor.get("/v1/distributor/me").await.body;
    assert_eq!(me["partnersCount"], 3);
    assert_eq!(me["usage"], json!({"month": "2026-04", "totalRuns": 3, "totalCustomers": 3}));
}

#[tokio::test]
async fn a_month_can_be_chosen_and_defaults_to_the_current_one() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let a = distributor.provision(&new_msp()).await;
    let key = busy_partner(&app, &distributor, &a, 2, 4).await;
    app.clock.set(datetime!(2026-05-01 00:00 UTC));
    let partner = app.as_partner_key(&key);
    let customer = partner.customers().await["customers"][0]["id"].as_str().unwrap().to_owned();
    partner.trigger(&customer, "essential-eight").await;

    let runs_of =
        |report: &Value| (report["month"].clone(), report["totalRuns"].clone(), report["byPartner"][0]["runs"].clone());
    let may = distributor.get(USAGE).await.body;
    assert_eq!(runs_of(&may), (json!("2026-05"), json!(1), json!(1)));
    let april = distributor.get(&format!("{USAGE}?month=2026-04")).await.body;
    assert_eq!(runs_of(&april), (json!("2026-04"), json!(4), json!(4)));
    let march = distributor.get(&format!("{USAGE}?month=2026-03")).await.body;
    assert_eq!(runs_of(&march), (json!("2026-03"), json!(0), json!(0)));
    assert_eq!(april["totalCustomers"], 2);
    assert_eq!(april["totalPartners"], 1);
    let me = distributor.get("/v1/distributor/me").await.body;
    assert_eq!(me["usage"], json!({"month": "2026-05", "totalRuns": 1, "totalCustomers": 2}));
}

#[tokio::test]
async fn a_distributor_without_partners_has_an_empty_report() {
    let app = TestApp::start().await;
    strangers(&app).await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let reply = app.as_distributor(&dk).get(USAGE).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "month": "2026-04",
            "totalPartners": 0,
            "activePartners": 0,
            "totalCustomers": 0,
            "totalRuns": 0,
            "byPartner": [],
        })
    );
}

#[tokio::test]
async fn a_malformed_month_is_invalid_field_naming_month() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    for bad in ["2026-4", "2026-13", "2026-00", "April", "", "2026-04-01", "26-04", "1969-12", "2026/04"] {
        distributor.get(&format!("{USAGE}?month={bad}")).await.field_error("INVALID_FIELD", "month");
    }
}

#[tokio::test]
async fn the_profile_has_the_reference_shape() {
    let app = TestApp::start().await;
    let (d, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    strangers(&app).await;
    let a = distributor.provision(&new_msp()).await;
    busy_partner(&app, &distributor, &a, 3, 5).await;
    distributor.provision(&msp_alpha()).await;
    let reply = distributor.get("/v1/distributor/me").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "id": d.id.to_string(),
            "company": "Global Security Distribution",
            "email": "ops@globalsecdist.com",
            "status": "active",
            "partnersCount": 2,
            "usage": {"month": "2026-04", "totalRuns": 5, "totalCustomers": 3},
            "createdAt": "2026-04-03T10:00:00Z",
        })
    );
    let api = distributor.get("/api/v1/distributor/me").await;
    assert_eq!((api.status, api.body), (200, reply.body), "the reference's /api/v1 base serves the same");
}
