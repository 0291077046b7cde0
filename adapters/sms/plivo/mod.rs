//! Plivo: its Message API (`POST {base}/v1/Account/{auth_id}/Message/`,
//! JSON, HTTP Basic with the auth id and token, and for India the DLT ids as
//! `dlt_entity_id`, `dlt_template_id` and `dlt_template_category`), its
//! status callbacks and their V3 signature; and its voice calls (`voice`).

mod signature;
pub mod voice;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::dlt::Dlt;
use super::retry::AttemptError;
use super::vendor::{header, required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, PlivoConfig, Secret};
use crate::domain::{DeliveryState, Phone, SmsText};

#[derive(Debug)]
pub struct Plivo {
    endpoint: String,
    auth_id: String,
    auth_token: Secret,
    src: String,
    dlt: Option<Dlt>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Reply {
    message_uuid: Vec<String>,
    error: Option<String>,
}

impl Plivo {
    /// `request` with the account's HTTP Basic credentials.
    fn signed_in(&self, request: RequestBuilder) -> RequestBuilder {
        request.basic_auth(&self.auth_id, Some(self.auth_token.expose()))
    }

    /// `{base}/v1/Account/{auth_id}/`, below which each API of the account is.
    fn account_url(config: &PlivoConfig) -> String {
        format!(
            "{}/v1/Account/{}/",
            config.base_url.trim_end_matches('/'),
            config.auth_id
        )
    }
}

impl Vendor for Plivo {
    const NAME: &'static str = "plivo";
    const TITLE: &'static str = "Plivo";
    const ID_FIELD: &'static str = "message_uuid";
    const REPORT: ReportFields = ReportFields {
        message_id: "MessageUUID",
        status: "Status",
        error_code: "ErrorCode",
    };

    type Settings = PlivoConfig;
    type Reply = Reply;

    fn check(plivo: &PlivoConfig) -> Result<(), ConfigError> {
        required("sms.plivo.auth_id", &plivo.auth_id)?;
        required("sms.plivo.auth_token", plivo.auth_token.expose())?;
        required("sms.plivo.src", &plivo.src)
    }

    fn new(config: &PlivoConfig) -> Self {
        Self {
            endpoint: format!("{}Message/", Self::account_url(config)),
            auth_id: config.auth_id.clone(),
            auth_token: config.auth_token.clone(),
            src: config.src.clone(),
            dlt: None,
        }
    }

    fn set_sender(config: &mut PlivoConfig, sender: &str) {
        config.src = sender.to_owned();
    }

    fn set_dlt(&mut self, dlt: &Dlt) -> bool {
        self.dlt = Some(dlt.clone());
        true
    }

    fn report_key(config: &PlivoConfig) -> Option<(&'static str, ReportKey)> {
        Some(("sms.plivo.auth_token", ReportKey::new(&config.auth_token)))
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        _local_id: &str,
        callback: Option<&str>,
    ) -> RequestBuilder {
        let mut body = json!({
            "src": self.src,
            "dst": to.as_str().trim_start_matches('+'),
            "text": text.as_str(),
        });
        if let Some(url) = callback {
            body["url"] = json!(url);
            body["method"] = json!("POST");
        }
        if let Some(dlt) = &self.dlt {
            body["dlt_entity_id"] = json!(dlt.entity_id());
            body["dlt_template_id"] = json!(dlt.template_id());
            if let Some(category) = dlt.category() {
                body["dlt_template_category"] = json!(category.as_str());
            }
        }
        self.signed_in(http.post(&self.endpoint)).json(&body)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        reply.message_uuid.first().cloned()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        let error = reply.error.unwrap_or_else(|| "no error text".into());
        // Plivo names the parameter it refuses; a refused `dst` is the number.
        if status.as_u16() == 400 && error.to_ascii_lowercase().contains("dst") {
            return AttemptError::Rejected {
                vendor_code: status.as_u16().to_string(),
                message: error,
            };
        }
        status_error(status, &error)
    }

    fn delivery_state(status: &str) -> Option<DeliveryState> {
        Some(match status {
            "queued" => DeliveryState::Queued,
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "undelivered" => DeliveryState::Undelivered,
            "failed" | "rejected" => DeliveryState::Failed,
            _ => return None,
        })
    }

    fn report_signed(key: &ReportKey, url: &str, params: &[(String, String)], headers: &HeaderMap) -> bool {
        let signed = signature::Headers {
            v3: header(headers, "x-plivo-signature-v3"),
            v3_nonce: header(headers, "x-plivo-signature-v3-nonce"),
        };
        signature::verified(key.secret.expose(), url, params, signed)
    }
}
