//! `[fraud]`: the pumping breaker (`domain::Breaker`; docs/behaviour.md,
//! "SMS pumping").

use serde::{Deserialize, Serialize};

use super::env::string_list;

/// What the breaker does with a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// `enforce` when a real SMS vendor is configured (provider, fallback
    /// or a route), `monitor` with the console alone.
    #[default]
    Auto,
    Off,
    Monitor,
    Enforce,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudConfig {
    /// The country rule's mode.
    pub country_mode: RuleMode,
    /// The prefix rule's mode.
    pub prefix_mode: RuleMode,
    /// The client rule's mode: destination countries per client a day.
    pub client_mode: RuleMode,
    /// Destination countries one client (an address, or an IPv6 /64) may
    /// send to in a day.
    pub countries_per_client: u32,
    /// Digits a prefix leaves off a number: 3 makes groups of 1,000.
    pub prefix_digits: u8,
    /// Unverified sends a country always has room for, per hour.
    pub country_hour_floor: u32,
    /// ... and per day.
    pub country_day_floor: u32,
    /// Unverified sends a prefix always has room for, per hour.
    pub prefix_hour_floor: u32,
    /// ... and per day.
    pub prefix_day_floor: u32,
    /// Unverified sends allowed per approval (in the window, and on the
    /// group's best day of the last 14).
    pub unverified_per_approved: f64,
    /// A first block's length; each block within a week of the last
    /// doubles it, up to a week.
    pub block_hours: u32,
    /// Numbers and prefixes in E.164 (`+4479460`) the breaker never
    /// counts or blocks.
    #[serde(deserialize_with = "string_list")]
    pub safe: Vec<String>,
}

impl Default for FraudConfig {
    fn default() -> Self {
        Self {
            country_mode: RuleMode::Auto,
            prefix_mode: RuleMode::Auto,
            client_mode: RuleMode::Auto,
            countries_per_client: 3,
            prefix_digits: 3,
            country_hour_floor: 30,
            country_day_floor: 100,
            prefix_hour_floor: 10,
            prefix_day_floor: 20,
            unverified_per_approved: 1.0,
            block_hours: 12,
            safe: Vec::new(),
        }
    }
}
