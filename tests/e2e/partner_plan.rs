//! Plan changes through the binary: starter → professional with the reference's request body;
//! the new run limit and products apply to the very next request; the eleventh change within
//! the hour is `429 RATE_LIMITED` and changes nothing.

use partnerd_e2e::{Server, all_at_once, str_field};
use serde_json::{Value, json};

use crate::support::{
    Ctx, PartnerApi, array, assert_error, assert_ok, assert_rate_limited, assert_status, create_partner,
    on_both_backends, on_postgres_only, serve_unlimited, warm_up,
};

on_both_backends!(
    a_plan_change_applies_at_once_and_the_eleventh_in_an_hour_is_refused,
    concurrent_plan_changes_never_exceed_ten_in_an_hour,
);
on_postgres_only!(concurrent_plan_changes_across_two_processes_never_exceed_ten_in_an_hour);

const MAX_CHANGES_PER_HOUR: usize = 10;

async fn product_ids(api: &PartnerApi) -> Vec<String> {
    let reply = api.get("/v1/partner/products").await;
    array(assert_ok(&reply), "products").iter().map(|p| str_field(p, "id").to_owned()).collect()
}

fn nist(customer: &str) -> Value {
    json!({"customerId": customer, "product": "nist-csf", "maturityTarget": 3})
}

async fn a_plan_change_applies_at_once_and_the_eleventh_in_an_hour_is_refused(ctx: &Ctx) {
    let created = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", None).await;
    let partner_id = str_field(&created, "id").to_owned();
    // The per-key limit is off, so any 429 here is the plan-change limit.
    let server = serve_unlimited(ctx).await;
    let api = PartnerApi::new(&server, str_field(&created, "key"));
    let reply = api
        .post(
            "/v1/partner/customers",
            &json!({"name": "Contoso Ltd", "tenantId": "d4f5a678-1234-5678-9abc-def012345678"}),
        )
        .await;
    let customer = str_field(assert_status(&reply, 201), "id").to_owned();

    // On starter: nist-csf is not in the plan.
    assert_eq!(product_ids(&api).await, ["essential-eight"]);
    assert_error(&api.post("/v1/partner/assessments", &nist(&customer)).await, 403, "PRODUCT_NOT_ALLOWED");

    // The reference's request body.
    let reply = api
        .post("/api/v1/partner/plan", &json!({"plan": "professional", "billing": "monthly", "currency": "usd"}))
        .await;
    let body = assert_ok(&reply);
    assert_eq!(body["partnerId"], partner_id.as_str());
    assert_eq!(
        (&body["plan"], &body["billing"], &body["currency"]),
        (&json!("professional"), &json!("monthly"), &json!("usd"))
    );
    assert_eq!(body["runLimit"], 200, "{}", reply.text);
    assert_eq!(body["subscriptionStatus"], "active", "{}", reply.text);

    // Applies to the very next requests.
    let me = api.me().await;
    assert_eq!((&me["plan"], &me["usage"]["runsLimit"]), (&json!("professional"), &json!(200)), "{me}");
    assert_eq!(product_ids(&api).await, ["essential-eight", "nist-csf"]);
    let reply = api.post("/v1/partner/assessments", &nist(&customer)).await;
    let run = assert_status(&reply, 202);
    assert_eq!((&run["product"], &run["status"]), (&json!("nist-csf"), &json!("queued")), "{}", reply.text);

    // Use 51 runs on professional, then downgrade to starter (change 2): the limit of 50 applies
    // to the next trigger, the usage already counted stays.
    let more = api.bulk_customers(50, "Fabrikam Branch").await;
    api.bulk_trigger_all(&more).await;
    let reply = api.post("/v1/partner/plan", &json!({"plan": "starter"})).await;
    assert_eq!(
        (&assert_ok(&reply)["plan"], &reply.body["runLimit"]),
        (&json!("starter"), &json!(50)),
        "{}",
        reply.text
    );
    let me = api.me().await;
    assert_eq!((&me["usage"]["runsUsed"], &me["usage"]["runsLimit"]), (&json!(51), &json!(50)), "{me}");
    let essential = json!({"customerId": customer, "product": "essential-eight"});
    assert_error(&api.post("/v1/partner/assessments", &essential).await, 403, "RUN_LIMIT_REACHED");
    let reply = api
        .post("/v1/partner/assessments/bulk", &json!({"product": "essential-eight", "customerIds": [customer]}))
        .await;
    let body = assert_status(&reply, 202);
    assert_eq!(
        (body["queued"].as_u64(), &body["runs"][0]["error"]["code"]),
        (Some(0), &json!("RUN_LIMIT_REACHED")),
        "{}",
        reply.text
    );

    // Eight more changes in the hour (ten in all), alternating plans: each takes effect.
    let mut plan = "starter";
    for n in 3..=MAX_CHANGES_PER_HOUR {
        plan = if plan == "professional" { "starter" } else { "professional" };
        let path = if n % 2 == 0 { "/v1/partner/plan" } else { "/api/v1/partner/plan" };
        let reply = api.post(path, &json!({"plan": plan})).await;
        let body = assert_ok(&reply);
        assert_eq!(body["plan"], plan, "change {n}: {}", reply.text);
        assert_eq!(body["runLimit"], if plan == "starter" { 50 } else { 200 }, "change {n}: {}", reply.text);
        assert_eq!(api.me().await["plan"], plan, "change {n}");
    }
    assert_eq!(plan, "starter", "the tenth change went back to starter");

    // The eleventh within the hour is refused, whichever key asks, and changes nothing.
    let refused =
        api.post("/v1/partner/plan", &json!({"plan": "professional", "billing": "monthly", "currency": "usd"})).await;
    let retry_after = assert_rate_limited(&refused);
    assert!(retry_after <= 3600, "Retry-After {retry_after}s for an hourly limit");
    let second = api.new_key().await;
    assert_rate_limited(&second.post("/api/v1/partner/plan", &json!({"plan": "enterprise"})).await);

    let me = api.me().await;
    assert_eq!((&me["plan"], &me["usage"]["runsLimit"]), (&json!("starter"), &json!(50)), "{me}");
    assert_eq!(me["usage"]["runsUsed"], 51, "{me}");
    assert_eq!(product_ids(&api).await, ["essential-eight"]);
    assert_error(&api.post("/v1/partner/assessments", &nist(&customer)).await, 403, "PRODUCT_NOT_ALLOWED");
}

