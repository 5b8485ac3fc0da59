use partnerd_domain::account::AccountStatus;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn partner_me_has_the_reference_shape() {
    let app = TestApp::start().await;
    let (partner, key) = app.partner(None, AccountStatus::Active).await;
    let (status, body) = app.get("/v1/partner/me", ("X-Partner-Key", key.reveal())).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "id": partner.id.to_string(),
            "company": "Acme MSP",
            "email": "admin@acmemsp.com",
            "plan": "professional",
            "status": "active",
            "usage": {"month": "2026-04", "runsUsed": 0, "runsLimit": 200, "customersCount": 0},
            "createdAt": "2026-04-03T10:00:00Z",
        })
    );
}

#[tokio::test]
async fn distributor_me_counts_its_own_partners_only() {
    let app = TestApp::start().await;
    let (d, key) = app.distributor(AccountStatus::Active).await;
    let (other, _) = app.distributor(AccountStatus::Active).await;
    app.partner(Some(&d.id), AccountStatus::Active).await;
    app.partner(Some(&d.id), AccountStatus::Pending).await;
    app.partner(Some(&other.id), AccountStatus::Active).await;
    app.partner(None, AccountStatus::Active).await;
    let (status, body) = app.get("/v1/distributor/me", ("X-Distributor-Key", key.reveal())).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "id": d.id.to_string(),
            "company": "Global Security Distribution",
            "email": "ops@globalsecdist.com",
            "status": "active",
            "partnersCount": 2,
            "usage": {"month": "2026-04", "totalRuns": 0, "totalCustomers": 0},
            "createdAt": "2026-04-03T10:00:00Z",
        })
    );
}

#[tokio::test]
async fn api_v1_prefix_serves_the_same_routes() {
    let app = TestApp::start().await;
    let (_, key) = app.partner(None, AccountStatus::Active).await;
    let v1 = app.get("/v1/partner/me", ("X-Partner-Key", key.reveal())).await;
    let api_v1 = app.get("/api/v1/partner/me", ("X-Partner-Key", key.reveal())).await;
    assert_eq!(v1.0, 200);
    assert_eq!(v1, api_v1);
}

#[tokio::test]
async fn enterprise_plans_report_an_unlimited_run_limit() {
    use partnerd_domain::catalog::PlanId;
    use partnerd_domain::keys::{ApiKey, KeyKind};
    use partnerd_domain::ports::PartnerRepository;
    let app = TestApp::start().await;
    let mut p = crate::support::partner(&app.ids, None, AccountStatus::Active);
    p.subscription.plan = PlanId::parse("enterprise").unwrap();
    let key = ApiKey::generate(KeyKind::Partner, &app.ids);
    PartnerRepository::insert(&*app.store, &p, Some(key.hash())).await.unwrap();
    let (_, body) = app.get("/v1/partner/me", ("X-Partner-Key", key.reveal())).await;
    assert_eq!(body["usage"]["runsLimit"], -1);
    assert_eq!(body["plan"], "enterprise");
}
