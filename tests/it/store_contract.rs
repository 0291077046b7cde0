//! The one specification of an `OtpStore`, run against every adapter.

use std::sync::Arc;
use std::time::Duration;

use otpd::adapters::store::{MemoryStore, RedisStore};
use std::net::IpAddr;

use otpd::domain::{
    Admitted, Bucket, Checked, Claim, ClientPrefixes, Code, CodeHash, CodeHasher, DeliveryReport,
    GuessBudget, HashKey, Idempotency, IdempotencyKey, Issued, Opened, OtpPolicy, PendingOtp, Phone, Quota,
    Resend, SendLimits, SmsReceipt, Taken, Verification, VerificationId, VerifyOutcome,
};
use otpd::ports::{OtpStore, StoreError};

use crate::helpers::{redis_url, unique_prefix};

fn phone(n: u32) -> Phone {
    Phone::parse(&format!("+1415555{n:04}")).unwrap()
}

fn hasher() -> CodeHasher {
    CodeHasher::new(HashKey::new(*b"contract-key-0123456789").unwrap(), vec![])
}

fn pending(phone: &Phone, code: &str, ttl: Duration, attempts: u32) -> (PendingOtp, Vec<CodeHash>) {
    let code = Code::parse(code).unwrap();
    let policy = OtpPolicy::new(ttl, attempts).unwrap();
    let h = hasher();
    (
        policy.pending(h.ids().seal(phone), h.hash(phone, &code)),
        h.candidates(phone, &code),
    )
}

fn guess(phone: &Phone, code: &str) -> Vec<CodeHash> {
    hasher().candidates(phone, &Code::parse(code).unwrap())
}

const TTL: Duration = Duration::from_secs(180);

/// Stores a code with no limits in the way.
async fn put(store: &Arc<dyn OtpStore>, phone: &Phone, otp: &PendingOtp) {
    assert_eq!(
        store.issue(phone, otp, &SendLimits::OFF).await.unwrap(),
        Issued::Stored
    );
}

fn is_locked(outcome: VerifyOutcome) -> bool {
    matches!(outcome, VerifyOutcome::Locked { expires_in } if expires_in > Duration::ZERO && expires_in <= TTL)
}

