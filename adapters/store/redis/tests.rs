//! The Redis store against the memory store, which is the domain's rules
//! under a lock: the same calls on both must answer the same (waits within
//! a few ms, the two clocks being read apart). After each call the phone's
//! key must read back as a whole `PhoneState` (`record::state`) that lives
//! exactly until its `expires_at`. Runs only with `OTPD_TEST_REDIS_URL`
//! set; its keys carry a prefix of their own, deleted at the end (and all
//! expire within a minute if a test fails first). On a cluster
//! (`redis+cluster://`) the keys are left to expire and not read back.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{record, RedisStore};
use crate::adapters::metrics::Metrics;
use crate::adapters::store::MemoryStore;
use crate::domain::{
    Admitted, Bucket, Channel, Checked, ClientNet, ClientPrefixes, CodeHash, DeliveryReport, DeliveryState,
    GuessBudget, GuessCeiling, Named, Opened, PendingOtp, Phone, PhoneState, Quota, Record, Scope,
    SendLimits, SendMode, SmsReceipt, Taken, Verification, VerificationId, VerifyOutcome, MAX_VERIFICATIONS,
};
use crate::ports::{
    admit_in_steps, guess_in_steps, Counters, Deliveries, Guess, Guesser, OtpStore, SendRules, Verifications,
};

/// Answers equal but for waits, which may differ by what passes between
/// the two calls.
trait Near {
    fn near(&self, other: &Self) -> bool;
}

impl Near for Duration {
    fn near(&self, other: &Self) -> bool {
        self.abs_diff(*other) <= Duration::from_millis(50)
    }
}

impl<T: Near> Near for Option<T> {
    fn near(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.near(b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Near for Verification {
    fn near(&self, other: &Self) -> bool {
        self.expires_in.near(&other.expires_in)
            && Self {
                expires_in: Duration::ZERO,
                ..self.clone()
            } == Self {
                expires_in: Duration::ZERO,
                ..other.clone()
            }
    }
}

impl Near for (Phone, Verification) {
    fn near(&self, other: &Self) -> bool {
        self.0 == other.0 && self.1.near(&other.1)
    }
}

impl Near for Opened {
    fn near(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Stored(a), Self::Stored(b)) => a.near(b),
            (Self::TooSoon { retry_after: a }, Self::TooSoon { retry_after: b })
            | (Self::QuotaExceeded { retry_after: a }, Self::QuotaExceeded { retry_after: b })
            | (Self::GuessCeiling { retry_after: a }, Self::GuessCeiling { retry_after: b }) => a.near(b),
            (a, b) => a == b,
        }
    }
}

impl Near for Checked {
    fn near(&self, other: &Self) -> bool {
        let outcome = match (self.outcome, other.outcome) {
            (VerifyOutcome::Locked { expires_in: a }, VerifyOutcome::Locked { expires_in: b })
            | (VerifyOutcome::Throttled { retry_after: a }, VerifyOutcome::Throttled { retry_after: b }) => {
                a.near(&b)
            }
            (a, b) => a == b,
        };
        outcome && self.verification.near(&other.verification)
    }
}

impl Near for Taken {
    fn near(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exhausted { retry_after: a }, Self::Exhausted { retry_after: b }) => a.near(b),
            (a, b) => a == b,
        }
    }
}

impl<T: Near> Near for Admitted<T> {
    fn near(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Done(a), Self::Done(b)) => a.near(b),
            (
                Self::Refused {
                    refused: a,
                    retry_after: wa,
                },
                Self::Refused {
                    refused: b,
                    retry_after: wb,
                },
            ) => a == b && wa.near(wb),
            _ => false,
        }
    }
}

macro_rules! near_by_eq {
    ($($t:ty),*) => {$(
        impl Near for $t {
            fn near(&self, other: &Self) -> bool {
                self == other
            }
        }
    )*};
}
near_by_eq!((), bool, Phone);

/// Unix ms read on two clocks a few ms apart.
fn near_ms(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= 50
}

