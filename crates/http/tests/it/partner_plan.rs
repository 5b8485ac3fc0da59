//! `POST /v1/partner/plan` and `POST /v1/partner/plan/preview`. Every partner here starts on a
//! monthly USD subscription whose period is 1 April – 1 May 2026; the clock reads 3 April 10:00.

use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::{Caller, TestApp, oversized_body};

const PLAN: &str = "/v1/partner/plan";
const PREVIEW: &str = "/v1/partner/plan/preview";

/// What `/me` and `/products` say about the plan, to show that a request changed nothing.
async fn plan_state(partner: &Caller<'_>) -> (Value, Value, Value) {
    let me = partner.me().await;
    (me["plan"].clone(), me["usage"]["runsLimit"].clone(), partner.get("/v1/partner/products").await.body)
}

#[tokio::test]
async fn a_change_answers_exactly_the_reference_fields() {
    let app = TestApp::start().await;
    let (partner_row, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let reply = partner.post(PLAN, &json!({"plan": "professional", "billing": "monthly", "currency": "usd"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "partnerId": partner_row.id.to_string(),
            "plan": "professional",
            "billing": "monthly",
            "currency": "usd",
            "runLimit": 200,
            "subscriptionStatus": "active",
            "currentPeriodEnd": "2026-05-01T00:00:00Z",
        })
    );
    let me = partner.me().await;
    assert_eq!(me["plan"], "professional");
    assert_eq!(me["usage"]["runsLimit"], 200);
}

#[tokio::test]
async fn omitted_billing_and_currency_keep_the_current_terms() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let reply = app.as_partner(&key).post(PLAN, &json!({"plan": "starter"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["billing"], "monthly");
    assert_eq!(reply.body["currency"], "usd");
    assert_eq!(reply.body["runLimit"], 50);
    assert_eq!(reply.body["currentPeriodEnd"], "2026-05-01T00:00:00Z", "the period in force stays");
}

#[tokio::test]
async fn annual_is_echoed_as_rolling_and_enterprise_is_unlimited() {
    let app = TestApp::start().await;
    for billing in ["rolling", "annual", "ROLLING"] {
        let (partner_row, key) = app.partner_on("starter").await;
        let partner = app.as_partner(&key);
        let reply = partner.post(PLAN, &json!({"plan": "enterprise", "billing": billing})).await;
        assert_eq!(reply.status, 200, "{billing}: {}", reply.body);
        assert_eq!(
            reply.body,
            json!({
                "partnerId": partner_row.id.to_string(),
                "plan": "enterprise",
                "billing": "rolling",
                "currency": "usd",
                "runLimit": -1,
                "subscriptionStatus": "active",
                "currentPeriodEnd": "2027-04-03T10:00:00Z",
            }),
            "{billing}"
        );
        assert_eq!(partner.me().await["usage"]["runsLimit"], -1);
    }
}

#[tokio::test]
async fn currencies_are_accepted_in_either_case_and_answered_in_lower_case() {
    let app = TestApp::start().await;
    for (sent, answered) in [("AUD", "aud"), ("gbp", "gbp"), ("Eur", "eur"), ("SGD", "sgd"), ("nzd", "nzd")] {
        let (_, key) = app.partner_on("starter").await;
        let reply = app.as_partner(&key).post(PLAN, &json!({"plan": "starter", "currency": sent})).await;
        assert_eq!(reply.status, 200, "{sent}: {}", reply.body);
        assert_eq!(reply.body["currency"], answered);
        assert_eq!(reply.body["plan"], "starter");
        assert_eq!(reply.body["currentPeriodEnd"], "2026-05-03T10:00:00Z", "a new currency starts a new period");
    }
}

#[tokio::test]
async fn quarterly_billing_is_a_change_of_terms_on_the_same_plan() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("professional").await;
    let reply = app.as_partner(&key).post(PLAN, &json!({"plan": "professional", "billing": "quarterly"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["billing"], "quarterly");
    assert_eq!(reply.body["runLimit"], 200);
    assert_eq!(reply.body["currentPeriodEnd"], "2026-07-03T10:00:00Z");
}

#[tokio::test]
async fn refused_changes_are_plan_change_failed_and_change_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let before = plan_state(&partner).await;
    let cases = [
        json!({"plan": "platinum"}),
        json!({"plan": ""}),
        json!({"plan": "Professional Plus"}),
        json!({"plan": "professional", "billing": "weekly"}),
        json!({"plan": "professional", "billing": ""}),
        json!({"plan": "professional", "currency": "jpy"}),
        json!({"plan": "professional", "currency": "us dollars"}),
        // The current plan on the current terms, however they are spelt.
        json!({"plan": "starter"}),
        json!({"plan": "starter", "billing": "monthly", "currency": "usd"}),
        json!({"plan": "starter", "billing": "MONTHLY", "currency": "USD"}),
    ];
    for body in &cases {
        for path in [PLAN, PREVIEW] {
            partner.post(path, body).await.error(400, "PLAN_CHANGE_FAILED");
        }
    }
    assert_eq!(plan_state(&partner).await, before);
    assert!(app.store.ledger_lines().is_empty(), "nothing was billed");
}

#[tokio::test]
async fn malformed_plan_requests_name_the_field_and_change_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let before = plan_state(&partner).await;
    for path in [PLAN, PREVIEW] {
        partner.post(path, &json!({"billing": "monthly"})).await.field_error("MISSING_FIELD", "plan");
        partner.post(path, &json!({"plan": 5})).await.field_error("INVALID_FIELD", "plan");
        partner.post(path, &json!({"plan": null})).await.field_error("INVALID_FIELD", "plan");
        partner
            .post(path, &json!({"plan": "professional", "billing": 12}))
            .await
            .field_error("INVALID_FIELD", "billing");
        partner
            .post(path, &json!({"plan": "professional", "currency": ["usd"]}))
            .await
            .field_error("INVALID_FIELD", "currency");
        partner
            .post(path, &json!({"plan": "professional", "runLimit": 9999}))
            .await
            .field_error("INVALID_FIELD", "runLimit");
        partner
            .post(path, &json!({"plan": "professional", "partnerId": "prt_000000000000000000000001"}))
            .await
            .field_error("INVALID_FIELD", "partnerId");
        for body in ["", "{\"plan\": ", "plan=professional"] {
            partner.post_raw(path, body).await.error(400, "INVALID_JSON");
        }
        partner.post_raw(path, oversized_body()).await.error(413, "PAYLOAD_TOO_LARGE");
    }
    assert_eq!(plan_state(&partner).await, before);
    assert!(app.store.ledger_lines().is_empty());
}

#[tokio::test]
async fn the_eleventh_change_within_an_hour_is_rate_limited() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let (_, other_key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let plans = ["professional", "starter"];
    app.clock.set(datetime!(2026-04-03 10:00 UTC));
    for i in 0..10 {
        if i == 1 {
            app.clock.set(datetime!(2026-04-03 10:30 UTC));
        }
        // Refused attempts do not count towards the ten.
        partner.post(PLAN, &json!({"plan": "platinum"})).await.error(400, "PLAN_CHANGE_FAILED");
        let reply = partner.post(PLAN, &json!({"plan": plans[i % 2]})).await;
        assert_eq!(reply.status, 200, "change {}: {}", i + 1, reply.body);
    }
    let after_ten = plan_state(&partner).await;
    assert_eq!(after_ten.0, "starter");

    // The oldest change (10:00) leaves the window at 11:00.
    app.clock.set(datetime!(2026-04-03 10:45 UTC));
    let reply = partner.post(PLAN, &json!({"plan": "professional"})).await;
    let message = reply.error(429, "RATE_LIMITED");
    assert_eq!(reply.header("retry-after"), Some("900"), "an integer number of seconds");
    assert!(message.contains("900"), "{message}");
    assert_eq!(plan_state(&partner).await, after_ten, "the refused change changed nothing");

    app.clock.set(datetime!(2026-04-03 10:59:59 UTC));
    let reply = partner.post(PLAN, &json!({"plan": "professional"})).await;
    reply.error(429, "RATE_LIMITED");
    assert_eq!(reply.header("retry-after"), Some("1"));

    // Previews are not changes, and other partners have their own allowance.
    assert_eq!(partner.post(PREVIEW, &json!({"plan": "professional"})).await.status, 200);
    assert_eq!(app.as_partner(&other_key).post(PLAN, &json!({"plan": "professional"})).await.status, 200);

    app.clock.set(datetime!(2026-04-03 11:00 UTC));
    let reply = partner.post(PLAN, &json!({"plan": "professional"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(partner.me().await["plan"], "professional");
}

#[tokio::test]
async fn preview_answers_the_proration_and_changes_nothing() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let before = plan_state(&partner).await;
    let reply = partner.post(PREVIEW, &json!({"plan": "professional"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // 27 days 14 hours of the 30-day period are left: 2,383,200 / 2,592,000 s.
    // 99.00 × that = 91.025 exactly, rounded once, half away from zero.
    assert_eq!(
        reply.body,
        json!({
            "plan": "professional",
            "billing": "monthly",
            "currency": "usd",
            "currentPeriodEnd": "2026-05-01T00:00:00Z",
            "lines": [
                {
                    "kind": "unused_time",
                    "description": "Unused time on starter (monthly)",
                    "amount": "-91.03",
                    "currency": "USD",
                    "periodStart": "2026-04-03T10:00:00Z",
                    "periodEnd": "2026-05-01T00:00:00Z",
                },
                {
                    "kind": "remaining_time",
                    "description": "Remaining time on professional (monthly)",
                    "amount": "274.91",
                    "currency": "USD",
                    "periodStart": "2026-04-03T10:00:00Z",
                    "periodEnd": "2026-05-01T00:00:00Z",
                },
            ],
        })
    );
    assert_eq!(partner.post(PREVIEW, &json!({"plan": "professional"})).await.body, reply.body, "previews repeat");
    assert_eq!(plan_state(&partner).await, before, "GET /me still shows the old plan");
    assert!(app.store.ledger_lines().is_empty(), "nothing was billed");
}

#[tokio::test]
async fn preview_of_a_new_interval_charges_a_whole_new_period() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let reply = partner.post(PREVIEW, &json!({"plan": "enterprise", "billing": "rolling"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["billing"], "rolling");
    assert_eq!(reply.body["currentPeriodEnd"], "2027-04-03T10:00:00Z");
    let lines = reply.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["amount"], "-91.03");
    assert_eq!(lines[1]["kind"], "remaining_time");
    assert_eq!(lines[1]["amount"], "7990.00");
    assert_eq!(lines[1]["periodStart"], "2026-04-03T10:00:00Z");
    assert_eq!(lines[1]["periodEnd"], "2027-04-03T10:00:00Z");
    assert_eq!(partner.me().await["plan"], "starter");
}

#[tokio::test]
async fn the_change_bills_what_its_preview_showed() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let preview = partner.post(PREVIEW, &json!({"plan": "professional"})).await.body;
    let change = partner.post(PLAN, &json!({"plan": "professional"})).await;
    assert_eq!(change.status, 200);
    assert_eq!(change.body["currentPeriodEnd"], preview["currentPeriodEnd"]);
    let billed: Vec<String> = app.store.ledger_lines().iter().map(|l| l.amount.to_decimal_string()).collect();
    let previewed: Vec<&str> =
        preview["lines"].as_array().unwrap().iter().map(|l| l["amount"].as_str().unwrap()).collect();
    assert_eq!(billed, previewed);
}

#[tokio::test]
async fn a_plan_change_with_a_json_array_instead_of_an_object_is_refused() {
    let app = TestApp::start().await;
    let (_, key) = app.partner_on("starter").await;
    let partner = app.as_partner(&key);
    let before = plan_state(&partner).await;
    let reply = partner.post(PLAN, &json!(["enterprise", "rolling", "usd"])).await;
    assert_eq!(reply.status, 400, "an array is not a plan change object: {}", reply.body);
    assert_eq!(plan_state(&partner).await, before);
}
