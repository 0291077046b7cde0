//! The one specification of an `OtpStore`, run against every adapter: what
//! a verification is (`domain::PhoneState`, `domain/rules.rs`) as any store
//! must keep it, whatever its backend.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use otpd::adapters::store::{MemoryStore, RedisStore};
use otpd::domain::{
    Admitted, Bucket, Checked, Claim, ClientNet, ClientPrefixes, Code, CodeHash, CodeHasher, DeliveryReport,
    DeliveryState, GuessBudget, GuessCeiling, HashKey, Idempotency, IdempotencyKey, Named, Opened, OtpPolicy,
    PendingOtp, Phone, Quota, Scope, SendLimits, SendMode, SmsReceipt, Taken, Verification, VerificationId,
    VerifyOutcome,
};
use otpd::ports::{
    Counters, Deliveries, Guess, Guesser, IdempotencyKeys, OtpStore, SendRules, StoreError, Verifications,
};

use crate::helpers::{redis_url, unique_prefix};

fn phone(n: u32) -> Phone {
    Phone::parse(&format!("+1415555{n:04}")).unwrap()
}

fn hasher() -> CodeHasher {
    CodeHasher::new(HashKey::new(*b"contract-key-0123456789").unwrap(), vec![])
}

const TTL: Duration = Duration::from_secs(180);
const HOUR: Duration = Duration::from_secs(3600);

/// No limits and no ceiling in the way.
const OFF: SendRules = SendRules {
    limits: SendLimits::OFF,
    ceiling: GuessCeiling::OFF,
};

/// The default ceiling's figures: 20 wrong codes per phone per hour.
const CEILING: GuessCeiling = GuessCeiling {
    limit: 20,
    window: HOUR,
};

fn under(ceiling: GuessCeiling) -> SendRules {
    SendRules {
        limits: SendLimits::OFF,
        ceiling,
    }
}

/// The scope of the app most tests send for.
fn app() -> Scope {
    Scope::of("key:the-app")
}

/// A send of `code` for `phone` from `scope`, with a fresh id.
fn otp_of(phone: &Phone, scope: &Scope, code: &str, ttl: Duration, attempts: u32) -> PendingOtp {
    let h = hasher();
    OtpPolicy::new(ttl, attempts).unwrap().pending(
        h.ids().seal(phone),
        scope.clone(),
        h.hash(phone, &Code::parse(code).unwrap()),
    )
}

/// As [`otp_of`], living [`TTL`] with 5 attempts.
fn otp(phone: &Phone, scope: &Scope, code: &str) -> PendingOtp {
    otp_of(phone, scope, code, TTL, 5)
}

fn candidates(phone: &Phone, code: &str) -> Vec<CodeHash> {
    hasher().candidates(phone, &Code::parse(code).unwrap())
}

/// Sends `otp` as `mode` says under `rules`; the verification it went to.
async fn stored(
    store: &Arc<dyn OtpStore>,
    phone: &Phone,
    otp: &PendingOtp,
    mode: SendMode,
    rules: SendRules,
) -> Verification {
    match store.open(phone, otp, &mode, &rules).await.unwrap() {
        Opened::Stored(v) => v,
        other => panic!("not stored: {other:?}"),
    }
}

/// Sends `otp` as `mode` says, nothing in the way.
async fn send(store: &Arc<dyn OtpStore>, phone: &Phone, otp: &PendingOtp, mode: SendMode) -> Verification {
    stored(store, phone, otp, mode, OFF).await
}

/// A guess of `code` from `scope`, with `ceiling`.
async fn check_under(
    store: &Arc<dyn OtpStore>,
    phone: &Phone,
    scope: &Scope,
    named: Named<'_>,
    code: &str,
    ceiling: GuessCeiling,
) -> Checked {
    let candidates = candidates(phone, code);
    let guess = Guess {
        scope,
        named,
        candidates: &candidates,
        ceiling,
    };
    store.check(phone, &guess).await.unwrap()
}

/// A guess of `code` from `scope`, no ceiling.
async fn check(
    store: &Arc<dyn OtpStore>,
    phone: &Phone,
    scope: &Scope,
    named: Named<'_>,
    code: &str,
) -> VerifyOutcome {
    check_under(store, phone, scope, named, code, GuessCeiling::OFF)
        .await
        .outcome
}

fn mismatch(attempts_remaining: u32, phone_blocked: bool) -> VerifyOutcome {
    VerifyOutcome::Mismatch {
        attempts_remaining,
        phone_blocked,
    }
}

fn is_mismatch(outcome: VerifyOutcome) -> bool {
    matches!(outcome, VerifyOutcome::Mismatch { .. })
}

fn is_locked(outcome: VerifyOutcome) -> bool {
    matches!(outcome, VerifyOutcome::Locked { expires_in } if expires_in > Duration::ZERO && expires_in <= TTL)
}

fn throttled_for(outcome: VerifyOutcome) -> Duration {
    match outcome {
        VerifyOutcome::Throttled { retry_after } => retry_after,
        other => panic!("expected a throttled guess, got {other:?}"),
    }
}

fn client(ip: &str) -> ClientNet {
    ClientPrefixes::default().client(ip.parse::<IpAddr>().unwrap())
}

/// A client guessing with `waits`, its quota of verifies far off.
fn guesser(ip: &str, waits: GuessBudget) -> Guesser {
    Guesser {
        client: client(ip),
        quota: Quota::new(1000, Duration::from_secs(60)),
        waits,
    }
}

/// A guess of `code` by `guesser`, which its quota must let through.
async fn guess_as(
    store: &Arc<dyn OtpStore>,
    guesser: &Guesser,
    phone: &Phone,
    named: Named<'_>,
    code: &str,
) -> VerifyOutcome {
    let candidates = candidates(phone, code);
    let guess = Guess {
        scope: &app(),
        named,
        candidates: &candidates,
        ceiling: GuessCeiling::OFF,
    };
    match store.guess(guesser, phone, &guess).await.unwrap() {
        Admitted::Done(checked) => checked.outcome,
        refused => panic!("the quota refused: {refused:?}"),
    }
}

pub async fn right_code_is_approved_exactly_once(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(1), app());
    let v = send(&store, &p, &otp(&p, &s, "042917"), SendMode::New).await;
    let checked = check_under(&store, &p, &s, Named::ById(&v.id), "042917", GuessCeiling::OFF).await;
    assert_eq!(checked.outcome, VerifyOutcome::Approved);
    assert_eq!(checked.verification.map(|v| v.id), Some(v.id.clone()));
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "042917").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(
        check(&store, &p, &s, Named::ByPhone, "042917").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p, &s, Named::ById(&v.id)).await.unwrap(), None);
    // By phone, the same: once.
    let v = send(&store, &p, &otp(&p, &s, "042918"), SendMode::New).await;
    assert_eq!(
        check(&store, &p, &s, Named::ByPhone, "042918").await,
        VerifyOutcome::Approved
    );
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "042918").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p, &s, Named::ByPhone).await.unwrap(), None);
}

pub async fn unknown_phone_is_not_found(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(2), app());
    let id = VerificationId::generate();
    assert_eq!(
        check(&store, &p, &s, Named::ById(&id), "123456").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(
        check(&store, &p, &s, Named::ByPhone, "123456").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p, &s, Named::ByPhone).await.unwrap(), None);
    assert_eq!(store.status(&p, &s, Named::ById(&id)).await.unwrap(), None);
    assert_eq!(store.end(&p, &s, &id).await.unwrap(), None);
    let resend = store
        .open(&p, &otp(&p, &s, "123456"), &SendMode::Resend(id), &OFF)
        .await
        .unwrap();
    assert_eq!(resend, Opened::NotFound);
    assert_eq!(store.status(&p, &s, Named::ByPhone).await.unwrap(), None);
}

