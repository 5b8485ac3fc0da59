//! Invoices: `GET /v1/{partner|distributor}/billing/invoices`, `…/{id}` and `…/{id}/pdf`.
//!
//! The fixture bills April and May 2026 with the invoicing service the server runs: first
//! invoices on 1 April, a halfway upgrade on 16 April, renewals on 1 May, and the distributors'
//! April invoices on 1 May.

use std::sync::Arc;

use partnerd_domain::account::{AccountStatus, Partner};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::{Catalog, PlanId};
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::invoice::InvoiceAccount;
use partnerd_domain::keys::{ApiKey, KeyKind};
use partnerd_domain::ports::{Page, PartnerRepository};
use partnerd_domain::services::InvoiceService;
use partnerd_domain::testing::SequentialIds;
use partnerd_domain::values::{BillingInterval, Currency};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{Caller, TestApp, partner};

const APRIL: OffsetDateTime = datetime!(2026-04-01 00:00 UTC);
const MAY: OffsetDateTime = datetime!(2026-05-01 00:00 UTC);
const PARTNER_INVOICES: &str = "/v1/partner/billing/invoices";
const DISTRIBUTOR_INVOICES: &str = "/v1/distributor/billing/invoices";

struct Fixture {
    /// Starter monthly AUD under `distributor`, upgraded to professional on 16 April.
    upgraded: ApiKey,
    /// Professional monthly AUD under `distributor`.
    steady: ApiKey,
    /// A pending partner under `distributor`: never invoiced.
    pending: (PartnerId, ApiKey),
    distributor: ApiKey,
    /// Another distributor, with one starter monthly USD partner.
    other_distributor: ApiKey,
    other_partner: ApiKey,
    /// The upgrade's proration lines as `POST /v1/partner/plan/preview` showed them.
    upgrade_lines: Vec<Value>,
}

async fn partner_on(
    app: &TestApp,
    distributor: &DistributorId,
    plan: &str,
    currency: Currency,
    status: AccountStatus,
) -> (PartnerId, ApiKey) {
    let subscription = Subscription::starting(PlanId::parse(plan).unwrap(), BillingInterval::Monthly, currency, APRIL);
    let p = Partner { subscription, ..partner(&app.ids, Some(distributor), status) };
    let key = ApiKey::generate(KeyKind::Partner, &app.ids);
    PartnerRepository::insert(&*app.store, &p, Some(key.hash())).await.unwrap();
    (p.id, key)
}

async fn fixture(app: &TestApp) -> Fixture {
    let (d, distributor) = app.distributor(AccountStatus::Active).await;
    let (d2, other_distributor) = app.distributor(AccountStatus::Active).await;
    let (_, upgraded) = partner_on(app, &d.id, "starter", Currency::Aud, AccountStatus::Active).await;
    let (_, steady) = partner_on(app, &d.id, "professional", Currency::Aud, AccountStatus::Active).await;
    let pending = partner_on(app, &d.id, "starter", Currency::Aud, AccountStatus::Pending).await;
    let (_, other_partner) = partner_on(app, &d2.id, "starter", Currency::Usd, AccountStatus::Active).await;

    let invoicing =
        InvoiceService::new(app.store.clone(), Arc::new(Catalog::default()), Arc::new(SequentialIds::default()));
    invoicing.issue_due(APRIL).await.unwrap();
    app.clock.set(datetime!(2026-04-16 00:00 UTC));
    let upgrade = json!({"plan": "professional"});
    let preview = app.as_partner(&upgraded).post("/v1/partner/plan/preview", &upgrade).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let upgrade_lines = preview.body["lines"].as_array().expect("proration lines").clone();
    let reply = app.as_partner(&upgraded).post("/v1/partner/plan", &upgrade).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.clock.set(MAY);
    invoicing.issue_due(MAY).await.unwrap();
    Fixture { upgraded, steady, pending, distributor, other_distributor, other_partner, upgrade_lines }
}

/// The list's invoices without their ids and issue times (generated), newest first.
fn summaries(list: &Value) -> Vec<Value> {
    list["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            json!([
                i["period"],
                i["periodStart"],
                i["periodEnd"],
                i["subtotal"],
                i["discount"],
                i["total"],
                i["currency"],
                i["status"],
                i.get("totalAccounts")
            ])
        })
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list["invoices"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

async fn pdf(app: &TestApp, header: &str, key: &ApiKey, path: &str) -> (u16, String, Vec<u8>) {
    let res = app.client.get(app.url(path)).header(header, key.reveal()).send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, res.bytes().await.unwrap().to_vec())
}

