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

    pub fn ids(&self) -> &dyn IdGenerator {
        &self.ids
    }
}
