//! Vonage's signed Voice API webhooks (developer.vonage.com, "Signed
//! webhooks" and its "Decoding signed webhooks"; the check of
//! vonage-python-sdk's `verify_signature`): each call event carries
//! `Authorization: Bearer <JWT>`, HS256 by the account's signature secret,
//! whose `payload_hash` claim is the SHA-256 (hex) of the body exactly as
//! sent, and `iat` when it was signed. The signature, the hash and a fresh
//! `iat` must all hold: a captured event can't be replayed later, nor its
//! body changed. The application must have `signed_callbacks` on.

use hmac::digest::Digest;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;

use super::super::signing::{matches_any, unix_now, RAW_BODY};
use super::super::vendor::header;
use crate::adapters::sms::ReportKey;

/// The fields of a call event the webhook reads.
pub const CALL_UUID: &str = "uuid";
pub const CALL_STATUS: &str = "status";
/// Why a call ended as it did (`invalid_number`, `declined`, ...), on
/// events that reached no one.
pub const CALL_DETAIL: &str = "detail";

/// How far an event's `iat` may be from now.
const TOLERANCE_SECS: u64 = 300;

/// The claims checked; any other (`jti`, `api_key`, `application_id`) is
/// Vonage's.
#[derive(Deserialize)]
struct Claims {
    iat: u64,
    payload_hash: String,
}

/// Whether `token` was signed with `secret` at most five minutes from
/// `now`, over `body`.
pub(super) fn verified(secret: &str, token: &str, body: &[u8], now: u64) -> bool {
    if secret.is_empty() {
        return false;
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // Vonage's tokens need carry no `exp`: freshness is `iat`'s, below.
    validation.required_spec_claims.clear();
    let Ok(data) =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
    else {
        return false;
    };
    if data.claims.iat.abs_diff(now) > TOLERANCE_SECS {
        return false;
    }
    let hash = hex::encode(Sha256::digest(body));
    matches_any(&data.claims.payload_hash.to_ascii_lowercase(), &[hash])
}

/// The webhook's check: `params` hold the raw body under [`RAW_BODY`].
pub fn signed(key: &ReportKey, _url: &str, params: &[(String, String)], headers: &HeaderMap) -> bool {
    let body = params
        .iter()
        .find(|(k, _)| k == RAW_BODY)
        .map_or("", |(_, v)| v.as_str());
    let token = header(headers, "authorization")
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    verified(key.secret.expose(), token, body.as_bytes(), unix_now())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const BODY: &str = r#"{"uuid":"63f61863-4a51-4f6b-86e1-46edebcf9356","status":"completed"}"#;

    fn token(secret: &str, iat: u64, body: &str) -> String {
        let claims = json!({
            "iat": iat,
            "jti": "c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5",
            "iss": "Vonage",
            "payload_hash": hex::encode(Sha256::digest(body.as_bytes())),
            "api_key": "abcd1234",
            "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_signed_event_passes_and_a_changed_stale_or_foreign_one_does_not() {
        let now = 1_700_000_000;
        let signed = token("secret", now, BODY);
        assert!(verified("secret", &signed, BODY.as_bytes(), now));
        assert!(verified("secret", &signed, BODY.as_bytes(), now + 299));
        assert!(!verified("secret", &signed, BODY.as_bytes(), now + 301), "stale");
        assert!(
            !verified("other", &signed, BODY.as_bytes(), now),
            "another secret"
        );
        assert!(!verified("", &signed, BODY.as_bytes(), now), "no secret");
        let changed = BODY.replace("completed", "busy");
        assert!(
            !verified("secret", &signed, changed.as_bytes(), now),
            "body changed"
        );
        assert!(!verified("secret", "", BODY.as_bytes(), now), "no token");
    }

    #[test]
    fn only_hs256_passes() {
        let now = 1_700_000_000;
        let claims = json!({"iat": now, "payload_hash": hex::encode(Sha256::digest(BODY.as_bytes()))});
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(!verified("secret", &hs512, BODY.as_bytes(), now));
        // An `iat` that isn't a number is refused, not taken as absent.
        let odd = json!({"iat": "now", "payload_hash": claims["payload_hash"]});
        let odd = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &odd,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(!verified("secret", &odd, BODY.as_bytes(), now));
    }
}
