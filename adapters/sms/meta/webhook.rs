//! Meta's webhooks: the verification request an app's webhook settings
//! make (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`), and
//! message statuses, signed with the app secret (`X-Hub-Signature-256:
//! sha256=` and the hex HMAC-SHA256 of the raw body).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;
use crate::domain::DeliveryState;

/// Why a verification request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeRefused {
    /// Not a subscription with the configured token.
    Token,
    /// The right token, and a challenge otpd will not echo.
    Challenge,
}

/// What a verification request is answered with: its challenge, when it
/// subscribes with the configured token. The challenge is echoed as sent,
/// so only a short one of letters and digits is; which of the two is
/// wrong is said only to a caller with the token.
///
/// # Errors
/// [`ChallengeRefused`] says why it is refused.
pub fn challenge_answer(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    verify_token: &Secret,
) -> Result<String, ChallengeRefused> {
    let expected = verify_token.expose().as_bytes();
    let token = token.unwrap_or_default().as_bytes();
    let same = !expected.is_empty()
        && token.len() == expected.len()
        && token.iter().zip(expected).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
    if mode != Some("subscribe") || !same {
        return Err(ChallengeRefused::Token);
    }
    match challenge {
        Some(c) if (1..=128).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(c.to_owned())
        }
        _ => Err(ChallengeRefused::Challenge),
    }
}

/// Whether `signature` (the `X-Hub-Signature-256` header) signs `body`
/// with `app_secret`, compared in constant time.
pub fn signed(app_secret: &Secret, body: &[u8], signature: Option<&str>) -> bool {
    let Some(hex) = signature.and_then(|s| s.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(given) = hex::decode(hex) else {
        return false;
    };
    if app_secret.expose().is_empty() {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// A message's status, from a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub message_id: String,
    /// `None` for a status otpd doesn't track.
    pub state: Option<DeliveryState>,
    pub error_code: Option<String>,
}

/// Every message status a webhook's body carries (one request may carry
/// several, in several entries and changes); anything else in it (incoming
/// messages, account updates) is not a status and is skipped.
pub fn statuses(body: &serde_json::Value) -> Vec<Status> {
    let list = |value: &serde_json::Value, key: &str| value[key].as_array().cloned().unwrap_or_default();
    let mut found = Vec::new();
    for entry in list(body, "entry") {
        for change in list(&entry, "changes") {
            for status in list(&change["value"], "statuses") {
                let Some(message_id) = status["id"].as_str() else {
                    continue;
                };
                let state = match status["status"].as_str() {
                    Some("sent") => Some(DeliveryState::Sent),
                    // Read implies delivered; Meta may skip `delivered`.
                    Some("delivered" | "read") => Some(DeliveryState::Delivered),
                    Some("failed") => Some(DeliveryState::Failed),
                    _ => None,
                };
                let error_code = status["errors"][0]["code"].as_i64().map(|c| c.to_string());
                found.push(Status {
                    message_id: message_id.to_owned(),
                    state,
                    error_code,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_request_is_answered_only_with_the_right_token() {
        let token = Secret::new("s3cret-token");
        let answer =
            |mode, given, challenge| challenge_answer(Some(mode), Some(given), Some(challenge), &token);
        assert_eq!(
            answer("subscribe", "s3cret-token", "1158201444"),
            Ok("1158201444".into())
        );
        let refused = Err(ChallengeRefused::Token);
        assert_eq!(answer("subscribe", "s3cret-tokem", "1158201444"), refused);
        assert_eq!(answer("subscribe", "s3cret", "1158201444"), refused);
        assert_eq!(answer("unsubscribe", "s3cret-token", "1158201444"), refused);
        // The challenge is judged only for a caller with the token.
        assert_eq!(answer("subscribe", "s3cret-tokem", "<script>"), refused);
        assert_eq!(
            answer("subscribe", "s3cret-token", "<script>"),
            Err(ChallengeRefused::Challenge)
        );
        assert_eq!(
            challenge_answer(Some("subscribe"), Some(""), Some("1"), &Secret::default()),
            refused,
            "no token configured, none accepted"
        );
    }

    #[test]
    fn a_signature_is_checked_over_the_raw_body() {
        let secret = Secret::new("app-secret");
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"app-secret").unwrap();
        mac.update(body);
        let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signed(&secret, body, Some(&header)));
        assert!(!signed(
            &secret,
            br#"{"object":"whatsapp_business_account" }"#,
            Some(&header)
        ));
        assert!(!signed(&Secret::new("other"), body, Some(&header)));
        assert!(!signed(&secret, body, Some(header.trim_start_matches("sha256="))));
        assert!(!signed(&secret, body, None));
        assert!(!signed(&Secret::default(), body, Some(&header)));
    }

    #[test]
    fn statuses_are_read_from_every_entry_and_change() {
        let body = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": [{"field": "messages", "value": {"statuses": [
                    {"id": "wamid.A", "status": "delivered", "timestamp": "1708603746", "recipient_id": "16505551234"},
                    {"id": "wamid.B", "status": "failed", "timestamp": "1708603746", "recipient_id": "16505551234",
                     "errors": [{"code": 131026, "title": "Message undeliverable"}]}
                ]}}]},
                {"id": "2", "changes": [{"field": "messages", "value": {"messages": [{"id": "wamid.in"}]}},
                    {"field": "messages", "value": {"statuses": [{"id": "wamid.C", "status": "read"}, {"id": "wamid.D", "status": "deleted"}]}}]}
            ]
        });
        let found = statuses(&body);
        let states: Vec<_> = found.iter().map(|s| (s.message_id.as_str(), s.state)).collect();
        assert_eq!(
            states,
            vec![
                ("wamid.A", Some(DeliveryState::Delivered)),
                ("wamid.B", Some(DeliveryState::Failed)),
                ("wamid.C", Some(DeliveryState::Delivered)),
                ("wamid.D", None),
            ]
        );
        assert_eq!(found[1].error_code.as_deref(), Some("131026"));
        assert!(statuses(&serde_json::json!({"entry": "x"})).is_empty());
    }
}
