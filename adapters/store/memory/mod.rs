//! The embedded store: one process, no Redis. Same rules as Redis, TTLs and
//! limits included, each operation one step under one lock. It holds at most
//! `max_entries` keys (codes, counters and report links together); past
//! that, whatever needs a new key is refused until old ones expire.

mod expiring;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::expiring::Expiring;
use crate::domain::{
    Bucket, CodeHash, Delivery, DeliveryReport, GuessBudget, Issued, NextGuess, OtpStatus, PendingOtp, Phone,
    Quota, SendLimits, SmsReceipt, Taken, VerifyOutcome,
};
use crate::ports::{OtpStore, StoreError};

pub struct MemoryStore {
    state: Mutex<State>,
    max_entries: usize,
}

#[derive(Default)]
struct State {
    codes: Expiring<Phone, Entry>,
    counters: Expiring<Counter, u32>,
    /// (provider, message id) -> the phone it went to, for reports.
    links: Expiring<(String, String), Phone>,
}

struct Entry {
    hash: CodeHash,
    attempts: u32,
    delivery: Option<Delivery>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Counter {
    Cooldown(Phone),
    SendsTo(Phone),
    /// Wrong guesses in a row, across the phone's codes.
    Fails(Phone),
    /// Present while the phone must wait before its next guess.
    GuessWait(Phone),
    Bucket(Bucket),
}

impl MemoryStore {
    pub fn new(max_entries: usize) -> Self {
        Self {
            state: Mutex::default(),
            max_entries,
        }
    }

    /// Runs `f` on the state with what has expired swept away. A poisoned
    /// lock (a panic elsewhere while holding it) still holds consistent
    /// data, since no step leaves it half-done.
    fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        state.codes.sweep(now);
        state.counters.sweep(now);
        state.links.sweep(now);
        f(&mut state, now)
    }

    /// Refuses a step that needs `new` more keys than there is room for.
    fn room_for(&self, state: &State, new: usize) -> Result<(), StoreError> {
        let held = state.codes.len() + state.counters.len() + state.links.len();
        if held + new > self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        Ok(())
    }
}

impl State {
    /// The live count of `counter` (0 when none), and its time left.
    fn count(&self, counter: &Counter, now: Instant) -> (u32, Duration) {
        self.counters
            .get(counter, now)
            .map_or((0, Duration::ZERO), |(n, expires_at)| (*n, expires_at - now))
    }

    /// Adds one; the first one starts the window.
    fn bump(&mut self, counter: Counter, window: Duration, now: Instant) {
        match self.counters.get_mut(&counter, now) {
            Some(n) => *n += 1,
            None => self.counters.insert(counter, 1, now + window),
        }
    }

