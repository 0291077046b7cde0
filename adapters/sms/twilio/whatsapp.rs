//! WhatsApp through Twilio: the Messages API with `whatsapp:` addresses
//! and the operator's approved authentication template by its Content SID
//! (`ContentSid`, the code as variable `1` in `ContentVariables`), placed
//! by the `sms.twilio` account; its statuses arrive as a message's do, at
//! `/v1/webhooks/twilio`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Client;

use super::Twilio;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::retry::{send_with_retries, AttemptError, RetryPolicy};
use crate::adapters::sms::whatsapp::Templates;
use crate::adapters::sms::{ReportKey, Vendor};
use crate::config::{ConfigError, TwilioConfig};
use crate::domain::{Code, Locale, Phone, SmsReceipt};
use crate::ports::{SmsError, WhatsappSender};

/// Error codes that mean this number can't get the message: not a valid
/// number (21211), no WhatsApp account at it (63003), not a valid
/// recipient (63024).
const NUMBER_REJECTED: &[i64] = &[21211, 63003, 63024];

pub struct TwilioWhatsapp {
    account: Twilio,
    endpoint: String,
    from: String,
    templates: Templates,
    callback: Option<String>,
    http: Client,
    policy: RetryPolicy,
    metrics: Arc<Metrics>,
}

/// Checks, at start, that the account can send from `from` with these
/// templates (each a Content SID, `HX` and 32 hex digits).
///
/// # Errors
/// A [`ConfigError`] naming the first setting that can't send.
pub fn check(
    account: &TwilioConfig,
    from: &str,
    templates: &BTreeMap<String, String>,
    default_language: &str,
) -> Result<Templates, ConfigError> {
    let mut sender = account.clone();
    sender.from = from.to_owned();
    sender.messaging_service_sid.clear();
    Twilio::check(&sender).map_err(|e| match e.key.as_str() {
        "sms.twilio.from" => ConfigError::new(
            "whatsapp.twilio.from",
            "is required: the WhatsApp sender of the Twilio account (+E.164)",
        ),
        _ => e,
    })?;
    Templates::new(
        "whatsapp.twilio",
        templates,
        default_language,
        is_content_sid,
        "is not a Content SID (`HX` and 32 hex digits)",
    )
}

fn is_content_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The key Twilio signs the messages' statuses with.
pub fn report_key(account: &TwilioConfig) -> Option<(&'static str, ReportKey)> {
    Twilio::report_key(account)
}

impl TwilioWhatsapp {
    /// `callback`: where Twilio reports each message (its SMS reports'
    /// URL), when reports are asked for; `templates`: what [`check`] made
    /// of the settings.
    pub fn new(
        account: &TwilioConfig,
        from: &str,
        templates: Templates,
        callback: Option<String>,
        http: Client,
        policy: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            account: Twilio::new(account),
            endpoint: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                account.base_url.trim_end_matches('/'),
                account.account_sid
            ),
            from: format!("whatsapp:{from}"),
            templates,
            callback,
            http,
            policy,
            metrics,
        }
    }

    async fn attempt(&self, to: &str, content_sid: &str, variables: &str) -> Result<String, AttemptError> {
        let mut form = vec![
            ("To", to),
            ("From", self.from.as_str()),
            ("ContentSid", content_sid),
            ("ContentVariables", variables),
        ];
        if let Some(url) = &self.callback {
            form.push(("StatusCallback", url));
        }
        self.account
            .post_for_sid(&self.http, &self.endpoint, &form, NUMBER_REJECTED)
            .await
    }
}

#[async_trait]
impl WhatsappSender for TwilioWhatsapp {
    async fn send(
        &self,
        to: &Phone,
        code: &Code,
        locale: Option<&Locale>,
        _local_id: &str,
    ) -> Result<SmsReceipt, SmsError> {
        let (content_sid, _) = self.templates.pick(locale);
        let variables = serde_json::json!({ "1": code.expose() }).to_string();
        let address = format!("whatsapp:{}", to.as_str());
        let tracked = self.callback.is_some();
        send_with_retries(Twilio::NAME, to, &self.policy, tracked, &self.metrics, || {
            self.attempt(&address, content_sid, &variables)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_sids_are_hx_and_32_hex_digits() {
        assert!(is_content_sid("HXb5b62575e6e4ff6129ad7c8efe1f983e"));
        for bad in [
            "",
            "HX",
            "MGb5b62575e6e4ff6129ad7c8efe1f983e",
            "HXb5b62575e6e4ff6129ad7c8efe1f983",
            "HXzzb62575e6e4ff6129ad7c8efe1f983e",
        ] {
            assert!(!is_content_sid(bad), "{bad}");
        }
    }
}
