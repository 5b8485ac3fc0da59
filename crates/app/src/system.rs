//! The real clock and randomness behind the domain's ports.

use partnerd_domain::ports::{Clock, IdGenerator, KeyGenerator};
use time::OffsetDateTime;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The operating system's CSPRNG (`getrandom`). Failing to read it is unrecoverable: a key made
/// from anything weaker must never exist.
pub struct OsRandom;

impl OsRandom {
    fn fill<const N: usize>() -> [u8; N] {
        let mut bytes = [0; N];
        getrandom::fill(&mut bytes).expect("the operating system's random number generator is unavailable");
        bytes
    }
}

impl IdGenerator for OsRandom {
    fn id_body(&self) -> [u8; 12] {
        Self::fill()
    }
}

impl KeyGenerator for OsRandom {
    fn key_bytes(&self) -> [u8; 32] {
        Self::fill()
    }
}
