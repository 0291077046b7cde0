//! Each layer's errors as problems: the one place they get a status and a
//! stable code.

use crate::domain::{rfc3339, CodeError, PhoneError, VerificationIdError};
use crate::ports::{ErrorChain, SmsError, StoreError};
use crate::service::{Limit, SendError, StatusError, VerifyError};

use super::{BlockRecord, Problem, ProblemCode};

impl From<PhoneError> for Problem {
    fn from(e: PhoneError) -> Self {
        Problem::new(ProblemCode::InvalidPhone, e.to_string())
    }
}

impl From<CodeError> for Problem {
    fn from(e: CodeError) -> Self {
        Problem::new(ProblemCode::InvalidCodeFormat, e.to_string())
    }
}

impl From<VerificationIdError> for Problem {
    fn from(e: VerificationIdError) -> Self {
        Problem::new(ProblemCode::InvalidRequest, e.to_string())
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        if let StoreError::Full(_) = e {
            tracing::warn!(error = %e, "store full: raise store.memory_max_entries or use Redis");
            return Problem::new(
                ProblemCode::StoreFull,
                "the code store is full; try again when codes have expired",
            );
        }
        tracing::warn!(error = %ErrorChain(&e), "store unavailable");
        Problem::new(
            ProblemCode::StoreUnavailable,
            "the code store did not answer in time; try again shortly",
        )
    }
}

impl From<SendError> for Problem {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Destination(e) => Problem::new(ProblemCode::DestinationNotAllowed, e.to_string()),
            SendError::Limited { limit, retry_after } => {
                let (code, detail) = match limit {
                    Limit::ResendTooSoon => {
                        (ProblemCode::ResendTooSoon, "wait before asking for another code")
                    }
                    Limit::PhoneQuota => (
                        ProblemCode::SendQuotaExceeded,
                        "this phone has had all its codes for now",
                    ),
                    Limit::GuessCeiling => (
                        ProblemCode::GuessBudgetExceeded,
                        "this phone has had too many wrong codes for now; wait before asking for another",
                    ),
                    Limit::IpQuota => (
                        ProblemCode::IpQuotaExceeded,
                        "this client has asked for too many codes",
                    ),
                    Limit::GlobalQuota => (
                        ProblemCode::GlobalQuotaExceeded,
                        "the service has sent all its codes for now",
                    ),
                    Limit::ClientCountries => (
                        ProblemCode::CountryQuotaExceeded,
                        "this client has sent codes to as many countries as it may today",
                    ),
                    Limit::SpendCap { soft: false, country: false } => (
                        ProblemCode::SpendCapReached,
                        "the service has spent what it may on codes until the window ends",
                    ),
                    Limit::SpendCap { soft: false, country: true } => (
                        ProblemCode::SpendCapReached,
                        "the service has spent what it may on codes to this phone's country until the window ends",
                    ),
                    Limit::SpendCap { soft: true, country: false } => (
                        ProblemCode::SpendCapReached,
                        "the service is near its spending cap: until the window ends, codes go only to destinations that have verified before",
                    ),
                    Limit::SpendCap { soft: true, country: true } => (
                        ProblemCode::SpendCapReached,
                        "the service is near its spending cap for this phone's country: until the window ends, codes go there only to destinations that have verified before",
                    ),
                };
                Problem::retry_later(code, detail, retry_after)
            }
            SendError::Store(e) => e.into(),
            SendError::NotFound => Problem::new(ProblemCode::NotFound, e.to_string()),
            SendError::ChannelUnavailable(_) => Problem::new(ProblemCode::ChannelUnavailable, e.to_string()),
            SendError::Blocked { ref group, ref block } => {
                let f = &block.figures;
                let mut p = Problem::new(ProblemCode::DestinationBlocked, e.to_string());
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                let left_ms = block.until_ms.saturating_sub(now_ms);
                p.retry_after = Some(left_ms.div_ceil(1000).max(1));
                p.block = Some(BlockRecord {
                    group: group.name.clone(),
                    level: group.level.as_str().into(),
                    window: f.window.as_str().into(),
                    sent: f.sent,
                    approved: f.approved,
                    threshold: f.threshold,
                    strikes: block.strikes,
                    until: rfc3339(block.until_ms),
                });
                p
            }
            SendError::Sms(SmsError::Rejected {
                provider,
                vendor_code,
                message,
            }) => {
                let mut p = Problem::new(
                    ProblemCode::PhoneRejected,
                    format!("{provider} will not send to this number"),
                );
                p.vendor_code = Some(vendor_code);
                p.vendor_message = Some(message);
                p
            }
            SendError::Sms(e @ SmsError::Failed { .. }) => {
                tracing::warn!(error = %ErrorChain(&e), "sms delivery failed");
                Problem::new(
                    ProblemCode::SmsDeliveryFailed,
                    "no SMS could be sent; no code is pending",
                )
            }
        }
    }
}

impl From<VerifyError> for Problem {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Mismatch { attempts_remaining } => {
                let mut p = Problem::new(ProblemCode::CodeMismatch, e.to_string());
                p.attempts_remaining = Some(attempts_remaining);
                p
            }
            VerifyError::Locked { expires_in } => Problem::retry_later(
                ProblemCode::MaxAttemptsReached,
                "no attempts are left for this code; request a new one",
                expires_in,
            ),
            VerifyError::Limited { retry_after } => Problem::retry_later(
                ProblemCode::IpQuotaExceeded,
                "this client has made too many verifications",
                retry_after,
            ),
            VerifyError::GuessBudget { retry_after } => Problem::retry_later(
                ProblemCode::GuessBudgetExceeded,
                "too many wrong codes, from this client or for this phone; wait before trying again",
                retry_after,
            ),
            VerifyError::NotFound => Problem::new(ProblemCode::NotFound, e.to_string()),
            VerifyError::Store(e) => e.into(),
        }
    }
}

impl From<StatusError> for Problem {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::Limited { retry_after } => Problem::retry_later(
                ProblemCode::IpQuotaExceeded,
                "this client has asked about too many phones",
                retry_after,
            ),
            StatusError::NotFound => Problem::new(ProblemCode::NotFound, e.to_string()),
            StatusError::Store(e) => e.into(),
        }
    }
}
