//! The settings, section by section, with their defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::env::{list_or_json, number_list, string_list, string_map};
use super::secrets::{Secret, StoreUrl};
use super::vendors::{
    HttpVendorConfig, InfobipConfig, RouteConfig, SinchConfig, SnsConfig, TelnyxConfig, VonageConfig,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub store: StoreConfig,
    pub otp: OtpConfig,
    pub sms: SmsConfig,
    pub whatsapp: super::WhatsappConfig,
    pub voice: super::VoiceConfig,
    pub workflow: super::WorkflowConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub events: EventsConfig,
    pub twilio_verify: TwilioVerifyConfig,
    pub fraud: super::FraudConfig,
    pub spend: super::SpendConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to serve on.
    pub listen: String,
    /// Where vendors reach this service (`https://otp.example.com`); when
    /// set, each send asks for a delivery status callback.
    pub public_url: Option<String>,
    /// Proxies (addresses or networks) whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// How long in-flight requests may finish after SIGTERM or SIGINT.
    pub shutdown_grace_secs: u64,
    /// Longest time to receive a request body; past it, 408.
    pub body_timeout_ms: u64,
    /// Longest time from a request's first byte to the end of its head
    /// (the blank line); past it, the connection is closed.
    pub header_timeout_ms: u64,
    /// A connection that sends and receives nothing this long is closed.
    pub idle_timeout_secs: u64,
    /// How long a send's answer is replayed to a retry with its
    /// `Idempotency-Key`.
    pub idempotency_window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory://`, `redis://host:port/db` or `rediss://...`.
    pub url: StoreUrl,
    /// Put before every Redis key.
    pub key_prefix: String,
    /// Longest wait for one store operation, pool checkout included.
    pub timeout_ms: u64,
    /// Redis connections kept. Each one multiplexes every call given to it,
    /// so one carries any load: calls that share a connection go to Redis
    /// together, in fewer reads and writes on both sides than when spread
    /// over several (docs/performance.md).
    pub pool_size: u32,
    /// Keys the memory store holds at most (codes, counters, report links);
    /// past it, sends answer 503 until old ones expire.
    pub memory_max_entries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtpConfig {
    /// How long a code lives.
    pub ttl_secs: u64,
    /// Wrong codes allowed before the code locks.
    pub max_attempts: u32,
    /// HMAC keys: the first hashes, all verify. Empty: a random key per start.
    #[serde(deserialize_with = "string_list")]
    pub hash_keys: Vec<Secret>,
    /// E.164 number -> fixed code; never texted. The codes are secrets:
    /// whoever knows one signs in as that number.
    #[serde(deserialize_with = "string_map")]
    pub test_numbers: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: SmsProvider,
    /// A second provider, used when the first sends nothing.
    pub fallback: Option<SmsProvider>,
    /// Longest time for one provider's send, retries included.
    pub timeout_ms: u64,
    /// Tries after the first, for network errors, 429 and 5xx.
    pub retries: u32,
    /// The message, with `{code}`, `{minutes}` and `{app}`.
    pub template: String,
    /// Templates by locale (`fr`, `pt-BR`), over the built-in ones; an
    /// empty one turns that locale's built-in template off.
    #[serde(deserialize_with = "string_map")]
    pub templates: BTreeMap<String, String>,
    /// ISO country -> locale its numbers get, over the built-in map; an
    /// empty one leaves that country to `template`.
    #[serde(deserialize_with = "string_map")]
    pub country_locales: BTreeMap<String, String>,
    /// What `{app}` becomes.
    pub app_name: String,
    /// Android SMS Retriever app hash (11 characters): adds its line.
    pub android_app_hash: Option<String>,
    /// WebOTP: adds `@<domain> #<code>` as the last line.
    pub webotp_domain: Option<String>,
    /// ISO country codes codes may go to; empty: all.
    #[serde(deserialize_with = "string_list")]
    pub allowed_countries: Vec<String>,
    /// ISO country codes codes never go to.
    #[serde(deserialize_with = "string_list")]
    pub denied_countries: Vec<String>,
    /// E.164 prefixes (`+882`, `+4470`) of numbers refused by default that
    /// may be texted: non-geographic, personal and pager numbers.
    #[serde(deserialize_with = "string_list")]
    pub allowed_special_prefixes: Vec<String>,
    /// Vendor chains by destination country or E.164 prefix; the rest go
    /// by `provider` and `fallback`.
    #[serde(deserialize_with = "list_or_json")]
    pub routes: Vec<RouteConfig>,
    pub plivo: PlivoConfig,
    pub twilio: TwilioConfig,
    pub vonage: VonageConfig,
    pub telnyx: TelnyxConfig,
    pub sinch: SinchConfig,
    pub infobip: InfobipConfig,
    pub sns: SnsConfig,
    pub http: HttpVendorConfig,
}

/// Abuse limits; each one set to 0 is off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Seconds before a phone may get another code.
    pub resend_after_secs: u64,
    /// Codes per phone per window.
    pub sends_per_phone: u32,
    /// The window of the send quotas, in seconds.
    pub sends_window_secs: u64,
    /// Codes asked for by one client address per window.
    pub sends_per_ip: u32,
    /// Verifications by one client address per minute.
    pub verifies_per_ip: u32,
    /// Looks at whether a phone has a code pending, by one client address
    /// per minute.
    pub lookups_per_ip: u32,
    /// Codes sent by the whole service per hour.
    pub sends_per_hour: u32,
    /// Wrong codes answered as wrong per phone per window, across every
    /// client and path; 0 turns the ceiling off.
    pub wrong_codes_per_phone: u32,
    /// The ceiling's window, in seconds.
    pub wrong_codes_window_secs: u64,
    /// Wrong codes by phone in a row one client may send before each
    /// further one makes it wait.
    pub free_guesses: u32,
    /// The first wait, in seconds; it doubles with each wrong code after.
    pub guess_delay_secs: u64,
    /// The longest wait between wrong codes, in seconds.
    pub max_guess_delay_secs: u64,
    /// Wrong codes by phone in a row after which a client's guesses by
    /// phone are refused until forgotten; 0 turns the client waits off.
    pub max_consecutive_guesses: u32,
    /// Seconds a client's wrong codes in a row are remembered after the last.
    pub forget_guesses_after_secs: u64,
    /// Leading bits of an IPv4 address that name one client.
    pub ipv4_prefix: u8,
    /// Leading bits of an IPv6 address that name one client.
    pub ipv6_prefix: u8,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            resend_after_secs: 30,
            sends_per_phone: 5,
            sends_window_secs: 600,
            sends_per_ip: 20,
            verifies_per_ip: 60,
            lookups_per_ip: 60,
            sends_per_hour: 1000,
            wrong_codes_per_phone: 20,
            wrong_codes_window_secs: 3600,
            free_guesses: 10,
            guess_delay_secs: 30,
            max_guess_delay_secs: 3600,
            max_consecutive_guesses: 100,
            forget_guesses_after_secs: 86_400,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A separate address for `/metrics`; unset: on `http.listen`.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `otpd=debug`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys that may call the API, raw or `sha256:<hex>`; empty: open,
    /// which only a loopback `http.listen` allows unless `allow_anonymous`.
    #[serde(deserialize_with = "string_list")]
    pub api_keys: Vec<Secret>,
    /// Serve without API keys on a non-loopback address: for a deployment
    /// where something in front of otpd checks its callers.
    pub allow_anonymous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// Prints each message on standard output.
    #[default]
    Console,
    Plivo,
    Twilio,
    Vonage,
    Telnyx,
    Sinch,
    Infobip,
    /// Amazon SNS.
    Sns,
    /// Any vendor, by `sms.http`.
    Http,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlivoConfig {
    pub auth_id: String,
    pub auth_token: Secret,
    /// The sender: a Plivo number or an alphanumeric sender id.
    pub src: String,
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    /// An API key (`SK...`) to sign in with instead of the auth token.
    pub api_key_sid: String,
    pub api_key_secret: Secret,
    /// The sender number; or set `messaging_service_sid`.
    pub from: String,
    pub messaging_service_sid: String,
    pub base_url: String,
}

impl Default for PlivoConfig {
    fn default() -> Self {
        Self {
            auth_id: String::new(),
            auth_token: Secret::default(),
            src: String::new(),
            base_url: "https://api.plivo.com".into(),
        }
    }
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: Secret::default(),
            api_key_sid: String::new(),
            api_key_secret: Secret::default(),
            from: String::new(),
            messaging_service_sid: String::new(),
            base_url: "https://api.twilio.com".into(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            trusted_proxies: Vec::new(),
            shutdown_grace_secs: 10,
            body_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            idle_timeout_secs: 60,
            idempotency_window_secs: 86_400,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: StoreUrl("memory://".into()),
            key_prefix: "otp:".into(),
            timeout_ms: 500,
            pool_size: 1,
            memory_max_entries: 100_000,
        }
    }
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 180,
            max_attempts: 5,
            hash_keys: Vec::new(),
            test_numbers: BTreeMap::new(),
        }
    }
}

