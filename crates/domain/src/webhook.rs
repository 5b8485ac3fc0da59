//! Webhooks: where an account's events go, the secret that signs them, and the rules of delivery
//! (which addresses are refused, the retry schedule, what an answer means).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::OffsetDateTime;

use crate::event::{Event, EventType};
use crate::ids::{DistributorId, EventId, InvalidId, PartnerId};
use crate::ports::KeyGenerator;
use crate::values::InvalidValue;

/// Whose endpoint: a partner's or a distributor's (each has at most one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    Partner(PartnerId),
    Distributor(DistributorId),
}

impl Recipient {
    pub fn id(&self) -> &str {
        match self {
            Self::Partner(id) => id.as_str(),
            Self::Distributor(id) => id.as_str(),
        }
    }

    /// Rebuilds a recipient from its stored id (the prefix tells the kind).
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        if raw.starts_with(PartnerId::PREFIX) {
            PartnerId::parse(raw).map(Self::Partner)
        } else {
            DistributorId::parse(raw).map(Self::Distributor)
        }
    }
}

/// Whose endpoints receive `event`.
pub fn recipients(event: &Event) -> Vec<Recipient> {
    let partner = event.to_partner.clone().map(Recipient::Partner);
    let distributor = event.to_distributor.clone().map(Recipient::Distributor);
    partner.into_iter().chain(distributor).collect()
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// An endpoint URL: absolute `https` (or `http` where private addresses are allowed), with a
/// host, no credentials, and not a literal loopback, private, link-local or metadata address
/// unless those are allowed. Host names are checked again when resolved, at every delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, InvalidValue> {
        const fn invalid(reason: &'static str) -> InvalidValue {
            InvalidValue { reason }
        }
        if raw.len() > MAX_URL_LEN {
            return Err(invalid("must be at most 2048 characters"));
        }
        let url = url::Url::parse(raw.trim()).map_err(|_| invalid("must be an absolute http(s) URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            "http" => return Err(invalid("must use https")),
            _ => return Err(invalid("must be an absolute http(s) URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        let refused = match url.host() {
            None => return Err(invalid("must name a host")),
            Some(url::Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if refused && !allow_private {
            return Err(invalid("must not point at a loopback, private, link-local or metadata address"));
        }
        // Normalising percent-encodes, so the stored form can be longer than what was sent.
        let normalised: String = url.into();
        if normalised.len() > MAX_URL_LEN {
            return Err(invalid("must be at most 2048 characters"));
        }
        Ok(Self(normalised))
    }

    /// Rebuilds a URL read back from storage (it was checked when stored).
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Addresses a webhook may not reach unless private addresses are allowed: unspecified,
/// loopback, private (RFC 1918, unique-local), shared (CGNAT), link-local (which holds the
/// cloud metadata service 169.254.169.254), other metadata addresses, multicast, broadcast and
/// documentation ranges; IPv4-mapped and -compatible IPv6 addresses are judged as IPv4.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let segments = v6.segments();
            // ::a.b.c.d (deprecated IPv4-compatible) and the NAT64 well-known prefix 64:ff9b::/96.
            if segments[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified()
                || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return forbidden_v4(Ipv4Addr::new(a, b, c, d));
            }
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (holds AWS's fd00:ec2::254)
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT) 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved
        || ip == Ipv4Addr::new(100, 100, 100, 200) // Alibaba Cloud metadata
}

/// A signing secret: `whsec_` and the standard base64 of 32 random bytes. Shown when created or
/// rotated, never otherwise; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate(keys: &dyn KeyGenerator) -> Self {
        Self(format!("{}{}", Self::PREFIX, BASE64.encode(keys.key_bytes())))
    }

    /// Rebuilds a secret read back from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The secret as shown to its owner: the key of `X-Baref00t-Signature`.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// The key of the Standard Webhooks signature: the bytes the part after `whsec_` encodes.
    pub fn key_bytes(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(Self::PREFIX).unwrap_or(&self.0);
        BASE64.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// How long a rotated-out secret keeps signing beside the new one.
pub const SECRET_OVERLAP: time::Duration = time::Duration::hours(24);

/// An account's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub recipient: Recipient,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    /// The secret before the last rotation and when it stops signing.
    pub previous_secret: Option<(WebhookSecret, OffsetDateTime)>,
    /// Set when the receiver answered `410 Gone`; a `PUT` clears it.
    pub disabled: Option<Disabled>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl WebhookEndpoint {
    /// The endpoint as an account sees it at `now`: a previous secret whose overlap has ended is
    /// no longer there.
    pub fn as_of(mut self, now: OffsetDateTime) -> Self {
        if self.previous_secret.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.previous_secret = None;
        }
        self
    }

    /// The secrets that sign a delivery made at `now`: the current one first.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<WebhookSecret> {
        let mut secrets = vec![self.secret.clone()];
        if let Some((old, until)) = &self.previous_secret
            && *until > now
        {
            secrets.push(old.clone());
        }
        secrets
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub at: OffsetDateTime,
    pub reason: String,
}

/// Where one event stands with one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not attempted yet (or sent again by a retry or replay).
    Pending,
    /// Attempted, failed, another attempt is scheduled.
    Retrying,
    Delivered,
    /// Every attempt of the schedule failed, or the endpoint is gone.
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Retrying, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(InvalidValue { reason: "must be one of pending, retrying, delivered, failed" })
    }
}

/// One HTTP attempt and what it left the delivery in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt; numbering goes on across retries and replays.
    pub attempt: u32,
    pub attempted_at: OffsetDateTime,
    /// The receiver's status code; `None` when no answer came (timeout, refused, blocked).
    pub http_status: Option<u16>,
    pub latency_ms: u32,
    /// Why the attempt failed, for the owner's log (never a secret).
    pub error: Option<String>,
    /// The delivery's status after this attempt: `retrying`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    pub next_retry_at: Option<OffsetDateTime>,
}

