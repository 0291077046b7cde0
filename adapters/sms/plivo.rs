//! Plivo's Message API: `POST {base}/v1/Account/{auth_id}/Message/`, JSON,
//! HTTP Basic with the auth id and token.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::retry::{send_with_retries, AttemptError, RetryPolicy};
use super::{transport_error, vendor_status_error};
use crate::adapters::metrics::Metrics;
use crate::config::PlivoConfig;
use crate::config::Secret;
use crate::domain::{DeliveryState, Phone, SmsReceipt, SmsText};
use crate::ports::{SmsError, SmsSender};

pub const NAME: &str = "plivo";

#[derive(Debug)]
pub struct PlivoSender {
    http: reqwest::Client,
    endpoint: String,
    auth_id: String,
    auth_token: Secret,
    src: String,
    status_callback: Option<String>,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize, Default)]
struct Reply {
    #[serde(default)]
    message_uuid: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

impl PlivoSender {
    pub fn new(
        config: &PlivoConfig,
        http: reqwest::Client,
        policy: RetryPolicy,
        status_callback: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            endpoint: format!(
                "{}/v1/Account/{}/Message/",
                config.base_url.trim_end_matches('/'),
                config.auth_id
            ),
            auth_id: config.auth_id.clone(),
            auth_token: config.auth_token.clone(),
            src: config.src.clone(),
            status_callback,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, to: &Phone, text: &SmsText) -> Result<String, AttemptError> {
        let mut body = json!({
            "src": self.src,
            "dst": to.as_str().trim_start_matches('+'),
            "text": text.as_str(),
        });
        if let Some(url) = &self.status_callback {
            body["url"] = json!(url);
            body["method"] = json!("POST");
        }
        let response = self
            .http
            .post(&self.endpoint)
            .basic_auth(&self.auth_id, Some(self.auth_token.expose()))
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let reply: Reply = response.json().await.unwrap_or_default();
        if status.is_success() {
            return reply
                .message_uuid
                .into_iter()
                .next()
                .ok_or_else(|| AttemptError::Permanent(format!("{status} without a message_uuid")));
        }
        let error = reply.error.unwrap_or_else(|| "no error text".into());
        // Plivo names the parameter it refuses; a refused `dst` is the number.
        if status.as_u16() == 400 && error.to_ascii_lowercase().contains("dst") {
            return Err(AttemptError::Rejected {
                vendor_code: status.as_u16().to_string(),
                message: error,
            });
        }
        Err(vendor_status_error(status, &error))
    }
}

#[async_trait]
impl SmsSender for PlivoSender {
    async fn send(&self, to: &Phone, text: &SmsText, _local_id: &str) -> Result<SmsReceipt, SmsError> {
        let tracked = self.status_callback.is_some();
        send_with_retries(NAME, &self.policy, tracked, &self.metrics, || {
            self.attempt(to, text)
        })
        .await
    }
}

/// The state a Plivo status callback's `Status` names.
pub fn delivery_state(status: &str) -> Option<DeliveryState> {
    Some(match status {
        "queued" => DeliveryState::Queued,
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "undelivered" => DeliveryState::Undelivered,
        "failed" | "rejected" => DeliveryState::Failed,
        _ => return None,
    })
}
