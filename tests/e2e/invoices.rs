//! Invoicing through the real binary: `serve`'s invoicing task issues each active partner's
//! first invoice, the Partner and Distributor APIs show it (JSON and PDF), a restart issues
//! nothing twice, two processes on one PostgreSQL issue each invoice once, and the operator sets a
//! distributor's discount with `admin set-distributor-discount`.

use std::time::{Duration, Instant};

use partnerd_e2e::{Server, admin_output, run_raw, str_field};
use serde_json::{Value, json};

use crate::support::{
    Ctx, DistributorApi, PARTNER_HEADER, PartnerApi, assert_error, assert_ok, create_distributor, create_partner,
    on_both_backends, on_postgres_only,
};

on_both_backends!(
    a_running_server_invoices_each_active_partner_once,
    the_operator_sets_a_distributors_discount,
    a_stripe_provider_without_a_usable_configuration_refuses_to_start,
);
on_postgres_only!(two_processes_issue_each_invoice_once);

const INVOICES: &str = "/v1/partner/billing/invoices";
/// Invoice often, so the scenario does not wait; no rate limits in the way.
const FAST: [&str; 6] = ["--invoice-interval", "100ms", "--partner-rate-limit", "0", "--distributor-rate-limit", "0"];

/// Polls the partner's invoice list until it holds `count` invoices (or 30 s pass).
async fn invoices_once_there(api: &PartnerApi, count: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = assert_ok(&api.get(INVOICES).await).clone();
        if list["total"] == json!(count) || Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pdf_text(server: &Server, path: &str, header: &str, key: &str) -> String {
    let res = server.http().get(server.url(path)).header(header, key).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let bytes = res.bytes().await.unwrap();
    let doc = lopdf::Document::load_mem(&bytes).expect("a well-formed PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    doc.extract_text(&pages).expect("the PDF's text")
}

async fn a_running_server_invoices_each_active_partner_once(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Distribution", "ops@global.example").await;
    let managed =
        create_partner(ctx, "Acme MSP", "admin@acme.example", "professional", Some(str_field(&distributor, "id")))
            .await;
    let direct = create_partner(ctx, "Direct MSP", "admin@direct.example", "starter", None).await;
    let server = Server::serve_with(ctx.url(), &FAST).await;
    let acme = PartnerApi::new(&server, str_field(&managed, "key"));
    let other = PartnerApi::new(&server, str_field(&direct, "key"));

    // `admin create-partner` defaults to USD, billed quarterly: professional is 852.15.
    let list = invoices_once_there(&acme, 1).await;
    assert_eq!((list["total"].clone(), list["has_more"].clone()), (json!(1), json!(false)), "{list}");
    let invoice = &list["invoices"][0];
    let id = str_field(invoice, "id").to_owned();
    assert!(id.starts_with("inv_"), "{invoice}");
    let (start, end) = (str_field(invoice, "periodStart"), str_field(invoice, "periodEnd"));
    assert!(start < end, "{invoice}");
    assert_eq!(invoice["period"], start[..7], "the month the period starts in");
    assert_eq!(
        [&invoice["subtotal"], &invoice["discount"], &invoice["total"], &invoice["currency"], &invoice["status"]],
        [&json!("852.15"), &json!("0.00"), &json!("852.15"), &json!("usd"), &json!("open")]
    );
    assert_eq!(invoice["pdfUrl"], format!("{INVOICES}/{id}/pdf"));

    let detail = assert_ok(&acme.get(&format!("{INVOICES}/{id}")).await).clone();
    assert_eq!(
        detail["lines"],
        json!([{
            "kind": "plan_fee",
            "description": "professional (quarterly)",
            "amount": "852.15",
            "periodStart": start,
            "periodEnd": end,
        }])
    );
    let text = pdf_text(&server, &format!("{INVOICES}/{id}/pdf"), PARTNER_HEADER, str_field(&managed, "key")).await;
    for needle in [format!("Invoice {id}"), "professional (quarterly)".into(), "852.15 USD".into()] {
        assert!(text.contains(&needle), "{needle:?} is not in the PDF's text:\n{text}");
    }

    // The direct partner has its own (starter, 282.15), and cannot reach Acme's.
    let theirs = invoices_once_there(&other, 1).await;
    assert_eq!(theirs["invoices"][0]["total"], "282.15", "{theirs}");
    for path in [format!("{INVOICES}/{id}"), format!("{INVOICES}/{id}/pdf")] {
        assert_error(&other.get(&path).await, 404, "NOT_FOUND");
    }
    // The distributor is invoiced when the month has ended; not yet.
    let d = DistributorApi::new(&server, str_field(&distributor, "key"));
    let mine = assert_ok(&d.get("/v1/distributor/billing/invoices").await).clone();
    assert_eq!(mine, json!({"invoices": [], "total": 0, "has_more": false}));
    assert_error(&d.get(&format!("/v1/distributor/billing/invoices/{id}")).await, 404, "NOT_FOUND");

    // A restart runs the invoicing again at once: nothing is issued twice.
    drop(server);
    let server = Server::serve_with(ctx.url(), &FAST).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acme = PartnerApi::new(&server, str_field(&managed, "key"));
    let again = assert_ok(&acme.get(INVOICES).await).clone();
    assert_eq!(again["total"], 1, "{again}");
    assert_eq!(again["invoices"][0]["id"], id.as_str());
}

async fn two_processes_issue_each_invoice_once(ctx: &Ctx) {
    let partners: Vec<Value> = {
        let mut out = Vec::new();
        for i in 0..12 {
            out.push(create_partner(ctx, &format!("MSP {i}"), &format!("admin{i}@msp.example"), "starter", None).await);
        }
        out
    };
    let (a, b) = tokio::join!(Server::serve_with(ctx.url(), &FAST), Server::serve_with(ctx.url(), &FAST));
    for (i, p) in partners.iter().enumerate() {
        let server = if i % 2 == 0 { &a } else { &b };
        let list = invoices_once_there(&PartnerApi::new(server, str_field(p, "key")), 1).await;
        assert_eq!(list["total"], 1, "partner {i}: {list}");
    }
    // Both keep invoicing every 100 ms: give them a few more passes, then count again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for p in &partners {
        let list = assert_ok(&PartnerApi::new(&a, str_field(p, "key")).get(INVOICES).await).clone();
        assert_eq!(list["total"], 1, "{list}");
    }
}

async fn the_operator_sets_a_distributors_discount(ctx: &Ctx) {
    let distributor = create_distributor(ctx, "Global Distribution", "ops@global.example").await;
    let id = str_field(&distributor, "id");
    let set = |percent: &'static str| {
        let url = ctx.url().to_owned();
        let id = id.to_owned();
        async move { admin_output(&url, &["set-distributor-discount", "--id", &id, "--percent", percent]).await }
    };
    assert_eq!(set("12.5").await.json(), json!({"id": id, "discountPercent": "12.5"}));
    assert_eq!(set("0").await.json(), json!({"id": id, "discountPercent": "0"}));
    assert_eq!(set("default").await.json(), json!({"id": id, "discountPercent": "20"}));
    for bad in ["100.01", "-1", "abc", ""] {
        let out = set(bad).await;
        assert!(!out.status.success(), "{bad:?} was accepted: {}", out.stdout);
        assert!(out.stderr.contains("percent"), "{bad:?}: {}", out.stderr);
    }
    let missing = admin_output(
        ctx.url(),
        &["set-distributor-discount", "--id", "dist_000000000000000000000000", "--percent", "10"],
    )
    .await;
    assert!(!missing.status.success());
    assert!(missing.stderr.contains("dist_000000000000000000000000"), "{}", missing.stderr);
}

