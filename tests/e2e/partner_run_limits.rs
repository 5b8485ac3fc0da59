//! Monthly run limits never overshoot under concurrency: a starter partner (50 runs a month)
//! brought close to its limit, then hit by many requests at once. On PostgreSQL the same runs
//! again with two `partnerd` processes serving one database, the requests spread across both.

use partnerd_e2e::{Reply, Server, all_at_once, str_field};
use serde_json::json;

use crate::support::{
    Ctx, PartnerApi, array, assert_error, assert_status, create_partner, on_both_backends, on_postgres_only,
    serve_unlimited, warm_up,
};

on_both_backends!(
    concurrent_triggers_at_49_of_50_queue_exactly_one,
    concurrent_bulk_triggers_with_7_left_queue_exactly_7
);
on_postgres_only!(
    concurrent_triggers_at_49_of_50_queue_exactly_one_across_two_processes,
    concurrent_bulk_triggers_with_7_left_queue_exactly_7_across_two_processes,
);

const STARTER_LIMIT: usize = 50;

/// A starter partner with 50 customers and `used` runs already queued this month; returns its
/// client (on the first server) and the customer ids.
async fn starter_partner_with_usage(ctx: &Ctx, server: &Server, used: usize, n: usize) -> (PartnerApi, Vec<String>) {
    let (company, email) = (format!("Limit MSP {n}"), format!("ops{n}@limit.example"));
    let created = create_partner(ctx, &company, &email, "starter", None).await;
    let api = PartnerApi::new(server, str_field(&created, "key"));
    let customers = api.bulk_customers(STARTER_LIMIT, &format!("Limit {n}")).await;
    api.bulk_trigger_all(&customers[..used]).await;
    assert_eq!(api.runs_used().await, used as i64, "the set-up used {used} runs");
    (api, customers)
}

/// The limit held: `/me` says 50 used of 50, exactly 50 runs exist, and one more is refused.
async fn assert_exactly_at_the_limit(api: &PartnerApi, customers: &[String]) {
    let me = api.me().await;
    assert_eq!(me["usage"]["runsUsed"], STARTER_LIMIT, "{me}");
    assert_eq!(me["usage"]["runsLimit"], STARTER_LIMIT, "{me}");
    assert_eq!(api.runs().await.len(), STARTER_LIMIT, "as many runs exist as the limit allows");
    let more =
        api.post("/v1/partner/assessments", &json!({"customerId": customers[0], "product": "essential-eight"})).await;
    assert_error(&more, 403, "RUN_LIMIT_REACHED");
}

/// 49 of 50 used, then 50 concurrent `POST /v1/partner/assessments` (one per customer): exactly
/// one `202`, the other 49 `403 RUN_LIMIT_REACHED`. Three such partners race at once (150
/// requests in flight), which widens any window between reading and updating the usage.
async fn triggers_at_49_of_50(ctx: &Ctx, servers: &[&Server]) {
    const PARTNERS: usize = 3;
    let (a, b, c) = tokio::join!(
        starter_partner_with_usage(ctx, servers[0], STARTER_LIMIT - 1, 0),
        starter_partner_with_usage(ctx, servers[0], STARTER_LIMIT - 1, 1),
        starter_partner_with_usage(ctx, servers[0], STARTER_LIMIT - 1, 2),
    );
    let partners = [a, b, c];
    // Request i is partner i % 3's trigger for its customer i / 3, sent to server (i / 3) % n:
    // each partner's 50 requests are spread across the servers, interleaved with the others'.
    let route = |i: usize| (i % PARTNERS, i / PARTNERS, (i / PARTNERS) % servers.len());
    let clients: Vec<Vec<PartnerApi>> =
        partners.iter().map(|(api, _)| servers.iter().map(|s| api.on(s)).collect()).collect();
    let warm: Vec<PartnerApi> = (0..PARTNERS * STARTER_LIMIT)
        .map(|i| {
            let (p, _, s) = route(i);
            clients[p][s].clone()
        })
        .collect();
    warm_up(&warm, warm.len()).await;
    let replies = all_at_once(PARTNERS * STARTER_LIMIT, |i| {
        let (p, c, s) = route(i);
        let api = clients[p][s].clone();
        let body = json!({"customerId": partners[p].1[c], "product": "essential-eight", "maturityTarget": 3});
        async move { api.post("/v1/partner/assessments", &body).await }
    })
    .await;

    for (p, (api, customers)) in partners.iter().enumerate() {
        let mine: Vec<&Reply> = replies.iter().enumerate().filter(|(i, _)| route(*i).0 == p).map(|(_, r)| r).collect();
        let statuses: Vec<u16> = mine.iter().map(|r| r.status).collect();
        let accepted: Vec<&&Reply> = mine.iter().filter(|r| r.status == 202).collect();
        assert_eq!(accepted.len(), 1, "partner {p}: exactly one trigger fits in the last unit; statuses {statuses:?}");
        assert_eq!(assert_status(accepted[0], 202)["status"], "queued");
        for reply in mine.iter().filter(|r| r.status != 202) {
            assert_error(reply, 403, "RUN_LIMIT_REACHED");
        }
        assert_exactly_at_the_limit(api, customers).await;
    }
}

