//! In-memory fakes of every port, for tests in this and other crates (feature `mocks`).
//! They keep the same atomicity promises as the real store: each method holds one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{AccountStatus, Distributor, Partner, Worker};
use crate::billing::ProrationLine;
use crate::catalog::PlanId;
use crate::catalog::ProductId;
use crate::catalog::RunLimit;
use crate::customer::Customer;
use crate::event::EventType;
use crate::event::{Event, EventValue};
use crate::ids::{CustomerId, DistributorId, EventId, InvoiceId, PartnerId, PlanChangeId, RunId, WorkerId};
use crate::invoice::{
    DiscountPercent, DistributorBill, Invoice, InvoiceAccount, ItemRef, PartnerInvoiceTotal, PendingItem,
};
use crate::keys::{KeyHash, KeyOwner, KeySlot};
use crate::ports::ReportRepository;
use crate::ports::{AccountRequests, CountedAccount, RequestCount, RequestCountRepository};
use crate::ports::{
    ClaimedDelivery, DeliveryQueue, ExpiredLeases, Resend, RunActionError, RunQueue, WebhookRepository,
};
use crate::ports::{
    Clock, CreateRunsError, CustomerRepository, DistributorRepository, DistributorTotals, IdGenerator, InfraError,
    KeyEvents, KeyGenerator, KeyInsertError, KeyRepository, LedgerRepository, ManagedPartnerRepository, Page, Paged,
    PartnerListing, PartnerRepository, PartnerTransition, PartnerUsage, PartnerUsageRow, PlanChange,
    PlanChangeRepository, Principal, ReservePlanChangeError, RevokeKeyError, RunBatch, RunBatchOutcome, RunRepository,
    SlotEvents, WorkerRepository,
};
use crate::ports::{DueDistributor, DuePartner, InvoiceRepository, IssueInvoiceError, PartnerIssue};
use crate::report::{
    CustomerRuns, PartnerRuns, PartnerSpend, PartnerStatusCounts, Period, ReportScope, RunCounts, RunTally,
};
use crate::run::{ClaimedRun, RunResult, RunStatus, assessment_event};
use crate::run::{Run, RunFilter, RunView};
use crate::values::{Currency, Email, Month};
use crate::webhook::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, Disabled, Recipient, WebhookEndpoint, WebhookSecret,
    WebhookUrl, recipients,
};

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(now: OffsetDateTime) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap() = now;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Ids and keys from a counter: distinct, predictable, not secret.
#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn id_body(&self) -> [u8; 12] {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut body = [0; 12];
        body[4..].copy_from_slice(&n.to_be_bytes());
        body
    }
}

impl KeyGenerator for SequentialIds {
    fn key_bytes(&self) -> [u8; 32] {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut body = [0; 32];
        body[24..].copy_from_slice(&n.to_be_bytes());
        body
    }
}

struct StoredKey {
    owner: KeyOwner,
    slot: KeySlot,
    hash: KeyHash,
    revoked: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChangeState {
    Reserved,
    Applied,
    Released,
}

#[derive(Default)]
struct State {
    distributors: Vec<Distributor>,
    partners: Vec<Partner>,
    workers: Vec<Worker>,
    keys: Vec<StoredKey>,
    customers: Vec<Customer>,
    runs: Vec<Run>,
    usage: HashMap<(PartnerId, Month), u32>,
    plan_changes: Vec<(PlanChange, ChangeState)>,
    ledger: Vec<(PlanChangeId, ProrationLine)>,
    /// Ledger items taken in by an invoice.
    attached: HashMap<ItemRef, InvoiceId>,
    /// Issued invoices, with the distributor invoice that covers each partner invoice.
    invoices: Vec<(Invoice, Option<InvoiceId>)>,
    /// The end of the time each partner's invoices paid for (absent: nothing yet).
    invoiced_until: HashMap<PartnerId, OffsetDateTime>,
    discounts: HashMap<DistributorId, DiscountPercent>,
    events: Vec<Event>,
    thresholds: Vec<(PartnerId, Month, u8)>,
    endpoints: Vec<WebhookEndpoint>,
    deliveries: Vec<StoredDelivery>,
    /// Worker protocol: claims so far and the current lease, per run.
    leases: HashMap<RunId, Lease>,
    /// API requests counted per account and UTC day.
    request_counts: HashMap<(CountedAccount, time::Date), u64>,
}

#[derive(Default)]
struct Lease {
    attempts: u32,
    holder: Option<(WorkerId, OffsetDateTime)>,
}

/// A delivery as the fake keeps it: the log entry plus the queue's bookkeeping.
#[derive(Clone)]
struct StoredDelivery {
    recipient: Recipient,
    delivery: Delivery,
    /// Attempts made before the last resend (the schedule restarts after it).
    round_base: u32,
    lease: Option<String>,
}

impl State {
    /// Records an event in the outbox and queues its delivery to each recipient with an enabled
    /// endpoint, as the real store does in the change's transaction.
    fn record(&mut self, event: Event) {
        for recipient in recipients(&event) {
            if self.endpoints.iter().any(|e| e.recipient == recipient && e.disabled.is_none()) {
                self.deliveries.push(StoredDelivery::new(recipient, &event, event.occurred_at));
            }
        }
        self.events.push(event);
    }

    fn record_all(&mut self, events: impl IntoIterator<Item = Event>) {
        events.into_iter().for_each(|e| self.record(e));
    }

    fn active_slots(&self, owner: &KeyOwner) -> Vec<KeySlot> {
        self.keys.iter().filter(|k| &k.owner == owner && !k.revoked).map(|k| k.slot).collect()
    }

    /// Revokes every active key of `owner`, recording the event of each slot revoked.
    fn revoke_all(&mut self, owner: &KeyOwner, events: &SlotEvents) {
        let revoked: Vec<KeySlot> = self.active_slots(owner);
        self.keys.iter_mut().filter(|k| &k.owner == owner).for_each(|k| k.revoked = true);
        for slot in revoked {
            self.record_all(events.for_slot(slot).cloned());
        }
    }

    fn add_key(&mut self, owner: KeyOwner, slot: KeySlot, hash: KeyHash) {
        self.keys.push(StoredKey { owner, slot, hash, revoked: false });
    }

