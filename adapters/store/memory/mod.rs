//! The embedded store: one process, no Redis. A lock around maps: each
//! phone's state changes only by the domain's rules (`domain::PhoneState`),
//! so this store has no rule of its own. Phones, report links and
//! idempotency keys together hold at most `max_entries` keys; the
//! per-client counters (and the pumping breaker's) are bounded apart, so a
//! flood of clients can't crowd out codes. Whatever needs room that is missing is refused whole.

mod expiring;
mod spend;
mod traffic;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use self::expiring::Expiring;
use crate::domain::{
    Admitted, Bucket, Checked, Claim, ClientGuesses, ClientNet, CodeHash, Delivery, DeliveryReport,
    GuessBudget, Idempotency, Named, Opened, PendingOtp, Phone, PhoneState, Quota, Scope, SendMode,
    SmsReceipt, Taken, Verification, VerificationId, VerifyOutcome,
};
use crate::ports::{
    Counters, Deliveries, Guess, Guesser, IdempotencyKeys, OtpStore, SendRules, StoreError, Verifications,
};

pub struct MemoryStore {
    state: Mutex<State>,
    max_entries: usize,
    /// The unix time of one instant: the domain's rules count in unix ms,
    /// the maps in monotonic instants.
    epoch: (Instant, u64),
}

#[derive(Default)]
struct State {
    phones: Expiring<Phone, PhoneState>,
    /// The per-client and service-wide counters, bounded apart.
    buckets: Expiring<Bucket, u32>,
    /// Each client's wrong guesses by phone in a row, bounded with the
    /// counters.
    guessers: Expiring<ClientNet, ClientGuesses>,
    /// (provider, message id) -> the phone it went to, for reports.
    links: Expiring<(String, String), Phone>,
    /// An idempotency key's slot -> the request's fingerprint and, once
    /// answered, the answer.
    claims: Expiring<String, (String, Option<String>)>,
    /// The pumping breaker's counts per destination group, bounded with
    /// the counters.
    traffic: Expiring<crate::domain::Group, crate::domain::GroupTraffic>,
    /// Each client's destination countries of its day.
    countries: Expiring<ClientNet, Vec<String>>,
    /// Spend by ledger (`domain::Ledger::name`), in millionths.
    spent: Expiring<String, u64>,
    /// The spend notices told in their windows.
    notices: Expiring<String, ()>,
}

impl MemoryStore {
    pub fn new(max_entries: usize) -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            state: Mutex::default(),
            max_entries,
            epoch: (Instant::now(), unix_ms),
        }
    }

    /// Runs `f` on the state with what has expired swept away, at one
    /// instant and its unix ms. A poisoned lock (a panic elsewhere while
    /// holding it) still holds consistent data, since no step leaves it
    /// half-done.
    fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant, u64) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        state.phones.sweep(now);
        state.buckets.sweep(now);
        state.guessers.sweep(now);
        state.links.sweep(now);
        state.claims.sweep(now);
        state.traffic.sweep(now);
        state.countries.sweep(now);
        state.spent.sweep(now);
        state.notices.sweep(now);
        let (at, unix_ms) = self.epoch;
        let ms = unix_ms + u64::try_from(now.duration_since(at).as_millis()).unwrap_or(u64::MAX);
        f(&mut state, now, ms)
    }

    /// The phone's state as kept, for the tests that hold the Redis
    /// scripts to it.
    #[cfg(test)]
    pub(crate) fn held(&self, phone: &Phone) -> Option<PhoneState> {
        self.with_state(|state, now, _| state.phones.get(phone, now).map(|(held, _)| held.clone()))
    }

    /// The instant of unix ms `ms`.
    fn instant(&self, ms: u64) -> Instant {
        let (at, unix_ms) = self.epoch;
        at + Duration::from_millis(ms.saturating_sub(unix_ms))
    }

    /// Refuses a step that needs `new` more keys than there is room for.
    fn room_for(&self, state: &State, new: usize) -> Result<(), StoreError> {
        let held = state.phones.len() + state.links.len() + state.claims.len();
        if held + new > self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        Ok(())
    }

    /// Refuses to count a client the counters have no room for.
    fn room_for_bucket(&self, state: &State, bucket: &Bucket) -> Result<(), StoreError> {
        self.room_for_clients(state, usize::from(!state.buckets.has_slot(bucket)))
    }

    fn room_for_clients(&self, state: &State, new: usize) -> Result<(), StoreError> {
        let counters = state.buckets.len()
            + state.guessers.len()
            + state.traffic.len()
            + state.countries.len()
            + state.spent.len()
            + state.notices.len();
        if counters + new > self.max_entries {
            return Err(StoreError::Full(self.max_entries));
        }
        Ok(())
    }

    /// Counts a guess by phone for `client` (room checked before).
    fn note(&self, state: &mut State, ms: u64, client: ClientNet, right: bool, waits: &GuessBudget) {
        if right {
            state.guessers.remove(&client);
            return;
        }
        let now = self.instant(ms);
        let held = state.guessers.get(&client, now).map(|(held, _)| *held);
        let next = ClientGuesses::after_wrong(held.as_ref(), waits, ms);
        state
            .guessers
            .insert(client, next, self.instant(next.forget_at_ms));
    }

    /// Runs one of the domain's rules on the phone's state and keeps what
    /// it leaves, for as long as its last part lives.
    fn phone_step<T>(
        &self,
        state: &mut State,
        ms: u64,
        phone: &Phone,
        f: impl FnOnce(&mut PhoneState, u64) -> T,
    ) -> T {
        let mut held = state.phones.remove(phone).unwrap_or_default();
        let out = f(&mut held, ms);
        held.sweep(ms);
        if !held.is_empty() {
            let until = self.instant(held.expires_at());
            state.phones.insert(phone.clone(), held, until);
        }
        out
    }
}