impl Near for PhoneState {
    fn near(&self, other: &Self) -> bool {
        let tally = match (&self.tally, &other.tally) {
            (Some(a), Some(b)) => {
                a.sends == b.sends
                    && near_ms(a.last_ms, b.last_ms)
                    && near_ms(a.window_end_ms, b.window_end_ms)
                    && near_ms(a.until_ms, b.until_ms)
            }
            (a, b) => a.is_none() && b.is_none(),
        };
        let wrong = match (&self.wrong, &other.wrong) {
            (Some(a), Some(b)) => a.count == b.count && near_ms(a.window_end_ms, b.window_end_ms),
            (a, b) => a.is_none() && b.is_none(),
        };
        let record = |a: &Record, b: &Record| {
            a.codes.len() == b.codes.len()
                && a.codes
                    .iter()
                    .zip(&b.codes)
                    .all(|((ha, ea), (hb, eb))| ha == hb && near_ms(*ea, *eb))
                && Record {
                    codes: Vec::new(),
                    ..a.clone()
                } == Record {
                    codes: Vec::new(),
                    ..b.clone()
                }
        };
        tally
            && wrong
            && self.verifications.len() == other.verifications.len()
            && self
                .verifications
                .iter()
                .zip(&other.verifications)
                .all(|(a, b)| record(a, b))
    }
}

/// Runs `$call` with `$s` as the memory store, then as the Redis store; the
/// answers must be near each other, and the phone's key must hold to the
/// layout. Gives the Redis store's answer.
macro_rules! same {
    ($pair:expr, $phone:expr, |$s:ident| $call:expr) => {{
        let memory = {
            let $s = &$pair.memory;
            $call.await.expect("the memory store answers")
        };
        let redis = {
            let $s = &$pair.redis;
            $call.await.expect("the Redis store answers")
        };
        assert!(
            memory.near(&redis),
            "{}\n memory: {memory:?}\n redis:  {redis:?}",
            stringify!($call)
        );
        $pair.layout_holds($phone).await;
        redis
    }};
}

struct Pair {
    redis: RedisStore,
    memory: MemoryStore,
    /// A plain connection to delete the keys at the end; none on a cluster,
    /// where they are left to expire.
    raw: Option<redis::aio::MultiplexedConnection>,
    prefix: String,
}

impl Pair {
    /// Both stores on `OTPD_TEST_REDIS_URL`, or `None` (the test passes
    /// untried) without it.
    async fn new() -> Option<Self> {
        let Ok(url) = std::env::var("OTPD_TEST_REDIS_URL") else {
            eprintln!("OTPD_TEST_REDIS_URL is not set: the Redis store goes untested");
            return None;
        };
        Some(Self::on(&url).await)
    }

    /// Both stores, the Redis one on `url` under a prefix of its own.
    async fn on(url: &str) -> Self {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("otpd-test-{}-{nanos}-{run}:", std::process::id());
        let metrics = Arc::new(Metrics::new());
        let redis = RedisStore::new(url, &prefix, Duration::from_secs(2), 4, metrics).unwrap();
        let raw = if url.contains("+cluster://") {
            None
        } else {
            let client = redis::Client::open(url).unwrap();
            Some(client.get_multiplexed_async_connection().await.unwrap())
        };
        Self {
            redis,
            memory: MemoryStore::new(10_000),
            raw,
            prefix,
        }
    }

