//! A call's words sealed into the URL its vendor fetches them from (Plivo's
//! `answer_url`): ChaCha20-Poly1305 over the expiry, the language and the
//! words. This module is the only place that knows the format.
//!
//! Stateless on purpose: the URL carries everything the answer needs, so no
//! instance stores the words (the code in clear) anywhere, any instance
//! holding the key can answer a fetch that another instance's call caused,
//! and nothing has to be cleaned up when a call is never answered. The key
//! is derived from the first `otp.hash_keys` entry, so all instances share
//! it; without one, from a random key of this process, which then alone can
//! answer (as it alone can verify its codes).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use sha2::Sha256;

use crate::domain::Speech;

/// What the sealing key is derived from a hash key with, and what each
/// token is bound to (the AEAD's associated data): a key or a token made for
/// another use can't open these.
const LABEL: &[u8] = b"otpd voice answer key v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const EXPIRY_LEN: usize = 8;
/// Longest token opened: the words of every language fit in a fraction of
/// it; anything longer is refused before it is decoded.
const MAX_TOKEN_LEN: usize = 1024;

/// Seals with one key and opens what it sealed, until the expiry.
#[derive(Clone)]
pub struct SpeechSeal {
    cipher: ChaCha20Poly1305,
    /// How long a sealed token opens: the code's own lifetime, past which
    /// the words are worth nothing.
    lifetime: Duration,
}

/// Why a token didn't open. Callers answer all of them alike, so the
/// answer tells a prober nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the token is not one this service made")]
    Malformed,
    #[error("the token was not sealed under this key, or was altered")]
    Forged,
    #[error("the token has expired")]
    Expired,
}

/// The words could not be sealed (the AEAD refused the input: far longer
/// than any call's words).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the call's words could not be sealed")]
pub struct SealError;

/// Words opened from a token. Holds the code, so `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedSpeech {
    language: String,
    words: String,
}

impl OpenedSpeech {
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The words, code included: for the vendor's answer only.
    pub fn expose(&self) -> &str {
        &self.words
    }
}

impl fmt::Debug for OpenedSpeech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenedSpeech({}, <redacted>)", self.language)
    }
}

impl fmt::Debug for SpeechSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpeechSeal(<redacted>, {:?})", self.lifetime)
    }
}

impl SpeechSeal {
    /// Under a key derived from `hash_key` (HMAC-SHA-256 of [`LABEL`]).
    pub fn derived(hash_key: &[u8], lifetime: Duration) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(hash_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(LABEL);
        Self::with_key(mac.finalize().into_bytes().into(), lifetime)
    }

    /// Under a fresh key from the OS's CSPRNG, for this process alone.
    pub fn random(lifetime: Duration) -> Self {
        let mut key = [0u8; 32];
        OsRng.unwrap_err().fill_bytes(&mut key);
        Self::with_key(key, lifetime)
    }

