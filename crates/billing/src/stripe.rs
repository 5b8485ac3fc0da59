//! The Stripe-compatible billing provider: a plan change becomes a change of the partner's
//! subscription at Stripe (or any service that speaks its API), which prorates and invoices it.
//!
//! One change, step by step (each step safe to repeat):
//! 1. **The account.** The partner's customer, subscription and subscription item ids come from
//!    [`ProviderAccountRepository`]. A partner without them gets a customer and a subscription
//!    on the change's `from` terms, backdated to the start of the period in force and anchored
//!    at its end, so the provider's billing periods are partnerd's; then the ids are stored
//!    (insert-if-absent: a process that loses a race uses the winner's ids and deletes what it
//!    created for nothing).
//! 2. **Already done?** If the item is already on the target plan (a replay), nothing more.
//! 3. **The plan.** The target terms' plan is looked up by its deterministic id and created if
//!    missing (Plans API, amount in minor units from the catalog).
//! 4. **The change.** The item moves to that plan with `proration_behavior=create_prorations`
//!    and `proration_date` = the moment partnerd prorated it.
//!
//! Every POST carries an `Idempotency-Key`. The customer and subscription are keyed by the
//! partner (a change that failed after creating them, and the next change that tries again, get
//! the same objects back instead of a second subscription billing in parallel); the plan and
//! the item update are keyed by the change.

mod client;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use partnerd_domain::billing::{Money, Subscription};
use partnerd_domain::catalog::Catalog;
use partnerd_domain::ports::{
    BillingError, BillingProvider, InfraError, PlanChange, ProviderAccount, ProviderAccountRepository,
};
use partnerd_domain::values::BillingInterval;
use reqwest::Url;
use serde_json::Value;

use client::{CallError, Client, Form, RetryPolicy};

/// How to reach the provider. `Debug` never shows the secret key.
#[derive(Clone)]
pub struct StripeConfig {
    /// The API's base URL, e.g. `https://api.stripe.com` (`/v1/…` is appended). Plain `http`
    /// only to a loopback address (a local fake), so the key never crosses a network in clear.
    pub api_base: String,
    /// The secret API key (`sk_…`), sent as a bearer token.
    pub secret_key: String,
    /// Time limit of one HTTP attempt, connection included.
    pub timeout: Duration,
    /// Attempts after the first, for connection errors, timeouts, 429 and 5xx.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles with each further one, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest wait between attempts. A `Retry-After` asking for longer ends the retries
    /// (the change fails and can be tried again later) rather than holding the request.
    pub max_backoff: Duration,
    /// `Some(days)`: subscriptions are invoiced to the partner (`collection_method=send_invoice`,
    /// due `days` after issue); `None`: charged to the customer's default payment method.
    pub days_until_due: Option<u32>,
}

impl StripeConfig {
    /// Defaults: 10 s per attempt, 3 retries, backoff from 250 ms up to 5 s, invoices due in 30 days.
    pub fn new(api_base: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            api_base: api_base.into(),
            secret_key: secret_key.into(),
            timeout: Duration::from_secs(10),
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            days_until_due: Some(30),
        }
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("secret_key", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("days_until_due", &self.days_until_due)
            .finish()
    }
}

/// A [`StripeConfig`] that cannot work. Never contains the secret key.
#[derive(Debug, thiserror::Error)]
pub enum StripeConfigError {
    #[error("the Stripe API base `{0}` is not an absolute http(s) URL without credentials, query or fragment")]
    InvalidApiBase(String),
    #[error("the Stripe API base `{0}` is plain http to a host that is not a loopback address: use https")]
    InsecureApiBase(String),
    #[error("the Stripe secret key is empty")]
    MissingSecretKey,
    #[error("{0}")]
    Client(String),
}

/// The Stripe-compatible [`BillingProvider`]. See the module documentation for what a change does.
pub struct StripeBilling {
    client: Client,
    accounts: Arc<dyn ProviderAccountRepository>,
    catalog: Arc<Catalog>,
    days_until_due: Option<u32>,
}

