//! Invoices: what a partner owes for each period of its subscription, and what a distributor owes
//! for its partners' invoices of a calendar month. Pure functions over `rust_decimal`.
//!
//! Billing is in advance, the model proration assumes (an `unused_time` credit refunds a period
//! already paid for): a partner's first invoice is issued once it is active, for the period in
//! force; each later one when a period ends, for the **new** period. Each charges the plan fee
//! plus the pending items of the partner's applied plan changes. An invoice is in one
//! currency; items in another currency go on an invoice of their own, issued with it.
//! Lines are already rounded ([`Money`]); the subtotal is their exact sum; the discount is
//! rounded once; `total = subtotal − discount`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use time::{OffsetDateTime, Time};

use crate::billing::{Money, ProrationKind, ProrationLine, Subscription};
use crate::ids::{DistributorId, InvoiceId, PartnerId, PlanChangeId};
use crate::ports::IdGenerator;
use crate::values::{Currency, InvalidValue, Month};

/// Whose invoice it is: a partner or a distributor.
pub type InvoiceAccount = crate::account::AccountRef;

/// Why a line is on an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceLineKind {
    /// The plan's price for the period the invoice opens.
    PlanFee,
    /// A plan change's credit for unused time (negative).
    UnusedTime,
    /// A plan change's charge for the rest of a period, or for the new period it started.
    RemainingTime,
    /// On a distributor's invoice: one partner invoice's total.
    PartnerInvoice,
}

impl InvoiceLineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlanFee => "plan_fee",
            Self::UnusedTime => "unused_time",
            Self::RemainingTime => "remaining_time",
            Self::PartnerInvoice => "partner_invoice",
        }
    }
}

impl From<ProrationKind> for InvoiceLineKind {
    fn from(kind: ProrationKind) -> Self {
        match kind {
            ProrationKind::UnusedTime => Self::UnusedTime,
            ProrationKind::RemainingTime => Self::RemainingTime,
        }
    }
}

impl FromStr for InvoiceLineKind {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        [Self::PlanFee, Self::UnusedTime, Self::RemainingTime, Self::PartnerInvoice]
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or(InvalidValue { reason: "must be plan_fee, unused_time, remaining_time or partner_invoice" })
    }
}

impl fmt::Display for InvoiceLineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The span a line pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePeriod {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub kind: InvoiceLineKind,
    pub description: String,
    /// In the invoice's currency, already rounded.
    pub amount: Money,
    pub period: Option<LinePeriod>,
}

/// An issued invoice. Immutable once issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub account: InvoiceAccount,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
    pub issued_at: OffsetDateTime,
}

/// A distributor's discount on its partners' invoices: a percentage from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscountPercent(Decimal);

impl DiscountPercent {
    /// What a distributor gets unless the operator set another percentage.
    pub const DEFAULT: Self = Self(Decimal::from_parts(20, 0, 0, false, 0));
    pub const NONE: Self = Self(Decimal::ZERO);

    pub fn new(percent: Decimal) -> Result<Self, InvalidValue> {
        if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&percent) {
            Ok(Self(percent.normalize()))
        } else {
            Err(InvalidValue { reason: "must be a percentage from 0 to 100" })
        }
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

/// Subtotal, discount and total of lines in one currency: the discount is rounded once, on the
/// subtotal, never per line.
pub fn settle(currency: Currency, lines: &[InvoiceLine], discount: DiscountPercent) -> (Money, Money, Money) {
    let subtotal: Decimal = lines.iter().map(|l| l.amount.amount()).sum();
    let discount = Money::new(subtotal * discount.value() / Decimal::ONE_HUNDRED, currency);
    (Money::new(subtotal, currency), discount, Money::new(subtotal - discount.amount(), currency))
}

/// One pending ledger item: the plan change that created it and its line number there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemRef {
    pub change: PlanChangeId,
    pub line_no: u16,
}

/// A pending invoice item of an **applied** plan change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingItem {
    pub item: ItemRef,
    pub line: ProrationLine,
}

/// A partner invoice and the pending items it takes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerBill {
    pub invoice: Invoice,
    pub items: Vec<ItemRef>,
}

