//! Money, subscriptions and proration: pure functions over `rust_decimal`.
//!
//! Amounts are exact decimals; each line is rounded once, to the currency's minor unit, half away
//! from zero, after all arithmetic on it is done.

use rust_decimal::{Decimal, RoundingStrategy};
use time::{Date, Duration, OffsetDateTime};

use crate::catalog::PlanId;
use crate::values::{BillingInterval, Currency};

/// An exact amount in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Rounds `amount` to the currency's minor unit (the one rounding step).
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        let amount = amount.round_dp_with_strategy(currency.minor_unit_scale(), RoundingStrategy::MidpointAwayFromZero);
        Self { amount, currency }
    }

    pub fn amount(self) -> Decimal {
        self.amount
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// An amount stored as a count of minor units (cents): `-7450` is `-74.50`.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self::new(Decimal::new(minor, currency.minor_unit_scale()), currency)
    }

    /// The amount as a count of minor units, `None` if it does not fit in 64 bits.
    pub fn to_minor(self) -> Option<i64> {
        use rust_decimal::prelude::ToPrimitive;
        (self.amount * Decimal::from(10_i64.pow(self.currency.minor_unit_scale()))).to_i64()
    }

    /// The amount with exactly the minor unit's decimals: `"3648.00"`.
    pub fn to_decimal_string(self) -> String {
        let mut a = self.amount;
        a.rescale(self.currency.minor_unit_scale());
        a.to_string()
    }
}

/// Adds calendar months, keeping the time of day and clamping the day to the target month's
/// length (Jan 31 + 1 month = Feb 28 or 29).
pub fn add_months(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    let date = at.date();
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months as i32;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).expect("1..=12");
    let day = date.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).expect("clamped day exists");
    at.replace_date(date)
}

/// A partner's subscription: what it pays, how often, and the period now being paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub plan: PlanId,
    pub interval: BillingInterval,
    pub currency: Currency,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
}

impl Subscription {
    /// A subscription whose first period starts at `start`.
    pub fn starting(plan: PlanId, interval: BillingInterval, currency: Currency, start: OffsetDateTime) -> Self {
        let period_end = add_months(start, u32::from(interval.months()));
        Self { plan, interval, currency, period_start: start, period_end }
    }

    /// The same subscription with its period rolled forward, whole periods at a time, until the
    /// period contains `now`. (Renewal does this for real; a change between renewals must still
    /// prorate against the period in force.)
    pub fn current_at(mut self, now: OffsetDateTime) -> Self {
        while self.period_end <= now {
            self.period_start = self.period_end;
            self.period_end = add_months(self.period_start, u32::from(self.interval.months()));
        }
        self
    }
}

/// Why a proration line exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProrationKind {
    /// Refund for the unused rest of the period on the old terms (negative).
    UnusedTime,
    /// Charge for the rest of the period (or a new period) on the new terms.
    RemainingTime,
}

/// One pending invoice item created by a plan change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProrationLine {
    pub kind: ProrationKind,
    pub description: String,
    pub amount: Money,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
}

/// The subscription after a change and the items it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proration {
    pub subscription: Subscription,
    pub lines: Vec<ProrationLine>,
}

