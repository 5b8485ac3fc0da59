//! Unknown routes and methods answer in the reference's envelope; every response carries a
//! request id.

use std::collections::HashSet;

use partnerd_e2e::{Server, str_field};
use reqwest::Method;

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, assert_error, assert_ok, assert_request_id, create_distributor,
    create_partner, on_both_backends,
};

on_both_backends!(unknown_routes_and_methods_get_the_envelope, every_response_has_a_request_id);

async fn unknown_routes_and_methods_get_the_envelope(ctx: &Ctx) {
    let partner = create_partner(ctx, "MSP", "msp@msp.example", "starter", None).await;
    let distributor = create_distributor(ctx, "Dist", "ops@dist.example").await;
    let (pk, dk) = (str_field(&partner, "key"), str_field(&distributor, "key"));
    let server = Server::serve(ctx.url()).await;

    for path in
        ["/", "/v1", "/v1/nope", "/api/v1/nope", "/v2/partner/me", "/v1/partner/me/extra", "/v1/partner/unknown"]
    {
        let anonymous = server.get(path, &[]).await;
        assert_error(&anonymous, 404, "NOT_FOUND");
        // A valid key does not turn an unknown route into anything else.
        let with_key = server.get_with(path, PARTNER_HEADER, pk).await;
        assert_error(&with_key, 404, "NOT_FOUND");
    }

    for (method, path, header, key) in [
        (Method::POST, "/v1/partner/me", PARTNER_HEADER, pk),
        (Method::PUT, "/v1/partner/me", PARTNER_HEADER, pk),
        (Method::DELETE, "/api/v1/partner/me", PARTNER_HEADER, pk),
        (Method::PATCH, "/v1/distributor/me", DISTRIBUTOR_HEADER, dk),
        (Method::POST, "/api/v1/distributor/me", DISTRIBUTOR_HEADER, dk),
    ] {
        let reply = server.request(method.clone(), path, &[(header, key)]).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
        assert_error(&reply, 405, "METHOD_NOT_ALLOWED");
    }

    // The routes themselves are intact.
    assert_ok(&server.get_with("/v1/partner/me", PARTNER_HEADER, pk).await);
    assert_ok(&server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await);
}

async fn every_response_has_a_request_id(ctx: &Ctx) {
    let partner = create_partner(ctx, "MSP", "msp@msp.example", "professional", None).await;
    let pk = str_field(&partner, "key");
    let server = Server::serve(ctx.url()).await;

    let replies = [
        server.get_with("/v1/partner/me", PARTNER_HEADER, pk).await,
        server.get_with("/v1/partner/me", PARTNER_HEADER, pk).await,
        server.get("/v1/partner/me", &[]).await,
        server.get_with("/v1/partner/me", PARTNER_HEADER, "pk_live_nope").await,
        server.get("/v1/distributor/me", &[]).await,
        server.get("/no/such/route", &[]).await,
        server.request(Method::POST, "/v1/partner/me", &[(PARTNER_HEADER, pk)]).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 401, 401, 401, 404, 405]);
    let ids: Vec<String> = replies.iter().map(assert_request_id).collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "request ids repeat: {ids:?}");
}
