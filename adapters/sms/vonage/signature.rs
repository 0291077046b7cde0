//! Vonage's signed SMS API webhooks (developer.vonage.com, "Signing
//! messages"): with a signature secret and the HMAC-SHA256 method set on the
//! account, each delivery receipt carries `sig`, the hex HMAC-SHA256 of every
//! other parameter sorted by name as `&name=value` (`&` and `=` in values
//! replaced by `_`), keyed with the secret; and `timestamp`, unix seconds,
//! which must be within five minutes of now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::super::signing::{matches_any, sorted};

/// How far a receipt's `timestamp` may be from now.
const TOLERANCE_SECS: u64 = 300;

/// The `sig` Vonage would send for `params` (with or without `sig`).
pub(super) fn sign(secret: &str, params: &[(String, String)]) -> String {
    let mut message = String::new();
    for (name, value) in sorted(params).into_iter().filter(|(k, _)| k != "sig") {
        message.push('&');
        message.push_str(name);
        message.push('=');
        message.push_str(&value.replace(['&', '='], "_"));
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `params` carry a good `sig` and a fresh `timestamp`.
pub(super) fn verified(secret: &str, params: &[(String, String)], now: u64) -> bool {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(sig), Some(timestamp)) = (get("sig"), get("timestamp")) else {
        return false;
    };
    let Ok(timestamp) = timestamp.parse::<u64>() else {
        return false;
    };
    if timestamp.abs_diff(now) > TOLERANCE_SECS {
        return false;
    }
    // Vonage's examples show the hex in upper or lower case.
    matches_any(&sig.to_ascii_lowercase(), &[sign(secret, params)])
}

#[cfg(test)]
mod tests {
    use super::super::super::signing::params;
    use super::*;

    #[test]
    fn a_signed_receipt_passes_and_a_changed_or_stale_one_does_not() {
        let now = 1_700_000_000;
        let mut receipt = params(&[
            ("messageId", "0A0000000123ABCD1"),
            ("status", "delivered"),
            ("err-code", "0"),
            ("timestamp", "1700000000"),
        ]);
        let sig = sign("secret", &receipt);
        receipt.push(("sig".into(), sig.to_ascii_uppercase()));
        assert!(verified("secret", &receipt, now));
        assert!(verified("secret", &receipt, now + 299));
        assert!(!verified("secret", &receipt, now + 301), "stale");
        assert!(!verified("other", &receipt, now));
        receipt[1].1 = "failed".into();
        assert!(!verified("secret", &receipt, now));
    }
}