    /// The phone's key reads as a whole non-empty state that expires when
    /// its last part does, and holds what the memory store holds for the
    /// phone (each swept to now, since a read leaves ended parts in place
    /// on Redis and not in memory).
    async fn layout_holds(&self, phone: &Phone) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let (packed, at) = self.redis.held(phone).await;
        let on_redis = packed.map(|packed| {
            let state = record::state(&packed).expect("the key holds a PhoneState");
            assert!(!state.is_empty(), "an empty state is no key");
            assert_eq!(u64::try_from(at).ok(), Some(state.expires_at()), "{state:?}");
            state
        });
        let swept = |state: Option<PhoneState>| {
            state
                .map(|mut state| {
                    state.sweep(now);
                    state
                })
                .filter(|state| !state.is_empty())
        };
        let (memory, redis) = (swept(self.memory.held(phone)), swept(on_redis));
        assert!(
            memory.near(&redis),
            "the phone's state\n memory: {memory:?}\n redis:  {redis:?}"
        );
    }

    async fn clean_up(self) {
        let Some(mut raw) = self.raw else { return };
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut raw)
                .await
                .unwrap();
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut raw)
                    .await
                    .unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

fn phone(n: u32) -> Phone {
    Phone::parse(&format!("+14155552{n:03}")).unwrap()
}

/// A hash of raw bytes that are no UTF-8, different for each `n`.
fn hash(n: u8) -> CodeHash {
    let mut bytes = [0u8; 64];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = 0x80 | (i as u8).wrapping_mul(37) ^ n;
    }
    CodeHash::from_bytes(bytes)
}

/// A code's send; its id is made of the code, so each call makes the same
/// one for both stores.
fn otp(scope: &Scope, code: u8, attempts: u32) -> PendingOtp {
    PendingOtp {
        id: VerificationId::from_bytes([code; 16]),
        scope: scope.clone(),
        hash: hash(code),
        ttl: Duration::from_secs(60),
        attempts,
        sent_at: 1_700_000_000 + u64::from(code),
        // Every channel, so resends and withdrawals keep mixed ones in step,
        // and workflows of none to two channels after it.
        // (one in four says none: where the verification goes next).
        channel: (code % 4 != 3).then(|| Channel::ALL[usize::from(code) % Channel::ALL.len()]),
        next: (1..=usize::from(code / 3) % 3)
            .map(|i| Channel::ALL[(usize::from(code) + i) % Channel::ALL.len()])
            .collect(),
        delivery: None,
    }
}

fn by_id<'a>(scope: &'a Scope, id: &'a VerificationId, candidates: &'a [CodeHash]) -> Guess<'a> {
    Guess {
        scope,
        named: Named::ById(id),
        candidates,
        ceiling: GuessCeiling::OFF,
    }
}

fn by_phone<'a>(scope: &'a Scope, candidates: &'a [CodeHash], ceiling: GuessCeiling) -> Guess<'a> {
    Guess {
        scope,
        named: Named::ByPhone,
        candidates,
        ceiling,
    }
}

fn client(ip: &str) -> ClientNet {
    ClientPrefixes::default().client(ip.parse().unwrap())
}

const OFF: SendRules = SendRules {
    limits: SendLimits::OFF,
    ceiling: GuessCeiling::OFF,
};

