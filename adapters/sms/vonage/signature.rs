//! Vonage's signed SMS API webhooks (developer.vonage.com, "Signing
//! messages"): with a signature secret on the account, each delivery
//! receipt carries `sig` over every other parameter sorted by name as
//! `&name=value` (`&` and `=` in values replaced by `_`), and `timestamp`,
//! unix seconds, which must be within five minutes of now. The account picks
//! how `sig` is made: the MD5 hash of that string with the secret appended
//! (`md5hash`, the dashboard's default), or its HMAC keyed with the secret,
//! with MD5, SHA-1, SHA-256 or SHA-512; in hex. A receipt is taken only when
//! signed the way the settings say, so no weaker method passes.

use hmac::digest::Digest;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::super::signing::{matches_any, sorted};
use crate::config::VonageSignatureMethod as Method;

/// How far a receipt's `timestamp` may be from now.
const TOLERANCE_SECS: u64 = 300;

/// `&name=value...`, as Vonage signs it.
fn signed_string(params: &[(String, String)]) -> String {
    let mut message = String::new();
    for (name, value) in sorted(params).into_iter().filter(|(k, _)| k != "sig") {
        message.push('&');
        message.push_str(name);
        message.push('=');
        message.push_str(&value.replace(['&', '='], "_"));
    }
    message
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(secret: &str, message: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `sig` Vonage would send for `params` (with or without `sig`), in
/// lower-case hex.
pub(super) fn sign(method: Method, secret: &str, params: &[(String, String)]) -> String {
    let message = signed_string(params);
    match method {
        Method::Md5hash => hex::encode(Md5::digest(format!("{message}{secret}").as_bytes())),
        Method::Md5 => hmac_hex::<Hmac<Md5>>(secret, &message),
        Method::Sha1 => hmac_hex::<Hmac<Sha1>>(secret, &message),
        Method::Sha256 => hmac_hex::<Hmac<Sha256>>(secret, &message),
        Method::Sha512 => hmac_hex::<Hmac<Sha512>>(secret, &message),
    }
}

/// Whether `params` carry a good `sig`, made by `method`, and a fresh
/// `timestamp`.
pub(super) fn verified(method: Method, secret: &str, params: &[(String, String)], now: u64) -> bool {
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
    matches_any(&sig.to_ascii_lowercase(), &[sign(method, secret, params)])
}

#[cfg(test)]
mod tests {
    use super::super::super::signing::params;
    use super::*;

    /// An inbound message Vonage's Node SDK checks its `verifySignature`
    /// with, and the signature it expects for each method (its test data).
    fn sdk_vector() -> Vec<(String, String)> {
        params(&[
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ])
    }

    #[test]
    fn each_method_reproduces_vonages_published_signatures() {
        let secret = "my_secret_key_for_testing";
        for (method, expected) in [
            (Method::Md5hash, "d2e7b1dc968737c5998ad624e02f90b7"),
            (Method::Md5, "DDEBD46008C2D4E93CCE578A332A52D5"),
            (Method::Sha1, "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A"),
            (
                Method::Sha256,
                "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330",
            ),
            (
                Method::Sha512,
                "E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481C\
                 D3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82",
            ),
        ] {
            let mut signed = sdk_vector();
            assert_eq!(
                sign(method, secret, &signed),
                expected.to_ascii_lowercase(),
                "{method:?}"
            );
            signed.push(("sig".into(), expected.into()));
            assert!(verified(method, secret, &signed, 1_385_047_698), "{method:?}");
            // Any other method refuses it: none stands in for the one chosen.
            for other in [
                Method::Md5hash,
                Method::Md5,
                Method::Sha1,
                Method::Sha256,
                Method::Sha512,
            ] {
                if other != method {
                    assert!(
                        !verified(other, secret, &signed, 1_385_047_698),
                        "{method:?} as {other:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_signed_receipt_passes_and_a_changed_or_stale_one_does_not() {
        let now = 1_700_000_000;
        let mut receipt = params(&[
            ("messageId", "0A0000000123ABCD1"),
            ("status", "delivered"),
            ("err-code", "0"),
            ("timestamp", "1700000000"),
        ]);
        let sig = sign(Method::Sha256, "secret", &receipt);
        receipt.push(("sig".into(), sig.to_ascii_uppercase()));
        assert!(verified(Method::Sha256, "secret", &receipt, now));
        assert!(verified(Method::Sha256, "secret", &receipt, now + 299));
        assert!(!verified(Method::Sha256, "secret", &receipt, now + 301), "stale");
        assert!(!verified(Method::Sha256, "other", &receipt, now));
        receipt[1].1 = "failed".into();
        assert!(!verified(Method::Sha256, "secret", &receipt, now));
    }

    #[test]
    fn separators_in_values_are_signed_as_underscores() {
        let a = params(&[("client-ref", "a&b=c"), ("timestamp", "1")]);
        let b = params(&[("client-ref", "a_b_c"), ("timestamp", "1")]);
        assert_eq!(sign(Method::Sha256, "s", &a), sign(Method::Sha256, "s", &b));
        assert_eq!(signed_string(&a), "&client-ref=a_b_c&timestamp=1");
    }
}