impl MemoryStore {
    /// Opens the phone's verification by the domain's rule on a copy of
    /// its state, kept (and the quotas taken) only if it stored the code.
    #[allow(clippy::too_many_arguments)]
    fn open_now(
        &self,
        state: &mut State,
        now: Instant,
        ms: u64,
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
        quotas: &[(Bucket, Quota)],
    ) -> Result<Opened, StoreError> {
        let mut trial = state
            .phones
            .get(phone, now)
            .map(|(held, _)| held.clone())
            .unwrap_or_default();
        let opened = trial.open(otp, mode, &rules.limits, &rules.ceiling, ms);
        if !matches!(opened, Opened::Stored(_)) {
            return Ok(opened);
        }
        self.room_for(state, usize::from(!state.phones.has_slot(phone)))?;
        for (bucket, quota) in quotas {
            state.bump(*bucket, quota.window, now);
        }
        let until = self.instant(trial.expires_at());
        state.phones.insert(phone.clone(), trial, until);
        Ok(opened)
    }
}

impl State {
    /// The live count of `bucket` (0 when none), and its time left.
    fn count(&self, bucket: &Bucket, now: Instant) -> (u32, Duration) {
        self.buckets
            .get(bucket, now)
            .map_or((0, Duration::ZERO), |(n, expires_at)| (*n, expires_at - now))
    }

    /// Whether each of `quotas` has one to give; the index and wait of
    /// the first that hasn't.
    fn refusal(&self, quotas: &[(Bucket, Quota)], now: Instant) -> Option<(usize, Duration)> {
        quotas.iter().enumerate().find_map(|(i, (bucket, quota))| {
            let (n, left) = self.count(bucket, now);
            (n >= quota.limit).then_some((i, left))
        })
    }

    /// Adds one; the first one starts the window.
    fn bump(&mut self, bucket: Bucket, window: Duration, now: Instant) {
        match self.buckets.get_mut(&bucket, now) {
            Some(n) => *n += 1,
            None => self.buckets.insert(bucket, 1, now + window),
        }
    }
}

#[async_trait]
impl Verifications for MemoryStore {
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Opened, StoreError> {
        self.with_state(|state, now, ms| self.open_now(state, now, ms, phone, otp, mode, rules, &[]))
    }

    async fn end(
        &self,
        phone: &Phone,
        scope: &Scope,
        id: &VerificationId,
    ) -> Result<Option<Verification>, StoreError> {
        Ok(self
            .with_state(|state, _, ms| self.phone_step(state, ms, phone, |held, ms| held.end(scope, id, ms))))
    }

    async fn check(&self, phone: &Phone, guess: &Guess<'_>) -> Result<Checked, StoreError> {
        Ok(self.with_state(|state, _, ms| {
            self.phone_step(state, ms, phone, |held, ms| checked(held, guess, ms))
        }))
    }

    async fn status(
        &self,
        phone: &Phone,
        scope: &Scope,
        named: Named<'_>,
    ) -> Result<Option<Verification>, StoreError> {
        Ok(self.with_state(|state, _, ms| {
            self.phone_step(state, ms, phone, |held, ms| held.status(scope, named, ms))
        }))
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.with_state(|state, _, ms| self.phone_step(state, ms, phone, |held, ms| held.withdraw(hash, ms)));
        Ok(())
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        Ok(self.with_state(|state, _, ms| self.phone_step(state, ms, phone, PhoneState::clear_guesses)))
    }
}

#[async_trait]
impl Counters for MemoryStore {
    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        self.with_state(|state, now, _| {
            if let Some((_, retry_after)) = state.refusal(&[(bucket, quota)], now) {
                return Ok(Taken::Exhausted { retry_after });
            }
            self.room_for_bucket(state, &bucket)?;
            state.bump(bucket, quota.window, now);
            Ok(Taken::Granted)
        })
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        self.with_state(|state, now, _| {
            if let Some(n) = state.buckets.get_mut(&bucket, now) {
                *n = n.saturating_sub(1);
            }
        });
        Ok(())
    }

    async fn client_wait(
        &self,
        client: ClientNet,
        waits: &GuessBudget,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(self.with_state(|state, now, ms| {
            let held = state.guessers.get(&client, now).map(|(held, _)| *held);
            ClientGuesses::wait(held.as_ref(), waits, ms)
        }))
    }

    async fn note_guess(
        &self,
        client: ClientNet,
        right: bool,
        waits: &GuessBudget,
    ) -> Result<(), StoreError> {
        self.with_state(|state, _, ms| {
            if !right {
                self.room_for_clients(state, usize::from(!state.guessers.has_slot(&client)))?;
            }
            self.note(state, ms, client, right, waits);
            Ok(())
        })
    }
}

