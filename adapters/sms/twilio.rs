//! Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded, HTTP Basic with the account SID and auth token or an API key.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::retry::{send_with_retries, AttemptError, RetryPolicy};
use super::{transport_error, vendor_status_error};
use crate::adapters::metrics::Metrics;
use crate::config::{Secret, TwilioConfig};
use crate::domain::{DeliveryState, Phone, SmsReceipt, SmsText};
use crate::ports::{SmsError, SmsSender};

pub const NAME: &str = "twilio";

/// Error codes that mean the number itself can't be texted: invalid (21211),
/// region not enabled (21408), unsubscribed (21610), unreachable (21612), not
/// a mobile number (21614).
const NUMBER_REJECTED: &[i64] = &[21211, 21408, 21610, 21612, 21614];

#[derive(Debug)]
pub struct TwilioSender {
    http: reqwest::Client,
    endpoint: String,
    username: String,
    password: Secret,
    sender: Sender,
    status_callback: Option<String>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
enum Sender {
    From(String),
    MessagingService(String),
}

#[derive(Deserialize, Default)]
struct Reply {
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

impl TwilioSender {
    pub fn new(
        config: &TwilioConfig,
        http: reqwest::Client,
        policy: RetryPolicy,
        status_callback: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
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
            http,
            endpoint: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                config.base_url.trim_end_matches('/'),
                config.account_sid
            ),
            username,
            password,
            sender,
            status_callback,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, to: &Phone, text: &SmsText) -> Result<String, AttemptError> {
        let mut form = vec![("To", to.as_str()), ("Body", text.as_str())];
        form.push(match &self.sender {
            Sender::From(from) => ("From", from.as_str()),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        });
        if let Some(url) = &self.status_callback {
            form.push(("StatusCallback", url.as_str()));
        }
        let response = self
            .http
            .post(&self.endpoint)
            .basic_auth(&self.username, Some(self.password.expose()))
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let reply: Reply = response.json().await.unwrap_or_default();
        if status.is_success() {
            return reply
                .sid
                .ok_or_else(|| AttemptError::Permanent(format!("{status} without a sid")));
        }
        let message = reply.message.unwrap_or_else(|| "no error message".into());
        match reply.code {
            Some(code) if NUMBER_REJECTED.contains(&code) => Err(AttemptError::Rejected {
                vendor_code: code.to_string(),
                message,
            }),
            Some(code) => Err(vendor_status_error(status, &format!("{code}: {message}"))),
            None => Err(vendor_status_error(status, &message)),
        }
    }
}

#[async_trait]
impl SmsSender for TwilioSender {
    async fn send(&self, to: &Phone, text: &SmsText, _local_id: &str) -> Result<SmsReceipt, SmsError> {
        let tracked = self.status_callback.is_some();
        send_with_retries(NAME, &self.policy, tracked, &self.metrics, || {
            self.attempt(to, text)
        })
        .await
    }
}

/// The state a Twilio status callback's `MessageStatus` names.
pub fn delivery_state(status: &str) -> Option<DeliveryState> {
    Some(match status {
        "accepted" | "scheduled" | "queued" => DeliveryState::Queued,
        "sending" | "sent" => DeliveryState::Sent,
        "delivered" | "read" => DeliveryState::Delivered,
        "undelivered" => DeliveryState::Undelivered,
        "failed" | "canceled" => DeliveryState::Failed,
        _ => return None,
    })
}
