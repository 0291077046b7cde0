//! The one specification of an `OtpStore`, run against every adapter.

use std::sync::Arc;
use std::time::Duration;

use otpd::adapters::store::{MemoryStore, RedisStore};
use otpd::domain::{Code, CodeHash, CodeHasher, HashKey, OtpPolicy, PendingOtp, Phone, VerifyOutcome};
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

pub async fn right_code_is_approved_exactly_once(store: Arc<dyn OtpStore>) {
    let p = phone(1);
    let (otp, right) = pending(&p, "042917", TTL, 5);
    store.put(&p, &otp).await.unwrap();
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
    store.put(&p, &otp).await.unwrap();
    for remaining in [2, 1, 0] {
        assert_eq!(
            store.verify_and_consume(&p, &guess(&p, "222222")).await.unwrap(),
            VerifyOutcome::Mismatch {
                attempts_remaining: remaining
            }
        );
    }
    // Locked: even the right code is refused, and nothing more is counted.
    assert_eq!(
        store.verify_and_consume(&p, &right).await.unwrap(),
        VerifyOutcome::Locked
    );
    assert_eq!(
        store.verify_and_consume(&p, &guess(&p, "222222")).await.unwrap(),
        VerifyOutcome::Locked
    );
    assert_eq!(store.status(&p).await.unwrap().unwrap().attempts_remaining, 0);
}

pub async fn a_new_code_replaces_the_pending_one(store: Arc<dyn OtpStore>) {
    let p = phone(4);
    let (old, old_guess) = pending(&p, "333333", TTL, 2);
    store.put(&p, &old).await.unwrap();
    store.verify_and_consume(&p, &guess(&p, "000000")).await.unwrap();
    let (new, new_guess) = pending(&p, "444444", TTL, 2);
    store.put(&p, &new).await.unwrap();
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
    store.put(&p, &otp).await.unwrap();
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
    store.put(&p, &otp).await.unwrap();
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
    store.put(&p, &second).await.unwrap();
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
    store
        .put(&p, &policy.pending(before.hash(&p, &code)))
        .await
        .unwrap();
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
    store.put(&a, &otp_a).await.unwrap();
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
    store.put(&p, &otp).await.unwrap();
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
    store.put(&p, &otp).await.unwrap();
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
            other => assert_eq!(other, VerifyOutcome::Locked),
        }
    }
    assert_eq!(mismatches, 5);
    assert_eq!(
        store.verify_and_consume(&p, &right).await.unwrap(),
        VerifyOutcome::Locked
    );
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
    Arc::new(RedisStore::new(&redis_url(), &unique_prefix(), Duration::from_millis(2000), 8).unwrap())
}

contract_suite!(memory, memory_store());
contract_suite!(redis, redis_store());
