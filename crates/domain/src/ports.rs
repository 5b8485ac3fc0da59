//! Ports: what the domain needs from the outside world. Adapters implement them; services hold
//! them as `Arc<dyn Port>`. Each repository method documents the invariant its implementation
//! must keep atomically.

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{AccountStatus, Distributor, Partner, Worker};
use crate::billing::{ProrationLine, Subscription};
use crate::catalog::{PlanId, ProductId, RunLimit};
use crate::event::{Event, EventType};
use crate::ids::{CustomerId, DistributorId, EventId, InvoiceId, PartnerId, PlanChangeId, RunId, WorkerId};
use crate::invoice::{
    DiscountPercent, DistributorBill, Invoice, InvoiceAccount, PartnerBill, PartnerInvoiceTotal, PendingItem,
};
use crate::keys::{KeyHash, KeyOwner, KeySlot};
use crate::report::{CustomerRuns, PartnerRuns, PartnerSpend, PartnerStatusCounts, Period, ReportScope, RunTally};
use crate::run::{ClaimedRun, Run, RunFilter, RunResult, RunView};
use crate::values::{Email, Month};
use crate::webhook::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, Recipient, WebhookEndpoint, WebhookSecret, WebhookUrl,
};

/// An infrastructure failure (database down, driver error). Opaque on purpose: callers can only
/// report it. Its cause chain is kept for the log, never shown to API clients.
pub struct InfraError(Box<dyn StdError + Send + Sync>);

impl InfraError {
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

impl fmt::Display for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for InfraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for InfraError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// The current time. Services never read the system clock directly.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// Randomness for ids (96 bits each).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn id_body(&self) -> [u8; 12];
}

/// Randomness for API keys: must come from the operating system's CSPRNG.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    fn key_bytes(&self) -> [u8; 32];
}

/// An active key found by its hash, with its owner's current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub owner: KeyOwner,
    pub slot: KeySlot,
    /// The hash as stored, for a constant-time comparison with the presented key's hash.
    pub stored_hash: KeyHash,
    pub owner_status: AccountStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyInsertError {
    #[error("the account already has the maximum number of active keys")]
    SlotsFull,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeKeyError {
    #[error("no active key in that slot")]
    EmptySlot,
    #[error("the only active key cannot be revoked")]
    LastKey,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// The `key.*` events of a change that revokes every key of a partner and may issue a fresh
/// slot-1 key (suspension, activation, an operator's reissue): `revoked` is recorded for each
/// slot the change actually revokes, `created` when it issues the key. Empty for other owners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyEvents {
    pub revoked: SlotEvents,
    pub created: Option<Event>,
}

/// The event to record for each slot a new key may land in (a `key.created` event names its
/// slot, and which slot is free is only known inside the insert's transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotEvents {
    first: Option<Event>,
    second: Option<Event>,
}

impl SlotEvents {
    /// No events (keys of accounts whose endpoints receive no key events).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(mut event_for: impl FnMut(KeySlot) -> Event) -> Self {
        Self { first: Some(event_for(KeySlot::FIRST)), second: Some(event_for(KeySlot::SECOND)) }
    }

    pub fn for_slot(&self, slot: KeySlot) -> Option<&Event> {
        if slot == KeySlot::FIRST { self.first.as_ref() } else { self.second.as_ref() }
    }
}

