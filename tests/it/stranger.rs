//! The threat model of docs/behaviour.md, "Security model", tried as the
//! stranger would: through the app's own login form (the app's API key),
//! from one address or many, never seeing the SMS. The owner's app keeps
//! the id its own send answered and checks by it.

use std::time::{Duration, Instant};

use otpd::config::{Config, LimitsConfig, Secret};
use serde_json::{json, Value};

use crate::helpers::{memory_config, redis_config, spawn_app, wrong, Reply, TestApp};

const PHONE: &str = "+14155552671";
const APP_KEY: &str = "the-apps-key-0123456789";
const OTHER_APP_KEY: &str = "another-apps-key-0123456789";

/// The defaults, behind a proxy that forwards each user's address.
pub fn defaults(mut config: Config) -> Config {
    config.limits = LimitsConfig::default();
    config.auth.api_keys = vec![Secret::new(APP_KEY), Secret::new(OTHER_APP_KEY)];
    config.http.trusted_proxies = vec!["127.0.0.0/8".into()];
    config
}

/// A call through the app, on behalf of a user at `from`.
async fn call(app: &TestApp, key: &str, from: &str, path: &str, body: Value) -> Reply {
    app.post_json_with(path, body, &[("x-api-key", key), ("x-forwarded-for", from)])
        .await
}

