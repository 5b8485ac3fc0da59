//! An operator suspends a distributor with `partnerd admin suspend-distributor` while servers
//! run: its very next request, on any Distributor API route, gets `403 DISTRIBUTOR_INACTIVE` and
//! changes nothing; its partners' keys keep working throughout; `admin activate-distributor`
//! restores the same key. On PostgreSQL, with two processes serving one database.

use partnerd_e2e::{Server, admin, str_field};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Ctx, DistributorApi, PartnerApi, array, assert_error, assert_keys, assert_ok, assert_status, contoso,
    create_distributor, create_partner, msp_alpha_and_beta, new_msp, on_both_backends, on_postgres_only, serve_open,
};

on_both_backends!(a_distributor_suspended_from_the_command_line_is_refused_while_its_partners_work);
on_postgres_only!(a_distributor_suspended_from_the_command_line_is_refused_by_every_process);

/// Every Distributor API route and method, with a body a client would send.
fn every_route(partner: &str, customer: &str) -> Vec<(Method, String, Option<Value>)> {
    let one = format!("/v1/distributor/partners/{partner}");
    let plan = json!({"plan": "enterprise", "billing": "rolling", "currency": "aud"});
    vec![
        (Method::GET, "/v1/distributor/me".to_owned(), None),
        (Method::GET, "/api/v1/distributor/me".to_owned(), None),
        (Method::GET, "/v1/distributor/partners".to_owned(), None),
        (Method::GET, "/v1/distributor/partners?status=active".to_owned(), None),
        (Method::POST, "/v1/distributor/partners".to_owned(), Some(new_msp())),
        (Method::POST, "/api/v1/distributor/partners/bulk".to_owned(), Some(msp_alpha_and_beta())),
        (Method::GET, one.clone(), None),
        (Method::PUT, one.clone(), Some(json!({"plan": "enterprise", "billing": {"interval": "annual"}}))),
        (Method::POST, format!("{one}/suspend"), Some(json!({"reason": "Unpaid invoice"}))),
        (Method::POST, format!("{one}/activate"), None),
        (Method::POST, format!("{one}/reactivate"), None),
        (Method::POST, format!("{one}/plan"), Some(plan.clone())),
        (Method::POST, format!("{one}/plan/preview"), Some(plan)),
        (Method::GET, format!("{one}/customers"), None),
        (Method::POST, format!("{one}/customers"), Some(contoso())),
        (Method::GET, format!("{one}/assessments"), None),
        (
            Method::POST,
            format!("{one}/assessments"),
            Some(json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3})),
        ),
        (Method::GET, "/v1/distributor/usage".to_owned(), None),
    ]
}

/// What a refused request could have changed: the distributor's partners (which exist, their
/// status and plan), and one partner's detail and everything it sees through its own key.
async fn snapshot(api: &DistributorApi, partner: &PartnerApi, id: &str) -> Vec<Value> {
    let partners: Vec<Value> = api
        .partners("")
        .await
        .iter()
        .map(|p| json!({"id": p["id"], "status": p["status"], "plan": p["plan"]}))
        .collect();
    vec![
        json!(partners),
        api.partner(id).await,
        partner.me().await,
        json!(partner.customers().await),
        json!(partner.runs().await),
    ]
}

