//! `[spend]`: the money caps (`domain::SpendCaps`; docs/behaviour.md,
//! "Money caps"). Amounts are in `currency` units; a cap of 0 is off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::env::number_map;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpendConfig {
    /// The currency of the prices and caps (ISO 4217), as events show it.
    pub currency: String,
    /// One SMS to a country neither table names.
    pub default_price: f64,
    /// One SMS by destination country (`NG = 0.30`), over the approximate
    /// table otpd ships.
    #[serde(deserialize_with = "number_map")]
    pub prices: BTreeMap<String, f64>,
    /// One WhatsApp message by destination country, and `default` for the
    /// rest; empty: the SMS prices.
    #[serde(deserialize_with = "number_map")]
    pub whatsapp_prices: BTreeMap<String, f64>,
    /// One call by destination country, and `default` for the rest; empty:
    /// the SMS prices.
    #[serde(deserialize_with = "number_map")]
    pub voice_prices: BTreeMap<String, f64>,
    /// Service-wide spend a UTC day past which only destinations with
    /// approved history are sent codes.
    pub day_soft: f64,
    /// ... past which no code is sent until the day ends.
    pub day_hard: f64,
    pub month_soft: f64,
    pub month_hard: f64,
    /// The same for each destination country alone.
    pub country_day_soft: f64,
    pub country_day_hard: f64,
    pub country_month_soft: f64,
    pub country_month_hard: f64,
    /// One country's own caps in place of the four above
    /// (`[spend.countries.NG] day_hard = 5`): a country the app barely
    /// serves gets less room than its main markets.
    pub countries: BTreeMap<String, CountryCaps>,
}

/// One country's caps; a limit left out is off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountryCaps {
    pub day_soft: f64,
    pub day_hard: f64,
    pub month_soft: f64,
    pub month_hard: f64,
}

impl Default for SpendConfig {
    fn default() -> Self {
        Self {
            currency: "USD".into(),
            default_price: 0.10,
            prices: BTreeMap::new(),
            whatsapp_prices: BTreeMap::new(),
            voice_prices: BTreeMap::new(),
            day_soft: 0.0,
            day_hard: 0.0,
            month_soft: 0.0,
            month_hard: 0.0,
            country_day_soft: 0.0,
            country_day_hard: 0.0,
            country_month_soft: 0.0,
            country_month_hard: 0.0,
            countries: BTreeMap::new(),
        }
    }
}
