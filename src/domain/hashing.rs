//! Codes at rest: HMAC-SHA-512 of the phone and the code under a server key,
//! so a copy of the store reveals neither codes nor a way to test guesses.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use sha2::Sha512;
use subtle::ConstantTimeEq;

use super::{Code, IdSeal, Phone};

/// Shortest key accepted: below this a key is guessable offline.
pub const MIN_KEY_LEN: usize = 16;

/// A server secret that keys the HMAC. `Debug` never shows it.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashKeyError {
    #[error("a hash key must be at least {MIN_KEY_LEN} bytes long")]
    TooShort,
    /// `<` or `>`: a documentation placeholder copied as it stands, whose
    /// text anyone can read, and with it brute-force every stored hash.
    #[error("a hash key is random bytes, not a placeholder in <...>: make one with `openssl rand -hex 32`")]
    Placeholder,
}

impl HashKey {
    /// # Errors
    /// [`HashKeyError::TooShort`] for a key under [`MIN_KEY_LEN`] bytes,
    /// [`HashKeyError::Placeholder`] for one holding `<` or `>`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, HashKeyError> {
        let secret = secret.into();
        if secret.len() < MIN_KEY_LEN {
            return Err(HashKeyError::TooShort);
        }
        if secret.iter().any(|&b| b == b'<' || b == b'>') {
            return Err(HashKeyError::Placeholder);
        }
        Ok(Self(secret))
    }

    /// A fresh 32-byte key from the OS's CSPRNG.
    pub fn random() -> Self {
        let mut secret = vec![0u8; 32];
        OsRng.unwrap_err().fill_bytes(&mut secret);
        Self(secret)
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

/// The 64-byte HMAC-SHA-512 of one phone and code.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeHash([u8; 64]);

impl CodeHash {
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Compares in time independent of where the hashes differ.
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.as_slice().ct_eq(other).into()
    }
}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(<redacted>)")
    }
}

/// Hashes with the first key and verifies with every key, so keys can be
/// rotated without voiding the codes already sent.
#[derive(Clone)]
pub struct CodeHasher {
    // One HMAC state per key, keyed once: each hash starts from a copy.
    current: Hmac<Sha512>,
    previous: Vec<Hmac<Sha512>>,
    /// The same keys' other use: sealing verification ids.
    ids: IdSeal,
}

fn keyed(key: &HashKey) -> Hmac<Sha512> {
    <Hmac<Sha512> as Mac>::new_from_slice(&key.0)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

impl CodeHasher {
    pub fn new(current: HashKey, previous: Vec<HashKey>) -> Self {
        let current = keyed(&current);
        let previous: Vec<_> = previous.iter().map(keyed).collect();
        Self {
            ids: IdSeal::new(std::iter::once(&current).chain(&previous)),
            current,
            previous,
        }
    }

    /// Seals and opens verification ids under the same keys.
    pub fn ids(&self) -> &IdSeal {
        &self.ids
    }

    /// The hash to store for a new code.
    pub fn hash(&self, phone: &Phone, code: &Code) -> CodeHash {
        hmac(&self.current, phone, code)
    }

    /// What a stored hash may equal if `code` is right, one per key.
    pub fn candidates(&self, phone: &Phone, code: &Code) -> Vec<CodeHash> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|keyed| hmac(keyed, phone, code))
            .collect()
    }
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeHasher({} keys, redacted)", 1 + self.previous.len())
    }
}

/// The message is `<E.164 phone>:<code>`; the phone holds no `:`, so no two
/// pairs share a message.
fn hmac(keyed: &Hmac<Sha512>, phone: &Phone, code: &Code) -> CodeHash {
    let mut mac = keyed.clone();
    mac.update(phone.as_str().as_bytes());
    mac.update(b":");
    mac.update(code.expose().as_bytes());
    CodeHash(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Phone {
        Phone::parse("+14155552671").unwrap()
    }

    #[test]
    fn short_keys_and_placeholders_are_refused() {
        assert_eq!(
            HashKey::new("0123456789abcde").err(),
            Some(HashKeyError::TooShort)
        );
        assert_eq!(
            HashKey::new("<new key, 32+ random bytes>").err(),
            Some(HashKeyError::Placeholder)
        );
        assert!(HashKey::new("0123456789abcdef").is_ok());
    }

    #[test]
    fn hmac_sha512_matches_rfc_4231_case_2() {
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let digest = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            digest,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn hash_depends_on_key_phone_and_code() {
        let code = Code::parse("042917").unwrap();
        let a = CodeHasher::new(HashKey::new(*b"0123456789abcdef").unwrap(), vec![]);
        let b = CodeHasher::new(HashKey::new(*b"fedcba9876543210").unwrap(), vec![]);
        let other_phone = Phone::parse("+14155552672").unwrap();
        assert_ne!(a.hash(&phone(), &code), b.hash(&phone(), &code));
        assert_ne!(a.hash(&phone(), &code), a.hash(&other_phone, &code));
        assert_ne!(
            a.hash(&phone(), &code),
            a.hash(&phone(), &Code::parse("042918").unwrap())
        );
    }

    #[test]
    fn every_key_verifies_and_only_the_first_hashes() {
        let old = HashKey::new(*b"old-key-old-key-").unwrap();
        let new = HashKey::new(*b"new-key-new-key-").unwrap();
        let code = Code::parse("123456").unwrap();
        let before = CodeHasher::new(old.clone(), vec![]).hash(&phone(), &code);
        let rotated = CodeHasher::new(new, vec![old]);
        let candidates = rotated.candidates(&phone(), &code);
        assert_eq!(candidates[0], rotated.hash(&phone(), &code));
        assert!(candidates.iter().any(|c| c.matches(before.as_bytes())));
    }

    #[test]
    fn short_keys_are_refused_and_secrets_never_print() {
        assert_eq!(HashKey::new(*b"short").unwrap_err(), HashKeyError::TooShort);
        let key = HashKey::new(*b"0123456789abcdef").unwrap();
        assert!(!format!("{key:?}").contains("0123"));
        let hash = CodeHasher::new(key, vec![]).hash(&phone(), &Code::parse("123456").unwrap());
        assert!(!format!("{hash:?}").contains(&hex::encode(&hash.as_bytes()[..4])));
    }
}
