//! Infobip: its SMS API v3, `POST {base}/sms/3/messages` (JSON, `Authorization:
//! App <key>`, and for India the DLT ids in
//! `options.regional.indiaDlt`), as in infobip.com's "Send SMS message"
//! reference, its quickstart, and its status and error code pages. otpd takes no Infobip
//! reports (they are not signed).

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::dlt::Dlt;
use super::retry::{vendor_said, AttemptError};
use super::vendor::{required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, InfobipConfig, Secret};
use crate::domain::{DeliveryState, Phone, SmsText};

/// Statuses of the REJECTED group (5) that mean the number itself is
/// refused: a prefix Infobip can't place, a destination it won't reach.
const NUMBER_REJECTED: &[&str] = &[
    "REJECTED_PREFIX_MISSING",
    "REJECTED_DESTINATION",
    "REJECTED_NETWORK",
];

#[derive(Debug)]
pub struct Infobip {
    endpoint: String,
    api_key: Secret,
    sender: String,
    dlt: Option<Dlt>,
}

/// Messages with their status (which may already be REJECTED, with 200),
/// or an error with its violations.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Reply {
    messages: Vec<MessageReply>,
    error_code: Option<String>,
    description: Option<String>,
    violations: Vec<Violation>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MessageReply {
    message_id: Option<String>,
    status: Status,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    group_name: String,
    name: String,
    description: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Violation {
    property: String,
    violation: String,
}

impl Vendor for Infobip {
    const NAME: &'static str = "infobip";
    const TITLE: &'static str = "Infobip";
    const ID_FIELD: &'static str = "messages[0].messageId";
    const REPORT: ReportFields = ReportFields {
        message_id: "messageId",
        status: "status",
        error_code: "error",
    };
    const ERRORS_IN_SUCCESS: bool = true;

    type Settings = InfobipConfig;
    type Reply = Reply;

    fn check(infobip: &InfobipConfig) -> Result<(), ConfigError> {
        required("sms.infobip.api_key", infobip.api_key.expose())?;
        required("sms.infobip.sender", &infobip.sender)?;
        required("sms.infobip.base_url", &infobip.base_url)
    }

    fn new(config: &InfobipConfig) -> Self {
        Self {
            endpoint: format!("{}/sms/3/messages", config.base_url.trim_end_matches('/')),
            api_key: config.api_key.clone(),
            sender: config.sender.clone(),
            dlt: None,
        }
    }

    fn set_sender(config: &mut InfobipConfig, sender: &str) {
        config.sender = sender.to_owned();
    }

    fn set_dlt(&mut self, dlt: &Dlt) -> bool {
        self.dlt = Some(dlt.clone());
        true
    }

    fn report_key(_: &InfobipConfig) -> Option<(&'static str, ReportKey)> {
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
        let mut body = json!({"messages": [{
            "sender": self.sender,
            "destinations": [{"to": to.as_str().trim_start_matches('+'), "messageId": local_id}],
            "content": {"text": text.as_str()},
        }]});
        if let Some(dlt) = &self.dlt {
            body["messages"][0]["options"] = json!({"regional": {"indiaDlt": {
                "principalEntityId": dlt.entity_id(),
                "contentTemplateId": dlt.template_id(),
            }}});
        }
        http.post(&self.endpoint)
            .header("authorization", format!("App {}", self.api_key.expose()))
            .header("accept", "application/json")
            .json(&body)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        let message = reply.messages.first()?;
        (message.status.group_name != "REJECTED")
            .then(|| message.message_id.clone())
            .flatten()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        if let Some(message) = reply.messages.into_iter().next() {
            let Status {
                name, description, ..
            } = message.status;
            if NUMBER_REJECTED.contains(&name.as_str()) {
                return AttemptError::Rejected {
                    vendor_code: name,
                    message: description,
                };
            }
            return AttemptError::Permanent(vendor_said(&format!("{name}: {description}")));
        }
        let code = reply.error_code.unwrap_or_else(|| "no code".into());
        // A violation of a destination's `to` is the number.
        if let Some(v) = reply.violations.iter().find(|v| v.property.ends_with(".to")) {
            if status.as_u16() == 400 {
                return AttemptError::Rejected {
                    vendor_code: code,
                    message: v.violation.clone(),
                };
            }
        }
        let description = reply.description.unwrap_or_else(|| "no description".into());
        status_error(status, &format!("{code}: {description}"))
    }

    fn delivery_state(_: &str) -> Option<DeliveryState> {
        None
    }

    fn report_signed(_: &ReportKey, _: &str, _: &[(String, String)], _: &HeaderMap) -> bool {
        false
    }
}