/// Prorates a change from `old` (already [`Subscription::current_at`] `now`, priced `old_price`)
/// to `new_plan`/`new_interval`/`new_currency` priced `new_price` per period, to the second.
///
/// - Same interval and currency: the period stays; the unused part of the old price is credited
///   and the same part of the new price charged.
/// - Interval or currency changes: the unused part of the old price is credited, and a new
///   period starts now, charged in full on the new terms.
pub fn prorate(
    old: &Subscription,
    old_price: Decimal,
    new_plan: PlanId,
    new_interval: BillingInterval,
    new_currency: Currency,
    new_price: Decimal,
    now: OffsetDateTime,
) -> Proration {
    let period = old.period_end - old.period_start;
    let remaining = (old.period_end - now).max(Duration::ZERO).min(period);
    let fraction = seconds(remaining) / seconds(period).max(Decimal::ONE);
    let credit = ProrationLine {
        kind: ProrationKind::UnusedTime,
        description: format!("Unused time on {} ({})", old.plan, old.interval.as_str()),
        amount: Money::new(-(old_price * fraction), old.currency),
        period_start: now,
        period_end: old.period_end,
    };
    let keeps_period = new_interval == old.interval && new_currency == old.currency;
    let (subscription, charge) = if keeps_period {
        let charge = ProrationLine {
            kind: ProrationKind::RemainingTime,
            description: format!("Remaining time on {new_plan} ({})", new_interval.as_str()),
            amount: Money::new(new_price * fraction, new_currency),
            period_start: now,
            period_end: old.period_end,
        };
        let subscription = Subscription { plan: new_plan, ..old.clone() };
        (subscription, charge)
    } else {
        let subscription = Subscription::starting(new_plan.clone(), new_interval, new_currency, now);
        let charge = ProrationLine {
            kind: ProrationKind::RemainingTime,
            description: format!("{new_plan} ({}) from the change", new_interval.as_str()),
            amount: Money::new(new_price, new_currency),
            period_start: subscription.period_start,
            period_end: subscription.period_end,
        };
        (subscription, charge)
    };
    let lines = [credit, charge].into_iter().filter(|l| !l.amount.amount().is_zero()).collect();
    Proration { subscription, lines }
}