impl fmt::Debug for StripeBilling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeBilling").finish_non_exhaustive()
    }
}

impl StripeBilling {
    pub fn new(
        config: StripeConfig,
        accounts: Arc<dyn ProviderAccountRepository>,
        catalog: Arc<Catalog>,
    ) -> Result<Self, StripeConfigError> {
        if config.secret_key.is_empty() {
            return Err(StripeConfigError::MissingSecretKey);
        }
        let base = api_base(&config.api_base)?;
        let retry = RetryPolicy {
            max_retries: config.max_retries,
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
        };
        let client = Client::new(base, &config.secret_key, config.timeout, retry)
            .map_err(|e| StripeConfigError::Client(client::scrub(&e, &config.secret_key)))?;
        Ok(Self { client, accounts, catalog, days_until_due: config.days_until_due })
    }

    /// Step 1: the partner's customer and subscription, created on `change.from` if it has none.
    async fn account(&self, change: &PlanChange) -> Result<ProviderAccount, BillingError> {
        if let Some(account) = self.accounts.get(&change.partner).await? {
            return Ok(account);
        }
        let partner = change.partner.as_str();
        let plan = StripePlan::of(&self.catalog, &change.from)?;
        self.ensure_plan(&plan, &format!("partnerd-{}-plan-{}", change.id, plan.id)).await?;

        let customer: Form = vec![
            ("description", format!("partnerd partner {partner}")),
            ("metadata[partnerd_partner_id]", partner.to_owned()),
        ];
        let customer = self.client.post(&["v1", "customers"], &customer, &format!("partnerd-{partner}-customer")).await;
        let customer = string_at(&customer.map_err(refusal)?, "/id")?;

        let from = &change.from;
        let mut subscription: Form = vec![
            ("customer", customer.clone()),
            ("items[0][plan]", plan.id.clone()),
            ("metadata[partnerd_partner_id]", partner.to_owned()),
            // The period in force, billed in full: partnerd's periods are the provider's.
            ("backdate_start_date", from.period_start.unix_timestamp().to_string()),
            ("billing_cycle_anchor", from.period_end.unix_timestamp().to_string()),
            ("proration_behavior", "create_prorations".to_owned()),
        ];
        if let Some(days) = self.days_until_due {
            subscription.push(("collection_method", "send_invoice".to_owned()));
            subscription.push(("days_until_due", days.to_string()));
        }
        let key = format!("partnerd-{partner}-subscription");
        let subscription = self.client.post(&["v1", "subscriptions"], &subscription, &key).await.map_err(refusal)?;
        let ours = ProviderAccount {
            customer,
            subscription: string_at(&subscription, "/id")?,
            item: single_item(&subscription)?,
        };

        let stored = self.accounts.put(&change.partner, &ours).await?;
        if stored != ours {
            self.discard(&ours, &stored).await;
        } else {
            tracing::info!(partner, customer = %ours.customer, subscription = %ours.subscription, "opened the partner's account at the billing provider");
        }
        Ok(stored)
    }

    /// Another process stored the partner's account first: what this one created is surplus.
    /// Its subscription is canceled (so it never bills) and its customer deleted. Best effort: a
    /// failure is only logged.
    async fn discard(&self, ours: &ProviderAccount, stored: &ProviderAccount) {
        let mut surplus = Vec::new();
        if ours.subscription != stored.subscription {
            surplus.push(["v1", "subscriptions", ours.subscription.as_str()]);
        }
        if ours.customer != stored.customer {
            surplus.push(["v1", "customers", ours.customer.as_str()]);
        }
        for path in surplus {
            match self.client.delete(&path).await {
                Ok(_) => tracing::info!(path = %path.join("/"), "deleted a billing object created in a lost race"),
                Err(e) => {
                    tracing::warn!(path = %path.join("/"), error = ?e, "could not delete a billing object created in a lost race")
                }
            }
        }
    }