    fn with_key(key: [u8; 32], lifetime: Duration) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            lifetime,
        }
    }

    /// A URL-safe token (base64url, no padding) of `speech` that opens until
    /// `now` + the lifetime: a random nonce, then the ciphertext of the
    /// expiry (unix seconds, big-endian u64), the language's length (one
    /// byte), the language and the words, then the tag.
    ///
    /// # Errors
    /// [`SealError`] when the language is over 255 bytes or the AEAD refuses.
    pub fn seal(&self, speech: &Speech, now: SystemTime) -> Result<String, SealError> {
        let expiry = unix_secs(now).saturating_add(self.lifetime.as_secs());
        let language = speech.language().as_bytes();
        let language_len = u8::try_from(language.len()).map_err(|_| SealError)?;
        let mut plain = Vec::with_capacity(EXPIRY_LEN + 1 + language.len() + speech.expose().len());
        plain.extend_from_slice(&expiry.to_be_bytes());
        plain.push(language_len);
        plain.extend_from_slice(language);
        plain.extend_from_slice(speech.expose().as_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.unwrap_err().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: LABEL,
                },
            )
            .map_err(|_| SealError)?;
        let mut token = nonce.to_vec();
        token.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// The words `token` holds, if it was sealed under this key, is intact
    /// and has not expired at `now`.
    ///
    /// # Errors
    /// An [`OpenError`] saying why not.
    pub fn open(&self, token: &str, now: SystemTime) -> Result<OpenedSpeech, OpenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(OpenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN + EXPIRY_LEN + 1 {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: LABEL,
                },
            )
            .map_err(|_| OpenError::Forged)?;
        // Authentic from here on; still read without trusting lengths.
        let (expiry, rest) = plain.split_at_checked(EXPIRY_LEN).ok_or(OpenError::Malformed)?;
        let expiry = u64::from_be_bytes(expiry.try_into().map_err(|_| OpenError::Malformed)?);
        if unix_secs(now) >= expiry {
            return Err(OpenError::Expired);
        }
        let (&language_len, rest) = rest.split_first().ok_or(OpenError::Malformed)?;
        let (language, words) = rest
            .split_at_checked(usize::from(language_len))
            .ok_or(OpenError::Malformed)?;
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| OpenError::Malformed);
        Ok(OpenedSpeech {
            language: text(language)?,
            words: text(words)?,
        })
    }
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, Locale};

    const MINUTE: Duration = Duration::from_secs(60);

    fn speech() -> Speech {
        Speech::of(
            &Code::parse("907142").unwrap(),
            Some(&Locale::parse("fr").unwrap()),
        )
    }

    fn seal() -> SpeechSeal {
        SpeechSeal::derived(b"0123456789abcdef0123456789abcdef", MINUTE)
    }

    #[test]
    fn a_sealed_speech_opens_to_its_words_and_language() {
        let now = SystemTime::now();
        let token = seal().seal(&speech(), now).unwrap();
        let opened = seal()
            .open(&token, now + MINUTE - Duration::from_secs(1))
            .unwrap();
        assert_eq!(opened.language(), "fr-FR");
        assert_eq!(opened.expose(), speech().expose());
        // URL-safe, and nothing of the words shows.
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(!token.contains("907142"), "{token}");
        assert_eq!(format!("{opened:?}"), "OpenedSpeech(fr-FR, <redacted>)");
    }

    #[test]
    fn each_seal_is_fresh() {
        let now = SystemTime::now();
        assert_ne!(
            seal().seal(&speech(), now).unwrap(),
            seal().seal(&speech(), now).unwrap()
        );
    }

    #[test]
    fn a_token_expires_after_the_lifetime() {
        let now = SystemTime::now();
        let token = seal().seal(&speech(), now).unwrap();
        assert_eq!(seal().open(&token, now + MINUTE), Err(OpenError::Expired));
    }

    #[test]
    fn an_altered_token_does_not_open() {
        let now = SystemTime::now();
        let token = seal().seal(&speech(), now).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            let altered = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(seal().open(&altered, now), Err(OpenError::Forged), "byte {i}");
            bytes[i] ^= 1;
        }
        let cut = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 3]);
        assert_eq!(seal().open(&cut, now), Err(OpenError::Forged));
        assert_eq!(seal().open("", now), Err(OpenError::Malformed));
        assert_eq!(seal().open("not base64!", now), Err(OpenError::Malformed));
        assert_eq!(seal().open(&"A".repeat(2000), now), Err(OpenError::Malformed));
    }

    #[test]
    fn another_key_does_not_open_it() {
        let now = SystemTime::now();
        let token = seal().seal(&speech(), now).unwrap();
        let other = SpeechSeal::derived(b"another key of 32 bytes, at last", MINUTE);
        assert_eq!(other.open(&token, now), Err(OpenError::Forged));
        assert_eq!(
            SpeechSeal::random(MINUTE).open(&token, now),
            Err(OpenError::Forged)
        );
    }
}