#[tokio::test]
async fn sends_by_each_mode_checks_ends_and_withdrawals_match_the_memory_store() {
    let Some(p) = Pair::new().await else { return };
    let (a, b) = (Scope::of("a"), Scope::of("b"));
    let ph = phone(101);
    let (o1, o2, o3, o4) = (otp(&a, 1, 5), otp(&a, 2, 5), otp(&b, 3, 5), otp(&b, 4, 5));
    same!(p, &ph, |s| s.open(&ph, &o1, &SendMode::New, &OFF));
    same!(p, &ph, |s| s.open(&ph, &o2, &SendMode::New, &OFF));
    same!(p, &ph, |s| s.open(&ph, &o3, &SendMode::KeepPending, &OFF));
    let kept = same!(p, &ph, |s| s.open(&ph, &o4, &SendMode::KeepPending, &OFF));
    assert!(matches!(&kept, Opened::Stored(v) if v.id == o3.id && v.sends == 2));
    let o5 = otp(&a, 5, 5);
    same!(p, &ph, |s| s.open(
        &ph,
        &o5,
        &SendMode::Resend(o1.id.clone()),
        &OFF
    ));
    let o6 = otp(&b, 6, 5);
    let other = same!(p, &ph, |s| s.open(
        &ph,
        &o6,
        &SendMode::Resend(o1.id.clone()),
        &OFF
    ));
    assert_eq!(other, Opened::NotFound, "another scope's verification");

    same!(p, &ph, |s| s.status(&ph, &a, Named::ByPhone));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ById(&o1.id)));
    same!(p, &ph, |s| s.status(&ph, &b, Named::ById(&o1.id)));

    let wrong = [hash(2)];
    same!(p, &ph, |s| s.check(&ph, &by_id(&a, &o1.id, &wrong)));
    let right = [hash(99), hash(5)];
    let approved = same!(p, &ph, |s| s.check(&ph, &by_id(&a, &o1.id, &right)));
    assert_eq!(approved.outcome, VerifyOutcome::Approved);
    same!(p, &ph, |s| s
        .check(&ph, &by_phone(&a, &[hash(98)], GuessCeiling::OFF)));
    let older = [hash(97), hash(3)];
    same!(p, &ph, |s| s.check(&ph, &by_phone(&b, &older, GuessCeiling::OFF)));
    same!(p, &ph, |s| s.status(&ph, &b, Named::ByPhone));

    let o7 = otp(&a, 7, 5);
    same!(p, &ph, |s| s.open(&ph, &o7, &SendMode::Replace, &OFF));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ById(&o2.id)));
    same!(p, &ph, |s| s.end(&ph, &a, &o7.id));
    same!(p, &ph, |s| s.end(&ph, &a, &o7.id));

    let (o8, o9) = (otp(&a, 8, 5), otp(&a, 9, 5));
    same!(p, &ph, |s| s.open(&ph, &o8, &SendMode::New, &OFF));
    same!(p, &ph, |s| s.open(
        &ph,
        &o9,
        &SendMode::Resend(o8.id.clone()),
        &OFF
    ));
    same!(p, &ph, |s| s.withdraw(&ph, &hash(9)));
    let back = same!(p, &ph, |s| s.status(&ph, &a, Named::ById(&o8.id)));
    assert_eq!(back.map(|v| (v.sends, v.send_times.len())), Some((1, 1)));
    same!(p, &ph, |s| s.withdraw(&ph, &hash(8)));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ById(&o8.id)));
    p.clean_up().await;
}

