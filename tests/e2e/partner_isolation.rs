//! Tenant isolation through the binary: a partner that names another partner's customer or run
//! gets exactly what it gets for an id that does not exist — `404 NOT_FOUND` (or nothing, for a
//! list filter) — and the owner's data does not change.

use partnerd_e2e::{Reply, str_field};
use serde_json::{Value, json};

use crate::support::{
    Ctx, PartnerApi, array, assert_error, assert_no_content, assert_ok, assert_status, create_partner,
    on_both_backends, serve_unlimited,
};

on_both_backends!(no_partner_reaches_another_partners_customers_runs_or_keys);

/// One partner's world, as it can see it.
struct Tenant {
    api: PartnerApi,
    customer: String,
    run: String,
}

/// Everything the owner can read about its account, for before/after comparison.
async fn snapshot(t: &Tenant) -> Vec<Value> {
    let mut seen = vec![t.api.me().await];
    for path in [
        "/v1/partner/customers".to_owned(),
        format!("/v1/partner/customers/{}", t.customer),
        "/v1/partner/assessments".to_owned(),
        format!("/v1/partner/assessments/{}", t.run),
    ] {
        seen.push(assert_ok(&t.api.get(&path).await).clone());
    }
    seen
}

async fn tenant(ctx: &Ctx, server: &partnerd_e2e::Server, company: &str, email: &str, customer: Value) -> Tenant {
    let created = create_partner(ctx, company, email, "professional", None).await;
    let api = PartnerApi::new(server, str_field(&created, "key"));
    let reply = api.post("/v1/partner/customers", &customer).await;
    let customer = str_field(assert_status(&reply, 201), "id").to_owned();
    let reply = api
        .post(
            "/v1/partner/assessments",
            &json!({"customerId": customer, "product": "essential-eight", "maturityTarget": 3}),
        )
        .await;
    let run = str_field(assert_status(&reply, 202), "id").to_owned();
    // A second key, in slot 2, for the key-slot checks.
    assert_status(&api.post_empty("/v1/partner/keys").await, 201);
    Tenant { api, customer, run }
}

