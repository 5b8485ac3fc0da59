//! Tenant isolation for distributors, through the binary: another distributor's partner (active
//! or pending) and a partner with no distributor answer every `partners/{id}…` route and method
//! exactly as an id that names nothing — `404 NOT_FOUND`, the same body — and the attempt changes
//! nothing their owners can see. A distributor's lists, reports and profile never show them.

use partnerd_e2e::{Reply, Server, str_field};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Ctx, DistributorApi, PartnerApi, array, assert_error, assert_ok, assert_status, contoso, create_distributor,
    create_partner, msp_alpha_and_beta, new_msp, on_both_backends, serve_open, unknown_like,
};

on_both_backends!(no_distributor_reaches_a_partner_it_does_not_own);

/// A partner someone may try to reach, and how its owner sees it.
struct Target {
    label: &'static str,
    id: String,
    /// The partner's own key, when it has one (active partners).
    key: Option<PartnerApi>,
    /// The distributor that owns it, if any.
    owner: Option<DistributorApi>,
    /// One of its customers (the id an intruder would put in a trigger).
    customer: Option<String>,
}

/// Everything the owners can read about `t`, for before/after comparison: through the partner's
/// own key its profile (status, plan, usage), customers and runs; through its distributor the
/// partner's detail (billing included) and its line in the list.
async fn snapshot(t: &Target) -> Vec<Value> {
    let mut seen = Vec::new();
    if let Some(partner) = &t.key {
        seen.push(partner.me().await);
        seen.push(json!(partner.customers().await));
        seen.push(json!(partner.runs().await));
    }
    if let Some(owner) = &t.owner {
        seen.push(owner.partner(&t.id).await);
        let listed = owner.partners("").await;
        seen.push(listed.into_iter().find(|p| p["id"] == t.id.as_str()).expect("its owner lists it"));
    }
    assert!(!seen.is_empty(), "{} is observable by someone", t.label);
    seen
}

/// `404 NOT_FOUND`, with the very same body as for an id that exists nowhere.
#[track_caller]
fn assert_hidden(reply: &Reply, unknown: &Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {}", reply.text);
    assert_error(reply, 404, "NOT_FOUND");
    assert_error(unknown, 404, "NOT_FOUND");
    assert_eq!(reply.body, unknown.body, "{what}: a foreign id answers like an unknown one");
}

/// Every `partners/{id}…` route and method, with a body a client would send.
fn attempts(customer: &str) -> Vec<(Method, &'static str, Option<Value>)> {
    let trigger = json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3});
    let plan = json!({"plan": "enterprise", "billing": "rolling", "currency": "aud"});
    vec![
        (Method::GET, "", None),
        (
            Method::PUT,
            "",
            Some(json!({"company": "Hijacked", "plan": "enterprise", "billing": {"interval": "annual"}})),
        ),
        (Method::POST, "/suspend", Some(json!({"reason": "Hostile takeover"}))),
        (Method::POST, "/suspend", None),
        (Method::POST, "/activate", None),
        (Method::POST, "/reactivate", None),
        (Method::POST, "/plan", Some(plan.clone())),
        (Method::POST, "/plan/preview", Some(plan)),
        (Method::GET, "/customers", None),
        (Method::POST, "/customers", Some(contoso())),
        (Method::GET, "/assessments", None),
        (Method::POST, "/assessments", Some(trigger)),
    ]
}