/// `--billing-provider stripe` is checked at start: without a key, or with a key bound for plain
/// http off loopback, `serve` stops with a message naming what to fix, and never echoes the key.
async fn a_stripe_provider_without_a_usable_configuration_refuses_to_start(ctx: &Ctx) {
    let serve = ["serve", "--database-url", ctx.url(), "--bind", "127.0.0.1:0", "--billing-provider", "stripe"];
    let no_key = run_raw(&serve, &[("PARTNERD_STRIPE_SECRET_KEY", "")]).await;
    assert!(!no_key.status.success(), "{}", no_key.stdout);
    assert!(no_key.stderr.contains("PARTNERD_STRIPE_SECRET_KEY"), "{}", no_key.stderr);
    assert!(!no_key.stdout.contains("listening on"), "{}", no_key.stdout);

    let secret = "sk_test_e2e_must_not_be_printed";
    let mut args = serve.to_vec();
    args.extend(["--stripe-api-base", "http://stripe.example.com"]);
    let plain_http = run_raw(&args, &[("PARTNERD_STRIPE_SECRET_KEY", secret)]).await;
    assert!(!plain_http.status.success(), "{}", plain_http.stdout);
    assert!(plain_http.stderr.to_lowercase().contains("stripe"), "{}", plain_http.stderr);
    assert!(!plain_http.stderr.contains(secret) && !plain_http.stdout.contains(secret), "{}", plain_http.stderr);
}