/// A well-formed id of the same kind that names nothing: the last character changed.
fn unknown_like(id: &str) -> String {
    let (head, last) = id.split_at(id.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// `404 NOT_FOUND`, and the very same body as for an id that exists nowhere (no existence leak).
#[track_caller]
fn assert_hidden(reply: &Reply, unknown: &Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {}", reply.text);
    assert_error(reply, 404, "NOT_FOUND");
    assert_error(unknown, 404, "NOT_FOUND");
    assert_eq!(reply.body, unknown.body, "{what}: another partner's id answers like an unknown one");
}

/// `intruder` tries every route with an id on `victim`'s customer and run.
async fn trespass(intruder: &Tenant, victim: &Tenant) {
    let api = &intruder.api;
    let (theirs, nobody) = (&victim.customer, unknown_like(&victim.customer));
    let (their_run, no_run) = (&victim.run, unknown_like(&victim.run));
    let runs_used = api.runs_used().await;

    for prefix in ["/v1", "/api/v1"] {
        let path = |id: &str| format!("{prefix}/partner/customers/{id}");
        assert_hidden(&api.get(&path(theirs)).await, &api.get(&path(&nobody)).await, "GET customer");
        let patch = json!({"name": "Hijacked", "receivers": ["attacker@evil.example"]});
        assert_hidden(&api.put(&path(theirs), &patch).await, &api.put(&path(&nobody), &patch).await, "PUT customer");
        assert_hidden(&api.delete(&path(theirs)).await, &api.delete(&path(&nobody)).await, "DELETE customer");
        let path = |id: &str| format!("{prefix}/partner/assessments/{id}");
        assert_hidden(&api.get(&path(their_run)).await, &api.get(&path(&no_run)).await, "GET assessment");

        // Triggering against their customer.
        let trigger = |id: &str| json!({"customerId": id, "product": "essential-eight", "maturityTarget": 3});
        let path = format!("{prefix}/partner/assessments");
        assert_hidden(
            &api.post(&path, &trigger(theirs)).await,
            &api.post(&path, &trigger(&nobody)).await,
            "trigger with another partner's customerId",
        );

        // Listing runs filtered by their customer: nothing.
        let listed = api.get(&format!("{prefix}/partner/assessments?customerId={theirs}")).await;
        assert!(array(assert_ok(&listed), "runs").is_empty(), "{}", listed.text);
    }

    // Bulk with only their customer ids: accepted as a request, every item NOT_FOUND, nothing queued.
    let reply = api
        .post("/v1/partner/assessments/bulk", &json!({"product": "essential-eight", "customerIds": [theirs, theirs]}))
        .await;
    let body = assert_status(&reply, 202);
    assert_eq!((body["queued"].as_u64(), body["failed"].as_u64()), (Some(0), Some(2)), "{}", reply.text);
    for item in array(body, "runs") {
        assert_eq!(item["status"], "failed", "{item}");
        assert_eq!(item["error"]["code"], "NOT_FOUND", "{item}");
        assert!(item.get("id").is_none_or(Value::is_null), "no run id for a failed item: {item}");
    }
    assert_eq!(api.runs_used().await, runs_used, "nothing was queued, nothing was counted");

    // Mixed with one of its own: only its own is queued.
    let reply = api
        .post(
            "/api/v1/partner/assessments/bulk",
            &json!({"product": "essential-eight", "customerIds": [theirs, intruder.customer], "maturityTarget": 3}),
        )
        .await;
    let body = assert_status(&reply, 202);
    assert_eq!((body["queued"].as_u64(), body["failed"].as_u64()), (Some(1), Some(1)), "{}", reply.text);
    let items = array(body, "runs");
    assert_eq!((&items[0]["status"], &items[0]["error"]["code"]), (&json!("failed"), &json!("NOT_FOUND")));
    assert_eq!((&items[1]["status"], &items[1]["customerId"]), (&json!("queued"), &json!(intruder.customer)));
    assert_eq!(api.runs_used().await, runs_used + 1);

    // Its own lists never show the other's data.
    let customers: Vec<Value> = api.customers().await.iter().map(|c| c["id"].clone()).collect();
    assert_eq!(customers, [json!(intruder.customer)]);
    let runs = api.runs().await;
    assert!(runs.iter().all(|r| r["customerId"] == intruder.customer.as_str()), "{runs:?}");

    // Key slots are per account: revoking "slot 2" revokes the intruder's own slot 2 only.
    assert_no_content(&api.delete("/v1/partner/keys/2").await);
    assert_error(&api.delete("/v1/partner/keys/2").await, 404, "NOT_FOUND");
    assert_status(&api.post_empty("/v1/partner/keys").await, 201);
}

async fn no_partner_reaches_another_partners_customers_runs_or_keys(ctx: &Ctx) {
    let server = serve_unlimited(ctx).await;
    let contoso = json!({"name": "Contoso Ltd", "tenantId": "d4f5a678-1234-5678-9abc-def012345678",
                         "email": "it@contoso.com", "receivers": ["ciso@contoso.com"],
                         "questionnaireRecipients": ["ciso@contoso.com"]});
    let fabrikam = json!({"name": "Fabrikam Inc", "tenantId": "a1b2c3d4-5678-9abc-def0-123456789abc",
                          "email": "admin@fabrikam.com"});
    let a = tenant(ctx, &server, "Acme MSP", "admin@acmemsp.com", contoso).await;
    let b = tenant(ctx, &server, "SecureIT Partners", "ops@secureit.example", fabrikam).await;

    let a_before = snapshot(&a).await;
    trespass(&b, &a).await;
    assert_eq!(snapshot(&a).await, a_before, "A's account is exactly as it was after B's attempts");

    let b_before = snapshot(&b).await;
    trespass(&a, &b).await;
    assert_eq!(snapshot(&b).await, b_before, "B's account is exactly as it was after A's attempts");

    // Both accounts' slot-2 keys were revoked by their owners, one each: both slot-1 keys and
    // the new slot-2 keys still work, so the key-slot checks touched nothing across accounts.
    for t in [&a, &b] {
        assert_eq!(t.api.me().await["status"], "active");
    }
}
