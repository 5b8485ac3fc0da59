//! `POST /v1/distributor/partners/{id}/plan` and `…/plan/preview`: plan changes on a partner's
//! behalf. Partners here are provisioned at 10:00 on 3 April 2026 on professional, billed
//! quarterly in AUD, so their period runs to 3 July 10:00.

use partnerd_domain::account::AccountStatus;
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, msp_alpha, new_msp, oversized_body};

fn plan(id: &str) -> String {
    format!("/v1/distributor/partners/{id}/plan")
}

fn preview(id: &str) -> String {
    format!("/v1/distributor/partners/{id}/plan/preview")
}

/// The partner's terms as its distributor sees them, and what has been billed.
async fn terms(app: &TestApp, distributor: &Caller<'_>, id: &str) -> (Value, Value, Value, usize) {
    let detail = distributor.partner_detail(id).await;
    (
        detail["plan"].clone(),
        detail["billing"].clone(),
        detail["usage"]["runsLimit"].clone(),
        app.store.ledger_lines().len(),
    )
}

#[tokio::test]
async fn a_change_answers_the_reference_example() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let reply =
        distributor.post(&plan(&id), &json!({"plan": "enterprise", "billing": "rolling", "currency": "aud"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "partnerId": id,
            "plan": "enterprise",
            "billing": "rolling",
            "currency": "aud",
            "runLimit": -1,
            "subscriptionStatus": "active",
            "currentPeriodEnd": "2027-04-03T10:00:00Z",
        })
    );
    let (plan_now, billing, limit, billed) = terms(&app, &distributor, &id).await;
    assert_eq!(
        (plan_now, billing, limit),
        (json!("enterprise"), json!({"currency": "AUD", "interval": "annual"}), json!(-1))
    );
    assert_eq!(billed, 2, "the change was prorated and billed");
    let me = app.as_partner_key(&key).me().await;
    assert_eq!((me["plan"].clone(), me["usage"]["runsLimit"].clone()), (json!("enterprise"), json!(-1)));
    let products = app.as_partner_key(&key).get("/v1/partner/products").await.body;
    assert_eq!(products["products"].as_array().unwrap().len(), 4, "enterprise products apply at once");
}

#[tokio::test]
async fn omitted_billing_and_currency_keep_the_partners_terms() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let reply = distributor.post(&plan(&id), &json!({"plan": "starter"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "partnerId": id,
            "plan": "starter",
            "billing": "quarterly",
            "currency": "aud",
            "runLimit": 50,
            "subscriptionStatus": "active",
            "currentPeriodEnd": "2026-07-03T10:00:00Z",
        })
    );
    assert_eq!(distributor.partner_detail(&id).await["billing"], json!({"currency": "AUD", "interval": "quarterly"}));
}

#[tokio::test]
async fn a_pending_partners_plan_can_change() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let id = distributor.provision(&msp_alpha()).await;
    let reply =
        distributor.post(&plan(&id), &json!({"plan": "enterprise", "billing": "monthly", "currency": "USD"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["billing"], "monthly");
    assert_eq!(reply.body["currency"], "usd");
    let detail = distributor.partner_detail(&id).await;
    assert_eq!(detail["status"], "pending", "a plan change does not activate");
    assert_eq!(detail["plan"], "enterprise");
    assert_eq!(detail["billing"], json!({"currency": "USD", "interval": "monthly"}));
}

#[tokio::test]
async fn refused_changes_are_plan_change_failed_and_change_nothing() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let before = terms(&app, &distributor, &id).await;
    let cases = [
        json!({"plan": "platinum"}),
        json!({"plan": ""}),
        json!({"plan": "enterprise", "billing": "weekly"}),
        json!({"plan": "enterprise", "billing": "annually"}),
        json!({"plan": "enterprise", "currency": "jpy"}),
        // Already on these terms, however they are spelt.
        json!({"plan": "professional"}),
        json!({"plan": "professional", "billing": "quarterly", "currency": "aud"}),
        json!({"plan": "professional", "billing": "QUARTERLY", "currency": "AUD"}),
    ];
    for body in &cases {
        for path in [plan(&id), preview(&id)] {
            let reply = distributor.post(&path, body).await;
            assert_eq!(reply.status, 400, "{path} {body}: {}", reply.body);
            reply.error(400, "PLAN_CHANGE_FAILED");
        }
    }
    assert_eq!(terms(&app, &distributor, &id).await, before);
}

#[tokio::test]
async fn malformed_plan_requests_name_the_field_and_change_nothing() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let before = terms(&app, &distributor, &id).await;
    for path in [plan(&id), preview(&id)] {
        distributor.post(&path, &json!({"billing": "monthly"})).await.field_error("MISSING_FIELD", "plan");
        distributor.post(&path, &json!({"plan": 3})).await.field_error("INVALID_FIELD", "plan");
        distributor
            .post(&path, &json!({"plan": "enterprise", "billing": {"interval": "annual"}}))
            .await
            .field_error("INVALID_FIELD", "billing");
        distributor
            .post(&path, &json!({"plan": "enterprise", "partnerId": "prt_000000000000000000000001"}))
            .await
            .field_error("INVALID_FIELD", "partnerId");
        for body in ["", "{\"plan\": ", "plan=enterprise"] {
            distributor.post_raw(&path, body).await.error(400, "INVALID_JSON");
        }
        distributor.post_raw(&path, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    }
    assert_eq!(terms(&app, &distributor, &id).await, before);
}