/// API keys, stored only as hashes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyRepository: Send + Sync {
    /// Stores `hash` as an active key in the owner's lowest free slot and returns the slot,
    /// recording the event `events` holds for that slot in the same transaction.
    /// Atomic: an owner never holds more than [`KeySlot::MAX_ACTIVE`] active keys, however many
    /// inserts race (`SlotsFull` for the losers).
    async fn insert_in_free_slot(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        now: OffsetDateTime,
        events: &SlotEvents,
    ) -> Result<KeySlot, KeyInsertError>;

    /// Revokes every active key of `owner` and stores `hash` in slot 1, in one transaction.
    async fn reissue(
        &self,
        owner: &KeyOwner,
        hash: &KeyHash,
        now: OffsetDateTime,
        events: &KeyEvents,
    ) -> Result<(), InfraError>;

    /// Revokes the owner's active key in `slot`. Atomic per owner: concurrent revocations of
    /// both slots never leave the owner with no active key (`LastKey` for the one that would).
    /// Records `event`, when given, in the same transaction as the revocation.
    async fn revoke_slot(
        &self,
        owner: &KeyOwner,
        slot: KeySlot,
        now: OffsetDateTime,
        event: Option<Event>,
    ) -> Result<(), RevokeKeyError>;

    /// The active (not revoked) key with this hash, if any, and its owner's status, read in one
    /// statement so a revoke or a suspension is seen by the very next request.
    async fn find_principal(&self, hash: &KeyHash) -> Result<Option<Principal>, InfraError>;
}

/// A partner's usage in one month, from live data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartnerUsage {
    /// Runs that count against the monthly limit (failed runs give theirs back).
    pub runs_used: u64,
    pub customers_count: u64,
}

/// A distributor's totals across its partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DistributorTotals {
    pub partners_count: u64,
    /// Runs counted against its partners' limits in the month (a failed run gives its unit back).
    pub runs_in_month: u64,
    pub customers_count: u64,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DistributorRepository: Send + Sync {
    /// Inserts the distributor and, when given, its first key in slot 1, in one transaction.
    async fn insert(&self, distributor: &Distributor, first_key: Option<KeyHash>) -> Result<(), InfraError>;

    async fn get(&self, id: &DistributorId) -> Result<Option<Distributor>, InfraError>;

    /// The oldest distributor with this e-mail address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Distributor>, InfraError>;

    /// Sets the status; `false` when no such distributor exists.
    async fn set_status(
        &self,
        id: &DistributorId,
        status: AccountStatus,
        now: OffsetDateTime,
    ) -> Result<bool, InfraError>;

    /// Partner, run and customer counts computed from the data, in one round of aggregate queries.
    async fn totals(&self, id: &DistributorId, month: Month) -> Result<DistributorTotals, InfraError>;

    /// Sets the discount on the distributor's invoices (`None`: the default); `false` when no
    /// such distributor exists. Invoices already issued keep theirs.
    async fn set_discount(&self, id: &DistributorId, discount: Option<DiscountPercent>) -> Result<bool, InfraError>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PartnerRepository: Send + Sync {
    /// Inserts the partner and, when given, its first key in slot 1, in one transaction.
    async fn insert(&self, partner: &Partner, first_key: Option<KeyHash>) -> Result<(), InfraError>;

    async fn get(&self, id: &PartnerId) -> Result<Option<Partner>, InfraError>;

    /// The oldest partner with this e-mail address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Partner>, InfraError>;

    async fn usage(&self, id: &PartnerId, month: Month) -> Result<PartnerUsage, InfraError>;
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkerRepository: Send + Sync {
    /// Inserts the worker and its first key in slot 1, in one transaction.
    async fn insert(&self, worker: &Worker, first_key: KeyHash) -> Result<(), InfraError>;

    /// The oldest worker with this name.
    async fn find_by_name(&self, name: &str) -> Result<Option<Worker>, InfraError>;
}

/// A page request: at most `limit` items after the item with id `starting_after`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// `None`: everything (the reference's list endpoints are unpaginated).
    pub limit: Option<u32>,
    pub starting_after: Option<String>,
}

/// Items and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// Customers, always reached through their partner: an unscoped lookup does not exist.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CustomerRepository: Send + Sync {
    /// Inserts customers and records `events` in the outbox, in one transaction (all or none).
    async fn insert(&self, customers: &[crate::customer::Customer], events: &[Event]) -> Result<(), InfraError>;

    async fn get(&self, partner: &PartnerId, id: &CustomerId) -> Result<Option<crate::customer::Customer>, InfraError>;

    /// Oldest first; pages by id order of creation.
    async fn list(&self, partner: &PartnerId, page: &Page) -> Result<Paged<crate::customer::Customer>, InfraError>;

    /// Stores the customer's new state if it still belongs to its partner, recording `event` in
    /// the same transaction; `false` (and no event) if it is gone.
    async fn update(&self, customer: &crate::customer::Customer, event: &Event) -> Result<bool, InfraError>;

    /// Deletes the customer and all its runs, recording `event` in the same transaction; `false`
    /// (and no event) if it was not the partner's.
    async fn delete(&self, partner: &PartnerId, id: &CustomerId, event: &Event) -> Result<bool, InfraError>;
}

