//! Work a distributor does on a partner's behalf is the partner's own: its customers and runs,
//! seen through the partner's key, counted in its usage and against its own monthly run limit —
//! under concurrency too. A partner that is pending or suspended cannot be acted for:
//! `403 PARTNER_INACTIVE`, and nothing changes.

use partnerd_e2e::{Reply, Server, all_at_once, str_field};
use serde_json::{Value, json};

use crate::support::{
    Ctx, DistributorApi, PartnerApi, array, assert_error, assert_fields, assert_ok, assert_status, contoso,
    create_distributor, create_partner, new_msp, on_both_backends, on_postgres_only, serve_open, warm_up_distributors,
};

on_both_backends!(
    work_on_behalf_is_the_partners_own_and_counts_against_its_limit,
    concurrent_distributor_triggers_with_one_unit_left_queue_exactly_one,
    a_pending_or_suspended_partner_cannot_be_acted_for,
);
on_postgres_only!(concurrent_distributor_triggers_across_two_processes_with_one_unit_left_queue_exactly_one);

const STARTER_LIMIT: usize = 50;

/// A distributor and a starter partner under it (`admin create-partner --distributor`).
async fn distributor_with_starter(ctx: &Ctx, server: &Server) -> (DistributorApi, PartnerApi, String) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let partner =
        create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", Some(str_field(&distributor, "id"))).await;
    (
        DistributorApi::new(server, str_field(&distributor, "key")),
        PartnerApi::new(server, str_field(&partner, "key")),
        str_field(&partner, "id").to_owned(),
    )
}

fn trigger_body(customer: &str) -> Value {
    json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3})
}

async fn work_on_behalf_is_the_partners_own_and_counts_against_its_limit(ctx: &Ctx) {
    let server = serve_open(ctx).await;
    let (api, partner, id) = distributor_with_starter(ctx, &server).await;
    let base = format!("/v1/distributor/partners/{id}");

    // The distributor creates a customer and triggers a run for the partner.
    let customer = api.create_customer(&id, &contoso()).await;
    let run = api.trigger(&id, &customer).await;

    // The partner sees both as its own, through its own key.
    let customers = partner.customers().await;
    assert_eq!(customers.len(), 1, "{customers:?}");
    assert_fields(&customers[0], &json!({"id": customer, "name": "Contoso Ltd", "email": "it@contoso.com"}));
    let detail = partner.get(&format!("/v1/partner/customers/{customer}")).await;
    assert_fields(
        assert_ok(&detail),
        &json!({"receivers": ["ciso@contoso.com"], "questionnaireRecipients": ["ciso@contoso.com"]}),
    );
    assert_eq!(array(&detail.body, "recentRuns")[0]["id"], run.as_str(), "{}", detail.text);
    let runs = partner.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_fields(&runs[0], &json!({"id": run, "customerId": customer, "status": "queued"}));
    let me = partner.me().await;
    assert_fields(&me["usage"], &json!({"runsUsed": 1, "runsLimit": 50, "customersCount": 1}));

    // And the partner's own work is what the distributor sees for it.
    let own = partner.bulk_customers(STARTER_LIMIT - 1, "Fabrikam Branch").await;
    let listed = api.get(&format!("{base}/customers")).await;
    assert_eq!(array(assert_ok(&listed), "customers").len(), STARTER_LIMIT, "{}", listed.text);

    // The partner fills its limit itself: 1 (the distributor's) + 49 = 50.
    partner.bulk_trigger_all(&own).await;
    assert_eq!(partner.runs_used().await, STARTER_LIMIT as i64);
    let detail = api.partner(&id).await;
    assert_fields(&detail["usage"], &json!({"runsUsed": 50, "runsLimit": 50, "customersCount": 50}));
    let listed = api.get(&format!("{base}/assessments")).await;
    assert_eq!(array(assert_ok(&listed), "runs").len(), STARTER_LIMIT, "{}", listed.text);

    // The distributor's trigger is refused like the partner's own would be, and counts nothing.
    let refused = api.post(&format!("{base}/assessments"), &trigger_body(&customer)).await;
    assert_error(&refused, 403, "RUN_LIMIT_REACHED");
    let refused = api.post(&format!("/api/v1/distributor/partners/{id}/assessments"), &trigger_body(&own[0])).await;
    assert_error(&refused, 403, "RUN_LIMIT_REACHED");
    assert_error(&partner.post("/v1/partner/assessments", &trigger_body(&customer)).await, 403, "RUN_LIMIT_REACHED");
    assert_eq!(partner.runs_used().await, STARTER_LIMIT as i64);
    assert_eq!(partner.runs().await.len(), STARTER_LIMIT);

    // The distributor's usage report agrees.
    let usage = api.usage("").await;
    assert_fields(&usage, &json!({"totalRuns": 50, "totalCustomers": 50, "totalPartners": 1, "activePartners": 1}));
    assert_fields(&array(&usage, "byPartner")[0], &json!({"partnerId": id, "runs": 50, "customers": 50}));

    // Raising the plan on the partner's behalf lifts the limit for both of them at once.
    let reply = api.post(&format!("{base}/plan"), &json!({"plan": "professional"})).await;
    assert_eq!(assert_ok(&reply)["runLimit"], 200, "{}", reply.text);
    api.trigger(&id, &customer).await;
    assert_status(&partner.post("/v1/partner/assessments", &trigger_body(&own[1])).await, 202);
    assert_fields(&partner.me().await["usage"], &json!({"runsUsed": 52, "runsLimit": 200}));
}

