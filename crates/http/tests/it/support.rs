use std::net::TcpListener;
use std::sync::Arc;

use partnerd_billing::LedgerBilling;
use partnerd_domain::account::{AccountStatus, Distributor, Partner};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::{Catalog, PlanId};
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::keys::{ApiKey, KeyKind};
use partnerd_domain::ports::{DistributorRepository, PartnerRepository};
use partnerd_domain::services::{
    AssessmentService, AuthService, CustomerService, DistributorService, KeyService, PlanService, ProfileService,
};
use partnerd_domain::testing::{FixedClock, InMemoryStore, SequentialIds};
use partnerd_domain::values::{BillingInterval, Currency, DisplayName, Email};
use partnerd_http::{AppState, HttpConfig};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

pub const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);

/// A running server over an in-memory store, and a client for it.
pub struct TestApp {
    pub base: String,
    pub store: Arc<InMemoryStore>,
    pub ids: SequentialIds,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(HttpConfig::default()).await
    }

    pub async fn start_with(config: HttpConfig) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let state =
            state_with(store.clone(), store.clone(), store.clone(), store.clone(), Arc::new(FixedClock::at(NOW)));
        Self { base: serve(state, config), store, ids: SequentialIds::default(), client: reqwest::Client::new() }
    }

    pub async fn distributor(&self, status: AccountStatus) -> (Distributor, ApiKey) {
        let d = Distributor {
            id: DistributorId::generate(&self.ids),
            company: DisplayName::parse("Global Security Distribution").unwrap(),
            email: Email::parse("ops@globalsecdist.com").unwrap(),
            status,
            created_at: NOW,
        };
        let key = ApiKey::generate(KeyKind::Distributor, &self.ids);
        DistributorRepository::insert(&*self.store, &d, Some(key.hash())).await.unwrap();
        (d, key)
    }

    pub async fn partner(&self, distributor: Option<&DistributorId>, status: AccountStatus) -> (Partner, ApiKey) {
        let p = partner(&self.ids, distributor, status);
        let key = ApiKey::generate(KeyKind::Partner, &self.ids);
        PartnerRepository::insert(&*self.store, &p, Some(key.hash())).await.unwrap();
        (p, key)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, header: (&str, &str)) -> (u16, Value) {
        let res = self.client.get(self.url(path)).header(header.0, header.1).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }
}

pub fn partner(ids: &SequentialIds, distributor: Option<&DistributorId>, status: AccountStatus) -> Partner {
    Partner {
        id: PartnerId::generate(ids),
        distributor_id: distributor.cloned(),
        company: DisplayName::parse("Acme MSP").unwrap(),
        email: Email::parse("admin@acmemsp.com").unwrap(),
        name: DisplayName::parse("John Doe").unwrap(),
        status,
        subscription: Subscription::starting(
            PlanId::parse("professional").unwrap(),
            BillingInterval::Quarterly,
            Currency::Aud,
            NOW,
        ),
        created_at: NOW,
        updated_at: NOW,
    }
}

/// Services over the given ports (the rest over a fresh in-memory store), with a fixed clock.
pub fn state_over(
    keys: Arc<dyn partnerd_domain::ports::KeyRepository>,
    partners: Arc<dyn PartnerRepository>,
    distributors: Arc<dyn DistributorRepository>,
) -> AppState {
    state_with(keys, partners, distributors, Arc::new(InMemoryStore::new()), Arc::new(FixedClock::at(NOW)))
}

pub fn state_with(
    keys: Arc<dyn partnerd_domain::ports::KeyRepository>,
    partners: Arc<dyn PartnerRepository>,
    distributors: Arc<dyn DistributorRepository>,
    rest: Arc<InMemoryStore>,
    clock: Arc<FixedClock>,
) -> AppState {
    let catalog = Arc::new(Catalog::default());
    let ids = Arc::new(SequentialIds::default());
    let billing = Arc::new(LedgerBilling::new(rest.clone(), clock.clone()));
    AppState {
        auth: Arc::new(AuthService::new(keys.clone())),
        profiles: Arc::new(ProfileService::new(partners.clone(), distributors, catalog.clone(), clock.clone())),
        customers: Arc::new(CustomerService::new(rest.clone(), rest.clone(), clock.clone(), ids.clone())),
        assessments: Arc::new(AssessmentService::new(
            rest.clone(),
            partners.clone(),
            catalog.clone(),
            clock.clone(),
            ids.clone(),
        )),
        keys: Arc::new(KeyService::new(keys, clock.clone(), ids.clone())),
        plans: Arc::new(PlanService::new(partners, rest.clone(), billing, catalog.clone(), clock.clone(), ids.clone())),
        distributors: Arc::new(DistributorService::new(rest.clone(), rest.clone(), catalog.clone(), clock, ids.clone(), ids)),
        catalog,
    }
}

/// Starts the server on a free port and returns its base URL.
pub fn serve(state: AppState, config: HttpConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = partnerd_http::build(listener, state, HttpConfig { workers: Some(1), ..config }).unwrap();
    tokio::spawn(server);
    base
}

/// Asserts the reference error envelope with this code, and returns its message.
pub fn assert_error(body: &Value, code: &str) -> String {
    let error = body.get("error").unwrap_or_else(|| panic!("no error envelope in {body}"));
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap_or_else(|| panic!("no message in {body}"));
    assert!(!message.is_empty());
    message.to_owned()
}
