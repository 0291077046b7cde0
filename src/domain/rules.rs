//! Everything a store keeps for one phone, and every rule that changes it:
//! pure functions over plain data, time passed in as unix milliseconds.
//! This is the one home of a verification's rules. The memory store applies
//! them under a lock; the Redis scripts repeat them in Lua, for one round
//! trip, and `tests/it/differential.rs` holds the copies to each other.

use std::time::Duration;

use super::{
    Checked, CodeHash, Delivery, DeliveryReport, GuessBudget, NextGuess, Opened, PendingOtp, Resend,
    SendLimits, Verification, VerificationId, VerifyOutcome, MAX_LIVE_CODES, MAX_SEND_TIMES,
};

/// A phone's state: its send tally, its verification and its wrong
/// guesses in a row. Each part ends on its own; [`PhoneState::sweep`]
/// drops what has, and an empty state is no state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneState {
    pub tally: Option<Tally>,
    pub record: Option<Record>,
    pub fails: Option<Fails>,
}

/// The phone's sends, for its cooldown and its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Sends in the quota's window.
    pub sends: u32,
    /// Unix ms of the last send.
    pub last_ms: u64,
    /// Unix ms the quota's window ends; 0 with no quota.
    pub window_end_ms: u64,
    /// Unix ms past which neither the cooldown nor the window needs it.
    pub until_ms: u64,
}

/// A verification as stored: its codes, each with its own expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: VerificationId,
    /// Each code's hash and the unix ms it expires, oldest first.
    pub codes: Vec<(CodeHash, u64)>,
    /// Wrong codes still allowed; 0: locked.
    pub attempts: u32,
    /// Unix seconds of the first send.
    pub created_at: u64,
    pub sends: u32,
    /// Unix seconds of the last [`MAX_SEND_TIMES`] sends, oldest first.
    pub send_times: Vec<u64>,
    pub delivery: Option<Delivery>,
}

/// The phone's wrong guesses in a row ([`GuessBudget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fails {
    pub in_a_row: u32,
    /// Unix ms before which no guess is heard; 0: none.
    pub wait_until_ms: u64,
    /// Unix ms the count is forgotten.
    pub forget_at_ms: u64,
}

impl Record {
    /// Unix ms its newest code expires.
    pub fn expires_at(&self) -> u64 {
        self.codes.iter().map(|(_, at)| *at).max().unwrap_or(0)
    }

    fn live_codes(&self, now: u64) -> impl Iterator<Item = &CodeHash> {
        self.codes
            .iter()
            .filter(move |(_, at)| *at > now)
            .map(|(hash, _)| hash)
    }

    /// As callers see it, at `now`.
    pub fn view(&self, now: u64) -> Verification {
        Verification {
            id: self.id.clone(),
            created_at: self.created_at,
            expires_in: Duration::from_millis(self.expires_at().saturating_sub(now)),
            attempts_remaining: self.attempts,
            sends: self.sends,
            send_times: self.send_times.clone(),
            delivery: self.delivery.clone(),
        }
    }

    fn new(otp: &PendingOtp, now: u64) -> Self {
        Self {
            id: otp.id.clone(),
            codes: vec![(otp.hash.clone(), now + millis(otp.ttl))],
            attempts: otp.attempts,
            created_at: otp.sent_at,
            sends: 1,
            send_times: vec![otp.sent_at],
            delivery: otp.delivery.clone(),
        }
    }

    /// One more live code for the same verification: the oldest goes past
    /// [`MAX_LIVE_CODES`], attempts stay as they are.
    fn resent(&mut self, otp: &PendingOtp, now: u64) {
        self.codes.retain(|(_, at)| *at > now);
        if self.codes.len() >= MAX_LIVE_CODES {
            self.codes.drain(..=self.codes.len() - MAX_LIVE_CODES);
        }
        self.codes.push((otp.hash.clone(), now + millis(otp.ttl)));
        self.sends += 1;
        self.send_times.push(otp.sent_at);
        if self.send_times.len() > MAX_SEND_TIMES {
            self.send_times.remove(0);
        }
        self.delivery.clone_from(&otp.delivery);
    }
}

