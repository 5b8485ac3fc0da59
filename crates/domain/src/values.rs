//! Value types with parsing constructors. Once parsed, a value is valid forever.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month as CalendarMonth, OffsetDateTime};

/// A value that failed to parse; `field` is filled in by the caller that knows the wire name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidValue {
    pub reason: &'static str,
}

/// A request field that is absent or unacceptable, named as on the wire (`tenantId`,
/// `receivers[2]`), so every adapter reports it the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("the required field '{0}' is missing")]
    Missing(String),
    #[error("the field '{field}' is invalid: {reason}")]
    Invalid { field: String, reason: String },
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }

    /// The same error for a field inside `prefix` (`customers[3]` + `email` → `customers[3].email`).
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Missing(field) => Self::Missing(format!("{prefix}.{field}")),
            Self::Invalid { field, reason } => Self::Invalid { field: format!("{prefix}.{field}"), reason },
        }
    }

    /// Parses `raw` with `parse`, naming `field` on failure.
    pub fn check<T>(field: &str, raw: &str, parse: impl FnOnce(&str) -> Result<T, InvalidValue>) -> Result<T, Self> {
        parse(raw).map_err(|e| Self::invalid(field, e.reason))
    }
}

/// A time on the wire: RFC 3339 in UTC with a `Z`, to the second (`2026-04-03T10:10:00Z`).
pub fn wire_timestamp(at: time::OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .expect("every UTC time formats")
}

const fn invalid(reason: &'static str) -> InvalidValue {
    InvalidValue { reason }
}

/// An e-mail address checked for shape: one `@`, a non-empty local part, a dotted domain, no
/// white space. Deliverability is not our business.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const REASON: &str = "must be an e-mail address like name@example.com";
        if raw.len() > Self::MAX_LEN || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(REASON));
        }
        let (local, domain) = raw.split_once('@').ok_or(invalid(REASON))?;
        let domain_ok =
            !domain.contains('@') && domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || !domain_ok {
            return Err(invalid(REASON));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Microsoft 365 tenant id: a GUID in its canonical 8-4-4-4-12 form, stored lower case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let groups: Vec<&str> = raw.split('-').collect();
        let shape_ok = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if shape_ok {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(invalid("must be a GUID like d4f5a678-1234-5678-9abc-def012345678"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-empty display name, trimmed, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(invalid("must be at most 200 characters with no control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The currencies partnerd bills in. Accepted in either case; ISO 4217 upper case is canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    Aud,
    Usd,
    Gbp,
    Eur,
    Nzd,
    Sgd,
}

impl Currency {
    pub const ALL: [Currency; 6] = [Self::Aud, Self::Usd, Self::Gbp, Self::Eur, Self::Nzd, Self::Sgd];

    pub fn code(self) -> &'static str {
        match self {
            Self::Aud => "AUD",
            Self::Usd => "USD",
            Self::Gbp => "GBP",
            Self::Eur => "EUR",
            Self::Nzd => "NZD",
            Self::Sgd => "SGD",
        }
    }

    /// Decimal places of the currency's minor unit (all supported currencies use cents).
    pub fn minor_unit_scale(self) -> u32 {
        2
    }
}

impl FromStr for Currency {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(raw))
            .ok_or(invalid("must be one of AUD, USD, GBP, EUR, NZD, SGD"))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How often a subscription is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingInterval {
    Monthly,
    Quarterly,
    Annual,
}

impl BillingInterval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Annual => "annual",
        }
    }

    /// Length of one billing period in calendar months.
    pub fn months(self) -> u8 {
        match self {
            Self::Monthly => 1,
            Self::Quarterly => 3,
            Self::Annual => 12,
        }
    }
}

impl FromStr for BillingInterval {
    type Err = InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.to_ascii_lowercase().as_str() {
            "monthly" => Ok(Self::Monthly),
            "quarterly" => Ok(Self::Quarterly),
            "annual" => Ok(Self::Annual),
            _ => Err(invalid("must be one of monthly, quarterly, annual")),
        }
    }
}

/// A calendar month in UTC, written `YYYY-MM`. Usage and run limits are counted per month.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: CalendarMonth,
}

impl Month {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const REASON: &str = "must be a month in YYYY-MM format";
        let (y, m) = raw.split_once('-').ok_or(invalid(REASON))?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(invalid(REASON));
        }
        let year: i32 = y.parse().map_err(|_| invalid(REASON))?;
        let month: u8 = m.parse().map_err(|_| invalid(REASON))?;
        let month = CalendarMonth::try_from(month).map_err(|_| invalid(REASON))?;
        if year < 1970 {
            return Err(invalid(REASON));
        }
        Ok(Self { year, month })
    }

    /// The month that contains `at` (in UTC).
    pub fn containing(at: OffsetDateTime) -> Self {
        let utc = at.to_offset(time::UtcOffset::UTC);
        Self { year: utc.year(), month: utc.month() }
    }

    pub fn first_day(self) -> Date {
        Date::from_calendar_date(self.year, self.month, 1).expect("day 1 exists in every month")
    }

    pub fn next(self) -> Self {
        match self.month {
            CalendarMonth::December => Self { year: self.year + 1, month: CalendarMonth::January },
            m => Self { year: self.year, month: m.next() },
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month as u8)
    }
}

impl fmt::Debug for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn emails_are_checked_for_shape() {
        for ok in ["admin@acmemsp.com", "a.b+c@x.co.uk", "it@contoso.com"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "plain", "@x.com", "a@b", "a@@b.com", "a b@c.com", "a@b..com", "a@.com", "a@b.com."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tenant_ids_are_canonical_guids() {
        let t = TenantId::parse("D4F5A678-1234-5678-9ABC-DEF012345678").unwrap();
        assert_eq!(t.as_str(), "d4f5a678-1234-5678-9abc-def012345678");
        for bad in [
            "",
            "d4f5a678123456789abcdef012345678",
            "d4f5a678-1234-5678-9abc-def01234567g",
            "{d4f5a678-1234-5678-9abc-def012345678}",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies_parse_in_either_case() {
        assert_eq!("aud".parse::<Currency>(), Ok(Currency::Aud));
        assert_eq!("SGD".parse::<Currency>(), Ok(Currency::Sgd));
        assert!("JPY".parse::<Currency>().is_err());
    }

    #[test]
    fn months_parse_strictly_and_roll_over_the_year() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!(m.next().to_string(), "2027-01");
        for bad in ["2026-13", "2026-00", "2026-4", "26-04", "2026/04", "2026-04-01", "abcd-ef", "+202-04"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Month::containing(datetime!(2026-04-30 23:59:59 UTC)).to_string(), "2026-04");
        assert_eq!(Month::containing(datetime!(2026-05-01 09:00 +10:00)).to_string(), "2026-04");
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(201)).is_err());
    }
}
