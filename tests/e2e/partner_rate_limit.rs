//! The per-key rate limit, through the binary: with `--partner-rate-limit 5`, a key's sixth
//! request within the minute gets `429 RATE_LIMITED` with an integer `Retry-After` and the
//! reference's message; the refused request does nothing; other keys are unaffected.

use partnerd_e2e::{Server, str_field};
use serde_json::json;

use crate::support::{Ctx, PartnerApi, assert_ok, assert_rate_limited, create_partner, on_both_backends};

on_both_backends!(the_sixth_request_of_a_key_is_rate_limited_and_others_are_not);

const LIMIT: usize = 5;

async fn the_sixth_request_of_a_key_is_rate_limited_and_others_are_not(ctx: &Ctx) {
    let acme = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "starter", None).await;
    let other = create_partner(ctx, "SecureIT Partners", "ops@secureit.example", "starter", None).await;
    let server = Server::serve_with(ctx.url(), &["--partner-rate-limit", &LIMIT.to_string()]).await;
    let api = PartnerApi::new(&server, str_field(&acme, "key"));
    let bystander = PartnerApi::new(&server, str_field(&other, "key"));

    // Five requests pass, on either prefix; the fifth makes a second key for later.
    for path in ["/v1/partner/me", "/api/v1/partner/me", "/v1/partner/customers", "/api/v1/partner/products"] {
        assert_ok(&api.get(path).await);
    }
    let second = api.new_key().await;

    // The sixth is refused, in the reference's words.
    let refused = api.get("/v1/partner/me").await;
    let retry_after = assert_rate_limited(&refused);
    assert!(retry_after <= 60, "Retry-After {retry_after}s at {LIMIT} requests a minute");
    let policy =
        refused.header("ratelimit-policy").unwrap_or_else(|| panic!("no RateLimit-Policy: {:?}", refused.headers));
    assert!(policy.starts_with(&format!("{LIMIT};")), "RateLimit-Policy {policy:?}");
    assert!(refused.header("ratelimit").is_some(), "no RateLimit header: {:?}", refused.headers);

    // So is everything else with that key, and a refused write does nothing.
    let write = api
        .post(
            "/v1/partner/customers",
            &json!({"name": "Contoso Ltd", "tenantId": "d4f5a678-1234-5678-9abc-def012345678"}),
        )
        .await;
    assert_rate_limited(&write);
    assert_rate_limited(&api.get("/api/v1/partner/me").await);

    // The account's other key has its own allowance, and sees that nothing was created.
    assert!(second.customers().await.is_empty(), "a rate-limited POST created a customer");
    // Another partner's key is unaffected: its own five pass, then its own sixth is refused.
    for _ in 0..LIMIT {
        let me = bystander.me().await;
        assert_eq!(me["company"], "SecureIT Partners");
    }
    assert_rate_limited(&bystander.get("/v1/partner/me").await);
}
