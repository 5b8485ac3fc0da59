//! Keys are secrets: after real traffic (valid, wrong and made-up keys, suspensions), nothing
//! the server or the admin commands log contains a key.

use partnerd_e2e::{Mode, Server, admin_output, key_body, key_like_tokens, str_field};
use reqwest::Method;

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, create_distributor, create_partner, create_worker, on_both_backends,
};

on_both_backends!(no_key_reaches_the_logs);

async fn no_key_reaches_the_logs(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Dist", "ops@dist.example").await;
    let id = str_field(&distributor, "id").to_owned();
    let partner = create_partner(ctx, "MSP", "msp@msp.example", "professional", Some(&id)).await;
    let worker = create_worker(ctx, "scanner").await;
    let (pk, dk, wk) = (str_field(&partner, "key"), str_field(&distributor, "key"), str_field(&worker, "key"));
    let made_up = ["pk_live_0123456789abcdef0123456789abcdef", "dk_live_fedcba9876543210fedcba9876543210"];

    // Verbose logging is what an operator turns on to investigate: keys must not appear there
    // either. The default level is exercised by every other scenario's server.
    let server = Server::start(Mode::Serve, ctx.url(), &[("PARTNERD_LOG", "debug")]).await;
    for path in ["/v1/partner/me", "/api/v1/partner/me"] {
        for key in [pk, dk, wk, made_up[0], made_up[1]] {
            server.get_with(path, PARTNER_HEADER, key).await;
        }
    }
    for path in ["/v1/distributor/me", "/api/v1/distributor/me"] {
        for key in [dk, pk, wk, made_up[0], made_up[1]] {
            server.get_with(path, DISTRIBUTOR_HEADER, key).await;
        }
    }
    server.get_with("/v1/nope", PARTNER_HEADER, pk).await;
    server.request(Method::POST, "/v1/partner/me", &[(PARTNER_HEADER, pk)]).await;
    let suspend = admin_output(ctx.url(), &["suspend-distributor", "--id", &id]).await;
    assert!(suspend.status.success(), "{suspend:?}");
    let refused = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    let activate = admin_output(ctx.url(), &["activate-distributor", "--id", &id]).await;
    assert!(activate.status.success(), "{activate:?}");
    let ok = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    let logs = server.logs();
    // The test means something only if requests were logged at all.
    assert!(
        logs.contains("/v1/partner/me") && logs.contains("/v1/distributor/me"),
        "the server logs its requests; got:\n{logs}"
    );
    let leaked = key_like_tokens(&logs);
    assert!(leaked.is_empty(), "keys in the server's logs: {leaked:?}");
    for key in [pk, dk, wk].into_iter().chain(made_up) {
        assert!(!logs.contains(key_body(key)), "the secret part of {}… is in the server's logs", &key[..12]);
    }
    // Nor on the serve command's stdout: it prints its address and nothing else.
    assert_eq!(
        server.stdout_lines(),
        [format!("listening on {}", server.base_url())],
        "serve prints exactly one line on stdout"
    );
    // Admin commands print their key on stdout (once, by design) and never on stderr.
    for out in [&suspend, &activate] {
        assert!(key_like_tokens(&out.stderr).is_empty(), "{out:?}");
        assert!(key_like_tokens(&out.stdout).is_empty(), "{out:?}");
    }
    let created =
        admin_output(ctx.url(), &["create-distributor", "--company", "Again", "--email", "again@dist.example"]).await;
    let key = str_field(&created.json(), "key").to_owned();
    assert!(!created.stderr.contains(key_body(&key)), "{created:?}");
}