#[async_trait]
impl Deliveries for MemoryStore {
    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
        at: u64,
        link_ttl: Duration,
    ) -> Result<(), StoreError> {
        self.with_state(|state, now, ms| {
            let link = (receipt.provider.clone(), receipt.message_id.clone());
            if receipt.tracked && !state.links.has_slot(&link) {
                self.room_for(state, 1)?;
            }
            let recorded = self.phone_step(state, ms, phone, |held, ms| {
                held.record_delivery(hash, Delivery::queued(receipt, at), ms)
            });
            if recorded && receipt.tracked {
                state.links.insert(link, phone.clone(), now + link_ttl);
            }
            Ok(())
        })
    }

    async fn update_delivery(
        &self,
        report: &DeliveryReport,
    ) -> Result<Option<(Phone, Verification)>, StoreError> {
        Ok(self.with_state(|state, now, ms| {
            let key = (report.provider.clone(), report.message_id.clone());
            let phone = state.links.get(&key, now)?.0.clone();
            let updated = self.phone_step(state, ms, &phone, |held, ms| held.update_delivery(report, ms));
            updated.map(|verification| (phone, verification))
        }))
    }
}

#[async_trait]
impl IdempotencyKeys for MemoryStore {
    async fn claim(&self, idempotency: &Idempotency, hold: Duration) -> Result<Claim, StoreError> {
        self.with_state(|state, now, _| {
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
        self.with_state(|state, now, _| {
            let answered = (idempotency.fingerprint.clone(), Some(answer.to_owned()));
            state
                .claims
                .insert(idempotency.slot.clone(), answered, now + window);
        });
        Ok(())
    }

    async fn release(&self, idempotency: &Idempotency) -> Result<(), StoreError> {
        self.with_state(|state, _, _| state.claims.remove(&idempotency.slot));
        Ok(())
    }
}

#[async_trait]
impl OtpStore for MemoryStore {
    /// The quotas, the phone's limits and the write under one lock: a
    /// refusal (or no room) takes nothing and leaves no key behind.
    async fn admit(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Admitted<Opened>, StoreError> {
        self.with_state(|state, now, ms| {
            if let Some((refused, retry_after)) = state.refusal(quotas, now) {
                return Ok(Admitted::Refused { refused, retry_after });
            }
            for (bucket, _) in quotas {
                self.room_for_bucket(state, bucket)?;
            }
            self.open_now(state, now, ms, phone, otp, mode, rules, quotas)
                .map(Admitted::Done)
        })
    }

    /// The client's quota and waits and the check under one lock: a guess
    /// whose counts can't be kept is refused before it is compared.
    async fn guess(
        &self,
        guesser: &Guesser,
        phone: &Phone,
        guess: &Guess<'_>,
    ) -> Result<Admitted<Checked>, StoreError> {
        self.with_state(|state, now, ms| {
            let bucket = Bucket::VerifiesFrom(guesser.client);
            let quota = guesser.quota;
            let waits = (guess.named == Named::ByPhone && !guesser.waits.is_off()).then_some(&guesser.waits);
            if !quota.is_off() {
                if let Some((_, retry_after)) = state.refusal(&[(bucket, quota)], now) {
                    return Ok(Admitted::Refused {
                        refused: 0,
                        retry_after,
                    });
                }
            }
            let new_bucket = !quota.is_off() && !state.buckets.has_slot(&bucket);
            let new_guesser = waits.is_some() && !state.guessers.has_slot(&guesser.client);
            self.room_for_clients(state, usize::from(new_bucket) + usize::from(new_guesser))?;
            if !quota.is_off() {
                state.bump(bucket, quota.window, now);
            }
            if let Some(waits) = waits {
                let held = state.guessers.get(&guesser.client, now).map(|(held, _)| *held);
                if let Some(retry_after) = ClientGuesses::wait(held.as_ref(), waits, ms) {
                    return Ok(Admitted::Done(Checked {
                        outcome: VerifyOutcome::Throttled { retry_after },
                        verification: None,
                    }));
                }
            }
            let checked = self.phone_step(state, ms, phone, |held, ms| checked(held, guess, ms));
            if let Some(waits) = waits {
                match checked.outcome {
                    VerifyOutcome::Approved => self.note(state, ms, guesser.client, true, waits),
                    VerifyOutcome::Mismatch { .. } => self.note(state, ms, guesser.client, false, waits),
                    _ => {}
                }
            }
            Ok(Admitted::Done(checked))
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The domain's check of `guess` on a phone's state.
fn checked(held: &mut PhoneState, guess: &Guess<'_>, ms: u64) -> Checked {
    held.check(guess.scope, guess.named, guess.candidates, &guess.ceiling, ms)
}
