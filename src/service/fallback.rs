//! Ordered workflows: a code moves to the verification's next channel when
//! the vendor reports its message failed or undelivered, or when no
//! delivered report came in time. Each fallback is a send of a new code
//! (the service keeps only hashes, so it has no code to send again), past
//! the cooldown and inside the phone's quota, the breaker and the caps.
//!
//! The timers live in this instance: a restart forgets the ones pending,
//! and those verifications fall back only on a vendor's report or a resend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{OtpService, SendError, SendOrder};
use crate::domain::{Channel, Fallback, Phone, Scope, SendMode, Verification, VerificationId};
use crate::ports::ErrorChain;

/// Most fallbacks waiting at once; past it a send schedules none (its
/// verification falls back on a report or a resend only) rather than grow
/// without bound.
const MAX_WAITING: usize = 100_000;

/// A fallback the service owes a verification.
#[derive(Debug)]
pub struct Due {
    phone: Phone,
    id: VerificationId,
    /// The vendor's id of the message it follows.
    after: String,
    /// The workflow's next channel, as the verification named it.
    channel: Channel,
    why: Fallback,
    at: Instant,
}

/// The service's workflow timers: how long a message has to be reported
/// delivered, and the queue its timers wait in.
pub struct Fallbacks {
    after: Duration,
    queue: mpsc::Sender<Due>,
    waiting: Mutex<Option<mpsc::Receiver<Due>>>,
}

impl Fallbacks {
    pub fn new(after: Duration) -> Self {
        let (queue, waiting) = mpsc::channel(MAX_WAITING);
        Self {
            after,
            queue,
            waiting: Mutex::new(Some(waiting)),
        }
    }
}

impl OtpService {
    /// Moves workflows on after `after` without a delivered report.
    pub fn with_fallbacks(mut self, after: Duration) -> Self {
        self.fallbacks = Some(Fallbacks::new(after));
        self
    }

    /// Owes verification `id` a fallback from message `after`: at once for
    /// a message that failed, else after the configured wait.
    pub(super) fn schedule_fallback(&self, phone: &Phone, v: &Verification, after: &str, why: Fallback) {
        let (Some(fallbacks), Some(channel)) = (&self.fallbacks, v.next.first()) else {
            return;
        };
        let at = match why {
            Fallback::Undelivered => Instant::now(),
            Fallback::NoReport => Instant::now() + fallbacks.after,
        };
        let due = Due {
            phone: phone.clone(),
            id: v.id.clone(),
            after: after.to_owned(),
            channel: *channel,
            why,
            at,
        };
        if fallbacks.queue.try_send(due).is_err() {
            tracing::warn!(phone = %phone.masked(), "too many fallbacks waiting: this one is dropped");
        }
    }

    /// Runs the fallbacks as they fall due, until the service is gone.
    /// Only the first call gets the queue; later ones return at once.
    pub async fn run_fallbacks(self: Arc<Self>) {
        let waiting = self.fallbacks.as_ref().and_then(|f| {
            f.waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        });
        let Some(mut waiting) = waiting else {
            return;
        };
        while let Some(due) = waiting.recv().await {
            let service = Arc::clone(&self);
            tokio::spawn(async move {
                tokio::time::sleep_until(due.at).await;
                service.fall_back(due).await;
            });
        }
    }

    /// Sends the next channel's code, if the verification still wants it:
    /// the store refuses when the message was delivered, a newer one went
    /// out, or the verification ended.
    async fn fall_back(&self, due: Due) {
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
            Ok(_) => {}
            Err(SendError::NotFound) => {}
            Err(e) => {
                tracing::warn!(phone = %due.phone.masked(), error = %ErrorChain(&e), "a workflow's fallback was not sent");
            }
        }
    }
}
