//! The Stripe adapter against localstripe (PyPI `localstripe`, a stateful fake Stripe server;
//! `.ci/run` installs it), started by each test on a free loopback port.
//!
//! Who serves what:
//! - **localstripe**: `POST /v1/customers`, `GET|DELETE /v1/customers/{id}`, `GET /v1/plans/{id}`,
//!   `POST /v1/plans` (its 409 for a taken id), `POST /v1/subscriptions` (with
//!   `backdate_start_date`, `billing_cycle_anchor`, `proration_behavior`),
//!   `GET|DELETE /v1/subscriptions/{id}`, and its bearer authentication (401).
//! - **the local fake in front of it** (`fake.rs`, `FakeStripe::in_front_of`):
//!   `GET|POST /v1/subscription_items/{id}`, because localstripe cannot move an item to another
//!   plan with `proration_behavior` (400 on `POST /v1/subscription_items/{id}`, 500 on
//!   `POST /v1/subscriptions/{id}`). The fake reads the item from localstripe the first time
//!   and checks that the new plan exists there.
//! - Not exercised here, so covered by `stripe_fake.rs` only: `collection_method=send_invoice`
//!   with `days_until_due` (localstripe refuses both parameters, so these tests set
//!   `days_until_due: None`), idempotent replay of a POST (localstripe ignores
//!   `Idempotency-Key`), retries (localstripe never fails on purpose).
//!
//! Without localstripe these tests are skipped with a message, except under `CI=true`, where
//! they fail.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use partnerd_billing::StripeConfig;
use partnerd_domain::ports::{
    BillingError, BillingProvider, MockProviderAccountRepository, ProviderAccount, ProviderAccountRepository,
};
use serde_json::Value;

use crate::fake::{FakeStripe, Fault};
use crate::support::{Changes, MemoryAccounts, SECRET, adapter, config};

/// The version `.ci/run` installs.
const PINNED: &str = "1.15.10";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Serves localstripe's app on 127.0.0.1 only, on a port the OS picks (printed on stdout), and
/// keeps its state in memory: localstripe's own `start()` listens on every interface and saves
/// its state to `/tmp/localstripe.pickle`, which parallel tests would share.
const LAUNCHER: &str = r#"
import socket, sys
from importlib.metadata import version
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], version("localstripe"), flush=True)
web.run_app(server.app, sock=sock, print=None, access_log=None)
"#;

struct Localstripe {
    child: Child,
    url: String,
    stderr: PathBuf,
}

impl Localstripe {
    /// A fresh localstripe, or `None` (with a message) when it is not installed outside CI.
    fn start() -> Option<Self> {
        let importable = Command::new("python3")
            .args(["-c", "import localstripe"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !importable {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "localstripe is not installed (python3 cannot import it) under CI=true: its tests are mandatory \
                 there; .ci/run installs it with `python3 -m pip install localstripe=={PINNED}`"
            );
            eprintln!(
                "skipping a localstripe test: python3 cannot import localstripe (pip install localstripe=={PINNED})"
            );
            return None;
        }
        let stderr = std::env::temp_dir().join(format!("partnerd_localstripe_{}_{}.log", std::process::id(), unique()));
        let mut child = Command::new("python3")
            .args(["-c", LAUNCHER])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("create localstripe's log file"))
            .spawn()
            .expect("start python3");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut started = Self { child, url: String::new(), stderr };
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let mut words = line.split_whitespace();
        let (Some(port), Some(version)) = (words.next(), words.next()) else {
            panic!("localstripe did not report its port: {:?}\n{}", line, started.log());
        };
        eprintln!("localstripe {version} on 127.0.0.1:{port}");
        started.url = format!("http://127.0.0.1:{port}");
        Some(started)
    }