/// The invoices a partner's renewal issues: `renewed` is the subscription with its new period,
/// `fee` its plan's price for that period. One invoice in the subscription's currency (the fee and
/// the items in that currency), and one per other currency the pending items are in (a currency
/// change leaves its credit in the old currency). Items are taken in the order given.
pub fn partner_invoices(
    partner: &PartnerId,
    renewed: &Subscription,
    fee: Decimal,
    pending: &[PendingItem],
    issued_at: OffsetDateTime,
    ids: &dyn IdGenerator,
) -> Vec<PartnerBill> {
    let mut currencies = vec![renewed.currency];
    for p in pending {
        if !currencies.contains(&p.line.amount.currency()) {
            currencies.push(p.line.amount.currency());
        }
    }
    currencies
        .into_iter()
        .map(|currency| {
            let mut lines = Vec::new();
            if currency == renewed.currency {
                lines.push(InvoiceLine {
                    kind: InvoiceLineKind::PlanFee,
                    description: format!("{} ({})", renewed.plan, renewed.interval.as_str()),
                    amount: Money::new(fee, currency),
                    period: Some(LinePeriod { start: renewed.period_start, end: renewed.period_end }),
                });
            }
            let items: Vec<&PendingItem> = pending.iter().filter(|p| p.line.amount.currency() == currency).collect();
            lines.extend(items.iter().map(|p| InvoiceLine {
                kind: p.line.kind.into(),
                description: p.line.description.clone(),
                amount: p.line.amount,
                period: Some(LinePeriod { start: p.line.period_start, end: p.line.period_end }),
            }));
            let (subtotal, discount, total) = settle(currency, &lines, DiscountPercent::NONE);
            let invoice = Invoice {
                id: InvoiceId::generate(ids),
                account: InvoiceAccount::Partner(partner.clone()),
                period_start: renewed.period_start,
                period_end: renewed.period_end,
                currency,
                lines,
                subtotal,
                discount,
                total,
                issued_at,
            };
            PartnerBill { invoice, items: items.into_iter().map(|p| p.item.clone()).collect() }
        })
        .collect()
}

/// A partner invoice as a distributor's invoice counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerInvoiceTotal {
    pub invoice: InvoiceId,
    pub partner: PartnerId,
    pub total: Money,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
}

/// A distributor invoice and the partner invoices it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributorBill {
    pub invoice: Invoice,
    pub partner_invoices: Vec<InvoiceId>,
}

/// The span of a calendar month in UTC: its first instant and the next month's.
pub fn month_span(month: Month) -> (OffsetDateTime, OffsetDateTime) {
    let start = |m: Month| m.first_day().with_time(Time::MIDNIGHT).assume_utc();
    (start(month), start(month.next()))
}