pub async fn wrong_codes_by_id_use_its_attempts_then_lock(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(3), app());
    let v = send(&store, &p, &otp_of(&p, &s, "111111", TTL, 3), SendMode::New).await;
    for remaining in [2, 1, 0] {
        assert_eq!(
            check(&store, &p, &s, Named::ById(&v.id), "222222").await,
            mismatch(remaining, false)
        );
    }
    // Locked: even the right code is refused, and nothing more is counted.
    assert!(is_locked(
        check(&store, &p, &s, Named::ById(&v.id), "111111").await
    ));
    assert!(is_locked(
        check(&store, &p, &s, Named::ById(&v.id), "222222").await
    ));
    let status = store.status(&p, &s, Named::ById(&v.id)).await.unwrap().unwrap();
    assert_eq!(status.attempts_remaining, 0);
}

/// Guesses by phone have attempts of their own: whoever uses them up, the
/// verification's attempts by id are untouched.
pub async fn wrong_codes_by_phone_use_the_phone_attempts_then_lock(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(4), app());
    let v = send(&store, &p, &otp_of(&p, &s, "111111", TTL, 3), SendMode::New).await;
    for remaining in [2, 1, 0] {
        assert_eq!(
            check(&store, &p, &s, Named::ByPhone, "222222").await,
            mismatch(remaining, false)
        );
    }
    assert!(is_locked(check(&store, &p, &s, Named::ByPhone, "111111").await));
    let by_phone = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    let by_id = store.status(&p, &s, Named::ById(&v.id)).await.unwrap().unwrap();
    assert_eq!((by_phone.attempts_remaining, by_id.attempts_remaining), (0, 3));
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "111111").await,
        VerifyOutcome::Approved
    );
}

pub async fn status_reports_life_and_the_attempts_of_the_way_it_is_named(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(5), app());
    let first = send(&store, &p, &otp(&p, &s, "555555").sent(1_000), SendMode::New).await;
    let status = store
        .status(&p, &s, Named::ById(&first.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&status.id, status.attempts_remaining, status.sends),
        (&first.id, 5, 1)
    );
    assert_eq!((status.created_at, status.send_times), (1_000, vec![1_000]));
    assert!(
        status.expires_in <= TTL && status.expires_in > TTL - Duration::from_secs(2),
        "{:?}",
        status.expires_in
    );
    check(&store, &p, &s, Named::ById(&first.id), "000000").await;
    let attempts = |v: Option<Verification>| v.unwrap().attempts_remaining;
    assert_eq!(
        attempts(store.status(&p, &s, Named::ById(&first.id)).await.unwrap()),
        4
    );
    assert_eq!(attempts(store.status(&p, &s, Named::ByPhone).await.unwrap()), 5);
    check(&store, &p, &s, Named::ByPhone, "000000").await;
    assert_eq!(attempts(store.status(&p, &s, Named::ByPhone).await.unwrap()), 4);
    // By phone: the scope's newest.
    let second = send(&store, &p, &otp(&p, &s, "565656"), SendMode::New).await;
    let newest = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!((newest.id, newest.attempts_remaining), (second.id, 5));
}

pub async fn codes_expire_by_themselves(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(6), app());
    let otp = otp_of(&p, &s, "666666", Duration::from_secs(1), 5);
    let v = send(&store, &p, &otp, SendMode::New).await;
    assert!(store.status(&p, &s, Named::ById(&v.id)).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(store.status(&p, &s, Named::ById(&v.id)).await.unwrap(), None);
    assert_eq!(store.status(&p, &s, Named::ByPhone).await.unwrap(), None);
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "666666").await,
        VerifyOutcome::NotFound
    );
    let resend = store
        .open(
            &p,
            &otp_of(&p, &s, "676767", TTL, 5),
            &SendMode::Resend(v.id),
            &OFF,
        )
        .await
        .unwrap();
    assert_eq!(resend, Opened::NotFound);
}

pub async fn withdraw_removes_only_that_code(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(7), app());
    let never_sent = otp(&p, &s, "777777");
    let sent = otp(&p, &s, "787878");
    let v = send(&store, &p, &sent, SendMode::New).await;
    store.withdraw(&p, &never_sent.hash).await.unwrap();
    assert!(
        store.status(&p, &s, Named::ById(&v.id)).await.unwrap().is_some(),
        "another code's withdrawal leaves it"
    );
    store.withdraw(&p, &sent.hash).await.unwrap();
    assert_eq!(store.status(&p, &s, Named::ById(&v.id)).await.unwrap(), None);
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "787878").await,
        VerifyOutcome::NotFound
    );
}

pub async fn any_candidate_key_verifies(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(8), app());
    let code = Code::parse("888888").unwrap();
    let old = HashKey::new(*b"old-key-0123456789").unwrap();
    let new = HashKey::new(*b"new-key-0123456789").unwrap();
    let before = CodeHasher::new(old.clone(), vec![]);
    let policy = OtpPolicy::new(TTL, 5).unwrap();
    let otp = policy.pending(before.ids().seal(&p), s.clone(), before.hash(&p, &code));
    let v = send(&store, &p, &otp, SendMode::New).await;
    let rotated = CodeHasher::new(new, vec![old]).candidates(&p, &code);
    let guess = Guess {
        scope: &s,
        named: Named::ById(&v.id),
        candidates: &rotated,
        ceiling: GuessCeiling::OFF,
    };
    assert_eq!(
        store.check(&p, &guess).await.unwrap().outcome,
        VerifyOutcome::Approved
    );
}