/// `intruder` tries every route on `target`, on both prefixes, each time next to the same request
/// for an id that names nothing.
async fn trespass(intruder: &DistributorApi, target: &Target) {
    let nobody = unknown_like(&target.id);
    let customer = target.customer.clone().unwrap_or_else(|| "cust_000000000000000000000000".to_owned());
    for prefix in ["/v1", "/api/v1"] {
        for (method, suffix, body) in attempts(&customer) {
            let send = |id: &str| {
                let path = format!("{prefix}/distributor/partners/{id}{suffix}");
                let body = body.as_ref().map(|b| b.to_string().into_bytes());
                let method = method.clone();
                async move { intruder.send(method, &path, body).await }
            };
            let what = format!("{} {method} {prefix}/…/{{id}}{suffix}", target.label);
            assert_hidden(&send(&target.id).await, &send(&nobody).await, &what);
        }
    }
    // As a list cursor, a foreign id is no different from an unknown one either.
    let page = |id: &str| format!("/v1/distributor/partners?starting_after={id}");
    let (theirs, unknown) = (intruder.get(&page(&target.id)).await, intruder.get(&page(&nobody)).await);
    assert_eq!(
        (theirs.status, &theirs.body),
        (unknown.status, &unknown.body),
        "{}: ?starting_after= with a foreign id answers like an unknown one",
        target.label
    );
}

/// A distributor's own views never mention `foreign` ids, and list exactly `own` partners.
async fn assert_sees_only(api: &DistributorApi, own: &[&str], foreign: &[&str]) {
    let mut expected: Vec<String> = own.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(api.partner_ids("").await, expected, "the partners listed");
    let mut texts = Vec::new();
    for path in [
        "/v1/distributor/me",
        "/v1/distributor/partners",
        "/v1/distributor/partners?status=active",
        "/v1/distributor/partners?status=pending",
        "/v1/distributor/partners?status=suspended",
        "/v1/distributor/usage",
        "/api/v1/distributor/usage",
    ] {
        let reply = api.get(path).await;
        assert_ok(&reply);
        texts.push((path, reply.text));
    }
    let month = api.usage("").await["month"].as_str().expect("a month").to_owned();
    let reply = api.get(&format!("/v1/distributor/usage?month={month}")).await;
    assert_ok(&reply);
    texts.push(("/v1/distributor/usage?month=", reply.text));
    for (path, text) in &texts {
        for id in foreign {
            assert!(!text.contains(id), "{path} mentions a foreign id {id}: {text}");
        }
    }
    let me = api.me().await;
    assert_eq!(me["partnersCount"], own.len(), "{me}");
    let usage = api.usage("").await;
    assert_eq!(usage["totalPartners"], own.len(), "{usage}");
    for line in array(&usage, "byPartner") {
        assert!(own.contains(&str_field(line, "partnerId")), "a foreign line in the usage report: {line}");
    }
}

/// An active partner under `owner` (by `admin create-partner --distributor`) with one customer
/// and one run of its own.
async fn active_partner(
    ctx: &Ctx,
    server: &Server,
    label: &'static str,
    email: &str,
    owner: Option<(&Value, &DistributorApi)>,
) -> Target {
    let created = create_partner(ctx, label, email, "professional", owner.map(|(d, _)| str_field(d, "id"))).await;
    let key = PartnerApi::new(server, str_field(&created, "key"));
    let reply = key.post("/v1/partner/customers", &contoso()).await;
    let customer = str_field(assert_status(&reply, 201), "id").to_owned();
    let reply =
        key.post("/v1/partner/assessments", &json!({"customerId": customer, "product": "essential-eight"})).await;
    assert_status(&reply, 202);
    Target {
        label,
        id: str_field(&created, "id").to_owned(),
        key: Some(key),
        owner: owner.map(|(_, api)| api.clone()),
        customer: Some(customer),
    }
}

