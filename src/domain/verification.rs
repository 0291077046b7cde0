//! A verification: what one send starts and its resends continue, known by
//! an id nobody can guess, until a right code, a cancel, the attempt cap or
//! time ends it.

use std::fmt;
use std::time::Duration;

use rand::rngs::OsRng;
use rand::{RngCore, TryRngCore};

use super::{Channel, Delivery, VerifyOutcome};

/// `VE` and 32 lowercase hex digits: 128 bits, sealed from the phone and
/// random bits (see [`super::IdSeal`]). The shape is Twilio Verify's, so
/// one id serves both APIs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VerificationId(String);

pub const VERIFICATION_ID_LEN: usize = 34;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationIdError {
    #[error("a verification id is `VE` and 32 hex digits")]
    Format,
}

impl VerificationId {
    /// 128 random bits: an id that names no phone (see [`super::IdSeal`]
    /// for the ids verifications get).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        OsRng.unwrap_err().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Strict: `VE` then 32 hex digits, either case (Twilio's pattern);
    /// held in lowercase, as made.
    ///
    /// # Errors
    /// [`VerificationIdError::Format`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, VerificationIdError> {
        let digits = raw.strip_prefix("VE").ok_or(VerificationIdError::Format)?;
        if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VerificationIdError::Format);
        }
        Ok(Self(format!("VE{}", digits.to_ascii_lowercase())))
    }

    /// The id of these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(format!("VE{}", hex::encode(bytes)))
    }

    /// The 16 bytes the id's digits spell.
    pub fn to_bytes(&self) -> Option<[u8; 16]> {
        let bytes = hex::decode(self.0.get(2..)?).ok()?;
        bytes.try_into().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who started a verification: the only caller that is told its id and
/// may resend, read, check or end it by id. A digest of the caller's API
/// key on `/v1` and the original routes, of the account and service on
/// Twilio's; one scope for everyone on a service without keys.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

/// Bytes of a scope: 64 bits of SHA-256, as 16 hex digits.
pub const SCOPE_LEN: usize = 16;

impl Scope {
    /// The scope of a caller named by `caller` (an API key's digest, a
    /// Twilio service); short, since every verification carries it.
    pub fn of(caller: &str) -> Self {
        use sha2::{Digest, Sha512};
        let digest = Sha512::digest(caller.as_bytes());
        Self(hex::encode(&digest[..SCOPE_LEN / 2]))
    }

    /// A scope as stored; `None` for anything [`Scope::of`] can't make.
    pub fn stored(raw: &str) -> Option<Self> {
        (raw.len() == SCOPE_LEN && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", self.0)
    }
}

/// What a send does with the phone's verifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendMode {
    /// Starts a verification of its own (`/v1`): a stranger's send for the
    /// same phone never joins the owner's.
    New,
    /// Adds the code to the scope's verification with this id, pending.
    Resend(VerificationId),
    /// Adds the code to the scope's pending verification if it has one,
    /// else starts one: Twilio's one verification per service and phone.
    KeepPending,
    /// Replaces the scope's verifications (the original routes, as they
    /// always did).
    Replace,
    /// The service's own send on its workflow's next channel, after the
    /// newest message (`after`, the vendor's id) failed or got no
    /// delivered report in time: joins verification `id` past the
    /// cooldown, only while `after` is still its newest message and not
    /// delivered, and the code's channel is the next one
    /// (`Record::falls_back`), so a report and a timer racing send one.
    Fallback { id: VerificationId, after: String },
}

/// Most codes a verification holds live at once; a send past it drops the
/// oldest. With the default cooldown (30 s) and lifetime (180 s) at most 6
/// are ever live, so only settings without a cooldown reach it.
pub const MAX_LIVE_CODES: usize = 9;

/// Most verifications a phone holds at once; a send past it is refused
/// until the oldest ends (never pushes one out, which would let a stranger
/// end the owner's). The ceiling's reservations keep it far off at the
/// defaults (at most 4 live).
pub const MAX_VERIFICATIONS: usize = 8;

/// Most send times a verification keeps, newest last.
pub const MAX_SEND_TIMES: usize = 10;

/// Where a verification stands, the one word every surface tells.
/// Expired and locked verifications are not told apart from ones that never
/// were: they answer as not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for a right code.
    Pending,
    /// Ended by a right code, or by the app's own word.
    Approved,
    /// Ended by a cancel.
    Canceled,
}

impl Status {
    /// Its name on every surface, Twilio's included.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Canceled => "canceled",
        }
    }
}

/// A pending verification as the store holds it, without its codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: VerificationId,
    /// Unix seconds of its first send.
    pub created_at: u64,
    /// Until its newest code expires.
    pub expires_in: Duration,
    /// Wrong codes still allowed; a resend never restores them. 0: locked.
    pub attempts_remaining: u32,
    /// SMS sent for it.
    pub sends: u32,
    /// Unix seconds of its last [`MAX_SEND_TIMES`] sends, oldest first.
    pub send_times: Vec<u64>,
    /// The channel of each of `send_times`, in step with it.
    pub channels: Vec<Channel>,
    /// The workflow's channels not tried yet, in order.
    pub next: Vec<Channel>,
    /// Who took the newest SMS and what became of it.
    pub delivery: Option<Delivery>,
}

impl Verification {
    /// Unix seconds of its last change: a send or a delivery report.
    pub fn updated_at(&self) -> u64 {
        let sent = self.send_times.last().copied().unwrap_or(self.created_at);
        self.delivery.as_ref().map_or(sent, |d| d.updated_at.max(sent))
    }
}

/// What a send did to the phone's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The code is stored in this verification: a new one (`sends == 1`)
    /// or the pending one, kept.
    Stored(Verification),
    /// The last code went out less than `resend_after` ago.
    TooSoon { retry_after: Duration },
    /// The phone has had its codes for this window, or holds as many
    /// verifications as it may.
    QuotaExceeded { retry_after: Duration },
    /// The phone's ceiling of wrong codes has no room for another
    /// verification's attempts until `retry_after`.
    GuessCeiling { retry_after: Duration },
    /// A resend named no pending verification of the caller's.
    NotFound,
}

/// What a guess did, and the verification it was checked against: as it
/// was before a right code ended it, or as a wrong one left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub outcome: VerifyOutcome,
    pub verification: Option<Verification>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_ve_and_32_lowercase_hex_and_parse_strictly() {
        let id = VerificationId::generate();
        assert_eq!(id.as_str().len(), VERIFICATION_ID_LEN);
        assert_eq!(VerificationId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(id, VerificationId::generate());
        let upper = format!("VE{}", "AB".repeat(16));
        assert_eq!(
            VerificationId::parse(&upper).unwrap().as_str(),
            format!("VE{}", "ab".repeat(16))
        );
        for bad in [
            "",
            "VE",
            "ve0123456789abcdef0123456789abcdef",
            "VE0123",
            "VEg123456789abcdef0123456789abcdef",
        ] {
            assert!(VerificationId::parse(bad).is_err(), "{bad}");
        }
        assert!(VerificationId::parse(&format!("{}0", id.as_str())).is_err());
    }
}
