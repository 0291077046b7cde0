//! From settings to the voice caller: the console's, for local work, or a
//! vendor's voice API; the keys its call reports are checked with; and the
//! seal of the words a vendor fetches (Plivo's).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::metrics::Metrics;
use crate::adapters::sms::plivo::voice::{self as plivo_voice, PlivoVoice};
use crate::adapters::sms::plivo::Plivo;
use crate::adapters::sms::sealed_speech::SpeechSeal;
use crate::adapters::sms::twilio::voice::{self as twilio_voice, TwilioVoice};
use crate::adapters::sms::twilio::Twilio;
use crate::adapters::sms::vonage::voice::{Application, VonageVoice};
use crate::adapters::sms::vonage::Vonage;
use crate::adapters::sms::{ConsoleOut, ConsoleSender, ReportKey, Vendor};
use crate::config::{Config, ConfigError, SmsProvider, VoiceProvider};
use crate::domain::{Channel, Workflows};
use crate::ports::VoiceCaller;

/// The seal of the words Plivo fetches, when calls go through Plivo: made
/// once, as the caller seals with it and the answer route opens with it.
/// Its key is derived from the first `otp.hash_keys` entry, so every
/// instance opens every instance's URLs; without one, it is this process's
/// own (codes, likewise, verify only here then). A URL opens for the
/// code's lifetime, `otp.ttl_secs`.
pub(super) fn answer_seal(config: &Config) -> Option<Arc<SpeechSeal>> {
    if config.voice.provider != VoiceProvider::Plivo {
        return None;
    }
    let lifetime = Duration::from_secs(config.otp.ttl_secs);
    Some(Arc::new(match config.otp.hash_keys.first() {
        Some(key) => SpeechSeal::derived(key.expose().as_bytes(), lifetime),
        None => SpeechSeal::random(lifetime),
    }))
}

/// The voice caller the settings name, if any. `printer` is the SMS
/// console, if one was built: calls print beside its SMS. `seal`: from
/// [`answer_seal`].
///
/// # Errors
/// A [`ConfigError`] naming the bad setting.
pub(super) fn build_voice(
    config: &Config,
    printer: Option<Arc<ConsoleSender>>,
    seal: Option<Arc<SpeechSeal>>,
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
            super::sms::in_the_clear_only_here("sms.twilio.base_url", &settings.base_url)?;
            let (http, policy) = super::sms::vendor_http(config, "voice")?;
            let caller = TwilioVoice::new(settings, from, public_url, http, policy, Arc::clone(metrics));
            Ok(Some(Arc::new(caller)))
        }
        VoiceProvider::Plivo => {
            let settings = &config.sms.plivo;
            let from = calling_number(config, &settings.src);
            plivo_voice::check(settings, from)?;
            super::sms::in_the_clear_only_here("sms.plivo.base_url", &settings.base_url)?;
            // Plivo fetches the words from otpd once the call is answered.
            let Some(public_url) = public_url else {
                return Err(ConfigError::new(
                    "http.public_url",
                    "is required when voice.provider is \"plivo\": Plivo fetches each call's words from it",
                ));
            };
            let seal = seal.unwrap_or_else(|| unreachable!("answer_seal makes one for Plivo"));
            let (http, policy) = super::sms::vendor_http(config, "voice")?;
            let caller = PlivoVoice::new(
                settings,
                from,
                public_url,
                seal,
                http,
                policy,
                Arc::clone(metrics),
            );
            Ok(Some(Arc::new(caller)))
        }
        VoiceProvider::Vonage => {
            let settings = &config.voice.vonage;
            let from = calling_number(config, &config.sms.vonage.from);
            let application = Application::check(settings, from)?;
            super::sms::in_the_clear_only_here("voice.vonage.base_url", &settings.base_url)?;
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
    }
}

/// The workflows `[workflow]` names, each channel one the service can send
/// on (`sends_on`), and how long a message has to be reported delivered.
///
/// # Errors
/// A [`ConfigError`] naming the setting: a channel otpd does not know or
/// has no sender for, a workflow empty, too long or with a channel twice,
/// a country code that is none, or a wait of 0.
pub(super) fn build_workflows(
    config: &Config,
    sends_on: impl Fn(Channel) -> bool,
) -> Result<(Workflows, Duration), ConfigError> {
    let settings = &config.workflow;
    let parse = |key: &str, names: &[String]| -> Result<Vec<Channel>, ConfigError> {
        names
            .iter()
            .map(|name| match Channel::parse(name.trim()) {
                Some(channel) if sends_on(channel) => Ok(channel),
                Some(channel) => Err(ConfigError::new(
                    key,
                    format!("names {channel}, which has no sender here (whatsapp.provider, voice.provider)"),
                )),
                None => Err(ConfigError::new(
                    key,
                    format!("{name:?} is not sms, whatsapp or voice"),
                )),
            })
            .collect()
    };
    let default = parse("workflow.channels", &settings.channels)?;
    let mut by_country = HashMap::new();
    for (country, names) in &settings.countries {
        let key = format!("workflow.countries.{country}");
        // The environment's names arrive in lower case.
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ConfigError::new(key, "must be a country code such as IN or BR"));
        }
        by_country.insert(country.to_ascii_uppercase(), parse(&key, &names.0)?);
    }
    let workflows = Workflows::new(default, by_country).map_err(|(country, e)| match country {
        Some(country) => ConfigError::new(format!("workflow.countries.{country}"), e),
        None => ConfigError::new("workflow.channels", e),
    })?;
    if settings.fallback_after_secs == 0 {
        return Err(ConfigError::new(
            "workflow.fallback_after_secs",
            "must be above 0: a message gets that long to be reported delivered",
        ));
    }
    Ok((workflows, Duration::from_secs(settings.fallback_after_secs)))
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
    let key = match config.voice.provider {
        VoiceProvider::Twilio => Twilio::report_key(&config.sms.twilio).map(|key| (Twilio::NAME, key)),
        VoiceProvider::Plivo => Plivo::report_key(&config.sms.plivo).map(|key| (Plivo::NAME, key)),
        // The account's signature secret, the SMS receipts' too: Vonage
        // signs both with it.
        VoiceProvider::Vonage => Vonage::report_key(&config.sms.vonage).map(|key| (Vonage::NAME, key)),
        _ => None,
    };
    match key {
        Some((vendor, key)) => super::sms::reports_checked_by(config, vendor, Some(key)),
        None => Ok(None),
    }
}