impl SmsConfig {
    /// Every provider a message may go to: the provider, the fallback and
    /// each route's vendors.
    pub fn providers(&self) -> impl Iterator<Item = SmsProvider> + '_ {
        std::iter::once(self.provider)
            .chain(self.fallback)
            .chain(self.routes.iter().flat_map(|r| r.vendors.iter().copied()))
    }

    /// The setting that holds `kind`'s address, and the address; `None`
    /// for the console.
    pub fn base_url(&self, kind: SmsProvider) -> Option<(&'static str, &str)> {
        Some(match kind {
            SmsProvider::Console => return None,
            SmsProvider::Plivo => ("sms.plivo.base_url", &self.plivo.base_url),
            SmsProvider::Twilio => ("sms.twilio.base_url", &self.twilio.base_url),
            SmsProvider::Vonage => ("sms.vonage.base_url", &self.vonage.base_url),
            SmsProvider::Telnyx => ("sms.telnyx.base_url", &self.telnyx.base_url),
            SmsProvider::Sinch => ("sms.sinch.base_url", &self.sinch.base_url),
            SmsProvider::Infobip => ("sms.infobip.base_url", &self.infobip.base_url),
            SmsProvider::Sns => ("sms.sns.endpoint", &self.sns.endpoint),
            SmsProvider::Http => ("sms.http.url", &self.http.url),
        })
    }

    /// Whether no message can reach a real phone: the console is every
    /// provider.
    pub fn console_only(&self) -> bool {
        self.providers().all(|p| p == SmsProvider::Console)
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            provider: SmsProvider::Console,
            fallback: None,
            timeout_ms: 5000,
            retries: 2,
            template: crate::domain::MessageTemplate::DEFAULT.into(),
            templates: BTreeMap::new(),
            country_locales: BTreeMap::new(),
            app_name: "otpd".into(),
            android_app_hash: None,
            webotp_domain: None,
            allowed_countries: Vec::new(),
            denied_countries: Vec::new(),
            allowed_special_prefixes: Vec::new(),
            routes: Vec::new(),
            plivo: PlivoConfig::default(),
            twilio: TwilioConfig::default(),
            vonage: VonageConfig::default(),
            telnyx: TelnyxConfig::default(),
            sinch: SinchConfig::default(),
            infobip: InfobipConfig::default(),
            sns: SnsConfig::default(),
            http: HttpVendorConfig::default(),
        }
    }
}