async fn get(app: &TestApp, key: &str, path: &str) -> Reply {
    crate::helpers::reply(
        app.client
            .get(app.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn send(app: &TestApp, from: &str) -> Reply {
    call(app, APP_KEY, from, "/v1/otp", json!({"phone": PHONE})).await
}

async fn by_id(app: &TestApp, from: &str, id: &Value, code: &str) -> Reply {
    call(
        app,
        APP_KEY,
        from,
        "/v1/otp/verify",
        json!({"verification_id": id, "code": code}),
    )
    .await
}

async fn by_phone(app: &TestApp, from: &str, code: &str) -> Reply {
    call(
        app,
        APP_KEY,
        from,
        "/v1/otp/verify",
        json!({"phone": PHONE, "code": code}),
    )
    .await
}

/// N2: a stranger at another address guesses for `secs` as fast as the
/// answers allow (following every Retry-After), by phone and by ids of its
/// own sends; then the owner's right code, by its id, approves at once.
pub async fn a_stranger_never_delays_the_owner(app: &TestApp, secs: u64) {
    let owner = send(app, "198.51.100.1").await;
    assert_eq!(owner.status, 202, "{}", owner.body);
    let code = app.outbox.last_code(PHONE);
    let (mut heard, mut waited) = (0, 0);
    let mut theirs: Option<Value> = None;
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let stranger = "203.0.113.66";
        let mut answers = vec![by_phone(app, stranger, &wrong(&code)).await];
        if let Some(id) = &theirs {
            answers.push(by_id(app, stranger, id, &wrong(&code)).await);
        }
        let sent = send(app, stranger).await;
        if sent.status == 202 {
            theirs = Some(sent.body["verification_id"].clone());
        }
        answers.push(sent);
        heard += answers.iter().filter(|a| a.status == 422).count();
        let wait = answers.iter().filter_map(|a| a.retry_after).min();
        if let Some(wait) = wait.filter(|_| answers.iter().all(|a| a.status == 429 || a.status == 404)) {
            waited += 1;
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(Duration::from_secs(wait).min(left)).await;
        }
    }
    assert!(heard > 0, "the stranger was heard at all");
    // At once: the first try, no 429 to wait out.
    let approved = by_id(app, "198.51.100.1", &owner.body["verification_id"], &code).await;
    assert_eq!(
        approved.status, 200,
        "{} (heard {heard}, waited {waited})",
        approved.body
    );
}

#[tokio::test]
async fn a_stranger_never_delays_the_owner_by_id() {
    let memory = spawn_app(defaults(memory_config())).await;
    let redis = spawn_app(defaults(redis_config())).await;
    futures_util::future::join(
        a_stranger_never_delays_the_owner(&memory, 60),
        a_stranger_never_delays_the_owner(&redis, 60),
    )
    .await;
}

/// Guessers at 200 addresses, each sending for itself and guessing by its
/// own id and by phone: no more than the phone's ceiling of wrong codes is
/// ever answered as wrong, and the owner's verification keeps working.
async fn two_hundred_addresses_hear_at_most_twenty_wrong_codes(app: &TestApp) {
    let owner = send(app, "198.51.100.1").await;
    assert_eq!(owner.status, 202);
    let code = app.outbox.last_code(PHONE);
    let code = &code;
    let guessers = (0..200).map(|i| async move {
        let from = format!("2001:db8:{i:x}::1");
        let mut wrongs = 0;
        let sent = send(app, &from).await;
        for _ in 0..6 {
            if sent.status == 202 {
                let id = &sent.body["verification_id"];
                wrongs += usize::from(by_id(app, &from, id, &wrong(code)).await.status == 422);
            }
            wrongs += usize::from(by_phone(app, &from, &wrong(code)).await.status == 422);
        }
        wrongs
    });
    let heard: usize = futures_util::future::join_all(guessers).await.into_iter().sum();
    assert!((1..=20).contains(&heard), "{heard} wrong codes answered as wrong");
    let approved = by_id(app, "198.51.100.1", &owner.body["verification_id"], code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}

#[tokio::test]
async fn a_distributed_guess_hears_at_most_the_ceiling_on_memory() {
    two_hundred_addresses_hear_at_most_twenty_wrong_codes(&spawn_app(defaults(memory_config())).await).await;
}

#[tokio::test]
async fn a_distributed_guess_hears_at_most_the_ceiling_on_redis() {
    two_hundred_addresses_hear_at_most_twenty_wrong_codes(&spawn_app(defaults(redis_config())).await).await;
}

/// N3: an id is its starter's. Another API key gets 404 by id (read,
/// cancel, verify, resend), a read by phone carries no id, and another
/// key's send starts a verification of its own.
#[tokio::test]
async fn ids_reach_no_other_caller() {
    let app = spawn_app(defaults(memory_config())).await;
    let sent = send(&app, "198.51.100.1").await;
    let id = sent.body["verification_id"].clone();
    let code = app.outbox.last_code(PHONE);
    let path = format!("/v1/verifications/{}", id.as_str().unwrap());

    get(&app, OTHER_APP_KEY, &path)
        .await
        .assert_problem(404, "not_found");
    let cancel = app
        .client
        .delete(app.url(&path))
        .header("x-api-key", OTHER_APP_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 404);
    let body = json!({"verification_id": id, "code": code});
    call(&app, OTHER_APP_KEY, "198.51.100.2", "/v1/otp/verify", body)
        .await
        .assert_problem(404, "not_found");
    let resend = json!({"phone": PHONE, "verification_id": id});
    call(&app, OTHER_APP_KEY, "198.51.100.2", "/v1/otp", resend)
        .await
        .assert_problem(404, "not_found");

    let read = get(&app, APP_KEY, &format!("/v1/otp/{PHONE}")).await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("verification_id").is_none(), "{}", read.body);
    assert!(!read.body.to_string().contains(id.as_str().unwrap()));
    get(&app, OTHER_APP_KEY, &format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");

    let theirs = call(
        &app,
        OTHER_APP_KEY,
        "198.51.100.2",
        "/v1/otp",
        json!({"phone": PHONE}),
    )
    .await;
    assert_eq!(theirs.status, 429, "the phone's cooldown: {}", theirs.body);
    let own = send(&app, "198.51.100.1").await;
    assert_eq!(own.status, 429, "the same cooldown for everyone");

    // The owner's is untouched by all of it.
    assert_eq!(get(&app, APP_KEY, &path).await.body["attempts_remaining"], 5);
    assert_eq!(by_id(&app, "198.51.100.1", &id, &code).await.status, 200);
}

#[tokio::test]
async fn another_keys_send_starts_a_verification_of_its_own() {
    let mut config = defaults(memory_config());
    config.limits.resend_after_secs = 0;
    let app = spawn_app(config).await;
    let mine = send(&app, "198.51.100.1").await;
    let theirs = call(
        &app,
        OTHER_APP_KEY,
        "198.51.100.2",
        "/v1/otp",
        json!({"phone": PHONE}),
    )
    .await;
    assert_eq!(theirs.status, 202, "{}", theirs.body);
    assert_ne!(theirs.body["verification_id"], mine.body["verification_id"]);
    assert_eq!(theirs.body["sends"], 1);
}

/// A stranger who shares the owner's address (everyone behind the app's
/// server) uses up that address's quota of verifies by phone and makes 60
/// wrong guesses by the id of its own send: the owner's guesses by id are
/// bounded by its verification alone, so its right code approves.
#[tokio::test]
async fn a_stranger_at_the_apps_address_never_spends_the_owners_guesses_by_id() {
    let app = spawn_app(defaults(memory_config())).await;
    let the_app = "192.0.2.10";
    let owner = send(&app, the_app).await;
    assert_eq!(owner.status, 202, "{}", owner.body);
    let code = app.outbox.last_code(PHONE);
    let theirs = call(
        &app,
        APP_KEY,
        the_app,
        "/v1/otp",
        json!({"phone": "+14155550142"}),
    )
    .await;
    assert_eq!(theirs.status, 202, "{}", theirs.body);
    let their_id = &theirs.body["verification_id"];
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let r = by_id(&app, the_app, their_id, "000000").await;
        let code = r.body["code"].as_str().unwrap_or("wrong").to_owned();
        *answers.entry((r.status, code)).or_insert(0) += 1;
    }
    let expected = [
        ((422, "code_mismatch".to_owned()), 5),
        ((429, "max_attempts_reached".to_owned()), 55),
    ];
    assert_eq!(answers, expected.into(), "by id takes no quota");
    let mut refused = None;
    for _ in 0..200 {
        let r = by_phone(&app, the_app, &wrong(&code)).await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("guesses by phone meet the address's waits or quota");
    assert!(refused.retry_after.is_some(), "{}", refused.body);
    let approved = by_id(&app, the_app, &owner.body["verification_id"], &code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}

/// A memory store full of clients' counters (each address that guesses by
/// phone leaves one) still hears guesses by id: they need no new entry, so
/// a wrong one uses an attempt and the owner's right code approves.
#[tokio::test]
async fn a_full_memory_store_still_hears_guesses_by_id() {
    let mut config = defaults(memory_config());
    config.store.memory_max_entries = 40;
    let app = spawn_app(config).await;
    let owner = send(&app, "198.51.100.1").await;
    assert_eq!(owner.status, 202, "{}", owner.body);
    let code = app.outbox.last_code(PHONE);
    let id = &owner.body["verification_id"];
    let mut full = false;
    for i in 0..200 {
        let from = format!("2001:db8:{i:x}::1");
        let r = call(
            &app,
            APP_KEY,
            &from,
            "/v1/otp/verify",
            json!({"phone": "+14155550199", "code": "000000"}),
        )
        .await;
        if r.status == 503 {
            r.assert_problem(503, "store_full");
            full = true;
            break;
        }
    }
    assert!(full, "the store filled up");
    let wrong_one = by_id(&app, "2001:db8:ffff::1", id, &wrong(&code)).await;
    assert_eq!(wrong_one.status, 422, "{}", wrong_one.body);
    assert_eq!(wrong_one.body["attempts_remaining"], 4, "{}", wrong_one.body);
    let approved = by_id(&app, "2001:db8:fffe::1", id, &code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}

/// The original routes start verifications of their own: a send there
/// replaces the key's earlier original-route code, never a `/v1`
/// verification its app checks by id.
#[tokio::test]
async fn an_original_route_send_never_replaces_a_v1_verification() {
    let mut config = defaults(memory_config());
    config.limits.resend_after_secs = 0;
    let app = spawn_app(config).await;
    let owner = send(&app, "198.51.100.1").await;
    assert_eq!(owner.status, 202, "{}", owner.body);
    let code = app.outbox.last_code(PHONE);
    let digits = PHONE.trim_start_matches('+');
    let generate = || {
        app.client
            .post(app.url("/generate_otp"))
            .header("x-api-key", APP_KEY)
            .header("x-forwarded-for", "203.0.113.66")
            .form(&[("phone_number", digits)])
            .send()
    };
    assert_eq!(generate().await.unwrap().status(), 200);
    let legacy_code = app.outbox.last_code(PHONE);
    assert_eq!(generate().await.unwrap().status(), 200);
    let newest = app.outbox.last_code(PHONE);
    let verify = |otp: String| {
        app.client
            .post(app.url("/verify_otp"))
            .header("x-api-key", APP_KEY)
            .header("x-forwarded-for", "203.0.113.66")
            .form(&[("phone_number", digits.to_owned()), ("otp", otp)])
            .send()
    };
    if legacy_code != newest {
        assert_eq!(
            verify(legacy_code).await.unwrap().status(),
            401,
            "the second original-route send replaced the first"
        );
    }
    if code != newest {
        assert_ne!(
            verify(code.clone()).await.unwrap().status(),
            200,
            "an original-route check never reaches a /v1 verification"
        );
    }
    let approved = by_id(&app, "198.51.100.1", &owner.body["verification_id"], &code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(verify(newest).await.unwrap().status(), 200);
}
