//! Idempotency keys (the IETF httpapi draft, as Stripe uses them): a retry
//! of a send with the same key gets the first answer and sends nothing.

use sha2::{Digest, Sha256};

/// 1 to 255 printable ASCII characters, as the client chose them.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("an Idempotency-Key is 1 to 255 printable ASCII characters")]
    Format,
}

impl IdempotencyKey {
    /// # Errors
    /// [`IdempotencyKeyError::Format`] for an empty, long or unprintable key.
    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        let printable = raw.bytes().all(|b| (0x20..0x7f).contains(&b));
        if raw.is_empty() || raw.len() > 255 || !printable {
            return Err(IdempotencyKeyError::Format);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(..)")
    }
}

/// One request under one key: where its claim lives (a digest of the
/// caller's scope and the key, so neither is stored) and what it asked
/// (a digest of the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// 64 hex digits.
    pub slot: String,
    /// 64 hex digits.
    pub fingerprint: String,
}

impl Idempotency {
    /// `scope` names the caller (its API key's digest, or its client);
    /// `request` what it asked, in a form that differs when the ask does.
    pub fn new(scope: &str, key: &IdempotencyKey, request: &str) -> Self {
        let slot = Sha256::new()
            .chain_update(scope.as_bytes())
            .chain_update([0])
            .chain_update(key.0.as_bytes())
            .finalize();
        Self {
            slot: hex::encode(slot),
            fingerprint: hex::encode(Sha256::digest(request.as_bytes())),
        }
    }
}

/// What a claim on a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody used the key: the request goes ahead, holding it.
    Fresh,
    /// The first request with it is still being answered.
    InFlight,
    /// The key was used for a different request.
    Reused,
    /// The first request's answer, to give again.
    Answered(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "tab\there", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_slot_depends_on_scope_and_key_the_fingerprint_on_the_request() {
        let key = IdempotencyKey::parse("order-1").unwrap();
        let a = Idempotency::new("caller-a", &key, "phone=+1");
        assert_eq!(a, Idempotency::new("caller-a", &key, "phone=+1"));
        assert_ne!(a.slot, Idempotency::new("caller-b", &key, "phone=+1").slot);
        let other = Idempotency::new("caller-a", &key, "phone=+2");
        assert_eq!(
            (a.slot.clone(), a.fingerprint == other.fingerprint),
            (other.slot, false)
        );
    }
}
