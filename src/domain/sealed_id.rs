//! Verification ids that carry their phone, sealed: one AES-128 block under
//! a key derived from the hash key, holding a version byte, the phone's
//! digits and 56 random bits. A call by id opens it to find the phone, so
//! the store keeps no id-to-phone link (a key and a round trip fewer), and
//! whoever holds an id learns nothing from it: without the key it is 128
//! bits indistinguishable from random, and it can't be forged for another
//! phone. The store still compares the whole id with the verification's
//! own, so an id that opens but isn't the phone's current one finds nothing.

use std::fmt;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};
use sha2::Sha512;

use super::{Phone, VerificationId};

/// The first byte of every sealed block; a block opened under the wrong key
/// (or a random or forged id) has it by chance once in 256.
const VERSION: u8 = 0xa1;
/// Phone digits held: E.164 allows 15; the 16th nibble is always padding.
const DIGITS: usize = 16;
const PAD: u8 = 0xf;
/// What the sealing key is derived with: not a phone and code (those start
/// with `+`), so it is no code's hash.
const LABEL: &[u8] = b"otpd verification id key v1";

/// Seals with the first key and opens with every key, as codes are hashed.
#[derive(Clone)]
pub struct IdSeal {
    ciphers: Vec<Aes128>,
}

impl IdSeal {
    /// From the HMAC states of the hash keys, current first.
    pub(super) fn new<'a>(keys: impl IntoIterator<Item = &'a Hmac<Sha512>>) -> Self {
        let ciphers = keys
            .into_iter()
            .map(|keyed| {
                let mut mac = keyed.clone();
                mac.update(LABEL);
                let derived = mac.finalize().into_bytes();
                Aes128::new(GenericArray::from_slice(&derived[..16]))
            })
            .collect();
        Self { ciphers }
    }

    /// A new verification id for `phone`.
    pub fn seal(&self, phone: &Phone) -> VerificationId {
        let mut block = [PAD << 4 | PAD; 16];
        block[0] = VERSION;
        for (i, digit) in phone.as_str().bytes().skip(1).take(DIGITS - 1).enumerate() {
            let nibble = digit - b'0';
            let byte = &mut block[1 + i / 2];
            *byte = if i % 2 == 0 {
                nibble << 4 | (*byte & 0x0f)
            } else {
                (*byte & 0xf0) | nibble
            };
        }
        OsRng.unwrap_err().fill_bytes(&mut block[9..]);
        let mut block = GenericArray::from(block);
        self.ciphers[0].encrypt_block(&mut block);
        VerificationId::from_bytes(block.into())
    }

    /// The phone `id` was sealed for, under any of the keys; `None` for an
    /// id sealed under no key we hold (made before ids were sealed, or
    /// made up).
    pub fn open(&self, id: &VerificationId) -> Option<Phone> {
        let sealed = id.to_bytes()?;
        self.ciphers.iter().find_map(|cipher| {
            let mut block = GenericArray::from(sealed);
            cipher.decrypt_block(&mut block);
            phone_in(&block.into())
        })
    }
}

/// The phone in an opened block, if it is one this module sealed.
fn phone_in(block: &[u8; 16]) -> Option<Phone> {
    if block[0] != VERSION {
        return None;
    }
    let nibbles = block[1..9].iter().flat_map(|b| [b >> 4, b & 0x0f]);
    let mut digits = String::from("+");
    let mut ended = false;
    for nibble in nibbles {
        match (nibble, ended) {
            (0..=9, false) => digits.push(char::from(b'0' + nibble)),
            (PAD, _) => ended = true,
            _ => return None,
        }
    }
    // The parse is the usual one, so an id opens only to a phone otpd
    // would have sent to.
    (digits.len() > 1).then_some(())?;
    let phone = Phone::parse(&digits).ok()?;
    (phone.as_str() == digits).then_some(phone)
}

impl fmt::Debug for IdSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdSeal({} keys, redacted)", self.ciphers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_of(secret: &[u8]) -> IdSeal {
        let keyed = <Hmac<Sha512> as Mac>::new_from_slice(secret).unwrap();
        IdSeal::new([&keyed])
    }

    #[test]
    fn an_id_opens_to_its_phone_and_ids_differ_each_time() {
        let seal = seal_of(b"0123456789abcdef");
        for raw in ["+14155552671", "+442071838750", "+919876543210", "+8613912345678"] {
            let phone = Phone::parse(raw).unwrap();
            let (a, b) = (seal.seal(&phone), seal.seal(&phone));
            assert_ne!(a, b, "56 random bits in each");
            assert_eq!(seal.open(&a), Some(phone.clone()));
            assert_eq!(seal.open(&b), Some(phone));
            assert!(VerificationId::parse(a.as_str()).is_ok(), "Twilio's shape: {a}");
        }
    }

    #[test]
    fn another_key_a_random_id_or_a_changed_id_opens_to_nothing() {
        let phone = Phone::parse("+14155552671").unwrap();
        let id = seal_of(b"0123456789abcdef").seal(&phone);
        assert_eq!(seal_of(b"fedcba9876543210").open(&id), None);
        // Any one bit changed scrambles the whole block.
        let bytes = id.to_bytes().unwrap();
        for bit in 0..128 {
            let mut changed = bytes;
            changed[bit / 8] ^= 1 << (bit % 8);
            let changed = VerificationId::from_bytes(changed);
            let opened = seal_of(b"0123456789abcdef").open(&changed);
            assert_ne!(opened, Some(phone.clone()), "bit {bit}");
        }
        // Random ids, as older otpd made them: nearly all open to nothing
        // (the version byte alone turns away 255 in 256), and any that does
        // still has to be the phone's own id in the store.
        let seal = seal_of(b"0123456789abcdef");
        let opened = (0..2000)
            .filter(|_| seal.open(&VerificationId::generate()).is_some())
            .count();
        assert!(opened <= 2, "{opened} of 2000 random ids opened");
    }

    #[test]
    fn a_rotated_key_still_opens_the_ids_it_sealed() {
        let old = <Hmac<Sha512> as Mac>::new_from_slice(b"0123456789abcdef").unwrap();
        let new = <Hmac<Sha512> as Mac>::new_from_slice(b"fedcba9876543210").unwrap();
        let phone = Phone::parse("+14155552671").unwrap();
        let before = IdSeal::new([&old]).seal(&phone);
        assert_eq!(IdSeal::new([&new, &old]).open(&before), Some(phone));
    }

    #[test]
    fn debug_shows_no_key() {
        assert_eq!(
            format!("{:?}", seal_of(b"0123456789abcdef")),
            "IdSeal(1 keys, redacted)"
        );
    }
}
