//! Whether this instance keeps a local SMS inbox and serves the `/dev`
//! pages. Nothing turns them on but the two facts below, so no setting can
//! expose codes on a server by mistake (docs/behaviour.md, "Local inbox").

use std::net::SocketAddr;
use std::sync::Arc;

use crate::adapters::sms::Inbox;
use crate::config::Config;

/// An inbox when the console is the only sender on every route (no real
/// phone is ever texted), the address actually bound is loopback and no
/// proxy is trusted (no one but this machine can ask for the pages);
/// otherwise none, and `/dev` is unknown.
pub(super) fn dev_inbox(config: &Config, bound: SocketAddr) -> Option<Arc<Inbox>> {
    let local =
        config.sms.console_only() && config.http.trusted_proxies.is_empty() && bound.ip().is_loopback();
    local.then(|| Arc::new(Inbox::new(Inbox::CAPACITY)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SmsProvider;

    fn on(config: &Config, bound: &str) -> bool {
        dev_inbox(config, bound.parse().unwrap()).is_some()
    }

    #[test]
    fn only_the_console_alone_on_loopback_keeps_an_inbox() {
        let console = Config::default();
        assert_eq!(console.sms.provider, SmsProvider::Console);
        assert!(on(&console, "127.0.0.1:8080"));
        assert!(on(&console, "127.8.9.10:8080"));
        assert!(on(&console, "[::1]:8080"));
        assert!(!on(&console, "0.0.0.0:8080"));
        assert!(!on(&console, "[::]:8080"));
        assert!(!on(&console, "192.168.1.5:8080"));

        let mut vendor = Config::default();
        vendor.sms.provider = SmsProvider::Twilio;
        assert!(!on(&vendor, "127.0.0.1:8080"));

        let mut with_fallback = Config::default();
        with_fallback.sms.fallback = Some(SmsProvider::Plivo);
        assert!(!on(&with_fallback, "127.0.0.1:8080"));

        let mut with_a_route = Config::default();
        with_a_route.sms.routes = vec![crate::config::RouteConfig {
            countries: vec!["GB".into()],
            vendors: vec![SmsProvider::Twilio],
            ..crate::config::RouteConfig::default()
        }];
        assert!(!on(&with_a_route, "127.0.0.1:8080"));

        let mut behind_a_proxy = Config::default();
        behind_a_proxy.http.trusted_proxies = vec!["127.0.0.1".into()];
        assert!(!on(&behind_a_proxy, "127.0.0.1:8080"));
    }
}
