//! Per-key rate limits: a GCRA (token bucket) per API key, with a burst as large as the
//! per-minute rate. Keyed by the key's hash, never by the key itself.
//!
//! The state lives in this process: with several `partnerd` processes behind a load balancer,
//! each allows the full rate (see docs/operations.md).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use partnerd_domain::keys::{KeyHash, KeyKind};

/// Requests per minute per key, by kind of key; `0` turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub partner: u32,
    pub distributor: u32,
    pub worker: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { partner: 60, distributor: 120, worker: 600 }
    }
}

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// What one request left of its key's allowance, for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the allowance is whole again (or, when refused, until a retry can pass).
    pub reset_secs: u64,
}

impl RateLimitStatus {
    /// `RateLimit-Policy` (IETF draft): `60;w=60`.
    pub fn policy_header(&self) -> String {
        format!("{};w=60", self.limit)
    }

    /// `RateLimit` (IETF draft): `limit=60, remaining=59, reset=1`.
    pub fn header(&self) -> String {
        format!("limit={}, remaining={}, reset={}", self.limit, self.remaining, self.reset_secs)
    }
}

/// Per-kind limiters.
pub struct KeyRateLimiter {
    partner: Option<(u32, KeyedLimiter)>,
    distributor: Option<(u32, KeyedLimiter)>,
    worker: Option<(u32, KeyedLimiter)>,
    clock: DefaultClock,
    checks: AtomicU64,
}

/// Every this many checks, keys whose buckets are full again are forgotten, so memory follows
/// the keys in use without a background task.
const SWEEP_EVERY: u64 = 4096;

fn limiter(per_minute: u32) -> Option<(u32, KeyedLimiter)> {
    let rate = NonZeroU32::new(per_minute)?;
    Some((per_minute, RateLimiter::keyed(Quota::per_minute(rate)).with_middleware::<StateInformationMiddleware>()))
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl KeyRateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            partner: limiter(limits.partner),
            distributor: limiter(limits.distributor),
            worker: limiter(limits.worker),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from the key's allowance: `Ok` with what is left (or `None` when this
    /// kind is unlimited), `Err` with when to retry.
    pub fn check(&self, kind: KeyKind, key: &KeyHash) -> Result<Option<RateLimitStatus>, RateLimitStatus> {
        let slot = match kind {
            KeyKind::Partner => &self.partner,
            KeyKind::Distributor => &self.distributor,
            KeyKind::Worker => &self.worker,
        };
        let Some((limit, limiter)) = slot else { return Ok(None) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.shrink();
        }
        let per_token = Duration::from_secs(60) / *limit;
        match limiter.check_key(&key.as_str().to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(Some(RateLimitStatus {
                    limit: *limit,
                    remaining,
                    reset_secs: ceil_secs(per_token * (*limit - remaining)),
                }))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(RateLimitStatus { limit: *limit, remaining: 0, reset_secs: ceil_secs(wait).max(1) })
            }
        }
    }

    /// Forgets keys whose buckets are full again.
    fn shrink(&self) {
        for (_, l) in [&self.partner, &self.distributor, &self.worker].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partnerd_domain::keys::ApiKey;

    fn hash(raw: &str) -> KeyHash {
        ApiKey::presented(KeyKind::Partner, raw).unwrap().hash()
    }

    #[test]
    fn a_key_gets_its_burst_then_is_refused_with_a_retry_time() {
        let limiter = KeyRateLimiter::new(RateLimits { partner: 3, distributor: 0, worker: 0 });
        let key = hash("pk_live_a");
        let remaining: Vec<u32> =
            (0..3).map(|_| limiter.check(KeyKind::Partner, &key).unwrap().unwrap().remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(KeyKind::Partner, &key).unwrap_err();
        assert!((1..=20).contains(&refused.reset_secs), "{refused:?}");
        assert!(limiter.check(KeyKind::Partner, &hash("pk_live_b")).is_ok(), "other keys are unaffected");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limiter = KeyRateLimiter::new(RateLimits { partner: 1, distributor: 0, worker: 0 });
        for _ in 0..100 {
            assert_eq!(limiter.check(KeyKind::Distributor, &hash("pk_live_a")), Ok(None));
        }
    }
}
