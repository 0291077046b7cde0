//! The vendors' shared failure policy: retry what may pass (network errors,
//! 429, 5xx) with exponential backoff and jitter, all inside one deadline.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::adapters::metrics::Metrics;
use crate::domain::{Phone, SmsReceipt};
use crate::ports::{Cause, ErrorChain, SmsError};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub retries: u32,
    /// The whole send, every try and pause included.
    pub deadline: Duration,
    /// The first pause; each later one doubles.
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// The first pause; short, since a user is waiting for the code.
    const BASE_DELAY: Duration = Duration::from_millis(200);

    pub fn new(retries: u32, deadline: Duration) -> Self {
        Self {
            retries,
            deadline,
            base_delay: Self::BASE_DELAY,
        }
    }
}

/// How one try failed.
#[derive(Debug)]
pub enum AttemptError {
    /// May pass on another try; with the error beneath, if any.
    Transient(String, Option<Cause>),
    /// The vendor refuses the number itself; no try will change that.
    Rejected { vendor_code: String, message: String },
    /// Won't pass on another try either (bad credentials, bad sender, ...).
    Permanent(String),
}

/// Runs `attempt` until it gives a message id, fails for good, or the retries
/// or the deadline run out, and counts the outcome for `to`'s country.
/// `tracked`: the provider was asked for reports.
///
/// # Errors
/// [`SmsError::Rejected`] for a refused number, [`SmsError::Failed`] otherwise.
pub async fn send_with_retries<F, Fut>(
    provider: &str,
    to: &Phone,
    policy: &RetryPolicy,
    tracked: bool,
    metrics: &Metrics,
    attempt: F,
) -> Result<SmsReceipt, SmsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, AttemptError>>,
{
    let sent = tries(provider, policy, tracked, metrics, attempt).await;
    let outcome = match &sent {
        Ok(_) => "sent",
        Err(SmsError::Rejected { .. }) => "rejected",
        Err(SmsError::Failed { .. }) => "failed",
    };
    metrics.vendor_send(provider, to.region().unwrap_or("none"), outcome);
    sent
}

/// A vendor's own words, as logs and errors carry them: at most 200
/// characters, and every digit masked. A vendor (or a proxy before it) may
/// echo the request, and the request holds the code, in any spacing
/// ("740972", "7. 4. 0."); the vendor's error code travels apart.
pub fn vendor_said(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

/// A request that got no HTTP answer: worth another try. The error beneath
/// (a refused connection, a timeout) is kept for the logs, without the URL:
/// it would say nothing the provider name doesn't.
pub fn transport_error(e: reqwest::Error) -> AttemptError {
    AttemptError::Transient(
        "the request got no answer".into(),
        Some(Cause::new(e.without_url())),
    )
}

async fn tries<F, Fut>(
    provider: &str,
    policy: &RetryPolicy,
    tracked: bool,
    metrics: &Metrics,
    mut attempt: F,
) -> Result<SmsReceipt, SmsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, AttemptError>>,
{
    let deadline = Instant::now() + policy.deadline;
    // Once a try got no answer in time the message may be out.
    let mut maybe_sent = false;
    let failed = |reason: String, cause: Option<Cause>, maybe_sent: bool| SmsError::Failed {
        provider: provider.to_owned(),
        reason,
        maybe_sent,
        cause,
    };
    let mut tries = 0;
    loop {
        tries += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout_at(deadline, attempt()).await;
        let label = match &outcome {
            Ok(Ok(_)) => "sent",
            Ok(Err(AttemptError::Transient(..))) => "transient_error",
            Ok(Err(AttemptError::Rejected { .. })) => "rejected",
            Ok(Err(AttemptError::Permanent(_))) => "permanent_error",
            Err(_) => "timeout",
        };
        metrics.provider_call(provider, label, started.elapsed());
        let (reason, cause) = match outcome {
            Ok(Ok(message_id)) => {
                return Ok(SmsReceipt {
                    provider: provider.to_owned(),
                    message_id,
                    tracked,
                })
            }
            Ok(Err(AttemptError::Transient(reason, cause))) => {
                maybe_sent |= cause.as_ref().is_some_and(timed_out);
                (reason, cause)
            }
            Ok(Err(AttemptError::Rejected { vendor_code, message })) => {
                return Err(SmsError::Rejected {
                    provider: provider.to_owned(),
                    vendor_code,
                    message: vendor_said(&message),
                })
            }
            Ok(Err(AttemptError::Permanent(reason))) => return Err(failed(reason, None, maybe_sent)),
            Err(_) => {
                let reason = format!("no answer within {} ms", policy.deadline.as_millis());
                return Err(failed(reason, None, true));
            }
        };
        let pause = backoff(policy.base_delay, tries - 1);
        if tries > policy.retries || Instant::now() + pause >= deadline {
            return Err(failed(
                format!("{reason} (after {tries} tries)"),
                cause,
                maybe_sent,
            ));
        }
        let cause = cause.as_ref().map(|c| ErrorChain(c).to_string());
        tracing::info!(provider, tries, reason = %reason, cause, "sms send failed, retrying");
        tokio::time::sleep(pause).await;
    }
}

/// `base * 2^n`, half of it fixed and half random ("equal jitter"), so many
/// senders retrying at once spread out but never retry at once.
fn backoff(base: Duration, n: u32) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(n.min(16)));
    let half = ceiling / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// Whether a try's error is a request that got no answer in time, after
/// which the vendor may have sent the message.
fn timed_out(cause: &Cause) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(cause.error());
    while let Some(e) = next {
        if e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_s_words_keep_no_digit() {
        let echoed = "20500: To=%2B14155552740&Twiml=...code+is%3A+6.+6.+2.+7.+7.+0";
        let said = vendor_said(echoed);
        assert!(!said.bytes().any(|b| b.is_ascii_digit()), "{said}");
        assert!(said.starts_with("#####: To=%#B"), "{said}");
        assert_eq!(vendor_said(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn backoff_doubles_within_its_jitter() {
        let base = Duration::from_millis(100);
        for n in 0..5 {
            let ceiling = base * 2u32.pow(n);
            for _ in 0..100 {
                let pause = backoff(base, n);
                assert!(pause >= ceiling / 2 && pause <= ceiling, "n={n}: {pause:?}");
            }
        }
    }
}
