//! Plivo's Make a Call API (`POST {base}/v1/Account/{auth_id}/Call/`, JSON,
//! HTTP Basic), placed by the `sms.plivo` account. Plivo takes no inline
//! instructions: it fetches them from `answer_url` once the call is
//! answered, so that URL carries the words sealed ([`SpeechSeal`]) and otpd
//! answers it with Plivo XML. Its hangup callback reports how the call
//! ended, signed with V3 as the messages' reports are.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Plivo;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::retry::{send_with_retries, transport_error, AttemptError, RetryPolicy};
use crate::adapters::sms::sealed_speech::{OpenedSpeech, SpeechSeal};
use crate::adapters::sms::vendor::status_error;
use crate::adapters::sms::xml::xml_escaped;
use crate::adapters::sms::Vendor;
use crate::config::{ConfigError, PlivoConfig};
use crate::domain::{DeliveryState, Phone, SmsReceipt, Speech};
use crate::ports::{SmsError, VoiceCaller};

/// The fields of a hangup callback: the id the Call API answered with
/// (`request_uuid`; `CallUUID` names the call leg, unknown at send), how
/// the call ended and why.
pub const REQUEST_UUID: &str = "RequestUUID";
pub const CALL_STATUS: &str = "CallStatus";
pub const HANGUP_CAUSE: &str = "HangupCause";

/// The path of the hangup callbacks, below `http.public_url`.
pub const CALLBACK_PATH: &str = "/v1/webhooks/plivo/calls";
/// The path below `http.public_url` under which each call's sealed words
/// are fetched, as `{ANSWER_PATH}/{token}`.
pub const ANSWER_PATH: &str = "/v1/voice/plivo";

pub struct PlivoVoice {
    account: Plivo,
    endpoint: String,
    from: String,
    /// `http.public_url`: Plivo must reach otpd for the words.
    public_url: String,
    seal: Arc<SpeechSeal>,
    http: Client,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

/// The Call API's answer, success (201, `request_uuid`) or error (`error`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Reply {
    request_uuid: Option<String>,
    error: Option<String>,
}

/// Checks, at start, that the account can call from `from`.
///
/// # Errors
/// A [`ConfigError`] naming the first missing or unfit setting.
pub fn check(settings: &PlivoConfig, from: &str) -> Result<(), ConfigError> {
    let mut account = settings.clone();
    account.src = from.to_owned();
    Plivo::check(&account).map_err(|e| match e.key.as_str() {
        "sms.plivo.src" => ConfigError::new("voice.from", "is required: the number Plivo calls from"),
        _ => e,
    })?;
    // An alphanumeric sender id can text but not call.
    let digits = from.strip_prefix('+').unwrap_or(from);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::new(
            "voice.from",
            "must be a phone number Plivo can call from (or sms.plivo.src one, when voice.from is empty)",
        ));
    }
    Ok(())
}

impl PlivoVoice {
    pub fn new(
        settings: &PlivoConfig,
        from: &str,
        public_url: &str,
        seal: Arc<SpeechSeal>,
        http: Client,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            account: Plivo::new(settings),
            endpoint: format!("{}Call/", Plivo::account_url(settings)),
            from: from.trim_start_matches('+').to_owned(),
            public_url: public_url.to_owned(),
            seal,
            http,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, to: &Phone, answer_url: &str) -> Result<String, AttemptError> {
        let body = json!({
            "from": self.from,
            "to": to.as_str().trim_start_matches('+'),
            "answer_url": answer_url,
            "answer_method": "POST",
            "hangup_url": format!("{}{CALLBACK_PATH}", self.public_url),
            "hangup_method": "POST",
        });
        let response = self
            .account
            .signed_in(self.http.post(&self.endpoint))
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let reply: Reply = response
            .bytes()
            .await
            .map(|body| serde_json::from_slice(&body).unwrap_or_default())
            .unwrap_or_default();
        if status.is_success() {
            return reply
                .request_uuid
                .ok_or_else(|| AttemptError::Permanent(format!("{status} without a request_uuid")));
        }
        Err(refusal(
            status,
            reply.error.unwrap_or_else(|| "no error text".into()),
        ))
    }
}

/// What a refused call means. Plivo answers a bad parameter with 400 and an
/// error text naming it, and no code; a refused `to` is the number itself.
fn refusal(status: StatusCode, error: String) -> AttemptError {
    let lower = error.to_ascii_lowercase();
    let names_to = [
        "'to'",
        "\"to\"",
        "to number",
        "to parameter",
        "invalid to",
        "destination",
    ]
    .iter()
    .any(|mark| lower.contains(mark));
    if status == StatusCode::BAD_REQUEST && names_to {
        return AttemptError::Rejected {
            vendor_code: status.as_u16().to_string(),
            message: error,
        };
    }
    status_error(status, &error)
}