/// A distributor's invoices for `month`: one line per partner invoice, one invoice per currency
/// (amounts in different currencies are never added up), less `discount` of each subtotal.
pub fn distributor_invoices(
    distributor: &DistributorId,
    month: Month,
    partner_invoices: &[PartnerInvoiceTotal],
    discount: DiscountPercent,
    issued_at: OffsetDateTime,
    ids: &dyn IdGenerator,
) -> Vec<DistributorBill> {
    let (period_start, period_end) = month_span(month);
    let mut currencies: Vec<Currency> = Vec::new();
    for p in partner_invoices {
        if !currencies.contains(&p.total.currency()) {
            currencies.push(p.total.currency());
        }
    }
    currencies
        .into_iter()
        .map(|currency| {
            let covered: Vec<&PartnerInvoiceTotal> =
                partner_invoices.iter().filter(|p| p.total.currency() == currency).collect();
            let lines: Vec<InvoiceLine> = covered
                .iter()
                .map(|p| InvoiceLine {
                    kind: InvoiceLineKind::PartnerInvoice,
                    description: format!("Invoice {} of {}", p.invoice, p.partner),
                    amount: p.total,
                    period: Some(LinePeriod { start: p.period_start, end: p.period_end }),
                })
                .collect();
            let (subtotal, discount, total) = settle(currency, &lines, discount);
            let invoice = Invoice {
                id: InvoiceId::generate(ids),
                account: InvoiceAccount::Distributor(distributor.clone()),
                period_start,
                period_end,
                currency,
                lines,
                subtotal,
                discount,
                total,
                issued_at,
            };
            DistributorBill { invoice, partner_invoices: covered.into_iter().map(|p| p.invoice.clone()).collect() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::PlanId;
    use crate::testing::SequentialIds;
    use crate::values::BillingInterval;
    use rust_decimal::dec;
    use time::macros::datetime;

    fn line(amount: Decimal, currency: Currency) -> InvoiceLine {
        InvoiceLine {
            kind: InvoiceLineKind::PartnerInvoice,
            description: String::new(),
            amount: Money::new(amount, currency),
            period: None,
        }
    }

    fn strings(t: (Money, Money, Money)) -> [String; 3] {
        [t.0.to_decimal_string(), t.1.to_decimal_string(), t.2.to_decimal_string()]
    }

    #[test]
    fn spec_example_subtotal_4560_less_20_percent() {
        // spec 000: 24 accounts, subtotal 4560.00, discount 912.00, total 3648.00 (USD).
        let ids = SequentialIds::default();
        let partner_invoices: Vec<PartnerInvoiceTotal> = [dec!(1000.00), dec!(2000.00), dec!(1560.00)]
            .into_iter()
            .map(|total| PartnerInvoiceTotal {
                invoice: InvoiceId::generate(&ids),
                partner: PartnerId::generate(&ids),
                total: Money::new(total, Currency::Usd),
                period_start: datetime!(2025-06-01 00:00 UTC),
                period_end: datetime!(2025-07-01 00:00 UTC),
            })
            .collect();
        let distributor = DistributorId::generate(&ids);
        let month = Month::parse("2025-06").unwrap();
        let bills = distributor_invoices(
            &distributor,
            month,
            &partner_invoices,
            DiscountPercent::DEFAULT,
            datetime!(2025-07-01 00:01 UTC),
            &ids,
        );
        assert_eq!(bills.len(), 1);
        let inv = &bills[0].invoice;
        assert_eq!(strings((inv.subtotal, inv.discount, inv.total)), ["4560.00", "912.00", "3648.00"]);
        assert_eq!(
            (inv.period_start, inv.period_end),
            (datetime!(2025-06-01 00:00 UTC), datetime!(2025-07-01 00:00 UTC))
        );
        assert_eq!(inv.lines.len(), 3);
        assert_eq!(bills[0].partner_invoices.len(), 3);
    }

    #[test]
    fn the_discount_is_rounded_once_half_away_from_zero() {
        let pct = |p| DiscountPercent::new(p).unwrap();
        let cases = [
            // 10.05 × 15 % = 1.5075 → 1.51
            (vec![dec!(10.05)], pct(dec!(15)), ["10.05", "1.51", "8.54"]),
            // 0.05 × 10 % = 0.005, a midpoint → 0.01
            (vec![dec!(0.05)], pct(dec!(10)), ["0.05", "0.01", "0.04"]),
            (vec![dec!(-0.05)], pct(dec!(10)), ["-0.05", "-0.01", "-0.04"]),
            // Rounded on the subtotal, not per line: 3 × (0.05 × 10 %) would be 0.03, not 0.02.
            (vec![dec!(0.05), dec!(0.05), dec!(0.05)], pct(dec!(10)), ["0.15", "0.02", "0.13"]),
            // 33.3 % of 99.99 = 33.29667 → 33.30
            (vec![dec!(99.99)], pct(dec!(33.3)), ["99.99", "33.30", "66.69"]),
            (vec![dec!(149.00), dec!(-74.50)], DiscountPercent::NONE, ["74.50", "0.00", "74.50"]),
            (vec![dec!(20.00)], pct(dec!(100)), ["20.00", "20.00", "0.00"]),
        ];
        for (amounts, discount, expect) in cases {
            let lines: Vec<InvoiceLine> = amounts.iter().map(|a| line(*a, Currency::Eur)).collect();
            assert_eq!(strings(settle(Currency::Eur, &lines, discount)), expect, "{amounts:?} at {discount:?}");
        }
    }

    #[test]
    fn discounts_are_percentages_from_0_to_100() {
        assert!(DiscountPercent::new(dec!(0)).is_ok());
        assert!(DiscountPercent::new(dec!(100)).is_ok());
        assert!(DiscountPercent::new(dec!(12.5)).is_ok());
        assert!(DiscountPercent::new(dec!(-0.01)).is_err());
        assert!(DiscountPercent::new(dec!(100.01)).is_err());
        assert_eq!(DiscountPercent::DEFAULT.value(), dec!(20));
    }

    fn pending(ids: &SequentialIds, kind: ProrationKind, amount: Decimal, currency: Currency) -> PendingItem {
        PendingItem {
            item: ItemRef { change: PlanChangeId::generate(ids), line_no: 0 },
            line: ProrationLine {
                kind,
                description: format!("{kind:?}"),
                amount: Money::new(amount, currency),
                period_start: datetime!(2026-04-16 00:00 UTC),
                period_end: datetime!(2026-05-01 00:00 UTC),
            },
        }
    }

    #[test]
    fn a_renewal_charges_the_new_period_and_takes_in_pending_items() {
        // The halfway upgrade of docs/billing.md, then renewal on 1 May: professional monthly AUD.
        let ids = SequentialIds::default();
        let partner = PartnerId::generate(&ids);
        let renewed = Subscription::starting(
            PlanId::parse("professional").unwrap(),
            BillingInterval::Monthly,
            Currency::Aud,
            datetime!(2026-05-01 00:00 UTC),
        );
        let items = [
            pending(&ids, ProrationKind::UnusedTime, dec!(-74.50), Currency::Aud),
            pending(&ids, ProrationKind::RemainingTime, dec!(224.50), Currency::Aud),
        ];
        let bills = partner_invoices(&partner, &renewed, dec!(449.00), &items, datetime!(2026-05-01 00:00 UTC), &ids);
        assert_eq!(bills.len(), 1);
        let inv = &bills[0].invoice;
        let amounts: Vec<String> = inv.lines.iter().map(|l| l.amount.to_decimal_string()).collect();
        assert_eq!(amounts, ["449.00", "-74.50", "224.50"]);
        assert_eq!(inv.lines[0].kind, InvoiceLineKind::PlanFee);
        assert_eq!(strings((inv.subtotal, inv.discount, inv.total)), ["599.00", "0.00", "599.00"]);
        assert_eq!(
            (inv.period_start, inv.period_end),
            (datetime!(2026-05-01 00:00 UTC), datetime!(2026-06-01 00:00 UTC))
        );
        assert_eq!(bills[0].items, items.iter().map(|p| p.item.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn items_in_two_currencies_go_on_one_invoice_each() {
        // AUD → GBP on 16 April: the AUD credit stays in AUD, the GBP month is charged in GBP;
        // the renewal on 16 May charges the next GBP month.
        let ids = SequentialIds::default();
        let partner = PartnerId::generate(&ids);
        let renewed = Subscription::starting(
            PlanId::parse("starter").unwrap(),
            BillingInterval::Monthly,
            Currency::Gbp,
            datetime!(2026-05-16 00:00 UTC),
        );
        let credit = pending(&ids, ProrationKind::UnusedTime, dec!(-74.50), Currency::Aud);
        let charge = pending(&ids, ProrationKind::RemainingTime, dec!(79.00), Currency::Gbp);
        let bills = partner_invoices(
            &partner,
            &renewed,
            dec!(79.00),
            &[credit.clone(), charge.clone()],
            datetime!(2026-05-16 00:00 UTC),
            &ids,
        );
        let summary: Vec<(Currency, String, Vec<ItemRef>)> =
            bills.iter().map(|b| (b.invoice.currency, b.invoice.total.to_decimal_string(), b.items.clone())).collect();
        assert_eq!(
            summary,
            [
                (Currency::Gbp, "158.00".to_owned(), vec![charge.item]),
                (Currency::Aud, "-74.50".to_owned(), vec![credit.item])
            ]
        );
        assert!(bills[1].invoice.lines.iter().all(|l| l.kind != InvoiceLineKind::PlanFee));
        assert_ne!(bills[0].invoice.id, bills[1].invoice.id);
    }

    #[test]
    fn a_distributor_invoice_per_currency() {
        let ids = SequentialIds::default();
        let total = |amount, currency| PartnerInvoiceTotal {
            invoice: InvoiceId::generate(&ids),
            partner: PartnerId::generate(&ids),
            total: Money::new(amount, currency),
            period_start: datetime!(2026-04-01 00:00 UTC),
            period_end: datetime!(2026-05-01 00:00 UTC),
        };
        let partner_invoices =
            [total(dec!(449.00), Currency::Aud), total(dec!(99.00), Currency::Usd), total(dec!(150.00), Currency::Aud)];
        let bills = distributor_invoices(
            &DistributorId::generate(&ids),
            Month::parse("2026-04").unwrap(),
            &partner_invoices,
            DiscountPercent::DEFAULT,
            datetime!(2026-05-01 00:00 UTC),
            &ids,
        );
        let summary: Vec<(Currency, [String; 3], usize)> = bills
            .iter()
            .map(|b| {
                (
                    b.invoice.currency,
                    strings((b.invoice.subtotal, b.invoice.discount, b.invoice.total)),
                    b.partner_invoices.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Currency::Aud, ["599.00".to_owned(), "119.80".to_owned(), "479.20".to_owned()], 2),
                (Currency::Usd, ["99.00".to_owned(), "19.80".to_owned(), "79.20".to_owned()], 1),
            ]
        );
    }
}