    fn status_of(&self, owner: &KeyOwner) -> Option<AccountStatus> {
        match owner {
            KeyOwner::Partner(id) => self.partners.iter().find(|p| &p.id == id).map(|p| p.status),
            KeyOwner::Distributor(id) => self.distributors.iter().find(|d| &d.id == id).map(|d| d.status),
            KeyOwner::Worker(id) => self.workers.iter().any(|w| &w.id == id).then_some(AccountStatus::Active),
        }
    }
}

/// Every repository port over one in-memory state.
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Events recorded in the outbox so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }

    /// Records events as a change's transaction would (queuing their webhook deliveries).
    pub fn record_events(&self, events: Vec<Event>) {
        self.state.lock().unwrap().record_all(events);
    }

    /// Pending ledger lines recorded so far, in order.
    pub fn ledger_lines(&self) -> Vec<ProrationLine> {
        self.state.lock().unwrap().ledger.iter().map(|(_, l)| l.clone()).collect()
    }

    /// Units of the run limit used by `partner` in `month`.
    pub fn units_used(&self, partner: &PartnerId, month: Month) -> u32 {
        self.state.lock().unwrap().usage.get(&(partner.clone(), month)).copied().unwrap_or(0)
    }

    /// Hashes of every key ever stored, revoked ones included (for tests that look for leaks).
    pub fn stored_key_hashes(&self) -> Vec<String> {
        self.state.lock().unwrap().keys.iter().map(|k| k.hash.as_str().to_owned()).collect()
    }
}

#[async_trait]
impl KeyRepository for InMemoryStore {
    async fn insert_in_free_slot(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        _now: OffsetDateTime,
        events: &SlotEvents,
    ) -> Result<KeySlot, KeyInsertError> {
        let mut state = self.state.lock().unwrap();
        let taken = state.active_slots(owner);
        let slot = KeySlot::ALL.into_iter().find(|s| !taken.contains(s)).ok_or(KeyInsertError::SlotsFull)?;
        state.add_key(owner.clone(), slot, hash.clone());
        state.record_all(events.for_slot(slot).cloned());
        Ok(slot)
    }

    async fn reissue(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        _now: OffsetDateTime,
        events: &KeyEvents,
    ) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.revoke_all(owner, &events.revoked);
        state.add_key(owner.clone(), KeySlot::FIRST, hash.clone());
        state.record_all(events.created.clone());
        Ok(())
    }

    async fn revoke_slot(
        &self,
        owner: &KeyOwner,
        slot: KeySlot,
        _now: OffsetDateTime,
        event: Option<Event>,
    ) -> Result<(), RevokeKeyError> {
        let mut state = self.state.lock().unwrap();
        let active = state.active_slots(owner);
        if !active.contains(&slot) {
            return Err(RevokeKeyError::EmptySlot);
        }
        if active.len() == 1 {
            return Err(RevokeKeyError::LastKey);
        }
        state.keys.iter_mut().filter(|k| &k.owner == owner && k.slot == slot).for_each(|k| k.revoked = true);
        state.record_all(event);
        Ok(())
    }

    async fn find_principal(&self, hash: &KeyHash) -> Result<Option<Principal>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.keys.iter().find(|k| &k.hash == hash && !k.revoked).and_then(|k| {
            Some(Principal {
                owner: k.owner.clone(),
                slot: k.slot,
                stored_hash: k.hash.clone(),
                owner_status: state.status_of(&k.owner)?,
            })
        }))
    }
}

#[async_trait]
impl DistributorRepository for InMemoryStore {
    async fn set_discount(&self, id: &DistributorId, discount: Option<DiscountPercent>) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        if !state.distributors.iter().any(|d| &d.id == id) {
            return Ok(false);
        }
        match discount {
            Some(d) => state.discounts.insert(id.clone(), d),
            None => state.discounts.remove(id),
        };
        Ok(true)
    }

    async fn insert(&self, distributor: &Distributor, first_key: Option<KeyHash>) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.distributors.push(distributor.clone());
        if let Some(hash) = first_key {
            state.add_key(KeyOwner::Distributor(distributor.id.clone()), KeySlot::FIRST, hash);
        }
        Ok(())
    }

    async fn get(&self, id: &DistributorId) -> Result<Option<Distributor>, InfraError> {
        Ok(self.state.lock().unwrap().distributors.iter().find(|d| &d.id == id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Distributor>, InfraError> {
        Ok(self.state.lock().unwrap().distributors.iter().find(|d| &d.email == email).cloned())
    }

    async fn set_status(
        &self,
        id: &DistributorId,
        status: AccountStatus,
        _now: OffsetDateTime,
    ) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        Ok(state.distributors.iter_mut().find(|d| &d.id == id).map(|d| d.status = status).is_some())
    }

    async fn totals(&self, id: &DistributorId, month: Month) -> Result<DistributorTotals, InfraError> {
        let state = self.state.lock().unwrap();
        let partners: Vec<&PartnerId> =
            state.partners.iter().filter(|p| p.distributor_id.as_ref() == Some(id)).map(|p| &p.id).collect();
        let runs = state.usage.iter().filter(|((p, m), _)| *m == month && partners.contains(&p)).map(|(_, n)| *n);
        Ok(DistributorTotals {
            partners_count: partners.len() as u64,
            runs_in_month: runs.map(u64::from).sum(),
            customers_count: state.customers.iter().filter(|c| partners.contains(&&c.partner_id)).count() as u64,
        })
    }
}

#[async_trait]
impl PartnerRepository for InMemoryStore {
    async fn insert(&self, partner: &Partner, first_key: Option<KeyHash>) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.partners.push(partner.clone());
        if let Some(hash) = first_key {
            state.add_key(KeyOwner::Partner(partner.id.clone()), KeySlot::FIRST, hash);
        }
        Ok(())
    }

    async fn get(&self, id: &PartnerId) -> Result<Option<Partner>, InfraError> {
        Ok(self.state.lock().unwrap().partners.iter().find(|p| &p.id == id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Partner>, InfraError> {
        Ok(self.state.lock().unwrap().partners.iter().find(|p| &p.email == email).cloned())
    }

    async fn usage(&self, id: &PartnerId, month: Month) -> Result<PartnerUsage, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(PartnerUsage {
            runs_used: u64::from(state.usage.get(&(id.clone(), month)).copied().unwrap_or(0)),
            customers_count: state.customers.iter().filter(|c| &c.partner_id == id).count() as u64,
        })
    }
}

#[async_trait]
impl WorkerRepository for InMemoryStore {
    async fn insert(&self, worker: &Worker, first_key: KeyHash) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.workers.push(worker.clone());
        state.add_key(KeyOwner::Worker(worker.id.clone()), KeySlot::FIRST, first_key);
        Ok(())
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Worker>, InfraError> {
        Ok(self.state.lock().unwrap().workers.iter().find(|w| w.name.as_str() == name).cloned())
    }
}

/// Cuts `items` (already in listing order) to a page after the item whose id is `starting_after`.
fn page_of<T: Clone>(items: Vec<T>, id: impl Fn(&T) -> String, page: &Page) -> Paged<T> {
    let start = page
        .starting_after
        .as_ref()
        .and_then(|after| items.iter().position(|i| &id(i) == after).map(|p| p + 1))
        .unwrap_or(if page.starting_after.is_some() { items.len() } else { 0 });
    let rest = &items[start.min(items.len())..];
    match page.limit {
        Some(limit) if rest.len() > limit as usize => Paged { items: rest[..limit as usize].to_vec(), has_more: true },
        _ => Paged { items: rest.to_vec(), has_more: false },
    }
}

#[async_trait]
impl CustomerRepository for InMemoryStore {
    async fn insert(&self, customers: &[Customer], events: &[Event]) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        state.customers.extend_from_slice(customers);
        state.record_all(events.iter().cloned());
        Ok(())
    }

    async fn get(&self, partner: &PartnerId, id: &CustomerId) -> Result<Option<Customer>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.customers.iter().find(|c| &c.id == id && &c.partner_id == partner).cloned())
    }

    async fn list(&self, partner: &PartnerId, page: &Page) -> Result<Paged<Customer>, InfraError> {
        let state = self.state.lock().unwrap();
        let mine: Vec<Customer> = state.customers.iter().filter(|c| &c.partner_id == partner).cloned().collect();
        Ok(page_of(mine, |c| c.id.to_string(), page))
    }

    async fn update(&self, customer: &Customer, event: &Event) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        let slot = state.customers.iter_mut().find(|c| c.id == customer.id && c.partner_id == customer.partner_id);
        let updated = slot.map(|c| *c = customer.clone()).is_some();
        if updated {
            state.record(event.clone());
        }
        Ok(updated)
    }

    async fn delete(&self, partner: &PartnerId, id: &CustomerId, event: &Event) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        let before = state.customers.len();
        state.customers.retain(|c| !(&c.id == id && &c.partner_id == partner));
        let deleted = state.customers.len() < before;
        if deleted {
            state.runs.retain(|r| &r.customer_id != id);
            state.record(event.clone());
        }
        Ok(deleted)
    }
}