pub async fn phones_are_independent(store: Arc<dyn OtpStore>) {
    let (a, b, s) = (phone(9), phone(10), app());
    let v = send(&store, &a, &otp(&a, &s, "999999"), SendMode::New).await;
    assert_eq!(
        check(&store, &b, &s, Named::ByPhone, "999999").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(
        check(&store, &b, &s, Named::ById(&v.id), "999999").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(
        check(&store, &a, &s, Named::ById(&v.id), "999999").await,
        VerifyOutcome::Approved
    );
}

/// Every send of the same app for the same phone starts a verification of
/// its own: a stranger's guesses, by phone and by its own id, never touch
/// the owner's attempts by id.
pub async fn a_strangers_send_and_guesses_never_touch_the_owners_verification(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(20), app());
    let owner = stored(&store, &p, &otp(&p, &s, "111111"), SendMode::New, under(CEILING)).await;
    let theirs = stored(&store, &p, &otp(&p, &s, "222222"), SendMode::New, under(CEILING)).await;
    assert_ne!(owner.id, theirs.id, "a send never joins another's verification");
    let mut by_phone = 0;
    loop {
        let outcome = check_under(&store, &p, &s, Named::ByPhone, "999999", CEILING).await;
        if !is_mismatch(outcome.outcome) {
            assert!(is_locked(outcome.outcome), "{outcome:?}");
            break;
        }
        by_phone += 1;
    }
    assert_eq!(by_phone, 5, "the phone attempts");
    for remaining in (0..5).rev() {
        let outcome = check_under(&store, &p, &s, Named::ById(&theirs.id), "999999", CEILING).await;
        assert_eq!(outcome.outcome, mismatch(remaining, false));
    }
    let owners = store
        .status(&p, &s, Named::ById(&owner.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owners.attempts_remaining, 5);
    assert_eq!(
        check_under(&store, &p, &s, Named::ById(&owner.id), "111111", CEILING)
            .await
            .outcome,
        VerifyOutcome::Approved
    );
}

/// Only the scope that started a verification can check, read, end or
/// resend it.
pub async fn a_verification_belongs_to_its_scope(store: Arc<dyn OtpStore>) {
    let p = phone(21);
    let (a, b) = (Scope::of("key:a"), Scope::of("key:b"));
    let v = send(&store, &p, &otp(&p, &a, "123456"), SendMode::New).await;
    assert_eq!(
        check(&store, &p, &b, Named::ById(&v.id), "123456").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(
        check(&store, &p, &b, Named::ByPhone, "123456").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p, &b, Named::ById(&v.id)).await.unwrap(), None);
    assert_eq!(store.status(&p, &b, Named::ByPhone).await.unwrap(), None);
    assert_eq!(store.end(&p, &b, &v.id).await.unwrap(), None);
    let resend = store
        .open(&p, &otp(&p, &b, "654321"), &SendMode::Resend(v.id.clone()), &OFF)
        .await
        .unwrap();
    assert_eq!(resend, Opened::NotFound);
    let status = store.status(&p, &a, Named::ById(&v.id)).await.unwrap().unwrap();
    assert_eq!((status.sends, status.attempts_remaining), (1, 5));
    assert_eq!(
        check(&store, &p, &a, Named::ById(&v.id), "123456").await,
        VerifyOutcome::Approved
    );
}

/// A resend by id adds a code beside the earlier ones, which stay good,
/// and gives back no attempt.
pub async fn a_resend_adds_a_code_beside_the_earlier_one(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(22), app());
    let first = otp(&p, &s, "401401");
    let started = send(&store, &p, &first.clone().sent(1_000), SendMode::New).await;
    assert_eq!(
        (&started.id, started.sends, started.attempts_remaining),
        (&first.id, 1, 5)
    );
    assert_eq!(
        check(&store, &p, &s, Named::ById(&first.id), "000000").await,
        mismatch(4, false)
    );
    let second = otp(&p, &s, "402402").sent(1_030);
    let kept = send(&store, &p, &second, SendMode::Resend(first.id.clone())).await;
    assert_eq!(kept.id, first.id, "the same verification");
    assert_ne!(second.id, first.id);
    assert_eq!(
        (kept.sends, kept.attempts_remaining),
        (2, 4),
        "a resend restores no guesses"
    );
    assert_eq!(
        (kept.created_at, kept.send_times.clone()),
        (1_000, vec![1_000, 1_030])
    );
    let status = store
        .status(&p, &s, Named::ById(&first.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status.sends, status.attempts_remaining), (2, 4));
    // The first SMS's code still works, and ends the verification.
    let checked = check_under(
        &store,
        &p,
        &s,
        Named::ById(&first.id),
        "401401",
        GuessCeiling::OFF,
    )
    .await;
    assert_eq!(checked.outcome, VerifyOutcome::Approved);
    assert_eq!(
        checked.verification.map(|v| (v.id, v.sends)),
        Some((first.id.clone(), 2))
    );
    assert_eq!(
        check(&store, &p, &s, Named::ById(&first.id), "402402").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.status(&p, &s, Named::ByPhone).await.unwrap(), None);
}

pub async fn each_code_of_a_verification_expires_on_its_own(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(23), app());
    let short = otp_of(&p, &s, "411411", Duration::from_secs(1), 5);
    let v = send(&store, &p, &short, SendMode::New).await;
    let long = otp_of(&p, &s, "412412", Duration::from_secs(4), 5);
    let kept = send(&store, &p, &long, SendMode::Resend(v.id.clone())).await;
    assert_eq!(kept.id, v.id);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "411411").await,
        mismatch(4, false),
        "the first code is past its own life"
    );
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "412412").await,
        VerifyOutcome::Approved
    );
}

/// Twilio's sends: one pending verification per scope, which the next
/// send joins; another scope's is another verification.
pub async fn keep_pending_keeps_one_verification_per_scope(store: Arc<dyn OtpStore>) {
    let p = phone(24);
    let (one, two) = (Scope::of("twilio:AC:VA1"), Scope::of("twilio:AC:VA2"));
    let first = send(&store, &p, &otp(&p, &one, "111111"), SendMode::KeepPending).await;
    let again = send(&store, &p, &otp(&p, &one, "222222"), SendMode::KeepPending).await;
    let other = send(&store, &p, &otp(&p, &two, "333333"), SendMode::KeepPending).await;
    assert_eq!((&again.id, again.sends), (&first.id, 2));
    assert_ne!(other.id, first.id);
    assert_eq!(other.sends, 1);
    assert_eq!(
        check(&store, &p, &two, Named::ById(&first.id), "111111").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(
        check(&store, &p, &one, Named::ById(&first.id), "111111").await,
        VerifyOutcome::Approved,
        "the first code stayed good"
    );
    assert_eq!(
        check(&store, &p, &two, Named::ById(&other.id), "333333").await,
        VerifyOutcome::Approved
    );
}

/// The original routes' send replaces the scope's verifications, attempts
/// and all, and leaves other scopes' alone.
pub async fn a_replace_replaces_only_the_scopes_verifications(store: Arc<dyn OtpStore>) {
    let p = phone(25);
    let (a, b) = (Scope::of("open"), Scope::of("key:b"));
    let a1 = send(&store, &p, &otp_of(&p, &a, "333333", TTL, 2), SendMode::Replace).await;
    let a2 = send(&store, &p, &otp_of(&p, &a, "343434", TTL, 2), SendMode::New).await;
    assert_eq!(
        check(&store, &p, &a, Named::ByPhone, "000000").await,
        mismatch(1, false)
    );
    let theirs = send(&store, &p, &otp(&p, &b, "555555"), SendMode::New).await;
    let fresh = send(&store, &p, &otp_of(&p, &a, "444444", TTL, 2), SendMode::Replace).await;
    assert_eq!(fresh.attempts_remaining, 2);
    assert_eq!(store.status(&p, &a, Named::ById(&a1.id)).await.unwrap(), None);
    assert_eq!(store.status(&p, &a, Named::ById(&a2.id)).await.unwrap(), None);
    let by_phone = store.status(&p, &a, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!((&by_phone.id, by_phone.attempts_remaining), (&fresh.id, 2));
    // The replaced codes are just wrong codes now.
    assert_eq!(
        check(&store, &p, &a, Named::ByPhone, "333333").await,
        mismatch(1, false)
    );
    assert_eq!(
        check(&store, &p, &a, Named::ByPhone, "444444").await,
        VerifyOutcome::Approved
    );
    let status = store
        .status(&p, &b, Named::ById(&theirs.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status.sends, status.attempts_remaining), (1, 5));
    assert_eq!(
        check(&store, &p, &b, Named::ById(&theirs.id), "555555").await,
        VerifyOutcome::Approved
    );
}

pub async fn a_verification_is_checked_and_ended_only_by_its_own_id(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(26), app());
    let v = send(&store, &p, &otp(&p, &s, "421421"), SendMode::New).await;
    let other = send(&store, &p, &otp(&p, &s, "431431"), SendMode::New).await;
    let made_up = VerificationId::generate();
    assert_eq!(
        check(&store, &p, &s, Named::ById(&made_up), "421421").await,
        VerifyOutcome::NotFound
    );
    assert_eq!(store.end(&p, &s, &made_up).await.unwrap(), None);
    assert_eq!(
        check(&store, &p, &s, Named::ById(&other.id), "421421").await,
        mismatch(4, false),
        "another verification's code is a wrong code"
    );
    let ended = store.end(&p, &s, &v.id).await.unwrap().expect("ended");
    assert_eq!((ended.id, ended.attempts_remaining), (v.id.clone(), 5));
    assert_eq!(store.end(&p, &s, &v.id).await.unwrap(), None);
    assert_eq!(store.status(&p, &s, Named::ById(&v.id)).await.unwrap(), None);
    assert_eq!(
        check(&store, &p, &s, Named::ById(&v.id), "421421").await,
        VerifyOutcome::NotFound
    );
    let left = store
        .status(&p, &s, Named::ById(&other.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.attempts_remaining, 4, "the other one is left as it was");
}

/// A locked verification can't be ended or resent, and no send joins it.
pub async fn a_locked_verification_is_not_kept(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(27), app());
    let locked = send(
        &store,
        &p,
        &otp_of(&p, &s, "431431", TTL, 1),
        SendMode::KeepPending,
    )
    .await;
    check(&store, &p, &s, Named::ById(&locked.id), "000000").await;
    assert_eq!(
        store.end(&p, &s, &locked.id).await.unwrap(),
        None,
        "a locked one can't be ended"
    );
    let resend = store
        .open(
            &p,
            &otp(&p, &s, "432432"),
            &SendMode::Resend(locked.id.clone()),
            &OFF,
        )
        .await
        .unwrap();
    assert_eq!(resend, Opened::NotFound);
    let next = otp(&p, &s, "433433");
    let fresh = send(&store, &p, &next, SendMode::KeepPending).await;
    assert_eq!(
        (&fresh.id, fresh.attempts_remaining, fresh.sends),
        (&next.id, 5, 1)
    );
    assert!(is_locked(
        check(&store, &p, &s, Named::ById(&locked.id), "431431").await
    ));
}

pub async fn withdrawing_a_resend_keeps_the_earlier_code(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(28), app());
    let first = send(&store, &p, &otp(&p, &s, "441441"), SendMode::New).await;
    let second = otp(&p, &s, "442442");
    send(&store, &p, &second, SendMode::Resend(first.id.clone())).await;
    store.withdraw(&p, &second.hash).await.unwrap();
    let status = store
        .status(&p, &s, Named::ById(&first.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status.sends, status.send_times.len()), (1, 1));
    assert_eq!(
        check(&store, &p, &s, Named::ById(&first.id), "442442").await,
        mismatch(4, false)
    );
    assert_eq!(
        check(&store, &p, &s, Named::ById(&first.id), "441441").await,
        VerifyOutcome::Approved
    );
}

