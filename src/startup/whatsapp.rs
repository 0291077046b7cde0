//! From settings to the WhatsApp sender: the console's, for local work,
//! or Meta's Cloud API; and the keys its webhooks are checked with.

use std::sync::Arc;

use crate::adapters::http::handlers::webhooks::{report_url, MetaKeys};
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::meta::{self, Meta};
use crate::adapters::sms::twilio::whatsapp::{self as twilio_whatsapp, TwilioWhatsapp};
use crate::adapters::sms::twilio::Twilio;
use crate::adapters::sms::{ConsoleOut, ConsoleSender, ReportKey, Vendor};
use crate::config::{Config, ConfigError, SmsProvider, WhatsappProvider};
use crate::ports::WhatsappSender;

/// The WhatsApp sender the settings name, if any. `printer` is the SMS
/// console, if one was built: WhatsApp messages print beside its SMS.
///
/// # Errors
/// A [`ConfigError`] naming the bad setting.
pub(super) fn build_whatsapp(
    config: &Config,
    printer: Option<Arc<ConsoleSender>>,
    metrics: &Arc<Metrics>,
) -> Result<Option<Arc<dyn WhatsappSender>>, ConfigError> {
    let console = || -> Arc<dyn WhatsappSender> {
        printer
            .clone()
            .unwrap_or_else(|| Arc::new(ConsoleSender::new(ConsoleOut::Stdout)))
    };
    match config.whatsapp.provider {
        WhatsappProvider::Off => Ok(None),
        WhatsappProvider::Auto if config.sms.provider == SmsProvider::Console => Ok(Some(console())),
        WhatsappProvider::Auto => Ok(None),
        WhatsappProvider::Console => Ok(Some(console())),
        WhatsappProvider::Meta => {
            let settings = &config.whatsapp.meta;
            let templates = meta::check(settings)?;
            super::sms::in_the_clear_only_here("whatsapp.meta.base_url", &settings.base_url)?;
            let (http, policy) = super::sms::vendor_http(config, "whatsapp")?;
            Ok(Some(Arc::new(Meta::new(
                settings,
                templates,
                http,
                policy,
                Arc::clone(metrics),
            ))))
        }
        WhatsappProvider::Twilio => {
            let settings = &config.whatsapp.twilio;
            let account = &config.sms.twilio;
            let templates = twilio_whatsapp::check(
                account,
                &settings.from,
                &settings.templates,
                &settings.default_language,
            )?;
            super::sms::in_the_clear_only_here("sms.twilio.base_url", &account.base_url)?;
            let (http, policy) = super::sms::vendor_http(config, "whatsapp")?;
            let callback = super::sms::public_url(config)?.map(|base| report_url(base, Twilio::NAME));
            Ok(Some(Arc::new(TwilioWhatsapp::new(
                account,
                &settings.from,
                templates,
                callback,
                http,
                policy,
                Arc::clone(metrics),
            ))))
        }
    }
}

/// The vendor whose WhatsApp statuses arrive as its messages' reports, and
/// what they are signed with, when `http.public_url` asks for them.
///
/// # Errors
/// Reports are asked for and the key that checks them is missing.
pub(super) fn report_key(config: &Config) -> Result<Option<(&'static str, ReportKey)>, ConfigError> {
    let key = match config.whatsapp.provider {
        WhatsappProvider::Twilio => twilio_whatsapp::report_key(&config.sms.twilio),
        _ => None,
    };
    super::sms::reports_checked_by(config, Twilio::NAME, key)
}

/// What Meta's webhook is checked with, when Meta sends: its app secret
/// (the statuses' signatures) and the verification token.
///
/// # Errors
/// Meta sends and either is missing: its statuses could not be taken.
pub(super) fn meta_keys(config: &Config) -> Result<Option<MetaKeys>, ConfigError> {
    if config.whatsapp.provider != WhatsappProvider::Meta {
        return Ok(None);
    }
    let settings = &config.whatsapp.meta;
    for (key, value) in [
        ("whatsapp.meta.app_secret", &settings.app_secret),
        ("whatsapp.meta.verify_token", &settings.verify_token),
    ] {
        if value.expose().is_empty() {
            return Err(ConfigError::new(
                key,
                "is required by whatsapp.provider = \"meta\": it checks Meta's webhooks, which say \
                 whether a message arrived",
            ));
        }
    }
    Ok(Some(MetaKeys {
        app_secret: settings.app_secret.clone(),
        verify_token: settings.verify_token.clone(),
    }))
}