#[tokio::test]
async fn preview_answers_the_proration_and_the_change_bills_it() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let before = terms(&app, &distributor, &id).await;
    // Half of the 91-day quarter is left: 1279.65 × ½ = 639.825 and 3417.15 × ½ = 1708.575,
    // each rounded once, half away from zero.
    app.clock.set(datetime!(2026-05-18 22:00 UTC));
    let reply = distributor.post(&preview(&id), &json!({"plan": "enterprise"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "plan": "enterprise",
            "billing": "quarterly",
            "currency": "aud",
            "currentPeriodEnd": "2026-07-03T10:00:00Z",
            "lines": [
                {
                    "kind": "unused_time",
                    "description": "Unused time on professional (quarterly)",
                    "amount": "-639.83",
                    "currency": "AUD",
                    "periodStart": "2026-05-18T22:00:00Z",
                    "periodEnd": "2026-07-03T10:00:00Z",
                },
                {
                    "kind": "remaining_time",
                    "description": "Remaining time on enterprise (quarterly)",
                    "amount": "1708.58",
                    "currency": "AUD",
                    "periodStart": "2026-05-18T22:00:00Z",
                    "periodEnd": "2026-07-03T10:00:00Z",
                },
            ],
        })
    );
    assert_eq!(terms(&app, &distributor, &id).await, before, "a preview changes nothing");

    let change = distributor.post(&plan(&id), &json!({"plan": "enterprise"})).await;
    assert_eq!(change.status, 200, "{}", change.body);
    assert_eq!(change.body["currentPeriodEnd"], reply.body["currentPeriodEnd"]);
    let billed: Vec<String> = app.store.ledger_lines().iter().map(|l| l.amount.to_decimal_string()).collect();
    assert_eq!(billed, ["-639.83", "1708.58"], "the change bills what its preview showed");
}

#[tokio::test]
async fn the_eleventh_change_in_an_hour_is_rate_limited_counting_the_partners_own() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    let (other, _) = distributor.provision_active(&msp_alpha()).await;
    let partner = app.as_partner_key(&key);
    let plans = ["starter", "professional"];

    // 10:00, the partner; 10:20, four more by the partner and five by the distributor
    // (three through …/plan, two through PUT).
    app.clock.set(datetime!(2026-04-03 10:00 UTC));
    let own = partner.post("/v1/partner/plan", &json!({"plan": plans[0]})).await;
    assert_eq!(own.status, 200, "{}", own.body);
    app.clock.set(datetime!(2026-04-03 10:20 UTC));
    for i in 1..10 {
        let body = json!({"plan": plans[i % 2]});
        let reply = match i {
            1..=4 => partner.post("/v1/partner/plan", &body).await,
            5..=7 => distributor.post(&plan(&id), &body).await,
            _ => distributor.put(&format!("/v1/distributor/partners/{id}"), &body).await,
        };
        assert_eq!(reply.status, 200, "change {}: {}", i + 1, reply.body);
        // Refused attempts do not count.
        distributor.post(&plan(&id), &json!({"plan": "platinum"})).await.error(400, "PLAN_CHANGE_FAILED");
    }
    let after_ten = terms(&app, &distributor, &id).await;
    assert_eq!(after_ten.0, "professional");

    // The oldest change (10:00) leaves the window at 11:00.
    app.clock.set(datetime!(2026-04-03 10:40 UTC));
    let reply = distributor.post(&plan(&id), &json!({"plan": "enterprise"})).await;
    let message = reply.error(429, "RATE_LIMITED");
    assert_eq!(reply.header("retry-after"), Some("1200"), "an integer number of seconds");
    assert!(message.contains("1200"), "{message}");
    let reply = distributor.put(&format!("/v1/distributor/partners/{id}"), &json!({"plan": "enterprise"})).await;
    reply.error(429, "RATE_LIMITED");
    assert_eq!(reply.header("retry-after"), Some("1200"));
    let reply = partner.post("/v1/partner/plan", &json!({"plan": "enterprise"})).await;
    reply.error(429, "RATE_LIMITED");
    assert_eq!(reply.header("retry-after"), Some("1200"), "the partner shares the allowance");
    assert_eq!(terms(&app, &distributor, &id).await, after_ten, "refused changes changed nothing");

    // Previews are not changes, and every partner has its own allowance.
    assert_eq!(distributor.post(&preview(&id), &json!({"plan": "enterprise"})).await.status, 200);
    assert_eq!(distributor.post(&plan(&other), &json!({"plan": "enterprise"})).await.status, 200);

    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let reply = distributor.post(&plan(&id), &json!({"plan": "enterprise"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(distributor.partner_detail(&id).await["plan"], "enterprise");
}

#[tokio::test]
async fn a_rate_limited_put_changes_nothing_at_all() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let plans = ["starter", "professional"];
    for i in 0..10 {
        let reply = distributor.post(&plan(&id), &json!({"plan": plans[i % 2]})).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let before = distributor.partner_detail(&id).await;
    let body = json!({"company": "Renamed MSP", "name": "Janet Smith", "plan": "enterprise"});
    distributor.put(&format!("/v1/distributor/partners/{id}"), &body).await.error(429, "RATE_LIMITED");
    assert_eq!(distributor.partner_detail(&id).await, before, "a refused request changes nothing");
}

#[tokio::test]
async fn plan_endpoints_of_unknown_ids_are_not_found() {
    let app = TestApp::start().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    for id in ["prt_000000000000000000000999", "nope"] {
        for path in [plan(id), preview(id)] {
            distributor.post(&path, &json!({"plan": "enterprise"})).await.error(404, "NOT_FOUND");
        }
    }
    assert!(app.store.ledger_lines().is_empty());
}