    /// Waits until localstripe answers an authenticated request.
    async fn ready(self) -> Self {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(response) = self.get_raw("/v1/plans").await
                && response.0 == 200
            {
                return self;
            }
            assert!(Instant::now() < deadline, "localstripe did not answer within {START_TIMEOUT:?}\n{}", self.log());
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn get_raw(&self, path: &str) -> Result<(u16, Value), reqwest::Error> {
        let response = reqwest::Client::new().get(format!("{}{path}", self.url)).bearer_auth(SECRET).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// Reads localstripe's own state, bypassing the adapter and the fake.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_raw(path).await.unwrap_or_else(|e| panic!("GET {path} from localstripe: {e}\n{}", self.log()))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .bearer_auth(SECRET)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

impl Drop for Localstripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// Unique within this test process.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// localstripe refuses `collection_method` and `days_until_due`.
fn localstripe_config(api_base: &str) -> StripeConfig {
    StripeConfig { days_until_due: None, ..config(api_base) }
}

async fn localstripe() -> Option<Localstripe> {
    Some(Localstripe::start()?.ready().await)
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"].as_array().expect("a list").iter().map(|o| o["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_change_opens_the_account_in_localstripe_and_a_replay_creates_nothing_new() {
    let Some(ls) = localstripe().await else { return };
    let front = FakeStripe::in_front_of(&ls.url);
    let accounts = Arc::new(MemoryAccounts::default());
    let billing = adapter(localstripe_config(&front.url()), accounts.clone());
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "free/monthly", "professional/monthly");

    billing.change_subscription(&change).await.unwrap_or_else(|e| panic!("{e:?}\n{}", ls.log()));

    let account = accounts.of(&partner).expect("the account is stored");
    let (_, customers) = ls.get("/v1/customers").await;
    assert_eq!(ids(&customers), [account.customer.as_str()]);
    assert_eq!(customers["data"][0]["metadata"]["partnerd_partner_id"], partner.as_str());
    let (status, free) = ls.get("/v1/plans/partnerd-free-monthly-aud-0").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&free["amount"], &free["currency"], &free["interval"], &free["interval_count"]),
        (&0.into(), &"aud".into(), &"month".into(), &1.into())
    );
    let (_, professional) = ls.get("/v1/plans/partnerd-professional-monthly-aud-44900").await;
    assert_eq!((&professional["amount"], &professional["currency"]), (&44900.into(), &"aud".into()));
    let (_, subscription) = ls.get(&format!("/v1/subscriptions/{}", account.subscription)).await;
    assert_eq!(subscription["customer"], account.customer.as_str());
    assert_eq!(subscription["status"], "active", "the free first invoice is paid");
    assert_eq!(subscription["start_date"], change.from.period_start.unix_timestamp(), "backdated to partnerd's period");
    assert_eq!(subscription["items"]["data"][0]["id"], account.item.as_str());
    // The item moved (served by the fake, over localstripe's item and plans).
    let update = front.posts().into_iter().find(|p| p.path.starts_with("/v1/subscription_items/")).expect("an update");
    assert_eq!(update.path, format!("/v1/subscription_items/{}", account.item));
    assert_eq!(update.field("proration_behavior").as_deref(), Some("create_prorations"));
    assert_eq!(front.item(&account.item).unwrap()["plan"]["id"], "partnerd-professional-monthly-aud-44900");
    for post in front.posts() {
        assert!(post.header("idempotency-key").is_some(), "{post:?}");
        assert_eq!(post.status, 200, "{post:?}");
    }

    // Replayed: one look at the item, nothing created.
    let before = front.requests().len();
    billing.change_subscription(&change).await.unwrap();
    let replay: Vec<String> = front.requests()[before..].iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(replay, [format!("GET /v1/subscription_items/{}", account.item)]);
    assert_eq!(ids(&ls.get("/v1/customers").await.1).len(), 1);
    assert_eq!(ids(&ls.get("/v1/subscriptions").await.1).len(), 1);
    assert_eq!(ids(&ls.get("/v1/plans").await.1).len(), 2);

    // The next change reuses the account and creates only its plan.
    let next = changes.change(&partner, "professional/monthly", "starter/monthly");
    billing.change_subscription(&next).await.unwrap();
    assert_eq!(ids(&ls.get("/v1/customers").await.1).len(), 1);
    assert_eq!(ids(&ls.get("/v1/plans").await.1).len(), 3);
    assert_eq!(front.item(&account.item).unwrap()["plan"]["id"], "partnerd-starter-monthly-aud-14900");
}

#[tokio::test]
async fn a_plan_localstripe_already_has_is_used_after_its_409_and_refused_if_its_terms_differ() {
    let Some(ls) = localstripe().await else { return };
    let front = FakeStripe::in_front_of(&ls.url);
    let billing = adapter(localstripe_config(&front.url()), Arc::new(MemoryAccounts::default()));
    let changes = Changes::default();
    let partner = changes.partner();
    // Created by another process between this one's look-up and its create.
    let plan = [("id", "partnerd-professional-monthly-aud-44900"), ("amount", "44900"), ("currency", "aud")];
    let plan = [&plan[..], &[("interval", "month"), ("product[name]", "elsewhere")]].concat();
    assert_eq!(ls.post("/v1/plans", &plan).await.0, 200);
    front.fail_next("GET", "/v1/plans/partnerd-professional", Fault::error(404, "Not Found"));

    billing.change_subscription(&changes.change(&partner, "free/monthly", "professional/monthly")).await.unwrap();

    let create =
        front.posts().into_iter().find(|p| p.field("id").as_deref() == Some("partnerd-professional-monthly-aud-44900"));
    assert_eq!(create.expect("the adapter tried to create it").status, 409, "localstripe's answer for a taken id");

    // A plan under partnerd's name with another amount is never billed.
    let plan =
        [("id", "partnerd-starter-monthly-aud-14900"), ("amount", "100"), ("currency", "aud"), ("interval", "month")];
    assert_eq!(ls.post("/v1/plans", &[&plan[..], &[("product[name]", "wrong")]].concat()).await.0, 200);
    let err = billing.change_subscription(&changes.change(&partner, "professional/monthly", "starter/monthly")).await;
    assert!(matches!(&err, Err(BillingError::Refused(m)) if m.contains("bills other terms")), "{err:?}");
}

#[tokio::test]
async fn localstripe_refusals_are_not_retried_and_a_refused_key_is_internal() {
    let Some(ls) = localstripe().await else { return };
    let front = FakeStripe::in_front_of(&ls.url);
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "free/monthly", "professional/monthly");