/// Eight changes made, then six concurrent changes, each to a different (plan, currency) and so
/// each valid whatever order they land in: exactly two succeed, four are `429 RATE_LIMITED`.
async fn plan_change_race(ctx: &Ctx, servers: &[&Server]) {
    const DONE_FIRST: usize = 8;
    let created = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", None).await;
    let api = PartnerApi::new(servers[0], str_field(&created, "key"));
    for n in 0..DONE_FIRST {
        let plan = if n % 2 == 0 { "professional" } else { "starter" };
        let reply = api.post("/v1/partner/plan", &json!({"plan": plan, "currency": "usd"})).await;
        assert_eq!(assert_ok(&reply)["plan"], plan, "change {}: {}", n + 1, reply.text);
    }
    // Now on starter, usd. None of these is the current plan, and no two are the same.
    let targets: Vec<Value> = ["aud", "gbp"]
        .iter()
        .flat_map(|c| ["professional", "enterprise", "starter"].map(|p| json!({"plan": p, "currency": c})))
        .collect();
    let apis: Vec<PartnerApi> = servers.iter().map(|s| api.on(s)).collect();
    warm_up(&apis, targets.len()).await;
    let replies = all_at_once(targets.len(), |i| {
        let (api, body) = (apis[i % apis.len()].clone(), targets[i].clone());
        async move { api.post("/v1/partner/plan", &body).await }
    })
    .await;

    // Changes of one partner go one at a time: a change racing another is refused with
    // PLAN_CHANGE_FAILED ("in progress", never prorated from terms the other replaced), and
    // none goes past the hour's allowance.
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let applied: Vec<usize> = (0..replies.len()).filter(|&i| replies[i].status == 200).collect();
    let left = MAX_CHANGES_PER_HOUR - DONE_FIRST;
    assert!((1..=left).contains(&applied.len()), "between one and {left} applied; statuses {statuses:?}");
    for reply in replies.iter().filter(|r| r.status != 200) {
        let code = reply.body["error"]["code"].as_str().unwrap_or_default();
        if code == "PLAN_CHANGE_FAILED" {
            assert!(reply.text.contains("in progress"), "{}", reply.text);
        } else {
            assert_rate_limited(reply);
        }
    }
    // The plan is one of those that were applied.
    let me = api.me().await;
    let landed = applied
        .iter()
        .any(|&i| replies[i].body["plan"] == me["plan"] && replies[i].body["currency"] == targets[i]["currency"]);
    assert!(landed, "the plan {} is one the successful changes set: {statuses:?}", me["plan"]);
    // Whatever is left of the allowance can still be used, and then no more.
    let spare = ["eur", "nzd"];
    for currency in spare.iter().take(left - applied.len()) {
        assert_ok(&api.post("/v1/partner/plan", &json!({"plan": "enterprise", "currency": currency})).await);
    }
    assert_rate_limited(&api.post("/v1/partner/plan", &json!({"plan": "professional", "currency": "sgd"})).await);
}

async fn concurrent_plan_changes_never_exceed_ten_in_an_hour(ctx: &Ctx) {
    let server = serve_unlimited(ctx).await;
    plan_change_race(ctx, &[&server]).await;
}

async fn concurrent_plan_changes_across_two_processes_never_exceed_ten_in_an_hour(ctx: &Ctx) {
    let (a, b) = tokio::join!(serve_unlimited(ctx), serve_unlimited(ctx));
    plan_change_race(ctx, &[&a, &b]).await;
}