/// A starter partner that has used 49 of its 50 runs, then 20 concurrent
/// `POST /v1/distributor/partners/{id}/assessments` for it (spread across `servers`): exactly one
/// `202`, nineteen `403 RUN_LIMIT_REACHED`, and the partner is at exactly 50.
async fn distributor_trigger_race(ctx: &Ctx, servers: &[&Server]) {
    const REQUESTS: usize = 20;
    let (api, partner, id) = distributor_with_starter(ctx, servers[0]).await;
    let customers = partner.bulk_customers(STARTER_LIMIT, "Limit").await;
    partner.bulk_trigger_all(&customers[..STARTER_LIMIT - 1]).await;
    assert_eq!(partner.runs_used().await, (STARTER_LIMIT - 1) as i64);

    let apis: Vec<DistributorApi> = servers.iter().map(|s| api.on(s)).collect();
    warm_up_distributors(&apis, REQUESTS).await;
    let path = format!("/v1/distributor/partners/{id}/assessments");
    let replies = all_at_once(REQUESTS, |i| {
        let api = apis[i % apis.len()].clone();
        let (path, body) = (path.clone(), trigger_body(&customers[STARTER_LIMIT - REQUESTS + i]));
        async move { api.post(&path, &body).await }
    })
    .await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let accepted: Vec<&Reply> = replies.iter().filter(|r| r.status == 202).collect();
    assert_eq!(accepted.len(), 1, "exactly one trigger fits in the last unit; statuses {statuses:?}");
    let run = assert_status(accepted[0], 202);
    assert_eq!((&run["partnerId"], &run["status"]), (&json!(id), &json!("queued")), "{}", accepted[0].text);
    for reply in replies.iter().filter(|r| r.status != 202) {
        assert_error(reply, 403, "RUN_LIMIT_REACHED");
    }

    // Exactly at the limit, as the partner and the distributor both see it, on every server.
    for server in servers {
        let partner = partner.on(server);
        let me = partner.me().await;
        assert_fields(&me["usage"], &json!({"runsUsed": 50, "runsLimit": 50}));
        assert_eq!(partner.runs().await.len(), STARTER_LIMIT);
        assert!(partner.runs().await.iter().any(|r| r["id"] == run["id"]), "the accepted run is the partner's");
        assert_error(
            &partner.post("/v1/partner/assessments", &trigger_body(&customers[0])).await,
            403,
            "RUN_LIMIT_REACHED",
        );
        assert_eq!(api.on(server).partner(&id).await["usage"]["runsUsed"], 50);
    }
}

