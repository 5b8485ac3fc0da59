//! API keys: three kinds, two slots per account, shown once and stored only as a SHA-256 hash.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::{DistributorId, PartnerId, WorkerId, hex_encode};
use crate::ports::KeyGenerator;

/// Which API surface a key opens; each kind has its own header and prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Partner,
    Distributor,
    Worker,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Partner => "pk_live_",
            Self::Distributor => "dk_live_",
            Self::Worker => "wk_live_",
        }
    }

    /// The request header that carries this kind of key.
    pub fn header(self) -> &'static str {
        match self {
            Self::Partner => "X-Partner-Key",
            Self::Distributor => "X-Distributor-Key",
            Self::Worker => "X-Worker-Key",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Distributor => "distributor",
            Self::Worker => "worker",
        }
    }
}

/// The account a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyOwner {
    Partner(PartnerId),
    Distributor(DistributorId),
    Worker(WorkerId),
}

impl KeyOwner {
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Partner(_) => KeyKind::Partner,
            Self::Distributor(_) => KeyKind::Distributor,
            Self::Worker(_) => KeyKind::Worker,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Partner(id) => id.as_str(),
            Self::Distributor(id) => id.as_str(),
            Self::Worker(id) => id.as_str(),
        }
    }
}

/// A key slot: every account has two, so keys can be rotated with no downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeySlot(u8);

impl KeySlot {
    pub const FIRST: KeySlot = KeySlot(1);
    pub const SECOND: KeySlot = KeySlot(2);
    pub const ALL: [KeySlot; 2] = [Self::FIRST, Self::SECOND];
    /// Active keys an account may hold at once.
    pub const MAX_ACTIVE: usize = 2;

    pub fn new(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::FIRST),
            2 => Some(Self::SECOND),
            _ => None,
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A plaintext API key. It exists only between generation and the response that shows it once,
/// and while a presented key is being checked. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Bytes of OS randomness in a key's body.
    pub const ENTROPY_BYTES: usize = 32;

    pub fn generate(kind: KeyKind, keys: &dyn KeyGenerator) -> Self {
        Self(format!("{}{}", kind.prefix(), hex_encode(&keys.key_bytes())))
    }

    /// Takes a key as presented in a header. Anything may be presented; only its hash is looked
    /// up, so there is nothing to validate beyond the kind's prefix.
    pub fn presented(kind: KeyKind, raw: &str) -> Option<Self> {
        let body = raw.strip_prefix(kind.prefix())?;
        (!body.is_empty() && body.len() <= 256).then(|| Self(raw.to_owned()))
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(hex_encode(&Sha256::digest(self.0.as_bytes())))
    }

    /// The plaintext, for the one response that shows it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.0.get(..8).unwrap_or("");
        write!(f, "ApiKey({prefix}…)")
    }
}

/// SHA-256 of a key, lower-case hex: the only form in which keys are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    /// Rebuilds a hash read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Equality whose running time does not depend on where the hashes differ.
    pub fn constant_time_eq(&self, other: &KeyHash) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sevens;
    impl KeyGenerator for Sevens {
        fn key_bytes(&self) -> [u8; 32] {
            [7; 32]
        }
    }

    #[test]
    fn keys_carry_their_kind_prefix_and_32_bytes_of_entropy() {
        let key = ApiKey::generate(KeyKind::Distributor, &Sevens);
        assert!(key.reveal().starts_with("dk_live_"));
        assert_eq!(key.reveal().len(), "dk_live_".len() + 64);
    }

    #[test]
    fn hash_is_sha256_hex_and_never_the_plaintext() {
        let key = ApiKey::presented(KeyKind::Partner, "pk_live_abc").unwrap();
        assert_eq!(key.hash().as_str(), "9836bf423868cba13fb8d7f85f59061bd3de495f02d6df6e052ab2de796c833d");
        assert_eq!(key.hash().as_str().len(), 64);
        assert!(!key.hash().as_str().contains("abc"));
        assert_eq!(key.hash(), ApiKey::presented(KeyKind::Partner, "pk_live_abc").unwrap().hash());
    }

    #[test]
    fn presented_keys_of_the_wrong_kind_are_refused() {
        assert!(ApiKey::presented(KeyKind::Partner, "dk_live_abc").is_none());
        assert!(ApiKey::presented(KeyKind::Partner, "pk_live_").is_none());
        assert!(ApiKey::presented(KeyKind::Worker, "wk_live_x").is_some());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ApiKey::generate(KeyKind::Partner, &Sevens);
        assert_eq!(format!("{key:?}"), "ApiKey(pk_live_…)");
    }

    #[test]
    fn constant_time_eq_compares_whole_hashes() {
        let a = ApiKey::presented(KeyKind::Partner, "pk_live_a").unwrap().hash();
        let b = ApiKey::presented(KeyKind::Partner, "pk_live_b").unwrap().hash();
        assert!(a.constant_time_eq(&a.clone()));
        assert!(!a.constant_time_eq(&b));
    }

    #[test]
    fn slots_are_one_or_two() {
        assert_eq!(KeySlot::new(1), Some(KeySlot::FIRST));
        assert_eq!(KeySlot::new(2), Some(KeySlot::SECOND));
        assert_eq!(KeySlot::new(0), None);
        assert_eq!(KeySlot::new(3), None);
    }
}
