//! `[voice]`: codes read out in phone calls.

use serde::{Deserialize, Serialize};

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
