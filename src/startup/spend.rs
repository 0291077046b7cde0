//! The money caps from `[spend]`: the price table and the caps, each
//! amount checked.

use crate::config::{Config, ConfigError};
use crate::domain::{Cap, Money, Prices, SpendCaps};

/// The prices and caps the settings ask for.
///
/// # Errors
/// A [`ConfigError`] naming a setting out of its range.
pub(super) fn build_spend(config: &Config) -> Result<(Prices, SpendCaps), ConfigError> {
    let spend = &config.spend;
    let currency = spend.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ConfigError::new(
            "spend.currency",
            "must be a 3-letter ISO 4217 code, e.g. USD",
        ));
    }
    let amount = |key: &str, units: f64| {
        Money::from_units(units)
            .ok_or_else(|| ConfigError::new(key, "must be an amount of 0 or more, below a billion"))
    };
    // The shipped table is in US dollars: in another currency only the
    // operator's prices and the default count.
    let mut prices = if currency == "USD" {
        Prices::approximate()
    } else {
        Prices {
            by_country: Default::default(),
            ..Prices::approximate()
        }
    };
    prices.currency = currency;
    prices.default = amount("spend.default_price", spend.default_price)?;
    for (country, price) in &spend.prices {
        let country = country.trim();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ConfigError::new(
                "spend.prices",
                format!("`{country}` is not a two-letter country code"),
            ));
        }
        let price = amount("spend.prices", *price)?;
        prices.by_country.insert(country.to_ascii_uppercase(), price);
    }
    let cap = |soft_key: &str, soft: f64, hard_key: &str, hard: f64| {
        let limit = |key, units| amount(key, units).map(|m| (m > Money::ZERO).then_some(m));
        let cap = Cap {
            soft: limit(soft_key, soft)?,
            hard: limit(hard_key, hard)?,
        };
        if let (Some(soft), Some(hard)) = (cap.soft, cap.hard) {
            if soft > hard {
                return Err(ConfigError::new(
                    soft_key,
                    format!("must not be above {hard_key}"),
                ));
            }
        }
        Ok(cap)
    };
    let caps = SpendCaps {
        day: cap("spend.day_soft", spend.day_soft, "spend.day_hard", spend.day_hard)?,
        month: cap(
            "spend.month_soft",
            spend.month_soft,
            "spend.month_hard",
            spend.month_hard,
        )?,
        country_day: cap(
            "spend.country_day_soft",
            spend.country_day_soft,
            "spend.country_day_hard",
            spend.country_day_hard,
        )?,
        country_month: cap(
            "spend.country_month_soft",
            spend.country_month_soft,
            "spend.country_month_hard",
            spend.country_month_hard,
        )?,
    };
    if caps.day.hard.is_none() && caps.month.hard.is_none() && !config.sms.console_only() {
        tracing::warn!(
            "spend.day_hard and spend.month_hard are off with a real SMS vendor: only limits.sends_per_hour \
             bounds the bill (docs/behaviour.md, \"Money caps\")"
        );
    }
    Ok((prices, caps))
}