/// The text of every page of a PDF, read by an independent parser.
fn pdf_text(bytes: &[u8]) -> String {
    let doc = lopdf::Document::load_mem(bytes).expect("a well-formed PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    doc.extract_text(&pages).expect("text")
}

#[tokio::test]
async fn a_partner_sees_its_first_invoice_and_its_renewal_with_the_upgrade() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let partner = app.as_partner(&f.upgraded);
    let list = partner.get(PARTNER_INVOICES).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!((list.body["total"].clone(), list.body["has_more"].clone()), (json!(2), json!(false)));
    assert_eq!(
        summaries(&list.body),
        [
            json!([
                "2026-05",
                "2026-05-01T00:00:00Z",
                "2026-06-01T00:00:00Z",
                "599.00",
                "0.00",
                "599.00",
                "aud",
                "open",
                null
            ]),
            json!([
                "2026-04",
                "2026-04-01T00:00:00Z",
                "2026-05-01T00:00:00Z",
                "149.00",
                "0.00",
                "149.00",
                "aud",
                "open",
                null
            ]),
        ]
    );
    let may = &list.body["invoices"][0];
    let id = may["id"].as_str().unwrap();
    assert!(id.starts_with("inv_"), "{id}");
    assert_eq!(may["issuedAt"], "2026-05-01T00:00:00Z");
    assert_eq!(may["pdfUrl"], format!("/v1/partner/billing/invoices/{id}/pdf"));

    let detail = partner.get(&format!("{PARTNER_INVOICES}/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let mut expected_lines = vec![json!({
        "kind": "plan_fee",
        "description": "professional (monthly)",
        "amount": "449.00",
        "periodStart": "2026-05-01T00:00:00Z",
        "periodEnd": "2026-06-01T00:00:00Z",
    })];
    for line in &f.upgrade_lines {
        expected_lines.push(json!({
            "kind": line["kind"],
            "description": line["description"],
            "amount": line["amount"],
            "periodStart": line["periodStart"],
            "periodEnd": line["periodEnd"],
        }));
    }
    assert_eq!(detail.body["lines"], json!(expected_lines));
    let amounts: Vec<&str> = f.upgrade_lines.iter().map(|l| l["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["-74.50", "224.50"], "the halfway upgrade of docs/billing.md");
    // The detail is the list's entry plus its lines.
    let mut without_lines = detail.body.clone();
    without_lines.as_object_mut().unwrap().remove("lines");
    assert_eq!(&without_lines, may);
}

#[tokio::test]
async fn the_pdf_shows_the_same_lines_and_totals() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let list = app.as_partner(&f.upgraded).get(PARTNER_INVOICES).await;
    let id = list.body["invoices"][0]["id"].as_str().unwrap().to_owned();
    let (status, content_type, bytes) =
        pdf(&app, "X-Partner-Key", &f.upgraded, &format!("{PARTNER_INVOICES}/{id}/pdf")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    assert!(bytes.starts_with(b"%PDF-"), "{:?}", &bytes[..bytes.len().min(16)]);
    let text = pdf_text(&bytes);
    for needle in [
        format!("Invoice {id}"),
        "2026-05-01 to 2026-06-01".to_owned(),
        "professional (monthly)".to_owned(),
        "449.00".to_owned(),
        "-74.50".to_owned(),
        "224.50".to_owned(),
        "599.00 AUD".to_owned(),
        "0.00 AUD".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle:?} is not in the PDF's text:\n{text}");
    }
    for line in &f.upgrade_lines {
        let description = line["description"].as_str().unwrap();
        let shown: String = description.chars().take(40).collect();
        assert!(text.contains(&shown), "{shown:?} is not in the PDF's text:\n{text}");
    }
}