    /// How many of `counters` would take a new key.
    fn new_keys<'a>(&self, counters: impl IntoIterator<Item = &'a Counter>) -> usize {
        counters
            .into_iter()
            .filter(|c| !self.counters.has_slot(c))
            .count()
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
        self.with_state(|state, now| {
            let cooldown = Counter::Cooldown(phone.clone());
            let sends = Counter::SendsTo(phone.clone());
            if !limits.resend_after.is_zero() {
                let (n, left) = state.count(&cooldown, now);
                if n > 0 {
                    return Ok(Issued::TooSoon { retry_after: left });
                }
            }
            if !limits.per_phone.is_off() {
                let (n, left) = state.count(&sends, now);
                if n >= limits.per_phone.limit {
                    return Ok(Issued::QuotaExceeded { retry_after: left });
                }
            }
            let counted = [
                (!limits.resend_after.is_zero()).then_some(&cooldown),
                (!limits.per_phone.is_off()).then_some(&sends),
            ];
            let new_code = usize::from(!state.codes.has_slot(phone));
            self.room_for(state, new_code + state.new_keys(counted.into_iter().flatten()))?;
            let entry = Entry {
                hash: otp.hash.clone(),
                attempts: otp.attempts,
                delivery: otp.delivery.clone(),
            };
            state.codes.insert(phone.clone(), entry, now + otp.ttl);
            if !limits.resend_after.is_zero() {
                state.counters.insert(cooldown, 1, now + limits.resend_after);
            }
            if !limits.per_phone.is_off() {
                state.bump(sends, limits.per_phone.window, now);
            }
            Ok(Issued::Stored)
        })
    }

    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        self.with_state(|state, now| {
            let counter = Counter::Bucket(bucket);
            let (n, left) = state.count(&counter, now);
            if n >= quota.limit {
                return Ok(Taken::Exhausted { retry_after: left });
            }
            self.room_for(state, state.new_keys([&counter]))?;
            state.bump(counter, quota.window, now);
            Ok(Taken::Granted)
        })
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            if let Some(n) = state.counters.get_mut(&Counter::Bucket(bucket), now) {
                *n = n.saturating_sub(1);
            }
        });
        Ok(())
    }

    async fn verify_and_consume(
        &self,
        phone: &Phone,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<VerifyOutcome, StoreError> {
        self.with_state(|state, now| {
            let Some((entry, expires_at)) = state.codes.get(phone, now) else {
                return Ok(VerifyOutcome::NotFound);
            };
            let fails = Counter::Fails(phone.clone());
            let wait = Counter::GuessWait(phone.clone());
            if !budget.is_off() {
                let (waiting, wait_left) = state.count(&wait, now);
                if waiting > 0 {
                    return Ok(VerifyOutcome::Throttled {
                        retry_after: wait_left,
                    });
                }
                let (n, memory_left) = state.count(&fails, now);
                if budget.after(n) == NextGuess::Blocked {
                    return Ok(VerifyOutcome::Throttled {
                        retry_after: memory_left,
                    });
                }
            }
            if entry.attempts == 0 {
                return Ok(VerifyOutcome::Locked {
                    expires_in: expires_at - now,
                });
            }
            // Check every candidate, so the time taken doesn't say which key matched.
            let matched = candidates
                .iter()
                .fold(false, |found, c| c.matches(entry.hash.as_bytes()) | found);
            if matched {
                state.codes.remove(phone);
                state.counters.remove(&fails);
                state.counters.remove(&wait);
                return Ok(VerifyOutcome::Approved);
            }
            let mut phone_blocked = false;
            if !budget.is_off() {
                self.room_for(state, state.new_keys([&fails, &wait]))?;
                // Each wrong guess moves the count's memory on from now.
                let n = state.count(&fails, now).0 + 1;
                state.counters.insert(fails, n, now + budget.memory);
                match budget.after(n) {
                    NextGuess::After(delay) => state.counters.insert(wait, 1, now + delay),
                    NextGuess::Blocked => phone_blocked = true,
                    NextGuess::Now => {}
                }
            }
            let Some(entry) = state.codes.get_mut(phone, now) else {
                return Ok(VerifyOutcome::NotFound);
            };
            entry.attempts -= 1;
            Ok(VerifyOutcome::Mismatch {
                attempts_remaining: entry.attempts,
                phone_blocked,
            })
        })
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        Ok(self.with_state(|state, _| {
            let fails = state.counters.remove(&Counter::Fails(phone.clone()));
            let wait = state.counters.remove(&Counter::GuessWait(phone.clone()));
            fails.is_some() || wait.is_some()
        }))
    }

    async fn status(&self, phone: &Phone) -> Result<Option<OtpStatus>, StoreError> {
        Ok(self.with_state(|state, now| {
            state.codes.get(phone, now).map(|(e, expires_at)| OtpStatus {
                expires_in: expires_at - now,
                attempts_remaining: e.attempts,
                delivery: e.delivery.clone(),
            })
        }))
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            if state.codes.get(phone, now).is_some_and(|(e, _)| e.hash == *hash) {
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
            let link = (receipt.provider.clone(), receipt.message_id.clone());
            if receipt.tracked && !state.links.has_slot(&link) {
                self.room_for(state, 1)?;
            }
            let Some(entry) = state.codes.get_mut(phone, now).filter(|e| e.hash == *hash) else {
                return Ok(());
            };
            entry.delivery = Some(Delivery::queued(receipt, at));
            if receipt.tracked {
                state.links.insert(link, phone.clone(), now + link_ttl);
            }
            Ok(())
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn update_delivery(&self, report: &DeliveryReport) -> Result<Option<Phone>, StoreError> {
        Ok(self.with_state(|state, now| {
            let key = (report.provider.clone(), report.message_id.clone());
            let phone = state.links.get(&key, now)?.0.clone();
            let delivery = state
                .codes
                .get_mut(&phone, now)
                .and_then(|e| e.delivery.as_mut())?;
            let same_message =
                delivery.provider == report.provider && delivery.message_id == report.message_id;
            if !same_message || delivery.state.rank() >= report.state.rank() {
                return None;
            }
            delivery.state = report.state;
            delivery.updated_at = report.at;
            if report.error_code.is_some() {
                delivery.error_code.clone_from(&report.error_code);
            }
            Some(phone)
        }))
    }
}
