//! Prefixed identifiers: `prt_…`, `dist_…`, `cust_…`, `run_…`, `wrk_…`, `evt_…`, `inv_…`.
//!
//! An id is its prefix followed by 24 lowercase hex characters (96 random bits). Once parsed, an
//! id is well-formed forever; whether it names anything is the repositories' business.

use std::fmt;

use crate::ports::IdGenerator;

/// Number of hex characters after the prefix.
const BODY_LEN: usize = 24;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
}

pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate(ids: &dyn IdGenerator) -> Self {
                Self(format!("{}{}", $prefix, hex_encode(&ids.id_body())))
            }

            /// Parses an id as it appears on the wire.
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                let body = raw.strip_prefix($prefix).ok_or(InvalidId { kind: $kind })?;
                let well_formed = body.len() == BODY_LEN
                    && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if well_formed { Ok(Self(raw.to_owned())) } else { Err(InvalidId { kind: $kind }) }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A distributor account.
    DistributorId, "dist_", "distributor"
);
prefixed_id!(
    /// A partner account (MSP or reseller).
    PartnerId, "prt_", "partner"
);
prefixed_id!(
    /// A partner's customer.
    CustomerId, "cust_", "customer"
);
prefixed_id!(
    /// An assessment run.
    RunId, "run_", "run"
);
prefixed_id!(
    /// A worker (the vendor's scanner).
    WorkerId, "wrk_", "worker"
);
prefixed_id!(
    /// A webhook event.
    EventId, "evt_", "event"
);
prefixed_id!(
    /// A plan change (its audit record and the invoice items it created).
    PlanChangeId, "chg_", "plan change"
);
prefixed_id!(
    /// A pending or invoiced line item.
    InvoiceItemId, "ii_", "invoice item"
);
prefixed_id!(
    /// An issued invoice (a partner's or a distributor's).
    InvoiceId, "inv_", "invoice"
);

impl EventId {
    /// The one id of an event that can happen only once for its subject (`assessment.started`
    /// of a run, say): derived from `key`, so recording it twice is impossible by construction.
    pub fn derived(key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(key.as_bytes());
        Self(format!("{}{}", Self::PREFIX, hex_encode(&digest[..BODY_LEN / 2])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_event_ids_are_stable_and_well_formed() {
        let a = EventId::derived("assessment.started:run_1");
        assert_eq!(a, EventId::derived("assessment.started:run_1"));
        assert_ne!(a, EventId::derived("assessment.failed:run_1"));
        assert_eq!(EventId::parse(a.as_str()), Ok(a));
    }

    struct Fixed;
    impl IdGenerator for Fixed {
        fn id_body(&self) -> [u8; 12] {
            [0xab; 12]
        }
    }

    #[test]
    fn generated_ids_round_trip_through_parse() {
        let id = PartnerId::generate(&Fixed);
        assert_eq!(id.as_str(), "prt_abababababababababababab");
        assert_eq!(PartnerId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn parse_refuses_other_kinds_and_malformed_bodies() {
        let customer = CustomerId::generate(&Fixed);
        assert!(PartnerId::parse(customer.as_str()).is_err());
        for bad in [
            "",
            "prt_",
            "prt_ABABABABABABABABABABABAB",
            "prt_abab",
            "prt_abababababababababababab0",
            "prt_zzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert!(PartnerId::parse(bad).is_err(), "{bad} parsed");
        }
    }
}
