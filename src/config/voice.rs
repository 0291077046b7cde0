//! `[voice]`: codes read out in phone calls; `[workflow]`: the order in
//! which channels are tried.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::env::string_list;
use super::secrets::Secret;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    pub provider: VoiceProvider,
    /// The calling number; empty: the SMS sender of the same vendor
    /// (`sms.twilio.from`, `sms.plivo.src`, `sms.vonage.from`), which must
    /// then be a number that can call.
    pub from: String,
    pub vonage: VonageVoiceConfig,
}

/// Who places the calls. Twilio and Plivo sign in with their `sms.<vendor>`
/// account; Vonage's Voice API with an application of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceProvider {
    /// The console when `sms.provider` is the console (local work), else
    /// none: a send on the `voice` channel is refused.
    #[default]
    Auto,
    Off,
    /// Prints what each call would say, as the SMS console does.
    Console,
    Twilio,
    Plivo,
    Vonage,
}

/// Vonage's Voice API: an application with voice enabled, and its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VonageVoiceConfig {
    /// The application's id (a UUID).
    pub application_id: String,
    /// The application's private key, PEM: signs each request's JWT.
    pub private_key: Secret,
    pub base_url: String,
}

impl Default for VonageVoiceConfig {
    fn default() -> Self {
        Self {
            application_id: String::new(),
            private_key: Secret::default(),
            base_url: "https://api.nexmo.com".into(),
        }
    }
}

/// `[workflow]`: the channels a send that names none tries, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// `sms`, `whatsapp` or `voice`, in order; each next one when the last
    /// message failed or was not reported delivered in time.
    #[serde(deserialize_with = "string_list")]
    pub channels: Vec<String>,
    /// By destination country (ISO 3166 alpha-2), instead of `channels`.
    pub countries: BTreeMap<String, ChannelNames>,
    /// How long a message has to be reported delivered before the
    /// workflow's next channel gets a new code.
    pub fallback_after_secs: u64,
}

/// A workflow's channel names: a list, or one comma-separated string (as
/// the environment gives it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelNames(#[serde(deserialize_with = "string_list")] pub Vec<String>);

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self {
            channels: vec!["sms".into()],
            countries: BTreeMap::new(),
            fallback_after_secs: 60,
        }
    }
}