#[tokio::test]
async fn limits_the_ceilings_reservations_and_locks_match_the_memory_store() {
    let Some(p) = Pair::new().await else { return };
    let a = Scope::of("a");
    let minute = Duration::from_secs(60);

    // The phone's quota and cooldown.
    let ph = phone(201);
    let quota = SendRules {
        limits: SendLimits {
            resend_after: Duration::ZERO,
            per_phone: Quota::new(2, minute),
        },
        ceiling: GuessCeiling::OFF,
    };
    for code in 1..=3 {
        same!(p, &ph, |s| s.open(&ph, &otp(&a, code, 5), &SendMode::New, &quota));
    }
    let ph = phone(202);
    let cooldown = SendRules {
        limits: SendLimits {
            resend_after: minute,
            per_phone: Quota::OFF,
        },
        ceiling: GuessCeiling::OFF,
    };
    same!(p, &ph, |s| s.open(&ph, &otp(&a, 1, 5), &SendMode::New, &cooldown));
    let soon = same!(p, &ph, |s| s.open(&ph, &otp(&a, 2, 5), &SendMode::New, &cooldown));
    assert!(matches!(soon, Opened::TooSoon { .. }));

    // At most MAX_VERIFICATIONS at once.
    let ph = phone(203);
    for code in 0..=u8::try_from(MAX_VERIFICATIONS).unwrap() {
        same!(p, &ph, |s| s.open(&ph, &otp(&a, code, 5), &SendMode::New, &OFF));
    }

    // The ceiling: each verification reserves its attempts from it.
    let ph = phone(204);
    let ceiling = GuessCeiling {
        limit: 12,
        window: minute,
    };
    let rules = SendRules {
        limits: SendLimits::OFF,
        ceiling,
    };
    let (o1, o2, o3) = (otp(&a, 1, 5), otp(&a, 2, 5), otp(&a, 3, 5));
    same!(p, &ph, |s| s.open(&ph, &o1, &SendMode::New, &rules));
    same!(p, &ph, |s| s.open(&ph, &o2, &SendMode::New, &rules));
    let third = same!(p, &ph, |s| s.open(&ph, &o3, &SendMode::New, &rules));
    assert!(matches!(&third, Opened::Stored(v) if v.attempts_remaining == 2));
    let refused = same!(p, &ph, |s| s.open(&ph, &otp(&a, 4, 5), &SendMode::New, &rules));
    assert!(matches!(refused, Opened::GuessCeiling { .. }));
    let no_room = same!(p, &ph, |s| s.check(&ph, &by_phone(&a, &[hash(90)], ceiling)));
    assert!(matches!(no_room.outcome, VerifyOutcome::Throttled { .. }));
    let wrong = [hash(91)];
    let guess = Guess {
        ceiling,
        ..by_id(&a, &o3.id, &wrong)
    };
    let first = same!(p, &ph, |s| s.check(&ph, &guess));
    assert_eq!(
        first.outcome,
        VerifyOutcome::Mismatch {
            attempts_remaining: 1,
            phone_blocked: true
        }
    );
    same!(p, &ph, |s| s.check(&ph, &guess));
    let locked = same!(p, &ph, |s| s.check(&ph, &guess));
    assert!(matches!(locked.outcome, VerifyOutcome::Locked { .. }));
    same!(p, &ph, |s| s.end(&ph, &a, &o3.id));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ById(&o3.id)));
    assert!(same!(p, &ph, |s| s.clear_guesses(&ph)));
    assert!(!same!(p, &ph, |s| s.clear_guesses(&ph)));
    same!(p, &ph, |s| s.end(&ph, &a, &o1.id));
    // Room again: by phone, a wrong code uses a phone attempt of each.
    same!(p, &ph, |s| s.check(&ph, &by_phone(&a, &[hash(92)], ceiling)));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ByPhone));

    // Locked by phone: no phone attempts left in any.
    let ph = phone(205);
    same!(p, &ph, |s| s.open(&ph, &otp(&a, 1, 2), &SendMode::New, &OFF));
    for _ in 0..3 {
        same!(p, &ph, |s| s
            .check(&ph, &by_phone(&a, &[hash(93)], GuessCeiling::OFF)));
    }
    p.clean_up().await;
}