#[async_trait]
impl RunRepository for InMemoryStore {
    async fn create(&self, batch: &RunBatch) -> Result<RunBatchOutcome, CreateRunsError> {
        let mut state = self.state.lock().unwrap();
        let partner = state.partners.iter().find(|p| p.id == batch.partner).ok_or(CreateRunsError::PartnerGone)?;
        if partner.plan() != &batch.plan {
            return Err(CreateRunsError::PlanChanged);
        }
        if !partner.status.is_active() {
            return Err(CreateRunsError::PartnerInactive);
        }
        let mut outcome = RunBatchOutcome { created: vec![], over_limit: vec![], customer_gone: vec![] };
        let mut used = state.usage.get(&(batch.partner.clone(), batch.month)).copied().unwrap_or(0);
        for run in &batch.runs {
            let owned = state.customers.iter().any(|c| c.id == run.customer_id && c.partner_id == batch.partner);
            if !owned {
                outcome.customer_gone.push(run.id.clone());
            } else if matches!(batch.limit, RunLimit::Limited(limit) if used >= limit) {
                outcome.over_limit.push(run.id.clone());
            } else {
                used += 1;
                state.runs.push(run.clone());
                outcome.created.push(run.id.clone());
            }
        }
        state.usage.insert((batch.partner.clone(), batch.month), used);
        for t in &batch.thresholds {
            let key = (batch.partner.clone(), batch.month, t.percent);
            if used >= t.units && !state.thresholds.contains(&key) {
                state.thresholds.push(key);
                state.record(t.event.clone());
            }
        }
        Ok(outcome)
    }

    async fn get(&self, partner: &PartnerId, id: &RunId) -> Result<Option<RunView>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.runs.iter().find(|r| &r.id == id && &r.partner_id == partner).map(|r| view(&state, r)))
    }

    async fn list(&self, partner: &PartnerId, filter: &RunFilter, page: &Page) -> Result<Paged<RunView>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut mine: Vec<RunView> = state
            .runs
            .iter()
            .filter(|r| &r.partner_id == partner)
            .filter(|r| filter.month.is_none_or(|m| m == r.month))
            .filter(|r| filter.product.as_ref().is_none_or(|p| p == &r.product))
            .filter(|r| filter.customer_id.as_ref().is_none_or(|c| c == &r.customer_id))
            .map(|r| view(&state, r))
            .collect();
        mine.reverse();
        Ok(page_of(mine, |v| v.run.id.to_string(), page))
    }

    async fn recent_for_customer(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        limit: u32,
    ) -> Result<Vec<Run>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut runs: Vec<Run> =
            state.runs.iter().filter(|r| &r.partner_id == partner && &r.customer_id == customer).cloned().collect();
        runs.reverse();
        runs.truncate(limit as usize);
        Ok(runs)
    }
}

fn view(state: &State, run: &Run) -> RunView {
    let customer_name = state
        .customers
        .iter()
        .find(|c| c.id == run.customer_id)
        .map(|c| c.name.as_str().to_owned())
        .unwrap_or_default();
    RunView { run: run.clone(), customer_name }
}

