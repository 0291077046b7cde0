//! `sms.templates` and `sms.country_locales` over the built-in ones: every
//! template parsed and checked to fit one segment with the app name and the
//! autofill lines. An operator's template that doesn't stops the start,
//! naming its locale; a built-in one that doesn't (a long app name with both
//! autofill lines leaves little room in 70 UCS-2 characters) is left out
//! with a warning naming its locale, whose messages then use the default
//! template, so a setting that started before still starts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::wiring::autofill;
use crate::config::{Config, ConfigError};
use crate::domain::{minutes_shown, Locale, MessageTemplate, Templates, BUILT_IN_TEMPLATES, COUNTRY_LOCALES};

pub(super) fn build_templates(config: &Config, ttl: Duration) -> Result<Templates, ConfigError> {
    let sms = &config.sms;
    // Locale -> (text, whether it is built in).
    let mut texts: BTreeMap<Locale, (&str, bool)> = BTreeMap::new();
    // The code's lifetime is one for the process, so each built-in template
    // is picked in the form its minute count takes.
    let minutes = minutes_shown(ttl);
    for (locale, forms) in BUILT_IN_TEMPLATES {
        let locale = Locale::parse(locale).unwrap_or_else(|_| unreachable!("built-in locales are canonical"));
        texts.insert(locale, (forms.text(minutes), true));
    }
    for (key, text) in &sms.templates {
        let locale = Locale::parse(key).map_err(|e| ConfigError::new(format!("sms.templates.{key}"), e))?;
        if text.is_empty() {
            texts.remove(&locale);
        } else {
            texts.insert(locale, (text, false));
        }
    }
    let mut by_locale = HashMap::new();
    for (locale, (text, built_in)) in texts {
        let key = format!("sms.templates.{locale}");
        let checked = MessageTemplate::parse(text, &sms.app_name, autofill(sms))
            .and_then(|t| t.check_single_segment(ttl).map(|()| t));
        match checked {
            Ok(template) => {
                by_locale.insert(locale, template);
            }
            Err(e) if built_in => tracing::warn!(
                setting = %key,
                reason = %e,
                "the built-in template doesn't fit with this app name and autofill lines; \
                 its locale gets the default template (set a shorter one to keep the language)"
            ),
            Err(e) => return Err(ConfigError::new(key, e)),
        }
    }

    let mut by_country: HashMap<String, Locale> = HashMap::new();
    for (locale, countries) in COUNTRY_LOCALES {
        let locale = Locale::parse(locale).unwrap_or_else(|_| unreachable!("built-in locales are canonical"));
        for country in *countries {
            by_country.insert((*country).to_owned(), locale.clone());
        }
    }
    for (country, locale) in &sms.country_locales {
        let key = format!("sms.country_locales.{country}");
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ConfigError::new(
                key,
                "must be an ISO 3166 country code such as IN",
            ));
        }
        let country = country.to_ascii_uppercase();
        if locale.is_empty() {
            by_country.remove(&country);
        } else {
            by_country.insert(
                country,
                Locale::parse(locale).map_err(|e| ConfigError::new(key, e))?,
            );
        }
    }
    Ok(Templates::new(by_locale, by_country))
}
