//! Meta's WhatsApp Cloud API: a code in the operator's approved
//! authentication template (`POST {base}/{version}/{phone-number-id}/messages`,
//! JSON, a bearer access token), its body parameter and its copy-code
//! button both the code, as in Meta's OTP sample app and its error-code
//! reference; its status webhooks, signed with the app secret
//! (`webhook.rs`).

mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::retry::{send_with_retries, transport_error, vendor_said, AttemptError, RetryPolicy};
use super::vendor::status_error;
use super::whatsapp::Templates;
use crate::adapters::metrics::Metrics;
use crate::config::{ConfigError, MetaConfig, Secret};
use crate::domain::{Code, Locale, Phone, SmsReceipt};
use crate::ports::{SmsError, WhatsappSender};

pub use webhook::{challenge_answer, signed, statuses, ChallengeRefused, Status};

pub const NAME: &str = "meta";

/// Error codes that mean this number can't get the message: not on
/// WhatsApp or not reachable (131026), the sender itself (131021), not on
/// a test app's allowed list (131030), opted out (131050).
const NUMBER_REJECTED: &[i64] = &[131_026, 131_021, 131_030, 131_050];
/// Error codes worth another try: throughput and pair rate limits
/// (130429, 131056), the app's or account's rate (4, 80007), Meta's own
/// trouble (1, 2, 131000, 131016).
const TRANSIENT: &[i64] = &[130_429, 131_056, 4, 80_007, 1, 2, 131_000, 131_016];

pub struct Meta {
    endpoint: String,
    access_token: Secret,
    templates: Templates,
    http: Client,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("endpoint", &self.endpoint)
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Reply {
    messages: Vec<Message>,
    error: Option<ApiError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Message {
    id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiError {
    code: i64,
    message: String,
    is_transient: bool,
}

/// Checks, at start, that the settings can send: every named language is
/// one Meta knows the form of and has a template name, and the default
/// language has one.
///
/// # Errors
/// A [`ConfigError`] naming the first setting that can't.
pub fn check(settings: &MetaConfig) -> Result<Templates, ConfigError> {
    let key = |name: &str| format!("whatsapp.meta.{name}");
    if settings.phone_number_id.is_empty() || !settings.phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::new(
            key("phone_number_id"),
            "must be the number's id, digits",
        ));
    }
    if settings.access_token.expose().is_empty() {
        return Err(ConfigError::new(
            key("access_token"),
            "is required by whatsapp.provider = \"meta\"",
        ));
    }
    let templates = Templates::new(
        "whatsapp.meta",
        &settings.templates,
        &settings.default_language,
        is_template_name,
        "is not a template name (lower case letters, digits and `_`)",
    )?;
    for (name, value) in [
        ("api_version", &settings.api_version),
        ("base_url", &settings.base_url),
    ] {
        if value.is_empty() {
            return Err(ConfigError::new(key(name), "is required"));
        }
    }
    Ok(templates)
}

/// A template's name as Meta writes them.
fn is_template_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Meta {
    /// `templates`: what [`check`] made of the settings.
    pub fn new(
        settings: &MetaConfig,
        templates: Templates,
        http: Client,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            endpoint: format!(
                "{}/{}/{}/messages",
                settings.base_url.trim_end_matches('/'),
                settings.api_version,
                settings.phone_number_id
            ),
            access_token: settings.access_token.clone(),
            templates,
            http,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, to: &Phone, code: &Code, template: (&str, &str)) -> Result<String, AttemptError> {
        let (name, language) = template;
        let parameters = json!([{ "type": "text", "text": code.expose() }]);
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.as_str(),
            "type": "template",
            "template": {
                "name": name,
                "language": { "code": language },
                "components": [
                    { "type": "body", "parameters": parameters },
                    { "type": "button", "sub_type": "url", "index": "0", "parameters": parameters },
                ],
            },
        });
        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(self.access_token.expose())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let reply: Reply = response
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice(&body).ok())
            .unwrap_or_default();
        if status.is_success() {
            return reply
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| AttemptError::Permanent(format!("{status} without a messages[0].id")));
        }
        Err(refusal(status, reply.error.unwrap_or_default()))
    }
}

/// What an error answer means: a number that can't get it, a try that may
/// pass later, or a setting to fix (a template or language Meta doesn't
/// have, 132001; an expired token, 190).
fn refusal(status: StatusCode, error: ApiError) -> AttemptError {
    let detail = format!("({}) {}", error.code, error.message);
    if NUMBER_REJECTED.contains(&error.code) {
        return AttemptError::Rejected {
            vendor_code: error.code.to_string(),
            message: error.message,
        };
    }
    if error.is_transient || TRANSIENT.contains(&error.code) {
        return AttemptError::Transient(
            format!("HTTP {}: {}", status.as_u16(), vendor_said(&detail)),
            None,
        );
    }
    status_error(status, &detail)
}

#[async_trait]
impl WhatsappSender for Meta {
    async fn send(
        &self,
        to: &Phone,
        code: &Code,
        locale: Option<&Locale>,
        _local_id: &str,
    ) -> Result<SmsReceipt, SmsError> {
        let template = self.templates.pick(locale);
        // Meta always reports a message's fate to the app's webhook.
        send_with_retries(NAME, to, &self.policy, true, &self.metrics, || {
            self.attempt(to, code, template)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MetaConfig {
        MetaConfig {
            phone_number_id: "106540352242922".into(),
            access_token: Secret::new("EAAG"),
            templates: [("en_US", "otp_en"), ("pt_BR", "otp_pt_br"), ("de", "otp_de")]
                .into_iter()
                .map(|(l, n)| (l.to_owned(), n.to_owned()))
                .collect(),
            ..MetaConfig::default()
        }
    }

    #[test]
    fn settings_that_cannot_send_are_named() {
        assert!(check(&settings()).is_ok());
        let refused = |change: fn(&mut MetaConfig), key: &str| {
            let mut s = settings();
            change(&mut s);
            assert_eq!(check(&s).unwrap_err().key, key);
        };
        refused(
            |s| s.phone_number_id = "+1555".into(),
            "whatsapp.meta.phone_number_id",
        );
        refused(
            |s| s.access_token = Secret::default(),
            "whatsapp.meta.access_token",
        );
        refused(|s| s.templates.clear(), "whatsapp.meta.templates");
        refused(
            |s| {
                s.templates.insert("pt-BR".into(), "x".into());
            },
            "whatsapp.meta.templates.pt-BR",
        );
        refused(
            |s| {
                s.templates.insert("fr".into(), "Has Spaces".into());
            },
            "whatsapp.meta.templates.fr",
        );
        refused(
            |s| s.default_language = "fr".into(),
            "whatsapp.meta.default_language",
        );
    }

    #[test]
    fn refusals_read_by_meta_s_error_codes() {
        let error = |code: i64| ApiError {
            code,
            message: "m".into(),
            is_transient: false,
        };
        let bad = StatusCode::BAD_REQUEST;
        assert!(
            matches!(refusal(bad, error(131_026)), AttemptError::Rejected { vendor_code, .. } if vendor_code == "131026")
        );
        assert!(matches!(
            refusal(bad, error(130_429)),
            AttemptError::Transient(..)
        ));
        assert!(matches!(refusal(bad, error(132_001)), AttemptError::Permanent(_)));
        assert!(matches!(
            refusal(StatusCode::UNAUTHORIZED, error(190)),
            AttemptError::Permanent(_)
        ));
        assert!(matches!(
            refusal(StatusCode::SERVICE_UNAVAILABLE, error(0)),
            AttemptError::Transient(..)
        ));
    }
}