#[async_trait]
impl PlanChangeRepository for InMemoryStore {
    async fn reserve(
        &self,
        change: &PlanChange,
        window_start: OffsetDateTime,
        max: u32,
    ) -> Result<(), ReservePlanChangeError> {
        let mut state = self.state.lock().unwrap();
        let terms = state.partners.iter().find(|p| p.id == change.partner).map(|p| {
            let s = &p.subscription;
            (s.plan.clone(), s.interval, s.currency)
        });
        let from = (change.from.plan.clone(), change.from.interval, change.from.currency);
        let in_flight = state.plan_changes.iter().any(|(c, s)| {
            c.partner == change.partner
                && *s == ChangeState::Reserved
                && c.requested_at > change.requested_at - crate::ports::PLAN_CHANGE_IN_FLIGHT
        });
        if terms != Some(from) || in_flight {
            return Err(ReservePlanChangeError::Conflict);
        }
        let recent: Vec<OffsetDateTime> = state
            .plan_changes
            .iter()
            .filter(|(c, s)| {
                c.partner == change.partner && *s != ChangeState::Released && c.requested_at > window_start
            })
            .map(|(c, _)| c.requested_at)
            .collect();
        if recent.len() >= max as usize {
            let oldest = recent.into_iter().min().expect("max > 0 entries");
            return Err(ReservePlanChangeError::RateLimited {
                retry_at: oldest + (change.requested_at - window_start),
            });
        }
        state.plan_changes.push((change.clone(), ChangeState::Reserved));
        Ok(())
    }

    async fn apply(&self, change: &PlanChange, now: OffsetDateTime) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        if let Some(entry) = state.plan_changes.iter_mut().find(|(c, _)| c.id == change.id) {
            entry.1 = ChangeState::Applied;
        }
        if let Some(p) = state.partners.iter_mut().find(|p| p.id == change.partner) {
            p.subscription = change.to.clone();
            p.updated_at = now;
        }
        if let Some(until) = state.invoiced_until.get_mut(&change.partner)
            && *until >= change.from.period_end
        {
            *until = change.to.period_end;
        }
        Ok(())
    }

    async fn release(&self, id: &PlanChangeId) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        if let Some(entry) = state.plan_changes.iter_mut().find(|(c, _)| &c.id == id) {
            entry.1 = ChangeState::Released;
        }
        Ok(())
    }
}

#[async_trait]
impl LedgerRepository for InMemoryStore {
    async fn record_proration(&self, change: &PlanChange, _now: OffsetDateTime) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        if !state.ledger.iter().any(|(id, _)| id == &change.id) {
            let lines = change.lines.iter().map(|l| (change.id.clone(), l.clone()));
            state.ledger.extend(lines);
        }
        Ok(())
    }
}

impl State {
    /// The ledger's items with their line numbers (position within their change).
    fn ledger_items(&self) -> Vec<(ItemRef, &ProrationLine)> {
        let mut next: HashMap<&PlanChangeId, u16> = HashMap::new();
        self.ledger
            .iter()
            .map(|(change, line)| {
                let n = next.entry(change).or_insert(0);
                let item = ItemRef { change: change.clone(), line_no: *n };
                *n += 1;
                (item, line)
            })
            .collect()
    }

    fn change_applied(&self, id: &PlanChangeId) -> bool {
        self.plan_changes.iter().any(|(c, s)| &c.id == id && *s == ChangeState::Applied)
    }

    fn invoice_exists(&self, invoice: &Invoice) -> bool {
        self.invoices.iter().any(|(i, _)| {
            i.account == invoice.account && i.period_start == invoice.period_start && i.currency == invoice.currency
        })
    }
}

#[async_trait]
impl InvoiceRepository for InMemoryStore {
    async fn due_partners(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<DuePartner>, InfraError> {
        let state = self.state.lock().unwrap();
        let items = state.ledger_items();
        let due = state
            .partners
            .iter()
            .filter(|p| {
                p.status == AccountStatus::Active && state.invoiced_until.get(&p.id).is_none_or(|until| *until <= now)
            })
            .take(limit as usize)
            .map(|p| DuePartner {
                partner: p.id.clone(),
                subscription: p.subscription.clone(),
                invoiced_until: state.invoiced_until.get(&p.id).copied(),
                pending: items
                    .iter()
                    .filter(|(item, _)| {
                        !state.attached.contains_key(item)
                            && state.change_applied(&item.change)
                            && state.plan_changes.iter().any(|(c, _)| c.id == item.change && c.partner == p.id)
                    })
                    .map(|(item, line)| PendingItem { item: item.clone(), line: (*line).clone() })
                    .collect(),
            })
            .collect();
        Ok(due)
    }

    async fn issue_partner(&self, issue: &PartnerIssue) -> Result<(), IssueInvoiceError> {
        let mut state = self.state.lock().unwrap();
        let current = state.partners.iter().find(|p| p.id == issue.partner).map(|p| p.subscription.clone());
        let items: Vec<&ItemRef> = issue.bills.iter().flat_map(|b| &b.items).collect();
        let all_pending = items.iter().all(|i| !state.attached.contains_key(*i) && state.change_applied(&i.change));
        let issued = issue.bills.iter().any(|b| state.invoice_exists(&b.invoice));
        let paid = state.invoiced_until.get(&issue.partner).copied();
        if current.as_ref() != Some(&issue.from) || paid != issue.invoiced_until || !all_pending || issued {
            return Err(IssueInvoiceError::Stale);
        }
        for bill in &issue.bills {
            for item in &bill.items {
                state.attached.insert(item.clone(), bill.invoice.id.clone());
            }
            state.invoices.push((bill.invoice.clone(), None));
        }
        if let Some(p) = state.partners.iter_mut().find(|p| p.id == issue.partner) {
            p.subscription = issue.to.clone();
        }
        state.invoiced_until.insert(issue.partner.clone(), issue.to.period_end);
        Ok(())
    }

    async fn due_distributors(&self, before: OffsetDateTime) -> Result<Vec<DueDistributor>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut due: Vec<DueDistributor> = Vec::new();
        for (invoice, covered) in &state.invoices {
            let InvoiceAccount::Partner(partner) = &invoice.account else { continue };
            let distributor = state.partners.iter().find(|p| &p.id == partner).and_then(|p| p.distributor_id.clone());
            let Some(distributor) = distributor.filter(|_| covered.is_none() && invoice.issued_at < before) else {
                continue;
            };
            let total = PartnerInvoiceTotal {
                invoice: invoice.id.clone(),
                partner: partner.clone(),
                total: invoice.total,
                period_start: invoice.period_start,
                period_end: invoice.period_end,
            };
            match due.iter_mut().find(|d| d.distributor == distributor) {
                Some(d) => d.partner_invoices.push(total),
                None => due.push(DueDistributor {
                    discount: state.discounts.get(&distributor).copied(),
                    distributor,
                    partner_invoices: vec![total],
                }),
            }
        }
        Ok(due)
    }