#[tokio::test]
async fn a_distributor_is_invoiced_for_april_less_its_discount() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let distributor = app.as_distributor(&f.distributor);
    let list = distributor.get(DISTRIBUTOR_INVOICES).await;
    assert_eq!(list.status, 200, "{}", list.body);
    // April's partner invoices: 149.00 + 449.00 = 598.00, less 20 % = 119.60.
    assert_eq!(
        summaries(&list.body),
        [json!([
            "2026-04",
            "2026-04-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
            "598.00",
            "119.60",
            "478.40",
            "aud",
            "open",
            2
        ])]
    );
    assert_eq!((list.body["total"].clone(), list.body["has_more"].clone()), (json!(1), json!(false)));
    let id = ids(&list.body).remove(0);
    let detail = distributor.get(&format!("{DISTRIBUTOR_INVOICES}/{id}")).await;
    let lines: Vec<(String, String)> = detail.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["kind"].as_str().unwrap().to_owned(), l["amount"].as_str().unwrap().to_owned()))
        .collect();
    let mut amounts: Vec<&str> = lines.iter().map(|(_, a)| a.as_str()).collect();
    amounts.sort();
    assert_eq!(amounts, ["149.00", "449.00"]);
    assert!(lines.iter().all(|(k, _)| k == "partner_invoice"), "{lines:?}");

    let (status, content_type, bytes) =
        pdf(&app, "X-Distributor-Key", &f.distributor, &format!("{DISTRIBUTOR_INVOICES}/{id}/pdf")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    let text = pdf_text(&bytes);
    for needle in ["598.00 AUD", "119.60 AUD", "478.40 AUD", "149.00", "449.00"] {
        assert!(text.contains(needle), "{needle:?} is not in the PDF's text:\n{text}");
    }

    let other = app.as_distributor(&f.other_distributor).get(DISTRIBUTOR_INVOICES).await;
    assert_eq!(
        summaries(&other.body),
        [json!([
            "2026-04",
            "2026-04-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
            "99.00",
            "19.80",
            "79.20",
            "usd",
            "open",
            1
        ])]
    );
}

#[tokio::test]
async fn a_pending_partner_is_never_invoiced_and_its_key_is_refused() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let (id, key) = &f.pending;
    app.as_partner(key).get(PARTNER_INVOICES).await.error(403, "PARTNER_INACTIVE");
    let invoices =
        InvoiceService::new(app.store.clone(), Arc::new(Catalog::default()), Arc::new(SequentialIds::default()));
    let list = invoices.list(&InvoiceAccount::Partner(id.clone()), &Page::default()).await.unwrap();
    assert_eq!((list.invoices.len(), list.total), (0, 0));
}

#[tokio::test]
async fn pages_run_newest_first_with_has_more_and_the_total() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let partner = app.as_partner(&f.steady);
    let all = ids(&partner.get(PARTNER_INVOICES).await.body);
    assert_eq!(all.len(), 2);
    let first = partner.get(&format!("{PARTNER_INVOICES}?limit=1")).await;
    assert_eq!(
        (ids(&first.body), first.body["has_more"].clone(), first.body["total"].clone()),
        (vec![all[0].clone()], json!(true), json!(2))
    );
    let second = partner.get(&format!("{PARTNER_INVOICES}?limit=1&starting_after={}", all[0])).await;
    assert_eq!(
        (ids(&second.body), second.body["has_more"].clone(), second.body["total"].clone()),
        (vec![all[1].clone()], json!(false), json!(2))
    );
    let past_the_end = partner.get(&format!("{PARTNER_INVOICES}?limit=1&starting_after={}", all[1])).await;
    assert_eq!((ids(&past_the_end.body), past_the_end.body["has_more"].clone()), (Vec::<String>::new(), json!(false)));
}

#[tokio::test]
async fn a_bad_limit_is_an_invalid_field() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    for (caller, path) in
        [(app.as_partner(&f.steady), PARTNER_INVOICES), (app.as_distributor(&f.distributor), DISTRIBUTOR_INVOICES)]
    {
        for limit in ["0", "101", "-1", "abc", "99999999999999999999"] {
            caller.get(&format!("{path}?limit={limit}")).await.field_error("INVALID_FIELD", "limit");
        }
    }
}

async fn not_found(caller: &Caller<'_>, base: &str, id: &str) {
    for path in [format!("{base}/{id}"), format!("{base}/{id}/pdf")] {
        caller.get(&path).await.error(404, "NOT_FOUND");
    }
}

#[tokio::test]
async fn another_accounts_invoice_is_not_found() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let upgraded = ids(&app.as_partner(&f.upgraded).get(PARTNER_INVOICES).await.body);
    let theirs = ids(&app.as_distributor(&f.distributor).get(DISTRIBUTOR_INVOICES).await.body);
    // Another partner, another distributor's partner, and the partner's own distributor on the
    // partner route (a distributor key is the wrong kind there).
    for key in [&f.steady, &f.other_partner] {
        for id in &upgraded {
            not_found(&app.as_partner(key), PARTNER_INVOICES, id).await;
        }
        for id in &theirs {
            not_found(&app.as_partner(key), PARTNER_INVOICES, id).await;
        }
    }
    for id in &theirs {
        not_found(&app.as_distributor(&f.other_distributor), DISTRIBUTOR_INVOICES, id).await;
    }
    // A partner's invoice is not the distributor's, even its own partner's.
    for id in &upgraded {
        not_found(&app.as_distributor(&f.distributor), DISTRIBUTOR_INVOICES, id).await;
    }
    for id in ["inv_", "inv_zzzz", "nope", "prt_000000000000000000000000", &"9".repeat(5000)] {
        not_found(&app.as_partner(&f.upgraded), PARTNER_INVOICES, id).await;
    }
    // Lists hold only the account's own.
    let list = app.as_partner(&f.other_partner).get(PARTNER_INVOICES).await;
    assert!(ids(&list.body).iter().all(|id| !upgraded.contains(id) && !theirs.contains(id)));
}

