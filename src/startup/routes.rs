//! `sms.routes`: checked at start (each country and prefix claimed once,
//! known vendors with their credentials, senders a network will carry, DLT
//! ids as DLT issues them) and built into one [`Routes`] sender.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::sms::{vendor, Shared};
use crate::adapters::sms::{Dlt, Failover, Routes};
use crate::config::{ConfigError, RouteConfig, SmsConfig};
use crate::ports::SmsSender;

/// The longest alphanumeric sender id networks carry (GSM 03.40's
/// alphanumeric originator: 11 characters).
const MAX_ALPHANUMERIC_SENDER: usize = 11;

pub(super) fn build(
    sms: &SmsConfig,
    shared: &Shared,
    default: Arc<dyn SmsSender>,
) -> Result<Routes, ConfigError> {
    let mut prefixes: Vec<(String, Arc<dyn SmsSender>)> = Vec::new();
    let mut countries: HashMap<String, Arc<dyn SmsSender>> = HashMap::new();
    let mut claimed_prefixes = BTreeSet::new();
    for (i, route) in sms.routes.iter().enumerate() {
        let key = |field: &str| format!("sms.routes[{i}].{field}");
        let chain = chain(sms, route, shared, &key)?;
        if route.countries.is_empty() && route.prefixes.is_empty() {
            return Err(ConfigError::new(
                key("countries"),
                "a route needs countries or prefixes",
            ));
        }
        for country in &route.countries {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::new(
                    key("countries"),
                    format!("`{country}` is not an ISO 3166 country code such as IN or GB"),
                ));
            }
            if countries.insert(country.clone(), Arc::clone(&chain)).is_some() {
                return Err(ConfigError::new(
                    key("countries"),
                    format!("{country} is claimed by an earlier route too"),
                ));
            }
        }
        for prefix in &route.prefixes {
            let digits = prefix.strip_prefix('+').unwrap_or_default();
            if !(1..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::new(
                    key("prefixes"),
                    format!("`{prefix}` is not an E.164 prefix such as +44 or +9198"),
                ));
            }
            if !claimed_prefixes.insert(prefix.clone()) {
                return Err(ConfigError::new(
                    key("prefixes"),
                    format!("{prefix} is claimed by another route too"),
                ));
            }
            prefixes.push((prefix.clone(), Arc::clone(&chain)));
        }
    }
    Ok(Routes::new(prefixes, countries, default))
}

/// The route's vendors, each with the route's sender, chained in order.
fn chain(
    sms: &SmsConfig,
    route: &RouteConfig,
    shared: &Shared,
    key: &dyn Fn(&str) -> String,
) -> Result<Arc<dyn SmsSender>, ConfigError> {
    let mut vendors = Vec::new();
    for kind in &route.vendors {
        let Some(vendor) = vendor(*kind, sms) else {
            return Err(ConfigError::new(
                key("vendors"),
                "the console is no vendor to route to",
            ));
        };
        if vendors.iter().any(|(name, _)| *name == vendor.name()) {
            return Err(ConfigError::new(
                key("vendors"),
                format!("{} is named twice", vendor.name()),
            ));
        }
        vendors.push((vendor.name(), vendor));
    }
    if vendors.is_empty() {
        return Err(ConfigError::new(
            key("vendors"),
            "a route needs at least one vendor",
        ));
    }
    for (name, sender) in &route.senders {
        let setting = key(&format!("senders.{name}"));
        if !vendors.iter().any(|(vendor, _)| vendor == name) {
            return Err(ConfigError::new(setting, "names no vendor of this route"));
        }
        check_sender(sender).map_err(|reason| ConfigError::new(setting, reason))?;
    }
    let dlt = route
        .dlt
        .as_ref()
        .map(|d| Dlt::new(&d.entity_id, &d.template_id, &d.template_category))
        .transpose()
        .map_err(|e| ConfigError::new(key(&format!("dlt.{}", e.field().name())), e))?;
    let mut senders = Vec::new();
    for (name, vendor) in &vendors {
        let sender = route.senders.get(*name).map(String::as_str);
        let built = vendor.sender(shared, sender, dlt.as_ref())?;
        if dlt.is_some() && !built.carries_dlt {
            // Some vendors take the ids at registration instead (Twilio,
            // Telnyx, Sinch): a chain may still use them.
            tracing::warn!(
                setting = %key("dlt"),
                vendor = *name,
                "this vendor's requests carry no DLT ids; register the template with it, \
                 or India's networks may drop its messages"
            );
        }
        senders.push(built.sender);
    }
    let last = senders
        .pop()
        .unwrap_or_else(|| unreachable!("the chain has a vendor"));
    Ok(senders
        .into_iter()
        .rev()
        .fold(last, |next, sender| Arc::new(Failover::new(sender, next))))
}

/// A sender a network carries: a number (`+` and digits, or a short code)
/// or an alphanumeric sender id of at most 11 letters, digits and spaces.
fn check_sender(sender: &str) -> Result<(), String> {
    let number = sender.strip_prefix('+').unwrap_or(sender);
    if !number.is_empty() && number.len() <= 15 && number.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(());
    }
    if sender.is_empty() || !sender.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return Err(format!(
            "`{sender}` is neither a number nor an alphanumeric sender id (letters, digits, spaces)"
        ));
    }
    if sender.chars().count() > MAX_ALPHANUMERIC_SENDER {
        return Err(format!(
            "the alphanumeric sender `{sender}` is longer than {MAX_ALPHANUMERIC_SENDER} characters"
        ));
    }
    Ok(())
}
