//! Sinch: its SMS REST API, `POST {base}/xms/v1/{service_plan_id}/batches`
//! (JSON, a bearer API token), as in developers.sinch.com's "Batches: Send"
//! reference and its HTTP status codes page. otpd takes no Sinch reports.

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::retry::AttemptError;
use super::vendor::{required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, Secret, SinchConfig};
use crate::domain::{DeliveryState, Phone, SmsText};

#[derive(Debug)]
pub struct Sinch {
    endpoint: String,
    api_token: Secret,
    from: String,
}

/// A batch (`id`), or an error (`code`, `text`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Reply {
    id: Option<String>,
    code: Option<String>,
    text: Option<String>,
}

impl Vendor for Sinch {
    const NAME: &'static str = "sinch";
    const TITLE: &'static str = "Sinch";
    const ID_FIELD: &'static str = "id";
    const REPORT: ReportFields = ReportFields {
        message_id: "batch_id",
        status: "status",
        error_code: "code",
    };

    type Settings = SinchConfig;
    type Reply = Reply;

    fn check(sinch: &SinchConfig) -> Result<(), ConfigError> {
        required("sms.sinch.service_plan_id", &sinch.service_plan_id)?;
        required("sms.sinch.api_token", sinch.api_token.expose())?;
        required("sms.sinch.from", &sinch.from)
    }

    fn new(config: &SinchConfig) -> Self {
        Self {
            endpoint: format!(
                "{}/xms/v1/{}/batches",
                config.base_url.trim_end_matches('/'),
                config.service_plan_id
            ),
            api_token: config.api_token.clone(),
            from: config.from.clone(),
        }
    }

    fn set_sender(config: &mut SinchConfig, sender: &str) {
        config.from = sender.to_owned();
    }

    fn report_key(_: &SinchConfig) -> Option<(&'static str, ReportKey)> {
        None
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        local_id: &str,
        _callback: Option<&str>,
    ) -> RequestBuilder {
        let body = json!({
            "from": self.from,
            "to": [to.as_str()],
            "body": text.as_str(),
            "client_reference": local_id,
        });
        http.post(&self.endpoint)
            .bearer_auth(self.api_token.expose())
            .json(&body)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        reply.id.clone()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        let code = reply.code.unwrap_or_else(|| "no code".into());
        let text = reply.text.unwrap_or_else(|| "no error text".into());
        // Sinch names the parameter it refuses in the text; a refused `to`
        // (a recipient) is the number.
        let about_recipient = {
            let lower = text.to_ascii_lowercase();
            lower.contains("recipient")
                || lower.contains("to:")
                || lower.contains("'to'")
                || lower.contains("msisdn")
        };
        if status.as_u16() == 400 && code == "syntax_invalid_parameter_format" && about_recipient {
            return AttemptError::Rejected {
                vendor_code: code,
                message: text,
            };
        }
        status_error(status, &format!("{code}: {text}"))
    }

    fn delivery_state(_: &str) -> Option<DeliveryState> {
        None
    }

    fn report_signed(_: &ReportKey, _: &str, _: &[(String, String)], _: &HeaderMap) -> bool {
        false
    }
}