pub async fn a_send_inside_the_cooldown_is_refused_and_changes_nothing(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(13), app());
    let rules = SendRules {
        limits: SendLimits {
            resend_after: Duration::from_secs(1),
            per_phone: Quota::OFF,
        },
        ceiling: GuessCeiling::OFF,
    };
    let first = stored(&store, &p, &otp(&p, &s, "131313"), SendMode::New, rules).await;
    let resend = SendMode::Resend(first.id.clone());
    for mode in [
        resend.clone(),
        SendMode::New,
        SendMode::KeepPending,
        SendMode::Replace,
    ] {
        match store
            .open(&p, &otp(&p, &s, "141414"), &mode, &rules)
            .await
            .unwrap()
        {
            Opened::TooSoon { retry_after } => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
            }
            other => panic!("{mode:?}: {other:?}"),
        }
    }
    let status = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!((status.id, status.sends), (first.id.clone(), 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = stored(&store, &p, &otp(&p, &s, "141414"), resend, rules).await;
    assert_eq!((&kept.id, kept.sends), (&first.id, 2));
    assert_eq!(
        check(&store, &p, &s, Named::ById(&first.id), "131313").await,
        VerifyOutcome::Approved,
        "the refused sends left the first code alone"
    );
}

pub async fn the_phone_quota_counts_codes_per_window(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(14), app());
    let rules = SendRules {
        limits: SendLimits {
            resend_after: Duration::ZERO,
            per_phone: Quota::new(2, Duration::from_secs(2)),
        },
        ceiling: GuessCeiling::OFF,
    };
    let one = stored(&store, &p, &otp(&p, &s, "000001"), SendMode::New, rules).await;
    let two = stored(&store, &p, &otp(&p, &s, "000002"), SendMode::New, rules).await;
    assert_ne!(one.id, two.id);
    let three = otp(&p, &s, "000003");
    for mode in [SendMode::New, SendMode::Resend(one.id.clone())] {
        match store.open(&p, &three, &mode, &rules).await.unwrap() {
            Opened::QuotaExceeded { retry_after } => {
                assert!(retry_after <= Duration::from_secs(2), "{retry_after:?}")
            }
            other => panic!("{mode:?}: {other:?}"),
        }
    }
    assert_eq!(
        check(&store, &p, &s, Named::ById(&two.id), "000002").await,
        VerifyOutcome::Approved
    );
    assert_eq!(
        check(&store, &p, &s, Named::ById(&one.id), "000001").await,
        VerifyOutcome::Approved
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    stored(&store, &p, &three, SendMode::New, rules).await;
}

pub async fn buckets_count_per_window_and_give_back(store: Arc<dyn OtpStore>) {
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

/// An admission takes from its quotas only for a code it stores: a send
/// the phone's rules refuse gives them back, a quota that refuses stores
/// nothing.
pub async fn an_admission_takes_its_quotas_only_for_a_stored_code(store: Arc<dyn OtpStore>) {
    let s = app();
    let quotas = [(
        Bucket::SendsFrom(client("203.0.113.9")),
        Quota::new(2, Duration::from_secs(60)),
    )];
    let rules = SendRules {
        limits: SendLimits {
            resend_after: Duration::from_secs(60),
            per_phone: Quota::OFF,
        },
        ceiling: CEILING,
    };
    let admit = |p: Phone, code: &'static str| {
        let store = Arc::clone(&store);
        let s = s.clone();
        async move {
            let otp = otp(&p, &s, code);
            store
                .admit(&quotas, &p, &otp, &SendMode::New, &rules)
                .await
                .unwrap()
        }
    };
    assert!(matches!(
        admit(phone(29), "111111").await,
        Admitted::Done(Opened::Stored(_))
    ));
    assert!(matches!(
        admit(phone(29), "222222").await,
        Admitted::Done(Opened::TooSoon { .. })
    ));
    assert!(
        matches!(
            admit(phone(30), "333333").await,
            Admitted::Done(Opened::Stored(_))
        ),
        "the refused send gave its quota back"
    );
    assert!(matches!(
        admit(phone(31), "444444").await,
        Admitted::Refused { refused: 0, .. }
    ));
    assert_eq!(store.status(&phone(31), &s, Named::ByPhone).await.unwrap(), None);
}

/// A delivery is noted for a verification's newest code only, and its
/// state only moves forward.
pub async fn a_delivery_is_noted_for_the_newest_code_and_only_moves_forward(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(32), app());
    let first = otp(&p, &s, "515151");
    let v = send(&store, &p, &first, SendMode::New).await;
    let receipt = SmsReceipt {
        provider: "twilio".into(),
        message_id: format!("SM{}", uuid::Uuid::new_v4().simple()),
        tracked: true,
    };
    let link = Duration::from_secs(60);
    store
        .record_delivery(&p, &first.hash, &receipt, 1_700_000_002, link)
        .await
        .unwrap();
    let delivery = |v: Option<Verification>| v.unwrap().delivery.map(|d| (d.message_id, d.state));
    let read = store.status(&p, &s, Named::ById(&v.id)).await.unwrap();
    assert_eq!(
        delivery(read),
        Some((receipt.message_id.clone(), DeliveryState::Queued))
    );
    let report = |state| DeliveryReport {
        provider: receipt.provider.clone(),
        message_id: receipt.message_id.clone(),
        state,
        error_code: None,
        at: 1_700_000_003,
    };
    let sent = report(DeliveryState::Sent);
    let (phone, updated) = store.update_delivery(&sent).await.unwrap().expect("updated");
    assert_eq!((phone, updated.id.clone()), (p.clone(), v.id.clone()));
    assert_eq!(
        updated.delivery.map(|d| (d.message_id, d.state)),
        Some((receipt.message_id.clone(), DeliveryState::Sent)),
        "the verification as the report left it"
    );
    assert_eq!(store.update_delivery(&sent).await.unwrap(), None, "no news");
    let queued = report(DeliveryState::Queued);
    assert_eq!(
        store.update_delivery(&queued).await.unwrap(),
        None,
        "no step back"
    );
    let read = store.status(&p, &s, Named::ById(&v.id)).await.unwrap();
    assert_eq!(
        delivery(read),
        Some((receipt.message_id.clone(), DeliveryState::Sent))
    );
    // A resend: a receipt for the older code changes nothing.
    send(&store, &p, &otp(&p, &s, "525252"), SendMode::Resend(v.id.clone())).await;
    store
        .record_delivery(&p, &first.hash, &receipt, 1_700_000_004, link)
        .await
        .unwrap();
    let read = store.status(&p, &s, Named::ById(&v.id)).await.unwrap();
    assert_eq!(delivery(read), None);
}

