//! Amazon SNS: `Publish` to a phone number (the Query API, `POST` to the
//! regional endpoint, form-encoded, `Version=2010-03-31`), as in the SNS API
//! Reference for Publish and the SNS developer guide's "Publishing to a
//! mobile phone" (the `AWS.SNS.SMS.*` message attributes, and for India the
//! DLT ids as `AWS.MM.SMS.EntityId` and `AWS.MM.SMS.TemplateId`); signed with
//! Signature Version 4 by `aws-sigv4`, AWS's own signing crate, rather than
//! the whole SDK for one call. It answers in XML. otpd takes no SNS reports
//! (SNS logs deliveries to CloudWatch, not to a webhook).

mod xml;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;

use super::dlt::Dlt;
use super::retry::{vendor_said, AttemptError};
use super::vendor::{required, status_error, ReportFields, ReportKey, Vendor};
use crate::config::{ConfigError, Secret, SnsConfig};
use crate::domain::{DeliveryState, Phone, SmsText};

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// Error codes (HTTP 400) that may pass on another try.
const TRANSIENT: &[&str] = &["Throttling", "ThrottledException", "KMSThrottlingException"];

#[derive(Debug)]
pub struct Sns {
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Secret,
    sender_id: String,
    origination_number: String,
    sms_type: String,
    dlt: Option<Dlt>,
}

/// The parts of SNS's XML answer otpd reads.
#[derive(Debug, Default, Deserialize)]
pub struct Reply {
    message_id: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

impl Sns {
    /// The form body, with the `AWS.SNS.SMS.*` attributes the settings ask for.
    fn body(&self, to: &Phone, text: &SmsText) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", "Publish")
            .append_pair("PhoneNumber", to.as_str())
            .append_pair("Message", text.as_str());
        let attributes = [
            ("AWS.SNS.SMS.SMSType", self.sms_type.as_str()),
            ("AWS.SNS.SMS.SenderID", self.sender_id.as_str()),
            ("AWS.MM.SMS.OriginationNumber", self.origination_number.as_str()),
            (
                "AWS.MM.SMS.EntityId",
                self.dlt.as_ref().map_or("", Dlt::entity_id),
            ),
            (
                "AWS.MM.SMS.TemplateId",
                self.dlt.as_ref().map_or("", Dlt::template_id),
            ),
        ];
        for (i, (name, value)) in attributes.iter().filter(|(_, v)| !v.is_empty()).enumerate() {
            let entry = format!("MessageAttributes.entry.{}", i + 1);
            form.append_pair(&format!("{entry}.Name"), name)
                .append_pair(&format!("{entry}.Value.DataType"), "String")
                .append_pair(&format!("{entry}.Value.StringValue"), value);
        }
        form.append_pair("Version", "2010-03-31");
        form.finish()
    }

    /// The SigV4 headers for `body`, or why there are none.
    fn signed_headers(&self, body: &str) -> Result<Vec<(String, String)>, String> {
        let token = (!self.session_token.is_empty()).then(|| self.session_token.expose().to_owned());
        let identity = Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            token,
            None,
            "otpd settings",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("sns")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let request = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            [("content-type", FORM)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}

impl Vendor for Sns {
    const NAME: &'static str = "sns";
    const TITLE: &'static str = "Amazon SNS";
    const ID_FIELD: &'static str = "MessageId";
    // Never read: otpd takes no SNS reports.
    const REPORT: ReportFields = ReportFields {
        message_id: "",
        status: "",
        error_code: "",
    };

    type Settings = SnsConfig;
    type Reply = Reply;

    fn check(sns: &SnsConfig) -> Result<(), ConfigError> {
        required("sms.sns.region", &sns.region)?;
        required("sms.sns.access_key_id", &sns.access_key_id)?;
        required("sms.sns.secret_access_key", sns.secret_access_key.expose())?;
        if !matches!(sns.sms_type.as_str(), "Transactional" | "Promotional") {
            return Err(ConfigError::new(
                "sms.sns.sms_type",
                "must be Transactional or Promotional",
            ));
        }
        Ok(())
    }

    fn new(config: &SnsConfig) -> Self {
        let endpoint = if config.endpoint.is_empty() {
            format!("https://sns.{}.amazonaws.com/", config.region)
        } else {
            format!("{}/", config.endpoint.trim_end_matches('/'))
        };
        Self {
            endpoint,
            region: config.region.clone(),
            access_key_id: config.access_key_id.clone(),
            secret_access_key: config.secret_access_key.clone(),
            session_token: config.session_token.clone(),
            sender_id: config.sender_id.clone(),
            origination_number: config.origination_number.clone(),
            sms_type: config.sms_type.clone(),
            dlt: None,
        }
    }

    /// A number goes as the origination number, anything else as the
    /// sender id.
    fn set_sender(config: &mut SnsConfig, sender: &str) {
        if sender.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit()) {
            config.origination_number = sender.to_owned();
            config.sender_id.clear();
        } else {
            config.sender_id = sender.to_owned();
            config.origination_number.clear();
        }
    }

    fn set_dlt(&mut self, dlt: &Dlt) -> bool {
        self.dlt = Some(dlt.clone());
        true
    }

    fn report_key(_: &SnsConfig) -> Option<(&'static str, ReportKey)> {
        None
    }

    fn parse_reply(body: &[u8]) -> Reply {
        let body = String::from_utf8_lossy(body);
        Reply {
            message_id: xml::element(&body, "MessageId"),
            code: xml::element(&body, "Code"),
            message: xml::element(&body, "Message"),
        }
    }

    fn request(
        &self,
        http: &Client,
        to: &Phone,
        text: &SmsText,
        _local_id: &str,
        _callback: Option<&str>,
    ) -> RequestBuilder {
        let body = self.body(to, text);
        let mut request = http.post(&self.endpoint).header("content-type", FORM);
        match self.signed_headers(&body) {
            Ok(headers) => {
                for (name, value) in headers {
                    request = request.header(name, value);
                }
            }
            // Unsigned, SNS refuses it: a permanent failure that names SNS.
            Err(e) => tracing::error!(error = %e, "could not sign the SNS request"),
        }
        request.body(body)
    }

    fn message_id(&self, reply: &Reply) -> Option<String> {
        reply.message_id.clone()
    }

    fn refusal(&self, status: StatusCode, reply: Reply) -> AttemptError {
        let code = reply.code.unwrap_or_else(|| "no code".into());
        let message = reply.message.unwrap_or_else(|| "no message".into());
        // SNS names the parameter it refuses: a refused PhoneNumber is the number.
        if code == "InvalidParameter" && message.contains("PhoneNumber") {
            return AttemptError::Rejected {
                vendor_code: code,
                message,
            };
        }
        if TRANSIENT.contains(&code.as_str()) {
            return AttemptError::Transient(vendor_said(&format!("{code}: {message}")), None);
        }
        status_error(status, &format!("{code}: {message}"))
    }

    fn delivery_state(_: &str) -> Option<DeliveryState> {
        None
    }

    fn report_signed(_: &ReportKey, _: &str, _: &[(String, String)], _: &HeaderMap) -> bool {
        false
    }
}
