//! What the vendors' report signatures share: an HMAC in base64, a compare
//! in constant time, and parameters sorted as they sign them. Each vendor's
//! own recipe is in its folder.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::Mac;
use subtle::ConstantTimeEq;

/// The name under which a webhook hands the raw body to a check that signs
/// it (Telnyx's, Vonage's call events): no form field can have it.
pub const RAW_BODY: &str = "\u{0}raw-body";

/// `base64(HMAC(key, message))` with the given hash.
pub(super) fn sign<M: Mac + hmac::digest::KeyInit>(key: &str, message: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Whether `given` equals one of `expected`, timing aside.
pub(super) fn matches_any(given: &str, expected: &[String]) -> bool {
    expected.iter().fold(false, |found, e| {
        bool::from(e.as_bytes().ct_eq(given.trim().as_bytes())) | found
    })
}

/// Parameters sorted by name, then value, as the vendors sign them.
pub(super) fn sorted(params: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort();
    sorted
}

/// Owned pairs from borrowed ones, for the vendors' signature tests.
#[cfg(test)]
pub(super) fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Now, in unix seconds, for the vendors whose signatures carry a time.
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
