//! Everything a store keeps for one phone, and every rule that changes it:
//! pure functions over plain data, time passed in as unix milliseconds.
//! This is the one home of a verification's rules. The memory store applies
//! them under a lock; the Redis scripts repeat them in Lua, for one round
//! trip, and `adapters/store/redis/tests/differential.rs` holds the copies
//! to each other.
//!
//! The model, against a stranger who can make the app send and check codes
//! for any phone (docs/behaviour.md, "Security model"):
//! - every send starts a verification of its own, known by an id only its
//!   scope (the caller that started it) is told; a resend names the id;
//! - a verification has `attempts` for guesses by id, reserved from the
//!   phone's ceiling when it starts, so nobody else's guesses can use them,
//!   and `phone_attempts` for guesses by phone (which reach every pending
//!   verification of the scope, and so anyone's);
//! - the phone's ceiling bounds the wrong codes answered as wrong per
//!   window across every path: a guess by phone needs room left beside
//!   what the live verifications hold reserved, and a new verification
//!   reserves its attempts from it.

use std::time::Duration;

use super::{
    Channel, Checked, CodeHash, Delivery, DeliveryReport, DeliveryState, GuessCeiling, Opened, PendingOtp,
    Scope, SendLimits, SendMode, Verification, VerificationId, VerifyOutcome, MAX_LIVE_CODES, MAX_SEND_TIMES,
    MAX_VERIFICATIONS,
};

/// A phone's state: its send tally, the wrong codes its ceiling counts and
/// its verifications. Each part ends on its own; [`PhoneState::sweep`]
/// drops what has, and an empty state is no state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneState {
    pub tally: Option<Tally>,
    pub wrong: Option<WrongCodes>,
    /// Oldest first.
    pub verifications: Vec<Record>,
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

/// Wrong codes answered for the phone in the ceiling's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongCodes {
    pub count: u32,
    /// Unix ms the window ends.
    pub window_end_ms: u64,
}

/// A verification as stored: its codes, each with its own expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: VerificationId,
    pub scope: Scope,
    /// Each code's hash and the unix ms it expires, oldest first.
    pub codes: Vec<(CodeHash, u64)>,
    /// Wrong codes still allowed by id; 0: locked.
    pub attempts: u32,
    /// Wrong codes still allowed by phone; 0: out of reach by phone.
    pub phone_attempts: u32,
    /// Unix seconds of the first send.
    pub created_at: u64,
    pub sends: u32,
    /// Unix seconds of the last [`MAX_SEND_TIMES`] sends, oldest first.
    pub send_times: Vec<u64>,
    /// The channel of each of `send_times`, in step with it.
    pub channels: Vec<Channel>,
    /// The workflow's channels not tried yet, in order.
    pub next: Vec<Channel>,
    pub delivery: Option<Delivery>,
}

