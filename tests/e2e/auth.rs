//! Authentication failures, in the reference's error envelope.

use partnerd_e2e::{Server, str_field};

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, assert_error, assert_ok, create_distributor, create_partner,
    create_worker, on_both_backends,
};

on_both_backends!(a_missing_key_is_401_missing_key, a_wrong_key_is_401_invalid_key);

async fn a_missing_key_is_401_missing_key(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Dist", "ops@dist.example").await;
    let partner = create_partner(ctx, "MSP", "msp@msp.example", "professional", None).await;
    let server = Server::serve(ctx.url()).await;

    for path in ["/v1/partner/me", "/api/v1/partner/me"] {
        let message = assert_error(&server.get(path, &[]).await, 401, "MISSING_KEY");
        assert!(!message.contains(DISTRIBUTOR_HEADER), "a partner route points at the wrong header: {message:?}");
        // A distributor key in its own header is not a partner key in X-Partner-Key.
        let only_other_header = server.get_with(path, DISTRIBUTOR_HEADER, str_field(&distributor, "key")).await;
        assert_error(&only_other_header, 401, "MISSING_KEY");
    }
    for path in ["/v1/distributor/me", "/api/v1/distributor/me"] {
        let message = assert_error(&server.get(path, &[]).await, 401, "MISSING_KEY");
        assert!(!message.contains(PARTNER_HEADER), "a distributor route points at the wrong header: {message:?}");
        let only_other_header = server.get_with(path, PARTNER_HEADER, str_field(&partner, "key")).await;
        assert_error(&only_other_header, 401, "MISSING_KEY");
    }
}

async fn a_wrong_key_is_401_invalid_key(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Dist", "ops@dist.example").await;
    let partner =
        create_partner(ctx, "MSP", "msp@msp.example", "professional", Some(str_field(&distributor, "id"))).await;
    let worker = create_worker(ctx, "scanner-1").await;
    let (pk, dk, wk) = (str_field(&partner, "key"), str_field(&distributor, "key"), str_field(&worker, "key"));
    let server = Server::serve(ctx.url()).await;

    // A well-formed key nobody was given: the real key with its last digit changed.
    let unknown_pk = flip_last_hex_digit(pk);
    let unknown_dk = flip_last_hex_digit(dk);
    let partner_cases = [
        ("an unknown pk_live_ key", unknown_pk.as_str()),
        ("a made-up short pk_live_ key", "pk_live_abc123def456"),
        ("a malformed key", "not-a-key"),
        ("a distributor key", dk),
        ("a worker key", wk),
    ];
    for (what, key) in partner_cases {
        let reply = server.get_with("/v1/partner/me", PARTNER_HEADER, key).await;
        assert_eq!(reply.status, 401, "{what} in {PARTNER_HEADER}: {}", reply.text);
        assert_error(&reply, 401, "INVALID_KEY");
    }
    let distributor_cases = [
        ("an unknown dk_live_ key", unknown_dk.as_str()),
        ("a made-up short dk_live_ key", "dk_live_xyz789ghi012"),
        ("a partner key", pk),
        ("a worker key", wk),
    ];
    for (what, key) in distributor_cases {
        let reply = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, key).await;
        assert_eq!(reply.status, 401, "{what} in {DISTRIBUTOR_HEADER}: {}", reply.text);
        assert_error(&reply, 401, "INVALID_KEY");
    }

    // The real keys, in the right headers, still work after all of that.
    assert_ok(&server.get_with("/v1/partner/me", PARTNER_HEADER, pk).await);
    assert_ok(&server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await);
}

fn flip_last_hex_digit(key: &str) -> String {
    let (head, last) = key.split_at(key.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}
