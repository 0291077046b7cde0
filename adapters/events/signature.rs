//! Signing as the Standard Webhooks specification says, so an app checks
//! otpd's events with any Standard Webhooks library: HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, base64, as `v1,<signature>`;
//! one per secret, separated by spaces, so a secret can be rotated without a
//! moment when the app can't check.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// A `whsec_` secret, as the HMAC keyed with it (the key's padding hashed
/// once, not per event). `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be `whsec_` and the base64 of 24 to 64 random bytes (make one with `printf whsec_; openssl rand -base64 32`)")]
    Format,
}

impl SigningKey {
    /// # Errors
    /// [`KeyError`] for anything but `whsec_` and the base64 of 24 to 64 bytes,
    /// the lengths the specification allows.
    pub fn parse(secret: &Secret) -> Result<Self, KeyError> {
        let encoded = secret.expose().strip_prefix("whsec_").ok_or(KeyError::Format)?;
        let key = BASE64.decode(encoded).map_err(|_| KeyError::Format)?;
        if !(24..=64).contains(&key.len()) {
            return Err(KeyError::Format);
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| KeyError::Format)?;
        Ok(Self(mac))
    }

    fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` value: one signature per key.
pub fn signature_header(keys: &[SigningKey], id: &str, timestamp: u64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| key.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> SigningKey {
        SigningKey::parse(&Secret::new(secret)).unwrap()
    }

    /// The vectors of the official libraries' tests (Python, JS, Go, ... and Rust).
    #[test]
    fn matches_the_published_vectors() {
        let a = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            signature_header(
                &[a],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let b = key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        assert_eq!(
            signature_header(
                &[b],
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn one_signature_per_key_and_only_whsec_keys() {
        let keys = [
            key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        ];
        let header = signature_header(&keys, "evt_1", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!!",
            "whsec_c2hvcnQ=",
        ] {
            assert!(SigningKey::parse(&Secret::new(bad)).is_err(), "{bad}");
        }
        assert_eq!(format!("{:?}", keys[0]), "SigningKey(<redacted>)");
    }
}