/// A batch of queued runs to create for one partner, metered against its monthly limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBatch {
    pub partner: PartnerId,
    /// The plan whose `limit` the caller read; if the partner's plan changed since, nothing is
    /// created and the caller retries with the new plan.
    pub plan: PlanId,
    pub limit: RunLimit,
    pub month: Month,
    /// Runs in request order; every one belongs to `partner` and is `queued`.
    pub runs: Vec<Run>,
    /// Usage thresholds of this month's limit, each with the event to record when the batch
    /// takes the partner's usage to or past it for the first time this month.
    pub thresholds: Vec<UsageThreshold>,
}

/// A point of the monthly limit worth announcing (80 % and 100 %).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageThreshold {
    /// Per cent of the limit: 80 or 100.
    pub percent: u8,
    /// Units used at which it is reached.
    pub units: u32,
    pub event: Event,
}

/// What a batch created: the first `created` runs of the batch (in order) exist; the rest were
/// refused because the limit was reached, or because their customer no longer exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunBatchOutcome {
    pub created: Vec<RunId>,
    pub over_limit: Vec<RunId>,
    pub customer_gone: Vec<RunId>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateRunsError {
    #[error("the partner's plan changed while the runs were being created")]
    PlanChanged,
    #[error("the partner is not active")]
    PartnerInactive,
    #[error("the partner does not exist")]
    PartnerGone,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RunRepository: Send + Sync {
    /// Creates as many of the batch's runs as the month's limit allows, in order, taking one
    /// unit each, in one transaction, with the event of every threshold the new usage reaches
    /// that was not reached before this month (each is recorded once per partner and month). Atomic: however many batches race for one partner, the
    /// units used in a month never exceed `limit` (`used + n <= limit` under the partner's
    /// lock or the single writer).
    async fn create(&self, batch: &RunBatch) -> Result<RunBatchOutcome, CreateRunsError>;

    async fn get(&self, partner: &PartnerId, id: &RunId) -> Result<Option<RunView>, InfraError>;

    /// Newest first.
    async fn list(&self, partner: &PartnerId, filter: &RunFilter, page: &Page) -> Result<Paged<RunView>, InfraError>;

    /// The customer's newest runs, newest first.
    async fn recent_for_customer(
        &self,
        partner: &PartnerId,
        customer: &CustomerId,
        limit: u32,
    ) -> Result<Vec<Run>, InfraError>;
}

/// Who asked for a change: the partner itself or its distributor on its behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Partner(PartnerId),
    Distributor(DistributorId),
}