#[tokio::test]
async fn keys_are_checked_by_kind() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let partner = app.as_partner(&f.upgraded);
    let id = ids(&partner.get(PARTNER_INVOICES).await.body).remove(0);
    for path in
        [PARTNER_INVOICES.to_owned(), format!("{PARTNER_INVOICES}/{id}"), format!("{PARTNER_INVOICES}/{id}/pdf")]
    {
        let missing = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(missing.status().as_u16(), 401);
        crate::support::assert_error(&missing.json().await.unwrap(), "MISSING_KEY");
        app.as_partner_key(f.distributor.reveal()).get(&path).await.error(401, "INVALID_KEY");
    }
    for path in [DISTRIBUTOR_INVOICES.to_owned(), format!("{DISTRIBUTOR_INVOICES}/{id}")] {
        app.as_distributor_key(f.upgraded.reveal()).get(&path).await.error(401, "INVALID_KEY");
    }
}

/// Analytics' spend: what was invoiced in the window (by issue date), per currency, and a
/// distributor's partners ranked by it. The figures are the fixture's invoices added up by hand.
#[tokio::test]
async fn analytics_spend_is_what_was_invoiced_in_the_window() {
    let app = TestApp::start().await;
    let f = fixture(&app).await;
    let d = app.as_distributor(&f.distributor);
    let april = d.get("/v1/distributor/analytics?from_date=2026-04-01&to_date=2026-04-30").await;
    assert_eq!(april.status, 200, "{}", april.body);
    assert_eq!(april.body["totals"]["spend"], json!([{"currency": "aud", "amount": "598.00"}]));
    let company = "Acme MSP";
    let spenders = |body: &Value| -> Vec<(String, String, String)> {
        body["topPartnersBySpend"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["company"], company);
                (
                    p["id"].as_str().unwrap().to_owned(),
                    p["currency"].as_str().unwrap().to_owned(),
                    p["spend"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let april_top = spenders(&april.body);
    assert_eq!(
        april_top.iter().map(|(_, c, s)| (c.as_str(), s.as_str())).collect::<Vec<_>>(),
        [("aud", "449.00"), ("aud", "149.00")]
    );
    // Through 1 May: the renewals too. The upgraded partner paid 149.00 + 599.00, the steady
    // one 449.00 + 449.00, so the order holds; the pending partner paid nothing and is absent.
    let both = d.get("/v1/distributor/analytics?from_date=2026-04-01&to_date=2026-05-01").await.body;
    assert_eq!(both["totals"]["spend"], json!([{"currency": "aud", "amount": "1646.00"}]));
    let top = spenders(&both);
    assert_eq!(
        top.iter().map(|(_, c, s)| (c.as_str(), s.as_str())).collect::<Vec<_>>(),
        [("aud", "898.00"), ("aud", "748.00")]
    );
    assert_eq!(top[0].0, april_top[0].0, "the steady partner leads both windows");
    let other = app
        .as_distributor(&f.other_distributor)
        .get("/v1/distributor/analytics?from_date=2026-04-01&to_date=2026-05-01")
        .await
        .body;
    assert_eq!(other["totals"]["spend"], json!([{"currency": "usd", "amount": "198.00"}]));
    assert_eq!(other["topPartnersBySpend"].as_array().unwrap().len(), 1);
    // A partner sees its own spend, and no ranking of others.
    let mine =
        app.as_partner(&f.upgraded).get("/v1/partner/analytics?from_date=2026-04-01&to_date=2026-05-01").await.body;
    assert_eq!(mine["totals"]["spend"], json!([{"currency": "aud", "amount": "748.00"}]));
    assert!(mine.get("topPartnersBySpend").is_none(), "{mine}");
    // Before anything was issued, nothing was spent.
    let march =
        app.as_partner(&f.upgraded).get("/v1/partner/analytics?from_date=2026-03-01&to_date=2026-03-31").await.body;
    assert_eq!(march["totals"]["spend"], json!([]));
}
