//! `partnerd admin …`: works on a fresh database (it migrates first), works while a server runs
//! on the same database, takes the database from `--database-url` or its environment twin, and
//! rejects bad input without changing anything.

use partnerd_e2e::{CommandOutput, Server, TestDatabase, admin, admin_output, run_raw, str_field};

use crate::support::{
    Ctx, DISTRIBUTOR_HEADER, PARTNER_HEADER, assert_created_distributor, assert_created_partner, assert_distributor_me,
    assert_keys, assert_ok, assert_partner_me, create_distributor, create_partner, on_both_backends,
};

on_both_backends!(
    admin_commands_work_on_a_fresh_database,
    admin_commands_work_while_a_server_runs,
    admin_rejects_bad_input_and_changes_nothing,
    database_url_from_the_environment,
);

/// Each admin command as the very first thing that touches an empty database.
async fn admin_commands_work_on_a_fresh_database(ctx: &Ctx) {
    // create-partner first, on the scenario's empty database.
    let partner = admin(
        ctx.url(),
        &[
            "create-partner",
            "--company",
            "Acme MSP",
            "--email",
            "admin@acmemsp.com",
            "--name",
            "John Doe",
            "--plan",
            "professional",
        ],
    )
    .await;
    assert_created_partner(&partner, "professional", None);

    // create-distributor first, on another empty database.
    let db = TestDatabase::new(ctx.backend).await.expect("a second database");
    let distributor =
        admin(db.url(), &["create-distributor", "--company", "Dist", "--email", "ops@dist.example"]).await;
    assert_created_distributor(&distributor, "Dist", "ops@dist.example");

    // create-worker first, on a third.
    let db_worker = TestDatabase::new(ctx.backend).await.expect("a third database");
    let worker = admin(db_worker.url(), &["create-worker", "--name", "scanner"]).await;
    assert!(str_field(&worker, "key").starts_with("wk_live_"), "{worker}");

    // suspend-distributor first, on a fourth: a clean "no such distributor", not a schema error.
    let db_suspend = TestDatabase::new(ctx.backend).await.expect("a fourth database");
    let missing =
        admin_output(db_suspend.url(), &["suspend-distributor", "--id", "dist_000000000000000000000000"]).await;
    assert!(!missing.status.success(), "{missing:?}");
    assert!(missing.stdout.trim().is_empty(), "{missing:?}");
    assert!(
        missing.stderr.contains("dist_000000000000000000000000"),
        "the error names the distributor it could not find: {missing:?}"
    );
    assert!(
        !missing.stderr.to_lowercase().contains("no such table")
            && !missing.stderr.to_lowercase().contains("does not exist"),
        "the schema was brought up to date first: {missing:?}"
    );

    // The keys printed on fresh databases work.
    let server = Server::serve(ctx.url()).await;
    let me = server.get_with("/v1/partner/me", PARTNER_HEADER, str_field(&partner, "key")).await;
    assert_partner_me(assert_ok(&me), &partner);
    let server = Server::serve(db.url()).await;
    let me = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, str_field(&distributor, "key")).await;
    assert_distributor_me(assert_ok(&me), &distributor, 0);
}

async fn admin_commands_work_while_a_server_runs(ctx: &Ctx) {
    let server = Server::serve(ctx.url()).await;

    let distributor = create_distributor(ctx, "Live Dist", "ops@live.example").await;
    let dk = str_field(&distributor, "key");
    let me = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await;
    assert_distributor_me(assert_ok(&me), &distributor, 0);

    let id = str_field(&distributor, "id");
    for (n, email) in ["one@live.example", "two@live.example"].into_iter().enumerate() {
        let partner = create_partner(ctx, "Live MSP", email, "enterprise", Some(id)).await;
        let me = server.get_with("/v1/partner/me", PARTNER_HEADER, str_field(&partner, "key")).await;
        assert_partner_me(assert_ok(&me), &partner);
        // The running server counts the partner the moment it exists.
        let me = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, dk).await;
        assert_distributor_me(assert_ok(&me), &distributor, n as u64 + 1);
    }
}

