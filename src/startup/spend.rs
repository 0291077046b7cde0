//! The money caps from `[spend]`: the price table and the caps, each
//! amount checked.

use crate::config::{Config, ConfigError, RuleMode};
use crate::domain::{Cap, Channel, ChannelPrices, Money, Prices, SpendCaps};

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
        let money = Money::from_units(units)
            .ok_or_else(|| ConfigError::new(key, "must be an amount of 0 or more, below a billion"))?;
        // Amounts are kept to the millionth: a smaller one would be 0, off.
        if units > 0.0 && money == Money::ZERO {
            return Err(ConfigError::new(key, "must be 0 (off) or at least 0.000001"));
        }
        Ok(money)
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
    let mut named = std::collections::BTreeSet::new();
    for (country, price) in &spend.prices {
        let country = country.trim().to_ascii_uppercase();
        // `UK` would start and never match: numbers are `GB`.
        if !crate::numbering::is_region(&country) {
            return Err(ConfigError::new(
                "spend.prices",
                format!("`{country}` is not a country code numbers have (ISO 3166: GB, not UK)"),
            ));
        }
        if !named.insert(country.clone()) {
            return Err(ConfigError::new(
                "spend.prices",
                format!("`{country}` is given twice"),
            ));
        }
        let price = amount("spend.prices", *price)?;
        prices.by_country.insert(country, price);
    }
    for (channel, key, table) in [
        (Channel::Whatsapp, "spend.whatsapp_prices", &spend.whatsapp_prices),
        (Channel::Voice, "spend.voice_prices", &spend.voice_prices),
    ] {
        if table.is_empty() {
            continue;
        }
        let mut own = ChannelPrices::default();
        for (name, price) in table {
            let price = amount(key, *price)?;
            if name.eq_ignore_ascii_case("default") {
                own.default = Some(price);
                continue;
            }
            let country = name.trim().to_ascii_uppercase();
            if !crate::numbering::is_region(&country) {
                return Err(ConfigError::new(
                    key,
                    format!("`{country}` is neither `default` nor a country code numbers have"),
                ));
            }
            if own.by_country.insert(country.clone(), price).is_some() {
                return Err(ConfigError::new(key, format!("`{country}` is given twice")));
            }
        }
        prices.channels.insert(channel.as_str(), own);
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
        by_country: Default::default(),
    };
    let mut by_country = std::collections::BTreeMap::new();
    for (country, own) in &spend.countries {
        let country = country.trim().to_ascii_uppercase();
        if !crate::numbering::is_region(&country) {
            return Err(ConfigError::new(
                "spend.countries",
                format!("`{country}` is not a country code numbers have (ISO 3166: GB, not UK)"),
            ));
        }
        let key = |limit: &str| format!("spend.countries.{country}.{limit}");
        let day = cap(&key("day_soft"), own.day_soft, &key("day_hard"), own.day_hard)?;
        let month = cap(
            &key("month_soft"),
            own.month_soft,
            &key("month_hard"),
            own.month_hard,
        )?;
        if by_country.insert(country.clone(), [day, month]).is_some() {
            return Err(ConfigError::new(
                "spend.countries",
                format!("`{country}` is given twice"),
            ));
        }
    }
    let caps = SpendCaps { by_country, ..caps };
    // The soft limits let through destinations whose prefix converts,
    // which only the prefix rule knows: without it they would refuse all.
    if config.fraud.prefix_mode == RuleMode::Off {
        let soft = [
            ("spend.day_soft", caps.day),
            ("spend.month_soft", caps.month),
            ("spend.country_day_soft", caps.country_day),
            ("spend.country_month_soft", caps.country_month),
        ];
        let own = caps
            .by_country
            .values()
            .flatten()
            .map(|cap| ("spend.countries", *cap));
        if let Some((key, _)) = soft.into_iter().chain(own).find(|(_, cap)| cap.soft.is_some()) {
            return Err(ConfigError::new(
                key,
                "needs fraud.prefix_mode on (monitor or enforce): the soft limits let through numbers whose 1k prefix converts, which only the prefix rule counts",
            ));
        }
    }
    if caps.day.hard.is_none() && caps.month.hard.is_none() && !config.sms.console_only() {
        tracing::warn!(
            "spend.day_hard and spend.month_hard are off with a real SMS vendor: only the service's hourly \
             send budget bounds the bill (docs/behaviour.md, \"Money caps\")"
        );
    }
    Ok((prices, caps))
}