/// A plan change in flight: reserved (counts against the hourly allowance), then applied or
/// released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    pub id: PlanChangeId,
    pub partner: PartnerId,
    pub actor: Actor,
    pub from: Subscription,
    pub to: Subscription,
    pub lines: Vec<ProrationLine>,
    pub requested_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ReservePlanChangeError {
    /// The allowance is used up; the oldest change in the window frees a place at `retry_at`.
    #[error("too many plan changes")]
    RateLimited { retry_at: OffsetDateTime },
    /// The partner's terms are no longer `change.from`, or another change is in flight: the
    /// caller must prorate again from the terms now in force.
    #[error("the partner's plan changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PlanChangeRepository: Send + Sync {
    /// Records the change as reserved if the partner's stored plan, interval and currency are
    /// still those of `change.from`, no other change of the partner is reserved (in flight, less
    /// than [`PLAN_CHANGE_IN_FLIGHT`] old), and fewer than `max` changes (reserved or applied)
    /// started after `window_start`. Atomic per partner: concurrent reservations never exceed
    /// `max`, and two changes are never prorated from the same terms.
    async fn reserve(
        &self,
        change: &PlanChange,
        window_start: OffsetDateTime,
        max: u32,
    ) -> Result<(), ReservePlanChangeError>;

    /// Applies a reserved change: the partner's subscription becomes `change.to`, in one
    /// transaction with marking the change applied. If invoices had paid for `change.from`'s
    /// period, `change.to`'s period counts as paid too (its proration charges the difference,
    /// or the whole new period when the change starts one).
    async fn apply(&self, change: &PlanChange, now: OffsetDateTime) -> Result<(), InfraError>;

    /// Gives a reservation back (the billing provider refused the change).
    async fn release(&self, id: &PlanChangeId) -> Result<(), InfraError>;
}

/// How long a reserved plan change blocks others before it is taken for abandoned (a process
/// that died between reserving and applying).
pub const PLAN_CHANGE_IN_FLIGHT: time::Duration = time::Duration::minutes(5);

/// Pending invoice items, for the built-in ledger.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LedgerRepository: Send + Sync {
    /// Stores the change's proration lines as pending items of the partner, in one transaction;
    /// storing the same change twice stores its items once.
    async fn record_proration(&self, change: &PlanChange, now: OffsetDateTime) -> Result<(), InfraError>;
}

/// An active partner whose period has ended, as its renewal invoice needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePartner {
    pub partner: PartnerId,
    /// The stored subscription: its period may have ended, or may be one no invoice paid for yet.
    pub subscription: Subscription,
    /// The end of the last period the partner's invoices paid for; `None` before its first.
    pub invoiced_until: Option<OffsetDateTime>,
    /// Its pending items of **applied** plan changes, oldest first. Items of reserved or
    /// released changes are never here.
    pub pending: Vec<PendingItem>,
}

/// A partner's renewal: its invoices and the period they open, issued together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerIssue {
    pub partner: PartnerId,
    /// The stored subscription the bills were computed from.
    pub from: Subscription,
    /// The stored end of paid-for time the bills were computed from.
    pub invoiced_until: Option<OffsetDateTime>,
    /// The same terms with the period the bills pay for: `from` itself for a period no invoice
    /// paid for yet (a partner's first), or the period in force now once `from` has ended.
    pub to: Subscription,
    pub bills: Vec<PartnerBill>,
}