async fn bad_partner(ctx: &Ctx, email: &str, plan: &str, distributor: &str) -> CommandOutput {
    admin_output(
        ctx.url(),
        &[
            "create-partner",
            "--company",
            "Bad MSP",
            "--email",
            email,
            "--name",
            "N",
            "--plan",
            plan,
            "--distributor",
            distributor,
        ],
    )
    .await
}

async fn admin_rejects_bad_input_and_changes_nothing(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Dist", "ops@dist.example").await;
    let id = str_field(&distributor, "id");
    let cases = [
        ("an unknown plan", bad_partner(ctx, "ok@msp.example", "platinum", id).await, "plan"),
        ("a malformed e-mail", bad_partner(ctx, "not-an-email", "starter", id).await, "email"),
        (
            "an unknown distributor",
            bad_partner(ctx, "ok@msp.example", "starter", "dist_000000000000000000000000").await,
            "dist_000000000000000000000000",
        ),
    ];
    for (what, out, named) in cases {
        assert!(!out.status.success(), "{what} is rejected: {out:?}");
        assert!(out.stdout.trim().is_empty(), "{what}: nothing on stdout: {out:?}");
        assert!(out.stderr.contains(named), "{what}: the error names {named:?}: {out:?}");
    }
    let unknown = admin_output(ctx.url(), &["activate-distributor", "--id", "dist_nope"]).await;
    assert!(!unknown.status.success(), "{unknown:?}");
    assert!(unknown.stdout.trim().is_empty(), "{unknown:?}");

    // Nothing was created.
    let server = Server::serve(ctx.url()).await;
    let me = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, str_field(&distributor, "key")).await;
    assert_distributor_me(assert_ok(&me), &distributor, 0);
}

/// `PARTNERD_DATABASE_URL=URL partnerd admin <args…>`; must succeed with one JSON object.
async fn admin_with_env(url: &str, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["admin"];
    full.extend_from_slice(args);
    let out = run_raw(&full, &[("PARTNERD_DATABASE_URL", url)]).await;
    assert!(
        out.status.success(),
        "`PARTNERD_DATABASE_URL={url} partnerd {}` fails: {}",
        full.join(" "),
        out.stderr.trim()
    );
    out.json()
}

/// Every admin command takes the database from `PARTNERD_DATABASE_URL`, the environment twin of
/// `--database-url` (which every other scenario passes as a flag, after the subcommand).
async fn database_url_from_the_environment(ctx: &Ctx) {
    let url = ctx.url();
    let distributor = admin_with_env(url, &["create-distributor", "--company", "C", "--email", "e@x.com"]).await;
    assert_created_distributor(&distributor, "C", "e@x.com");
    let id = str_field(&distributor, "id");
    let partner = admin_with_env(
        url,
        &[
            "create-partner",
            "--company",
            "C",
            "--email",
            "e@x.com",
            "--name",
            "N",
            "--plan",
            "professional",
            "--distributor",
            id,
        ],
    )
    .await;
    assert_created_partner(&partner, "professional", Some(id));
    let worker = admin_with_env(url, &["create-worker", "--name", "N"]).await;
    assert!(str_field(&worker, "key").starts_with("wk_live_"), "{worker}");
    let suspended = admin_with_env(url, &["suspend-distributor", "--id", id]).await;
    assert_keys(&suspended, &["id", "status"]);
    assert_eq!(suspended["status"], "suspended");
    let activated = admin_with_env(url, &["activate-distributor", "--id", id]).await;
    assert_eq!(activated["status"], "active");

    // They all went to the database named by the variable.
    let server = Server::serve(url).await;
    let me = server.get_with("/v1/partner/me", PARTNER_HEADER, str_field(&partner, "key")).await;
    assert_partner_me(assert_ok(&me), &partner);
    let me = server.get_with("/v1/distributor/me", DISTRIBUTOR_HEADER, str_field(&distributor, "key")).await;
    assert_distributor_me(assert_ok(&me), &distributor, 1);
}
