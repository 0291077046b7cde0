//! The OTP policy in plain Rust: what a phone, a code and a stored hash are,
//! and the rules between them. Nothing here performs I/O or names an adapter.

mod channel;
mod code;
mod delivery;
mod destination;
mod events;
mod guesses;
mod hashing;
mod idempotency;
mod limits;
mod locale;
mod message;
mod otp;
mod phone;
mod pumping;
mod rules;
mod sealed_id;
mod speech;
mod spend;
mod time;
mod verification;

pub use channel::{
    check as check_workflow, Channel, DueFallback, Fallback, WorkflowError, Workflows, MAX_WORKFLOW,
};
pub use code::{Code, CodeError};
pub use delivery::{Delivery, DeliveryReport, DeliveryState};
pub use destination::{CountryCodeError, DestinationError, DestinationPolicy};
pub use events::{Event, EventKind, LockReason, EVENT_TYPES};
pub use guesses::{ClientGuesses, GuessBudget, GuessCeiling, NextGuess};
pub use hashing::{CodeHash, CodeHasher, HashKey, HashKeyError};
pub use idempotency::{Claim, Idempotency, IdempotencyKey, IdempotencyKeyError};
pub use limits::{
    Admitted, Bucket, ClientNet, ClientPrefixes, Issued, PrefixError, Quota, SendLimits, Taken,
};
pub use locale::{Forms, Locale, LocaleError, Templates, BUILT_IN as BUILT_IN_TEMPLATES, COUNTRY_LOCALES};
pub use message::{minutes_shown, Autofill, MessageTemplate, SmsText, TemplateError};
pub use otp::{OtpPolicy, PendingOtp, PolicyError, SmsReceipt, VerifyOutcome};
pub use phone::{NumberKind, Phone, PhoneError};
pub use pumping::{
    Block, Breaker, Figures, Floors, Group, GroupTraffic, HourCount, Level, Mode, Verdict, Window,
};
pub mod traffic_slots {
    pub use super::pumping::{kept_from, slots, KEEP_DAYS, KEEP_HOURS};
}
pub use rules::{Named, PhoneState, Record, Tally, WrongCodes};
pub use sealed_id::IdSeal;
pub use speech::Speech;
pub use spend::{
    add_within, Cap, CapLevel, CapReached, ChannelPrices, Ledger, Money, Prices, Span, SpendCaps,
    SpendVerdict, Spent,
};
pub use time::rfc3339;
pub use verification::{
    Checked, Opened, Scope, SendMode, Status, Verification, VerificationId, VerificationIdError,
    MAX_LIVE_CODES, MAX_SEND_TIMES, MAX_VERIFICATIONS, SCOPE_LEN, VERIFICATION_ID_LEN,
};