    /// Step 3: the plan exists at the provider with exactly these terms.
    async fn ensure_plan(&self, plan: &StripePlan, idempotency_key: &str) -> Result<(), BillingError> {
        let path = ["v1", "plans", plan.id.as_str()];
        match self.client.get(&path).await {
            Ok(existing) => return plan.matches(&existing),
            Err(CallError::Refused { status: 404, .. }) => {}
            Err(e) => return Err(refusal(e)),
        }
        match self.client.post(&["v1", "plans"], &plan.form(), idempotency_key).await {
            Ok(_) => Ok(()),
            // Created meanwhile by another process: Stripe answers 400 `resource_already_exists`,
            // localstripe 409.
            Err(CallError::Refused { status, code, .. })
                if status == 409 || code.as_deref() == Some("resource_already_exists") =>
            {
                plan.matches(&self.client.get(&path).await.map_err(refusal)?)
            }
            Err(e) => Err(refusal(e)),
        }
    }
}

#[async_trait]
impl BillingProvider for StripeBilling {
    /// Idempotent per change: a replay finds the item on the target plan and changes nothing;
    /// a retried POST carries the same key, so the provider carries it out once.
    async fn change_subscription(&self, change: &PlanChange) -> Result<(), BillingError> {
        if change.from.currency != change.to.currency {
            return Err(BillingError::Refused(format!(
                "The billing provider bills a customer in one currency: a change from {} to {} is not possible.",
                change.from.currency, change.to.currency
            )));
        }
        let target = StripePlan::of(&self.catalog, &change.to)?;
        let account = self.account(change).await?;
        let item_path = ["v1", "subscription_items", account.item.as_str()];
        let item = self.client.get(&item_path).await.map_err(refusal)?;
        if item.pointer("/plan/id").and_then(Value::as_str) == Some(target.id.as_str()) {
            return Ok(());
        }
        self.ensure_plan(&target, &format!("partnerd-{}-plan-{}", change.id, target.id)).await?;
        let update: Form = vec![
            ("plan", target.id.clone()),
            ("proration_behavior", "create_prorations".to_owned()),
            ("proration_date", change.requested_at.unix_timestamp().to_string()),
            ("metadata[partnerd_plan_change_id]", change.id.as_str().to_owned()),
        ];
        let key = format!("partnerd-{}-update", change.id);
        self.client.post(&item_path, &update, &key).await.map_err(refusal)?;
        Ok(())
    }
}

/// A plan at the provider: one price of one catalog plan, for one interval and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StripePlan {
    /// `partnerd-{plan}-{interval}-{currency}-{amount in minor units}`: the same terms always
    /// name the same plan, and a new catalog price names a new one (a provider's plan amount
    /// cannot change).
    id: String,
    amount: i64,
    currency: String,
    interval: &'static str,
    interval_count: u8,
    name: String,
}

impl StripePlan {
    fn of(catalog: &Catalog, terms: &Subscription) -> Result<Self, BillingError> {
        let (interval, currency) = (terms.interval, terms.currency);
        let price = catalog.plan(&terms.plan).and_then(|p| p.price(interval, currency)).ok_or_else(|| {
            BillingError::Refused(format!("Plan {} is not sold {} in {currency}.", terms.plan, interval.as_str()))
        })?;
        let amount = Money::new(price, currency)
            .to_minor()
            .ok_or_else(|| BillingError::Refused(format!("The price of plan {} is too large.", terms.plan)))?;
        let (unit, count) = match interval {
            BillingInterval::Monthly => ("month", 1),
            BillingInterval::Quarterly => ("month", 3),
            BillingInterval::Annual => ("year", 1),
        };
        let currency = currency.code().to_ascii_lowercase();
        Ok(Self {
            id: format!("partnerd-{}-{}-{currency}-{amount}", terms.plan, interval.as_str()),
            amount,
            name: format!("partnerd {} ({}, {})", terms.plan, interval.as_str(), terms.currency),
            currency,
            interval: unit,
            interval_count: count,
        })
    }