/// 43 of 50 used, then 5 concurrent bulk triggers naming all 50 customers: 7 runs queued in
/// total, every other item failed with `RUN_LIMIT_REACHED`.
async fn bulk_triggers_with_7_left(ctx: &Ctx, servers: &[&Server]) {
    const LEFT: usize = 7;
    const REQUESTS: usize = 5;
    let (api, customers) = starter_partner_with_usage(ctx, servers[0], STARTER_LIMIT - LEFT, 0).await;
    let apis: Vec<PartnerApi> = servers.iter().map(|s| api.on(s)).collect();
    let body = json!({"product": "essential-eight", "customerIds": customers, "maturityTarget": 3});
    warm_up(&apis, REQUESTS).await;
    let replies = all_at_once(REQUESTS, |i| {
        let api = apis[i % apis.len()].clone();
        let body = body.clone();
        async move { api.post("/v1/partner/assessments/bulk", &body).await }
    })
    .await;

    let mut queued_ids = Vec::new();
    let mut queued_total = 0;
    for reply in &replies {
        let body = assert_status(reply, 202);
        let runs = array(body, "runs");
        assert_eq!(runs.len(), customers.len(), "one result per customer id: {}", reply.text);
        let queued: Vec<_> = runs.iter().filter(|r| r["status"] == "queued").collect();
        assert_eq!(body["queued"], queued.len(), "{}", reply.text);
        assert_eq!(body["failed"], customers.len() - queued.len(), "{}", reply.text);
        for item in runs.iter().filter(|r| r["status"] != "queued") {
            assert_eq!(item["status"], "failed", "{item}");
            assert_eq!(item["error"]["code"], "RUN_LIMIT_REACHED", "{item}");
        }
        queued_total += queued.len();
        queued_ids.extend(queued.iter().map(|r| str_field(r, "id").to_owned()));
    }
    let per_request: Vec<&serde_json::Value> = replies.iter().map(|r| &r.body["queued"]).collect();
    assert_eq!(queued_total, LEFT, "the 5 requests queued {per_request:?}: the sum must be the {LEFT} runs left");

    // The runs each response reported are the ones that exist.
    let runs = api.runs().await;
    for id in &queued_ids {
        assert!(runs.iter().any(|r| r["id"] == id.as_str()), "run {id} reported queued but not listed");
    }
    assert_exactly_at_the_limit(&api, &customers).await;
}

async fn concurrent_triggers_at_49_of_50_queue_exactly_one(ctx: &Ctx) {
    let server = serve_unlimited(ctx).await;
    triggers_at_49_of_50(ctx, &[&server]).await;
}

async fn concurrent_bulk_triggers_with_7_left_queue_exactly_7(ctx: &Ctx) {
    let server = serve_unlimited(ctx).await;
    bulk_triggers_with_7_left(ctx, &[&server]).await;
}

async fn concurrent_triggers_at_49_of_50_queue_exactly_one_across_two_processes(ctx: &Ctx) {
    let (first, second) = tokio::join!(serve_unlimited(ctx), serve_unlimited(ctx));
    triggers_at_49_of_50(ctx, &[&first, &second]).await;
}

async fn concurrent_bulk_triggers_with_7_left_queue_exactly_7_across_two_processes(ctx: &Ctx) {
    let (first, second) = tokio::join!(serve_unlimited(ctx), serve_unlimited(ctx));
    bulk_triggers_with_7_left(ctx, &[&first, &second]).await;
}
