//! What a webhook receiver does to check that a delivery really comes from partnerd.
//!
//! Written from the published formats only (no partnerd crate is linked), so the black-box
//! tests check the product's signatures against an independent implementation:
//!
//! - [`verify_standard`]: the [Standard Webhooks](https://www.standardwebhooks.com/) headers
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature`;
//! - [`verify_baref00t`]: the `X-Baref00t-Signature` header (and, during a secret rotation,
//!   `X-Baref00t-Signature-Previous`), the hex HMAC-SHA256 of the raw body.
//!
//! Both compare signatures in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// A required header is absent (its name).
    MissingHeader(&'static str),
    /// No signature matches the body and the secret.
    BadSignature,
    /// `webhook-timestamp` is outside the tolerance window.
    StaleTimestamp,
    /// A header or the secret does not have the expected form (which one).
    Malformed(&'static str),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "missing header {name}"),
            Self::BadSignature => f.write_str("no signature matches"),
            Self::StaleTimestamp => f.write_str("timestamp outside the tolerance window"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks a delivery's Standard Webhooks headers.
///
/// `headers` are (name, value) pairs, names matched case-insensitively (e.g.
/// [`Received::headers`](crate::receiver::Received::headers)); `body` is the raw body, exactly as
/// received. The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the
/// base64-decoded part of `secret` after `whsec_`. `webhook-signature` holds space-separated
/// `v1,<base64>` entries (several during a secret rotation): one matching entry is enough.
/// `webhook-timestamp` must be within `tolerance_secs` of `now_unix`, in either direction.
pub fn verify_standard(
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let id = header(headers, "webhook-id")?;
    let timestamp = header(headers, "webhook-timestamp")?;
    let signatures = header(headers, "webhook-signature")?;

    let sent_at: i64 = timestamp.parse().map_err(|_| VerifyError::Malformed("webhook-timestamp"))?;
    if now_unix.abs_diff(sent_at) > tolerance_secs.unsigned_abs() {
        return Err(VerifyError::StaleTimestamp);
    }

    let key = secret
        .strip_prefix("whsec_")
        .and_then(|key| BASE64.decode(key).ok())
        .ok_or(VerifyError::Malformed("secret"))?;
    let mac = HmacSha256::new_from_slice(&key)
        .expect("HMAC takes keys of any length")
        .chain_update(id)
        .chain_update(".")
        .chain_update(timestamp)
        .chain_update(".")
        .chain_update(body);

    let matches = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|signature| BASE64.decode(signature).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matches { Ok(()) } else { Err(VerifyError::BadSignature) }
}

/// Checks an `X-Baref00t-Signature` (or `X-Baref00t-Signature-Previous`) header value: the
/// lowercase hex HMAC-SHA256 of the raw `body`, keyed with the bytes of `secret` exactly as shown
/// (`whsec_` included).
pub fn verify_baref00t(secret: &str, header_value: &str, body: &[u8]) -> Result<(), VerifyError> {
    let signature = decode_hex(header_value).ok_or(VerifyError::Malformed("X-Baref00t-Signature"))?;
    HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length")
        .chain_update(body)
        .verify_slice(&signature)
        .map_err(|_| VerifyError::BadSignature)
}

/// The value of header `name` (case-insensitive), which must be present.
fn header<'a>(headers: &'a [(String, String)], name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Lowercase hex to bytes; `None` for anything else (uppercase included).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes().chunks_exact(2).map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's test vector (checked independently with Python's
    // hmac, hashlib and base64).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    /// Another valid secret (32 bytes of 0x01).
    const OTHER_SECRET: &str = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const TOLERANCE: i64 = 300;

    fn headers(id: &str, timestamp: &str, signature: &str) -> Vec<(String, String)> {
        vec![
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), timestamp.into()),
            ("webhook-signature".into(), signature.into()),
        ]
    }

    fn vector_headers() -> Vec<(String, String)> {
        headers(ID, &TIMESTAMP.to_string(), SIGNATURE)
    }

    /// A test-only signer, to build signatures for other timestamps and secrets.
    fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        let mac =
            HmacSha256::new_from_slice(&key).unwrap().chain_update(format!("{id}.{timestamp}.")).chain_update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn standard_webhooks_known_answer() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(verify_standard(SECRET, &vector_headers(), BODY, TIMESTAMP, TOLERANCE), Ok(()));
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let headers: Vec<_> = vector_headers().into_iter().map(|(k, v)| (k.to_uppercase(), v)).collect();
        assert_eq!(verify_standard(SECRET, &headers, BODY, TIMESTAMP, TOLERANCE), Ok(()));
    }

    #[test]
    fn tampered_body_id_or_timestamp_is_rejected() {
        let bad = Err(VerifyError::BadSignature);
        assert_eq!(verify_standard(SECRET, &vector_headers(), br#"{"test": 2432232315}"#, TIMESTAMP, TOLERANCE), bad);
        assert_eq!(verify_standard(SECRET, &vector_headers(), b"", TIMESTAMP, TOLERANCE), bad);
        let other_id = headers("msg_p5jXN8AQM9LWM0D4loKWxJeK", &TIMESTAMP.to_string(), SIGNATURE);
        assert_eq!(verify_standard(SECRET, &other_id, BODY, TIMESTAMP, TOLERANCE), bad);
        let other_timestamp = headers(ID, &(TIMESTAMP + 1).to_string(), SIGNATURE);
        assert_eq!(verify_standard(SECRET, &other_timestamp, BODY, TIMESTAMP, TOLERANCE), bad);
        assert_eq!(verify_standard(OTHER_SECRET, &vector_headers(), BODY, TIMESTAMP, TOLERANCE), bad);
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_rejected_both_ways() {
        let verify = |now| verify_standard(SECRET, &vector_headers(), BODY, now, TOLERANCE);
        assert_eq!(verify(TIMESTAMP + TOLERANCE), Ok(()));
        assert_eq!(verify(TIMESTAMP - TOLERANCE), Ok(()));
        // The delivery is too old …
        assert_eq!(verify(TIMESTAMP + TOLERANCE + 1), Err(VerifyError::StaleTimestamp));
        // … or claims to come from the future.
        assert_eq!(verify(TIMESTAMP - TOLERANCE - 1), Err(VerifyError::StaleTimestamp));
        // Extreme values do not overflow.
        let far = headers(ID, &i64::MIN.to_string(), SIGNATURE);
        assert_eq!(verify_standard(SECRET, &far, BODY, i64::MAX, TOLERANCE), Err(VerifyError::StaleTimestamp));
    }

    #[test]
    fn missing_or_malformed_headers_are_rejected() {
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let headers: Vec<_> = vector_headers().into_iter().filter(|(k, _)| k != name).collect();
            assert_eq!(
                verify_standard(SECRET, &headers, BODY, TIMESTAMP, TOLERANCE),
                Err(VerifyError::MissingHeader(name))
            );
        }
        let timestamp = headers(ID, "2021-02-25T15:02:10Z", SIGNATURE);
        assert_eq!(
            verify_standard(SECRET, &timestamp, BODY, TIMESTAMP, TOLERANCE),
            Err(VerifyError::Malformed("webhook-timestamp"))
        );
        for secret in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"] {
            assert_eq!(
                verify_standard(secret, &vector_headers(), BODY, TIMESTAMP, TOLERANCE),
                Err(VerifyError::Malformed("secret"))
            );
        }
        // Entries that are not `v1,<base64>` never match.
        for signature in [
            "",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,***",
        ] {
            let headers = headers(ID, &TIMESTAMP.to_string(), signature);
            assert_eq!(verify_standard(SECRET, &headers, BODY, TIMESTAMP, TOLERANCE), Err(VerifyError::BadSignature));
        }
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let old = sign(OTHER_SECRET, ID, TIMESTAMP, BODY);
        for signatures in [format!("{old} {SIGNATURE}"), format!("{SIGNATURE} {old}"), format!("v1a,xyz {SIGNATURE}")] {
            let headers = headers(ID, &TIMESTAMP.to_string(), &signatures);
            assert_eq!(verify_standard(SECRET, &headers, BODY, TIMESTAMP, TOLERANCE), Ok(()), "{signatures}");
            if signatures.contains(&old) {
                assert_eq!(verify_standard(OTHER_SECRET, &headers, BODY, TIMESTAMP, TOLERANCE), Ok(()));
            }
        }
        let third = "whsec_AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
        let none = headers(ID, &TIMESTAMP.to_string(), &format!("{old} {}", sign(third, ID, TIMESTAMP, BODY)));
        assert_eq!(verify_standard(SECRET, &none, BODY, TIMESTAMP, TOLERANCE), Err(VerifyError::BadSignature));
    }

    // Computed with Python: hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    const BAREF00T_VECTOR: &str = "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c";
    // Same, for a body shaped like partnerd's deliveries.
    const EVENT_BODY: &[u8] =
        br#"{"id":"evt_123","type":"customer.created","timestamp":"2026-01-02T03:04:05Z","data":{"id":"cus_1"}}"#;
    const EVENT_VECTOR: &str = "67e53e4b01d64482c1288e06dd21cb9a4fc155688137df746bdb39efd4b309ef";

    #[test]
    fn baref00t_known_answers() {
        assert_eq!(verify_baref00t(SECRET, BAREF00T_VECTOR, BODY), Ok(()));
        assert_eq!(verify_baref00t(SECRET, EVENT_VECTOR, EVENT_BODY), Ok(()));
    }

    #[test]
    fn baref00t_rejects_tampering_and_malformed_values() {
        assert_eq!(
            verify_baref00t(SECRET, BAREF00T_VECTOR, br#"{"test": 2432232315}"#),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(verify_baref00t(OTHER_SECRET, BAREF00T_VECTOR, BODY), Err(VerifyError::BadSignature));
        // The key is the secret string itself, not its decoded bytes.
        assert_eq!(
            verify_baref00t("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", BAREF00T_VECTOR, BODY),
            Err(VerifyError::BadSignature)
        );
        // A truncated signature never matches.
        assert_eq!(verify_baref00t(SECRET, &BAREF00T_VECTOR[..62], BODY), Err(VerifyError::BadSignature));
        let malformed = Err(VerifyError::Malformed("X-Baref00t-Signature"));
        assert_eq!(verify_baref00t(SECRET, &BAREF00T_VECTOR.to_uppercase(), BODY), malformed);
        assert_eq!(verify_baref00t(SECRET, &BAREF00T_VECTOR[..63], BODY), malformed);
        assert_eq!(verify_baref00t(SECRET, &format!("sha256={BAREF00T_VECTOR}"), BODY), malformed);
    }
}
