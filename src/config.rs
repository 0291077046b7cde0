//! Settings: built-in defaults, then `otpd.toml` (or `--config FILE`), then
//! `OTPD_*` environment variables with `__` between levels.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const ENV_PREFIX: &str = "OTPD_";
pub const DEFAULT_FILE: &str = "otpd.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub store: StoreConfig,
    pub otp: OtpConfig,
    pub sms: SmsConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
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
    /// A connection that sends and receives nothing this long is closed.
    pub idle_timeout_secs: u64,
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
    /// Redis connections kept; each one multiplexes many requests.
    pub pool_size: u32,
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
    /// E.164 number -> fixed code; never texted.
    #[serde(deserialize_with = "string_map")]
    pub test_numbers: BTreeMap<String, String>,
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
    pub plivo: PlivoConfig,
    pub twilio: TwilioConfig,
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
    /// Codes sent by the whole service per hour.
    pub sends_per_hour: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            resend_after_secs: 30,
            sends_per_phone: 5,
            sends_window_secs: 600,
            sends_per_ip: 20,
            verifies_per_ip: 60,
            sends_per_hour: 0,
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
    /// Keys that may call the API, raw or `sha256:<hex>`; empty: open.
    #[serde(deserialize_with = "string_list")]
    pub api_keys: Vec<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// Prints each message on standard output.
    #[default]
    Console,
    Plivo,
    Twilio,
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
            idle_timeout_secs: 60,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: StoreUrl("memory://".into()),
            key_prefix: "otp:".into(),
            timeout_ms: 500,
            pool_size: 8,
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

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            provider: SmsProvider::Console,
            fallback: None,
            timeout_ms: 5000,
            retries: 2,
            template: crate::domain::MessageTemplate::DEFAULT.into(),
            app_name: "otpd".into(),
            android_app_hash: None,
            webotp_domain: None,
            allowed_countries: Vec::new(),
            denied_countries: Vec::new(),
            plivo: PlivoConfig::default(),
            twilio: TwilioConfig::default(),
        }
    }
}

/// A setting that was rejected, named by its dotted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

impl Config {
    /// Loads the layers. `file` must exist when given; the default
    /// `otpd.toml` is read only when present.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// [`Config::load`] with the environment given, for tests.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} does not exist", path.display()),
                ));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file(DEFAULT_FILE)),
        }
        figment.merge(RawEnv::from(env)).extract_lossy().map_err(|e| {
            let key = e.path.join(".");
            ConfigError::new(if key.is_empty() { "config".into() } else { key }, e.kind)
        })
    }
}

/// `OTPD_A__B=v` as `a.b = "v"`. figment's own `Env` reads `+14155552671`
/// or `0123` as numbers and loses their text; here every value stays a
/// string, and lossy extraction turns it into a number where one is wanted.
struct RawEnv(Dict);

impl RawEnv {
    fn from(env: &[(String, String)]) -> Self {
        let mut root = Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // Only nested names are settings; `OTPD_TEST_REDIS_URL` and such are not.
            if !rest.contains("__") {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            insert(&mut root, &path, Value::from(value.clone()));
        }
        Self(root)
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [leaf] => {
            dict.insert(leaf.clone(), value);
        }
        [head, rest @ ..] => {
            let child = dict
                .entry(head.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = child {
                insert(inner, rest, value);
            }
        }
    }
}

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("OTPD_ environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// A list given as a list, or as one comma-separated string (how a list
/// arrives from the environment).
fn string_list<'de, D: Deserializer<'de>, T: From<String>>(de: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(de)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| T::from(s.to_owned()))
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(T::from).collect(),
    })
}

/// A map given as a table, or as one string of `key=value` pairs separated
/// by commas (how a map arrives from the environment).
fn string_map<'de, D: Deserializer<'de>>(de: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum PairsOrTable {
        Pairs(String),
        Table(BTreeMap<String, String>),
    }
    match PairsOrTable::deserialize(de)? {
        PairsOrTable::Table(map) => Ok(map),
        PairsOrTable::Pairs(s) => s
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| serde::de::Error::custom(format!("`{pair}` is not key=value")))
            })
            .collect(),
    }
}

/// A secret setting: `Debug` and serialization never show it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Defaults hold no secrets, so serializing only ever shows settings.
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

/// The store's URL, which may carry a password: `Debug` and [`StoreUrl::redacted`]
/// hide it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl StoreUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any user info replaced: `redis://<redacted>@host:6379`.
    pub fn redacted(&self) -> String {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                format!("{}<redacted>{}", &self.0[..scheme_end + 3], &self.0[at..])
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}