/// With the ceiling at 20 wrong codes an hour, no sequence of sends (any
/// mode, two scopes) and guesses (by id and by phone) hears more than 20
/// wrong codes; and it hears all 20.
pub async fn no_sequence_of_sends_and_guesses_passes_the_ceiling(store: Arc<dyn OtpStore>) {
    let p = phone(33);
    let scopes = [Scope::of("key:a"), Scope::of("key:b")];
    let mut last: [Option<VerificationId>; 2] = [None, None];
    let (mut wrong, mut refused) = (0, 0);
    for i in 0..24 {
        let at = i % 2;
        let s = &scopes[at];
        let mode = match i % 4 {
            0 => SendMode::New,
            1 => SendMode::KeepPending,
            2 => SendMode::Replace,
            _ => last[at].clone().map_or(SendMode::New, SendMode::Resend),
        };
        let otp = otp(&p, s, &format!("{:06}", 100_000 + i));
        match store.open(&p, &otp, &mode, &under(CEILING)).await.unwrap() {
            Opened::Stored(v) => {
                while is_mismatch(
                    check_under(&store, &p, s, Named::ById(&v.id), "999999", CEILING)
                        .await
                        .outcome,
                ) {
                    wrong += 1;
                }
                last[at] = Some(v.id);
            }
            Opened::GuessCeiling { retry_after } => {
                assert!(
                    retry_after > Duration::ZERO && retry_after <= HOUR,
                    "{retry_after:?}"
                );
                refused += 1;
            }
            Opened::NotFound => assert!(matches!(mode, SendMode::Resend(_))),
            other => panic!("{other:?}"),
        }
        while is_mismatch(
            check_under(&store, &p, s, Named::ByPhone, "999999", CEILING)
                .await
                .outcome,
        ) {
            wrong += 1;
        }
    }
    assert_eq!(wrong, 20);
    assert!(refused > 0, "a new verification finds no room");
}

/// A new verification reserves what room the ceiling has left, none when
/// it has none; what it reserved is its own, whatever comes after.
pub async fn a_verification_keeps_the_attempts_it_reserved(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(34), app());
    let ceiling = GuessCeiling {
        limit: 12,
        window: HOUR,
    };
    let rules = under(ceiling);
    let owner = stored(&store, &p, &otp(&p, &s, "111111"), SendMode::New, rules).await;
    let s1 = stored(&store, &p, &otp(&p, &s, "222222"), SendMode::New, rules).await;
    let s2 = stored(&store, &p, &otp(&p, &s, "333333"), SendMode::New, rules).await;
    assert_eq!(
        (
            owner.attempts_remaining,
            s1.attempts_remaining,
            s2.attempts_remaining
        ),
        (5, 5, 2),
        "the third gets what room is left"
    );
    let no_room = |opened: Opened| match opened {
        Opened::GuessCeiling { retry_after } => {
            assert!(
                retry_after > Duration::ZERO && retry_after <= TTL,
                "{retry_after:?}"
            );
        }
        other => panic!("{other:?}"),
    };
    no_room(
        store
            .open(&p, &otp(&p, &s, "444444"), &SendMode::New, &rules)
            .await
            .unwrap(),
    );
    // Nothing is left for guesses by phone; the stranger's own ids use
    // theirs up.
    throttled_for(
        check_under(&store, &p, &s, Named::ByPhone, "999999", ceiling)
            .await
            .outcome,
    );
    for id in [&s1.id, &s2.id] {
        while is_mismatch(
            check_under(&store, &p, &s, Named::ById(id), "999999", ceiling)
                .await
                .outcome,
        ) {}
    }
    no_room(
        store
            .open(&p, &otp(&p, &s, "555555"), &SendMode::New, &rules)
            .await
            .unwrap(),
    );
    throttled_for(
        check_under(&store, &p, &s, Named::ByPhone, "111111", ceiling)
            .await
            .outcome,
    );
    for remaining in (1..5).rev() {
        assert_eq!(
            check_under(&store, &p, &s, Named::ById(&owner.id), "999999", ceiling)
                .await
                .outcome,
            mismatch(remaining, true)
        );
    }
    assert_eq!(
        check_under(&store, &p, &s, Named::ById(&owner.id), "111111", ceiling)
            .await
            .outcome,
        VerifyOutcome::Approved
    );
}

/// The ceiling counts wrong codes per window: when it is full a guess by
/// phone is refused unheard, a new verification too, until the window ends;
/// the verification's own attempts by id are untouched.
pub async fn the_ceiling_counts_wrong_codes_per_window(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(35), app());
    let ceiling = GuessCeiling {
        limit: 4,
        window: Duration::from_secs(1),
    };
    let v = stored(
        &store,
        &p,
        &otp_of(&p, &s, "111111", TTL, 3),
        SendMode::New,
        under(ceiling),
    )
    .await;
    assert_eq!(v.attempts_remaining, 3, "3 reserved, room for 1 by phone");
    assert_eq!(
        check_under(&store, &p, &s, Named::ByPhone, "999999", ceiling)
            .await
            .outcome,
        mismatch(2, true)
    );
    let wait = throttled_for(
        check_under(&store, &p, &s, Named::ByPhone, "111111", ceiling)
            .await
            .outcome,
    );
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    let refused = store
        .open(&p, &otp(&p, &s, "222222"), &SendMode::New, &under(ceiling))
        .await
        .unwrap();
    assert!(matches!(refused, Opened::GuessCeiling { retry_after } if retry_after <= Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        check_under(&store, &p, &s, Named::ByPhone, "999999", ceiling)
            .await
            .outcome,
        mismatch(1, true),
        "a new window hears one more"
    );
    assert_eq!(
        check_under(&store, &p, &s, Named::ById(&v.id), "111111", ceiling)
            .await
            .outcome,
        VerifyOutcome::Approved
    );
    stored(&store, &p, &otp(&p, &s, "222222"), SendMode::New, under(ceiling)).await;
}

