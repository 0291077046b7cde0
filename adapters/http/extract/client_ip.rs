//! The client's address: the socket peer, or, when the peer is a trusted
//! proxy, the nearest hop of `X-Forwarded-For` that isn't one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use poem::{FromRequest, Request, RequestBody};

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Each entry an address (`10.0.0.1`) or a network (`10.0.0.0/8`).
    ///
    /// # Errors
    /// The entry that is neither.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                let net = e
                    .parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{e}` is not an address or a network"))?;
                // Trusting every address lets any client write its own
                // address, and so escape every per-client limit.
                if net.prefix_len() == 0 {
                    return Err(format!("`{e}` trusts every address: name the proxies' own"));
                }
                Ok(net)
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Walks the hops from the nearest back; the first untrusted one is the
    /// client. Anything further back was written by the client itself.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = hop_address(hop) else {
                // A hop that isn't an address can't be trusted, nor anything beyond it.
                break;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// A hop's address: some proxies write `203.0.113.9:41234`,
/// `[2001:db8::1]:41234` or `[2001:db8::1]` rather than the bare address.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let unbracketed = hop.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    unbracketed
        .unwrap_or(hop)
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The client address of a request, as [`TrustedProxies`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<'a> FromRequest<'a> for ClientIp {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip().to_canonical());
        let ip = match req.data::<Arc<crate::adapters::http::Shared>>() {
            Some(shared) => shared.trusted_proxies.client_ip(
                peer,
                req.headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            ),
            None => peer,
        };
        Ok(Self(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        let xff = ["203.0.113.9, 198.51.100.7, 10.1.2.3"];
        // The peer is a stranger: its header is ignored.
        assert_eq!(
            proxies.client_ip(ip("198.51.100.50"), xff.into_iter()),
            ip("198.51.100.50")
        );
        // Behind two trusted hops, the first untrusted one is the client;
        // the spoofable leftmost entry is not.
        assert_eq!(
            proxies.client_ip(ip("192.0.2.1"), xff.into_iter()),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_ip(ip("192.0.2.1"), std::iter::empty()),
            ip("192.0.2.1")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            proxies.client_ip(ip("10.0.0.1"), ["nonsense, 10.0.0.2"].into_iter()),
            ip("10.0.0.2")
        );
        assert!(TrustedProxies::parse(&["not-an-ip".into()]).is_err());
    }

    #[test]
    fn trusting_every_address_is_refused() {
        for every in ["0.0.0.0/0", "::/0", " ::/0 "] {
            let refused = TrustedProxies::parse(&["10.0.0.0/8".into(), every.into()]).unwrap_err();
            assert!(refused.contains("every address"), "{refused}");
        }
        assert!(TrustedProxies::parse(&["0.0.0.0/1".into(), "::/1".into()]).is_ok());
    }

    #[test]
    fn hops_with_ports_are_read_as_their_address() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let client = |xff: &str| proxies.client_ip(ip("10.0.0.1"), [xff].into_iter());
        assert_eq!(client("203.0.113.9:41234"), ip("203.0.113.9"));
        assert_eq!(client("[2001:db8::1]:41234"), ip("2001:db8::1"));
        assert_eq!(client("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(
            client("203.0.113.9:notaport"),
            ip("10.0.0.1"),
            "not an address: the walk stops"
        );
        assert_eq!(client("198.51.100.7:1, 10.0.0.9:80"), ip("198.51.100.7"));
    }
}
