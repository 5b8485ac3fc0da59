//! The per-key distributor rate limit, through the binary: with `--distributor-rate-limit 3`, a
//! distributor key's fourth request within the minute gets `429 RATE_LIMITED` with an integer
//! `Retry-After` and the reference's message; the refused request does nothing; other
//! distributors' keys and the distributor's partners' keys are unaffected.

use partnerd_e2e::{Server, str_field};

use crate::support::{
    Ctx, DistributorApi, PartnerApi, assert_ok, assert_rate_limited, contoso, create_distributor, create_partner,
    on_both_backends,
};

on_both_backends!(the_fourth_request_of_a_distributor_key_is_rate_limited_and_others_are_not);

const LIMIT: usize = 3;

async fn the_fourth_request_of_a_distributor_key_is_rate_limited_and_others_are_not(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let other = create_distributor(ctx, "Other Distribution", "ops@otherdist.example").await;
    let partner =
        create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", Some(str_field(&distributor, "id"))).await;
    let server = Server::serve_with(ctx.url(), &["--distributor-rate-limit", &LIMIT.to_string()]).await;
    let api = DistributorApi::new(&server, str_field(&distributor, "key"));
    let bystander = DistributorApi::new(&server, str_field(&other, "key"));
    let acme = PartnerApi::new(&server, str_field(&partner, "key"));
    let acme_id = str_field(&partner, "id");

    // Three requests pass, on either prefix.
    for path in ["/v1/distributor/me", "/api/v1/distributor/partners", "/v1/distributor/usage"] {
        assert_ok(&api.get(path).await);
    }

    // The fourth is refused, in the reference's words.
    let refused = api.get("/v1/distributor/me").await;
    let retry_after = assert_rate_limited(&refused);
    assert!(retry_after <= 60, "Retry-After {retry_after}s at {LIMIT} requests a minute");
    let policy =
        refused.header("ratelimit-policy").unwrap_or_else(|| panic!("no RateLimit-Policy: {:?}", refused.headers));
    assert!(policy.starts_with(&format!("{LIMIT};")), "RateLimit-Policy {policy:?}");
    assert!(refused.header("ratelimit").is_some(), "no RateLimit header: {:?}", refused.headers);

    // So is everything else with that key, and a refused write does nothing.
    let write = api.post(&format!("/v1/distributor/partners/{acme_id}/customers"), &contoso()).await;
    assert_rate_limited(&write);
    assert_rate_limited(&api.post_empty(&format!("/api/v1/distributor/partners/{acme_id}/suspend")).await);
    assert_rate_limited(&api.get("/api/v1/distributor/me").await);

    // The partner sees that nothing happened: still active, no customer.
    assert_eq!(acme.me().await["status"], "active");
    assert!(acme.customers().await.is_empty(), "a rate-limited POST created a customer");

    // Another distributor's key has its own allowance: its own three pass, its fourth is refused.
    for _ in 0..LIMIT {
        let me = bystander.me().await;
        assert_eq!(me["company"], "Other Distribution");
    }
    assert_rate_limited(&bystander.get("/v1/distributor/me").await);
}
