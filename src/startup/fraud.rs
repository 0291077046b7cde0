//! The pumping breaker from `[fraud]`: each rule's mode (`auto` follows
//! the SMS vendors), its figures checked.

use std::time::Duration;

use crate::config::{Config, ConfigError, RuleMode};
use crate::domain::{Breaker, Floors, Mode};

/// The breaker the settings ask for; `None` when every rule is off.
///
/// # Errors
/// A [`ConfigError`] naming a setting out of its range.
pub(super) fn build_breaker(config: &Config) -> Result<Option<Breaker>, ConfigError> {
    let fraud = &config.fraud;
    // A real vendor makes every send cost money: enforce. The console
    // costs nothing, and a developer sending to one number all day
    // should see what would happen, not be refused.
    let auto = if config.sms.console_only() {
        Mode::Monitor
    } else {
        Mode::Enforce
    };
    let mode = |m: RuleMode| match m {
        RuleMode::Auto => auto,
        RuleMode::Off => Mode::Off,
        RuleMode::Monitor => Mode::Monitor,
        RuleMode::Enforce => Mode::Enforce,
    };
    if !(1..=6).contains(&fraud.prefix_digits) {
        return Err(ConfigError::new("fraud.prefix_digits", "must be between 1 and 6"));
    }
    let per = fraud.unverified_per_approved;
    if !(0.0..=100.0).contains(&per) {
        return Err(ConfigError::new(
            "fraud.unverified_per_approved",
            "must be between 0 and 100",
        ));
    }
    if !(1..=168).contains(&fraud.block_hours) {
        return Err(ConfigError::new("fraud.block_hours", "must be between 1 and 168"));
    }
    for (key, floor) in [
        ("fraud.country_hour_floor", fraud.country_hour_floor),
        ("fraud.country_day_floor", fraud.country_day_floor),
        ("fraud.prefix_hour_floor", fraud.prefix_hour_floor),
        ("fraud.prefix_day_floor", fraud.prefix_day_floor),
    ] {
        // 0 would block a group's first send: a new country, a new prefix.
        if floor == 0 {
            return Err(ConfigError::new(key, "must be 1 or more"));
        }
    }
    if fraud.countries_per_client == 0 {
        return Err(ConfigError::new(
            "fraud.countries_per_client",
            "must be 1 or more (fraud.client_mode = \"off\" turns the rule off)",
        ));
    }
    for (key, hour, day) in [
        (
            "fraud.country_day_floor",
            fraud.country_hour_floor,
            fraud.country_day_floor,
        ),
        (
            "fraud.prefix_day_floor",
            fraud.prefix_hour_floor,
            fraud.prefix_day_floor,
        ),
    ] {
        if day < hour {
            return Err(ConfigError::new(key, "must not be below its hour floor"));
        }
    }
    for entry in &fraud.safe {
        let digits = entry.strip_prefix('+').unwrap_or_default();
        // No country code starts with 0.
        let e164 = (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if !e164 || digits.starts_with('0') {
            return Err(ConfigError::new(
                "fraud.safe",
                format!("`{entry}` is not a number or prefix in E.164 (+, then 1 to 15 digits, not 0 first)"),
            ));
        }
        // A country code's length or less: a whole country or region.
        if digits.len() <= 3 {
            tracing::warn!(
                "fraud.safe holds {entry}, a whole country or region: the pumping breaker never counts or blocks it"
            );
        }
    }
    let breaker = Breaker {
        country: mode(fraud.country_mode),
        prefix: mode(fraud.prefix_mode),
        prefix_digits: usize::from(fraud.prefix_digits),
        country_floors: Floors {
            hour: fraud.country_hour_floor,
            day: fraud.country_day_floor,
        },
        prefix_floors: Floors {
            hour: fraud.prefix_hour_floor,
            day: fraud.prefix_day_floor,
        },
        per_approved: per,
        block_for: Duration::from_secs(u64::from(fraud.block_hours) * 3_600),
        safe: fraud.safe.clone(),
        clients: mode(fraud.client_mode),
        countries_per_client: fraud.countries_per_client,
    };
    if breaker.is_off() && !config.sms.console_only() {
        tracing::warn!(
            "fraud.country_mode, fraud.prefix_mode and fraud.client_mode are off with a real SMS vendor: \
             nothing but the static rules stands between an SMS-pumping attack and the bill"
        );
    }
    Ok((!breaker.is_off()).then_some(breaker))
}
