//! The embedded store: one process, no Redis. Same rules as Redis, TTLs and
//! limits included, each operation one step under one lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::{
    Bucket, CodeHash, Delivery, DeliveryReport, Issued, OtpStatus, PendingOtp, Phone, Quota, SendLimits,
    SmsReceipt, Taken, VerifyOutcome,
};
use crate::ports::{OtpStore, StoreError};

/// Every this many calls, expired entries are swept, so phones and clients
/// never seen again don't hold memory.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    codes: HashMap<Phone, Entry>,
    counters: HashMap<Counter, Count>,
    /// (provider, message id) -> the phone it went to, for reports.
    links: HashMap<(String, String), Link>,
    calls: u64,
}

struct Link {
    phone: Phone,
    expires_at: Instant,
}

struct Entry {
    hash: CodeHash,
    attempts: u32,
    expires_at: Instant,
    delivery: Option<Delivery>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Counter {
    Cooldown(Phone),
    SendsTo(Phone),
    Bucket(Bucket),
}

struct Count {
    n: u32,
    expires_at: Instant,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the state with expired entries gone. A poisoned lock (a
    /// panic elsewhere while holding it) still holds consistent data, since
    /// no step leaves it half-done.
    fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        state.calls += 1;
        if state.calls % SWEEP_EVERY == 0 {
            state.codes.retain(|_, e| e.expires_at > now);
            state.counters.retain(|_, c| c.expires_at > now);
            state.links.retain(|_, l| l.expires_at > now);
        }
        f(&mut state, now)
    }
}

impl State {
    /// The live code for `phone`, dropping it if it has expired.
    fn code(&mut self, phone: &Phone, now: Instant) -> Option<&mut Entry> {
        if self.codes.get(phone).is_some_and(|e| e.expires_at <= now) {
            self.codes.remove(phone);
        }
        self.codes.get_mut(phone)
    }

    /// The live count of `counter` (0 when none), and its time left.
    fn count(&mut self, counter: &Counter, now: Instant) -> (u32, Duration) {
        match self.counters.get(counter) {
            Some(c) if c.expires_at > now => (c.n, c.expires_at - now),
            Some(_) => {
                self.counters.remove(counter);
                (0, Duration::ZERO)
            }
            None => (0, Duration::ZERO),
        }
    }

    /// Adds one; the first one starts the window.
    fn bump(&mut self, counter: Counter, window: Duration, now: Instant) {
        let (n, _) = self.count(&counter, now);
        let count = self.counters.entry(counter).or_insert(Count {
            n: 0,
            expires_at: now + window,
        });
        count.n = n + 1;
    }
}

#[async_trait]
impl OtpStore for MemoryStore {
    async fn issue(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
    ) -> Result<Issued, StoreError> {
        Ok(self.with_state(|state, now| {
            let cooldown = Counter::Cooldown(phone.clone());
            let sends = Counter::SendsTo(phone.clone());
            if !limits.resend_after.is_zero() {
                let (n, left) = state.count(&cooldown, now);
                if n > 0 {
                    return Issued::TooSoon { retry_after: left };
                }
            }
            if !limits.per_phone.is_off() {
                let (n, left) = state.count(&sends, now);
                if n >= limits.per_phone.limit {
                    return Issued::QuotaExceeded { retry_after: left };
                }
            }
            state.codes.insert(
                phone.clone(),
                Entry {
                    hash: otp.hash.clone(),
                    attempts: otp.attempts,
                    expires_at: now + otp.ttl,
                    delivery: otp.delivery.clone(),
                },
            );
            if !limits.resend_after.is_zero() {
                state.bump(cooldown, limits.resend_after, now);
            }
            if !limits.per_phone.is_off() {
                state.bump(sends, limits.per_phone.window, now);
            }
            Issued::Stored
        }))
    }

    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        Ok(self.with_state(|state, now| {
            let counter = Counter::Bucket(bucket);
            let (n, left) = state.count(&counter, now);
            if n >= quota.limit {
                return Taken::Exhausted { retry_after: left };
            }
            state.bump(counter, quota.window, now);
            Taken::Granted
        }))
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            let counter = Counter::Bucket(bucket);
            if state.count(&counter, now).0 > 0 {
                if let Some(count) = state.counters.get_mut(&counter) {
                    count.n -= 1;
                }
            }
        });
        Ok(())
    }

    async fn verify_and_consume(
        &self,
        phone: &Phone,
        candidates: &[CodeHash],
    ) -> Result<VerifyOutcome, StoreError> {
        Ok(self.with_state(|state, now| {
            let Some(entry) = state.code(phone, now) else {
                return VerifyOutcome::NotFound;
            };
            if entry.attempts == 0 {
                return VerifyOutcome::Locked {
                    expires_in: entry.expires_at - now,
                };
            }
            // Check every candidate, so the time taken doesn't say which key matched.
            let matched = candidates
                .iter()
                .fold(false, |found, c| c.matches(entry.hash.as_bytes()) | found);
            if matched {
                state.codes.remove(phone);
                return VerifyOutcome::Approved;
            }
            entry.attempts -= 1;
            VerifyOutcome::Mismatch {
                attempts_remaining: entry.attempts,
            }
        }))
    }

    async fn status(&self, phone: &Phone) -> Result<Option<OtpStatus>, StoreError> {
        Ok(self.with_state(|state, now| {
            state.code(phone, now).map(|e| OtpStatus {
                expires_in: e.expires_at - now,
                attempts_remaining: e.attempts,
                delivery: e.delivery.clone(),
            })
        }))
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            if state.code(phone, now).is_some_and(|e| e.hash == *hash) {
                state.codes.remove(phone);
            }
        });
        Ok(())
    }

    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
        at: u64,
        link_ttl: Duration,
    ) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            let Some(entry) = state.code(phone, now).filter(|e| e.hash == *hash) else {
                return;
            };
            entry.delivery = Some(Delivery::queued(receipt, at));
            if receipt.tracked {
                let link = Link {
                    phone: phone.clone(),
                    expires_at: now + link_ttl,
                };
                state
                    .links
                    .insert((receipt.provider.clone(), receipt.message_id.clone()), link);
            }
        });
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn update_delivery(&self, report: &DeliveryReport) -> Result<bool, StoreError> {
        Ok(self.with_state(|state, now| {
            let key = (report.provider.clone(), report.message_id.clone());
            let Some(phone) = state
                .links
                .get(&key)
                .filter(|l| l.expires_at > now)
                .map(|l| l.phone.clone())
            else {
                return false;
            };
            let Some(delivery) = state.code(&phone, now).and_then(|e| e.delivery.as_mut()) else {
                return false;
            };
            let same_message =
                delivery.provider == report.provider && delivery.message_id == report.message_id;
            if !same_message || delivery.state.rank() >= report.state.rank() {
                return false;
            }
            delivery.state = report.state;
            delivery.updated_at = report.at;
            if report.error_code.is_some() {
                delivery.error_code.clone_from(&report.error_code);
            }
            true
        }))
    }
}
