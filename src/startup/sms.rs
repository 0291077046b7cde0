//! From settings to the SMS sender chain: console, Plivo, Twilio, failover.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::metrics::Metrics;
use crate::adapters::sms::{
    ConsoleOut, ConsoleSender, Failover, Inbox, PlivoSender, RetryPolicy, TwilioSender,
};
use crate::config::{Config, ConfigError, PlivoConfig, SmsProvider, TwilioConfig};
use crate::ports::SmsSender;

pub(super) fn build_sms(
    config: &Config,
    console: ConsoleOut,
    inbox: Option<Arc<Inbox>>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn SmsSender>, ConfigError> {
    let sms = &config.sms;
    if sms.fallback == Some(sms.provider) {
        return Err(ConfigError::new(
            "sms.fallback",
            "must name another provider than sms.provider",
        ));
    }
    let timeout = Duration::from_millis(sms.timeout_ms.max(1));
    let http = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| ConfigError::new("sms", e))?;
    let policy = RetryPolicy::new(sms.retries, timeout);
    let public_url = public_url(config)?;
    let callback = |provider: &str| public_url.map(|base| format!("{base}/v1/webhooks/{provider}"));
    let mut console = Some(console);
    let mut build = |kind: SmsProvider| -> Result<Arc<dyn SmsSender>, ConfigError> {
        Ok(match kind {
            SmsProvider::Console => Arc::new(
                ConsoleSender::new(console.take().unwrap_or(ConsoleOut::Stdout)).with_inbox(inbox.clone()),
            ),
            SmsProvider::Plivo => {
                check_plivo(&sms.plivo)?;
                Arc::new(PlivoSender::new(
                    &sms.plivo,
                    http.clone(),
                    policy,
                    callback("plivo"),
                    Arc::clone(metrics),
                ))
            }
            SmsProvider::Twilio => {
                check_twilio(&sms.twilio)?;
                Arc::new(TwilioSender::new(
                    &sms.twilio,
                    http.clone(),
                    policy,
                    callback("twilio"),
                    Arc::clone(metrics),
                ))
            }
        })
    };
    let primary = build(sms.provider)?;
    Ok(match sms.fallback {
        Some(kind) => Arc::new(Failover::new(primary, build(kind)?)),
        None => primary,
    })
}

/// `http.public_url` without a trailing slash, if set.
pub(super) fn public_url(config: &Config) -> Result<Option<&str>, ConfigError> {
    match config.http.public_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(Some(url.trim_end_matches('/')))
        }
        Some(_) => Err(ConfigError::new(
            "http.public_url",
            "must start with https:// or http://",
        )),
        None => Ok(None),
    }
}

fn required(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(key, "is required by the chosen SMS provider"));
    }
    Ok(())
}

fn check_plivo(plivo: &PlivoConfig) -> Result<(), ConfigError> {
    required("sms.plivo.auth_id", &plivo.auth_id)?;
    required("sms.plivo.auth_token", plivo.auth_token.expose())?;
    required("sms.plivo.src", &plivo.src)
}

fn check_twilio(twilio: &TwilioConfig) -> Result<(), ConfigError> {
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
