//! Abuse limits: how often a phone may get a code, and how much a client or
//! the whole service may send or guess in a window.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// At most `limit` events per `window`; a limit of 0 is off (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

impl Quota {
    pub const OFF: Quota = Quota {
        limit: 0,
        window: Duration::ZERO,
    };

    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window }
    }

    pub fn is_off(&self) -> bool {
        self.limit == 0 || self.window.is_zero()
    }
}

/// The per-phone rules checked, with the new code stored, in one atomic step.
/// The default is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendLimits {
    /// No new code for a phone until this long after the last one; zero is off.
    pub resend_after: Duration,
    /// Codes per phone per window.
    pub per_phone: Quota,
}

impl SendLimits {
    pub const OFF: SendLimits = SendLimits {
        resend_after: Duration::ZERO,
        per_phone: Quota::OFF,
    };

    /// Neither a cooldown nor a quota: storing a code checks nothing first.
    pub fn is_off(&self) -> bool {
        self.resend_after.is_zero() && self.per_phone.is_off()
    }
}

/// A counter shared by everyone who reaches the same store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    SendsFrom(ClientNet),
    VerifiesFrom(ClientNet),
    /// Reads of whether a phone has a code pending.
    LookupsFrom(ClientNet),
    GlobalSends,
}

/// The network a client's limits count under: one subscriber usually holds
/// a whole IPv6 /64 (and can pick any address in it), but one IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientNet {
    network: IpAddr,
    prefix: u8,
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// How many leading bits of an address name a client, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPrefixes {
    v4: u8,
    v6: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("an IPv4 prefix is 1 to 32 bits")]
    V4,
    #[error("an IPv6 prefix is 1 to 128 bits")]
    V6,
}

impl Default for ClientPrefixes {
    fn default() -> Self {
        Self { v4: 32, v6: 64 }
    }
}

impl ClientPrefixes {
    /// # Errors
    /// A [`PrefixError`] for a prefix longer than its family's addresses, or 0.
    pub fn new(v4: u8, v6: u8) -> Result<Self, PrefixError> {
        if !(1..=32).contains(&v4) {
            return Err(PrefixError::V4);
        }
        if !(1..=128).contains(&v6) {
            return Err(PrefixError::V6);
        }
        Ok(Self { v4, v6 })
    }

    /// The network `ip` belongs to; an IPv4 address written as IPv6
    /// (`::ffff:192.0.2.1`), or carried in a 6to4, Teredo or NAT64 address,
    /// counts as the IPv4 one: each IPv4 address owns a whole 6to4 /48 and
    /// any number of Teredo addresses, so by their /64s one IPv4 host
    /// would be 65,536 clients or more.
    pub fn client(&self, ip: IpAddr) -> ClientNet {
        let ip = match ip.to_canonical() {
            IpAddr::V6(v6) => carried_v4(v6).map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.v4)).unwrap_or(0);
                ClientNet {
                    network: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)),
                    prefix: self.v4,
                }
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.v6)).unwrap_or(0);
                ClientNet {
                    network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix: self.v6,
                }
            }
        }
    }
}

/// The IPv4 address a 6to4 (`2002::/16`: the next 32 bits), Teredo
/// (`2001::/32`: the last 32 bits, inverted) or NAT64 (`64:ff9b::/96`: the
/// last 32 bits) address carries.
fn carried_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    // NAT64's well-known prefix (RFC 6052, `64:ff9b::/96`): the last 32
    // bits are the IPv4 client behind the translator, which by its /64
    // would otherwise be one client for every IPv4 host it serves.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(Ipv4Addr::from(bits as u32));
    }
    match (bits >> 112, bits >> 96) {
        (0x2002, _) => Some(Ipv4Addr::from((bits >> 80) as u32)),
        (_, 0x2001_0000) => Some(Ipv4Addr::from(!(bits as u32))),
        _ => None,
    }
}

/// What taking one from a bucket came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Granted,
    /// The bucket is empty until `retry_after` has passed.
    Exhausted {
        retry_after: Duration,
    },
}

/// A step that first takes one from each of some buckets: done, or refused
/// by the bucket at `refused` (an index into the buckets asked for), with
/// nothing taken and nothing done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted<T> {
    Done(T),
    Refused { refused: usize, retry_after: Duration },
}

/// What storing a new code came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    Stored,
    /// The last code went out less than `resend_after` ago.
    TooSoon {
        retry_after: Duration,
    },
    /// The phone has had its codes for this window.
    QuotaExceeded {
        retry_after: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(prefixes: ClientPrefixes, ip: &str) -> String {
        prefixes.client(ip.parse().unwrap()).to_string()
    }

    #[test]
    fn six_to_four_and_teredo_count_as_the_ipv4_they_carry() {
        let default = ClientPrefixes::default();
        // 6to4 of 192.0.2.1, from two /64s of its /48.
        assert_eq!(net(default, "2002:c000:0201:1::1"), "192.0.2.1/32");
        assert_eq!(net(default, "2002:c000:0201:ffff::9"), "192.0.2.1/32");
        // Teredo (RFC 4380's example): server 65.54.227.120, client
        // 192.0.2.45 behind its NAT, stored inverted.
        assert_eq!(
            net(default, "2001:0000:4136:e378:8000:63bf:3fff:fdd2"),
            "192.0.2.45/32"
        );
        // Other 2001:: addresses are plain IPv6.
        assert_eq!(net(default, "2001:db8:1:2::1"), "2001:db8:1:2::/64");
        // NAT64 (RFC 6052's example, 192.0.2.33): each IPv4 client apart.
        assert_eq!(net(default, "64:ff9b::192.0.2.33"), "192.0.2.33/32");
        assert_eq!(net(default, "64:ff9b::c000:221"), "192.0.2.33/32");
        assert_eq!(net(default, "64:ff9b::192.0.2.34"), "192.0.2.34/32");
        assert_eq!(net(default, "64:ff9b:1::192.0.2.33"), "64:ff9b:1::/64");
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_ipv4_by_address() {
        let default = ClientPrefixes::default();
        assert_eq!(net(default, "2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            default.client("2001:db8:1:2:aaaa::1".parse().unwrap()),
            default.client("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap())
        );
        assert_ne!(
            default.client("2001:db8:1:2::1".parse().unwrap()),
            default.client("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(net(default, "203.0.113.77"), "203.0.113.77/32");
        assert_eq!(net(default, "::ffff:203.0.113.77"), "203.0.113.77/32");
        let wide = ClientPrefixes::new(24, 48).unwrap();
        assert_eq!(net(wide, "203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net(wide, "2001:db8:1:2::1"), "2001:db8:1::/48");
        assert_eq!(
            net(ClientPrefixes::new(32, 128).unwrap(), "2001:db8::1"),
            "2001:db8::1/128"
        );
        assert!(ClientPrefixes::new(0, 64).is_err());
        assert!(ClientPrefixes::new(32, 129).is_err());
    }
}
