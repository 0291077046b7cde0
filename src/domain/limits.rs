//! Abuse limits: how often a phone may get a code, and how much a client or
//! the whole service may send or guess in a window.

use std::net::IpAddr;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    SendsFromIp(IpAddr),
    VerifiesFromIp(IpAddr),
    GlobalSends,
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