    // localstripe takes only keys that start with `sk_`.
    let key = "rk_partnerd_restricted_key_1";
    let billing = partnerd_billing::StripeBilling::new(
        StripeConfig { secret_key: key.into(), ..localstripe_config(&front.url()) },
        Arc::new(MemoryAccounts::default()),
        crate::support::catalog(),
    )
    .unwrap();
    let err = billing.change_subscription(&change).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, BillingError::Internal(_)) && shown.contains("401") && !shown.contains(key), "{shown}");
    assert_eq!(front.requests().len(), 1, "not retried");

    // An item localstripe does not know: its 404 message is the refusal.
    let accounts = MemoryAccounts::default();
    let gone = ProviderAccount { customer: "cus_gone".into(), subscription: "sub_gone".into(), item: "si_gone".into() };
    accounts.put(&partner, &gone).await.unwrap();
    let billing = adapter(localstripe_config(&front.url()), Arc::new(accounts));
    let before = front.requests().len();
    let err = billing.change_subscription(&change).await.unwrap_err();
    assert!(matches!(&err, BillingError::Refused(m) if m == "Not Found"), "{err:?}");
    let after: Vec<String> =
        front.requests()[before..].iter().map(|r| format!("{} {} {}", r.method, r.path, r.status)).collect();
    assert_eq!(after, ["GET /v1/subscription_items/si_gone 404"]);
}

#[tokio::test]
async fn a_process_that_loses_the_race_cancels_what_it_created_in_localstripe() {
    let Some(ls) = localstripe().await else { return };
    let front = FakeStripe::in_front_of(&ls.url);
    let changes = Changes::default();
    let partner = changes.partner();
    let change = changes.change(&partner, "free/monthly", "professional/monthly");
    let accounts = Arc::new(MemoryAccounts::default());
    adapter(localstripe_config(&front.url()), accounts.clone()).change_subscription(&change).await.unwrap();
    let winner = accounts.of(&partner).unwrap();

    // The loser read no account before the winner stored one; localstripe keeps no idempotency
    // records, so the loser's customer and subscription are new ones.
    let mut loser = MockProviderAccountRepository::new();
    loser.expect_get().times(1).returning(|_| Ok(None));
    let stored = winner.clone();
    loser.expect_put().times(1).returning(move |_, _| Ok(stored.clone()));
    adapter(localstripe_config(&front.url()), Arc::new(loser)).change_subscription(&change).await.unwrap();

    assert_eq!(ids(&ls.get("/v1/customers").await.1), [winner.customer.as_str()], "the surplus customer is deleted");
    let (_, all) = ls.get("/v1/subscriptions?status=all").await;
    let subscriptions = all["data"].as_array().unwrap();
    assert_eq!(subscriptions.len(), 2);
    for s in subscriptions {
        let expected = if s["id"] == winner.subscription.as_str() { "active" } else { "canceled" };
        assert_eq!(s["status"], expected, "{s}");
    }
}
