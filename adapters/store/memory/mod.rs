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
    Bucket, Checked, Claim, CodeHash, Delivery, DeliveryReport, GuessBudget, Idempotency, NextGuess, Opened,
    PendingOtp, Phone, Quota, Resend, SendLimits, SmsReceipt, Taken, Verification, VerificationId,
    VerifyOutcome, MAX_LIVE_CODES, MAX_SEND_TIMES,
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
    /// An idempotency key's slot -> the request's fingerprint and, once
    /// answered, the answer.
    claims: Expiring<String, (String, Option<String>)>,
}

/// A verification; it expires with its newest code.
struct Entry {
    id: VerificationId,
    /// Each code's hash and when it expires, oldest first.
    codes: Vec<(CodeHash, Instant)>,
    attempts: u32,
    created_at: u64,
    sends: u32,
    send_times: Vec<u64>,
    delivery: Option<Delivery>,
}

impl Entry {
    fn view(&self, expires_in: Duration) -> Verification {
        Verification {
            id: self.id.clone(),
            created_at: self.created_at,
            expires_in,
            attempts_remaining: self.attempts,
            sends: self.sends,
            send_times: self.send_times.clone(),
            delivery: self.delivery.clone(),
        }
    }
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
        state.claims.sweep(now);
        f(&mut state, now)
    }

    /// Refuses a step that needs `new` more keys than there is room for.
    fn room_for(&self, state: &State, new: usize) -> Result<(), StoreError> {
        let held = state.codes.len() + state.counters.len() + state.links.len() + state.claims.len();
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
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Opened, StoreError> {
        self.with_state(|state, now| {
            let cooldown = Counter::Cooldown(phone.clone());
            let sends = Counter::SendsTo(phone.clone());
            if !limits.resend_after.is_zero() {
                let (n, left) = state.count(&cooldown, now);
                if n > 0 {
                    return Ok(Opened::TooSoon { retry_after: left });
                }
            }
            if !limits.per_phone.is_off() {
                let (n, left) = state.count(&sends, now);
                if n >= limits.per_phone.limit {
                    return Ok(Opened::QuotaExceeded { retry_after: left });
                }
            }
            let counted = [
                (!limits.resend_after.is_zero()).then_some(&cooldown),
                (!limits.per_phone.is_off()).then_some(&sends),
            ];
            let kept = resend == Resend::Keeps
                && state
                    .codes
                    .get(phone, now)
                    .is_some_and(|(entry, _)| entry.attempts > 0);
            let new_code = usize::from(!state.codes.has_slot(phone));
            let new_keys = new_code + state.new_keys(counted.into_iter().flatten());
            self.room_for(state, new_keys)?;
            let expires_at = now + otp.ttl;
            let entry = match state.codes.remove(phone).filter(|_| kept) {
                Some(mut entry) => {
                    entry.codes.retain(|(_, at)| *at > now);
                    if entry.codes.len() >= MAX_LIVE_CODES {
                        entry.codes.drain(..=entry.codes.len() - MAX_LIVE_CODES);
                    }
                    entry.codes.push((otp.hash.clone(), expires_at));
                    entry.sends += 1;
                    entry.send_times.push(otp.sent_at);
                    if entry.send_times.len() > MAX_SEND_TIMES {
                        entry.send_times.remove(0);
                    }
                    entry.delivery.clone_from(&otp.delivery);
                    entry
                }
                None => Entry {
                    id: otp.id.clone(),
                    codes: vec![(otp.hash.clone(), expires_at)],
                    attempts: otp.attempts,
                    created_at: otp.sent_at,
                    sends: 1,
                    send_times: vec![otp.sent_at],
                    delivery: otp.delivery.clone(),
                },
            };
            let verification = entry.view(otp.ttl);
            state.codes.insert(phone.clone(), entry, expires_at);
            if !limits.resend_after.is_zero() {
                state.counters.insert(cooldown, 1, now + limits.resend_after);
            }
            if !limits.per_phone.is_off() {
                state.bump(sends, limits.per_phone.window, now);
            }
            Ok(Opened::Stored(verification))
        })
    }

    async fn end(&self, phone: &Phone, id: &VerificationId) -> Result<Option<Verification>, StoreError> {
        Ok(self.with_state(|state, now| {
            let (entry, expires_at) = state.codes.get(phone, now)?;
            if entry.id != *id || entry.attempts == 0 {
                return None;
            }
            let verification = entry.view(expires_at - now);
            state.codes.remove(phone);
            Some(verification)
        }))
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

    async fn check(
        &self,
        phone: &Phone,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<Checked, StoreError> {
        let only = |outcome| Checked {
            outcome,
            verification: None,
        };
        self.with_state(|state, now| {
            let Some((entry, expires_at)) = state
                .codes
                .get(phone, now)
                .filter(|(e, _)| id.is_none_or(|id| e.id == *id))
            else {
                return Ok(only(VerifyOutcome::NotFound));
            };
            let fails = Counter::Fails(phone.clone());
            let wait = Counter::GuessWait(phone.clone());
            if !budget.is_off() {
                let (waiting, wait_left) = state.count(&wait, now);
                if waiting > 0 {
                    return Ok(only(VerifyOutcome::Throttled {
                        retry_after: wait_left,
                    }));
                }
                let (n, memory_left) = state.count(&fails, now);
                if budget.after(n) == NextGuess::Blocked {
                    return Ok(only(VerifyOutcome::Throttled {
                        retry_after: memory_left,
                    }));
                }
            }
            if entry.attempts == 0 {
                return Ok(only(VerifyOutcome::Locked {
                    expires_in: expires_at - now,
                }));
            }
            // Check every candidate against every live code, so the time
            // taken doesn't say which key or which code matched.
            let matched = entry
                .codes
                .iter()
                .filter(|(_, at)| *at > now)
                .flat_map(|(code, _)| candidates.iter().map(move |c| c.matches(code.as_bytes())))
                .fold(false, |found, m| m | found);
            if matched {
                let verification = entry.view(expires_at - now);
                state.codes.remove(phone);
                state.counters.remove(&fails);
                state.counters.remove(&wait);
                return Ok(Checked {
                    outcome: VerifyOutcome::Approved,
                    verification: Some(verification),
                });
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
                return Ok(only(VerifyOutcome::NotFound));
            };
            entry.attempts -= 1;
            Ok(Checked {
                outcome: VerifyOutcome::Mismatch {
                    attempts_remaining: entry.attempts,
                    phone_blocked,
                },
                verification: Some(entry.view(expires_at - now)),
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

    async fn status(&self, phone: &Phone) -> Result<Option<Verification>, StoreError> {
        Ok(self.with_state(|state, now| {
            state
                .codes
                .get(phone, now)
                .map(|(e, expires_at)| e.view(expires_at - now))
        }))
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            let Some(mut entry) = state.codes.remove(phone) else {
                return;
            };
            if entry.codes.iter().any(|(code, _)| code == hash) {
                entry.codes.retain(|(code, _)| code != hash);
                entry.sends = entry.sends.saturating_sub(1).max(1);
                entry.send_times.pop();
            }
            entry.codes.retain(|(_, at)| *at > now);
            let latest = entry.codes.iter().map(|(_, at)| *at).max();
            if let Some(latest) = latest {
                state.codes.insert(phone.clone(), entry, latest);
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
            let newest = |e: &&mut Entry| e.codes.last().is_some_and(|(code, _)| code == hash);
            let Some(entry) = state.codes.get_mut(phone, now).filter(newest) else {
                return Ok(());
            };
            entry.delivery = Some(Delivery::queued(receipt, at));
            if receipt.tracked {
                state.links.insert(link, phone.clone(), now + link_ttl);
            }
            Ok(())
        })
    }

    async fn claim(&self, idempotency: &Idempotency, hold: Duration) -> Result<Claim, StoreError> {
        self.with_state(|state, now| {
            Ok(match state.claims.get(&idempotency.slot, now) {
                None => {
                    self.room_for(state, usize::from(!state.claims.has_slot(&idempotency.slot)))?;
                    let held = (idempotency.fingerprint.clone(), None);
                    state.claims.insert(idempotency.slot.clone(), held, now + hold);
                    Claim::Fresh
                }
                Some(((fingerprint, _), _)) if *fingerprint != idempotency.fingerprint => Claim::Reused,
                Some(((_, None), _)) => Claim::InFlight,
                Some(((_, Some(answer)), _)) => Claim::Answered(answer.clone()),
            })
        })
    }

    async fn settle(
        &self,
        idempotency: &Idempotency,
        answer: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            let answered = (idempotency.fingerprint.clone(), Some(answer.to_owned()));
            state
                .claims
                .insert(idempotency.slot.clone(), answered, now + window);
        });
        Ok(())
    }

    async fn release(&self, idempotency: &Idempotency) -> Result<(), StoreError> {
        self.with_state(|state, _| state.claims.remove(&idempotency.slot));
        Ok(())
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