async fn suspended_from_the_command_line(ctx: &Ctx, servers: &[&Server]) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let bystander = create_distributor(ctx, "Other Distribution", "ops@otherdist.example").await;
    let id = str_field(&distributor, "id");
    let api = DistributorApi::new(servers[0], str_field(&distributor, "key"));
    let other = DistributorApi::new(servers[0], str_field(&bystander, "key"));

    // One partner from the command line, one provisioned over the API and activated.
    let created = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", Some(id)).await;
    let acme_id = str_field(&created, "id").to_owned();
    let acme = PartnerApi::new(servers[0], str_field(&created, "key"));
    let provisioned = api.provision(&new_msp()).await;
    let new_msp_key = PartnerApi::new(servers[0], &api.activate(&provisioned).await);
    let customer = api.create_customer(&acme_id, &contoso()).await;
    api.trigger(&acme_id, &customer).await;

    // Every server has just served the distributor's key.
    for server in servers {
        assert_eq!(api.on(server).me().await["status"], "active");
    }
    let before = snapshot(&api, &acme, &acme_id).await;

    let suspended = admin(ctx.url(), &["suspend-distributor", "--id", id]).await;
    assert_keys(&suspended, &["id", "status"]);
    assert_eq!((&suspended["id"], &suspended["status"]), (&json!(id), &json!("suspended")));

    // The very next request on each server, then every route: 403 DISTRIBUTOR_INACTIVE.
    for server in servers {
        let refused = api.on(server).get("/v1/distributor/me").await;
        assert_eq!(refused.status, 403, "the very next request after the suspension: {}", refused.text);
        assert_error(&refused, 403, "DISTRIBUTOR_INACTIVE");
    }
    for (n, (method, path, body)) in every_route(&acme_id, &customer).into_iter().enumerate() {
        let api = api.on(servers[n % servers.len()]);
        let reply = api.send(method.clone(), &path, body.map(|b| b.to_string().into_bytes())).await;
        assert_eq!(reply.status, 403, "{method} {path} for a suspended distributor: {}", reply.text);
        assert_error(&reply, 403, "DISTRIBUTOR_INACTIVE");
    }

    // Its partners keep working meanwhile, whichever way they were made; other distributors too.
    for server in servers {
        for partner in [&acme, &new_msp_key] {
            assert_eq!(partner.on(server).me().await["status"], "active");
        }
        assert_eq!(other.on(server).me().await["status"], "active");
    }
    let reply = new_msp_key.post("/v1/partner/customers", &contoso()).await;
    let own_customer = str_field(assert_status(&reply, 201), "id").to_owned();
    let reply = new_msp_key
        .post("/v1/partner/assessments", &json!({"customerId": own_customer, "product": "essential-eight"}))
        .await;
    assert_status(&reply, 202);

    let activated = admin(ctx.url(), &["activate-distributor", "--id", id]).await;
    assert_keys(&activated, &["id", "status"]);
    assert_eq!((&activated["id"], &activated["status"]), (&json!(id), &json!("active")));

    // The same key works again on every server, and the refused requests changed nothing.
    for server in servers {
        assert_eq!(api.on(server).me().await["status"], "active");
    }
    assert_eq!(snapshot(&api, &acme, &acme_id).await, before, "a refused request changed something");
    let me = api.me().await;
    assert_eq!(me["partnersCount"], 2, "{me}");
    // One customer and run each: the distributor's for Acme, New MSP's own.
    let usage = api.usage("").await;
    assert_eq!((&usage["totalCustomers"], &usage["totalRuns"]), (&json!(2), &json!(2)), "{usage}");
    let detail = api.partner(&provisioned).await;
    assert_eq!(detail["status"], "active", "{detail}");
    assert_eq!(detail["usage"]["customersCount"], 1, "the partner's own work while the distributor was out: {detail}");
    let listed = api.get(&format!("/v1/distributor/partners/{provisioned}/assessments")).await;
    assert_eq!(array(assert_ok(&listed), "runs").len(), 1, "{}", listed.text);
    // And it can act again.
    api.trigger(&acme_id, &customer).await;
    assert_eq!(acme.runs_used().await, 2);
}

async fn a_distributor_suspended_from_the_command_line_is_refused_while_its_partners_work(ctx: &Ctx) {
    let server = serve_open(ctx).await;
    suspended_from_the_command_line(ctx, &[&server]).await;
}

async fn a_distributor_suspended_from_the_command_line_is_refused_by_every_process(ctx: &Ctx) {
    let (a, b) = tokio::join!(serve_open(ctx), serve_open(ctx));
    suspended_from_the_command_line(ctx, &[&a, &b]).await;
}
