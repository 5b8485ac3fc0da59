//! An operator suspends a distributor from the command line while the server runs.

use partnerd_e2e::{Server, admin, str_field};

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, assert_distributor_me, assert_error, assert_keys, assert_ok,
    assert_partner_me, create_distributor, create_partner, on_both_backends,
};

on_both_backends!(suspending_a_distributor_locks_it_out_but_not_its_partners);

async fn suspending_a_distributor_locks_it_out_but_not_its_partners(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Dist", "ops@dist.example").await;
    let bystander = create_distributor(ctx, "Other", "ops@other.example").await;
    let id = str_field(&distributor, "id");
    let partner = create_partner(ctx, "MSP", "msp@msp.example", "professional", Some(id)).await;
    let (dk, pk) = (str_field(&distributor, "key"), str_field(&partner, "key"));
    let server = Server::serve(ctx.url()).await;

    // Warm up whatever the server might remember about this key.
    let before = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await;
    assert_distributor_me(assert_ok(&before), &distributor, 1);

    let suspended = admin(ctx.url(), &["suspend-distributor", "--id", id]).await;
    assert_keys(&suspended, &["id", "status"]);
    assert_eq!(suspended["id"], id);
    assert_eq!(suspended["status"], "suspended");

    // The very next request is refused, on both prefixes.
    for path in ["/v1/distributor/me", "/api/v1/distributor/me"] {
        let refused = server.get_with(path, DISTRIBUTOR_HEADER, dk).await;
        assert_error(&refused, 403, "DISTRIBUTOR_INACTIVE");
    }
    // Its partner keeps working, and so does every other distributor.
    let partner_me = server.get_with("/v1/partner/me", PARTNER_HEADER, pk).await;
    assert_partner_me(assert_ok(&partner_me), &partner);
    let other = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, str_field(&bystander, "key")).await;
    assert_distributor_me(assert_ok(&other), &bystander, 0);

    let activated = admin(ctx.url(), &["activate-distributor", "--id", id]).await;
    assert_keys(&activated, &["id", "status"]);
    assert_eq!(activated["id"], id);
    assert_eq!(activated["status"], "active");

    // The same key works again at once (suspension kept it), and nothing was lost.
    let after = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await;
    assert_distributor_me(assert_ok(&after), &distributor, 1);
    let partner_me = server.get_with("/v1/partner/me", PARTNER_HEADER, pk).await;
    assert_partner_me(assert_ok(&partner_me), &partner);
}