fn seconds(d: Duration) -> Decimal {
    Decimal::from(d.whole_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;
    use time::macros::datetime;

    fn plan(id: &str) -> PlanId {
        PlanId::parse(id).unwrap()
    }

    fn amounts(p: &Proration) -> Vec<(String, Currency)> {
        p.lines.iter().map(|l| (l.amount.to_decimal_string(), l.amount.currency())).collect()
    }

    #[test]
    fn months_are_added_with_the_day_clamped() {
        assert_eq!(add_months(datetime!(2026-01-31 09:00 UTC), 1), datetime!(2026-02-28 09:00 UTC));
        assert_eq!(add_months(datetime!(2028-01-31 09:00 UTC), 1), datetime!(2028-02-29 09:00 UTC));
        assert_eq!(add_months(datetime!(2026-11-15 00:00 UTC), 3), datetime!(2027-02-15 00:00 UTC));
        assert_eq!(add_months(datetime!(2026-04-09 00:00 UTC), 12), datetime!(2027-04-09 00:00 UTC));
    }

    #[test]
    fn money_rounds_once_half_away_from_zero() {
        assert_eq!(Money::new(dec!(2.345), Currency::Usd).to_decimal_string(), "2.35");
        assert_eq!(Money::new(dec!(-2.345), Currency::Usd).to_decimal_string(), "-2.35");
        assert_eq!(Money::new(dec!(3648), Currency::Aud).to_decimal_string(), "3648.00");
    }

    /// Worked examples. April 2026 has 30 days = 2,592,000 s.
    #[test]
    fn proration_worked_examples() {
        let april = Subscription {
            plan: plan("starter"),
            interval: BillingInterval::Monthly,
            currency: Currency::Aud,
            period_start: datetime!(2026-04-01 00:00 UTC),
            period_end: datetime!(2026-05-01 00:00 UTC),
        };
        struct Case {
            name: &'static str,
            old_price: Decimal,
            to: (&'static str, BillingInterval, Currency, Decimal),
            now: OffsetDateTime,
            expect: Vec<(&'static str, Currency)>,
            period_end: OffsetDateTime,
        }
        let cases = [
            Case {
                // Mid-period upgrade, AUD: 15 of 30 days left → credit 149/2, charge 449/2.
                name: "upgrade halfway through April",
                old_price: dec!(149.00),
                to: ("professional", BillingInterval::Monthly, Currency::Aud, dec!(449.00)),
                now: datetime!(2026-04-16 00:00 UTC),
                expect: vec![("-74.50", Currency::Aud), ("224.50", Currency::Aud)],
                period_end: datetime!(2026-05-01 00:00 UTC),
            },
            Case {
                // Downgrade with 10 days and 1 second left: 864,001 / 2,592,000 of each price.
                // 449 × 0.333333719… = 149.6668…; 149 × 0.333333719… = 49.6667…
                name: "downgrade with ten days and one second left",
                old_price: dec!(449.00),
                to: ("starter", BillingInterval::Monthly, Currency::Aud, dec!(149.00)),
                now: datetime!(2026-04-20 23:59:59 UTC),
                expect: vec![("-149.67", Currency::Aud), ("49.67", Currency::Aud)],
                period_end: datetime!(2026-05-01 00:00 UTC),
            },
            Case {
                // Monthly → annual: credit the unused third of April, charge a full year from now.
                name: "switch to annual billing restarts the period",
                old_price: dec!(149.00),
                to: ("professional", BillingInterval::Annual, Currency::Aud, dec!(4490.00)),
                now: datetime!(2026-04-21 00:00 UTC),
                expect: vec![("-49.67", Currency::Aud), ("4490.00", Currency::Aud)],
                period_end: datetime!(2027-04-21 00:00 UTC),
            },
            Case {
                // Currency change: the credit is in the old currency, the new period in the new one.
                name: "currency change from AUD to GBP",
                old_price: dec!(149.00),
                to: ("starter", BillingInterval::Monthly, Currency::Gbp, dec!(79.00)),
                now: datetime!(2026-04-16 00:00 UTC),
                expect: vec![("-74.50", Currency::Aud), ("79.00", Currency::Gbp)],
                period_end: datetime!(2026-05-16 00:00 UTC),
            },
            Case {
                // At the very end of the period nothing is left to credit or charge.
                name: "change at the period boundary",
                old_price: dec!(149.00),
                to: ("professional", BillingInterval::Monthly, Currency::Aud, dec!(449.00)),
                now: datetime!(2026-05-01 00:00 UTC),
                expect: vec![],
                period_end: datetime!(2026-05-01 00:00 UTC),
            },
        ];
        for c in cases {
            let (to_plan, interval, currency, price) = c.to;
            let p = prorate(&april, c.old_price, plan(to_plan), interval, currency, price, c.now);
            let expect: Vec<(String, Currency)> = c.expect.iter().map(|(a, cur)| ((*a).to_owned(), *cur)).collect();
            assert_eq!(amounts(&p), expect, "{}", c.name);
            assert_eq!(p.subscription.plan, plan(to_plan), "{}", c.name);
            assert_eq!(p.subscription.period_end, c.period_end, "{}", c.name);
        }
    }

    #[test]
    fn usd_quarterly_upgrade_with_uneven_seconds() {
        // Q2 2026: Apr 1 → Jul 1 = 91 days = 7,862,400 s. 30 days + 7 h left = 2,617,200 s.
        // Credit 282.15 × 0.33287… = 93.9216… → -93.92; charge 852.15 × 0.33287… = 283.6588… → 283.66.
        let q = Subscription::starting(
            plan("starter"),
            BillingInterval::Quarterly,
            Currency::Usd,
            datetime!(2026-04-01 00:00 UTC),
        );
        let p = prorate(
            &q,
            dec!(282.15),
            plan("professional"),
            BillingInterval::Quarterly,
            Currency::Usd,
            dec!(852.15),
            datetime!(2026-05-31 17:00 UTC),
        );
        assert_eq!(amounts(&p), [("-93.92".to_owned(), Currency::Usd), ("283.66".to_owned(), Currency::Usd)]);
    }

    #[test]
    fn a_stale_period_is_rolled_forward_before_prorating() {
        let s = Subscription::starting(
            plan("starter"),
            BillingInterval::Monthly,
            Currency::Usd,
            datetime!(2026-01-31 12:00 UTC),
        );
        let now = datetime!(2026-04-10 00:00 UTC);
        let current = s.current_at(now);
        assert_eq!(
            (current.period_start, current.period_end),
            (datetime!(2026-03-28 12:00 UTC), datetime!(2026-04-28 12:00 UTC))
        );
    }
}