    async fn issue_distributor(&self, bills: &[DistributorBill]) -> Result<(), IssueInvoiceError> {
        let mut state = self.state.lock().unwrap();
        let covered = |state: &State, id: &InvoiceId| state.invoices.iter().any(|(i, c)| &i.id == id && c.is_some());
        let stale = bills
            .iter()
            .any(|b| state.invoice_exists(&b.invoice) || b.partner_invoices.iter().any(|id| covered(&state, id)));
        if stale {
            return Err(IssueInvoiceError::Stale);
        }
        for bill in bills {
            for (invoice, cover) in state.invoices.iter_mut() {
                if bill.partner_invoices.contains(&invoice.id) {
                    *cover = Some(bill.invoice.id.clone());
                }
            }
            state.invoices.push((bill.invoice.clone(), None));
        }
        Ok(())
    }

    async fn list(&self, account: &InvoiceAccount, page: &Page) -> Result<Paged<Invoice>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut mine: Vec<Invoice> =
            state.invoices.iter().filter(|(i, _)| &i.account == account).map(|(i, _)| i.clone()).collect();
        mine.sort_by(|a, b| (b.issued_at, b.id.as_str()).cmp(&(a.issued_at, a.id.as_str())));
        Ok(page_of(mine, |i| i.id.to_string(), page))
    }

    async fn get(&self, account: &InvoiceAccount, id: &InvoiceId) -> Result<Option<Invoice>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.invoices.iter().find(|(i, _)| &i.id == id && &i.account == account).map(|(i, _)| i.clone()))
    }

    async fn count(&self, account: &InvoiceAccount) -> Result<u64, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.invoices.iter().filter(|(i, _)| &i.account == account).count() as u64)
    }
}

#[async_trait]
impl ManagedPartnerRepository for InMemoryStore {
    async fn list(
        &self,
        distributor: &DistributorId,
        status: Option<AccountStatus>,
        page: &Page,
    ) -> Result<Paged<PartnerListing>, InfraError> {
        let state = self.state.lock().unwrap();
        let mine: Vec<PartnerListing> = state
            .partners
            .iter()
            .filter(|p| p.distributor_id.as_ref() == Some(distributor) && status.is_none_or(|s| s == p.status))
            .map(|p| PartnerListing {
                partner: p.clone(),
                customers_count: state.customers.iter().filter(|c| c.partner_id == p.id).count() as u64,
            })
            .collect();
        Ok(page_of(mine, |l| l.partner.id.to_string(), page))
    }

    async fn get(&self, distributor: &DistributorId, id: &PartnerId) -> Result<Option<Partner>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state.partners.iter().find(|p| &p.id == id && p.distributor_id.as_ref() == Some(distributor)).cloned())
    }

    async fn insert(&self, partners: &[Partner]) -> Result<(), InfraError> {
        self.state.lock().unwrap().partners.extend_from_slice(partners);
        Ok(())
    }

    async fn update_profile(&self, partner: &Partner) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        let found = state.partners.iter_mut().find(|p| p.id == partner.id).map(|p| {
            p.company = partner.company.clone();
            p.email = partner.email.clone();
            p.name = partner.name.clone();
            p.updated_at = partner.updated_at;
        });
        Ok(found.is_some())
    }

    async fn transition(&self, t: &PartnerTransition) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        match state.partners.iter_mut().find(|p| p.id == t.partner && p.status == t.from) {
            Some(p) => {
                p.status = t.to;
                p.updated_at = t.at;
            }
            None => return Ok(false),
        }
        let owner = KeyOwner::Partner(t.partner.clone());
        if t.revoke_keys || t.issue_key.is_some() {
            state.revoke_all(&owner, &t.key_events.revoked);
        }
        if let Some(hash) = &t.issue_key {
            state.add_key(owner, KeySlot::FIRST, hash.clone());
            state.record_all(t.key_events.created.clone());
        }
        state.record(t.event.clone());
        Ok(true)
    }

    async fn usage(&self, distributor: &DistributorId, month: Month) -> Result<Vec<PartnerUsageRow>, InfraError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .partners
            .iter()
            .filter(|p| p.distributor_id.as_ref() == Some(distributor))
            .map(|p| PartnerUsageRow {
                partner_id: p.id.clone(),
                company: p.company.as_str().to_owned(),
                status: p.status,
                runs: u64::from(state.usage.get(&(p.id.clone(), month)).copied().unwrap_or(0)),
                customers: state.customers.iter().filter(|c| c.partner_id == p.id).count() as u64,
            })
            .collect())
    }
}

impl StoredDelivery {
    fn new(recipient: Recipient, event: &Event, now: OffsetDateTime) -> Self {
        let delivery = Delivery {
            event_id: event.id.clone(),
            event_type: event.event_type,
            occurred_at: event.occurred_at,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            attempts: Vec::new(),
        };
        Self { recipient, delivery, round_base: 0, lease: None }
    }

    fn resend(&mut self, now: OffsetDateTime) {
        self.delivery.status = DeliveryStatus::Pending;
        self.delivery.next_attempt_at = Some(now);
        self.round_base = self.delivery.attempts.len() as u32;
        self.lease = None;
    }
}

fn resend_wanted(event: &Event, selection: &Resend, current: Option<DeliveryStatus>) -> bool {
    match selection {
        Resend::One(id) => &event.id == id,
        Resend::Range { since, until, status } => {
            (*since..*until).contains(&event.occurred_at) && status.is_none_or(|s| current == Some(s))
        }
    }
}

#[async_trait]
impl WebhookRepository for InMemoryStore {
    async fn endpoint(&self, recipient: &Recipient) -> Result<Option<WebhookEndpoint>, InfraError> {
        Ok(self.state.lock().unwrap().endpoints.iter().find(|e| &e.recipient == recipient).cloned())
    }