/// A distributor with partner invoices no distributor invoice covers yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDistributor {
    pub distributor: DistributorId,
    /// The operator's setting; `None` means [`DiscountPercent::DEFAULT`].
    pub discount: Option<DiscountPercent>,
    pub partner_invoices: Vec<PartnerInvoiceTotal>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueInvoiceError {
    /// Already issued (by another process, or before a restart), or what the bills were computed
    /// from changed meanwhile (a plan change, new items): nothing was written; read again.
    #[error("the invoice was already issued or its inputs changed")]
    Stale,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// Issued invoices, always reached through their account.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InvoiceRepository: Send + Sync {
    /// Active partners whose paid-for time ran out at or before `now` (partners never invoiced
    /// included), at most `limit`, with their pending items of applied plan changes.
    async fn due_partners(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<DuePartner>, InfraError>;

    /// In one transaction: renews the partner's subscription from `issue.from` to `issue.to`
    /// and records it paid until `issue.to`'s end (only if the subscription and its paid-for
    /// time are still those read), inserts the invoices with their lines, and attaches
    /// each bill's items (only if every one is still pending). Idempotent: an invoice is unique
    /// per (account, period start, currency), so two processes or a retry after a restart issue
    /// it once; the loser gets `Stale` and nothing is written.
    async fn issue_partner(&self, issue: &PartnerIssue) -> Result<(), IssueInvoiceError>;

    /// Distributors with partner invoices issued before `before` that no distributor invoice
    /// covers yet, each with those invoices (oldest first).
    async fn due_distributors(&self, before: OffsetDateTime) -> Result<Vec<DueDistributor>, InfraError>;

    /// Inserts the distributor's invoices and marks the partner invoices they cover, in one
    /// transaction, only if none of those is covered yet and no invoice of the distributor
    /// exists for the same period and currency (`Stale` otherwise, nothing written).
    async fn issue_distributor(&self, bills: &[DistributorBill]) -> Result<(), IssueInvoiceError>;

    /// The account's invoices, newest first (issue time, then id), paged by invoice id.
    async fn list(&self, account: &InvoiceAccount, page: &Page) -> Result<Paged<Invoice>, InfraError>;

    /// One invoice with its lines, only if it is the account's.
    async fn get(&self, account: &InvoiceAccount, id: &InvoiceId) -> Result<Option<Invoice>, InfraError>;

    /// How many invoices the account has.
    async fn count(&self, account: &InvoiceAccount) -> Result<u64, InfraError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The provider refuses the change (no subscription, a canceled one, no price…).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// The payment side of a subscription: the built-in ledger, or a Stripe-compatible service.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BillingProvider: Send + Sync {
    /// Puts a plan change into effect with the provider (recording or charging its proration).
    /// Must be idempotent per `change.id`: a retry never bills twice.
    async fn change_subscription(&self, change: &PlanChange) -> Result<(), BillingError>;
}

/// A partner with the counts a distributor's list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerListing {
    pub partner: Partner,
    pub customers_count: u64,
}

/// A lifecycle change of a partner, applied with its side effects in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerTransition {
    pub partner: PartnerId,
    /// The status the change was decided from: nothing happens unless it is still the status.
    pub from: AccountStatus,
    pub to: AccountStatus,
    pub at: OffsetDateTime,
    /// Why it was suspended (kept with the partner).
    pub reason: Option<String>,
    /// Revoke every active key (suspension).
    pub revoke_keys: bool,
    /// Store this as the partner's slot-1 key (activation of a partner with no active key).
    pub issue_key: Option<KeyHash>,
    /// Recorded for the keys this transition revokes and issues, in the same transaction.
    pub key_events: KeyEvents,
    /// Recorded in the outbox in the same transaction.
    pub event: Event,
}

/// One partner's line in a distributor's usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerUsageRow {
    pub partner_id: PartnerId,
    pub company: String,
    pub status: AccountStatus,
    /// Units of the run limit used in the month.
    pub runs: u64,
    pub customers: u64,
}

/// A distributor's partners, always scoped to the distributor: another distributor's partner
/// (or a direct one) is not found.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ManagedPartnerRepository: Send + Sync {
    /// Oldest first, with each partner's customer count (one query, no per-partner lookups).
    async fn list(
        &self,
        distributor: &DistributorId,
        status: Option<AccountStatus>,
        page: &Page,
    ) -> Result<Paged<PartnerListing>, InfraError>;

    async fn get(&self, distributor: &DistributorId, id: &PartnerId) -> Result<Option<Partner>, InfraError>;

    /// Inserts new (pending, keyless) partners in one transaction.
    async fn insert(&self, partners: &[Partner]) -> Result<(), InfraError>;

    /// Stores company, e-mail and name; `false` if the partner is gone.
    async fn update_profile(&self, partner: &Partner) -> Result<bool, InfraError>;

    /// If the partner's status is still `from`: sets the status (and stamps `activated_at` or
    /// `suspended_at`), revokes or issues keys, and records the event, all in one transaction,
    /// and answers `true`. Otherwise changes nothing and answers `false`, so of two racing
    /// transitions exactly one happens.
    async fn transition(&self, transition: &PartnerTransition) -> Result<bool, InfraError>;

    /// Per-partner runs (units used in `month`) and customers, in one aggregate query.
    async fn usage(&self, distributor: &DistributorId, month: Month) -> Result<Vec<PartnerUsageRow>, InfraError>;
}

