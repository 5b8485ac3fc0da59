use std::sync::Arc;

use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::ids::InvoiceId;
use crate::invoice::{DiscountPercent, distributor_invoices, month_span, partner_invoices};
use crate::invoice::{Invoice, InvoiceAccount};
use crate::ports::{IdGenerator, InfraError, InvoiceRepository, IssueInvoiceError, Page, PartnerIssue};
use crate::values::Month;

/// Due partners read per round of [`InvoiceService::issue_due`].
const BATCH: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    /// No such invoice for this account (another account's is not found either).
    #[error("invoice not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] InfraError),
}

/// A page of an account's invoices, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceList {
    pub invoices: Vec<Invoice>,
    /// All the account's invoices, on every page.
    pub total: u64,
    pub has_more: bool,
}

/// What one [`InvoiceService::issue_due`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IssueReport {
    /// Partners renewed (each with one invoice per currency).
    pub partners_renewed: u64,
    pub partner_invoices: u64,
    pub distributor_invoices: u64,
    /// Partners left due because the catalog has no price for their terms.
    pub unpriced: u64,
    /// Issues another process (or a plan change) got to first; retried on the next call.
    pub stale: u64,
}

/// Renewals and the invoices they issue.
pub struct InvoiceService {
    invoices: Arc<dyn InvoiceRepository>,
    catalog: Arc<Catalog>,
    ids: Arc<dyn IdGenerator>,
}

impl InvoiceService {
    pub fn new(invoices: Arc<dyn InvoiceRepository>, catalog: Arc<Catalog>, ids: Arc<dyn IdGenerator>) -> Self {
        Self { invoices, catalog, ids }
    }

    /// The account's invoices, newest first, a page at a time.
    pub async fn list(&self, account: &InvoiceAccount, page: &Page) -> Result<InvoiceList, InvoiceError> {
        let paged = self.invoices.list(account, page).await?;
        let total = self.invoices.count(account).await?;
        Ok(InvoiceList { invoices: paged.items, total, has_more: paged.has_more })
    }

    /// One of the account's invoices with its lines. A malformed id is simply not found.
    pub async fn get(&self, account: &InvoiceAccount, id: &str) -> Result<Invoice, InvoiceError> {
        let id = InvoiceId::parse(id).map_err(|_| InvoiceError::NotFound)?;
        self.invoices.get(account, &id).await?.ok_or(InvoiceError::NotFound)
    }