/// The Plivo XML that says the opened words: one `<Speak>` in their
/// language.
pub fn answer_xml(speech: &OpenedSpeech) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Response><Speak language=\"{}\">{}</Speak></Response>",
        xml_escaped(speech.language()),
        xml_escaped(speech.expose())
    )
}

/// The state a hangup's `CallStatus` names. The hangup callback comes once,
/// when the call has ended: answered and ended is the code heard; busy,
/// unanswered and timed-out calls reached no one; `cancel` is a call
/// ended before it was answered.
pub fn call_state(status: &str) -> Option<DeliveryState> {
    Some(match status {
        "ringing" | "in-progress" => DeliveryState::Sent,
        "completed" => DeliveryState::Delivered,
        "busy" | "no-answer" | "timeout" => DeliveryState::Undelivered,
        "failed" | "cancel" => DeliveryState::Failed,
        _ => return None,
    })
}

#[async_trait]
impl VoiceCaller for PlivoVoice {
    async fn call(&self, to: &Phone, speech: &Speech, _local_id: &str) -> Result<SmsReceipt, SmsError> {
        let token = self
            .seal
            .seal(speech, SystemTime::now())
            .map_err(|e| SmsError::Failed {
                provider: Plivo::NAME.to_owned(),
                reason: e.to_string(),
                maybe_sent: false,
                cause: None,
            })?;
        let answer_url = format!("{}{ANSWER_PATH}/{token}", self.public_url);
        send_with_retries(Plivo::NAME, to, &self.policy, true, &self.metrics, || {
            self.attempt(to, &answer_url)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, Locale};

    #[test]
    fn the_answer_says_the_words_in_their_language_escaped() {
        let seal = SpeechSeal::random(std::time::Duration::from_secs(60));
        let code = Code::parse("123456").unwrap();
        let speech = Speech::of(&code, Some(&Locale::parse("de").unwrap()));
        let now = SystemTime::now();
        let opened = seal.open(&seal.seal(&speech, now).unwrap(), now).unwrap();
        assert_eq!(
            answer_xml(&opened),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Speak language=\"de-DE\">\
             Ihr Bestätigungscode lautet: 1. 2. 3. 4. 5. 6. Noch einmal, Ihr Code lautet: 1. 2. \
             3. 4. 5. 6.</Speak></Response>"
        );
    }

    #[test]
    fn a_refused_to_is_the_number_and_the_rest_is_by_status() {
        let rejected =
            |status, text: &str| matches!(refusal(status, text.into()), AttemptError::Rejected { .. });
        assert!(rejected(StatusCode::BAD_REQUEST, "invalid 'to' parameter"));
        assert!(rejected(
            StatusCode::BAD_REQUEST,
            "Destination number not allowed"
        ));
        assert!(!rejected(StatusCode::BAD_REQUEST, "invalid answer_url"));
        assert!(!rejected(StatusCode::UNAUTHORIZED, "destination"));
        assert!(matches!(
            refusal(StatusCode::SERVICE_UNAVAILABLE, "busy".into()),
            AttemptError::Transient(..)
        ));
        assert!(matches!(
            refusal(StatusCode::TOO_MANY_REQUESTS, "slow down".into()),
            AttemptError::Transient(..)
        ));
        assert!(matches!(
            refusal(StatusCode::FORBIDDEN, "geo permissions".into()),
            AttemptError::Permanent(_)
        ));
    }

    #[test]
    fn hangup_statuses_map_to_states() {
        assert_eq!(call_state("completed"), Some(DeliveryState::Delivered));
        assert_eq!(call_state("busy"), Some(DeliveryState::Undelivered));
        assert_eq!(call_state("no-answer"), Some(DeliveryState::Undelivered));
        assert_eq!(call_state("timeout"), Some(DeliveryState::Undelivered));
        assert_eq!(call_state("failed"), Some(DeliveryState::Failed));
        assert_eq!(call_state("cancel"), Some(DeliveryState::Failed));
        assert_eq!(call_state("answered"), None);
    }

    #[test]
    fn a_calling_number_is_required_and_must_be_one() {
        let settings = PlivoConfig {
            auth_id: "MAXXXXXXXXXXXXXXXXXX".into(),
            auth_token: crate::config::Secret::new("token"),
            ..PlivoConfig::default()
        };
        assert_eq!(check(&settings, "").unwrap_err().key, "voice.from");
        assert_eq!(check(&settings, "OTPD").unwrap_err().key, "voice.from");
        assert!(check(&settings, "+14155550100").is_ok());
    }
}
