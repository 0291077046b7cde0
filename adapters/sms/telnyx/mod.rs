//! Telnyx: its Messaging API v2 (`POST {base}/v2/messages`, JSON, a bearer
//! API key), as in developers.telnyx.com's "Send a message" reference and
//! its error-code pages; its delivery webhooks, signed with Ed25519
//! (`signature.rs`).

mod signature;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::retry::AttemptError;
use super::signing::RAW_BODY;
use super::vendor::{header, required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, Secret, TelnyxConfig};
use crate::domain::{DeliveryState, Phone, SmsText};

/// Error codes that mean the number itself can't be texted: an invalid phone
/// number (10002), an invalid `to` address (40310).
const NUMBER_REJECTED: &[&str] = &["10002", "40310"];

#[derive(Debug)]
pub struct Telnyx {
    endpoint: String,
    api_key: Secret,
    from: String,
    messaging_profile_id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Reply {
    data: Option<Data>,
    errors: Vec<ApiError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Data {
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiError {
    code: String,
    title: String,
    detail: Option<String>,
}

impl Vendor for Telnyx {
    const NAME: &'static str = "telnyx";
    const TITLE: &'static str = "Telnyx";
    const ID_FIELD: &'static str = "data.id";
    /// Fields of the flattened `message.sent` / `message.finalized` event:
    /// `data.payload.id`, the first `to[].status`, the first `errors[].code`.
    const REPORT: ReportFields = ReportFields {
        message_id: "id",
        status: "status",
        error_code: "error_code",
    };

    type Settings = TelnyxConfig;
    type Reply = Reply;

    fn check(telnyx: &TelnyxConfig) -> Result<(), ConfigError> {
        required("sms.telnyx.api_key", telnyx.api_key.expose())?;
        if telnyx.messaging_profile_id.is_empty() {
            required("sms.telnyx.from", &telnyx.from)?;
        }
        if !telnyx.public_key.is_empty() && !signature::is_public_key(telnyx.public_key.expose()) {
            return Err(ConfigError::new(
                "sms.telnyx.public_key",
                "must be the base64 Ed25519 public key from the Telnyx portal",
            ));
        }
        Ok(())
    }

    fn new(config: &TelnyxConfig) -> Self {
        Self {
            endpoint: format!("{}/v2/messages", config.base_url.trim_end_matches('/')),
            api_key: config.api_key.clone(),
            from: config.from.clone(),
            messaging_profile_id: config.messaging_profile_id.clone(),
        }
    }

    fn set_sender(config: &mut TelnyxConfig, sender: &str) {
        config.from = sender.to_owned();
    }

    fn report_key(config: &TelnyxConfig) -> Option<(&'static str, ReportKey)> {
        Some(("sms.telnyx.public_key", ReportKey::new(&config.public_key)))
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        _local_id: &str,
        callback: Option<&str>,
    ) -> RequestBuilder {
        let mut body = json!({"to": to.as_str(), "text": text.as_str()});
        // An alphanumeric sender needs the profile; a number may go without.
        if !self.from.is_empty() {
            body["from"] = json!(self.from);
        }
        if !self.messaging_profile_id.is_empty() {
            body["messaging_profile_id"] = json!(self.messaging_profile_id);
        }
        if let Some(url) = callback {
            body["webhook_url"] = json!(url);
            body["use_profile_webhooks"] = json!(false);
        }
        http.post(&self.endpoint)
            .bearer_auth(self.api_key.expose())
            .json(&body)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        reply.data.as_ref()?.id.clone()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        let Some(error) = reply.errors.into_iter().next() else {
            return status_error(status, "no error in the answer");
        };
        let message = error.detail.unwrap_or(error.title);
        if NUMBER_REJECTED.contains(&error.code.as_str()) {
            return AttemptError::Rejected {
                vendor_code: error.code,
                message,
            };
        }
        status_error(status, &format!("{}: {message}", error.code))
    }

    /// A recipient's `status` in Telnyx's message events.
    fn delivery_state(status: &str) -> Option<DeliveryState> {
        Some(match status {
            "queued" => DeliveryState::Queued,
            "sending" | "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "delivery_unconfirmed" | "delivery_failed" => DeliveryState::Undelivered,
            "sending_failed" => DeliveryState::Failed,
            _ => return None,
        })
    }

    /// `params` hold the raw body under [`RAW_BODY`].
    fn report_signed(key: &ReportKey, _url: &str, params: &[(String, String)], headers: &HeaderMap) -> bool {
        let body = params
            .iter()
            .find(|(k, _)| k == RAW_BODY)
            .map_or("", |(_, v)| v.as_str());
        signature::verified(
            key.secret.expose(),
            header(headers, "telnyx-signature-ed25519").unwrap_or_default(),
            header(headers, "telnyx-timestamp").unwrap_or_default(),
            body.as_bytes(),
            super::signing::unix_now(),
        )
    }
}