async fn concurrent_distributor_triggers_with_one_unit_left_queue_exactly_one(ctx: &Ctx) {
    let server = serve_open(ctx).await;
    distributor_trigger_race(ctx, &[&server]).await;
}

async fn concurrent_distributor_triggers_across_two_processes_with_one_unit_left_queue_exactly_one(ctx: &Ctx) {
    let (a, b) = tokio::join!(serve_open(ctx), serve_open(ctx));
    distributor_trigger_race(ctx, &[&a, &b]).await;
}

/// The four on-behalf routes, each refused with `403 PARTNER_INACTIVE`.
async fn assert_inactive(api: &DistributorApi, id: &str, customer: &str, what: &str) {
    for prefix in ["/v1", "/api/v1"] {
        let base = format!("{prefix}/distributor/partners/{id}");
        for reply in [
            api.get(&format!("{base}/customers")).await,
            api.post(&format!("{base}/customers"), &contoso()).await,
            api.get(&format!("{base}/assessments")).await,
            api.post(&format!("{base}/assessments"), &trigger_body(customer)).await,
        ] {
            assert_eq!(reply.status, 403, "{what}: {}", reply.text);
            assert_error(&reply, 403, "PARTNER_INACTIVE");
        }
    }
}

async fn a_pending_or_suspended_partner_cannot_be_acted_for(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let server = serve_open(ctx).await;
    let api = DistributorApi::new(&server, str_field(&distributor, "key"));

    // Just provisioned: pending. Nothing can be done for it; its profile and plan still can.
    let id = api.provision(&new_msp()).await;
    assert_inactive(&api, &id, "cust_000000000000000000000000", "a pending partner").await;
    let detail = api.partner(&id).await;
    assert_fields(&detail, &json!({"status": "pending"}));
    assert_fields(&detail["usage"], &json!({"runsUsed": 0, "customersCount": 0}));
    let reply = api.post(&format!("/v1/distributor/partners/{id}/plan"), &json!({"plan": "enterprise"})).await;
    assert_eq!(assert_ok(&reply)["plan"], "enterprise", "a pending partner's plan can change: {}", reply.text);
    let usage = api.usage("").await;
    assert_fields(&usage, &json!({"totalRuns": 0, "totalCustomers": 0, "activePartners": 0}));

    // Activated: work for it, then suspend it.
    let partner = PartnerApi::new(&server, &api.activate(&id).await);
    assert!(partner.customers().await.is_empty(), "the refused POST while pending created nothing");
    let customer = api.create_customer(&id, &contoso()).await;
    let run = api.trigger(&id, &customer).await;
    api.suspend(&id).await;

    // Suspended: refused, with a real customer of its own.
    assert_inactive(&api, &id, &customer, "a suspended partner").await;
    let detail = api.partner(&id).await;
    assert_fields(&detail, &json!({"status": "suspended"}));
    assert_fields(&detail["usage"], &json!({"runsUsed": 1, "customersCount": 1}));

    // Reactivated: exactly what there was before the suspension.
    let partner = PartnerApi::new(&server, &api.activate(&id).await);
    let customers = partner.customers().await;
    assert_eq!(customers.len(), 1, "{customers:?}");
    assert_eq!(customers[0]["id"], customer.as_str());
    let runs = partner.runs().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], run.as_str());
    assert_eq!(partner.runs_used().await, 1);
    let listed = api.get(&format!("/v1/distributor/partners/{id}/customers")).await;
    assert_eq!(array(assert_ok(&listed), "customers").len(), 1, "{}", listed.text);
}
