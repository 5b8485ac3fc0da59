//! Reporting over runs and API requests: the periods reports cover, whose data they cover, and
//! the aggregate figures the store computes for them (usage reports, dashboards, analytics).

use std::collections::BTreeMap;
use std::fmt;

use time::{Date, Duration, OffsetDateTime, Time};

use crate::account::AccountStatus;
use crate::billing::Money;
use crate::catalog::ProductId;
use crate::ids::{CustomerId, DistributorId, PartnerId};
use crate::ports::{AccountRequests, CountedAccount};
use crate::run::RunStatus;
use crate::values::{FieldError, Month};

/// Whose runs a report counts: one partner's, or those of every partner of one distributor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportScope {
    Partner(PartnerId),
    Distributor(DistributorId),
}

/// An inclusive range of UTC calendar days, `from <= to`, at most [`Period::MAX_DAYS`] long.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    from: Date,
    to: Date,
}

impl Period {
    /// The longest window analytics accept, in days.
    pub const MAX_DAYS: i64 = 366;
    /// The default analytics window: the 30 days ending today.
    pub const DEFAULT_DAYS: i64 = 30;

    /// The analytics window from the wire's `from_date` and `to_date` (`YYYY-MM-DD`, inclusive):
    /// `to` defaults to `today`, `from` to 29 days before `to`. An impossible date names its
    /// field; a reversed range or one over [`Period::MAX_DAYS`] names `to_date`.
    pub fn from_query(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Self, FieldError> {
        let to = to.map(|raw| parse_day("to_date", raw)).transpose()?.unwrap_or(today);
        let from = match from {
            Some(raw) => parse_day("from_date", raw)?,
            None => to - Duration::days(Self::DEFAULT_DAYS - 1),
        };
        if to < from {
            return Err(FieldError::invalid("to_date", "must not be before from_date"));
        }
        let period = Self { from, to };
        if period.len() > Self::MAX_DAYS {
            return Err(FieldError::invalid("to_date", format!("the window may span at most {} days", Self::MAX_DAYS)));
        }
        Ok(period)
    }

    /// Every day of `month`.
    pub fn month(month: Month) -> Self {
        Self { from: month.first_day(), to: month.next().first_day().previous_day().expect("a month has a last day") }
    }

    /// The one day that contains `at` (UTC).
    pub fn day_of(at: OffsetDateTime) -> Self {
        let day = at.to_offset(time::UtcOffset::UTC).date();
        Self { from: day, to: day }
    }

    pub fn first(&self) -> Date {
        self.from
    }

    pub fn last(&self) -> Date {
        self.to
    }

    /// Number of days, both ends included.
    pub fn len(&self) -> i64 {
        (self.to - self.from).whole_days() + 1
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first instant of the period (midnight UTC of its first day).
    pub fn start(&self) -> OffsetDateTime {
        self.from.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// The first instant after the period (midnight UTC after its last day).
    pub fn end(&self) -> OffsetDateTime {
        self.start() + Duration::days(self.len())
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + use<> {
        let from = self.from;
        (0..self.len()).map(move |n| from + Duration::days(n))
    }

    pub fn contains(&self, at: OffsetDateTime) -> bool {
        at >= self.start() && at < self.end()
    }
}

impl fmt::Debug for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", wire_date(self.from), wire_date(self.to))
    }
}

/// A date on the wire: `YYYY-MM-DD`.
pub fn wire_date(day: Date) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), day.month() as u8, day.day())
}

/// Parses a strict `YYYY-MM-DD` day that exists in the calendar, from 1970 on.
fn parse_day(field: &str, raw: &str) -> Result<Date, FieldError> {
    let bad = || FieldError::invalid(field, "must be a date in YYYY-MM-DD format");
    let bytes = raw.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return Err(bad());
    }
    let year: i32 = raw[0..4].parse().map_err(|_| bad())?;
    let month: u8 = raw[5..7].parse().map_err(|_| bad())?;
    let day: u8 = raw[8..10].parse().map_err(|_| bad())?;
    let month = time::Month::try_from(month).map_err(|_| bad())?;
    if year < 1970 {
        return Err(bad());
    }
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

/// Runs counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
}

impl RunCounts {
    pub fn total(&self) -> u64 {
        self.queued + self.running + self.completed + self.failed
    }

    pub fn get(&self, status: RunStatus) -> u64 {
        match status {
            RunStatus::Queued => self.queued,
            RunStatus::Running => self.running,
            RunStatus::Completed => self.completed,
            RunStatus::Failed => self.failed,
        }
    }

    pub fn add(&mut self, status: RunStatus, runs: u64) {
        match status {
            RunStatus::Queued => self.queued += runs,
            RunStatus::Running => self.running += runs,
            RunStatus::Completed => self.completed += runs,
            RunStatus::Failed => self.failed += runs,
        }
    }
}

