//! What a start must refuse, or at least say, because the settings would be
//! unsafe where strangers can reach the service. On 127.0.0.1 with the
//! console sender, the defaults stay open and friendly.

use std::net::ToSocketAddrs;

use crate::config::{Config, ConfigError, SmsProvider};

/// Whether every address `http.listen` names is a loopback one.
///
/// # Errors
/// A [`ConfigError`] for an address that can't be read or resolved.
pub(super) fn listens_on_loopback(config: &Config) -> Result<bool, ConfigError> {
    let listen = &config.http.listen;
    let addresses: Vec<_> = listen
        .to_socket_addrs()
        .map_err(|e| ConfigError::new("http.listen", format!("`{listen}` is not an address: {e}")))?
        .collect();
    Ok(!addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()))
}

/// Whether `url` is `http://` to a host other than this machine: what it
/// carries crosses a network in clear. A URL that doesn't parse can't show
/// its host, so `http://` there counts as off this machine.
pub(super) fn in_clear_off_this_machine(url: &str) -> bool {
    if !url.starts_with("http://") {
        return false;
    }
    let on_this_machine = match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    !on_this_machine
}

/// Refuses settings that are unsafe as a whole, and warns of risky ones.
///
/// # Errors
/// A [`ConfigError`] naming the settings that must change.
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    let loopback = listens_on_loopback(config)?;
    // Only loopback, no proxy in front and no real phone texted is local:
    // a proxy on this machine carries strangers' requests to loopback, and
    // a real vendor makes every send cost money.
    let exposed = if !loopback {
        Some(format!(
            "http.listen ({}) is not a loopback address",
            config.http.listen
        ))
    } else if !config.http.trusted_proxies.is_empty() {
        Some("http.trusted_proxies is set, so requests come through a proxy from elsewhere".into())
    } else if !config.sms.console_only() {
        Some("a real SMS vendor is configured (sms.provider, sms.fallback or sms.routes)".into())
    } else {
        None
    };
    if let Some(why) = exposed {
        if config.auth.api_keys.is_empty() && !config.auth.allow_anonymous {
            return Err(ConfigError::new(
                "auth.api_keys",
                format!(
                    "is empty while {why}, so anyone who reaches otpd could send codes; set \
                     auth.api_keys, or auth.allow_anonymous = true if something in front of otpd \
                     checks callers"
                ),
            ));
        }
    }
    let sms = &config.sms;
    let (console, vendor): (Vec<_>, Vec<_>) = sms.providers().partition(|p| *p == SmsProvider::Console);
    if !console.is_empty() && !loopback {
        tracing::warn!(
            "sms.provider: the console sender writes codes to standard output and texts nobody, \
             yet http.listen ({}) is not a loopback address",
            config.http.listen
        );
    }
    if !vendor.is_empty() && config.limits.sends_per_hour == 0 {
        tracing::warn!(
            "limits.sends_per_hour is 0: nothing caps what the SMS vendor is asked to send (and \
             bills) in an hour"
        );
    }
    if !vendor.is_empty() && sms.allowed_countries.is_empty() {
        tracing::warn!(
            "sms.allowed_countries is empty: codes may be texted to every country; list the \
             countries your users are in"
        );
    }
    Ok(())
}