    fn form(&self) -> Form {
        vec![
            ("id", self.id.clone()),
            ("amount", self.amount.to_string()),
            ("currency", self.currency.clone()),
            ("interval", self.interval.to_owned()),
            ("interval_count", self.interval_count.to_string()),
            ("product[name]", self.name.clone()),
        ]
    }

    /// A plan found under this id must bill these terms, or partnerd would charge other amounts
    /// than it shows.
    fn matches(&self, found: &Value) -> Result<(), BillingError> {
        let same = found.get("amount").and_then(Value::as_i64) == Some(self.amount)
            && found.get("currency").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref()
                == Some(self.currency.as_str())
            && found.get("interval").and_then(Value::as_str) == Some(self.interval)
            && found.get("interval_count").and_then(Value::as_i64).unwrap_or(1) == i64::from(self.interval_count);
        if same {
            Ok(())
        } else {
            Err(BillingError::Refused(format!(
                "The billing provider's plan {} bills other terms than partnerd's.",
                self.id
            )))
        }
    }
}

/// The base URL, ending with `/`, checked for what would leak the key.
fn api_base(raw: &str) -> Result<Url, StripeConfigError> {
    let invalid = || StripeConfigError::InvalidApiBase(raw.to_owned());
    let mut url = Url::parse(raw).map_err(|_| invalid())?;
    let clean = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !clean {
        return Err(invalid());
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if url.scheme() == "http" && !loopback {
        return Err(StripeConfigError::InsecureApiBase(raw.to_owned()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A failed call as the port's error. A 4xx is the provider refusing the change, with its
/// message, except 401/403: the provider refusing partnerd's key is partnerd's problem, not
/// the partner's, so it is internal (logged, never shown).
fn refusal(error: CallError) -> BillingError {
    match error {
        CallError::Refused { status: status @ (401 | 403), .. } => BillingError::Internal(InfraError::new(format!(
            "the billing provider refused partnerd's API key (HTTP {status}): check the secret key"
        ))),
        CallError::Refused { message, .. } => BillingError::Refused(message),
        CallError::Failed(message) => BillingError::Internal(InfraError::new(format!("billing provider: {message}"))),
    }
}

fn string_at(value: &Value, pointer: &str) -> Result<String, BillingError> {
    value.pointer(pointer).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
        BillingError::Internal(InfraError::new(format!("the billing provider's answer has no string at {pointer}")))
    })
}

/// The id of a subscription's one item (partnerd subscriptions have exactly one).
fn single_item(subscription: &Value) -> Result<String, BillingError> {
    match subscription.pointer("/items/data").and_then(Value::as_array).map(Vec::as_slice) {
        Some([item]) => string_at(item, "/id"),
        _ => Err(BillingError::Internal(InfraError::new(
            "the billing provider's subscription does not have exactly one item",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partnerd_domain::catalog::PlanId;
    use partnerd_domain::values::Currency;
    use time::macros::datetime;

    fn terms(plan: &str, interval: BillingInterval, currency: Currency) -> Subscription {
        Subscription::starting(PlanId::parse(plan).unwrap(), interval, currency, datetime!(2026-04-01 00:00 UTC))
    }

    #[test]
    fn plans_are_named_by_their_terms_and_priced_in_minor_units_from_the_catalog() {
        let catalog = Catalog::default();
        let cases = [
            (
                "starter",
                BillingInterval::Monthly,
                Currency::Aud,
                "partnerd-starter-monthly-aud-14900",
                14900,
                "month",
                1,
            ),
            (
                "starter",
                BillingInterval::Quarterly,
                Currency::Usd,
                "partnerd-starter-quarterly-usd-28215",
                28215,
                "month",
                3,
            ),
            (
                "enterprise",
                BillingInterval::Annual,
                Currency::Gbp,
                "partnerd-enterprise-annual-gbp-639000",
                639000,
                "year",
                1,
            ),
        ];
        for (plan, interval, currency, id, amount, unit, count) in cases {
            let p = StripePlan::of(&catalog, &terms(plan, interval, currency)).unwrap();
            assert_eq!((p.id.as_str(), p.amount, p.interval, p.interval_count), (id, amount, unit, count), "{plan}");
            assert_eq!(p.currency, currency.code().to_ascii_lowercase());
        }
    }

    #[test]
    fn terms_the_catalog_does_not_sell_are_refused() {
        let catalog = Catalog::from_toml(
            "[[products]]\nid='a'\nname='A'\ncategory='c'\nestimated_duration=1\ndefault_maturity_target=1\n\
             [[plans]]\nid='solo'\nrun_limit=1\nproducts=['a']\n[plans.prices]\nmonthly = { USD = '10' }",
        )
        .unwrap();
        let refused = StripePlan::of(&catalog, &terms("solo", BillingInterval::Annual, Currency::Usd)).unwrap_err();
        assert!(
            matches!(&refused, BillingError::Refused(m) if m == "Plan solo is not sold annual in USD."),
            "{refused:?}"
        );
        assert!(StripePlan::of(&catalog, &terms("other", BillingInterval::Monthly, Currency::Usd)).is_err());
    }

    #[test]
    fn a_plan_found_with_other_terms_is_refused() {
        let plan =
            StripePlan::of(&Catalog::default(), &terms("starter", BillingInterval::Quarterly, Currency::Usd)).unwrap();
        let found = serde_json::json!({"amount": 28215, "currency": "usd", "interval": "month", "interval_count": 3});
        assert!(plan.matches(&found).is_ok());
        for (field, value) in [
            ("amount", serde_json::json!(28216)),
            ("currency", serde_json::json!("aud")),
            ("interval", serde_json::json!("year")),
            ("interval_count", serde_json::json!(1)),
        ] {
            let mut other = found.clone();
            other[field] = value;
            assert!(matches!(plan.matches(&other), Err(BillingError::Refused(_))), "{field}");
        }
    }

    #[test]
    fn the_api_base_must_not_send_the_key_in_clear_or_carry_credentials() {
        let ok = |raw: &str| api_base(raw).map(|u| u.to_string());
        assert_eq!(ok("https://api.stripe.com").unwrap(), "https://api.stripe.com/");
        assert_eq!(ok("https://billing.example/stripe").unwrap(), "https://billing.example/stripe/");
        assert_eq!(ok("http://127.0.0.1:8420").unwrap(), "http://127.0.0.1:8420/");
        assert_eq!(ok("http://[::1]:8420/").unwrap(), "http://[::1]:8420/");
        assert_eq!(ok("http://localhost:8420").unwrap(), "http://localhost:8420/");
        assert!(matches!(api_base("http://stripe.internal:8420"), Err(StripeConfigError::InsecureApiBase(_))));
        for bad in [
            "api.stripe.com",
            "ftp://x",
            "https://user:pw@api.stripe.com",
            "https://api.stripe.com/?k=1",
            "https://api.stripe.com/#f",
        ] {
            assert!(matches!(api_base(bad), Err(StripeConfigError::InvalidApiBase(_))), "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret_key() {
        let config = StripeConfig::new("https://api.stripe.com", "sk_test_do_not_print");
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk_test_do_not_print") && shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn a_refused_key_is_internal_and_other_4xx_are_refusals_with_the_providers_message() {
        let refused = |status| CallError::Refused { status, code: None, message: "Invalid API key provided".into() };
        assert!(matches!(refusal(refused(401)), BillingError::Internal(_)));
        assert!(matches!(refusal(refused(403)), BillingError::Internal(_)));
        assert!(matches!(refusal(refused(402)), BillingError::Refused(m) if m == "Invalid API key provided"));
        assert!(matches!(refusal(CallError::Failed("down".into())), BillingError::Internal(_)));
    }
}