/// Clearing a phone's guesses (an operator's unlock) empties the
/// ceiling's count: guesses by phone are heard again.
pub async fn clearing_the_guesses_gives_the_ceiling_room_again(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(36), app());
    let ceiling = GuessCeiling {
        limit: 8,
        window: Duration::from_secs(60),
    };
    let v = stored(&store, &p, &otp(&p, &s, "135790"), SendMode::New, under(ceiling)).await;
    for (remaining, blocked) in [(4, false), (3, false), (2, true)] {
        assert_eq!(
            check_under(&store, &p, &s, Named::ByPhone, "000000", ceiling)
                .await
                .outcome,
            mismatch(remaining, blocked),
            "room for 3 beside the 5 reserved"
        );
    }
    let wait = throttled_for(
        check_under(&store, &p, &s, Named::ByPhone, "135790", ceiling)
            .await
            .outcome,
    );
    assert!(wait > Duration::ZERO && wait <= ceiling.window, "{wait:?}");
    let status = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!(status.attempts_remaining, 2, "a refused guess uses no attempt");
    assert!(store.clear_guesses(&p).await.unwrap());
    assert!(!store.clear_guesses(&p).await.unwrap(), "nothing left to clear");
    assert_eq!(
        check_under(&store, &p, &s, Named::ByPhone, "135790", ceiling)
            .await
            .outcome,
        VerifyOutcome::Approved
    );
    assert_eq!(store.status(&p, &s, Named::ById(&v.id)).await.unwrap(), None);
}

/// A client's waits: past its free wrong guesses by phone, in a row and
/// across codes and instances, it waits, even for the right code; guesses
/// by id never wait, another client never does; its right code clears them.
pub async fn client_waits_count_across_codes_and_instances(a: Arc<dyn OtpStore>, b: Arc<dyn OtpStore>) {
    let waits = GuessBudget {
        free: 4,
        first_delay: Duration::from_millis(300),
        max_delay: Duration::from_millis(600),
        max_consecutive: 8,
        memory: Duration::from_secs(60),
    };
    let (me, stranger) = (guesser("203.0.113.1", waits), guesser("203.0.113.2", waits));
    let (p, s) = (phone(40), app());
    let mut heard = 0;
    let mut newest = None;
    'codes: for i in 0..30 {
        let (sender, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let code = format!("{:06}", 424_200 + i);
        newest = Some((
            send(sender, &p, &otp(&p, &s, &code), SendMode::New).await.id,
            code,
        ));
        for store in [other, sender] {
            match guess_as(store, &me, &p, Named::ByPhone, "000000").await {
                VerifyOutcome::Mismatch { .. } => heard += 1,
                VerifyOutcome::Throttled { retry_after } => {
                    assert!(retry_after > Duration::ZERO && retry_after <= waits.first_delay);
                    break 'codes;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(heard, 4, "only the free guesses, across codes and instances");
    let (id, right) = newest.unwrap();
    let wait = throttled_for(guess_as(&b, &me, &p, Named::ByPhone, &right).await);
    assert!(wait <= waits.first_delay, "the right code waits too");
    assert!(
        is_mismatch(guess_as(&a, &me, &p, Named::ById(&id), "000000").await),
        "a guess by id never waits"
    );
    assert!(
        is_mismatch(guess_as(&b, &stranger, &p, Named::ByPhone, "000000").await),
        "another client is heard"
    );

    tokio::time::sleep(waits.first_delay + Duration::from_millis(50)).await;
    let fifth = guess_as(&a, &me, &p, Named::ByPhone, "000000").await;
    assert!(is_mismatch(fifth), "{fifth:?}");
    let wait = throttled_for(guess_as(&b, &me, &p, Named::ByPhone, &right).await);
    assert!(
        wait > waits.first_delay && wait <= waits.max_delay,
        "doubled: {wait:?}"
    );

    tokio::time::sleep(waits.max_delay + Duration::from_millis(50)).await;
    assert_eq!(
        guess_as(&b, &me, &p, Named::ByPhone, &right).await,
        VerifyOutcome::Approved
    );
    send(&a, &p, &otp(&p, &s, "424299"), SendMode::New).await;
    for _ in 0..waits.free {
        let outcome = guess_as(&a, &me, &p, Named::ByPhone, "000000").await;
        assert!(
            is_mismatch(outcome),
            "the approval cleared the count: {outcome:?}"
        );
    }
    throttled_for(guess_as(&b, &me, &p, Named::ByPhone, "000000").await);
}

/// After the most wrong guesses by phone in a row, a client is not heard
/// by phone, whatever the code, until its count is forgotten; by id it
/// is, and other clients are.
pub async fn a_client_past_the_most_in_a_row_is_heard_only_by_id(store: Arc<dyn OtpStore>) {
    let waits = GuessBudget {
        free: 2,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(50),
        max_consecutive: 4,
        memory: Duration::from_secs(60),
    };
    let (me, stranger) = (guesser("198.51.100.1", waits), guesser("198.51.100.2", waits));
    let (p, s) = (phone(41), app());
    let v = send(&store, &p, &otp_of(&p, &s, "135790", TTL, 10), SendMode::New).await;
    for _ in 0..4 {
        let outcome = guess_as(&store, &me, &p, Named::ByPhone, "000000").await;
        assert!(is_mismatch(outcome), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let blocked = throttled_for(guess_as(&store, &me, &p, Named::ByPhone, "135790").await);
    assert!(
        blocked > Duration::from_secs(50),
        "until the count is forgotten: {blocked:?}"
    );
    let wait = store.client_wait(me.client, &waits).await.unwrap();
    assert!(wait.is_some_and(|w| w > Duration::from_secs(50)), "{wait:?}");
    assert_eq!(store.client_wait(stranger.client, &waits).await.unwrap(), None);
    assert!(is_mismatch(
        guess_as(&store, &stranger, &p, Named::ByPhone, "000000").await
    ));
    let status = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!(status.attempts_remaining, 5, "a refused guess uses no attempt");
    assert_eq!(
        guess_as(&store, &me, &p, Named::ById(&v.id), "135790").await,
        VerifyOutcome::Approved
    );
}

pub async fn of_fifty_concurrent_right_guesses_one_wins(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(11), app());
    let v = send(&store, &p, &otp(&p, &s, "123123"), SendMode::New).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, p, s, id) = (Arc::clone(&store), p.clone(), s.clone(), v.id.clone());
            tokio::spawn(async move {
                let named = if i % 2 == 0 {
                    Named::ById(&id)
                } else {
                    Named::ByPhone
                };
                check(&store, &p, &s, named, "123123").await
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

pub async fn concurrent_wrong_guesses_by_id_never_exceed_the_attempts(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(12), app());
    let v = send(&store, &p, &otp(&p, &s, "321321"), SendMode::New).await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (store, p, s, id) = (Arc::clone(&store), p.clone(), s.clone(), v.id.clone());
            tokio::spawn(async move { check(&store, &p, &s, Named::ById(&id), "000001").await })
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
        check(&store, &p, &s, Named::ById(&v.id), "321321").await
    ));
}

/// Fifty guesses by phone and fifty by id at once, with room for 5 by
/// phone beside the 15 the verification reserved: all 15 by id and at
/// most 5 by phone are heard.
pub async fn concurrent_guesses_never_pass_the_ceiling(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(42), app());
    let v = stored(
        &store,
        &p,
        &otp_of(&p, &s, "975311", TTL, 15),
        SendMode::New,
        under(CEILING),
    )
    .await;
    assert_eq!(v.attempts_remaining, 15);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, p, s, id) = (Arc::clone(&store), p.clone(), s.clone(), v.id.clone());
            tokio::spawn(async move {
                let named = if i % 2 == 0 {
                    Named::ById(&id)
                } else {
                    Named::ByPhone
                };
                let outcome = check_under(&store, &p, &s, named, "000000", CEILING)
                    .await
                    .outcome;
                (i % 2 == 0, outcome)
            })
        })
        .collect();
    let (mut by_id, mut by_phone) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (true, VerifyOutcome::Mismatch { .. }) => by_id += 1,
            (false, VerifyOutcome::Mismatch { .. }) => by_phone += 1,
            (true, other) => assert!(is_locked(other), "{other:?}"),
            // Once its attempts by id are used up the verification is out
            // of reach by phone too.
            (false, other) if is_locked(other) => {}
            (false, other) => {
                throttled_for(other);
            }
        }
    }
    assert_eq!(by_id, 15);
    assert!(by_phone <= 5, "{by_phone} heard by phone");
    assert!(is_locked(
        check_under(&store, &p, &s, Named::ByPhone, "975311", CEILING)
            .await
            .outcome
    ));
}