    /// Invoices every active partner whose paid-for time ran out by `now` for the period in force
    /// (its first period, or the one its renewal opens), renewing it if needed; then
    /// issues each distributor's invoices for the last calendar month (UTC) that has ended, over
    /// its partners' invoices issued before this month that no distributor invoice covers yet.
    /// Safe to run from several processes at once: each invoice is issued once.
    pub async fn issue_due(&self, now: OffsetDateTime) -> Result<IssueReport, InvoiceError> {
        let mut report = IssueReport::default();
        loop {
            let due = self.invoices.due_partners(now, BATCH).await?;
            let full = due.len() == BATCH as usize;
            let mut progressed = false;
            for partner in due {
                // Billing is in advance: the invoice pays for the period in force now. That is the
                // stored one when no invoice paid for it yet (a partner's first period), else the
                // renewal's. A period missed entirely (the partner was not active) is skipped.
                let to = partner.subscription.clone().current_at(now);
                let fee = self.catalog.plan(&to.plan).and_then(|p| p.price(to.interval, to.currency));
                let Some(fee) = fee else {
                    report.unpriced += 1;
                    continue;
                };
                let bills = partner_invoices(&partner.partner, &to, fee, &partner.pending, now, &*self.ids);
                let issue = PartnerIssue {
                    partner: partner.partner,
                    from: partner.subscription,
                    invoiced_until: partner.invoiced_until,
                    to,
                    bills,
                };
                match self.invoices.issue_partner(&issue).await {
                    Ok(()) => {
                        progressed = true;
                        report.partners_renewed += 1;
                        report.partner_invoices += issue.bills.len() as u64;
                    }
                    Err(IssueInvoiceError::Stale) => report.stale += 1,
                    Err(IssueInvoiceError::Internal(e)) => return Err(e.into()),
                }
            }
            if !(full && progressed) {
                break;
            }
        }
        let (this_month, _) = month_span(Month::containing(now));
        let last_month = Month::containing(this_month - time::Duration::SECOND);
        for due in self.invoices.due_distributors(this_month).await? {
            let discount = due.discount.unwrap_or(DiscountPercent::DEFAULT);
            let bills =
                distributor_invoices(&due.distributor, last_month, &due.partner_invoices, discount, now, &*self.ids);
            match self.invoices.issue_distributor(&bills).await {
                Ok(()) => report.distributor_invoices += bills.len() as u64,
                Err(IssueInvoiceError::Stale) => report.stale += 1,
                Err(IssueInvoiceError::Internal(e)) => return Err(e.into()),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountStatus, Distributor, Partner};
    use crate::billing::{Money, ProrationKind, ProrationLine, Subscription};
    use crate::catalog::PlanId;
    use crate::ids::{DistributorId, PartnerId, PlanChangeId};
    use crate::invoice::{InvoiceAccount, InvoiceLineKind};
    use crate::ports::{
        Actor, DistributorRepository, LedgerRepository, Page, PartnerRepository, PlanChange, PlanChangeRepository,
    };
    use crate::testing::{InMemoryStore, SequentialIds};
    use crate::values::{BillingInterval, Currency, DisplayName, Email};
    use rust_decimal::{Decimal, dec};
    use time::macros::datetime;

    const START: OffsetDateTime = datetime!(2026-04-01 00:00 UTC);

    struct Fixture {
        store: Arc<InMemoryStore>,
        ids: Arc<SequentialIds>,
        service: InvoiceService,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(InMemoryStore::new());
        let ids = Arc::new(SequentialIds::default());
        let service = InvoiceService::new(store.clone(), Arc::new(Catalog::default()), ids.clone());
        Fixture { store, ids, service }
    }

    impl Fixture {
        async fn partner(&self, distributor: Option<&DistributorId>, status: AccountStatus) -> Partner {
            let partner = Partner {
                id: PartnerId::generate(&*self.ids),
                distributor_id: distributor.cloned(),
                company: DisplayName::parse("Acme MSP").unwrap(),
                email: Email::parse("admin@acmemsp.com").unwrap(),
                name: DisplayName::parse("John Doe").unwrap(),
                status,
                subscription: Subscription::starting(
                    PlanId::parse("starter").unwrap(),
                    BillingInterval::Monthly,
                    Currency::Aud,
                    START,
                ),
                created_at: START,
                updated_at: START,
            };
            PartnerRepository::insert(&*self.store, &partner, None).await.unwrap();
            partner
        }

        /// A plan change with one line of `amount` AUD, left reserved, applied or released.
        async fn change(&self, partner: &Partner, amount: Decimal, end: &str) {
            let change = PlanChange {
                id: PlanChangeId::generate(&*self.ids),
                partner: partner.id.clone(),
                actor: Actor::Partner(partner.id.clone()),
                from: partner.subscription.clone(),
                to: partner.subscription.clone(),
                lines: vec![ProrationLine {
                    kind: ProrationKind::RemainingTime,
                    description: "remaining".into(),
                    amount: Money::new(amount, Currency::Aud),
                    period_start: START,
                    period_end: partner.subscription.period_end,
                }],
                requested_at: START,
            };
            self.store.reserve(&change, START - time::Duration::HOUR, 10).await.unwrap();
            self.store.record_proration(&change, START).await.unwrap();
            match end {
                "applied" => self.store.apply(&change, START).await.unwrap(),
                "released" => self.store.release(&change.id).await.unwrap(),
                _ => {}
            }
        }

        async fn invoices(&self, account: InvoiceAccount) -> Vec<crate::invoice::Invoice> {
            self.store.list(&account, &Page::default()).await.unwrap().items
        }
    }

    #[tokio::test]
    async fn the_first_period_is_invoiced_once_active_then_each_period_when_it_opens() {
        let f = fixture();
        let p = f.partner(None, AccountStatus::Active).await;
        let pending = f.partner(None, AccountStatus::Pending).await;
        let first = f.service.issue_due(datetime!(2026-04-10 12:00 UTC)).await.unwrap();
        assert_eq!((first.partners_renewed, first.partner_invoices), (1, 1));
        let invoices = f.invoices(InvoiceAccount::Partner(p.id.clone())).await;
        assert_eq!(invoices.len(), 1);
        assert_eq!(invoices[0].total.to_decimal_string(), "149.00");
        assert_eq!((invoices[0].period_start, invoices[0].period_end), (START, datetime!(2026-05-01 00:00 UTC)));
        let before_end = f.service.issue_due(datetime!(2026-04-30 23:59:59 UTC)).await.unwrap();
        assert_eq!(before_end, IssueReport::default(), "April is paid for");

        let report = f.service.issue_due(datetime!(2026-05-01 00:00 UTC)).await.unwrap();
        assert_eq!((report.partners_renewed, report.partner_invoices), (1, 1));
        let again = f.service.issue_due(datetime!(2026-05-01 00:01 UTC)).await.unwrap();
        assert_eq!(again.partner_invoices, 0);
        let invoices = f.invoices(InvoiceAccount::Partner(p.id.clone())).await;
        assert_eq!(invoices.len(), 2);
        assert_eq!(
            (invoices[0].period_start, invoices[0].period_end),
            (datetime!(2026-05-01 00:00 UTC), datetime!(2026-06-01 00:00 UTC))
        );
        let renewed = PartnerRepository::get(&*f.store, &p.id).await.unwrap().unwrap().subscription;
        assert_eq!(renewed.period_end, datetime!(2026-06-01 00:00 UTC));
        assert!(f.invoices(InvoiceAccount::Partner(pending.id)).await.is_empty(), "pending partners are not billed");
    }

    #[tokio::test]
    async fn a_partner_active_long_after_it_was_created_pays_for_the_period_in_force() {
        let f = fixture();
        let p = f.partner(None, AccountStatus::Active).await;
        f.service.issue_due(datetime!(2026-06-20 00:00 UTC)).await.unwrap();
        let invoices = f.invoices(InvoiceAccount::Partner(p.id)).await;
        assert_eq!(invoices.len(), 1, "April and May were never in force for an invoice");
        assert_eq!(
            (invoices[0].period_start, invoices[0].period_end),
            (datetime!(2026-06-01 00:00 UTC), datetime!(2026-07-01 00:00 UTC))
        );
    }

    #[tokio::test]
    async fn only_items_of_applied_changes_are_invoiced() {
        let f = fixture();
        let p = f.partner(None, AccountStatus::Active).await;
        f.change(&p, dec!(1.00), "released").await;
        f.change(&p, dec!(10.00), "applied").await;
        f.change(&p, dec!(100.00), "reserved").await;
        f.service.issue_due(datetime!(2026-05-01 00:00 UTC)).await.unwrap();
        let invoices = f.invoices(InvoiceAccount::Partner(p.id.clone())).await;
        let lines: Vec<(InvoiceLineKind, String)> =
            invoices[0].lines.iter().map(|l| (l.kind, l.amount.to_decimal_string())).collect();
        assert_eq!(
            lines,
            [(InvoiceLineKind::PlanFee, "149.00".to_owned()), (InvoiceLineKind::RemainingTime, "10.00".to_owned())]
        );
        // The next renewal does not take the applied item again.
        f.service.issue_due(datetime!(2026-06-01 00:00 UTC)).await.unwrap();
        let newest = &f.invoices(InvoiceAccount::Partner(p.id)).await[0];
        assert_eq!(newest.total.to_decimal_string(), "149.00");
    }

    #[tokio::test]
    async fn distributors_are_invoiced_for_the_month_that_ended_less_their_discount() {
        let f = fixture();
        let d = Distributor {
            id: DistributorId::generate(&*f.ids),
            company: DisplayName::parse("Global").unwrap(),
            email: Email::parse("ops@global.com").unwrap(),
            status: AccountStatus::Active,
            created_at: START,
        };
        DistributorRepository::insert(&*f.store, &d, None).await.unwrap();
        f.partner(Some(&d.id), AccountStatus::Active).await;
        f.partner(Some(&d.id), AccountStatus::Active).await;
        f.partner(None, AccountStatus::Active).await;
        f.service.issue_due(datetime!(2026-05-01 00:00 UTC)).await.unwrap();
        assert!(f.invoices(InvoiceAccount::Distributor(d.id.clone())).await.is_empty(), "May has not ended");
        assert!(f.store.set_discount(&d.id, Some(DiscountPercent::new(dec!(12.5)).unwrap())).await.unwrap());
        let report = f.service.issue_due(datetime!(2026-06-01 00:00 UTC)).await.unwrap();
        assert_eq!((report.partner_invoices, report.distributor_invoices), (3, 1));
        f.service.issue_due(datetime!(2026-06-01 00:01 UTC)).await.unwrap();
        let invoices = f.invoices(InvoiceAccount::Distributor(d.id)).await;
        assert_eq!(invoices.len(), 1, "issued once");
        let inv = &invoices[0];
        // Two partner invoices of May (149.00 AUD each); June's renewals wait for June's invoice.
        assert_eq!(inv.period_start, datetime!(2026-05-01 00:00 UTC));
        assert_eq!(
            [inv.subtotal, inv.discount, inv.total].map(|m| m.to_decimal_string()),
            ["298.00", "37.25", "260.75"]
        );
    }
}
