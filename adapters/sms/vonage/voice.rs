//! Vonage's Voice API ("Create an outbound call", developer.vonage.com's
//! Voice API reference; the fields as vonage-python-sdk's `voice` package
//! sends them): `POST {base}/v1/calls`, JSON, with a JWT that the
//! application's private key signs (RS256), and an inline NCCO whose one
//! `talk` action says the code, so Vonage fetches nothing from otpd. Its
//! call events, signed by the account's signature secret, are in
//! `call_events.rs`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::signing::unix_now;
use super::Vonage;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::retry::{send_with_retries, transport_error, AttemptError, RetryPolicy};
use crate::adapters::sms::vendor::status_error;
use crate::adapters::sms::Vendor;
use crate::config::{ConfigError, VonageVoiceConfig};
use crate::domain::{DeliveryState, Phone, SmsReceipt, Speech};
use crate::ports::{SmsError, VoiceCaller};

/// The path of the calls' events, below `http.public_url`.
pub const CALLBACK_PATH: &str = "/v1/webhooks/vonage/calls";

/// How long each request's JWT is good for: one request, sent at once.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The text-to-speech languages Vonage's `talk` action takes (its
/// "Text-to-Speech" guide; vonage-python-sdk's `TtsLanguageCode`). A
/// language otpd asks for in a region without a voice here is read in the
/// language's usual voice.
const LANGUAGES: &[&str] = &[
    "ar",
    "ca-ES",
    "cmn-CN",
    "cmn-TW",
    "cs-CZ",
    "cy-GB",
    "da-DK",
    "de-DE",
    "el-GR",
    "en-AU",
    "en-GB",
    "en-GB-WLS",
    "en-IN",
    "en-US",
    "en-ZA",
    "es-ES",
    "es-MX",
    "es-US",
    "eu-ES",
    "fi-FI",
    "fil-PH",
    "fr-CA",
    "fr-FR",
    "he-IL",
    "hi-IN",
    "hu-HU",
    "id-ID",
    "is-IS",
    "it-IT",
    "ja-JP",
    "ko-KR",
    "nb-NO",
    "nl-NL",
    "no-NO",
    "pl-PL",
    "pt-BR",
    "pt-PT",
    "ro-RO",
    "ru-RU",
    "sk-SK",
    "sv-SE",
    "th-TH",
    "tr-TR",
    "uk-UA",
    "vi-VN",
    "yue-CN",
];

pub struct VonageVoice {
    endpoint: String,
    application: Application,
    event_url: Option<String>,
    http: Client,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

/// What the JWT of each request claims (Vonage's "Authentication" guide:
/// the application, when it was made, a unique id, and a short expiry).
#[derive(Serialize)]
struct Claims<'a> {
    application_id: &'a str,
    iat: u64,
    jti: String,
    exp: u64,
}

/// Vonage's answer to a call it placed (201), or the fields of its
/// problem+json refusal (RFC 7807, with `invalid_parameters`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Reply {
    uuid: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    detail: Option<String>,
    invalid_parameters: Vec<InvalidParameter>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InvalidParameter {
    name: String,
    reason: String,
}

/// The application, its key and the calling number, checked for a caller.
pub struct Application {
    application_id: String,
    /// Parsed once, at start.
    key: EncodingKey,
    /// The calling number, digits only, as Vonage writes numbers.
    from: String,
}

impl Application {
    /// Checks, at start, the application and its key (by signing a token
    /// with it, so a key that reads as PEM but not as RSA is refused too),
    /// and that `from` is a number.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad setting.
    pub fn check(settings: &VonageVoiceConfig, from: &str) -> Result<Self, ConfigError> {
        if settings.application_id.trim().is_empty() {
            return Err(ConfigError::new(
                "voice.vonage.application_id",
                "is required: the Vonage application that places the calls",
            ));
        }
        let bad_key = || {
            ConfigError::new(
                "voice.vonage.private_key",
                "must be the application's RSA private key, PEM (\"-----BEGIN PRIVATE KEY-----\" ...)",
            )
        };
        let key =
            EncodingKey::from_rsa_pem(settings.private_key.expose().as_bytes()).map_err(|_| bad_key())?;
        let application = Self {
            application_id: settings.application_id.trim().to_owned(),
            key,
            from: digits(from).ok_or_else(|| {
                ConfigError::new(
                    "voice.from",
                    "is required: a number of the Vonage account to call from, in E.164 (empty: \
                     sms.vonage.from, which must then be a number)",
                )
            })?,
        };
        application.token(unix_now()).map_err(|_| bad_key())?;
        Ok(application)
    }

