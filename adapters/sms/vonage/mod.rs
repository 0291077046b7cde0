//! Vonage: its SMS API (`POST {base}/sms/json`, form-encoded, the API key
//! and secret in the body, and for India the DLT ids as `entity-id` and
//! `content-id`), as in developer.vonage.com's "SMS API" reference and its
//! "Troubleshooting SMS" table of `status` codes; and its signed delivery
//! receipts (`signature.rs`); calls through its Voice API (`voice.rs`) and
//! their signed events (`call_events.rs`).

pub mod call_events;
mod signature;
pub mod voice;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;

use super::dlt::Dlt;
use super::retry::AttemptError;
use super::vendor::{required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, Secret, VonageConfig};
use crate::domain::{DeliveryState, Phone, SmsText};

/// `status` values that mean the number itself can't be texted: invalid
/// message, an unrecognised number prefix (6), number barred (7), number
/// de-activated (33).
const NUMBER_REJECTED: &[&str] = &["6", "7", "33"];
/// Throttled (1) and internal error (5) may pass on another try.
const TRANSIENT: &[&str] = &["1", "5"];

#[derive(Debug)]
pub struct Vonage {
    endpoint: String,
    api_key: String,
    api_secret: Secret,
    from: String,
    dlt: Option<Dlt>,
}

/// Vonage answers 200 for every message, with a `status` per message.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Reply {
    messages: Vec<MessageReply>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MessageReply {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

impl Vendor for Vonage {
    const NAME: &'static str = "vonage";
    const TITLE: &'static str = "Vonage";
    const ID_FIELD: &'static str = "message-id";
    const REPORT: ReportFields = ReportFields {
        message_id: "messageId",
        status: "status",
        error_code: "err-code",
    };
    const ERRORS_IN_SUCCESS: bool = true;

    type Settings = VonageConfig;
    type Reply = Reply;

    fn check(vonage: &VonageConfig) -> Result<(), ConfigError> {
        required("sms.vonage.api_key", &vonage.api_key)?;
        required("sms.vonage.api_secret", vonage.api_secret.expose())?;
        required("sms.vonage.from", &vonage.from)
    }

    fn new(config: &VonageConfig) -> Self {
        Self {
            endpoint: format!("{}/sms/json", config.base_url.trim_end_matches('/')),
            api_key: config.api_key.clone(),
            api_secret: config.api_secret.clone(),
            from: config.from.clone(),
            dlt: None,
        }
    }

    fn set_sender(config: &mut VonageConfig, sender: &str) {
        config.from = sender.to_owned();
    }

    fn set_dlt(&mut self, dlt: &Dlt) -> bool {
        self.dlt = Some(dlt.clone());
        true
    }

    fn report_key(config: &VonageConfig) -> Option<(&'static str, ReportKey)> {
        let key = ReportKey {
            method: config.signature_method,
            ..ReportKey::new(&config.signature_secret)
        };
        Some(("sms.vonage.signature_secret", key))
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        local_id: &str,
        callback: Option<&str>,
    ) -> RequestBuilder {
        let mut form = vec![
            ("api_key", self.api_key.as_str()),
            ("api_secret", self.api_secret.expose()),
            ("from", self.from.as_str()),
            ("to", to.as_str().trim_start_matches('+')),
            ("text", text.as_str()),
            // Vonage's own reference for the message, echoed in its receipts.
            ("client-ref", local_id),
        ];
        // Text outside GSM-7 must be announced, or Vonage garbles it.
        if !text.is_gsm7() {
            form.push(("type", "unicode"));
        }
        if let Some(url) = callback {
            form.push(("status-report-req", "1"));
            form.push(("callback", url));
        }
        if let Some(dlt) = &self.dlt {
            form.push(("entity-id", dlt.entity_id()));
            form.push(("content-id", dlt.template_id()));
        }
        http.post(&self.endpoint).form(&form)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        let message = reply.messages.first()?;
        (message.status == "0")
            .then(|| message.message_id.clone())
            .flatten()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        let Some(message) = reply.messages.into_iter().next() else {
            return status_error(status, "no messages in the answer");
        };
        let text = message.error_text.unwrap_or_else(|| "no error text".into());
        if NUMBER_REJECTED.contains(&message.status.as_str()) {
            return AttemptError::Rejected {
                vendor_code: message.status,
                message: text,
            };
        }
        if status.is_success() {
            let reason = format!("status {}: {text}", message.status);
            return if TRANSIENT.contains(&message.status.as_str()) {
                AttemptError::Transient(reason, None)
            } else {
                AttemptError::Permanent(reason)
            };
        }
        status_error(status, &text)
    }

    /// The `status` of an SMS API delivery receipt.
    fn delivery_state(status: &str) -> Option<DeliveryState> {
        Some(match status {
            "accepted" | "buffered" => DeliveryState::Queued,
            "delivered" => DeliveryState::Delivered,
            "expired" | "unknown" => DeliveryState::Undelivered,
            "failed" | "rejected" => DeliveryState::Failed,
            _ => return None,
        })
    }

    fn report_signed(key: &ReportKey, _url: &str, params: &[(String, String)], _headers: &HeaderMap) -> bool {
        signature::verified(
            key.method,
            key.secret.expose(),
            params,
            super::signing::unix_now(),
        )
    }
}
