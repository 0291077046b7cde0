//! `[whatsapp]`: codes in WhatsApp authentication messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::env::string_map;
use super::secrets::Secret;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappConfig {
    pub provider: WhatsappProvider,
    pub meta: MetaConfig,
    pub twilio: TwilioWhatsappConfig,
}

/// Who sends WhatsApp messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhatsappProvider {
    /// The console when `sms.provider` is the console (local work), else
    /// none: a send on the `whatsapp` channel is refused.
    #[default]
    Auto,
    Off,
    /// Prints each message on standard output, as the SMS console does.
    Console,
    /// Meta's WhatsApp Cloud API, by `whatsapp.meta`.
    Meta,
    /// Twilio's Messages API, by the `sms.twilio` account and
    /// `whatsapp.twilio`.
    Twilio,
}

/// WhatsApp through Twilio: the account's WhatsApp sender and its approved
/// authentication templates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioWhatsappConfig {
    /// The WhatsApp sender's number (`+14155238886`), without `whatsapp:`.
    pub from: String,
    /// The approved authentication templates' Content SIDs (`HX...`) by
    /// Meta language code (`en`, `pt_BR`).
    #[serde(deserialize_with = "string_map")]
    pub templates: BTreeMap<String, String>,
    /// The language whose template a message gets when its own has none.
    pub default_language: String,
}

impl Default for TwilioWhatsappConfig {
    fn default() -> Self {
        Self {
            from: String::new(),
            templates: BTreeMap::new(),
            default_language: "en".into(),
        }
    }
}

/// Meta's WhatsApp Cloud API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaConfig {
    /// The business phone number's id (digits), which sends.
    pub phone_number_id: String,
    /// A system user's access token with `whatsapp_business_messaging`.
    pub access_token: Secret,
    /// The app's secret: checks the webhooks' `X-Hub-Signature-256`.
    pub app_secret: Secret,
    /// What the webhook's verification request must carry as
    /// `hub.verify_token`, as set in the app's webhook settings.
    pub verify_token: Secret,
    /// The operator's approved authentication templates by Meta language
    /// code (`en_US`, `de`, `pt_BR`): the template's name.
    #[serde(deserialize_with = "string_map")]
    pub templates: BTreeMap<String, String>,
    /// The language whose template a message gets when its own has none.
    pub default_language: String,
    pub api_version: String,
    pub base_url: String,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            phone_number_id: String::new(),
            access_token: Secret::default(),
            app_secret: Secret::default(),
            verify_token: Secret::default(),
            templates: BTreeMap::new(),
            default_language: "en_US".into(),
            api_version: "v23.0".into(),
            base_url: "https://graph.facebook.com".into(),
        }
    }
}