/// How many runs of one product, created on one UTC day, are in one status: the cell of the
/// store's one grouped query from which every run figure of a report is summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTally {
    pub day: Date,
    pub product: ProductId,
    pub status: RunStatus,
    pub runs: u64,
}

/// One customer's runs in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRuns {
    pub id: CustomerId,
    pub partner_id: PartnerId,
    pub name: String,
    pub runs: RunCounts,
}

/// One partner's runs in a period, with its current customer count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRuns {
    pub id: PartnerId,
    pub company: String,
    pub status: AccountStatus,
    pub runs: RunCounts,
    pub customers: u64,
}

/// What one partner was invoiced in a period, in one currency: the totals of its invoices issued
/// in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSpend {
    pub id: PartnerId,
    pub company: String,
    pub spend: Money,
}

/// A distributor's partners counted by status, and how many are near their monthly limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartnerStatusCounts {
    pub pending: u64,
    pub active: u64,
    pub suspended: u64,
    /// Partners whose units used this month reached their plan's near-limit threshold.
    pub near_limit: u64,
}

impl PartnerStatusCounts {
    pub fn total(&self) -> u64 {
        self.pending + self.active + self.suspended
    }
}

/// The tallies summed every way a report shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunBreakdown {
    pub totals: RunCounts,
    pub by_product: BTreeMap<String, RunCounts>,
    /// One entry per day of the period, zero-filled, in order.
    pub by_day: Vec<(Date, RunCounts)>,
}

impl RunBreakdown {
    /// Sums `tallies` (all inside `period`); `products` appear even with no runs.
    pub fn of<'a>(period: &Period, tallies: &[RunTally], products: impl IntoIterator<Item = &'a ProductId>) -> Self {
        let mut by_product: BTreeMap<String, RunCounts> =
            products.into_iter().map(|p| (p.as_str().to_owned(), RunCounts::default())).collect();
        let mut days: BTreeMap<Date, RunCounts> = period.days().map(|d| (d, RunCounts::default())).collect();
        let mut totals = RunCounts::default();
        for t in tallies {
            totals.add(t.status, t.runs);
            by_product.entry(t.product.as_str().to_owned()).or_default().add(t.status, t.runs);
            if let Some(day) = days.get_mut(&t.day) {
                day.add(t.status, t.runs);
            }
        }
        Self { totals, by_product, by_day: days.into_iter().collect() }
    }
}

/// API requests of a report's scope in a period: those made with the scope account's own keys
/// and, for a distributor, those of each of its partners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequests {
    /// Made with the scope account's own keys (the partner's, or the distributor's).
    pub own: u64,
    /// A distributor's partners with requests in the period (a partner scope has none here).
    pub partners: BTreeMap<PartnerId, u64>,
}

impl ApiRequests {
    /// Sorts the store's per-account sums into the scope's own and its partners'. A line of
    /// an account outside the scope (a store bug) is left out rather than shown to the wrong
    /// tenant.
    pub fn of(scope: &ReportScope, lines: &[AccountRequests]) -> Self {
        let mut out = Self::default();
        for line in lines {
            match (scope, &line.account) {
                (ReportScope::Partner(me), CountedAccount::Partner(p)) if me == p => out.own += line.requests,
                (ReportScope::Distributor(me), CountedAccount::Distributor(d)) if me == d => out.own += line.requests,
                (ReportScope::Distributor(_), CountedAccount::Partner(p)) => {
                    *out.partners.entry(p.clone()).or_default() += line.requests;
                }
                _ => {}
            }
        }
        out
    }

    /// The scope's own requests plus its partners'.
    pub fn total(&self) -> u64 {
        self.own + self.partners.values().sum::<u64>()
    }

