//! What happened to a phone's verification, as the app is told of it. An
//! event names the phone and what the kind needs; never a code, its hash,
//! a key or a token, so nothing in an event can help anyone verify.

use super::{Block, CapReached, DeliveryState, Group, Money, Phone};

/// One event: a unique id (`evt_` and 128 random bits in hex), when it
/// happened, the phone in E.164 (none for an operator's act, such as an
/// unblock), its verification when it has one, and the kind with its own
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: u64,
    pub phone: Option<Phone>,
    pub verification_id: Option<String>,
    pub kind: EventKind,
}

/// Why a verification takes no more guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// The code's own attempts are used up.
    Attempts,
    /// The phone's guess budget holds it off (growing waits, then a block).
    GuessBudget,
}

impl Event {
    /// Whether an outbox must keep it past its bound: an approval is what
    /// an app acts on (it signs the user in), and each needs a code that
    /// was sent, so the sends' limits bound them.
    pub fn must_be_kept(&self) -> bool {
        matches!(self.kind, EventKind::Approved { .. })
    }

    /// A new event with a fresh id.
    pub fn new(phone: Option<Phone>, verification_id: Option<String>, kind: EventKind, at_ms: u64) -> Self {
        Self {
            id: format!("evt_{}", hex::encode(rand::random::<[u8; 16]>())),
            at_ms,
            phone,
            verification_id,
            kind,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A new verification started with this send.
    Created,
    /// A code went to a provider, at the price table's cost.
    CodeSent {
        channel: super::Channel,
        /// Why a workflow moved to this channel; none for a request's send.
        fallback: Option<super::Fallback>,
        provider: String,
        message_id: String,
        cost: Money,
        currency: String,
    },
    /// No provider took the SMS; no code is pending from it.
    SendFailed,
    /// By the right code, or by the app (Twilio's `Status=approved`),
    /// which the event's data tells apart.
    Approved {
        by_code: bool,
    },
    GuessFailed {
        attempts_remaining: u32,
    },
    Locked {
        reason: LockReason,
    },
    Canceled,
    /// A provider's signed report moved the SMS's state forward.
    DeliveryUpdated {
        provider: String,
        message_id: String,
        state: DeliveryState,
        error_code: Option<String>,
    },
    /// The pumping breaker blocked a destination group at this phone's
    /// send (`fraud.blocked`), or would have, in monitor mode
    /// (`fraud.would_block`).
    Blocked {
        group: Group,
        block: Block,
    },
    /// An operator ended a group's block (`otpd fraud unblock`).
    Unblocked {
        group: Group,
    },
    /// A money cap's total went past a limit with this phone's send: told
    /// once per limit and window.
    SpendCapReached {
        reached: CapReached,
        currency: String,
    },
}

/// Every event type's name, stable once shipped: what endpoints subscribe to.
pub const EVENT_TYPES: [&str; 12] = [
    "verification.created",
    "verification.code_sent",
    "verification.send_failed",
    "verification.approved",
    "verification.guess_failed",
    "verification.locked",
    "verification.canceled",
    "verification.delivery_updated",
    "fraud.blocked",
    "fraud.would_block",
    "fraud.unblocked",
    "spend.cap_reached",
];

impl EventKind {
    /// The type's name, one of [`EVENT_TYPES`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created => EVENT_TYPES[0],
            Self::CodeSent { .. } => EVENT_TYPES[1],
            Self::SendFailed => EVENT_TYPES[2],
            Self::Approved { .. } => EVENT_TYPES[3],
            Self::GuessFailed { .. } => EVENT_TYPES[4],
            Self::Locked { .. } => EVENT_TYPES[5],
            Self::Canceled => EVENT_TYPES[6],
            Self::DeliveryUpdated { .. } => EVENT_TYPES[7],
            Self::Blocked { block, .. } if block.enforced => EVENT_TYPES[8],
            Self::Blocked { .. } => EVENT_TYPES[9],
            Self::Unblocked { .. } => EVENT_TYPES[10],
            Self::SpendCapReached { .. } => EVENT_TYPES[11],
        }
    }
}

impl LockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attempts => "attempts",
            Self::GuessBudget => "guess_budget",
        }
    }
}
