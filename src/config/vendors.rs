//! The settings of the vendors beyond Plivo and Twilio, and of routes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::env::{string_list, string_map};
use super::secrets::Secret;
use super::sections::SmsProvider;

/// One route: the destinations it carries and the vendors that carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// ISO 3166 countries (`IN`, `GB`).
    #[serde(deserialize_with = "string_list")]
    pub countries: Vec<String>,
    /// E.164 prefixes (`+9198`); the longest that matches wins, over any
    /// country.
    #[serde(deserialize_with = "string_list")]
    pub prefixes: Vec<String>,
    /// The chain: the first vendor, then each next one when the one before
    /// sent nothing.
    pub vendors: Vec<SmsProvider>,
    /// The sender each vendor uses on this route, by vendor name: a number,
    /// a short code, or an alphanumeric sender id of at most 11 characters.
    #[serde(deserialize_with = "string_map")]
    pub senders: BTreeMap<String, String>,
    /// India's DLT ids, sent by each vendor of the route whose API takes
    /// them. They are the business's and its registered template's, not a
    /// vendor's, so one set serves the whole chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlt: Option<DltConfig>,
}

/// A route's DLT ids: the principal entity id and the content template id
/// TRAI's DLT platform gave, and the template's category (Plivo alone takes
/// it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DltConfig {
    pub entity_id: String,
    pub template_id: String,
    /// `transactional`, `promotional`, `service_implicit` or
    /// `service_explicit`; empty: none sent.
    pub template_category: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VonageConfig {
    pub api_key: String,
    pub api_secret: Secret,
    /// The sender: a number or an alphanumeric sender id.
    pub from: String,
    /// Checks the delivery receipts (signed webhooks).
    pub signature_secret: Secret,
    /// How the account signs them, as chosen in Vonage's dashboard; only
    /// receipts signed this way are taken.
    pub signature_method: VonageSignatureMethod,
    pub base_url: String,
}

/// The signature methods Vonage's dashboard offers, named as its SDKs name
/// them: an MD5 hash of the parameters and the secret, or an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VonageSignatureMethod {
    Md5hash,
    Md5,
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxConfig {
    pub api_key: Secret,
    /// The sender number; or an alphanumeric sender with `messaging_profile_id`.
    pub from: String,
    pub messaging_profile_id: String,
    /// The account's Ed25519 public key (base64): checks its webhooks.
    pub public_key: Secret,
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinchConfig {
    pub service_plan_id: String,
    pub api_token: Secret,
    pub from: String,
    /// The region's API: `https://us.sms.api.sinch.com`, `eu.`, `au.`, ...
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfobipConfig {
    pub api_key: Secret,
    pub sender: String,
    /// The account's own base URL (`https://xxxxx.api.infobip.com`).
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnsConfig {
    /// `eu-west-1`, ...
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// For temporary credentials.
    pub session_token: Secret,
    /// Empty: `https://sns.<region>.amazonaws.com`.
    pub endpoint: String,
    /// `AWS.SNS.SMS.SenderID`: an alphanumeric sender id.
    pub sender_id: String,
    /// `AWS.MM.SMS.OriginationNumber`: a number of the account.
    pub origination_number: String,
    /// `AWS.SNS.SMS.SMSType`: `Transactional` or `Promotional`.
    pub sms_type: String,
}

impl Default for SnsConfig {
    fn default() -> Self {
        Self {
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            session_token: Secret::default(),
            endpoint: String::new(),
            sender_id: String::new(),
            origination_number: String::new(),
            sms_type: "Transactional".into(),
        }
    }
}

impl Default for VonageConfig {
    fn default() -> Self {
        Self {
            api_key: String::new(),
            api_secret: Secret::default(),
            from: String::new(),
            signature_secret: Secret::default(),
            signature_method: VonageSignatureMethod::default(),
            base_url: "https://rest.nexmo.com".into(),
        }
    }
}

impl Default for TelnyxConfig {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            from: String::new(),
            messaging_profile_id: String::new(),
            public_key: Secret::default(),
            base_url: "https://api.telnyx.com".into(),
        }
    }
}

impl Default for SinchConfig {
    fn default() -> Self {
        Self {
            service_plan_id: String::new(),
            api_token: Secret::default(),
            from: String::new(),
            base_url: "https://us.sms.api.sinch.com".into(),
        }
    }
}

impl Default for InfobipConfig {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            sender: String::new(),
            base_url: "https://api.infobip.com".into(),
        }
    }
}

/// The generic HTTP vendor: any SMS API by configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpVendorConfig {
    pub method: String,
    /// May hold placeholders, which are percent-encoded.
    pub url: String,
    /// Sent with every request; values may hold placeholders. Not secret:
    /// put a key in `token` with `auth = "header"`.
    #[serde(deserialize_with = "string_map")]
    pub headers: BTreeMap<String, String>,
    pub auth: HttpAuth,
    pub username: String,
    pub password: Secret,
    /// The bearer token, or the value of `auth_header`.
    pub token: Secret,
    pub auth_header: String,
    pub body_format: HttpBodyFormat,
    /// A JSON document whose strings hold placeholders, or
    /// `name=value&...` pairs for a form.
    pub body: String,
    /// What `{from}` becomes; a route's sender replaces it.
    pub from: String,
    /// JSON pointer to the message id in a successful answer.
    pub id_pointer: String,
    /// JSON pointer to the vendor's error code in a failed answer.
    pub error_pointer: String,
    /// Error codes that mean the number itself is refused.
    #[serde(deserialize_with = "string_list")]
    pub rejected_codes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    #[default]
    None,
    Basic,
    Bearer,
    Header,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpBodyFormat {
    #[default]
    Json,
    Form,
    None,
}

impl Default for HttpVendorConfig {
    fn default() -> Self {
        Self {
            method: "POST".into(),
            url: String::new(),
            headers: BTreeMap::new(),
            auth: HttpAuth::None,
            username: String::new(),
            password: Secret::default(),
            token: Secret::default(),
            auth_header: String::new(),
            body_format: HttpBodyFormat::Json,
            body: String::new(),
            from: String::new(),
            id_pointer: String::new(),
            error_pointer: String::new(),
            rejected_codes: Vec::new(),
        }
    }
}