/// One event's delivery to one endpoint, with its attempts (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: EventId,
    pub event_type: EventType,
    pub occurred_at: OffsetDateTime,
    pub status: DeliveryStatus,
    /// When the next attempt is due (`pending` and `retrying` only).
    pub next_attempt_at: Option<OffsetDateTime>,
    pub attempts: Vec<DeliveryAttempt>,
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
}

/// Waits between attempts: after the first failed attempt the first wait, and so on; when the
/// list is used up the delivery is `failed`. The reference's default is 1m, 5m, 30m, 2h, 12h
/// (six attempts in all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self([60, 300, 1800, 7200, 43_200].map(Duration::from_secs).to_vec())
    }
}

impl RetrySchedule {
    pub fn new(waits: Vec<Duration>) -> Self {
        Self(waits)
    }

    /// `1m,5m,30m,2h,12h`: numbers with a unit of `ms`, `s`, `m`, `h` or `d`, comma-separated;
    /// an empty string means no retries.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self(Vec::new()));
        }
        raw.split(',').map(|part| parse_duration(part.trim())).collect::<Result<_, _>>().map(Self)
    }

    pub fn waits(&self) -> &[Duration] {
        &self.0
    }

    /// The wait after the failure of attempt `n` of a round (0-based), or `None` when none is
    /// left.
    pub fn wait_after(&self, n: u32) -> Option<Duration> {
        self.0.get(n as usize).copied()
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| format!("{}ms", d.as_millis())).collect();
        f.write_str(&parts.join(","))
    }
}

/// A duration like `50ms`, `30s`, `5m`, `2h` or `1d`, at most 7 days.
pub fn parse_duration(part: &str) -> Result<Duration, String> {
    let split = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
    let (number, unit) = part.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("'{part}' is not a duration like 30s, 5m or 2h"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(format!("'{part}' needs a unit: ms, s, m, h or d")),
    };
    match millis {
        Some(ms) if ms <= 7 * 86_400_000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!("'{part}' is longer than 7 days")),
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx answer.
    Delivered,
    /// `410 Gone`: the receiver wants no more; the endpoint is disabled.
    Gone,
    /// Any other answer, a timeout, a redirect, a refused connection or a blocked address.
    /// `retry_after` is the receiver's `Retry-After` on a `429` or `503`.
    Failed { retry_after: Option<Duration> },
}