#[tokio::test]
async fn admissions_and_guessers_match_the_memory_store_in_one_script_and_in_steps() {
    let Some(p) = Pair::new().await else { return };
    let a = Scope::of("a");
    let minute = Duration::from_secs(60);
    let rules = SendRules {
        limits: SendLimits {
            resend_after: minute,
            per_phone: Quota::OFF,
        },
        ceiling: GuessCeiling {
            limit: 20,
            window: minute,
        },
    };
    let waits = GuessBudget {
        free: 1,
        first_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(10),
        max_consecutive: 3,
        memory: minute,
    };
    for (round, ip) in ["203.0.113.7", "2001:db8::1"].into_iter().enumerate() {
        let in_steps = round == 1;
        let net = client(ip);
        let quotas = [
            (Bucket::SendsFrom(net), Quota::new(2, minute)),
            (Bucket::GlobalSends, Quota::new(100, minute)),
        ];
        let base = 300 + 10 * u32::try_from(round).unwrap();
        let (p1, p2, p3) = (phone(base), phone(base + 1), phone(base + 2));
        let o1 = otp(&a, 1, 5);
        macro_rules! admit {
            ($ph:expr, $otp:expr) => {
                same!(p, $ph, |s| async {
                    if in_steps {
                        admit_in_steps(s, &quotas, $ph, $otp, &SendMode::New, &rules).await
                    } else {
                        s.admit(&quotas, $ph, $otp, &SendMode::New, &rules).await
                    }
                })
            };
        }
        admit!(&p1, &o1);
        let soon = admit!(&p1, &otp(&a, 2, 5));
        assert!(
            matches!(soon, Admitted::Done(Opened::TooSoon { .. })),
            "gives the quotas back"
        );
        admit!(&p2, &otp(&a, 3, 5));
        let refused = admit!(&p3, &otp(&a, 4, 5));
        assert!(matches!(refused, Admitted::Refused { refused: 0, .. }));

        let guesser = Guesser {
            client: net,
            quota: Quota::new(5, minute),
            waits,
        };
        macro_rules! guess {
            ($guess:expr) => {
                same!(p, &p1, |s| async {
                    if in_steps {
                        guess_in_steps(s, &guesser, &p1, $guess).await
                    } else {
                        s.guess(&guesser, &p1, $guess).await
                    }
                })
            };
        }
        let ceiling = rules.ceiling;
        let wrong = [hash(80)];
        guess!(&by_phone(&a, &wrong, ceiling));
        let waiting = guess!(&by_phone(&a, &wrong, ceiling));
        assert!(matches!(
            waiting,
            Admitted::Done(Checked {
                outcome: VerifyOutcome::Throttled { .. },
                ..
            })
        ));
        same!(p, &p1, |s| s.client_wait(net, &waits));
        guess!(&by_id(&a, &o1.id, &wrong));
        guess!(&by_id(&a, &o1.id, &[hash(1)]));
        guess!(&by_id(&a, &o1.id, &[hash(1)]));
        let over = guess!(&by_id(&a, &o1.id, &[hash(1)]));
        assert!(matches!(over, Admitted::Refused { refused: 0, .. }));
        // The client's waits, counted and cleared.
        same!(p, &p1, |s| s.note_guess(net, false, &waits));
        same!(p, &p1, |s| s.client_wait(net, &waits));
        same!(p, &p1, |s| s.note_guess(net, false, &waits));
        let blocked = same!(p, &p1, |s| s.client_wait(net, &waits));
        assert!(
            blocked.is_some_and(|w| w > Duration::from_secs(50)),
            "blocked until forgotten"
        );
        same!(p, &p1, |s| s.note_guess(net, true, &waits));
        same!(p, &p1, |s| s.client_wait(net, &waits));
        same!(p, &p1, |s| s
            .take(Bucket::LookupsFrom(net), Quota::new(1, minute)));
        same!(p, &p1, |s| s
            .take(Bucket::LookupsFrom(net), Quota::new(1, minute)));
    }
    p.clean_up().await;
}

