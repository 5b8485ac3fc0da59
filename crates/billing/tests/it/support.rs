use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use partnerd_billing::{StripeBilling, StripeConfig};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::{Catalog, PlanId};
use partnerd_domain::ids::{PartnerId, PlanChangeId};
use partnerd_domain::ports::{Actor, InfraError, PlanChange, ProviderAccount, ProviderAccountRepository};
use partnerd_domain::testing::SequentialIds;
use partnerd_domain::values::{BillingInterval, Currency};
use time::OffsetDateTime;

pub const SECRET: &str = "sk_test_partnerd_e2e_51Hsecret";

/// Prices in AUD, plus one free plan (localstripe charges a subscription's first invoice at
/// once, and can do that without a payment method only when it comes to zero).
pub fn catalog() -> Arc<Catalog> {
    let toml = "[[products]]\nid='scan'\nname='Scan'\ncategory='c'\nestimated_duration=60\ndefault_maturity_target=3\n\
                [[plans]]\nid='free'\nrun_limit=5\nproducts=['scan']\n[plans.prices]\nmonthly = { AUD = '0.00' }\n\
                [[plans]]\nid='starter'\nrun_limit=50\nproducts=['scan']\n[plans.prices]\n\
                monthly = { AUD = '149.00', GBP = '79.00' }\nannual = { AUD = '1490.00' }\n\
                [[plans]]\nid='professional'\nrun_limit=200\nproducts=['scan']\n[plans.prices]\n\
                monthly = { AUD = '449.00' }\nannual = { AUD = '4490.00' }\n";
    Arc::new(Catalog::from_toml(toml).expect("the test catalog is valid"))
}

/// Quick retries, so tests of retrying stay fast.
pub fn config(api_base: &str) -> StripeConfig {
    StripeConfig {
        timeout: Duration::from_secs(5),
        max_retries: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..StripeConfig::new(api_base, SECRET)
    }
}

pub fn adapter(config: StripeConfig, accounts: Arc<dyn ProviderAccountRepository>) -> StripeBilling {
    StripeBilling::new(config, accounts, catalog()).expect("a valid configuration")
}

/// Changes for fresh partners, with ids from one sequence.
#[derive(Default)]
pub struct Changes {
    ids: SequentialIds,
}

impl Changes {
    pub fn partner(&self) -> PartnerId {
        PartnerId::generate(&self.ids)
    }

    /// `partner` moves from `from` to `to` (`plan/interval`, AUD unless `to` names a currency:
    /// `starter/monthly/GBP`), now, ten days into its current period.
    pub fn change(&self, partner: &PartnerId, from: &str, to: &str) -> PlanChange {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 is a valid nanosecond");
        let from = terms(from, now - time::Duration::days(10)).current_at(now);
        let to = terms(to, from.period_start);
        let to = Subscription { period_start: from.period_start, period_end: from.period_end, ..to };
        PlanChange {
            id: PlanChangeId::generate(&self.ids),
            partner: partner.clone(),
            actor: Actor::Partner(partner.clone()),
            from,
            to,
            lines: vec![],
            requested_at: now,
        }
    }
}

fn terms(raw: &str, start: OffsetDateTime) -> Subscription {
    let mut parts = raw.split('/');
    let plan = PlanId::parse(parts.next().unwrap()).unwrap();
    let interval: BillingInterval = parts.next().unwrap_or("monthly").parse().unwrap();
    let currency: Currency = parts.next().unwrap_or("AUD").parse().unwrap();
    Subscription::starting(plan, interval, currency, start)
}

/// The mapping in memory, insert-if-absent like the store's.
#[derive(Default)]
pub struct MemoryAccounts(Mutex<HashMap<String, ProviderAccount>>);

impl MemoryAccounts {
    pub fn of(&self, partner: &PartnerId) -> Option<ProviderAccount> {
        self.0.lock().unwrap().get(partner.as_str()).cloned()
    }

    /// The subscription items of every stored account.
    pub fn items(&self) -> std::collections::HashSet<String> {
        self.0.lock().unwrap().values().map(|a| a.item.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[async_trait]
impl ProviderAccountRepository for MemoryAccounts {
    async fn get(&self, partner: &PartnerId) -> Result<Option<ProviderAccount>, InfraError> {
        Ok(self.of(partner))
    }

    async fn put(&self, partner: &PartnerId, account: &ProviderAccount) -> Result<ProviderAccount, InfraError> {
        Ok(self.0.lock().unwrap().entry(partner.as_str().to_owned()).or_insert_with(|| account.clone()).clone())
    }
}
