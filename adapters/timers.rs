//! The workflows' fallback timers on tokio: each fallback waits in a task of
//! its own and is handed to the service when it falls due. They live in
//! this process; a restart forgets them (docs/behaviour.md, Workflows).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::domain::DueFallback;
use crate::ports::FallbackTimers;
use crate::service::OtpService;

/// Most fallbacks waiting at once; past it a send holds none (its
/// verification moves on by a report or a resend only) rather than grow
/// without bound.
const MAX_WAITING: usize = 100_000;

pub struct TokioTimers {
    queue: mpsc::Sender<(Instant, DueFallback)>,
    waiting: Mutex<Option<mpsc::Receiver<(Instant, DueFallback)>>>,
}

impl Default for TokioTimers {
    fn default() -> Self {
        let (queue, waiting) = mpsc::channel(MAX_WAITING);
        Self {
            queue,
            waiting: Mutex::new(Some(waiting)),
        }
    }
}

impl FallbackTimers for TokioTimers {
    fn hold(&self, due: DueFallback, wait: Duration) -> bool {
        self.queue.try_send((Instant::now() + wait, due)).is_ok()
    }
}

impl TokioTimers {
    /// Hands each fallback to `service` as it falls due, until the queue
    /// closes. Only the first call runs; later ones return at once.
    pub async fn run(&self, service: Arc<OtpService>) {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut waiting) = waiting else {
            return;
        };
        while let Some((at, due)) = waiting.recv().await {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                service.fall_back(due).await;
            });
        }
    }
}