    async fn upsert_endpoint(
        &self,
        recipient: &Recipient,
        url: &WebhookUrl,
        candidate: &WebhookSecret,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint, InfraError> {
        let mut state = self.state.lock().unwrap();
        if let Some(existing) = state.endpoints.iter_mut().find(|e| &e.recipient == recipient) {
            existing.url = url.clone();
            existing.disabled = None;
            existing.updated_at = now;
            return Ok(existing.clone());
        }
        let endpoint = WebhookEndpoint {
            recipient: recipient.clone(),
            url: url.clone(),
            secret: candidate.clone(),
            previous_secret: None,
            disabled: None,
            created_at: now,
            updated_at: now,
        };
        state.endpoints.push(endpoint.clone());
        Ok(endpoint)
    }

    async fn delete_endpoint(&self, recipient: &Recipient) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        let before = state.endpoints.len();
        state.endpoints.retain(|e| &e.recipient != recipient);
        state.deliveries.retain(|d| &d.recipient != recipient);
        Ok(state.endpoints.len() < before)
    }

    async fn rotate_secret(
        &self,
        recipient: &Recipient,
        secret: &WebhookSecret,
        now: OffsetDateTime,
        overlap_until: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, InfraError> {
        let mut state = self.state.lock().unwrap();
        Ok(state.endpoints.iter_mut().find(|e| &e.recipient == recipient).map(|e| {
            e.previous_secret = Some((std::mem::replace(&mut e.secret, secret.clone()), overlap_until));
            e.updated_at = now;
            e.clone()
        }))
    }

    async fn deliveries(
        &self,
        recipient: &Recipient,
        filter: &DeliveryFilter,
        page: &Page,
    ) -> Result<Paged<Delivery>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut mine: Vec<Delivery> = state
            .deliveries
            .iter()
            .filter(|d| &d.recipient == recipient)
            .map(|d| d.delivery.clone())
            .filter(|d| filter.status.is_none_or(|s| d.status == s))
            .filter(|d| filter.event_type.is_none_or(|t| d.event_type == t))
            .collect();
        mine.sort_by(|a, b| (b.occurred_at, &b.event_id).cmp(&(a.occurred_at, &a.event_id)));
        Ok(page_of(mine, |d| d.event_id.to_string(), page))
    }

    async fn resend(&self, recipient: &Recipient, selection: &Resend, now: OffsetDateTime) -> Result<u64, InfraError> {
        let mut state = self.state.lock().unwrap();
        let events: Vec<Event> = state.events.iter().filter(|e| recipients(e).contains(recipient)).cloned().collect();
        let mut count = 0;
        for event in events {
            let existing =
                state.deliveries.iter().position(|d| &d.recipient == recipient && d.delivery.event_id == event.id);
            let current = existing.map(|i| state.deliveries[i].delivery.status);
            if !resend_wanted(&event, selection, current) {
                continue;
            }
            match existing {
                Some(i) => state.deliveries[i].resend(now),
                None => state.deliveries.push(StoredDelivery::new(recipient.clone(), &event, now)),
            }
            count += 1;
        }
        Ok(count)
    }

    async fn delivery(&self, recipient: &Recipient, event: &EventId) -> Result<Option<Delivery>, InfraError> {
        let state = self.state.lock().unwrap();
        let found = state.deliveries.iter().find(|d| &d.recipient == recipient && &d.delivery.event_id == event);
        Ok(found.map(|d| d.delivery.clone()))
    }
}

#[async_trait]
impl DeliveryQueue for InMemoryStore {
    async fn claim(
        &self,
        lease: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        max: u32,
    ) -> Result<Vec<ClaimedDelivery>, InfraError> {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut claimed = Vec::new();
        for stored in &mut state.deliveries {
            if claimed.len() >= max as usize {
                break;
            }
            let open = matches!(stored.delivery.status, DeliveryStatus::Pending | DeliveryStatus::Retrying);
            let due = stored.delivery.next_attempt_at.is_some_and(|at| at <= now);
            let Some(endpoint) = state.endpoints.iter().find(|e| e.recipient == stored.recipient) else { continue };
            let Some(event) = state.events.iter().find(|e| e.id == stored.delivery.event_id) else { continue };
            if !open || !due || endpoint.disabled.is_some() {
                continue;
            }
            stored.lease = Some(lease.to_owned());
            stored.delivery.next_attempt_at = Some(lease_until);
            let made = stored.delivery.attempts.len() as u32;
            claimed.push(ClaimedDelivery {
                event_id: event.id.clone(),
                event_type: event.event_type,
                occurred_at: event.occurred_at,
                data: event_data_json(event),
                recipient: stored.recipient.clone(),
                url: endpoint.url.clone(),
                secrets: endpoint.signing_secrets(now),
                attempt: made + 1,
                round_attempt: made - stored.round_base,
                lease: lease.to_owned(),
            });
        }
        Ok(claimed)
    }

    async fn finish(
        &self,
        claimed: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        disable_endpoint: bool,
    ) -> Result<bool, InfraError> {
        let mut state = self.state.lock().unwrap();
        let Some(stored) = state.deliveries.iter_mut().find(|d| {
            d.recipient == claimed.recipient
                && d.delivery.event_id == claimed.event_id
                && d.lease.as_deref() == Some(claimed.lease.as_str())
        }) else {
            return Ok(false);
        };
        stored.lease = None;
        stored.delivery.status = attempt.status;
        stored.delivery.next_attempt_at = attempt.next_retry_at;
        stored.delivery.attempts.push(attempt.clone());
        if disable_endpoint {
            let reason = format!("the endpoint answered 410 Gone at attempt {}", attempt.attempt);
            for e in state.endpoints.iter_mut().filter(|e| e.recipient == claimed.recipient) {
                e.disabled = Some(Disabled { at: attempt.attempted_at, reason: reason.clone() });
            }
            for d in state.deliveries.iter_mut().filter(|d| d.recipient == claimed.recipient) {
                if matches!(d.delivery.status, DeliveryStatus::Pending | DeliveryStatus::Retrying) {
                    d.delivery.status = DeliveryStatus::Failed;
                    d.delivery.next_attempt_at = None;
                }
            }
        }
        Ok(true)
    }
}