/// Longest `Retry-After` honoured: a receiver cannot park a delivery for longer than a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The delivery's status after attempt `round_attempt` (0-based, counted since the delivery was
/// last sent again) came to `result` at `now`, and when the next attempt is due.
pub fn after_attempt(
    schedule: &RetrySchedule,
    round_attempt: u32,
    result: &AttemptResult,
    now: OffsetDateTime,
) -> (DeliveryStatus, Option<OffsetDateTime>) {
    match result {
        AttemptResult::Delivered => (DeliveryStatus::Delivered, None),
        AttemptResult::Gone => (DeliveryStatus::Failed, None),
        AttemptResult::Failed { retry_after } => match schedule.wait_after(round_attempt) {
            None => (DeliveryStatus::Failed, None),
            Some(wait) => {
                let wait = retry_after.map_or(wait, |asked| asked.min(MAX_RETRY_AFTER));
                (DeliveryStatus::Retrying, Some(now + wait))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-04-03 10:00 UTC);

    #[test]
    fn urls_must_be_https_absolute_and_public() {
        assert!(WebhookUrl::parse("https://hooks.example.com/partnerd?x=1", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "hooks.example.com/x",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost:8443/",
            "https://api.localhost/",
            "https://[::ffff:192.168.0.1]/",
            "",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad} accepted");
        }
        assert!(WebhookUrl::parse(&format!("https://a.example/{}", "x".repeat(2100)), false).is_err());
    }

    #[test]
    fn private_addresses_and_http_pass_when_allowed() {
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(WebhookUrl::parse("http://localhost/hook", true).is_ok());
        assert!(WebhookUrl::parse("ftp://127.0.0.1/hook", true).is_err());
    }

    #[test]
    fn every_private_class_is_forbidden_and_public_addresses_are_not() {
        let forbidden = [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.100.100.200",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ];
        for ip in forbidden {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} allowed");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} refused");
        }
    }

    #[test]
    fn secrets_encode_32_random_bytes_and_hide_in_debug() {
        struct Fixed;
        impl KeyGenerator for Fixed {
            fn key_bytes(&self) -> [u8; 32] {
                [7; 32]
            }
        }
        let secret = WebhookSecret::generate(&Fixed);
        assert!(secret.reveal().starts_with("whsec_"));
        assert_eq!(secret.key_bytes(), vec![7; 32]);
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
    }

    #[test]
    fn the_old_secret_signs_until_its_overlap_ends() {
        let endpoint = WebhookEndpoint {
            recipient: Recipient::Partner(PartnerId::parse("prt_000000000000000000000001").unwrap()),
            url: WebhookUrl::from_stored("https://a.example/".into()),
            secret: WebhookSecret::from_stored("whsec_new".into()),
            previous_secret: Some((WebhookSecret::from_stored("whsec_old".into()), NOW + SECRET_OVERLAP)),
            disabled: None,
            created_at: NOW,
            updated_at: NOW,
        };
        assert_eq!(endpoint.signing_secrets(NOW).len(), 2);
        assert_eq!(endpoint.signing_secrets(NOW + SECRET_OVERLAP).len(), 1);
    }

    #[test]
    fn schedules_parse_units_and_refuse_nonsense() {
        let s = RetrySchedule::parse("1m,5m,30m,2h,12h").unwrap();
        assert_eq!(s, RetrySchedule::default());
        assert_eq!(
            RetrySchedule::parse("50ms, 1s").unwrap().waits(),
            [Duration::from_millis(50), Duration::from_secs(1)]
        );
        assert!(RetrySchedule::parse("").unwrap().waits().is_empty());
        for bad in ["5", "1m,,2m", "m", "3w", "99999999999999999999s", "8d"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn failures_follow_the_schedule_then_fail_and_retry_after_wins() {
        let s = RetrySchedule::default();
        let failed = AttemptResult::Failed { retry_after: None };
        assert_eq!(
            after_attempt(&s, 0, &failed, NOW),
            (DeliveryStatus::Retrying, Some(NOW + time::Duration::minutes(1)))
        );
        assert_eq!(
            after_attempt(&s, 4, &failed, NOW),
            (DeliveryStatus::Retrying, Some(NOW + time::Duration::hours(12)))
        );
        assert_eq!(after_attempt(&s, 5, &failed, NOW), (DeliveryStatus::Failed, None));
        let throttled = AttemptResult::Failed { retry_after: Some(Duration::from_secs(7)) };
        assert_eq!(after_attempt(&s, 0, &throttled, NOW).1, Some(NOW + time::Duration::seconds(7)));
        let greedy = AttemptResult::Failed { retry_after: Some(Duration::from_secs(10 * 86_400)) };
        assert_eq!(after_attempt(&s, 0, &greedy, NOW).1, Some(NOW + time::Duration::days(1)));
        assert_eq!(after_attempt(&s, 0, &AttemptResult::Gone, NOW), (DeliveryStatus::Failed, None));
        assert_eq!(after_attempt(&s, 9, &AttemptResult::Delivered, NOW), (DeliveryStatus::Delivered, None));
    }
}