pub async fn right_code_is_approved_exactly_once(store: Arc<dyn OtpStore>) {
    let p = phone(1);
    let (otp, right) = pending(&p, "042917", TTL, 5);
    put(&store, &p, &otp).await;
    assert_eq!(
        store
            .verify_and_consume(&p, &right, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Approved
    );
    assert_eq!(
        store
            .verify_and_consume(&p, &right, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p).await.unwrap(), None);
}

pub async fn unknown_phone_is_not_found(store: Arc<dyn OtpStore>) {
    let p = phone(2);
    assert_eq!(
        store
            .verify_and_consume(&p, &guess(&p, "123456"), &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p).await.unwrap(), None);
}

pub async fn wrong_codes_use_attempts_then_lock(store: Arc<dyn OtpStore>) {
    let p = phone(3);
    let (otp, right) = pending(&p, "111111", TTL, 3);
    put(&store, &p, &otp).await;
    for remaining in [2, 1, 0] {
        assert_eq!(
            store
                .verify_and_consume(&p, &guess(&p, "222222"), &GuessBudget::OFF)
                .await
                .unwrap(),
            VerifyOutcome::Mismatch {
                attempts_remaining: remaining,
                phone_blocked: false
            }
        );
    }
    // Locked: even the right code is refused, and nothing more is counted.
    assert!(is_locked(
        store
            .verify_and_consume(&p, &right, &GuessBudget::OFF)
            .await
            .unwrap()
    ));
    assert!(is_locked(
        store
            .verify_and_consume(&p, &guess(&p, "222222"), &GuessBudget::OFF)
            .await
            .unwrap()
    ));
    assert_eq!(store.status(&p).await.unwrap().unwrap().attempts_remaining, 0);
}

pub async fn a_new_code_replaces_the_pending_one(store: Arc<dyn OtpStore>) {
    let p = phone(4);
    let (old, old_guess) = pending(&p, "333333", TTL, 2);
    put(&store, &p, &old).await;
    store
        .verify_and_consume(&p, &guess(&p, "000000"), &GuessBudget::OFF)
        .await
        .unwrap();
    let (new, new_guess) = pending(&p, "444444", TTL, 2);
    put(&store, &p, &new).await;
    // Attempts start afresh, and the old code is just a wrong code now.
    assert_eq!(store.status(&p).await.unwrap().unwrap().attempts_remaining, 2);
    assert_eq!(
        store
            .verify_and_consume(&p, &old_guess, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Mismatch {
            attempts_remaining: 1,
            phone_blocked: false
        }
    );
    assert_eq!(
        store
            .verify_and_consume(&p, &new_guess, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Approved
    );
}

pub async fn status_reports_life_and_attempts(store: Arc<dyn OtpStore>) {
    let p = phone(5);
    let (otp, _) = pending(&p, "555555", TTL, 5);
    put(&store, &p, &otp).await;
    let status = store.status(&p).await.unwrap().unwrap();
    assert_eq!(status.attempts_remaining, 5);
    assert!(
        status.expires_in <= TTL && status.expires_in > TTL - Duration::from_secs(2),
        "{status:?}"
    );
}

pub async fn codes_expire_by_themselves(store: Arc<dyn OtpStore>) {
    let p = phone(6);
    let (otp, right) = pending(&p, "666666", Duration::from_secs(1), 5);
    put(&store, &p, &otp).await;
    assert!(store.status(&p).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(store.status(&p).await.unwrap(), None);
    assert_eq!(
        store
            .verify_and_consume(&p, &right, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::NotFound
    );
}

pub async fn withdraw_removes_only_that_code(store: Arc<dyn OtpStore>) {
    let p = phone(7);
    let (first, _) = pending(&p, "777777", TTL, 5);
    let (second, second_guess) = pending(&p, "787878", TTL, 5);
    put(&store, &p, &second).await;
    store.withdraw(&p, &first.hash).await.unwrap();
    assert!(store.status(&p).await.unwrap().is_some(), "a newer code survives");
    store.withdraw(&p, &second.hash).await.unwrap();
    assert_eq!(store.status(&p).await.unwrap(), None);
    assert_eq!(
        store
            .verify_and_consume(&p, &second_guess, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::NotFound
    );
}

pub async fn any_candidate_key_verifies(store: Arc<dyn OtpStore>) {
    let p = phone(8);
    let code = Code::parse("888888").unwrap();
    let old = HashKey::new(*b"old-key-0123456789").unwrap();
    let new = HashKey::new(*b"new-key-0123456789").unwrap();
    let before = CodeHasher::new(old.clone(), vec![]);
    let policy = OtpPolicy::new(TTL, 5).unwrap();
    put(
        &store,
        &p,
        &policy.pending(before.ids().seal(&p), before.hash(&p, &code)),
    )
    .await;
    let rotated = CodeHasher::new(new, vec![old]);
    assert_eq!(
        store
            .verify_and_consume(&p, &rotated.candidates(&p, &code), &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Approved
    );
}

pub async fn phones_are_independent(store: Arc<dyn OtpStore>) {
    let (a, b) = (phone(9), phone(10));
    let (otp_a, right_a) = pending(&a, "999999", TTL, 5);
    put(&store, &a, &otp_a).await;
    assert_eq!(
        store
            .verify_and_consume(&b, &guess(&b, "999999"), &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(
        store
            .verify_and_consume(&a, &right_a, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Approved
    );
}

pub async fn of_fifty_concurrent_right_verifies_one_wins(store: Arc<dyn OtpStore>) {
    let p = phone(11);
    let (otp, right) = pending(&p, "123123", TTL, 5);
    put(&store, &p, &otp).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, p, right) = (Arc::clone(&store), p.clone(), right.clone());
            tokio::spawn(async move {
                store
                    .verify_and_consume(&p, &right, &GuessBudget::OFF)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut approved = 0;
    for task in tasks {
        match task.await.unwrap() {
            VerifyOutcome::Approved => approved += 1,
            other => assert_eq!(other, VerifyOutcome::NotFound),
        }
    }
    assert_eq!(approved, 1);
}

pub async fn concurrent_wrong_verifies_never_exceed_the_attempts(store: Arc<dyn OtpStore>) {
    let p = phone(12);
    let (otp, right) = pending(&p, "321321", TTL, 5);
    put(&store, &p, &otp).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (store, p) = (Arc::clone(&store), p.clone());
            tokio::spawn(async move {
                store
                    .verify_and_consume(&p, &guess(&p, "000001"), &GuessBudget::OFF)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut mismatches = 0;
    for task in tasks {
        match task.await.unwrap() {
            VerifyOutcome::Mismatch { .. } => mismatches += 1,
            other => assert!(is_locked(other), "{other:?}"),
        }
    }
    assert_eq!(mismatches, 5);
    assert!(is_locked(
        store
            .verify_and_consume(&p, &right, &GuessBudget::OFF)
            .await
            .unwrap()
    ));
}

pub async fn a_resend_inside_the_cooldown_is_refused_and_changes_nothing(store: Arc<dyn OtpStore>) {
    let p = phone(13);
    let limits = SendLimits {
        resend_after: Duration::from_secs(1),
        per_phone: Quota::OFF,
    };
    let (first, first_guess) = pending(&p, "131313", TTL, 5);
    let (second, _) = pending(&p, "141414", TTL, 5);
    assert_eq!(store.issue(&p, &first, &limits).await.unwrap(), Issued::Stored);
    match store.issue(&p, &second, &limits).await.unwrap() {
        Issued::TooSoon { retry_after } => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(store.issue(&p, &second, &limits).await.unwrap(), Issued::Stored);
    // The refused resend had left the first code alone; the later one replaced it.
    assert_eq!(
        store
            .verify_and_consume(&p, &first_guess, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Mismatch {
            attempts_remaining: 4,
            phone_blocked: false
        }
    );
}

pub async fn the_phone_quota_counts_codes_per_window(store: Arc<dyn OtpStore>) {
    let p = phone(14);
    let limits = SendLimits {
        resend_after: Duration::ZERO,
        per_phone: Quota::new(2, Duration::from_secs(2)),
    };
    let (one, _) = pending(&p, "000001", TTL, 5);
    let (two, two_guess) = pending(&p, "000002", TTL, 5);
    let (three, _) = pending(&p, "000003", TTL, 5);
    assert_eq!(store.issue(&p, &one, &limits).await.unwrap(), Issued::Stored);
    assert_eq!(store.issue(&p, &two, &limits).await.unwrap(), Issued::Stored);
    match store.issue(&p, &three, &limits).await.unwrap() {
        Issued::QuotaExceeded { retry_after } => {
            assert!(retry_after <= Duration::from_secs(2), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .verify_and_consume(&p, &two_guess, &GuessBudget::OFF)
            .await
            .unwrap(),
        VerifyOutcome::Approved
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.issue(&p, &three, &limits).await.unwrap(), Issued::Stored);
}

pub async fn buckets_count_per_window_and_give_back(store: Arc<dyn OtpStore>) {
    let client = |ip: &str| ClientPrefixes::default().client(ip.parse::<IpAddr>().unwrap());
    let (ip, other) = (client("203.0.113.7"), client("2001:db8::7"));
    let quota = Quota::new(3, Duration::from_secs(1));
    for _ in 0..3 {
        assert_eq!(
            store.take(Bucket::SendsFrom(ip), quota).await.unwrap(),
            Taken::Granted
        );
    }
    let Taken::Exhausted { retry_after } = store.take(Bucket::SendsFrom(ip), quota).await.unwrap() else {
        panic!("a fourth was granted");
    };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
    // Other buckets are untouched.
    assert_eq!(
        store.take(Bucket::SendsFrom(other), quota).await.unwrap(),
        Taken::Granted
    );
    assert_eq!(
        store.take(Bucket::VerifiesFrom(ip), quota).await.unwrap(),
        Taken::Granted
    );
    assert_eq!(
        store.take(Bucket::GlobalSends, quota).await.unwrap(),
        Taken::Granted
    );
    store.give_back(Bucket::SendsFrom(ip)).await.unwrap();
    assert_eq!(
        store.take(Bucket::SendsFrom(ip), quota).await.unwrap(),
        Taken::Granted
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store.take(Bucket::SendsFrom(ip), quota).await.unwrap(),
        Taken::Granted
    );
}

pub async fn of_a_hundred_concurrent_sends_one_is_stored(store: Arc<dyn OtpStore>) {
    let p = phone(15);
    let limits = SendLimits {
        resend_after: Duration::from_secs(30),
        per_phone: Quota::new(5, Duration::from_secs(600)),
    };
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, p) = (Arc::clone(&store), p.clone());
            tokio::spawn(async move {
                let (otp, _) = pending(&p, &format!("{i:06}"), TTL, 5);
                store.issue(&p, &otp, &limits).await.unwrap()
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Issued::Stored => stored += 1,
            other => assert!(matches!(other, Issued::TooSoon { .. }), "{other:?}"),
        }
    }
    assert_eq!(stored, 1);
}

fn throttled_for(outcome: VerifyOutcome) -> Duration {
    match outcome {
        VerifyOutcome::Throttled { retry_after } => retry_after,
        other => panic!("expected a throttled guess, got {other:?}"),
    }
}

/// Wrong guesses count across every code the phone gets and on every
/// instance; past the free ones each makes the phone wait longer, even for
/// the right code; an approval clears the count.
pub async fn wrong_guesses_count_across_codes_and_instances(a: Arc<dyn OtpStore>, b: Arc<dyn OtpStore>) {
    let budget = GuessBudget {
        free: 4,
        first_delay: Duration::from_millis(300),
        max_delay: Duration::from_millis(600),
        max_consecutive: 8,
        memory: Duration::from_secs(60),
    };
    let p = phone(40);
    let mut wrong_taken = 0;
    let mut right = Vec::new();
    'codes: for i in 0..30 {
        let (store, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (otp, candidates) = pending(&p, "424242", TTL, 5);
        put(store, &p, &otp).await;
        right = candidates;
        for guesser in [other, store] {
            match guesser
                .verify_and_consume(&p, &guess(&p, "000000"), &budget)
                .await
                .unwrap()
            {
                VerifyOutcome::Mismatch { .. } => wrong_taken += 1,
                VerifyOutcome::Throttled { retry_after } => {
                    assert!(retry_after > Duration::ZERO && retry_after <= budget.first_delay);
                    break 'codes;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(
        wrong_taken, 4,
        "only the free guesses, across codes and instances"
    );
    let refused = b.verify_and_consume(&p, &right, &budget).await.unwrap();
    assert!(
        throttled_for(refused) <= budget.first_delay,
        "the right code waits too"
    );

    tokio::time::sleep(budget.first_delay + Duration::from_millis(50)).await;
    let fifth = a
        .verify_and_consume(&p, &guess(&p, "000000"), &budget)
        .await
        .unwrap();
    assert!(matches!(fifth, VerifyOutcome::Mismatch { .. }), "{fifth:?}");
    let wait = throttled_for(b.verify_and_consume(&p, &right, &budget).await.unwrap());
    assert!(
        wait > budget.first_delay && wait <= budget.max_delay,
        "doubled: {wait:?}"
    );

    tokio::time::sleep(budget.max_delay + Duration::from_millis(50)).await;
    assert_eq!(
        b.verify_and_consume(&p, &right, &budget).await.unwrap(),
        VerifyOutcome::Approved
    );
    let (otp, _) = pending(&p, "424242", TTL, 5);
    put(&a, &p, &otp).await;
    for _ in 0..budget.free {
        let outcome = a
            .verify_and_consume(&p, &guess(&p, "000000"), &budget)
            .await
            .unwrap();
        assert!(
            matches!(outcome, VerifyOutcome::Mismatch { .. }),
            "the approval cleared the count: {outcome:?}"
        );
    }
}

/// After the most wrong guesses in a row, no guess is heard, whatever the
/// code, until the count is cleared.
pub async fn after_the_most_in_a_row_only_clearing_lets_the_phone_guess(store: Arc<dyn OtpStore>) {
    let budget = GuessBudget {
        free: 2,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(50),
        max_consecutive: 4,
        memory: Duration::from_secs(60),
    };
    let p = phone(41);
    let (otp, right) = pending(&p, "135790", TTL, 10);
    put(&store, &p, &otp).await;
    for n in 1..=4 {
        let outcome = store
            .verify_and_consume(&p, &guess(&p, "000000"), &budget)
            .await
            .unwrap();
        let VerifyOutcome::Mismatch { phone_blocked, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(
            phone_blocked,
            n == 4,
            "the 4th wrong guess in a row blocks the phone"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let blocked = throttled_for(store.verify_and_consume(&p, &right, &budget).await.unwrap());
    assert!(
        blocked > Duration::from_secs(50),
        "until the count is forgotten: {blocked:?}"
    );
    let (otp, right) = pending(&p, "246802", TTL, 10);
    put(&store, &p, &otp).await;
    throttled_for(store.verify_and_consume(&p, &right, &budget).await.unwrap());
    assert_eq!(
        store.status(&p).await.unwrap().unwrap().attempts_remaining,
        10,
        "a throttled guess uses no attempt"
    );

    assert!(store.clear_guesses(&p).await.unwrap());
    assert!(!store.clear_guesses(&p).await.unwrap(), "nothing left to clear");
    assert_eq!(
        store.verify_and_consume(&p, &right, &budget).await.unwrap(),
        VerifyOutcome::Approved
    );
}

/// Fifty wrong guesses at once: exactly the free ones are heard.
pub async fn concurrent_wrong_guesses_never_pass_the_budget(store: Arc<dyn OtpStore>) {
    let budget = GuessBudget {
        free: 10,
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(3600),
        max_consecutive: 100,
        memory: Duration::from_secs(60),
    };
    let p = phone(42);
    let (otp, _) = pending(&p, "975311", TTL, 100);
    put(&store, &p, &otp).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, p) = (Arc::clone(&store), p.clone());
            tokio::spawn(async move {
                store
                    .verify_and_consume(&p, &guess(&p, "000000"), &budget)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut heard = 0;
    for task in tasks {
        match task.await.unwrap() {
            VerifyOutcome::Mismatch { .. } => heard += 1,
            other => {
                throttled_for(other);
            }
        }
    }
    assert_eq!(heard, 10);
    assert_eq!(store.status(&p).await.unwrap().unwrap().attempts_remaining, 90);
}

/// Sends a code under `resend`, no limits in the way; the verification it went to.
async fn open(store: &Arc<dyn OtpStore>, phone: &Phone, otp: &PendingOtp, resend: Resend) -> Verification {
    match store.open(phone, otp, &SendLimits::OFF, resend).await.unwrap() {
        Opened::Stored(v) => v,
        other => panic!("not stored: {other:?}"),
    }
}

async fn check(
    store: &Arc<dyn OtpStore>,
    phone: &Phone,
    id: Option<&VerificationId>,
    code: &str,
) -> VerifyOutcome {
    store
        .check(phone, id, &guess(phone, code), &GuessBudget::OFF)
        .await
        .unwrap()
        .outcome
}

pub async fn a_resend_keeps_the_verification_and_every_live_code(store: Arc<dyn OtpStore>) {
    let p = phone(40);
    let (first, _) = pending(&p, "401401", TTL, 5);
    let started = open(&store, &p, &first.clone().sent(1_000), Resend::Keeps).await;
    assert_eq!(
        (&started.id, started.sends, started.attempts_remaining),
        (&first.id, 1, 5)
    );
    assert!(matches!(
        check(&store, &p, None, "000000").await,
        VerifyOutcome::Mismatch {
            attempts_remaining: 4,
            phone_blocked: false
        }
    ));
    let (second, _) = pending(&p, "402402", TTL, 5);
    let kept = open(&store, &p, &second.sent(1_030), Resend::Keeps).await;
    assert_eq!(kept.id, first.id, "the same verification");
    assert_eq!(
        (kept.sends, kept.attempts_remaining),
        (2, 4),
        "a resend restores no guesses"
    );
    assert_eq!(
        (kept.created_at, kept.send_times.clone()),
        (1_000, vec![1_000, 1_030])
    );
    let status = store.status(&p).await.unwrap().unwrap();
    assert_eq!(
        (status.id, status.sends, status.attempts_remaining),
        (first.id.clone(), 2, 4)
    );
    // The first SMS's code still works, and ends the verification.
    let checked = store
        .check(&p, Some(&first.id), &guess(&p, "401401"), &GuessBudget::OFF)
        .await
        .unwrap();
    assert_eq!(checked.outcome, VerifyOutcome::Approved);
    assert_eq!(
        checked.verification.map(|v| (v.id, v.sends)),
        Some((first.id.clone(), 2))
    );
    assert_eq!(check(&store, &p, None, "402402").await, VerifyOutcome::NotFound);
    assert_eq!(store.status(&p).await.unwrap(), None);
}

pub async fn each_code_of_a_verification_expires_on_its_own(store: Arc<dyn OtpStore>) {
    let p = phone(41);
    let (short, _) = pending(&p, "411411", Duration::from_secs(1), 5);
    open(&store, &p, &short, Resend::Keeps).await;
    let (long, _) = pending(&p, "412412", Duration::from_secs(4), 5);
    let kept = open(&store, &p, &long, Resend::Keeps).await;
    assert_eq!(kept.id, short.id);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        check(&store, &p, None, "411411").await,
        VerifyOutcome::Mismatch {
            attempts_remaining: 4,
            phone_blocked: false
        },
        "the first code is past its own life"
    );
    assert_eq!(
        check(&store, &p, Some(&short.id), "412412").await,
        VerifyOutcome::Approved
    );
}

pub async fn a_verification_is_checked_and_ended_only_by_its_own_id(store: Arc<dyn OtpStore>) {
    let p = phone(42);
    let (otp, _) = pending(&p, "421421", TTL, 5);
    open(&store, &p, &otp, Resend::Keeps).await;
    let other = VerificationId::generate();
    assert_eq!(
        check(&store, &p, Some(&other), "421421").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.end(&p, &other).await.unwrap(), None);
    let ended = store.end(&p, &otp.id).await.unwrap().expect("ended");
    assert_eq!((ended.id, ended.attempts_remaining), (otp.id.clone(), 5));
    assert_eq!(store.end(&p, &otp.id).await.unwrap(), None);
    assert_eq!(store.status(&p).await.unwrap(), None);
    assert_eq!(
        check(&store, &p, Some(&otp.id), "421421").await,
        VerifyOutcome::NotFound
    );
}

pub async fn a_locked_or_replaced_verification_is_not_kept(store: Arc<dyn OtpStore>) {
    let p = phone(43);
    let (first, _) = pending(&p, "431431", TTL, 1);
    open(&store, &p, &first, Resend::Keeps).await;
    check(&store, &p, None, "000000").await;
    assert_eq!(
        store.end(&p, &first.id).await.unwrap(),
        None,
        "a locked one can't be ended"
    );
    let (second, _) = pending(&p, "432432", TTL, 5);
    let fresh = open(&store, &p, &second, Resend::Keeps).await;
    assert_eq!(
        (&fresh.id, fresh.attempts_remaining, fresh.sends),
        (&second.id, 5, 1)
    );
    let (third, _) = pending(&p, "433433", TTL, 5);
    let replaced = open(&store, &p, &third, Resend::Replaces).await;
    assert_eq!(replaced.id, third.id);
    assert!(matches!(
        check(&store, &p, None, "432432").await,
        VerifyOutcome::Mismatch { .. }
    ));
}

pub async fn withdrawing_a_resend_keeps_the_earlier_code(store: Arc<dyn OtpStore>) {
    let p = phone(44);
    let (first, _) = pending(&p, "441441", TTL, 5);
    open(&store, &p, &first, Resend::Keeps).await;
    let (second, _) = pending(&p, "442442", TTL, 5);
    open(&store, &p, &second, Resend::Keeps).await;
    store.withdraw(&p, &second.hash).await.unwrap();
    let status = store.status(&p).await.unwrap().unwrap();
    assert_eq!((status.id, status.sends), (first.id.clone(), 1));
    assert!(matches!(
        check(&store, &p, None, "442442").await,
        VerifyOutcome::Mismatch { .. }
    ));
    assert_eq!(check(&store, &p, None, "441441").await, VerifyOutcome::Approved);
}

pub async fn concurrent_resends_keep_one_verification(store: Arc<dyn OtpStore>) {
    let p = phone(45);
    let (first, _) = pending(&p, "451451", TTL, 5);
    open(&store, &p, &first, Resend::Keeps).await;
    let sends = (0..20).map(|i| {
        let store = Arc::clone(&store);
        let p = p.clone();
        tokio::spawn(async move {
            let (otp, _) = pending(&p, &format!("{:06}", 500_000 + i), TTL, 5);
            open(&store, &p, &otp, Resend::Keeps).await.id
        })
    });
    for id in futures_util::future::join_all(sends).await {
        assert_eq!(id.unwrap(), first.id);
    }
    let status = store.status(&p).await.unwrap().unwrap();
    assert_eq!((status.sends, status.send_times.len()), (21, 10));
    // The nine newest codes live; the oldest gave way.
    assert!(matches!(
        check(&store, &p, None, "451451").await,
        VerifyOutcome::Mismatch { .. }
    ));
}

pub async fn an_idempotency_key_is_claimed_once_then_answers(store: Arc<dyn OtpStore>) {
    let key = IdempotencyKey::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let first = Idempotency::new("caller", &key, "send +14155550170");
    let other_body = Idempotency::new("caller", &key, "send +14155550171");
    let hold = Duration::from_secs(60);
    assert_eq!(store.claim(&first, hold).await.unwrap(), Claim::Fresh);
    assert_eq!(store.claim(&first, hold).await.unwrap(), Claim::InFlight);
    assert_eq!(store.claim(&other_body, hold).await.unwrap(), Claim::Reused);
    store.release(&first).await.unwrap();
    assert_eq!(
        store.claim(&first, hold).await.unwrap(),
        Claim::Fresh,
        "a failed send frees it"
    );
    store.settle(&first, "{\"sent\":1}", TTL).await.unwrap();
    assert_eq!(
        store.claim(&first, hold).await.unwrap(),
        Claim::Answered("{\"sent\":1}".into())
    );
    assert_eq!(store.claim(&other_body, hold).await.unwrap(), Claim::Reused);
    let elsewhere = Idempotency::new("another caller", &key, "send +14155550170");
    assert_eq!(store.claim(&elsewhere, hold).await.unwrap(), Claim::Fresh);
}

macro_rules! contract_suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;

            contract_suite!(@tests $make;
                right_code_is_approved_exactly_once,
                unknown_phone_is_not_found,
                wrong_codes_use_attempts_then_lock,
                a_new_code_replaces_the_pending_one,
                status_reports_life_and_attempts,
                codes_expire_by_themselves,
                withdraw_removes_only_that_code,
                any_candidate_key_verifies,
                phones_are_independent,
                of_fifty_concurrent_right_verifies_one_wins,
                concurrent_wrong_verifies_never_exceed_the_attempts,
                a_resend_inside_the_cooldown_is_refused_and_changes_nothing,
                the_phone_quota_counts_codes_per_window,
                buckets_count_per_window_and_give_back,
                of_a_hundred_concurrent_sends_one_is_stored,
                after_the_most_in_a_row_only_clearing_lets_the_phone_guess,
                concurrent_wrong_guesses_never_pass_the_budget,
                a_resend_keeps_the_verification_and_every_live_code,
                each_code_of_a_verification_expires_on_its_own,
                a_verification_is_checked_and_ended_only_by_its_own_id,
                a_locked_or_replaced_verification_is_not_kept,
                withdrawing_a_resend_keeps_the_earlier_code,
                concurrent_resends_keep_one_verification,
                an_idempotency_key_is_claimed_once_then_answers,
            );
        }
    };
    (@tests $make:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                super::$test($make).await;
            }
        )*
    };
}

pub fn memory_store() -> Arc<dyn OtpStore> {
    Arc::new(MemoryStore::new(100_000))
}

pub fn redis_store() -> Arc<dyn OtpStore> {
    redis_store_at(&redis_url(), &unique_prefix())
}

/// A store on `url` under `prefix`: two of them on one prefix are two
/// instances sharing their data.
pub fn redis_store_at(url: &str, prefix: &str) -> Arc<dyn OtpStore> {
    Arc::new(
        RedisStore::new(
            url,
            prefix,
            Duration::from_millis(2000),
            8,
            Arc::new(otpd::adapters::metrics::Metrics::new()),
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_count_across_codes_on_memory() {
    let store = memory_store();
    wrong_guesses_count_across_codes_and_instances(Arc::clone(&store), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_count_across_codes_and_instances_on_redis() {
    let prefix = unique_prefix();
    wrong_guesses_count_across_codes_and_instances(
        redis_store_at(&redis_url(), &prefix),
        redis_store_at(&redis_url(), &prefix),
    )
    .await;
}

contract_suite!(memory, memory_store());
contract_suite!(redis, redis_store());
contract_suite!(memory_tallied, Tallied::wrap(memory_store()));
contract_suite!(redis_tallied, Tallied::wrap(redis_store()));

/// A store whose sends without limits are counted all the same (1,000 per
/// hour, far more than any test sends), so every test above also runs with
/// a phone's tally beside its verification: in Redis that is the same key,
/// which then outlives the codes, and a verification must still end when
/// they do.
struct Tallied(Arc<dyn OtpStore>);

impl Tallied {
    fn wrap(store: Arc<dyn OtpStore>) -> Arc<dyn OtpStore> {
        Arc::new(Self(store))
    }

    fn limits(limits: &SendLimits) -> SendLimits {
        if limits.is_off() {
            SendLimits {
                resend_after: Duration::ZERO,
                per_phone: Quota::new(1000, Duration::from_secs(3600)),
            }
        } else {
            *limits
        }
    }
}

#[async_trait::async_trait]
impl OtpStore for Tallied {
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Opened, StoreError> {
        self.0.open(phone, otp, &Self::limits(limits), resend).await
    }

    async fn admit(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Admitted<Opened>, StoreError> {
        self.0
            .admit(quotas, phone, otp, &Self::limits(limits), resend)
            .await
    }

    async fn end(&self, phone: &Phone, id: &VerificationId) -> Result<Option<Verification>, StoreError> {
        self.0.end(phone, id).await
    }

    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        self.0.take(bucket, quota).await
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        self.0.give_back(bucket).await
    }

    async fn check(
        &self,
        phone: &Phone,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<Checked, StoreError> {
        self.0.check(phone, id, candidates, budget).await
    }

    async fn guess(
        &self,
        quota: (Bucket, Quota),
        phone: &Phone,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<Admitted<Checked>, StoreError> {
        self.0.guess(quota, phone, id, candidates, budget).await
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        self.0.clear_guesses(phone).await
    }

    async fn status(&self, phone: &Phone) -> Result<Option<Verification>, StoreError> {
        self.0.status(phone).await
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.0.withdraw(phone, hash).await
    }

    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
        at: u64,
        link_ttl: Duration,
    ) -> Result<(), StoreError> {
        self.0.record_delivery(phone, hash, receipt, at, link_ttl).await
    }

    async fn update_delivery(&self, report: &DeliveryReport) -> Result<Option<Phone>, StoreError> {
        self.0.update_delivery(report).await
    }

    async fn claim(&self, idempotency: &Idempotency, hold: Duration) -> Result<Claim, StoreError> {
        self.0.claim(idempotency, hold).await
    }

    async fn settle(
        &self,
        idempotency: &Idempotency,
        answer: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        self.0.settle(idempotency, answer, window).await
    }

    async fn release(&self, idempotency: &Idempotency) -> Result<(), StoreError> {
        self.0.release(idempotency).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

/// A full memory store still counts every wrong guess (the guess state
/// lives in the phone's own entry), and a guess whose client can't be
/// counted is refused before it is compared, whatever the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_never_makes_a_guess_free() {
    let store: Arc<dyn OtpStore> = Arc::new(MemoryStore::new(2));
    let budget = GuessBudget {
        free: 10,
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(3600),
        max_consecutive: 100,
        memory: Duration::from_secs(86_400),
    };
    let quota = Quota::new(1000, Duration::from_secs(60));
    let client =
        |n: u8| Bucket::VerifiesFrom(ClientPrefixes::default().client(IpAddr::from([203, 0, 113, n])));
    let p = phone(60);
    let (otp, right) = pending(&p, "135790", TTL, 3);
    put(&store, &p, &otp).await;
    // The other phone takes the last room; the clients' counters fill theirs.
    put(&store, &phone(61), &pending(&phone(61), "000000", TTL, 3).0).await;
    for n in 1..=2 {
        store.take(client(n), quota).await.unwrap();
    }
    for remaining in [2, 1, 0] {
        let guessed = store
            .guess((client(1), quota), &p, None, &guess(&p, "999999"), &budget)
            .await
            .unwrap();
        let Admitted::Done(Checked { outcome, .. }) = guessed else {
            panic!("refused: {guessed:?}");
        };
        assert_eq!(
            outcome,
            VerifyOutcome::Mismatch {
                attempts_remaining: remaining,
                phone_blocked: false
            }
        );
    }
    assert!(is_locked(
        store.verify_and_consume(&p, &right, &budget).await.unwrap()
    ));
    // A third client has no room to be counted: refused unheard, right or wrong.
    let (otp, right) = pending(&phone(61), "246802", TTL, 3);
    put(&store, &phone(61), &otp).await;
    for candidates in [right.clone(), guess(&phone(61), "111111")] {
        let refused = store
            .guess((client(3), quota), &phone(61), None, &candidates, &budget)
            .await;
        assert!(matches!(refused, Err(StoreError::Full(2))), "{refused:?}");
    }
    assert_eq!(
        store
            .status(&phone(61))
            .await
            .unwrap()
            .unwrap()
            .attempts_remaining,
        3
    );
    let approved = store
        .guess((client(1), quota), &phone(61), None, &right, &budget)
        .await;
    assert!(matches!(
        approved,
        Ok(Admitted::Done(Checked {
            outcome: VerifyOutcome::Approved,
            ..
        }))
    ));
}
