//! Wiring: the store behind every port, the services over them.

use std::sync::Arc;

use anyhow::Context;
use partnerd_billing::{LedgerBilling, StripeBilling, StripeConfig};
use partnerd_domain::catalog::Catalog;
use partnerd_domain::ports::BillingProvider;
use partnerd_domain::services::{AdminService, InvoiceService, WorkerService};
use partnerd_http::{AppState, Ports};
use partnerd_store::{DbConfig, Store};

use std::time::Duration;

use partnerd_webhooks::{Dispatcher, DispatcherConfig};

use crate::cli::{BillingArgs, BillingProviderKind, DatabaseArgs, WebhookArgs};
use crate::system::{OsRandom, SystemClock};

pub struct Platform {
    pub store: Arc<Store>,
    pub catalog: Arc<Catalog>,
}

impl Platform {
    /// Opens the database and brings its schema up to date.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        let catalog = match &args.catalog {
            None => Catalog::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                Catalog::from_toml(&text).with_context(|| format!("loading the catalog {}", path.display()))?
            }
        };
        let config = DbConfig { url: args.database_url.clone(), max_connections: args.database_max_connections.max(1) };
        let store = Store::open(&config)
            .await
            .with_context(|| format!("opening the database at {}", redact_url(&args.database_url)))?;
        Ok(Self { store: Arc::new(store), catalog: Arc::new(catalog) })
    }

    pub fn admin(&self) -> AdminService {
        let s = &self.store;
        AdminService::new(
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            self.catalog.clone(),
            Arc::new(SystemClock),
            Arc::new(OsRandom),
            Arc::new(OsRandom),
        )
    }

    /// The webhook dispatcher of this process, over the shared delivery queue.
    pub fn dispatcher(&self, args: &WebhookArgs) -> anyhow::Result<Arc<Dispatcher>> {
        let config = DispatcherConfig {
            schedule: args.retry_schedule.clone(),
            allow_private: args.allow_private,
            timeout: args.timeout,
            concurrency: usize::from(args.concurrency),
            lease: args.timeout + Duration::from_secs(10),
            ..DispatcherConfig::default()
        };
        let dispatcher = Dispatcher::new(self.store.clone(), Arc::new(SystemClock), Arc::new(OsRandom), config)
            .context("building the webhook HTTP client")?;
        Ok(Arc::new(dispatcher))
    }

    /// The worker protocol's service (for the lease sweeper).
    pub fn workers(&self) -> WorkerService {
        WorkerService::new(self.store.clone(), self.catalog.clone(), Arc::new(SystemClock))
    }

    /// Invoicing (for the invoicing task).
    pub fn invoices(&self) -> InvoiceService {
        InvoiceService::new(self.store.clone(), self.catalog.clone(), Arc::new(OsRandom))
    }

    /// The billing provider `args` choose.
    pub fn billing(&self, args: &BillingArgs) -> anyhow::Result<Arc<dyn BillingProvider>> {
        Ok(match args.provider {
            BillingProviderKind::Ledger => Arc::new(LedgerBilling::new(self.store.clone(), Arc::new(SystemClock))),
            BillingProviderKind::Stripe => {
                let key = args
                    .stripe_secret_key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .context("--billing-provider stripe needs the secret key in PARTNERD_STRIPE_SECRET_KEY")?;
                let config = StripeConfig::new(args.stripe_api_base.clone(), key);
                Arc::new(
                    StripeBilling::new(config, self.store.clone(), self.catalog.clone())
                        .context("configuring the Stripe-compatible billing provider")?,
                )
            }
        })
    }

    pub fn app_state(&self, allow_private_webhooks: bool, billing: Arc<dyn BillingProvider>) -> AppState {
        let clock = Arc::new(SystemClock);
        AppState::over(Ports {
            store: self.store.clone(),
            billing,
            catalog: self.catalog.clone(),
            clock,
            ids: Arc::new(OsRandom),
            keys: Arc::new(OsRandom),
            allow_private_webhooks,
        })
    }
}

/// A database URL fit for a log line or an error: the password, if any, is hidden.
pub fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if rest.contains(':') && at > scheme.len() => {
            let credentials = &url[scheme.len() + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{}", &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://partnerd.db"), "sqlite://partnerd.db");
    }
}
