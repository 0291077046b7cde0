//! A pending code's life: how long it lives, how many tries it allows, and
//! what a verify can come to.

use std::time::Duration;

use super::{Channel, CodeHash, Delivery, Scope, VerificationId};

/// The operator's rules for every code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    ttl: Duration,
    max_attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the code lifetime must be between 1 second and 1 day")]
    Ttl,
    #[error("the attempts per code must be between 1 and 100")]
    MaxAttempts,
}

impl OtpPolicy {
    /// # Errors
    /// A [`PolicyError`] when a value is outside its sane range.
    pub fn new(ttl: Duration, max_attempts: u32) -> Result<Self, PolicyError> {
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(86_400) {
            return Err(PolicyError::Ttl);
        }
        if !(1..=100).contains(&max_attempts) {
            return Err(PolicyError::MaxAttempts);
        }
        Ok(Self { ttl, max_attempts })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// What the store keeps for a newly sent code, with `id` for the
    /// verification it starts unless one is pending and kept.
    pub fn pending(&self, id: VerificationId, scope: Scope, hash: CodeHash) -> PendingOtp {
        PendingOtp {
            id,
            scope,
            hash,
            ttl: self.ttl,
            attempts: self.max_attempts,
            sent_at: 0,
            channel: None,
            next: Vec::new(),
            delivery: None,
        }
    }
}

/// A code waiting to be verified, as the store holds it.
#[derive(Debug, Clone)]
pub struct PendingOtp {
    /// The id a new verification gets; a kept one keeps its own.
    pub id: VerificationId,
    /// Who asked for it.
    pub scope: Scope,
    pub hash: CodeHash,
    pub ttl: Duration,
    pub attempts: u32,
    /// Unix seconds of the send.
    pub sent_at: u64,
    /// The way the code goes to the phone; none: the way its verification
    /// goes next (its workflow's next channel, else its newest send's),
    /// SMS for a new one.
    pub channel: Option<Channel>,
    /// A new verification's workflow after `channel`: the channels to fall
    /// back to, in order.
    pub next: Vec<Channel>,
    /// The SMS's delivery when its receipt is known before sending (a local
    /// sender, a test number): stored with the code, so the send writes once.
    pub delivery: Option<Delivery>,
}

impl PendingOtp {
    /// Stores `receipt` with the code, as `queued` at unix second `at`.
    pub fn with_receipt(mut self, receipt: &SmsReceipt, at: u64) -> Self {
        self.delivery = Some(Delivery::queued(receipt, at));
        self
    }

    /// Sent on `channel`; none: where its verification goes next.
    pub fn on(mut self, channel: Option<Channel>) -> Self {
        self.channel = channel;
        self
    }

    /// Falls back to `next`, in order, if it starts a verification.
    pub fn then(mut self, next: Vec<Channel>) -> Self {
        self.next = next;
        self
    }

    /// Sent at unix second `at`.
    pub fn sent(mut self, at: u64) -> Self {
        self.sent_at = at;
        self
    }
}

/// What one verify did to the pending code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code was right and is now consumed.
    Approved,
    /// Wrong code; one attempt used. `phone_blocked`: with this one the
    /// phone's ceiling has no room left for guesses by phone.
    Mismatch {
        attempts_remaining: u32,
        phone_blocked: bool,
    },
    /// No attempts left: the code stays locked until it expires (in
    /// `expires_in`) or is replaced.
    Locked { expires_in: Duration },
    /// Never sent, expired or already used.
    NotFound,
    /// The phone's ceiling, or the guessing client's waits, allow no guess
    /// for `retry_after`; the guess was not compared.
    Throttled { retry_after: Duration },
}

/// Proof that a provider accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsReceipt {
    pub provider: String,
    pub message_id: String,
    /// The provider was asked to report the message's fate.
    pub tracked: bool,
}
