//! From settings to the voice caller: the console's, for local work, or a
//! vendor's voice API; and the keys its call reports are checked with.

use std::sync::Arc;

use crate::adapters::metrics::Metrics;
use crate::adapters::sms::twilio::voice::{self as twilio_voice, TwilioVoice};
use crate::adapters::sms::twilio::Twilio;
use crate::adapters::sms::vonage::voice::{Application, VonageVoice};
use crate::adapters::sms::vonage::Vonage;
use crate::adapters::sms::{ConsoleOut, ConsoleSender, ReportKey, Vendor};
use crate::config::{Config, ConfigError, SmsProvider, VoiceProvider};
use crate::ports::VoiceCaller;

/// The voice caller the settings name, if any. `printer` is the SMS
/// console, if one was built: calls print beside its SMS.
///
/// # Errors
/// A [`ConfigError`] naming the bad setting.
pub(super) fn build_voice(
    config: &Config,
    printer: Option<Arc<ConsoleSender>>,
    metrics: &Arc<Metrics>,
) -> Result<Option<Arc<dyn VoiceCaller>>, ConfigError> {
    let console = || -> Arc<dyn VoiceCaller> {
        printer
            .clone()
            .unwrap_or_else(|| Arc::new(ConsoleSender::new(ConsoleOut::Stdout)))
    };
    let public_url = super::sms::public_url(config)?;
    match config.voice.provider {
        VoiceProvider::Off => Ok(None),
        VoiceProvider::Auto if config.sms.provider == SmsProvider::Console => Ok(Some(console())),
        VoiceProvider::Auto => Ok(None),
        VoiceProvider::Console => Ok(Some(console())),
        VoiceProvider::Twilio => {
            let settings = &config.sms.twilio;
            let from = calling_number(config, &settings.from);
            twilio_voice::check(settings, from)?;
            let (http, policy) = super::sms::vendor_http(config, "voice")?;
            let caller = TwilioVoice::new(settings, from, public_url, http, policy, Arc::clone(metrics));
            Ok(Some(Arc::new(caller)))
        }
        VoiceProvider::Vonage => {
            let settings = &config.voice.vonage;
            let from = calling_number(config, &config.sms.vonage.from);
            let application = Application::check(settings, from)?;
            if super::exposure::in_clear_off_this_machine(&settings.base_url) {
                return Err(ConfigError::new(
                    "voice.vonage.base_url",
                    "must be https:// (http:// only on this machine): a call carries the \
                     application's token and the code",
                ));
            }
            let (http, policy) = super::sms::vendor_http(config, "voice")?;
            let caller = VonageVoice::new(
                settings,
                application,
                public_url,
                http,
                policy,
                Arc::clone(metrics),
            );
            Ok(Some(Arc::new(caller)))
        }
        VoiceProvider::Plivo => Err(ConfigError::new(
            "voice.provider",
            "names a vendor this build cannot call through yet",
        )),
    }
}

/// `voice.from`, else the vendor's SMS sender.
fn calling_number<'a>(config: &'a Config, sms_sender: &'a str) -> &'a str {
    match config.voice.from.as_str() {
        "" => sms_sender,
        from => from,
    }
}

/// The vendor whose call reports are taken, and what they are signed with,
/// when `http.public_url` asks for them.
///
/// # Errors
/// Reports are asked for and the key that checks them is missing.
pub(super) fn report_key(config: &Config) -> Result<Option<(&'static str, ReportKey)>, ConfigError> {
    if super::sms::public_url(config)?.is_none() {
        return Ok(None);
    }
    let key = match config.voice.provider {
        VoiceProvider::Twilio => Twilio::report_key(&config.sms.twilio).map(|key| (Twilio::NAME, key)),
        // The account's signature secret, the SMS receipts' too: Vonage
        // signs both with it.
        VoiceProvider::Vonage => Vonage::report_key(&config.sms.vonage).map(|key| (Vonage::NAME, key)),
        _ => None,
    };
    match key {
        Some((_, (setting, key))) if key.secret.expose().is_empty() => Err(ConfigError::new(
            setting,
            "is required while http.public_url is set: it checks the calls' status reports",
        )),
        Some((vendor, (_, key))) => Ok(Some((vendor, key))),
        None => Ok(None),
    }
}