    /// A fresh JWT for one request.
    fn token(&self, now: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            application_id: &self.application_id,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            exp: now + TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
    }
}

/// `+14155550100` or `14155550100` as Vonage writes it: 7 to 15 digits,
/// no `+`, not starting with 0.
fn digits(number: &str) -> Option<String> {
    let number = number.trim().trim_start_matches('+');
    ((7..=15).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0'))
    .then(|| number.to_owned())
}

impl VonageVoice {
    /// `callback`: `http.public_url`, when Vonage should report each call.
    pub fn new(
        settings: &VonageVoiceConfig,
        application: Application,
        callback: Option<&str>,
        http: Client,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            endpoint: format!("{}/v1/calls", settings.base_url.trim_end_matches('/')),
            application,
            event_url: callback.map(|base| format!("{base}{CALLBACK_PATH}")),
            http,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<String, AttemptError> {
        // A token per try: each has its own `jti` and a fresh `iat`.
        let token = self
            .application
            .token(unix_now())
            .map_err(|e| AttemptError::Permanent(format!("the request's JWT could not be signed: {e}")))?;
        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let reply: Reply = response
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice(&body).ok())
            .unwrap_or_default();
        if status.is_success() {
            return reply
                .uuid
                .ok_or_else(|| AttemptError::Permanent(format!("{status} without a uuid")));
        }
        Err(refusal(status, reply))
    }

    /// The request's body: the callee, the calling number, the NCCO, and
    /// where its events go.
    fn body(&self, to: &Phone, speech: &Speech) -> serde_json::Value {
        let mut body = json!({
            "to": [{"type": "phone", "number": to.as_str().trim_start_matches('+')}],
            "from": {"type": "phone", "number": self.application.from},
            "ncco": ncco(speech),
        });
        if let Some(url) = &self.event_url {
            body["event_url"] = json!([url]);
            body["event_method"] = json!("POST");
        }
        body
    }
}

/// One `talk` action in a language Vonage has a voice for. Standard
/// voices (no `premium`) and the language's first style: a code needs
/// clarity, not a choice of voice.
fn ncco(speech: &Speech) -> serde_json::Value {
    let language = if LANGUAGES.contains(&speech.language()) {
        speech.language()
    } else {
        speech.usual_language()
    };
    json!([{"action": "talk", "text": speech.expose(), "language": language}])
}

/// What a refusal means. Vonage's problem+json names a bad callee in
/// `invalid_parameters` (`to`, `to[0].number`): that number can't be
/// called, whatever the tries. Bad credentials (401) and a forbidden
/// account or number (403) won't pass either; 429 and 5xx may.
fn refusal(status: StatusCode, reply: Reply) -> AttemptError {
    let callee = reply
        .invalid_parameters
        .iter()
        .find(|p| p.name == "to" || p.name.starts_with("to[") || p.name.starts_with("to."));
    let invalid = status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY;
    if let (true, Some(bad)) = (invalid, callee) {
        let code = reply
            .kind
            .as_deref()
            .and_then(|t| t.rsplit_once('#'))
            .map_or_else(|| status.as_str().to_owned(), |(_, code)| code.to_owned());
        return AttemptError::Rejected {
            vendor_code: code,
            message: format!("{}: {}", bad.name, bad.reason),
        };
    }
    let text = [reply.title, reply.detail]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    let text = if text.is_empty() {
        "no error text".to_owned()
    } else {
        text
    };
    status_error(status, &text)
}

/// The state a call event's `status` names: a call answered and ended is
/// the code heard; busy, unanswered, timed out and rejected calls reached
/// no one; `machine` (voicemail answered, with machine detection) and the
/// rest are not tracked.
pub fn call_state(status: &str) -> Option<DeliveryState> {
    Some(match status {
        "started" => DeliveryState::Queued,
        "ringing" | "answered" => DeliveryState::Sent,
        "completed" => DeliveryState::Delivered,
        "busy" | "timeout" | "unanswered" | "rejected" => DeliveryState::Undelivered,
        "failed" | "cancelled" => DeliveryState::Failed,
        _ => return None,
    })
}

#[async_trait]
impl VoiceCaller for VonageVoice {
    async fn call(&self, to: &Phone, speech: &Speech, _local_id: &str) -> Result<SmsReceipt, SmsError> {
        let body = self.body(to, speech);
        let tracked = self.event_url.is_some();
        send_with_retries(Vonage::NAME, to, &self.policy, tracked, &self.metrics, || {
            self.attempt(&body)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, Locale};

    #[test]
    fn the_ncco_says_the_words_in_a_language_vonage_has() {
        let code = Code::parse("123456").unwrap();
        let speech = Speech::of(&code, Some(&Locale::parse("en-GB").unwrap()));
        assert_eq!(ncco(&speech)[0]["language"], "en-GB");
        assert_eq!(ncco(&speech)[0]["action"], "talk");
        assert_eq!(ncco(&speech)[0]["text"], speech.expose());
        // No voice for New Zealand: English's usual one.
        let speech = Speech::of(&code, Some(&Locale::parse("en-NZ").unwrap()));
        assert_eq!(ncco(&speech)[0]["language"], "en-US");
    }

    #[test]
    fn numbers_are_written_without_plus_and_only_numbers_pass() {
        assert_eq!(digits("+14155550100").as_deref(), Some("14155550100"));
        assert_eq!(digits("447700900000").as_deref(), Some("447700900000"));
        assert_eq!(digits("ACMEOT"), None);
        assert_eq!(digits(""), None);
        assert_eq!(digits("+0123456789"), None);
    }

    #[test]
    fn refusals_name_a_bad_callee_and_retry_only_what_may_pass() {
        let reply = |body: serde_json::Value| serde_json::from_value::<Reply>(body).unwrap();
        let bad_to = json!({
            "type": "https://developer.nexmo.com/api-errors#invalid-params",
            "title": "Bad Request",
            "invalid_parameters": [{"name": "to[0].number", "reason": "is not a valid number"}],
        });
        assert!(matches!(
            refusal(StatusCode::BAD_REQUEST, reply(bad_to)),
            AttemptError::Rejected { vendor_code, .. } if vendor_code == "invalid-params"
        ));
        let unauthorized =
            json!({"type": "https://developer.nexmo.com/api-errors#unauthorized", "title": "Invalid Token"});
        assert!(matches!(
            refusal(StatusCode::UNAUTHORIZED, reply(unauthorized)),
            AttemptError::Permanent(_)
        ));
        assert!(matches!(
            refusal(StatusCode::FORBIDDEN, Reply::default()),
            AttemptError::Permanent(_)
        ));
        assert!(matches!(
            refusal(StatusCode::TOO_MANY_REQUESTS, Reply::default()),
            AttemptError::Transient(..)
        ));
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, Reply::default()),
            AttemptError::Transient(..)
        ));
    }

    #[test]
    fn events_map_to_states_in_the_order_a_call_unfolds() {
        assert_eq!(call_state("started"), Some(DeliveryState::Queued));
        assert_eq!(call_state("ringing"), Some(DeliveryState::Sent));
        assert_eq!(call_state("answered"), Some(DeliveryState::Sent));
        assert_eq!(call_state("completed"), Some(DeliveryState::Delivered));
        for reached_no_one in ["busy", "timeout", "unanswered", "rejected"] {
            assert_eq!(call_state(reached_no_one), Some(DeliveryState::Undelivered));
        }
        assert_eq!(call_state("failed"), Some(DeliveryState::Failed));
        assert_eq!(call_state("cancelled"), Some(DeliveryState::Failed));
        assert_eq!(call_state("machine"), None);
    }
}
