//! The Stripe adapter against the standalone fake (`fake.rs`): the request forms, idempotency
//! keys, retries and errors, which localstripe cannot show (it ignores `Idempotency-Key`, never
//! fails on purpose, and lacks the item update and `collection_method`).

use std::sync::Arc;
use std::time::Duration;

use partnerd_domain::ports::{BillingError, BillingProvider, MockProviderAccountRepository, ProviderAccount};

use crate::fake::{FakeStripe, Fault, Recorded};
use crate::support::{Changes, MemoryAccounts, SECRET, adapter, config};

/// How long a test may take before it is a hang, not a slow machine.
const BOUND: Duration = Duration::from_secs(20);

fn paths(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn field(r: &Recorded, name: &str) -> String {
    r.field(name).unwrap_or_else(|| panic!("{} {} has no field {name}: {}", r.method, r.path, r.body))
}

#[tokio::test]
async fn a_first_change_opens_the_account_on_the_old_terms_then_moves_the_item_with_prorations() {
    let fake = FakeStripe::start(SECRET);
    let accounts = Arc::new(MemoryAccounts::default());
    let billing = adapter(config(&fake.url()), accounts.clone());
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");

    billing.change_subscription(&change).await.unwrap();

    let requests = fake.requests();
    let (old, new) = ("partnerd-starter-monthly-aud-14900", "partnerd-professional-monthly-aud-44900");
    assert_eq!(
        paths(&requests),
        [
            format!("GET /v1/plans/{old}"),
            "POST /v1/plans".into(),
            "POST /v1/customers".into(),
            "POST /v1/subscriptions".into(),
            "GET /v1/subscription_items/si_fake0004".into(),
            format!("GET /v1/plans/{new}"),
            "POST /v1/plans".into(),
            "POST /v1/subscription_items/si_fake0004".into(),
        ]
    );
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [404, 200, 200, 200, 200, 404, 200, 200], "each plan looked up, missing, created");
    for r in &requests {
        assert_eq!(r.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    }
    let posts: Vec<&Recorded> = requests.iter().filter(|r| r.is_post()).collect();
    for post in &posts {
        assert_eq!(post.header("content-type"), Some("application/x-www-form-urlencoded"), "{post:?}");
    }
    let keys: Vec<&str> = posts.iter().map(|p| p.header("idempotency-key").expect("every POST has a key")).collect();
    assert_eq!(
        keys,
        [
            format!("partnerd-{}-plan-{old}", change.id),
            format!("partnerd-{partner}-customer"),
            format!("partnerd-{partner}-subscription"),
            format!("partnerd-{}-plan-{new}", change.id),
            format!("partnerd-{}-update", change.id),
        ]
    );

    // The plans: amounts in minor units from the catalog, named by their terms.
    let plan = posts[0];
    assert_eq!(
        plan.form(),
        [
            ("id".to_owned(), old.to_owned()),
            ("amount".into(), "14900".into()),
            ("currency".into(), "aud".into()),
            ("interval".into(), "month".into()),
            ("interval_count".into(), "1".into()),
            ("product[name]".into(), "partnerd starter (monthly, AUD)".into()),
        ]
    );
    assert_eq!(field(posts[3], "amount"), "44900");
    // The customer is tagged with the partner.
    assert_eq!(field(posts[1], "metadata[partnerd_partner_id]"), partner.as_str());
    // The subscription: on the old terms, over partnerd's period, invoiced.
    let subscription = posts[2];
    assert_eq!(field(subscription, "customer"), "cus_fake0002");
    assert_eq!(field(subscription, "items[0][plan]"), old);
    assert_eq!(field(subscription, "backdate_start_date"), change.from.period_start.unix_timestamp().to_string());
    assert_eq!(field(subscription, "billing_cycle_anchor"), change.from.period_end.unix_timestamp().to_string());
    assert_eq!(field(subscription, "proration_behavior"), "create_prorations");
    assert_eq!(field(subscription, "collection_method"), "send_invoice");
    assert_eq!(field(subscription, "days_until_due"), "30");
    // The change: the item moves, prorated at the moment partnerd prorated it.
    let update = posts[4];
    assert_eq!(field(update, "plan"), new);
    assert_eq!(field(update, "proration_behavior"), "create_prorations");
    assert_eq!(field(update, "proration_date"), change.requested_at.unix_timestamp().to_string());
    assert_eq!(field(update, "metadata[partnerd_plan_change_id]"), change.id.as_str());

    assert_eq!(fake.item("si_fake0004").unwrap()["plan"]["id"], new);
    assert_eq!(
        accounts.of(&partner),
        Some(ProviderAccount {
            customer: "cus_fake0002".into(),
            subscription: "sub_fake0003".into(),
            item: "si_fake0004".into()
        })
    );
}

#[tokio::test]
async fn replaying_a_change_creates_nothing_new_in_this_process_or_another() {
    let fake = FakeStripe::start(SECRET);
    let accounts = Arc::new(MemoryAccounts::default());
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");
    adapter(config(&fake.url()), accounts.clone()).change_subscription(&change).await.unwrap();
    let before = fake.requests().len();

    // The same process again, then another process sharing the database.
    adapter(config(&fake.url()), accounts.clone()).change_subscription(&change).await.unwrap();
    adapter(config(&fake.url()), accounts.clone()).change_subscription(&change).await.unwrap();

    let replays = &fake.requests()[before..];
    assert_eq!(paths(replays), ["GET /v1/subscription_items/si_fake0004", "GET /v1/subscription_items/si_fake0004"]);
    assert_eq!((fake.customers().len(), fake.subscriptions().len(), fake.plans().len()), (1, 1, 2));

    // A next change reuses the account.
    let next = changes.change(&partner, "professional/monthly", "starter/monthly");
    adapter(config(&fake.url()), accounts.clone()).change_subscription(&next).await.unwrap();
    assert_eq!((fake.customers().len(), fake.subscriptions().len(), fake.plans().len()), (1, 1, 2));
    assert_eq!(fake.item("si_fake0004").unwrap()["plan"]["id"], "partnerd-starter-monthly-aud-14900");
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_retried_with_the_same_key_and_body_and_done_once() {
    let fake = FakeStripe::start(SECRET);
    for path in ["/v1/customers", "/v1/subscriptions", "/v1/subscription_items/"] {
        fake.fail_next("POST", path, Fault::ApplyThenFail(502));
    }
    let accounts = Arc::new(MemoryAccounts::default());
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/annual");

    adapter(config(&fake.url()), accounts).change_subscription(&change).await.unwrap();

    for path in ["/v1/customers", "/v1/subscriptions", "/v1/subscription_items/si_fake0004"] {
        let attempts: Vec<Recorded> = fake.posts().into_iter().filter(|p| p.path == path).collect();
        assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [502, 200], "{path}");
        assert_eq!(attempts[0].header("idempotency-key"), attempts[1].header("idempotency-key"), "{path}");
        assert_eq!(attempts[0].body, attempts[1].body, "{path}");
        assert_eq!(attempts[1].header("idempotent-replayed"), None, "requests carry no such header");
    }
    assert_eq!(fake.customers().len(), 1, "the retried POST was answered from the first one's record");
    assert_eq!(fake.subscriptions().len(), 1);
    assert_eq!(fake.item("si_fake0004").unwrap()["plan"]["id"], "partnerd-professional-annual-aud-449000");
}

#[tokio::test]
async fn answers_500_and_429_are_retried_until_one_succeeds() {
    let fake = FakeStripe::start(SECRET);
    fake.fail_next("GET", "/v1/plans/", Fault::status(500));
    fake.fail_next("GET", "/v1/plans/", Fault::status(503));
    fake.fail_next("POST", "/v1/customers", Fault::with_header(429, "Retry-After", "0"));
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");

    adapter(config(&fake.url()), Arc::new(MemoryAccounts::default())).change_subscription(&change).await.unwrap();

    let statuses = |method: &str, path: &str| -> Vec<u16> {
        fake.requests().iter().filter(|r| r.method == method && r.path.starts_with(path)).map(|r| r.status).collect()
    };
    assert_eq!(statuses("GET", "/v1/plans/partnerd-starter"), [500, 503, 404]);
    assert_eq!(statuses("POST", "/v1/customers"), [429, 200]);
    assert_eq!(fake.customers().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_instead_of_the_backoff() {
    let fake = FakeStripe::start(SECRET);
    fake.fail_next("GET", "/v1/plans/", Fault::with_header(429, "Retry-After", "0"));
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");
    // A backoff far longer than the bound: only the 429's `Retry-After: 0` lets this finish.
    let patient = partnerd_billing::StripeConfig {
        initial_backoff: Duration::from_secs(600),
        max_backoff: Duration::from_secs(600),
        ..config(&fake.url())
    };
    let billing = adapter(patient, Arc::new(MemoryAccounts::default()));
    tokio::time::timeout(BOUND, billing.change_subscription(&change)).await.expect("retried at once").unwrap();

    // A `Retry-After` longer than partnerd waits ends the retries at once.
    fake.fail_next("GET", "/v1/subscription_items/", Fault::with_header(429, "Retry-After", "3600"));
    let before = fake.requests().len();
    let err = tokio::time::timeout(BOUND, billing.change_subscription(&change)).await.expect("no wait").unwrap_err();
    assert!(matches!(&err, BillingError::Internal(e) if e.to_string().contains("retry after 3600s")), "{err:?}");
    assert_eq!(fake.requests().len() - before, 1, "not retried");
}

#[tokio::test]
async fn retries_end_after_max_retries_with_an_internal_error() {
    let fake = FakeStripe::start(SECRET);
    // The customer is created, but no answer gets through.
    for _ in 0..4 {
        fake.fail_next("POST", "/v1/customers", Fault::ApplyThenFail(500));
    }
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");
    let accounts = Arc::new(MemoryAccounts::default());

    let err = adapter(config(&fake.url()), accounts.clone()).change_subscription(&change).await.unwrap_err();

    assert!(matches!(&err, BillingError::Internal(e) if e.to_string().contains("gave up after 4 attempts")), "{err:?}");
    assert_eq!(fake.posts().iter().filter(|p| p.path == "/v1/customers").count(), 4, "1 + max_retries (3)");
    assert_eq!(accounts.len(), 0, "nothing stored");
    assert_eq!(fake.customers().len(), 1);
    // The partner's next change (another change id) gets the same customer back, keyed by the
    // partner, rather than a second one.
    let again = changes.change(&partner, "starter/monthly", "professional/monthly");
    adapter(config(&fake.url()), accounts).change_subscription(&again).await.unwrap();
    assert_eq!(fake.customers().len(), 1);
}

#[tokio::test]
async fn a_400_is_not_retried_and_the_providers_message_is_the_refusal() {
    let fake = FakeStripe::start(SECRET);
    fake.fail_next(
        "POST",
        "/v1/subscription_items/",
        Fault::error(400, "This customer has no attached payment source"),
    );
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");

    let err = adapter(config(&fake.url()), Arc::new(MemoryAccounts::default()))
        .change_subscription(&change)
        .await
        .unwrap_err();

    assert!(matches!(&err, BillingError::Refused(m) if m == "This customer has no attached payment source"), "{err:?}");
    assert_eq!(fake.posts().iter().filter(|p| p.path.starts_with("/v1/subscription_items/")).count(), 1);
}

#[tokio::test]
async fn the_secret_key_never_appears_in_an_error() {
    // A fake that expects another key answers 401 and echoes the key it was given.
    let fake = FakeStripe::start("sk_test_the_other_key");
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");
    let err = adapter(config(&fake.url()), Arc::new(MemoryAccounts::default()))
        .change_subscription(&change)
        .await
        .unwrap_err();
    assert!(fake.requests()[0].body.is_empty() && fake.requests()[0].status == 401);
    assert!(
        matches!(&err, BillingError::Internal(_)),
        "a refused key is partnerd's problem, not the partner's: {err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("401") && !shown.contains(SECRET), "{shown}");

    // A 4xx message that quotes the key is scrubbed.
    let fake = FakeStripe::start(SECRET);
    fake.fail_next("GET", "/v1/plans/", Fault::error(400, &format!("Bad key {SECRET} in request")));
    let err = adapter(config(&fake.url()), Arc::new(MemoryAccounts::default()))
        .change_subscription(&change)
        .await
        .unwrap_err();
    assert!(matches!(&err, BillingError::Refused(m) if m == "Bad key [redacted] in request"), "{err:?}");

    // No server at all: a transport error after the retries.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err =
        adapter(config(&closed), Arc::new(MemoryAccounts::default())).change_subscription(&change).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, BillingError::Internal(_)) && !shown.contains(SECRET), "{shown}");
    assert!(shown.contains("gave up after 4 attempts"), "{shown}");

    let config = format!("{:?}", config(&fake.url()));
    assert!(!config.contains(SECRET), "{config}");
}

#[tokio::test]
async fn a_process_that_loses_the_race_to_open_the_account_uses_the_winners_and_deletes_its_own() {
    let fake = FakeStripe::start(SECRET);
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "starter/monthly", "professional/monthly");
    let winner_accounts = Arc::new(MemoryAccounts::default());
    adapter(config(&fake.url()), winner_accounts.clone()).change_subscription(&change).await.unwrap();
    let winner = winner_accounts.of(&partner).unwrap();

    // The loser read no account before the winner stored one. Within Stripe's 24 hours its
    // partner-keyed POSTs would be answered with the winner's objects; past them (or on a
    // server without idempotency records) it creates its own.
    fake.forget_idempotency_keys();
    let mut loser_accounts = MockProviderAccountRepository::new();
    loser_accounts.expect_get().times(1).returning(|_| Ok(None));
    let stored = winner.clone();
    loser_accounts.expect_put().times(1).returning(move |_, _| Ok(stored.clone()));
    let before = fake.requests().len();

    adapter(config(&fake.url()), Arc::new(loser_accounts)).change_subscription(&change).await.unwrap();

    let after: Vec<String> = paths(&fake.requests()[before..]);
    let surplus = fake.customers().into_iter().find(|c| c["id"] != winner.customer.as_str());
    assert!(surplus.is_none(), "the loser's customer was deleted: {after:?}");
    let deleted: Vec<&String> = after.iter().filter(|p| p.starts_with("DELETE /v1/customers/")).collect();
    assert_eq!(deleted.len(), 1, "{after:?}");
    assert!(!deleted[0].ends_with(&winner.customer), "never the winner's: {after:?}");
    let live: Vec<_> = fake.subscriptions().into_iter().filter(|s| s["status"] == "active").collect();
    assert_eq!(live.len(), 1, "only the winner's subscription bills");
    assert_eq!(live[0]["id"], winner.subscription.as_str());
    assert!(!after.iter().any(|p| p.starts_with("POST /v1/subscription_items")), "the winner's item was already moved");
}

#[tokio::test]
async fn changes_the_provider_cannot_make_are_refused_before_any_call() {
    let fake = FakeStripe::start(SECRET);
    let billing = adapter(config(&fake.url()), Arc::new(MemoryAccounts::default()));
    let changes = Changes::default();
    let partner = changes.partner();

    let currency = changes.change(&partner, "starter/monthly/AUD", "starter/monthly/GBP");
    let err = billing.change_subscription(&currency).await.unwrap_err();
    assert!(matches!(&err, BillingError::Refused(m) if m.contains("from AUD to GBP")), "{err:?}");

    let unsold = changes.change(&partner, "starter/monthly", "free/annual");
    let err = billing.change_subscription(&unsold).await.unwrap_err();
    assert!(matches!(&err, BillingError::Refused(m) if m == "Plan free is not sold annual in AUD."), "{err:?}");

    assert!(fake.requests().is_empty(), "{:?}", paths(&fake.requests()));
}

#[tokio::test]
async fn concurrent_first_changes_of_different_partners_share_one_plan() {
    let fake = FakeStripe::start(SECRET);
    let accounts = Arc::new(MemoryAccounts::default());
    let changes = Changes::default();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let partner = changes.partner();
            let change = changes.change(&partner, "starter/monthly", "professional/monthly");
            let billing = adapter(config(&fake.url()), accounts.clone());
            tokio::spawn(async move { billing.change_subscription(&change).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(fake.plans().len(), 2, "each plan created once, whoever looked it up first");
    assert_eq!(fake.customers().len(), 6);
    assert_eq!(accounts.items().len(), 6, "one subscription item each");
}

#[tokio::test]
async fn a_plan_created_between_look_up_and_create_is_used_if_its_terms_match() {
    let fake = FakeStripe::start(SECRET);
    let accounts = Arc::new(MemoryAccounts::default());
    let changes = Changes::default();
    let first = changes.partner();
    adapter(config(&fake.url()), accounts.clone())
        .change_subscription(&changes.change(&first, "starter/monthly", "professional/monthly"))
        .await
        .unwrap();
    // Another process created the plan just after this one looked it up.
    let plan = "/v1/plans/partnerd-professional-monthly-aud-44900";
    fake.fail_next("GET", plan, Fault::error(404, "No such plan"));
    let second = changes.partner();
    adapter(config(&fake.url()), accounts.clone())
        .change_subscription(&changes.change(&second, "starter/monthly", "professional/monthly"))
        .await
        .unwrap();
    let tail: Vec<String> = paths(&fake.requests()).into_iter().rev().take(4).collect();
    assert_eq!(
        tail[..3],
        ["POST /v1/subscription_items/si_fake0008".to_owned(), format!("GET {plan}"), "POST /v1/plans".into(),]
    );
    assert_eq!(fake.requests().iter().rev().nth(2).unwrap().status, 400, "resource_already_exists");
    assert_eq!(fake.plans().len(), 2);
}