#[tokio::test]
async fn deliveries_and_expiry_match_the_memory_store() {
    let Some(p) = Pair::new().await else { return };
    let a = Scope::of("a");
    let ph = phone(401);
    let ahead = SmsReceipt {
        provider: "console".into(),
        message_id: "m-1".into(),
        tracked: false,
    };
    let o1 = otp(&a, 1, 5).with_receipt(&ahead, 1_700_000_001);
    same!(p, &ph, |s| s.open(&ph, &o1, &SendMode::New, &OFF));
    let receipt = SmsReceipt {
        provider: "twilio".into(),
        message_id: format!("SM{}", p.prefix),
        tracked: true,
    };
    let link = Duration::from_secs(60);
    same!(p, &ph, |s| s.record_delivery(
        &ph,
        &hash(1),
        &receipt,
        1_700_000_002,
        link
    ));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ByPhone));
    let report = |state, error_code: Option<&str>| DeliveryReport {
        provider: receipt.provider.clone(),
        message_id: receipt.message_id.clone(),
        state,
        error_code: error_code.map(str::to_owned),
        at: 1_700_000_003,
    };
    let sent = report(DeliveryState::Sent, None);
    let updated = same!(p, &ph, |s| s.update_delivery(&sent));
    assert_eq!(updated.map(|(phone, _)| phone), Some(ph.clone()));
    assert_eq!(same!(p, &ph, |s| s.update_delivery(&sent)), None, "no step back");
    let failed = report(DeliveryState::Undelivered, Some("30003"));
    same!(p, &ph, |s| s.update_delivery(&failed));
    let read = same!(p, &ph, |s| s.status(&ph, &a, Named::ById(&o1.id)));
    let delivery = read.and_then(|v| v.delivery).unwrap();
    assert_eq!(
        (delivery.state, delivery.error_code.as_deref()),
        (DeliveryState::Undelivered, Some("30003"))
    );
    // A newer code: a receipt for the older one changes nothing.
    same!(p, &ph, |s| s.open(
        &ph,
        &otp(&a, 2, 5),
        &SendMode::Resend(o1.id.clone()),
        &OFF
    ));
    same!(p, &ph, |s| s.record_delivery(
        &ph,
        &hash(1),
        &ahead,
        1_700_000_004,
        link
    ));
    same!(p, &ph, |s| s.status(&ph, &a, Named::ByPhone));

    // Codes expire, the tally outlives them, and then the key goes.
    let ph = phone(402);
    let cooldown = SendRules {
        limits: SendLimits {
            resend_after: Duration::from_millis(900),
            per_phone: Quota::OFF,
        },
        ceiling: GuessCeiling::OFF,
    };
    let short = PendingOtp {
        ttl: Duration::from_millis(300),
        ..otp(&a, 3, 5)
    };
    same!(p, &ph, |s| s.open(&ph, &short, &SendMode::New, &cooldown));
    tokio::time::sleep(Duration::from_millis(450)).await;
    same!(p, &ph, |s| s.status(&ph, &a, Named::ByPhone));
    same!(p, &ph, |s| s
        .check(&ph, &by_phone(&a, &[hash(3)], GuessCeiling::OFF)));
    same!(p, &ph, |s| s.open(&ph, &otp(&a, 4, 5), &SendMode::New, &cooldown));
    tokio::time::sleep(Duration::from_millis(600)).await;
    if let Some(mut raw) = p.raw.clone() {
        let key = p.redis.key(&ph);
        let exists: i64 = redis::cmd("EXISTS").arg(key).query_async(&mut raw).await.unwrap();
        assert_eq!(exists, 0, "the key ends with its state's last part");
    }
    p.clean_up().await;
}

/// The prelude's constants are the domain's.
#[test]
fn the_scripts_limits_are_the_domains() {
    use crate::domain::{MAX_LIVE_CODES, MAX_SEND_TIMES};
    let prelude = include_str!("scripts/record.lua");
    let line = format!(
        "local MAX_LIVE_CODES, MAX_VERIFICATIONS, MAX_SEND_TIMES = {MAX_LIVE_CODES}, {MAX_VERIFICATIONS}, {MAX_SEND_TIMES}"
    );
    assert!(prelude.contains(&line), "record.lua should say: {line}");
}

/// A reply without a name, or with one this side doesn't know, is an error
/// that says so, never a panic or a guess.
#[test]
fn unreadable_replies_are_errors() {
    use crate::ports::StoreError;
    use redis::Value;
    let message = |e: StoreError| match e {
        StoreError::Unavailable(cause) => cause.to_string(),
        other => panic!("{other:?}"),
    };
    let nameless = super::split_reply("open", &[Value::Int(0)]).unwrap_err();
    assert_eq!(
        message(nameless),
        "Redis returned a reply to open.lua without a name otpd can't read"
    );
    let reply = [Value::BulkString(b"stored_twice".to_vec())];
    let (name, rest) = super::split_reply("open", &reply).unwrap();
    assert_eq!((name, rest.len()), ("stored_twice", 0));
    assert_eq!(
        message(super::unknown("open", name)),
        "Redis returned a reply to open.lua (\"stored_twice\") otpd can't read"
    );
    assert!(super::wait(&Value::BulkString(b"12".to_vec())).is_err());
    assert_eq!(super::wait(&Value::Int(-5)).unwrap(), Duration::ZERO);
}

mod differential;
