//! Two requests that change one partner's status at the same time. A port in front of the
//! in-memory store holds each request, after it has read the partner, until the other has read
//! it too, so the two always overlap (as two `partnerd` processes or threads can).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use partnerd_domain::account::{AccountStatus, Partner};
use partnerd_domain::catalog::Catalog;
use partnerd_domain::event::EventType;
use partnerd_domain::ids::{DistributorId, PartnerId};
use partnerd_domain::ports::{
    IdGenerator, InfraError, KeyGenerator, ManagedPartnerRepository, Page, Paged, PartnerListing, PartnerTransition,
    PartnerUsageRow,
};
use partnerd_domain::services::DistributorService;
use partnerd_domain::testing::{InMemoryStore, SequentialIds};
use partnerd_domain::values::Month;
use tokio::sync::Barrier;

use crate::support::{TestApp, in_memory_state, new_msp};

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, InfraError>> + Send + 'a>>;

/// The in-memory store, except that while armed, `get` waits (up to a few seconds) after its
/// read until a second request has read too.
struct Overlapping {
    store: Arc<InMemoryStore>,
    armed: AtomicBool,
    barrier: Barrier,
}

// What `#[async_trait]` would write (the macro is not a dependency of this crate's tests).
impl ManagedPartnerRepository for Overlapping {
    fn list<'s, 'd, 'p, 'f>(
        &'s self,
        distributor: &'d DistributorId,
        status: Option<AccountStatus>,
        page: &'p Page,
    ) -> Fut<'f, Paged<PartnerListing>>
    where
        's: 'f,
        'd: 'f,
        'p: 'f,
        Self: 'f,
    {
        ManagedPartnerRepository::list(&*self.store, distributor, status, page)
    }

    fn get<'s, 'd, 'i, 'f>(&'s self, distributor: &'d DistributorId, id: &'i PartnerId) -> Fut<'f, Option<Partner>>
    where
        's: 'f,
        'd: 'f,
        'i: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let partner = ManagedPartnerRepository::get(&*self.store, distributor, id).await?;
            if self.armed.load(Ordering::SeqCst) {
                // A safety valve, not a timing assumption: a store that never lets two requests
                // read at once must not hang the test.
                let _ = tokio::time::timeout(Duration::from_secs(5), self.barrier.wait()).await;
            }
            Ok(partner)
        })
    }

    fn insert<'s, 'p, 'f>(&'s self, partners: &'p [Partner]) -> Fut<'f, ()>
    where
        's: 'f,
        'p: 'f,
        Self: 'f,
    {
        ManagedPartnerRepository::insert(&*self.store, partners)
    }

    fn update_profile<'s, 'p, 'f>(&'s self, partner: &'p Partner) -> Fut<'f, bool>
    where
        's: 'f,
        'p: 'f,
        Self: 'f,
    {
        ManagedPartnerRepository::update_profile(&*self.store, partner)
    }

    fn transition<'s, 't, 'f>(&'s self, transition: &'t PartnerTransition) -> Fut<'f, bool>
    where
        's: 'f,
        't: 'f,
        Self: 'f,
    {
        ManagedPartnerRepository::transition(&*self.store, transition)
    }

    fn usage<'s, 'd, 'f>(&'s self, distributor: &'d DistributorId, month: Month) -> Fut<'f, Vec<PartnerUsageRow>>
    where
        's: 'f,
        'd: 'f,
        Self: 'f,
    {
        ManagedPartnerRepository::usage(&*self.store, distributor, month)
    }
}

/// Ids and keys for the swapped-in service, marked so they never equal the other services'.
#[derive(Default)]
struct RaceIds(SequentialIds);

impl IdGenerator for RaceIds {
    fn id_body(&self) -> [u8; 12] {
        let mut body = self.0.id_body();
        body[0] = 0x7a;
        body
    }
}

impl KeyGenerator for RaceIds {
    fn key_bytes(&self) -> [u8; 32] {
        let mut bytes = self.0.key_bytes();
        bytes[0] = 0x7a;
        bytes
    }
}

async fn overlapping_app() -> (TestApp, Arc<Overlapping>) {
    let mut managed = None;
    let app = TestApp::start_over(|store, clock| {
        let port =
            Arc::new(Overlapping { store: store.clone(), armed: AtomicBool::new(false), barrier: Barrier::new(2) });
        managed = Some(port.clone());
        let mut state = in_memory_state(store.clone(), clock.clone());
        let ids = Arc::new(RaceIds::default());
        state.distributors =
            Arc::new(DistributorService::new(port, store, Arc::new(Catalog::default()), clock, ids.clone(), ids));
        state
    })
    .await;
    (app, managed.unwrap())
}

#[tokio::test]
async fn two_overlapping_activations_issue_one_key_and_one_event() {
    let (app, managed) = overlapping_app().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let id = distributor.provision(&new_msp()).await;
    let path = format!("/v1/distributor/partners/{id}/activate");

    managed.armed.store(true, Ordering::SeqCst);
    let (a, b) = futures_util::future::join(distributor.post_empty(&path), distributor.post_empty(&path)).await;
    managed.armed.store(false, Ordering::SeqCst);
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);

    let keys: Vec<&str> = [&a, &b].iter().filter_map(|r| r.body.get("key").and_then(|k| k.as_str())).collect();
    for key in &keys {
        let me = app.as_partner_key(key).get("/v1/partner/me").await;
        assert_eq!(me.status, 200, "a key handed out by activate must work: {}", me.body);
    }
    assert_eq!(keys.len(), 1, "one activation happened, so one key: {} {}", a.body, b.body);
    let activations = app.store.events().iter().filter(|e| e.event_type == EventType::PartnerActivated).count();
    assert_eq!(activations, 1);
}

#[tokio::test]
async fn two_overlapping_suspensions_record_one_event() {
    let (app, managed) = overlapping_app().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, _) = distributor.provision_active(&new_msp()).await;
    let path = format!("/v1/distributor/partners/{id}/suspend");

    managed.armed.store(true, Ordering::SeqCst);
    let (a, b) = futures_util::future::join(distributor.post_empty(&path), distributor.post_empty(&path)).await;
    managed.armed.store(false, Ordering::SeqCst);
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let suspensions = app.store.events().iter().filter(|e| e.event_type == EventType::PartnerSuspended).count();
    assert_eq!(suspensions, 1, "suspending a suspended partner changes nothing");
}

#[tokio::test]
async fn without_overlap_the_port_in_front_changes_nothing() {
    // The harness itself: unarmed, activation behaves as everywhere else.
    let (app, _) = overlapping_app().await;
    let (_, dk) = app.distributor(AccountStatus::Active).await;
    let distributor = app.as_distributor(&dk);
    let (id, key) = distributor.provision_active(&new_msp()).await;
    assert_eq!(app.as_partner_key(&key).me().await["id"], id.as_str());
    assert_eq!(distributor.activate(&id).await, None);
    let types: Vec<EventType> = app.store.events().iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::KeyCreated, EventType::PartnerActivated], "the first activation only");
}