/// Which way a guess names its verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named<'a> {
    /// Whichever pending verifications of the scope a guess by phone reaches.
    ByPhone,
    ById(&'a VerificationId),
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

    /// As callers see it at `now`, with the attempts of the way it is named.
    pub fn view(&self, named: Named<'_>, now: u64) -> Verification {
        Verification {
            id: self.id.clone(),
            created_at: self.created_at,
            expires_in: Duration::from_millis(self.expires_at().saturating_sub(now)),
            attempts_remaining: match named {
                Named::ByPhone => self.phone_attempts,
                Named::ById(_) => self.attempts,
            },
            sends: self.sends,
            send_times: self.send_times.clone(),
            channels: self.channels.clone(),
            next: self.next.clone(),
            delivery: self.delivery.clone(),
        }
    }

    fn new(otp: &PendingOtp, attempts: u32, now: u64) -> Self {
        Self {
            id: otp.id.clone(),
            scope: otp.scope.clone(),
            codes: vec![(otp.hash.clone(), now + millis(otp.ttl))],
            attempts,
            phone_attempts: otp.attempts,
            created_at: otp.sent_at,
            sends: 1,
            send_times: vec![otp.sent_at],
            channels: vec![otp.channel.unwrap_or_default()],
            next: otp.next.clone(),
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
        let channel = otp.channel.unwrap_or_else(|| {
            self.next
                .first()
                .or(self.channels.last())
                .copied()
                .unwrap_or_default()
        });
        self.channels.push(channel);
        if self.send_times.len() > MAX_SEND_TIMES {
            self.send_times.remove(0);
            self.channels.remove(0);
        }
        self.delivery.clone_from(&otp.delivery);
        // A send on the workflow's next channel, a fallback's or a resend's,
        // moves the workflow on.
        if self.next.first() == Some(&channel) {
            self.next.remove(0);
        }
    }

    /// Whether the service may fall back from message `after` to `channel`:
    /// it is still the newest message (`""`: the newest send has no message,
    /// no vendor took it), not delivered, and `channel` is next.
    fn falls_back(&self, after: &str, channel: Option<Channel>) -> bool {
        let newest = self.delivery.as_ref().map_or("", |d| d.message_id.as_str());
        let delivered = self
            .delivery
            .as_ref()
            .is_some_and(|d| d.state == DeliveryState::Delivered);
        self.attempts > 0
            && newest == after
            && !delivered
            && self.next.first().is_some_and(|next| Some(*next) == channel)
    }

    /// Every candidate against every live code, whichever matches, so the
    /// time taken says nothing of which one did.
    fn matches(&self, candidates: &[CodeHash], now: u64) -> bool {
        self.live_codes(now)
            .flat_map(|code| candidates.iter().map(move |c| c.matches(code.as_bytes())))
            .fold(false, |found, m| found | m)
    }
}

impl PhoneState {
    /// Drops every part that has ended by `now`: a verification with no
    /// live code, a tally neither the cooldown nor the window needs, a
    /// ceiling's window that is over.
    pub fn sweep(&mut self, now: u64) {
        self.verifications.retain(|r| r.expires_at() > now);
        if self.tally.is_some_and(|t| t.until_ms <= now) {
            self.tally = None;
        }
        if self.wrong.is_some_and(|w| w.window_end_ms <= now) {
            self.wrong = None;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tally.is_none() && self.wrong.is_none() && self.verifications.is_empty()
    }

    /// Unix ms its last part ends: how long a store must keep it.
    pub fn expires_at(&self) -> u64 {
        let verifications = self
            .verifications
            .iter()
            .map(Record::expires_at)
            .max()
            .unwrap_or(0);
        let tally = self.tally.map_or(0, |t| t.until_ms);
        let wrong = self.wrong.map_or(0, |w| w.window_end_ms);
        verifications.max(tally).max(wrong)
    }

    /// The wrong codes the ceiling still allows beside those the live
    /// verifications hold reserved, and when more room comes; `None` when
    /// the ceiling is off.
    fn room(&self, ceiling: &GuessCeiling, now: u64) -> Option<(u32, Duration)> {
        if ceiling.is_off() {
            return None;
        }
        let wrong = self.wrong.map_or(0, |w| w.count);
        let reserved: u32 = self.verifications.iter().map(|r| r.attempts).sum();
        let room = ceiling.limit.saturating_sub(wrong.saturating_add(reserved));
        // Room comes back when the window ends or a reserving verification does.
        let window_end = self.wrong.map(|w| w.window_end_ms);
        let frees = self
            .verifications
            .iter()
            .filter(|r| r.attempts > 0)
            .map(Record::expires_at);
        let next = window_end.into_iter().chain(frees).min().unwrap_or(now);
        Some((room, Duration::from_millis(next.saturating_sub(now))))
    }

    /// Counts one wrong code in the ceiling's window.
    fn count_wrong(&mut self, ceiling: &GuessCeiling, now: u64) {
        if ceiling.is_off() {
            return;
        }
        self.wrong = Some(match self.wrong {
            Some(w) => WrongCodes {
                count: w.count + 1,
                ..w
            },
            None => WrongCodes {
                count: 1,
                window_end_ms: now + millis(ceiling.window),
            },
        });
    }

    fn find(&self, scope: &Scope, id: &VerificationId) -> Option<usize> {
        self.verifications
            .iter()
            .position(|r| r.id == *id && r.scope == *scope)
    }

    /// Stores `otp` as `mode` says unless the phone's `limits`, its number
    /// of verifications or its `ceiling` refuse it now. A refusal changes
    /// nothing.
    pub fn open(
        &mut self,
        otp: &PendingOtp,
        mode: &SendMode,
        limits: &SendLimits,
        ceiling: &GuessCeiling,
        now: u64,
    ) -> Opened {
        self.sweep(now);
        // The verification the code joins, if any.
        let joins = match mode {
            SendMode::Resend(id) => match self.find(&otp.scope, id) {
                Some(i) if self.verifications[i].attempts > 0 => Some(i),
                _ => return Opened::NotFound,
            },
            SendMode::KeepPending => self
                .verifications
                .iter()
                .rposition(|r| r.scope == otp.scope && r.attempts > 0),
            SendMode::Fallback { id, after } => match self.verifications.iter().position(|r| r.id == *id) {
                Some(i) if self.verifications[i].falls_back(after, otp.channel) => Some(i),
                _ => return Opened::NotFound,
            },
            SendMode::New | SendMode::Replace => None,
        };
        // The vendor said the message failed, or never said it arrived: the
        // user waits for no cooldown. The quota still counts it.
        let cooldown = match mode {
            SendMode::Fallback { .. } => 0,
            _ => millis(limits.resend_after),
        };
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
        let verification = match joins {
            Some(i) => {
                let record = &mut self.verifications[i];
                record.resent(otp, now);
                record.view(Named::ById(&otp.id), now)
            }
            None => {
                let mut kept = self.clone();
                if *mode == SendMode::Replace {
                    kept.verifications.retain(|r| r.scope != otp.scope);
                }
                if kept.verifications.len() >= MAX_VERIFICATIONS {
                    let oldest = kept.verifications.iter().map(Record::expires_at).min();
                    return Opened::QuotaExceeded {
                        retry_after: Duration::from_millis(oldest.unwrap_or(now).saturating_sub(now)),
                    };
                }
                let attempts = match kept.room(ceiling, now) {
                    None => otp.attempts,
                    Some((0, retry_after)) => return Opened::GuessCeiling { retry_after },
                    Some((room, _)) => room.min(otp.attempts),
                };
                let record = Record::new(otp, attempts, now);
                let verification = record.view(Named::ById(&otp.id), now);
                kept.verifications.push(record);
                *self = kept;
                verification
            }
        };
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

    /// Checks a guess from `scope`. By id: against that verification, with
    /// its own reserved attempts. By phone: against every pending
    /// verification of the scope still in reach by phone, while the
    /// ceiling has room; a wrong code uses one phone attempt of each. A
    /// right code consumes the verification it matches. A guess that is
    /// refused (no room, no attempts) is not compared.
    pub fn check(
        &mut self,
        scope: &Scope,
        named: Named<'_>,
        candidates: &[CodeHash],
        ceiling: &GuessCeiling,
        now: u64,
    ) -> Checked {
        self.sweep(now);
        let only = |outcome| Checked {
            outcome,
            verification: None,
        };
        let reached: Vec<usize> = match named {
            Named::ById(id) => match self.find(scope, id) {
                Some(i) if self.verifications[i].attempts == 0 => {
                    return only(self.locked(&[i], now));
                }
                Some(i) => vec![i],
                None => return only(VerifyOutcome::NotFound),
            },
            Named::ByPhone => {
                let scoped: Vec<usize> = (0..self.verifications.len())
                    .filter(|i| self.verifications[*i].scope == *scope)
                    .collect();
                if scoped.is_empty() {
                    return only(VerifyOutcome::NotFound);
                }
                let reached: Vec<usize> = scoped
                    .iter()
                    .copied()
                    .filter(|i| {
                        let record = &self.verifications[*i];
                        record.phone_attempts > 0 && record.attempts > 0
                    })
                    .collect();
                if reached.is_empty() {
                    return only(self.locked(&scoped, now));
                }
                if let Some((0, retry_after)) = self.room(ceiling, now) {
                    return only(VerifyOutcome::Throttled { retry_after });
                }
                reached
            }
        };
        let matched: Vec<bool> = reached
            .iter()
            .map(|i| self.verifications[*i].matches(candidates, now))
            .collect();
        if let Some(at) = matched.iter().position(|m| *m) {
            let record = self.verifications.remove(reached[at]);
            return Checked {
                outcome: VerifyOutcome::Approved,
                verification: Some(record.view(named, now)),
            };
        }
        for i in &reached {
            let record = &mut self.verifications[*i];
            match named {
                Named::ById(_) => record.attempts -= 1,
                Named::ByPhone => record.phone_attempts -= 1,
            }
        }
        self.count_wrong(ceiling, now);
        let newest = reached.last().map(|i| self.verifications[*i].view(named, now));
        let attempts_remaining = newest.as_ref().map_or(0, |v| v.attempts_remaining);
        let phone_blocked = matches!(self.room(ceiling, now), Some((0, _)));
        Checked {
            outcome: VerifyOutcome::Mismatch {
                attempts_remaining,
                phone_blocked,
            },
            verification: newest,
        }
    }

    /// Locked until the newest of `at` expires.
    fn locked(&self, at: &[usize], now: u64) -> VerifyOutcome {
        let until = at
            .iter()
            .map(|i| self.verifications[*i].expires_at())
            .max()
            .unwrap_or(now);
        VerifyOutcome::Locked {
            expires_in: Duration::from_millis(until.saturating_sub(now)),
        }
    }

    /// Ends the scope's verification `id` if it is pending (attempts left);
    /// returns it as it was.
    pub fn end(&mut self, scope: &Scope, id: &VerificationId, now: u64) -> Option<Verification> {
        self.sweep(now);
        let i = self.find(scope, id)?;
        if self.verifications[i].attempts == 0 {
            return None;
        }
        Some(self.verifications.remove(i).view(Named::ById(id), now))
    }

    /// The scope's verification, pending or locked: by id, or by phone its
    /// newest.
    pub fn status(&mut self, scope: &Scope, named: Named<'_>, now: u64) -> Option<Verification> {
        self.sweep(now);
        let record = match named {
            Named::ById(id) => self.find(scope, id).map(|i| &self.verifications[i]),
            Named::ByPhone => self.verifications.iter().rev().find(|r| r.scope == *scope),
        };
        record.map(|r| r.view(named, now))
    }

    /// Takes the live code hashed as `hash` and its send back; a
    /// verification left without codes is gone.
    pub fn withdraw(&mut self, hash: &CodeHash, now: u64) {
        self.sweep(now);
        let holds = |r: &Record| r.codes.iter().any(|(code, at)| code == hash && *at > now);
        let Some(i) = self.verifications.iter().position(holds) else {
            return;
        };
        let record = &mut self.verifications[i];
        record.codes.retain(|(code, at)| code != hash && *at > now);
        record.sends = record.sends.saturating_sub(1).max(1);
        record.send_times.pop();
        record.channels.pop();
        if record.codes.is_empty() {
            self.verifications.remove(i);
        }
    }

    /// Notes `delivery` for the code hashed as `hash` if it is still its
    /// verification's newest; says whether it was.
    pub fn record_delivery(&mut self, hash: &CodeHash, delivery: Delivery, now: u64) -> bool {
        self.sweep(now);
        let newest = |r: &&mut Record| r.codes.last().is_some_and(|(code, _)| code == hash);
        let Some(record) = self.verifications.iter_mut().find(newest) else {
            return false;
        };
        record.delivery = Some(delivery);
        true
    }

    /// Applies a report to the verification whose newest message it names,
    /// if it moves that message's state forward; answers that verification
    /// when it did.
    pub fn update_delivery(&mut self, report: &DeliveryReport, now: u64) -> Option<Verification> {
        self.sweep(now);
        let names = |d: &Delivery| d.provider == report.provider && d.message_id == report.message_id;
        let record = self
            .verifications
            .iter_mut()
            .find(|r| r.delivery.as_ref().is_some_and(names))?;
        let delivery = record.delivery.as_mut()?;
        if delivery.state.rank() >= report.state.rank() {
            return None;
        }
        delivery.state = report.state;
        delivery.updated_at = report.at;
        if report.error_code.is_some() {
            delivery.error_code.clone_from(&report.error_code);
        }
        let id = record.id.clone();
        Some(record.view(Named::ById(&id), now))
    }

    /// Forgets the wrong codes the ceiling counts (an operator's unlock);
    /// says whether there were any.
    pub fn clear_guesses(&mut self, now: u64) -> bool {
        self.sweep(now);
        self.wrong.take().is_some()
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Code, CodeHasher, HashKey, OtpPolicy, Phone, Quota};

    const TTL: Duration = Duration::from_secs(180);
    const CEILING: GuessCeiling = GuessCeiling {
        limit: 20,
        window: Duration::from_secs(3600),
    };
    const LIMITS: SendLimits = SendLimits {
        resend_after: Duration::ZERO,
        per_phone: Quota {
            limit: 0,
            window: Duration::ZERO,
        },
    };

    struct World {
        hasher: CodeHasher,
        phone: Phone,
        state: PhoneState,
        now: u64,
    }

    impl World {
        fn new() -> Self {
            Self {
                hasher: CodeHasher::new(HashKey::new(*b"rules-test-key-0123456789").unwrap(), vec![]),
                phone: Phone::parse("+14155552671").unwrap(),
                state: PhoneState::default(),
                now: 1_800_000_000_000,
            }
        }

        fn send(&mut self, scope: &Scope, code: &str, mode: SendMode) -> Opened {
            let code = Code::parse(code).unwrap();
            let otp = OtpPolicy::new(TTL, 5).unwrap().pending(
                self.hasher.ids().seal(&self.phone),
                scope.clone(),
                self.hasher.hash(&self.phone, &code),
            );
            self.state.open(&otp, &mode, &LIMITS, &CEILING, self.now)
        }

        fn id(&mut self, scope: &Scope, code: &str) -> VerificationId {
            match self.send(scope, code, SendMode::New) {
                Opened::Stored(v) => v.id,
                other => panic!("not stored: {other:?}"),
            }
        }

        fn guess(&mut self, scope: &Scope, named: Named<'_>, code: &str) -> VerifyOutcome {
            let candidates = self.hasher.candidates(&self.phone, &Code::parse(code).unwrap());
            self.state
                .check(scope, named, &candidates, &CEILING, self.now)
                .outcome
        }
    }

    fn mismatch(outcome: VerifyOutcome) -> bool {
        matches!(outcome, VerifyOutcome::Mismatch { .. })
    }

    #[test]
    fn a_strangers_guesses_never_keep_the_owner_from_its_code_by_id() {
        let mut w = World::new();
        let app = Scope::of("key:the-app");
        let owner = w.id(&app, "111111");
        // The stranger, through the same app: a verification of its own,
        // every guess it can make by phone and by its own id.
        let theirs = w.id(&app, "222222");
        assert_ne!(owner, theirs, "a send never joins another's verification");
        while mismatch(w.guess(&app, Named::ByPhone, "999999")) {}
        while mismatch(w.guess(&app, Named::ById(&theirs), "999999")) {}
        assert!(matches!(
            w.guess(&app, Named::ById(&theirs), "999999"),
            VerifyOutcome::Locked { .. }
        ));
        assert_eq!(
            w.guess(&app, Named::ById(&owner), "111111"),
            VerifyOutcome::Approved
        );
    }

    #[test]
    fn ids_belong_to_their_scope() {
        let mut w = World::new();
        let (a, b) = (Scope::of("key:a"), Scope::of("key:b"));
        let id = w.id(&a, "123456");
        assert_eq!(w.guess(&b, Named::ById(&id), "123456"), VerifyOutcome::NotFound);
        assert_eq!(w.guess(&b, Named::ByPhone, "123456"), VerifyOutcome::NotFound);
        assert_eq!(w.state.status(&b, Named::ById(&id), w.now), None);
        assert_eq!(w.state.status(&b, Named::ByPhone, w.now), None);
        assert_eq!(w.state.end(&b, &id, w.now), None);
        let resend = w.send(&b, "654321", SendMode::Resend(id.clone()));
        assert_eq!(resend, Opened::NotFound);
        assert_eq!(w.guess(&a, Named::ById(&id), "123456"), VerifyOutcome::Approved);
    }

    #[test]
    fn a_resend_by_id_adds_a_code_and_keeps_the_earlier_one() {
        let mut w = World::new();
        let s = Scope::of("key:a");
        let id = w.id(&s, "111111");
        assert!(mismatch(w.guess(&s, Named::ById(&id), "999999")));
        let Opened::Stored(v) = w.send(&s, "222222", SendMode::Resend(id.clone())) else {
            panic!("resend refused");
        };
        assert_eq!((v.id.clone(), v.sends, v.attempts_remaining), (id.clone(), 2, 4));
        assert_eq!(w.guess(&s, Named::ById(&id), "111111"), VerifyOutcome::Approved);
    }

    #[test]
    fn the_ceiling_bounds_wrong_codes_per_window_across_every_path() {
        let mut w = World::new();
        let s = Scope::of("key:a");
        let mut wrong = 0;
        // As many verifications and guesses as the rules let through.
        for _ in 0..50 {
            match w.send(&s, "111111", SendMode::New) {
                Opened::Stored(v) => {
                    while mismatch(w.guess(&s, Named::ById(&v.id), "999999")) {
                        wrong += 1;
                    }
                }
                Opened::GuessCeiling { retry_after } => {
                    assert!(retry_after <= CEILING.window);
                }
                other => panic!("{other:?}"),
            }
            while mismatch(w.guess(&s, Named::ByPhone, "999999")) {
                wrong += 1;
            }
        }
        assert_eq!(wrong, 20);
        // The window over, there is room again.
        w.now += 3_600_000;
        assert!(matches!(w.send(&s, "111111", SendMode::New), Opened::Stored(_)));
    }

    #[test]
    fn a_verification_keeps_the_attempts_it_reserved_whatever_comes_after() {
        let mut w = World::new();
        let s = Scope::of("key:a");
        let owner = w.id(&s, "111111");
        // Guesses by phone use the room left beside the owner's 5.
        let mut by_phone = 0;
        loop {
            match w.guess(&s, Named::ByPhone, "999999") {
                VerifyOutcome::Mismatch { .. } => by_phone += 1,
                // Every phone attempt used up: a new verification, while
                // the ceiling has room for one.
                VerifyOutcome::Locked { .. } => {
                    if !matches!(w.send(&s, "333333", SendMode::New), Opened::Stored(_)) {
                        break;
                    }
                }
                VerifyOutcome::Throttled { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(by_phone <= 15, "{by_phone}");
        assert!(matches!(
            w.send(&s, "444444", SendMode::New),
            Opened::GuessCeiling { .. }
        ));
        for remaining in (1..5).rev() {
            assert_eq!(
                w.guess(&s, Named::ById(&owner), "999999"),
                VerifyOutcome::Mismatch {
                    attempts_remaining: remaining,
                    phone_blocked: true
                }
            );
        }
        assert_eq!(
            w.guess(&s, Named::ById(&owner), "111111"),
            VerifyOutcome::Approved
        );
    }

    #[test]
    fn guesses_by_phone_use_their_own_attempts_then_lock() {
        let mut w = World::new();
        let s = Scope::of("open");
        w.send(&s, "111111", SendMode::Replace);
        for remaining in (0..5).rev() {
            assert!(matches!(
                w.guess(&s, Named::ByPhone, "999999"),
                VerifyOutcome::Mismatch { attempts_remaining, .. } if attempts_remaining == remaining
            ));
        }
        assert!(matches!(
            w.guess(&s, Named::ByPhone, "111111"),
            VerifyOutcome::Locked { .. }
        ));
        // The original routes' send replaces it, attempts and all.
        w.send(&s, "222222", SendMode::Replace);
        assert_eq!(w.state.verifications.len(), 1);
        assert_eq!(w.guess(&s, Named::ByPhone, "222222"), VerifyOutcome::Approved);
    }

    #[test]
    fn a_verification_locked_by_id_is_out_of_reach_by_phone_too() {
        // Its holder gave up on it after the last wrong code; a guess by
        // phone must not approve what the owner's own flow has locked.
        let mut w = World::new();
        let s = Scope::of("key:app");
        let id = w.id(&s, "111111");
        for _ in 0..5 {
            assert!(mismatch(w.guess(&s, Named::ById(&id), "999999")));
        }
        assert!(matches!(
            w.guess(&s, Named::ByPhone, "111111"),
            VerifyOutcome::Locked { .. }
        ));
        // A fresh verification beside it is reached by phone, the locked one
        // still is not.
        w.id(&s, "222222");
        assert!(mismatch(w.guess(&s, Named::ByPhone, "111111")));
        assert_eq!(w.guess(&s, Named::ByPhone, "222222"), VerifyOutcome::Approved);
    }

    #[test]
    fn twilio_keeps_one_pending_verification_per_scope() {
        let mut w = World::new();
        let (one, two) = (Scope::of("twilio:AC:VA1"), Scope::of("twilio:AC:VA2"));
        let Opened::Stored(first) = w.send(&one, "111111", SendMode::KeepPending) else {
            panic!()
        };
        let Opened::Stored(again) = w.send(&one, "222222", SendMode::KeepPending) else {
            panic!()
        };
        let Opened::Stored(other) = w.send(&two, "333333", SendMode::KeepPending) else {
            panic!()
        };
        assert_eq!((first.id.clone(), again.sends), (again.id.clone(), 2));
        assert_ne!(other.id, first.id);
        assert_eq!(
            w.guess(&two, Named::ById(&first.id), "111111"),
            VerifyOutcome::NotFound
        );
    }

    #[test]
    fn everything_ends_with_its_last_code() {
        let mut w = World::new();
        let s = Scope::of("key:a");
        let id = w.id(&s, "111111");
        w.now += 180_000;
        assert_eq!(w.guess(&s, Named::ById(&id), "111111"), VerifyOutcome::NotFound);
        w.state.sweep(w.now);
        assert!(w.state.is_empty());
    }
}
