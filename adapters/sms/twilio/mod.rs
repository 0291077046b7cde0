//! Twilio: its Messages API (`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded, HTTP Basic with the account SID and auth token or an API
//! key), its status callbacks and their signature.

mod signature;
pub mod voice;
pub mod whatsapp;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;

use super::retry::AttemptError;
use super::vendor::{header, required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, Secret, TwilioConfig};
use crate::domain::{DeliveryState, Phone, SmsText};

/// Error codes that mean the number itself can't be texted: invalid (21211),
/// region not enabled (21408), unsubscribed (21610), unreachable (21612), not
/// a mobile number (21614).
const NUMBER_REJECTED: &[i64] = &[21211, 21408, 21610, 21612, 21614];

#[derive(Debug)]
pub struct Twilio {
    endpoint: String,
    username: String,
    password: Secret,
    sender: Sender,
}

#[derive(Debug)]
enum Sender {
    From(String),
    MessagingService(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Reply {
    sid: Option<String>,
    code: Option<i64>,
    message: Option<String>,
}

impl Twilio {
    /// `request` signed in as the account (or its API key).
    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        request.basic_auth(&self.username, Some(self.password.expose()))
    }

    /// Posts `form` to `endpoint` as the account and reads the answer's
    /// `sid`: how a call and a WhatsApp message are placed alike.
    ///
    /// # Errors
    /// An [`AttemptError`] by [`Twilio::refusal_of`] with `rejected`.
    async fn post_for_sid(
        &self,
        http: &Client,
        endpoint: &str,
        form: &[(&str, &str)],
        rejected: &[i64],
    ) -> Result<String, AttemptError> {
        let response = self
            .authorized(http.post(endpoint))
            .form(form)
            .send()
            .await
            .map_err(super::retry::transport_error)?;
        let status = response.status();
        let reply = response
            .bytes()
            .await
            .map(|body| Self::parse_reply(&body))
            .unwrap_or_default();
        if status.is_success() {
            return reply
                .sid
                .ok_or_else(|| AttemptError::Permanent(format!("{status} without a sid")));
        }
        Err(self.refusal_of(status, reply, rejected))
    }

    /// What an error answer means, where `rejected` are the codes that
    /// refuse the number itself (a message's differ from a call's).
    fn refusal_of(&self, status: StatusCode, reply: Reply, rejected: &[i64]) -> AttemptError {
        let message = reply.message.unwrap_or_else(|| "no error message".into());
        match reply.code {
            Some(code) if rejected.contains(&code) => AttemptError::Rejected {
                vendor_code: code.to_string(),
                message,
            },
            Some(code) => status_error(status, &format!("{code}: {message}")),
            None => status_error(status, &message),
        }
    }
}

impl Vendor for Twilio {
    const NAME: &'static str = "twilio";
    const TITLE: &'static str = "Twilio";
    const ID_FIELD: &'static str = "sid";
    const REPORT: ReportFields = ReportFields {
        message_id: "MessageSid",
        status: "MessageStatus",
        error_code: "ErrorCode",
    };

    type Settings = TwilioConfig;
    type Reply = Reply;

    fn check(twilio: &TwilioConfig) -> Result<(), ConfigError> {
        required("sms.twilio.account_sid", &twilio.account_sid)?;
        if twilio.api_key_sid.is_empty() {
            required("sms.twilio.auth_token", twilio.auth_token.expose())?;
        } else {
            required("sms.twilio.api_key_secret", twilio.api_key_secret.expose())?;
        }
        if twilio.messaging_service_sid.is_empty() {
            required("sms.twilio.from", &twilio.from)?;
        }
        Ok(())
    }

    fn new(config: &TwilioConfig) -> Self {
        // An API key signs in as itself; the account still names the path.
        let (username, password) = if config.api_key_sid.is_empty() {
            (config.account_sid.clone(), config.auth_token.clone())
        } else {
            (config.api_key_sid.clone(), config.api_key_secret.clone())
        };
        // A Messaging Service picks the sender itself, so it wins when both are set.
        let sender = if config.messaging_service_sid.is_empty() {
            Sender::From(config.from.clone())
        } else {
            Sender::MessagingService(config.messaging_service_sid.clone())
        };
        Self {
            endpoint: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                config.base_url.trim_end_matches('/'),
                config.account_sid
            ),
            username,
            password,
            sender,
        }
    }

    /// A route's sender is a number or sender id: it replaces the Messaging
    /// Service, which would pick its own.
    fn set_sender(config: &mut TwilioConfig, sender: &str) {
        config.from = sender.to_owned();
        config.messaging_service_sid.clear();
    }

    /// Reports are signed with the auth token even when an API key sends.
    fn report_key(config: &TwilioConfig) -> Option<(&'static str, ReportKey)> {
        Some(("sms.twilio.auth_token", ReportKey::new(&config.auth_token)))
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        _local_id: &str,
        callback: Option<&str>,
    ) -> RequestBuilder {
        let mut form = vec![("To", to.as_str()), ("Body", text.as_str())];
        form.push(match &self.sender {
            Sender::From(from) => ("From", from.as_str()),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        });
        if let Some(url) = callback {
            form.push(("StatusCallback", url));
        }
        self.authorized(http.post(&self.endpoint)).form(&form)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        reply.sid.clone()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        self.refusal_of(status, reply, NUMBER_REJECTED)
    }

    fn delivery_state(status: &str) -> Option<DeliveryState> {
        Some(match status {
            "accepted" | "scheduled" | "queued" => DeliveryState::Queued,
            "sending" | "sent" => DeliveryState::Sent,
            "delivered" | "read" => DeliveryState::Delivered,
            "undelivered" => DeliveryState::Undelivered,
            "failed" | "canceled" => DeliveryState::Failed,
            _ => return None,
        })
    }

    fn report_signed(key: &ReportKey, url: &str, params: &[(String, String)], headers: &HeaderMap) -> bool {
        let given = header(headers, "x-twilio-signature").unwrap_or_default();
        signature::verified(key.secret.expose(), url, params, given)
    }
}
