//! The one specification of an `OtpStore`, run against every adapter.

use std::sync::Arc;
use std::time::Duration;

use otpd::adapters::store::{MemoryStore, RedisStore};
use std::net::IpAddr;

use otpd::domain::{
    Bucket, Code, CodeHash, CodeHasher, HashKey, Issued, OtpPolicy, PendingOtp, Phone, Quota, SendLimits,
    Taken, VerifyOutcome,
};
use otpd::ports::OtpStore;

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
    (policy.pending(h.hash(phone, &code)), h.candidates(phone, &code))
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
        store.verify_and_consume(&p, &right).await.unwrap(),
        VerifyOutcome::Approved
    );
    assert_eq!(
        store.verify_and_consume(&p, &right).await.unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p).await.unwrap(), None);
}

pub async fn unknown_phone_is_not_found(store: Arc<dyn OtpStore>) {
    let p = phone(2);
    assert_eq!(
        store.verify_and_consume(&p, &guess(&p, "123456")).await.unwrap(),
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
            store.verify_and_consume(&p, &guess(&p, "222222")).await.unwrap(),
            VerifyOutcome::Mismatch {
                attempts_remaining: remaining
            }
        );
    }
    // Locked: even the right code is refused, and nothing more is counted.
    assert!(is_locked(store.verify_and_consume(&p, &right).await.unwrap()));
    assert!(is_locked(
        store.verify_and_consume(&p, &guess(&p, "222222")).await.unwrap()
    ));
    assert_eq!(store.status(&p).await.unwrap().unwrap().attempts_remaining, 0);
}

pub async fn a_new_code_replaces_the_pending_one(store: Arc<dyn OtpStore>) {
    let p = phone(4);
    let (old, old_guess) = pending(&p, "333333", TTL, 2);
    put(&store, &p, &old).await;
    store.verify_and_consume(&p, &guess(&p, "000000")).await.unwrap();
    let (new, new_guess) = pending(&p, "444444", TTL, 2);
    put(&store, &p, &new).await;
    // Attempts start afresh, and the old code is just a wrong code now.
    assert_eq!(store.status(&p).await.unwrap().unwrap().attempts_remaining, 2);
    assert_eq!(
        store.verify_and_consume(&p, &old_guess).await.unwrap(),
        VerifyOutcome::Mismatch {
            attempts_remaining: 1
        }
    );
    assert_eq!(
        store.verify_and_consume(&p, &new_guess).await.unwrap(),
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
        store.verify_and_consume(&p, &right).await.unwrap(),
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
        store.verify_and_consume(&p, &second_guess).await.unwrap(),
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
    put(&store, &p, &policy.pending(before.hash(&p, &code))).await;
    let rotated = CodeHasher::new(new, vec![old]);
    assert_eq!(
        store
            .verify_and_consume(&p, &rotated.candidates(&p, &code))
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
        store.verify_and_consume(&b, &guess(&b, "999999")).await.unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(
        store.verify_and_consume(&a, &right_a).await.unwrap(),
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
            tokio::spawn(async move { store.verify_and_consume(&p, &right).await.unwrap() })
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
            tokio::spawn(async move { store.verify_and_consume(&p, &guess(&p, "000001")).await.unwrap() })
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
    assert!(is_locked(store.verify_and_consume(&p, &right).await.unwrap()));
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
        store.verify_and_consume(&p, &first_guess).await.unwrap(),
        VerifyOutcome::Mismatch {
            attempts_remaining: 4
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
        store.verify_and_consume(&p, &two_guess).await.unwrap(),
        VerifyOutcome::Approved
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.issue(&p, &three, &limits).await.unwrap(), Issued::Stored);
}

pub async fn buckets_count_per_window_and_give_back(store: Arc<dyn OtpStore>) {
    let ip: IpAddr = "203.0.113.7".parse().unwrap();
    let other: IpAddr = "2001:db8::7".parse().unwrap();
    let quota = Quota::new(3, Duration::from_secs(1));
    for _ in 0..3 {
        assert_eq!(
            store.take(Bucket::SendsFromIp(ip), quota).await.unwrap(),
            Taken::Granted
        );
    }
    let Taken::Exhausted { retry_after } = store.take(Bucket::SendsFromIp(ip), quota).await.unwrap() else {
        panic!("a fourth was granted");
    };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
    // Other buckets are untouched.
    assert_eq!(
        store.take(Bucket::SendsFromIp(other), quota).await.unwrap(),
        Taken::Granted
    );
    assert_eq!(
        store.take(Bucket::VerifiesFromIp(ip), quota).await.unwrap(),
        Taken::Granted
    );
    assert_eq!(
        store.take(Bucket::GlobalSends, quota).await.unwrap(),
        Taken::Granted
    );
    store.give_back(Bucket::SendsFromIp(ip)).await.unwrap();
    assert_eq!(
        store.take(Bucket::SendsFromIp(ip), quota).await.unwrap(),
        Taken::Granted
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store.take(Bucket::SendsFromIp(ip), quota).await.unwrap(),
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
    Arc::new(MemoryStore::new())
}

pub fn redis_store() -> Arc<dyn OtpStore> {
    Arc::new(
        RedisStore::new(
            &redis_url(),
            &unique_prefix(),
            Duration::from_millis(2000),
            8,
            Arc::new(otpd::adapters::metrics::Metrics::new()),
        )
        .unwrap(),
    )
}

contract_suite!(memory, memory_store());
contract_suite!(redis, redis_store());