pub async fn of_a_hundred_concurrent_sends_one_is_stored(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(15), app());
    let rules = SendRules {
        limits: SendLimits {
            resend_after: Duration::from_secs(30),
            per_phone: Quota::new(5, Duration::from_secs(600)),
        },
        ceiling: CEILING,
    };
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, p, s) = (Arc::clone(&store), p.clone(), s.clone());
            tokio::spawn(async move {
                let otp = otp(&p, &s, &format!("{i:06}"));
                store.open(&p, &otp, &SendMode::New, &rules).await.unwrap()
            })
        })
        .collect();
    let mut stored = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Opened::Stored(v) => stored.push(v.id),
            other => assert!(matches!(other, Opened::TooSoon { .. }), "{other:?}"),
        }
    }
    assert_eq!(stored.len(), 1);
    let newest = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!(newest.id, stored[0]);
}

pub async fn concurrent_resends_keep_one_verification(store: Arc<dyn OtpStore>) {
    let (p, s) = (phone(45), app());
    let first = send(&store, &p, &otp(&p, &s, "451451"), SendMode::New).await;
    let sends = (0..20).map(|i| {
        let (store, p, s, id) = (Arc::clone(&store), p.clone(), s.clone(), first.id.clone());
        tokio::spawn(async move {
            let mode = if i % 2 == 0 {
                SendMode::Resend(id)
            } else {
                SendMode::KeepPending
            };
            let otp = otp(&p, &s, &format!("{:06}", 500_000 + i));
            send(&store, &p, &otp, mode).await.id
        })
    });
    for id in futures_util::future::join_all(sends).await {
        assert_eq!(id.unwrap(), first.id);
    }
    let status = store.status(&p, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!(
        (status.id, status.sends, status.send_times.len()),
        (first.id.clone(), 21, 10)
    );
    // The nine newest codes live; the oldest gave way.
    assert_eq!(
        check(&store, &p, &s, Named::ById(&first.id), "451451").await,
        mismatch(4, false)
    );
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

/// Every test above that takes one store, named once: `$then` is called
/// with `$args` and the names (the suite below runs each on every
/// adapter, `cluster.rs` on a real cluster).
macro_rules! every_contract_test {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)*;
            right_code_is_approved_exactly_once,
            unknown_phone_is_not_found,
            wrong_codes_by_id_use_its_attempts_then_lock,
            wrong_codes_by_phone_use_the_phone_attempts_then_lock,
            status_reports_life_and_the_attempts_of_the_way_it_is_named,
            codes_expire_by_themselves,
            withdraw_removes_only_that_code,
            any_candidate_key_verifies,
            phones_are_independent,
            a_strangers_send_and_guesses_never_touch_the_owners_verification,
            a_verification_belongs_to_its_scope,
            a_resend_adds_a_code_beside_the_earlier_one,
            each_code_of_a_verification_expires_on_its_own,
            keep_pending_keeps_one_verification_per_scope,
            a_replace_replaces_only_the_scopes_verifications,
            a_verification_is_checked_and_ended_only_by_its_own_id,
            a_locked_verification_is_not_kept,
            withdrawing_a_resend_keeps_the_earlier_code,
            a_send_inside_the_cooldown_is_refused_and_changes_nothing,
            the_phone_quota_counts_codes_per_window,
            buckets_count_per_window_and_give_back,
            an_admission_takes_its_quotas_only_for_a_stored_code,
            a_delivery_is_noted_for_the_newest_code_and_only_moves_forward,
            no_sequence_of_sends_and_guesses_passes_the_ceiling,
            a_verification_keeps_the_attempts_it_reserved,
            the_ceiling_counts_wrong_codes_per_window,
            clearing_the_guesses_gives_the_ceiling_room_again,
            a_client_past_the_most_in_a_row_is_heard_only_by_id,
            of_fifty_concurrent_right_guesses_one_wins,
            concurrent_wrong_guesses_by_id_never_exceed_the_attempts,
            concurrent_guesses_never_pass_the_ceiling,
            of_a_hundred_concurrent_sends_one_is_stored,
            concurrent_resends_keep_one_verification,
            an_idempotency_key_is_claimed_once_then_answers,
        );
    };
}
pub(crate) use every_contract_test;