async fn no_distributor_reaches_a_partner_it_does_not_own(ctx: &Ctx) {
    let server = serve_open(ctx).await;
    let a_created = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let b_created = create_distributor(ctx, "Other Distribution", "ops@otherdist.example").await;
    let a = DistributorApi::new(&server, str_field(&a_created, "key"));
    let b = DistributorApi::new(&server, str_field(&b_created, "key"));

    // A: one active partner (admin), one provisioned over the API and activated, one pending.
    let a_active =
        active_partner(ctx, &server, "A's active partner", "ops@a-msp.example", Some((&a_created, &a))).await;
    let a_provisioned = a.provision(&new_msp()).await;
    let a_provisioned_key = PartnerApi::new(&server, &a.activate(&a_provisioned).await);
    let a_customer = a.create_customer(&a_provisioned, &contoso()).await;
    a.trigger(&a_provisioned, &a_customer).await;
    let reply = a.post("/v1/distributor/partners/bulk", &msp_alpha_and_beta()).await;
    let a_pending = str_field(&array(assert_status(&reply, 201), "partners")[0], "id").to_owned();

    // B: one active partner with a customer and a run, one pending.
    let b_active =
        active_partner(ctx, &server, "B's active partner", "ops@b-msp.example", Some((&b_created, &b))).await;
    let b_pending = Target {
        label: "B's pending partner",
        id: b.provision(&new_msp()).await,
        key: None,
        owner: Some(b.clone()),
        customer: None,
    };
    // And a partner of nobody's.
    let direct = active_partner(ctx, &server, "the direct partner", "ops@direct-msp.example", None).await;

    let a_targets = [
        Target {
            label: "A's provisioned partner",
            id: a_provisioned.clone(),
            key: Some(a_provisioned_key),
            owner: Some(a.clone()),
            customer: Some(a_customer.clone()),
        },
        a_active,
        Target {
            label: "A's pending partner",
            id: a_pending.clone(),
            key: None,
            owner: Some(a.clone()),
            customer: None,
        },
    ];
    let b_targets = [b_active, b_pending];

    // A's every attempt on B's partners and the direct one; then B's on A's and the direct one.
    for (intruder, victims) in [(&a, b_targets.iter().chain([&direct])), (&b, a_targets.iter().chain([&direct]))] {
        for victim in victims {
            let before = snapshot(victim).await;
            trespass(intruder, victim).await;
            assert_eq!(
                snapshot(victim).await,
                before,
                "{} changed after a foreign distributor's attempts",
                victim.label
            );
            // An active partner's key still works (a pending one's status is in the snapshot).
            if let Some(key) = &victim.key {
                assert_eq!(key.me().await["status"], "active", "{}", victim.label);
            }
        }
    }

    // A foreign customer id through one's own partner is not found either, like an unknown one.
    let foreign_customer = b_targets[0].customer.clone().expect("B's partner has a customer");
    let path = format!("/v1/distributor/partners/{}/assessments", a_targets[0].id);
    let trigger = |c: &str| json!({"customerId": c, "product": "essential-eight"});
    let runs_before = a.get(&path).await.body;
    assert_hidden(
        &a.post(&path, &trigger(&foreign_customer)).await,
        &a.post(&path, &trigger(&unknown_like(&foreign_customer))).await,
        "a trigger for B's customer through A's partner",
    );
    assert_eq!(a.get(&path).await.body, runs_before, "nothing was queued");

    // Lists, reports and profiles show only one's own.
    let a_ids: Vec<&str> = a_targets.iter().map(|t| t.id.as_str()).collect();
    let b_ids: Vec<&str> = b_targets.iter().map(|t| t.id.as_str()).collect();
    let mut a_foreign: Vec<&str> = b_ids.clone();
    a_foreign.push(&direct.id);
    let mut b_foreign: Vec<&str> = a_ids.clone();
    b_foreign.push(&direct.id);
    // A's own list holds MSP Beta too (the second bulk partner): every partner A provisioned.
    let a_all = a.partner_ids("").await;
    assert_eq!(a_all.len(), 4, "A's three targets and MSP Beta: {a_all:?}");
    let a_all: Vec<&str> = a_all.iter().map(String::as_str).collect();
    assert_sees_only(&a, &a_all, &a_foreign).await;
    assert_sees_only(&b, &b_ids, &b_foreign).await;
    let usage = a.usage("").await;
    assert_eq!((&usage["totalRuns"], &usage["totalCustomers"]), (&json!(2), &json!(2)), "{usage}");
    let usage = b.usage("").await;
    assert_eq!((&usage["totalRuns"], &usage["totalCustomers"]), (&json!(1), &json!(1)), "{usage}");
}
