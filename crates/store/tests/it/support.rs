use std::sync::Arc;

use partnerd_domain::account::{AccountStatus, Distributor, Partner};
use partnerd_domain::billing::Subscription;
use partnerd_domain::catalog::PlanId;
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::ports::{DistributorRepository, IdGenerator, PartnerRepository};
use partnerd_domain::testing::SequentialIds;
use partnerd_domain::values::{BillingInterval, Currency, DisplayName, Email};
use partnerd_store::testing::{Backend, TestDatabase};
use partnerd_store::{DbConfig, Store};
use time::OffsetDateTime;
use time::macros::datetime;

/// Runs one async test body on each back-end, each with a fresh, migrated database.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let ctx = $crate::support::Ctx::new(partnerd_store::testing::Backend::Sqlite).await.unwrap();
                    super::$name(&ctx).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Some(ctx) = $crate::support::Ctx::new(partnerd_store::testing::Backend::Postgres).await {
                        super::$name(&ctx).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;

pub const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);

pub struct Ctx {
    pub store: Arc<Store>,
    pub ids: SequentialIds,
    pub db: TestDatabase,
}

impl Ctx {
    pub async fn new(backend: Backend) -> Option<Self> {
        let db = TestDatabase::new(backend).await?;
        let store = Store::open(&DbConfig::new(db.url())).await.expect("open and migrate");
        Some(Self { store: Arc::new(store), ids: SequentialIds::default(), db })
    }

    pub async fn distributor(&self) -> Distributor {
        let d = Distributor {
            id: DistributorId::generate(&self.ids),
            company: DisplayName::parse("Global Security Distribution").unwrap(),
            email: Email::parse("ops@globalsecdist.com").unwrap(),
            status: AccountStatus::Active,
            created_at: NOW,
        };
        DistributorRepository::insert(&*self.store, &d, None).await.unwrap();
        d
    }

    pub async fn partner(&self, distributor: Option<&DistributorId>) -> Partner {
        let p = Partner {
            id: PartnerId::generate(&self.ids),
            distributor_id: distributor.cloned(),
            company: DisplayName::parse("Acme MSP").unwrap(),
            email: Email::parse("admin@acmemsp.com").unwrap(),
            name: DisplayName::parse("John Doe").unwrap(),
            status: AccountStatus::Active,
            subscription: Subscription::starting(
                PlanId::parse("professional").unwrap(),
                BillingInterval::Quarterly,
                Currency::Aud,
                NOW,
            ),
            created_at: NOW,
            updated_at: NOW,
        };
        PartnerRepository::insert(&*self.store, &p, None).await.unwrap();
        p
    }

    /// An event of `kind` with a fresh id, for repository calls that record one.
    pub fn event(&self, kind: partnerd_domain::event::EventType) -> partnerd_domain::event::Event {
        partnerd_domain::event::Event::new(partnerd_domain::ids::EventId::generate(&self.ids), kind, NOW)
    }

    /// The outbox as stored: `(type, to_distributor, data)` per event, oldest first.
    pub async fn outbox(&self) -> Vec<(String, Option<String>, String)> {
        self.outbox_rows("SELECT type, to_distributor, data FROM events ORDER BY occurred_at, id").await
    }

    /// `(type, to_partner, data)` per event, oldest first.
    pub async fn partner_outbox(&self) -> Vec<(String, Option<String>, String)> {
        self.outbox_rows("SELECT type, to_partner, data FROM events ORDER BY occurred_at, id").await
    }

    async fn outbox_rows(&self, sql: &str) -> Vec<(String, Option<String>, String)> {
        use sea_orm::ConnectionTrait;
        let raw = sea_orm::Database::connect(self.db.url()).await.unwrap();
        let rows = raw.query_all_raw(sea_orm::Statement::from_string(raw.get_database_backend(), sql)).await.unwrap();
        let out = rows
            .iter()
            .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
            .collect();
        raw.close().await.unwrap();
        out
    }

    pub fn ids(&self) -> &dyn IdGenerator {
        &self.ids
    }
}
