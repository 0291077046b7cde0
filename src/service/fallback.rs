//! Ordered workflows: a code moves to the verification's next channel when
//! the vendor reports its message failed or undelivered, or when no
//! delivered report came in time. Each fallback is a send of a new code
//! (the service keeps only hashes, so it has no code to send again), past
//! the cooldown and inside the phone's quota, the breaker and the caps.
//! The store takes it only while the message it follows is the newest and
//! undelivered (`SendMode::Fallback`), so a report and a timer racing send
//! one code.

use std::sync::Arc;
use std::time::Duration;

use super::{OtpService, SendError, SendOrder};
use crate::domain::{DueFallback, Fallback, Phone, Scope, SendMode, Verification};
use crate::ports::{ErrorChain, FallbackTimers};

/// Where the service's fallbacks wait, and how long a message has to be
/// reported delivered.
pub(super) struct Timers {
    timers: Arc<dyn FallbackTimers>,
    wait: Duration,
}

impl OtpService {
    /// Moves workflows on after `wait` without a delivered report, holding
    /// each fallback in `timers` meanwhile.
    pub fn with_fallbacks(mut self, timers: Arc<dyn FallbackTimers>, wait: Duration) -> Self {
        self.fallbacks = Some(Timers { timers, wait });
        self
    }

    /// Owes `v` a fallback from message `after`, if its workflow has a
    /// channel left: at once for a message that failed, else after the
    /// configured wait.
    pub(super) fn schedule_fallback(&self, phone: &Phone, v: &Verification, after: &str, why: Fallback) {
        let (Some(fallbacks), Some(channel)) = (&self.fallbacks, v.next.first()) else {
            return;
        };
        let wait = match why {
            Fallback::Undelivered => Duration::ZERO,
            Fallback::NoReport => fallbacks.wait,
        };
        let due = DueFallback {
            phone: phone.clone(),
            id: v.id.clone(),
            after: after.to_owned(),
            channel: *channel,
            why,
        };
        if !fallbacks.timers.hold(due, wait) {
            tracing::warn!(phone = %phone.masked(), "too many fallbacks waiting: this one is dropped");
        }
    }

    /// Sends the next channel's code, if the verification still wants it:
    /// the store refuses when the message was delivered, a newer one went
    /// out, or the verification ended.
    pub async fn fall_back(&self, due: DueFallback) {
        let order = SendOrder {
            phone: &due.phone,
            client: None,
            // A fallback joins its verification by id: the scope is unused.
            scope: &Scope::of("otpd:fallback"),
            mode: SendMode::Fallback {
                id: due.id.clone(),
                after: due.after.clone(),
            },
            locale: None,
            app: None,
            channel: Some(due.channel),
            then: Vec::new(),
            fallback: Some(due.why),
        };
        match self.send(order).await {
            Ok(_) | Err(SendError::NotFound) => {}
            Err(e) => {
                tracing::warn!(phone = %due.phone.masked(), error = %ErrorChain(&e), "a workflow's fallback was not sent");
            }
        }
    }
}
