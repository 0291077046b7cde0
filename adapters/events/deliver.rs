//! The delivery worker: takes due jobs from the outbox, POSTs each to its
//! endpoint signed as Standard Webhooks says, and settles it: 2xx done;
//! 410 Gone disables the endpoint; a network error, a timeout or any other
//! answer is tried again on the schedule, then kept as a dead letter. It
//! runs beside the API, so a slow or dead endpoint costs the API nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hyper::StatusCode;

use super::http::{Answer, EventClient, Post};
use super::queue::{Claimed, Queue, Taken};
use super::signature::{signature_header, SigningKey};
use crate::adapters::metrics::Metrics;
use crate::ports::ErrorChain;

/// Jobs delivered at once by one worker.
const IN_FLIGHT: usize = 32;
/// How long the worker waits for work when there is none here; another
/// instance's jobs (and retries coming due) are seen at least this often.
const IDLE: Duration = Duration::from_millis(250);
/// How often the backlog gauges are read from the outbox.
const GAUGE_EVERY: Duration = Duration::from_secs(10);
/// How often the endpoints disabled by a 410 are read again: an endpoint
/// enabled by an operator gets its jobs within this.
const DISABLED_EVERY: Duration = Duration::from_secs(1);

/// Where one endpoint is and how its events are signed.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub uri: hyper::Uri,
    pub keys: Vec<SigningKey>,
}

pub struct Deliverer {
    pub queue: Arc<dyn Queue>,
    pub endpoints: HashMap<String, Endpoint>,
    pub http: EventClient,
    /// The wait before each retry; its length is the number of retries.
    pub schedule: Vec<Duration>,
    pub metrics: Arc<Metrics>,
    /// Set when an endpoint answers 410, so the next batch reads the
    /// disabled endpoints again instead of waiting for `DISABLED_EVERY`.
    pub gone: AtomicBool,
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    Gone,
    Failed {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Deliverer {
    /// Delivers until the process ends.
    pub async fn run(self) {
        let this = Arc::new(self);
        let mut gauges_at = Instant::now();
        let mut disabled_at = Instant::now();
        let mut disabled = this.queue.disabled().await.unwrap_or_default();
        loop {
            if gauges_at.elapsed() >= GAUGE_EVERY {
                gauges_at = Instant::now();
                if let Ok((waiting, dead)) = this.queue.sizes().await {
                    this.metrics.event_backlog(waiting, dead);
                }
            }
            let taken = match this.queue.take(IN_FLIGHT).await {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "events: could not take jobs");
                    Taken::default()
                }
            };
            if taken.jobs.is_empty() {
                this.queue.wait(IDLE).await;
                continue;
            }
            if disabled_at.elapsed() >= DISABLED_EVERY || this.gone.swap(false, Ordering::Relaxed) {
                disabled_at = Instant::now();
                disabled = this.queue.disabled().await.unwrap_or_default();
            }
            // Delivered jobs are settled together, once the batch is through.
            let delivered: Vec<Claimed> = futures_util::stream::iter(taken.jobs)
                .map(|job| {
                    let this = Arc::clone(&this);
                    let off = disabled.contains(&job.job.endpoint);
                    async move { this.settle(job, off).await }
                })
                .buffer_unordered(IN_FLIGHT)
                .filter_map(std::future::ready)
                .collect()
                .await;
            if let Err(e) = this.queue.done(&delivered).await {
                // They stay claimed; another worker takes them over once
                // idle long enough, and delivers them again (at least once).
                tracing::warn!(error = %ErrorChain(&e), jobs = delivered.len(), "events: could not settle delivered jobs");
            }
            // All that was due is through: wait for news (a publish here
            // since the take ends the wait at once) rather than read again
            // to find nothing, a call per batch at low load.
            if !taken.more {
                this.queue.wait(IDLE).await;
            }
        }
    }

    /// Delivers a job and settles it, unless it was delivered: that one is
    /// returned, for the batch to settle with the others.
    async fn settle(&self, claimed: Claimed, disabled: bool) -> Option<Claimed> {
        let job = &claimed.job;
        let endpoint = self.endpoints.get(&job.endpoint);
        let settled = match (endpoint, disabled) {
            (None, _) => {
                self.queue
                    .dead(&claimed, "the endpoint is no longer configured")
                    .await
            }
            (Some(_), true) => {
                self.queue
                    .dead(&claimed, "the endpoint is disabled (410 Gone)")
                    .await
            }
            (Some(endpoint), false) => {
                let started = Instant::now();
                let outcome = self.attempt(endpoint, &claimed).await;
                let label = match &outcome {
                    Outcome::Delivered => "delivered",
                    Outcome::Gone => "gone",
                    Outcome::Failed { .. } => "failed",
                };
                self.metrics
                    .event_delivery(&job.endpoint, label, started.elapsed());
                match outcome {
                    Outcome::Delivered => return Some(claimed),
                    Outcome::Gone => {
                        tracing::warn!(endpoint = %job.endpoint, event = %job.event_id, "events: the endpoint answered 410 Gone; it is disabled until `otpd events enable`");
                        let disabled = self.queue.disable(&job.endpoint).await;
                        self.gone.store(true, Ordering::Relaxed);
                        let dead = self.queue.dead(&claimed, "the endpoint answered 410 Gone").await;
                        disabled.and(dead)
                    }
                    Outcome::Failed { reason, retry_after } => {
                        // The schedule's wait, or what the endpoint asked
                        // for within four times it.
                        let next = self.schedule.get(job.attempt as usize).map(|wait| {
                            jitter(retry_after.map_or(*wait, |asked| asked.clamp(*wait, *wait * 4)))
                        });
                        tracing::warn!(
                            endpoint = %job.endpoint,
                            event = %job.event_id,
                            attempt = job.attempt + 1,
                            reason = %reason,
                            retry_in_secs = next.map(|d| d.as_secs()),
                            "events: a delivery failed"
                        );
                        match next {
                            Some(wait) => self.queue.retry(&claimed, wait).await,
                            None => {
                                self.metrics.event_dead_letter(&job.endpoint);
                                self.queue.dead(&claimed, &reason).await
                            }
                        }
                    }
                }
            }
        };
        if let Err(e) = settled {
            // The job stays claimed; another worker takes it over when it
            // has been idle long enough (at least once, never lost).
            tracing::warn!(error = %ErrorChain(&e), event = %job.event_id, "events: could not settle a job");
        }
        None
    }

    async fn attempt(&self, endpoint: &Endpoint, claimed: &Claimed) -> Outcome {
        let job = &claimed.job;
        let timestamp = super::unix_now();
        let signature = signature_header(&endpoint.keys, &job.event_id, timestamp, job.body.as_bytes());
        let post = Post {
            uri: &endpoint.uri,
            headers: [
                ("webhook-id", job.event_id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body: job.body.clone().into(),
        };
        match self.http.post(post).await {
            Ok(Answer { status, .. }) if status.is_success() => Outcome::Delivered,
            Ok(Answer { status, .. }) if status == StatusCode::GONE => Outcome::Gone,
            Ok(Answer { status, retry_after }) => Outcome::Failed {
                reason: format!("HTTP {}", status.as_u16()),
                retry_after,
            },
            Err(e) => Outcome::Failed {
                reason: ErrorChain(&e).to_string(),
                retry_after: None,
            },
        }
    }
}

/// Up to a tenth more, so retries of many failed jobs don't arrive at once.
fn jitter(wait: Duration) -> Duration {
    wait + wait.mul_f64(rand::random::<f64>() / 10.0)
}