    /// One partner's requests (zero when it made none).
    pub fn of_partner(&self, id: &PartnerId) -> u64 {
        self.partners.get(id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    const TODAY: Date = date!(2026 - 04 - 03);

    fn field_of(e: FieldError) -> String {
        match e {
            FieldError::Invalid { field, .. } | FieldError::Missing(field) => field,
        }
    }

    #[test]
    fn the_default_window_is_the_thirty_days_ending_today() {
        let p = Period::from_query(None, None, TODAY).unwrap();
        assert_eq!((p.first(), p.last(), p.len()), (date!(2026 - 03 - 05), TODAY, 30));
        assert_eq!(p.days().count(), 30);
        let only_to = Period::from_query(None, Some("2026-02-10"), TODAY).unwrap();
        assert_eq!((only_to.first(), only_to.last()), (date!(2026 - 01 - 12), date!(2026 - 02 - 10)));
        let only_from = Period::from_query(Some("2026-04-01"), None, TODAY).unwrap();
        assert_eq!((only_from.first(), only_from.last()), (date!(2026 - 04 - 01), TODAY));
    }

    #[test]
    fn impossible_dates_name_their_field() {
        for bad in ["2026-02-30", "2026-13-01", "2026-4-01", "20260401", "2026/04/01", "", "1969-12-31", "+2026-04-01"]
        {
            assert_eq!(field_of(Period::from_query(Some(bad), None, TODAY).unwrap_err()), "from_date", "{bad}");
            assert_eq!(field_of(Period::from_query(None, Some(bad), TODAY).unwrap_err()), "to_date", "{bad}");
        }
    }

    #[test]
    fn reversed_and_over_long_windows_are_refused() {
        let reversed = Period::from_query(Some("2026-04-02"), Some("2026-04-01"), TODAY).unwrap_err();
        assert_eq!(field_of(reversed), "to_date");
        let one_day = Period::from_query(Some("2026-04-02"), Some("2026-04-02"), TODAY).unwrap();
        assert_eq!(one_day.len(), 1);
        // 2024 is a leap year: 2024-01-01..=2024-12-31 is 366 days, one more is too many.
        assert_eq!(Period::from_query(Some("2024-01-01"), Some("2024-12-31"), TODAY).unwrap().len(), 366);
        let long = Period::from_query(Some("2024-01-01"), Some("2025-01-01"), TODAY).unwrap_err();
        assert_eq!(field_of(long), "to_date");
    }

    #[test]
    fn a_month_is_every_day_of_it_and_bounds_are_midnights() {
        let feb = Period::month(Month::parse("2024-02").unwrap());
        assert_eq!((feb.first(), feb.last(), feb.len()), (date!(2024 - 02 - 01), date!(2024 - 02 - 29), 29));
        assert_eq!(feb.start(), datetime!(2024-02-01 00:00 UTC));
        assert_eq!(feb.end(), datetime!(2024-03-01 00:00 UTC));
        assert!(feb.contains(datetime!(2024-02-29 23:59:59.999 UTC)));
        assert!(!feb.contains(datetime!(2024-03-01 00:00 UTC)));
        let dec = Period::month(Month::parse("2026-12").unwrap());
        assert_eq!(dec.last(), date!(2026 - 12 - 31));
        assert_eq!(Period::day_of(datetime!(2026-04-03 23:30 -02:00)).first(), date!(2026 - 04 - 04));
    }

    #[test]
    fn a_breakdown_sums_tallies_and_zero_fills_days_and_products() {
        let period = Period::from_query(Some("2026-04-01"), Some("2026-04-03"), TODAY).unwrap();
        let e8 = ProductId::parse("essential-eight").unwrap();
        let nist = ProductId::parse("nist-csf").unwrap();
        let tally = |day, product: &ProductId, status, runs| RunTally { day, product: product.clone(), status, runs };
        let tallies = [
            tally(date!(2026 - 04 - 01), &e8, RunStatus::Completed, 2),
            tally(date!(2026 - 04 - 01), &e8, RunStatus::Failed, 1),
            tally(date!(2026 - 04 - 03), &nist, RunStatus::Queued, 4),
        ];
        let cis = ProductId::parse("cis-controls").unwrap();
        let b = RunBreakdown::of(&period, &tallies, [&e8, &cis]);
        assert_eq!(b.totals, RunCounts { queued: 4, running: 0, completed: 2, failed: 1 });
        assert_eq!(b.totals.total(), 7);
        assert_eq!(b.by_product.keys().collect::<Vec<_>>(), ["cis-controls", "essential-eight", "nist-csf"]);
        assert_eq!(b.by_product["cis-controls"], RunCounts::default());
        assert_eq!(b.by_product["nist-csf"].queued, 4);
        let days: Vec<(String, u64)> = b.by_day.iter().map(|(d, c)| (wire_date(*d), c.total())).collect();
        assert_eq!(days, [("2026-04-01".into(), 3), ("2026-04-02".into(), 0), ("2026-04-03".into(), 4)]);
    }

    #[test]
    fn api_requests_split_into_the_scopes_own_and_its_partners() {
        let ids = crate::testing::SequentialIds::default();
        let (me, other) = (DistributorId::generate(&ids), DistributorId::generate(&ids));
        let (p1, p2) = (PartnerId::generate(&ids), PartnerId::generate(&ids));
        let line = |account, requests| AccountRequests { account, requests };
        let lines = [
            line(CountedAccount::Distributor(me.clone()), 4),
            line(CountedAccount::Partner(p1.clone()), 7),
            line(CountedAccount::Partner(p2.clone()), 2),
            line(CountedAccount::Distributor(other), 100),
        ];
        let d = ApiRequests::of(&ReportScope::Distributor(me), &lines);
        assert_eq!((d.own, d.of_partner(&p1), d.of_partner(&p2), d.total()), (4, 7, 2, 13));
        let p = ApiRequests::of(&ReportScope::Partner(p1.clone()), &lines);
        assert_eq!((p.own, p.partners.len(), p.total()), (7, 0, 7), "a partner sees only its own");
        assert_eq!(ApiRequests::of(&ReportScope::Partner(p1), &[]).total(), 0);
    }
}
