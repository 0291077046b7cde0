//! The OTP policy in plain Rust: what a phone, a code and a stored hash are,
//! and the rules between them. Nothing here performs I/O or names an adapter.

mod code;
mod hashing;
mod message;
mod otp;
mod phone;

pub use code::{Code, CodeError};
pub use hashing::{CodeHash, CodeHasher, HashKey, HashKeyError};
pub use message::{Autofill, MessageTemplate, SmsText, TemplateError};
pub use otp::{OtpPolicy, OtpStatus, PendingOtp, PolicyError, SmsReceipt, VerifyOutcome};
pub use phone::{Phone, PhoneError};