/// Webhook endpoints and their delivery logs, always reached through their owner.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    async fn endpoint(&self, recipient: &Recipient) -> Result<Option<WebhookEndpoint>, InfraError>;

    /// Creates the recipient's endpoint with `candidate` as its secret, or points the existing
    /// one at `url`, keeping its secret and enabling it again, atomically (two first `PUT`s at
    /// once create one endpoint). The stored endpoint's secret is `candidate` only if it was
    /// created now.
    async fn upsert_endpoint(
        &self,
        recipient: &Recipient,
        url: &WebhookUrl,
        candidate: &WebhookSecret,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint, InfraError>;

    /// Deletes the endpoint and its delivery log; `false` if there was none.
    async fn delete_endpoint(&self, recipient: &Recipient) -> Result<bool, InfraError>;

    /// Makes `secret` the signing secret; the old one keeps signing until `overlap_until`.
    /// `None` if the recipient has no endpoint.
    async fn rotate_secret(
        &self,
        recipient: &Recipient,
        secret: &WebhookSecret,
        now: OffsetDateTime,
        overlap_until: OffsetDateTime,
    ) -> Result<Option<WebhookEndpoint>, InfraError>;

    /// The recipient's deliveries, newest event first, each with its attempts.
    async fn deliveries(
        &self,
        recipient: &Recipient,
        filter: &DeliveryFilter,
        page: &Page,
    ) -> Result<Paged<Delivery>, InfraError>;

    /// Sends the events addressed to the recipient again from `now`, each with a fresh retry
    /// schedule: those that occurred in `[since, until)` (and whose delivery is `status`, if
    /// given) or, with `only`, that one event. Events that had no delivery (no endpoint then)
    /// get one. Answers how many deliveries were scheduled.
    async fn resend(&self, recipient: &Recipient, selection: &Resend, now: OffsetDateTime) -> Result<u64, InfraError>;

    /// One delivery of the recipient, with its attempts.
    async fn delivery(&self, recipient: &Recipient, event: &EventId) -> Result<Option<Delivery>, InfraError>;
}

/// Which events to send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    One(EventId),
    Range { since: OffsetDateTime, until: OffsetDateTime, status: Option<DeliveryStatus> },
}

/// A delivery claimed by one dispatcher until its lease ends, with all it needs to attempt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub event_id: EventId,
    pub event_type: EventType,
    pub occurred_at: OffsetDateTime,
    /// The event's data object, as stored JSON text (sent byte for byte on every attempt).
    pub data: String,
    pub recipient: Recipient,
    pub url: WebhookUrl,
    /// Current secret first; the previous one while its overlap lasts.
    pub secrets: Vec<WebhookSecret>,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts since the delivery was last sent again (its place in the retry schedule).
    pub round_attempt: u32,
    /// The claim's token: only its holder may record the outcome.
    pub lease: String,
}

/// The queue of due deliveries that every dispatcher (one per process) shares.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `max` deliveries due at `now` of enabled endpoints, atomically against other
    /// dispatchers, tagging them with `lease` and hiding them from other claims until
    /// `lease_until` (after which a crashed claimer's deliveries are due again).
    async fn claim(
        &self,
        lease: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        max: u32,
    ) -> Result<Vec<ClaimedDelivery>, InfraError>;

    /// Records the attempt and the delivery's new state (and disables the endpoint after a
    /// `410 Gone`, failing its other open deliveries), if the claim's lease still holds; `false`
    /// if another claim or a resend took the delivery over meanwhile.
    async fn finish(
        &self,
        claimed: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        disable_endpoint: bool,
    ) -> Result<bool, InfraError>;
}