/// An event's data as the JSON object the real store keeps.
fn event_data_json(event: &Event) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("{");
    for (i, (key, value)) in event.data.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:", json_string(key));
        match value {
            EventValue::Null => out.push_str("null"),
            EventValue::Text(s) => out.push_str(&json_string(s)),
            EventValue::Int(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl State {
    fn claimed(&self, run: &Run) -> ClaimedRun {
        let customer = self.customers.iter().find(|c| c.id == run.customer_id).expect("runs go with their customer");
        let lease = self.leases.get(&run.id).and_then(|l| l.holder.as_ref()).map(|(_, until)| *until);
        ClaimedRun {
            run: run.clone(),
            customer_name: customer.name.as_str().to_owned(),
            tenant_id: customer.tenant_id.clone(),
            lease_expires_at: lease.unwrap_or(run.created_at),
        }
    }

    /// The index of `run` if it is running under `worker`'s claim.
    fn held_by(&self, worker: &WorkerId, run: &RunId) -> Result<usize, RunActionError> {
        let i = self.runs.iter().position(|r| &r.id == run).ok_or(RunActionError::NotFound)?;
        let holder = self.leases.get(run).and_then(|l| l.holder.as_ref()).map(|(w, _)| w);
        if self.runs[i].status == RunStatus::Running && holder == Some(worker) {
            Ok(i)
        } else {
            Err(RunActionError::Conflict)
        }
    }

    fn end(&mut self, i: usize, kind: EventType, now: OffsetDateTime) -> RunView {
        let id = self.runs[i].id.clone();
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.holder = None;
        }
        self.runs[i].completed_at = Some(now);
        if kind == EventType::AssessmentFailed {
            let key = (self.runs[i].partner_id.clone(), self.runs[i].month);
            if let Some(used) = self.usage.get_mut(&key) {
                *used = used.saturating_sub(1);
            }
        }
        let run = self.runs[i].clone();
        self.record(assessment_event(kind, &run, now));
        view(self, &run)
    }
}

#[async_trait]
impl RunQueue for InMemoryStore {
    async fn claim(
        &self,
        worker: &WorkerId,
        products: &[ProductId],
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ClaimedRun>, InfraError> {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut queued: Vec<usize> = (0..state.runs.len())
            .filter(|&i| state.runs[i].status == RunStatus::Queued)
            .filter(|&i| products.is_empty() || products.contains(&state.runs[i].product))
            .collect();
        queued.sort_by_key(|&i| (state.runs[i].created_at, state.runs[i].id.clone()));
        let Some(&i) = queued.first() else { return Ok(None) };
        let id = state.runs[i].id.clone();
        let lease = state.leases.entry(id).or_default();
        lease.attempts += 1;
        lease.holder = Some((worker.clone(), lease_until));
        let first = lease.attempts == 1;
        let run = &mut state.runs[i];
        run.status = RunStatus::Running;
        run.started_at.get_or_insert(now);
        let run = run.clone();
        if first {
            state.record(assessment_event(EventType::AssessmentStarted, &run, now));
        }
        Ok(Some(state.claimed(&run)))
    }

    async fn heartbeat(
        &self,
        worker: &WorkerId,
        run: &RunId,
        lease_until: OffsetDateTime,
    ) -> Result<ClaimedRun, RunActionError> {
        let mut state = self.state.lock().unwrap();
        let i = state.held_by(worker, run)?;
        if let Some(lease) = state.leases.get_mut(run) {
            lease.holder = Some((worker.clone(), lease_until));
        }
        let run = state.runs[i].clone();
        Ok(state.claimed(&run))
    }

    async fn complete(
        &self,
        worker: &WorkerId,
        run: &RunId,
        result: &RunResult,
        now: OffsetDateTime,
    ) -> Result<RunView, RunActionError> {
        let mut state = self.state.lock().unwrap();
        let i = state.held_by(worker, run)?;
        state.runs[i].status = RunStatus::Completed;
        state.runs[i].result = Some(result.clone());
        Ok(state.end(i, EventType::AssessmentCompleted, now))
    }

    async fn fail(
        &self,
        worker: &WorkerId,
        run: &RunId,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<RunView, RunActionError> {
        let mut state = self.state.lock().unwrap();
        let i = state.held_by(worker, run)?;
        state.runs[i].status = RunStatus::Failed;
        state.runs[i].failure_reason = Some(reason.to_owned());
        Ok(state.end(i, EventType::AssessmentFailed, now))
    }

    async fn expire_leases(&self, now: OffsetDateTime, max_attempts: u32) -> Result<ExpiredLeases, InfraError> {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut outcome = ExpiredLeases::default();
        for i in 0..state.runs.len() {
            let id = state.runs[i].id.clone();
            let Some(lease) = state.leases.get_mut(&id) else { continue };
            let expired = lease.holder.as_ref().is_some_and(|(_, until)| *until < now);
            if state.runs[i].status != RunStatus::Running || !expired {
                continue;
            }
            lease.holder = None;
            if lease.attempts >= max_attempts {
                state.runs[i].status = RunStatus::Failed;
                state.runs[i].failure_reason =
                    Some(format!("the worker's lease expired {max_attempts} times; the run was abandoned"));
                state.end(i, EventType::AssessmentFailed, now);
                outcome.failed += 1;
            } else {
                state.runs[i].status = RunStatus::Queued;
                outcome.requeued += 1;
            }
        }
        Ok(outcome)
    }
}

impl State {
    fn in_scope(&self, scope: &ReportScope, partner: &PartnerId) -> bool {
        match scope {
            ReportScope::Partner(id) => id == partner,
            ReportScope::Distributor(d) => {
                self.partners.iter().any(|p| &p.id == partner && p.distributor_id.as_ref() == Some(d))
            }
        }
    }

    /// The scope's runs created in `period`.
    fn runs_in<'a>(&'a self, scope: &'a ReportScope, period: &'a Period) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs.iter().filter(move |r| period.contains(r.created_at) && self.in_scope(scope, &r.partner_id))
    }
}

/// Most runs first, then by id, cut to `limit`.
fn ranked<T>(mut rows: Vec<T>, runs: impl Fn(&T) -> u64, id: impl Fn(&T) -> String, limit: Option<u32>) -> Vec<T> {
    rows.sort_by(|a, b| runs(b).cmp(&runs(a)).then_with(|| id(a).cmp(&id(b))));
    if let Some(limit) = limit {
        rows.truncate(limit as usize);
    }
    rows
}

#[async_trait]
impl ReportRepository for InMemoryStore {
    async fn partner_spend(&self, scope: &ReportScope, period: &Period) -> Result<Vec<PartnerSpend>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut sums: BTreeMap<(&'static str, PartnerId), (String, rust_decimal::Decimal, Currency)> = BTreeMap::new();
        for (invoice, _) in &state.invoices {
            let InvoiceAccount::Partner(id) = &invoice.account else { continue };
            let Some(partner) = state.partners.iter().find(|p| &p.id == id) else { continue };
            let in_scope = match scope {
                ReportScope::Partner(p) => p == id,
                ReportScope::Distributor(d) => partner.distributor_id.as_ref() == Some(d),
            };
            if in_scope && period.contains(invoice.issued_at) {
                let entry = sums.entry((invoice.currency.code(), id.clone())).or_insert_with(|| {
                    (partner.company.as_str().to_owned(), rust_decimal::Decimal::ZERO, invoice.currency)
                });
                entry.1 += invoice.total.amount();
            }
        }
        let mut rows: Vec<PartnerSpend> = sums
            .into_iter()
            .map(|((_, id), (company, amount, currency))| PartnerSpend {
                id,
                company,
                spend: crate::billing::Money::new(amount, currency),
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.spend.currency().code(), std::cmp::Reverse(a.spend.amount()), &a.id).cmp(&(
                b.spend.currency().code(),
                std::cmp::Reverse(b.spend.amount()),
                &b.id,
            ))
        });
        Ok(rows)
    }

    async fn run_tallies(&self, scope: &ReportScope, period: &Period) -> Result<Vec<RunTally>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut cells: HashMap<(time::Date, String, RunStatus), u64> = HashMap::new();
        for r in state.runs_in(scope, period) {
            let day = r.created_at.to_offset(time::UtcOffset::UTC).date();
            *cells.entry((day, r.product.as_str().to_owned(), r.status)).or_default() += 1;
        }
        Ok(cells
            .into_iter()
            .map(|((day, product, status), runs)| RunTally {
                day,
                product: ProductId::parse(&product).expect("stored products are well-formed"),
                status,
                runs,
            })
            .collect())
    }

    async fn customers_with_runs(&self, scope: &ReportScope, period: &Period) -> Result<u64, InfraError> {
        let state = self.state.lock().unwrap();
        let customers: std::collections::HashSet<&CustomerId> =
            state.runs_in(scope, period).map(|r| &r.customer_id).collect();
        Ok(customers.len() as u64)
    }

    async fn customer_runs(
        &self,
        scope: &ReportScope,
        period: &Period,
        limit: Option<u32>,
    ) -> Result<Vec<CustomerRuns>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut counts: HashMap<CustomerId, RunCounts> = HashMap::new();
        for r in state.runs_in(scope, period) {
            counts.entry(r.customer_id.clone()).or_default().add(r.status, 1);
        }
        let rows = counts
            .into_iter()
            .filter_map(|(id, runs)| {
                let c = state.customers.iter().find(|c| c.id == id)?;
                Some(CustomerRuns { id, partner_id: c.partner_id.clone(), name: c.name.as_str().to_owned(), runs })
            })
            .collect();
        Ok(ranked(rows, |c| c.runs.total(), |c| c.id.to_string(), limit))
    }

    async fn partner_runs(
        &self,
        distributor: &DistributorId,
        period: &Period,
        limit: Option<u32>,
    ) -> Result<Vec<PartnerRuns>, InfraError> {
        let state = self.state.lock().unwrap();
        let rows = state
            .partners
            .iter()
            .filter(|p| p.distributor_id.as_ref() == Some(distributor))
            .map(|p| {
                let mut runs = RunCounts::default();
                let own = ReportScope::Partner(p.id.clone());
                state.runs_in(&own, period).for_each(|r| runs.add(r.status, 1));
                PartnerRuns {
                    id: p.id.clone(),
                    company: p.company.as_str().to_owned(),
                    status: p.status,
                    runs,
                    customers: state.customers.iter().filter(|c| c.partner_id == p.id).count() as u64,
                }
            })
            .collect();
        Ok(ranked(rows, |p| p.runs.total(), |p| p.id.to_string(), limit))
    }

    async fn partner_statuses(
        &self,
        distributor: &DistributorId,
        month: Month,
        near_limit: &[(PlanId, u32)],
    ) -> Result<PartnerStatusCounts, InfraError> {
        let state = self.state.lock().unwrap();
        let mut counts = PartnerStatusCounts::default();
        for p in state.partners.iter().filter(|p| p.distributor_id.as_ref() == Some(distributor)) {
            match p.status {
                AccountStatus::Pending => counts.pending += 1,
                AccountStatus::Active => counts.active += 1,
                AccountStatus::Suspended => counts.suspended += 1,
            }
            let used = state.usage.get(&(p.id.clone(), month)).copied().unwrap_or(0);
            if near_limit.iter().any(|(plan, units)| plan == p.plan() && used >= *units) {
                counts.near_limit += 1;
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl RequestCountRepository for InMemoryStore {
    async fn add(&self, batch: &[RequestCount]) -> Result<(), InfraError> {
        let mut state = self.state.lock().unwrap();
        for count in batch {
            *state.request_counts.entry((count.account.clone(), count.day)).or_default() += count.requests;
        }
        Ok(())
    }

    async fn totals(&self, scope: &ReportScope, period: &Period) -> Result<Vec<AccountRequests>, InfraError> {
        let state = self.state.lock().unwrap();
        let mut sums: std::collections::BTreeMap<CountedAccount, u64> = std::collections::BTreeMap::new();
        for ((account, day), requests) in &state.request_counts {
            let in_scope = match (scope, account) {
                (ReportScope::Distributor(me), CountedAccount::Distributor(d)) => me == d,
                (_, CountedAccount::Partner(p)) => state.in_scope(scope, p),
                (ReportScope::Partner(_), CountedAccount::Distributor(_)) => false,
            };
            if in_scope && *day >= period.first() && *day <= period.last() {
                *sums.entry(account.clone()).or_default() += requests;
            }
        }
        Ok(sums.into_iter().map(|(account, requests)| AccountRequests { account, requests }).collect())
    }
}
