//! The operations and documents the service answers: each file one group of
//! routes with its request and response types.

pub mod documents;
pub mod dropin;
pub mod idempotent;
pub mod ops;
pub mod otp;
pub mod status;
pub mod twilio_verify;
pub mod verifications;
pub mod voice_answers;
pub mod webhooks;