/// Why a worker's action on a run was refused.
#[derive(Debug, thiserror::Error)]
pub enum RunActionError {
    #[error("no such run")]
    NotFound,
    /// The run is not running under this worker's claim (another worker's, requeued, ended).
    #[error("the run is not running under this worker's lease")]
    Conflict,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// What a sweep of expired leases did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiredLeases {
    pub requeued: u64,
    pub failed: u64,
}

/// The run queue workers pull from. Every method is one transaction, and each `assessment.*`
/// event is recorded in the transaction of the change it reports.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Claims the oldest queued run of one of `products` (any product if empty) for `worker`
    /// until `lease_until`: it becomes `running`, and its first claim records
    /// `assessment.started`. Never hands one run to two workers, however many claim at once.
    async fn claim(
        &self,
        worker: &WorkerId,
        products: &[ProductId],
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ClaimedRun>, InfraError>;

    /// Extends the lease of a run running under `worker`'s claim.
    async fn heartbeat(
        &self,
        worker: &WorkerId,
        run: &RunId,
        lease_until: OffsetDateTime,
    ) -> Result<ClaimedRun, RunActionError>;

    /// Completes a run running under `worker`'s claim, recording `assessment.completed`.
    async fn complete(
        &self,
        worker: &WorkerId,
        run: &RunId,
        result: &RunResult,
        now: OffsetDateTime,
    ) -> Result<RunView, RunActionError>;

    /// Fails a run running under `worker`'s claim: its unit of the monthly limit is given back
    /// and `assessment.failed` recorded, in one transaction.
    async fn fail(
        &self,
        worker: &WorkerId,
        run: &RunId,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<RunView, RunActionError>;

    /// Runs whose lease ended before `now` go back to the queue, or, once claimed
    /// `max_attempts` times, fail as [`RunQueue::fail`] does.
    async fn expire_leases(&self, now: OffsetDateTime, max_attempts: u32) -> Result<ExpiredLeases, InfraError>;
}

/// Aggregate figures over runs, customers and partners for usage reports, dashboards and
/// analytics. Every method is one grouped query (no rows are loaded to be counted), scoped to
/// the partner or to the distributor's partners: another account's data is never counted.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReportRepository: Send + Sync {
    /// Runs of the scope created in `period`, counted per UTC day of creation, product and
    /// status (only non-zero cells).
    async fn run_tallies(&self, scope: &ReportScope, period: &Period) -> Result<Vec<RunTally>, InfraError>;

    /// How many distinct customers of the scope had a run created in `period`.
    async fn customers_with_runs(&self, scope: &ReportScope, period: &Period) -> Result<u64, InfraError>;

    /// The scope's customers with a run created in `period`, most runs first (then by id), at
    /// most `limit` of them (`None`: all).
    async fn customer_runs(
        &self,
        scope: &ReportScope,
        period: &Period,
        limit: Option<u32>,
    ) -> Result<Vec<CustomerRuns>, InfraError>;

    /// Every partner of the distributor with its runs created in `period` and its current
    /// customer count, most runs first (then by id), at most `limit` (`None`: all).
    async fn partner_runs(
        &self,
        distributor: &DistributorId,
        period: &Period,
        limit: Option<u32>,
    ) -> Result<Vec<PartnerRuns>, InfraError>;

    /// The distributor's partners by status, and how many have used at least `units` of
    /// `month`'s run limit where `(plan, units)` is in `near_limit` (plans not listed never count).
    async fn partner_statuses(
        &self,
        distributor: &DistributorId,
        month: Month,
        near_limit: &[(PlanId, u32)],
    ) -> Result<PartnerStatusCounts, InfraError>;

    /// What the scope's partners were invoiced in the period (invoices issued in it; for a
    /// distributor, its partners' invoices issued while it managed them): one row per partner
    /// and currency, by currency, then most first, then partner id.
    async fn partner_spend(&self, scope: &ReportScope, period: &Period) -> Result<Vec<PartnerSpend>, InfraError>;
}
mod request_counts;
pub use request_counts::*;
mod provider_accounts;
pub use provider_accounts::*;
