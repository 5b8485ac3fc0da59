//! `GET /v1/partner/me` and `GET /v1/distributor/me`: the reference shapes, exactly, under
//! both `/v1` and `/api/v1`.

use partnerd_e2e::{Server, str_field};

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, assert_distributor_me, assert_ok, assert_partner_me, create_distributor,
    create_partner, on_both_backends,
};

on_both_backends!(partner_me_has_the_reference_shape, distributor_me_counts_its_own_partners);

async fn partner_me_has_the_reference_shape(ctx: &Ctx) {
    let professional = create_partner(ctx, "Acme MSP", "admin@acmemsp.com", "professional", None).await;
    let enterprise = create_partner(ctx, "Big MSP", "it@bigmsp.example", "enterprise", None).await;
    let starter = create_partner(ctx, "Small MSP", "hi@small.example", "starter", None).await;
    let server = Server::serve(ctx.url()).await;

    for created in [&professional, &enterprise, &starter] {
        let key = str_field(created, "key");
        let v1 = server.get_with("/v1/partner/me", PARTNER_HEADER, key).await;
        assert_partner_me(assert_ok(&v1), created);
        let api = server.get_with("/api/v1/partner/me", PARTNER_HEADER, key).await;
        assert_partner_me(assert_ok(&api), created);
        assert_eq!(api.body, v1.body, "/api/v1 and /v1 answer the same");
    }
    // Spot-check the values a user reads first.
    let me = server.get_with("/v1/partner/me", PARTNER_HEADER, str_field(&professional, "key")).await;
    assert_eq!(me.body["usage"]["runsLimit"], 200);
    assert_eq!(me.body["company"], "Acme MSP");
    let me = server.get_with("/v1/partner/me", PARTNER_HEADER, str_field(&enterprise, "key")).await;
    assert_eq!(me.body["usage"]["runsLimit"], -1, "enterprise is unlimited");
    assert_eq!(me.body["plan"], "enterprise");
}

async fn distributor_me_counts_its_own_partners(ctx: &Ctx) {
    let mine = create_distributor(ctx, "Global Security Distribution", "ops@globalsecdist.com").await;
    let other = create_distributor(ctx, "Other Distribution", "ops@other.example").await;
    let lonely = create_distributor(ctx, "Lonely Distribution", "ops@lonely.example").await;
    let (mine_id, other_id) = (str_field(&mine, "id"), str_field(&other, "id"));
    create_partner(ctx, "MSP One", "one@msp.example", "professional", Some(mine_id)).await;
    create_partner(ctx, "MSP Two", "two@msp.example", "starter", Some(mine_id)).await;
    create_partner(ctx, "MSP Three", "three@msp.example", "enterprise", Some(other_id)).await;
    create_partner(ctx, "Direct MSP", "direct@msp.example", "professional", None).await;
    let server = Server::serve(ctx.url()).await;

    for (created, partners) in [(&mine, 2), (&other, 1), (&lonely, 0)] {
        let key = str_field(created, "key");
        let v1 = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, key).await;
        assert_distributor_me(assert_ok(&v1), created, partners);
        let api = server.get_with("/api/v1/distributor/me", DISTRIBUTOR_HEADER, key).await;
        assert_distributor_me(assert_ok(&api), created, partners);
        assert_eq!(api.body, v1.body, "/api/v1 and /v1 answer the same");
    }
}
