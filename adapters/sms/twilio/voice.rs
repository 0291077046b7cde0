//! Twilio's Calls API: a call whose TwiML (`Twiml`, inline, so Twilio
//! fetches nothing from otpd) says the code, placed by the `sms.twilio`
//! account; its status callback, signed as the messages' are.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Client;

use super::Twilio;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::retry::{send_with_retries, AttemptError, RetryPolicy};
use crate::adapters::sms::xml::xml_escaped;
use crate::adapters::sms::Vendor;
use crate::config::{ConfigError, TwilioConfig};
use crate::domain::{DeliveryState, Phone, SmsReceipt, Speech};
use crate::ports::{SmsError, VoiceCaller};

/// Error codes that mean the number itself can't be called: invalid
/// (21211), unreachable (21214), a country the geo permissions don't allow
/// (21215), a high-risk number (21216), not a valid number (21217).
const NUMBER_REJECTED: &[i64] = &[21211, 21214, 21215, 21216, 21217];

/// The fields of a call's status callback.
pub const CALL_SID: &str = "CallSid";
pub const CALL_STATUS: &str = "CallStatus";

/// The path of the calls' status callbacks, below `http.public_url`.
pub const CALLBACK_PATH: &str = "/v1/webhooks/twilio/calls";

pub struct TwilioVoice {
    account: Twilio,
    endpoint: String,
    from: String,
    callback: Option<String>,
    http: Client,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

/// Checks, at start, that the account can call from `from`.
///
/// # Errors
/// A [`ConfigError`] naming the first missing setting.
pub fn check(settings: &TwilioConfig, from: &str) -> Result<(), ConfigError> {
    let mut account = settings.clone();
    account.from = from.to_owned();
    account.messaging_service_sid.clear();
    Twilio::check(&account).map_err(|e| match e.key.as_str() {
        "sms.twilio.from" => ConfigError::new("voice.from", "is required: the number Twilio calls from"),
        _ => e,
    })
}

impl TwilioVoice {
    /// `callback`: `http.public_url`, when Twilio should report each call.
    pub fn new(
        settings: &TwilioConfig,
        from: &str,
        callback: Option<&str>,
        http: Client,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            account: Twilio::new(settings),
            endpoint: format!(
                "{}/2010-04-01/Accounts/{}/Calls.json",
                settings.base_url.trim_end_matches('/'),
                settings.account_sid
            ),
            from: from.to_owned(),
            callback: callback.map(|base| format!("{base}{CALLBACK_PATH}")),
            http,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, to: &Phone, twiml: &str) -> Result<String, AttemptError> {
        let mut form = vec![("To", to.as_str()), ("From", &self.from), ("Twiml", twiml)];
        if let Some(url) = &self.callback {
            form.push(("StatusCallback", url));
        }
        self.account
            .post_for_sid(&self.http, &self.endpoint, &form, NUMBER_REJECTED)
            .await
    }
}

/// The TwiML that says `speech`: one `<Say>` in its language.
fn twiml(speech: &Speech) -> String {
    format!(
        "<Response><Say language=\"{}\">{}</Say></Response>",
        xml_escaped(speech.language()),
        xml_escaped(speech.expose())
    )
}

/// The state a call's status names: a call answered and ended is the code
/// heard; busy and unanswered calls reached no one.
pub fn call_state(status: &str) -> Option<DeliveryState> {
    Some(match status {
        "queued" | "initiated" => DeliveryState::Queued,
        "ringing" | "in-progress" => DeliveryState::Sent,
        "completed" => DeliveryState::Delivered,
        "busy" | "no-answer" => DeliveryState::Undelivered,
        "failed" | "canceled" => DeliveryState::Failed,
        _ => return None,
    })
}

#[async_trait]
impl VoiceCaller for TwilioVoice {
    async fn call(&self, to: &Phone, speech: &Speech, _local_id: &str) -> Result<SmsReceipt, SmsError> {
        let twiml = twiml(speech);
        let tracked = self.callback.is_some();
        send_with_retries(Twilio::NAME, to, &self.policy, tracked, &self.metrics, || {
            self.attempt(to, &twiml)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, Locale};

    #[test]
    fn the_twiml_says_the_words_in_their_language_escaped() {
        let code = Code::parse("123456").unwrap();
        let speech = Speech::of(&code, Some(&Locale::parse("fr").unwrap()));
        assert_eq!(
            twiml(&speech),
            "<Response><Say language=\"fr-FR\">Votre code de vérification est: 1. 2. 3. 4. 5. 6. \
             Je répète, votre code est: 1. 2. 3. 4. 5. 6.</Say></Response>"
        );
    }

    #[test]
    fn statuses_map_to_states_in_the_order_a_call_unfolds() {
        assert_eq!(call_state("initiated"), Some(DeliveryState::Queued));
        assert_eq!(call_state("ringing"), Some(DeliveryState::Sent));
        assert_eq!(call_state("completed"), Some(DeliveryState::Delivered));
        assert_eq!(call_state("no-answer"), Some(DeliveryState::Undelivered));
        assert_eq!(call_state("busy"), Some(DeliveryState::Undelivered));
        assert_eq!(call_state("canceled"), Some(DeliveryState::Failed));
        assert_eq!(call_state("answered"), None);
    }
}