/// A module of tests named after the contract's, each on a store `$make`
/// makes.
macro_rules! contract_suite {
    ($adapter:ident, $make:expr; $($test:ident),* $(,)?) => {
        mod $adapter {
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($make).await;
                }
            )*
        }
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
async fn client_waits_count_across_codes_on_memory() {
    let store = memory_store();
    client_waits_count_across_codes_and_instances(Arc::clone(&store), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_waits_count_across_codes_and_instances_on_redis() {
    let prefix = unique_prefix();
    client_waits_count_across_codes_and_instances(
        redis_store_at(&redis_url(), &prefix),
        redis_store_at(&redis_url(), &prefix),
    )
    .await;
}

every_contract_test!(contract_suite!(memory, memory_store()));
every_contract_test!(contract_suite!(redis, redis_store()));
every_contract_test!(contract_suite!(memory_tallied, Tallied::wrap(memory_store())));
every_contract_test!(contract_suite!(redis_tallied, Tallied::wrap(redis_store())));

/// A store whose sends without limits are counted all the same (1,000 per
/// hour, far more than any test sends), so every test above also runs with
/// a phone's tally beside its verifications: in Redis that is the same key,
/// which then outlives the codes, and a verification must still end when
/// they do.
struct Tallied(Arc<dyn OtpStore>);

impl Tallied {
    fn wrap(store: Arc<dyn OtpStore>) -> Arc<dyn OtpStore> {
        Arc::new(Self(store))
    }

    fn rules(rules: &SendRules) -> SendRules {
        if rules.limits.is_off() {
            SendRules {
                limits: SendLimits {
                    resend_after: Duration::ZERO,
                    per_phone: Quota::new(1000, HOUR),
                },
                ..*rules
            }
        } else {
            *rules
        }
    }
}

#[async_trait]
impl Verifications for Tallied {
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Opened, StoreError> {
        self.0.open(phone, otp, mode, &Self::rules(rules)).await
    }

    async fn end(
        &self,
        phone: &Phone,
        scope: &Scope,
        id: &VerificationId,
    ) -> Result<Option<Verification>, StoreError> {
        self.0.end(phone, scope, id).await
    }

    async fn check(&self, phone: &Phone, guess: &Guess<'_>) -> Result<Checked, StoreError> {
        self.0.check(phone, guess).await
    }

    async fn status(
        &self,
        phone: &Phone,
        scope: &Scope,
        named: Named<'_>,
    ) -> Result<Option<Verification>, StoreError> {
        self.0.status(phone, scope, named).await
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        self.0.withdraw(phone, hash).await
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        self.0.clear_guesses(phone).await
    }
}

#[async_trait]
impl Counters for Tallied {
    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        self.0.take(bucket, quota).await
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        self.0.give_back(bucket).await
    }

    async fn client_wait(
        &self,
        client: ClientNet,
        waits: &GuessBudget,
    ) -> Result<Option<Duration>, StoreError> {
        self.0.client_wait(client, waits).await
    }

    async fn note_guess(
        &self,
        client: ClientNet,
        right: bool,
        waits: &GuessBudget,
    ) -> Result<(), StoreError> {
        self.0.note_guess(client, right, waits).await
    }
}

#[async_trait]
impl Deliveries for Tallied {
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

    async fn update_delivery(
        &self,
        report: &DeliveryReport,
    ) -> Result<Option<(Phone, Verification)>, StoreError> {
        self.0.update_delivery(report).await
    }
}

#[async_trait]
impl IdempotencyKeys for Tallied {
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
}

#[async_trait]
impl otpd::ports::Traffic for Tallied {
    async fn count_send(
        &self,
        send: &otpd::ports::SendToCount<'_>,
    ) -> Result<otpd::ports::SendCounts, StoreError> {
        self.0.count_send(send).await
    }

    async fn uncount_send(&self, groups: &[otpd::domain::Group], at_ms: u64) -> Result<(), StoreError> {
        self.0.uncount_send(groups, at_ms).await
    }

    async fn count_approval(&self, groups: &[otpd::domain::Group]) -> Result<(), StoreError> {
        self.0.count_approval(groups).await
    }

    async fn forget_hours(&self, group: &otpd::domain::Group) -> Result<(), StoreError> {
        self.0.forget_hours(group).await
    }

    async fn start_block(
        &self,
        group: &otpd::domain::Group,
        block: &otpd::domain::Block,
    ) -> Result<bool, StoreError> {
        self.0.start_block(group, block).await
    }

    async fn set_block(
        &self,
        group: &otpd::domain::Group,
        block: &otpd::domain::Block,
    ) -> Result<(), StoreError> {
        self.0.set_block(group, block).await
    }

    async fn forget_country(&self, client: ClientNet, country: &str) -> Result<(), StoreError> {
        self.0.forget_country(client, country).await
    }

    async fn blocks(
        &self,
        since_ms: u64,
    ) -> Result<Vec<(otpd::domain::Group, otpd::domain::GroupTraffic)>, StoreError> {
        self.0.blocks(since_ms).await
    }
}

#[async_trait]
impl otpd::ports::Spending for Tallied {
    async fn spend(
        &self,
        ledgers: &[otpd::domain::Ledger],
        cost: otpd::domain::Money,
        limits: &[Option<otpd::domain::Money>],
    ) -> Result<otpd::domain::Spent, StoreError> {
        self.0.spend(ledgers, cost, limits).await
    }

    async fn refund(
        &self,
        ledgers: &[otpd::domain::Ledger],
        cost: otpd::domain::Money,
    ) -> Result<(), StoreError> {
        self.0.refund(ledgers, cost).await
    }

    async fn first_notice(&self, notice: &str, ends_ms: u64) -> Result<bool, StoreError> {
        self.0.first_notice(notice, ends_ms).await
    }
}

#[async_trait]
impl OtpStore for Tallied {
    async fn admit(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Admitted<Opened>, StoreError> {
        self.0.admit(quotas, phone, otp, mode, &Self::rules(rules)).await
    }

    async fn guess(
        &self,
        guesser: &Guesser,
        phone: &Phone,
        guess: &Guess<'_>,
    ) -> Result<Admitted<Checked>, StoreError> {
        self.0.guess(guesser, phone, guess).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

/// A full memory store still counts every wrong code (the ceiling's count
/// lives in the phone's own entry), and a guess whose client can't be
/// counted (its quota, its waits by phone) is refused before it is
/// compared, whatever the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_never_makes_a_guess_free() {
    let store: Arc<dyn OtpStore> = Arc::new(MemoryStore::new(2));
    let waits = GuessBudget {
        free: 10,
        first_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(3600),
        max_consecutive: 100,
        memory: Duration::from_secs(86_400),
    };
    let ceiling = GuessCeiling {
        limit: 5,
        window: HOUR,
    };
    let s = app();
    let by = |n: u8| guesser(&format!("203.0.113.{n}"), waits);
    let guess = |n: u8, p: Phone, named: Option<VerificationId>, code: &'static str| {
        let (store, s) = (Arc::clone(&store), s.clone());
        async move {
            let candidates = candidates(&p, code);
            let named = named.as_ref().map_or(Named::ByPhone, Named::ById);
            let guess = Guess {
                scope: &s,
                named,
                candidates: &candidates,
                ceiling,
            };
            store.guess(&by(n), &p, &guess).await
        }
    };
    let (p, q) = (phone(60), phone(61));
    let v = stored(
        &store,
        &p,
        &otp_of(&p, &s, "135790", TTL, 3),
        SendMode::New,
        under(ceiling),
    )
    .await;
    // The other phone takes the last room; the clients' counters fill theirs.
    let w = send(&store, &q, &otp_of(&q, &s, "246802", TTL, 3), SendMode::New).await;
    for n in 1..=2 {
        store
            .take(Bucket::VerifiesFrom(by(n).client), by(n).quota)
            .await
            .unwrap();
    }
    for remaining in [2, 1, 0] {
        let guessed = guess(1, p.clone(), Some(v.id.clone()), "999999").await.unwrap();
        let Admitted::Done(Checked { outcome, .. }) = guessed else {
            panic!("refused: {guessed:?}");
        };
        assert_eq!(outcome, mismatch(remaining, false));
    }
    let locked = guess(1, p.clone(), Some(v.id.clone()), "135790").await.unwrap();
    assert!(matches!(locked, Admitted::Done(Checked { outcome, .. }) if is_locked(outcome)));
    // The three were counted: the ceiling has room for 2 more.
    let next = stored(&store, &p, &otp(&p, &s, "111111"), SendMode::New, under(ceiling)).await;
    assert_eq!(next.attempts_remaining, 2);
    // A third client has no room to be counted, nor a known client's waits
    // by phone: refused unheard, right or wrong.
    for (n, code) in [(3, "246802"), (3, "111111"), (1, "246802"), (1, "111111")] {
        let refused = guess(n, q.clone(), None, code).await;
        assert!(matches!(refused, Err(StoreError::Full(2))), "{refused:?}");
    }
    let status = store.status(&q, &s, Named::ByPhone).await.unwrap().unwrap();
    assert_eq!(status.attempts_remaining, 3);
    let approved = guess(1, q.clone(), Some(w.id.clone()), "246802").await;
    assert!(matches!(
        approved,
        Ok(Admitted::Done(Checked {
            outcome: VerifyOutcome::Approved,
            ..
        }))
    ));
}