/// Lifecycle events to the app (docs/behaviour.md, "Events").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Endpoints by name; none: no events are made.
    pub endpoints: BTreeMap<String, EventEndpoint>,
    /// Longest wait for an endpoint's answer to one delivery.
    pub timeout_ms: u64,
    /// Seconds before each retry of a failed delivery; after the last, the
    /// event is kept as a dead letter.
    #[serde(deserialize_with = "number_list")]
    pub retry_schedule_secs: Vec<u64>,
    /// Deliveries the outbox holds at most; past it, new events are dropped
    /// (and counted), never the API call that made them.
    pub max_backlog: usize,
    /// Redis streams the outbox spreads over (each its own cluster slot).
    pub shards: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventEndpoint {
    /// Where events are POSTed (`https://...`).
    pub url: String,
    /// `whsec_` secrets: each signs every event, the first the app's current.
    #[serde(deserialize_with = "string_list")]
    pub secrets: Vec<Secret>,
    /// Event types it wants; none: all.
    #[serde(deserialize_with = "string_list")]
    pub types: Vec<String>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            endpoints: BTreeMap::new(),
            timeout_ms: 15_000,
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18_000, 36_000],
            max_backlog: 100_000,
            shards: 16,
        }
    }
}

/// The Twilio Verify v2 API (`/v2/Services/...`): off until an account and a
/// service are set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioVerifyConfig {
    /// The account SID clients sign in with (`AC` and 32 hex digits).
    pub account_sid: String,
    /// Auth tokens clients may sign in with; several, for rotation.
    #[serde(deserialize_with = "string_list")]
    pub auth_tokens: Vec<Secret>,
    /// API keys (`SK` and 32 hex digits) -> their secrets, which the SDKs
    /// may sign in with instead of the account and a token.
    #[serde(deserialize_with = "string_map")]
    pub api_keys: BTreeMap<String, Secret>,
    /// Service SIDs (`VA` and 32 hex digits) served, each with its
    /// friendly name.
    #[serde(deserialize_with = "string_map")]
    pub services: BTreeMap<String, String>,
}
