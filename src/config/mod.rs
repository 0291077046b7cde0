//! Settings: built-in defaults, then `otpd.toml` (or `--config FILE`), then
//! `OTPD_*` environment variables with `__` between levels.

mod env;
mod fraud;
mod secrets;
mod sections;
mod spend;
mod vendors;
mod voice;
mod whatsapp;

use std::fmt;
use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;

use self::env::RawEnv;
pub use self::fraud::{FraudConfig, RuleMode};
pub use self::secrets::{without_query, Secret, StoreUrl};
pub use self::sections::*;
pub use self::spend::{CountryCaps, SpendConfig};
pub use self::vendors::*;
pub use self::voice::{ChannelNames, VoiceConfig, VoiceProvider, VonageVoiceConfig, WorkflowConfig};
pub use self::whatsapp::{MetaConfig, TwilioWhatsappConfig, WhatsappConfig, WhatsappProvider};

pub const ENV_PREFIX: &str = "OTPD_";
pub const DEFAULT_FILE: &str = "otpd.toml";

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
