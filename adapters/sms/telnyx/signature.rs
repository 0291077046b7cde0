//! Telnyx's webhook signature (developers.telnyx.com, "Webhook signing"):
//! `telnyx-signature-ed25519` is the base64 Ed25519 signature, by Telnyx's
//! key, of `{telnyx-timestamp}|{raw body}`; the account's public key (base64,
//! from the portal) checks it. A timestamp more than five minutes from now
//! is refused, so a captured webhook can't be replayed later.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};

/// How far the timestamp may be from now.
const TOLERANCE_SECS: u64 = 300;

/// Whether `body` was signed by the key `public_key` (base64) at `timestamp`.
pub(super) fn verified(public_key: &str, signature: &str, timestamp: &str, body: &[u8], now: u64) -> bool {
    let Ok(at) = timestamp.parse::<u64>() else {
        return false;
    };
    if at.abs_diff(now) > TOLERANCE_SECS {
        return false;
    }
    let key = BASE64
        .decode(public_key.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let signature = BASE64
        .decode(signature.trim())
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok());
    let (Some(key), Some(signature)) = (key, signature) else {
        return false;
    };
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'|');
    message.extend_from_slice(body);
    key.verify_strict(&message, &signature).is_ok()
}

/// Whether `public_key` reads as an Ed25519 public key, for start-up.
pub fn is_public_key(public_key: &str) -> bool {
    BASE64
        .decode(public_key.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .is_some_and(|k| VerifyingKey::from_bytes(&k).is_ok())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    #[test]
    fn a_signed_body_passes_and_a_changed_stale_or_foreign_one_does_not() {
        let telnyx = SigningKey::from_bytes(&[7; 32]);
        let public = BASE64.encode(telnyx.verifying_key().to_bytes());
        let body = br#"{"data":{"event_type":"message.finalized"}}"#;
        let sig = BASE64.encode(
            telnyx
                .sign(b"1700000000|{\"data\":{\"event_type\":\"message.finalized\"}}")
                .to_bytes(),
        );
        let now = 1_700_000_010;
        assert!(is_public_key(&public));
        assert!(verified(&public, &sig, "1700000000", body, now));
        assert!(!verified(&public, &sig, "1700000001", body, now), "another time");
        assert!(!verified(&public, &sig, "1700000000", b"{}", now), "another body");
        assert!(!verified(&public, &sig, "1700000000", body, now + 400), "stale");
        let other = BASE64.encode(SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes());
        assert!(!verified(&other, &sig, "1700000000", body, now));
        assert!(!verified(&public, "not base64", "1700000000", body, now));
    }
}