impl PhoneState {
    /// Drops every part that has ended by `now`: a verification with no
    /// live code, a tally neither the cooldown nor the window needs, wrong
    /// guesses past their memory.
    pub fn sweep(&mut self, now: u64) {
        if self.record.as_ref().is_some_and(|r| r.expires_at() <= now) {
            self.record = None;
        }
        if self.tally.is_some_and(|t| t.until_ms <= now) {
            self.tally = None;
        }
        if self.fails.is_some_and(|f| f.forget_at_ms <= now) {
            self.fails = None;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tally.is_none() && self.record.is_none() && self.fails.is_none()
    }

    /// Unix ms its last part ends: how long a store must keep it.
    pub fn expires_at(&self) -> u64 {
        let record = self.record.as_ref().map_or(0, Record::expires_at);
        let tally = self.tally.map_or(0, |t| t.until_ms);
        let fails = self.fails.map_or(0, |f| f.forget_at_ms);
        record.max(tally).max(fails)
    }

    /// Stores `otp` unless the phone's `limits` refuse a code now; a
    /// pending verification with attempts left is kept when `resend` says
    /// so. A refusal changes nothing.
    pub fn open(&mut self, otp: &PendingOtp, limits: &SendLimits, resend: Resend, now: u64) -> Opened {
        self.sweep(now);
        let cooldown = millis(limits.resend_after);
        let quota = limits.per_phone;
        let (mut sends, last, mut window_end) = self
            .tally
            .map_or((0, None, 0), |t| (t.sends, Some(t.last_ms), t.window_end_ms));
        if let Some(last) = last.filter(|_| cooldown > 0) {
            if now < last + cooldown {
                return Opened::TooSoon {
                    retry_after: Duration::from_millis(last + cooldown - now),
                };
            }
        }
        if !quota.is_off() {
            if now >= window_end {
                (sends, window_end) = (0, now + millis(quota.window));
            }
            if sends >= quota.limit {
                return Opened::QuotaExceeded {
                    retry_after: Duration::from_millis(window_end - now),
                };
            }
        }
        let record = match self.record.as_mut() {
            Some(record) if resend == Resend::Keeps && record.attempts > 0 => {
                record.resent(otp, now);
                record
            }
            _ => self.record.insert(Record::new(otp, now)),
        };
        let verification = record.view(now);
        if !limits.is_off() {
            let quota_on = !quota.is_off();
            self.tally = Some(Tally {
                sends: if quota_on { sends + 1 } else { 0 },
                last_ms: now,
                window_end_ms: if quota_on { window_end } else { 0 },
                until_ms: (now + cooldown).max(window_end),
            });
        }
        Opened::Stored(verification)
    }

    /// Checks a guess against the verification (only if it is `id`, when
    /// given): one of `candidates` equal to a live code's hash consumes it
    /// and clears the wrong guesses; otherwise one attempt is used and the
    /// wrong guesses in a row grow as `budget` counts them. While the budget
    /// allows no guess, or with no attempts left, the guess isn't compared.
    pub fn check(
        &mut self,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
        now: u64,
    ) -> Checked {
        self.sweep(now);
        let only = |outcome| Checked {
            outcome,
            verification: None,
        };
        let Some(record) = self.record.as_mut().filter(|r| id.is_none_or(|id| r.id == *id)) else {
            return only(VerifyOutcome::NotFound);
        };
        if !budget.is_off() {
            if let Some(fails) = self.fails {
                if budget.after(fails.in_a_row) == NextGuess::Blocked {
                    return only(throttled(fails.forget_at_ms, now));
                }
                if fails.wait_until_ms > now {
                    return only(throttled(fails.wait_until_ms, now));
                }
            }
        }
        if record.attempts == 0 {
            return only(VerifyOutcome::Locked {
                expires_in: Duration::from_millis(record.expires_at() - now),
            });
        }
        // Every candidate against every live code, whichever matches, so
        // the time taken says nothing of which one did.
        let matched = record
            .live_codes(now)
            .flat_map(|code| candidates.iter().map(move |c| c.matches(code.as_bytes())))
            .fold(false, |found, m| found | m);
        if matched {
            let verification = record.view(now);
            self.record = None;
            self.fails = None;
            return Checked {
                outcome: VerifyOutcome::Approved,
                verification: Some(verification),
            };
        }
        record.attempts -= 1;
        let verification = record.view(now);
        let mut phone_blocked = false;
        if !budget.is_off() {
            let in_a_row = self.fails.map_or(0, |f| f.in_a_row) + 1;
            let wait_until_ms = match budget.after(in_a_row) {
                NextGuess::Now => 0,
                NextGuess::After(delay) => now + millis(delay),
                NextGuess::Blocked => {
                    phone_blocked = true;
                    0
                }
            };
            self.fails = Some(Fails {
                in_a_row,
                wait_until_ms,
                forget_at_ms: now + millis(budget.memory),
            });
        }
        Checked {
            outcome: VerifyOutcome::Mismatch {
                attempts_remaining: verification.attempts_remaining,
                phone_blocked,
            },
            verification: Some(verification),
        }
    }

    /// Ends the verification if it is `id` and pending (attempts left);
    /// returns it as it was.
    pub fn end(&mut self, id: &VerificationId, now: u64) -> Option<Verification> {
        self.sweep(now);
        let record = self.record.as_ref().filter(|r| r.id == *id && r.attempts > 0)?;
        let verification = record.view(now);
        self.record = None;
        Some(verification)
    }

    /// The verification, pending or locked.
    pub fn status(&mut self, now: u64) -> Option<Verification> {
        self.sweep(now);
        self.record.as_ref().map(|r| r.view(now))
    }

    /// Takes the code hashed as `hash` and its send back; a verification
    /// left without codes is gone.
    pub fn withdraw(&mut self, hash: &CodeHash, now: u64) {
        self.sweep(now);
        let Some(record) = self.record.as_mut() else {
            return;
        };
        record.codes.retain(|(_, at)| *at > now);
        if !record.codes.iter().any(|(code, _)| code == hash) {
            return;
        }
        record.codes.retain(|(code, _)| code != hash);
        record.sends = record.sends.saturating_sub(1).max(1);
        record.send_times.pop();
        if record.codes.is_empty() {
            self.record = None;
        }
    }

    /// Notes `delivery` for the code hashed as `hash` if it is still the
    /// newest; says whether it was.
    pub fn record_delivery(&mut self, hash: &CodeHash, delivery: Delivery, now: u64) -> bool {
        self.sweep(now);
        let newest = |r: &&mut Record| r.codes.last().is_some_and(|(code, _)| code == hash);
        let Some(record) = self.record.as_mut().filter(newest) else {
            return false;
        };
        record.delivery = Some(delivery);
        true
    }

    /// Applies a report to the message it names, if that is the newest
    /// SMS's and the report moves its state forward; says whether it did.
    pub fn update_delivery(&mut self, report: &DeliveryReport, now: u64) -> bool {
        self.sweep(now);
        let Some(delivery) = self.record.as_mut().and_then(|r| r.delivery.as_mut()) else {
            return false;
        };
        let same_message = delivery.provider == report.provider && delivery.message_id == report.message_id;
        if !same_message || delivery.state.rank() >= report.state.rank() {
            return false;
        }
        delivery.state = report.state;
        delivery.updated_at = report.at;
        if report.error_code.is_some() {
            delivery.error_code.clone_from(&report.error_code);
        }
        true
    }

    /// Forgets the wrong guesses; says whether there were any.
    pub fn clear_guesses(&mut self, now: u64) -> bool {
        self.sweep(now);
        self.fails.take().is_some()
    }
}

fn throttled(until: u64, now: u64) -> VerifyOutcome {
    VerifyOutcome::Throttled {
        retry_after: Duration::from_millis(until.saturating_sub(now)),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
