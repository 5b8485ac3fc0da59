//! Signatures. Two, so that receivers built from either reading can check a delivery:
//!
//! - `X-Baref00t-Signature`: lower-case hex of HMAC-SHA256 keyed with the secret string exactly
//!   as shown (`whsec_…`), over the raw body: the reference's scheme.
//! - Standard Webhooks: `webhook-id` (the event id, the same on every retry), `webhook-timestamp`
//!   (unix seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256>` keyed with
//!   the bytes the secret's base64 part encodes, over `{id}.{timestamp}.{body}`, so a receiver can
//!   also refuse replays.
//!
//! While a rotated-out secret still signs, `webhook-signature` carries both signatures
//! (space-separated, the current one first) and `X-Baref00t-Signature-Previous` carries the
//! old secret's hex signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use partnerd_domain::webhook::WebhookSecret;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reference's signature: hex HMAC-SHA256 of the body, keyed with the secret string.
pub fn baref00t_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    hex(&hmac(secret.reveal().as_bytes(), &[body]))
}

/// One Standard Webhooks signature, `v1,<base64>`.
pub fn standard_signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac(&secret.key_bytes(), &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", BASE64.encode(mac))
}

/// Every signature header of one attempt. `secrets` holds the current secret first.
pub fn headers(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(5);
    if let Some(current) = secrets.first() {
        out.push(("x-baref00t-signature", baref00t_signature(current, body)));
    }
    if let Some(previous) = secrets.get(1) {
        out.push(("x-baref00t-signature-previous", baref00t_signature(previous, body)));
    }
    out.push(("webhook-id", id.to_owned()));
    out.push(("webhook-timestamp", timestamp.to_string()));
    let signatures: Vec<String> = secrets.iter().map(|s| standard_signature(s, id, timestamp, body)).collect();
    out.push(("webhook-signature", signatures.join(" ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(raw: &str) -> WebhookSecret {
        WebhookSecret::from_stored(raw.to_owned())
    }

    /// The Standard Webhooks specification's published example.
    #[test]
    fn standard_webhooks_known_answer() {
        let s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = standard_signature(&s, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// RFC 4231 test case 2 (key "Jefe"), through the hex form.
    #[test]
    fn baref00t_signature_is_hex_hmac_sha256_of_the_body() {
        assert_eq!(
            baref00t_signature(&secret("Jefe"), b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn an_overlap_adds_the_old_secret_to_both_schemes() {
        let (new, old) = (secret("whsec_bmV3"), secret("whsec_b2xk"));
        let one = headers(std::slice::from_ref(&new), "evt_1", 10, b"{}");
        assert_eq!(
            one.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["x-baref00t-signature", "webhook-id", "webhook-timestamp", "webhook-signature"]
        );
        let two = headers(&[new.clone(), old.clone()], "evt_1", 10, b"{}");
        let get = |name: &str| two.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("x-baref00t-signature-previous"), baref00t_signature(&old, b"{}"));
        assert_eq!(
            get("webhook-signature"),
            format!(
                "{} {}",
                standard_signature(&new, "evt_1", 10, b"{}"),
                standard_signature(&old, "evt_1", 10, b"{}")
            )
        );
    }
}
