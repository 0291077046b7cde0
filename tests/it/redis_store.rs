//! What only Redis shows: the bytes at rest, the TTL, the key layout, and
//! outages (on a `redis-server` of the test's own, never the shared one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use otpd::adapters::metrics::Metrics;
use otpd::adapters::store::RedisStore;
use otpd::config::StoreUrl;
use otpd::ports::{OtpStore, StoreError};
use redis::AsyncCommands;
use sha2::{Digest, Sha512};

use crate::helpers::{redis_config, redis_url, spawn_app, unreachable_redis_config, wrong, HASH_KEY};
use crate::own_redis::OwnRedis;

const PHONE: &str = "+14155552671";

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn only_the_hmac_is_stored_under_a_hash_tagged_key_with_the_ttl() {
    let config = redis_config();
    let prefix = config.store.key_prefix.clone();
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);

    let mut conn = redis().await;
    let mut keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
    keys.sort();
    let key = format!("{prefix}{{{PHONE}}}");
    let id = app.get(&format!("/v1/otp/{PHONE}")).await.body["verification_id"].clone();
    // One key: the id carries its phone sealed, so no link to it is kept,
    // and nothing of the phone shows in it.
    assert_eq!(keys, std::slice::from_ref(&key));
    let id = id.as_str().unwrap();
    assert!(!id.contains(&PHONE[2..8]), "{id}");

    // The record: the verification's id, its one code's HMAC and expiry
    // (0: with the key), the attempts left, then the console's receipt.
    let record: Vec<u8> = conn.get(&key).await.unwrap();
    assert!(record.starts_with(b"VE"));
    assert_eq!(record[34], b'1');
    let (stored, rest) = record[35..].split_at(64);
    let rest = rest.strip_prefix(b"0000000000000".as_slice()).unwrap();
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(HASH_KEY.as_bytes()).unwrap();
    mac.update(format!("{PHONE}:{code}").as_bytes());
    assert_eq!(stored, mac.finalize().into_bytes().as_slice());
    assert_ne!(
        stored,
        Sha512::digest(code.as_bytes()).as_slice(),
        "not the plain SHA-512"
    );
    let rest = String::from_utf8(rest.to_vec()).unwrap();
    let fields: Vec<&str> = rest.split('\n').collect();
    assert_eq!(
        (fields[0], fields[2], fields[4]),
        ("5", "1", "console"),
        "{rest:?}"
    );
    assert_eq!(fields[1], fields[3], "created at its one send: {rest:?}");
    assert_eq!(fields[6..8], ["queued", "0"], "{rest:?}");
    // Nothing in the record is the code itself.
    assert!(
        !record.windows(6).any(|w| w == code.as_bytes()),
        "the record holds the code"
    );

    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!((178..=180).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn the_key_expires_in_redis() {
    let mut config = redis_config();
    config.otp.ttl_secs = 1;
    let key = format!("{}{{{PHONE}}}", config.store.key_prefix);
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    let mut conn = redis().await;
    assert!(conn.exists::<_, bool>(&key).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!conn.exists::<_, bool>(&key).await.unwrap());
    app.verify(PHONE, &code).await.assert_problem(404, "not_found");
}

#[tokio::test]
async fn an_unreachable_store_is_a_quick_503() {
    let app = spawn_app(unreachable_redis_config(300)).await;

    let started = Instant::now();
    app.send(PHONE).await.assert_problem(503, "store_unavailable");
    app.verify(PHONE, "123456")
        .await
        .assert_problem(503, "store_unavailable");
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(503, "store_unavailable");
    // Bounded, not hanging: three calls, each capped by the 300 ms store
    // timeout; the bound is loose because the machine is shared.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(app.outbox.lines().is_empty(), "no SMS without a stored code");
}

#[tokio::test]
async fn the_service_recovers_when_redis_comes_back() {
    let mut own = OwnRedis::start();
    let mut config = redis_config();
    config.store.url = StoreUrl(own.url());
    config.store.timeout_ms = 300;
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);

    own.kill();
    app.send(PHONE).await.assert_problem(503, "store_unavailable");

    let _restarted = OwnRedis::start_on(own.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = app.send(PHONE).await;
        if reply.status == 202 {
            break;
        }
        reply.assert_problem(503, "store_unavailable");
        assert!(Instant::now() < deadline, "still failing after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

/// Every command Redis ran since the last reset, with its count: what
/// clients sent and what their scripts ran inside (Redis counts both), less
/// the test's own `CONFIG` and `INFO`.
fn commands(own: &OwnRedis) -> Vec<(String, u64)> {
    let stats = crate::own_redis::cli(own.port, &["INFO", "commandstats"]);
    let mut commands: Vec<(String, u64)> = stats
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            let ours = name.starts_with("config") || name == "info";
            (!ours).then(|| (name.to_owned(), calls))
        })
        .collect();
    commands.sort();
    commands
}

fn counts(commands: &[(&str, u64)]) -> Vec<(String, u64)> {
    commands
        .iter()
        .map(|(name, n)| ((*name).to_owned(), *n))
        .collect()
}

#[tokio::test]
async fn a_console_send_and_a_verify_are_one_round_trip_each() {
    let own = OwnRedis::start();
    let mut config = redis_config();
    config.store.url = StoreUrl(own.url());
    let app = spawn_app(config).await;
    // The first calls load the scripts; count from a warm start.
    let code = {
        assert_eq!(app.send("+14155550100").await.status, 202);
        assert_eq!(app.send("+14155550100").await.status, 202);
        app.outbox.last_code("+14155550100")
    };
    assert_eq!(app.verify("+14155550100", &wrong(&code)).await.status, 422);
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);

    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    // With no cooldown or quota there is nothing to check: the new
    // verification is one SET (NX, to keep a pending one), one round trip.
    assert_eq!(commands(&own), counts(&[("set", 1)]));
    // The one write held the delivery too.
    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    assert_eq!(status.body["delivery"]["provider"], "console");
    assert_eq!(status.body["delivery"]["message_id"], sent.body["message_id"]);
    assert_eq!(status.body["delivery"]["state"], "queued");

    assert_eq!(app.send("+14155550109").await.status, 202);
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    assert_eq!(app.send("+14155550109").await.status, 202);
    // A resend: the NX write finds the verification, so the script keeps it
    // (reading Redis's clock and the first code's life, to give each code its
    // own expiry).
    assert_eq!(
        commands(&own),
        counts(&[("evalsha", 1), ("get", 1), ("pttl", 1), ("set", 2), ("time", 1)])
    );

    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    // One EVALSHA; the GET and the DEL are what its script ran inside.
    assert_eq!(commands(&own), counts(&[("del", 1), ("evalsha", 1), ("get", 1)]));

    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    app.send("+1 not a phone")
        .await
        .assert_problem(400, "invalid_phone");
    assert_eq!(commands(&own), vec![]);

    // With a cooldown, the check and the write are one script.
    let mut config = redis_config();
    config.store.url = StoreUrl(own.url());
    config.limits.resend_after_secs = 30;
    let app = spawn_app(config).await;
    assert_eq!(app.send("+14155550101").await.status, 202);
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    assert_eq!(app.send("+14155550102").await.status, 202);
    // One script: Redis's clock and the phone's key (the cooldown counts
    // from the last send, its tally's), then one SET of the phone's tally and
    // new verification: one key made.
    assert_eq!(
        commands(&own),
        counts(&[("evalsha", 1), ("get", 1), ("set", 1), ("time", 1)])
    );

    // With the guess budget on (the default), a verify is still one script:
    // the wrong guesses' GET joins the code's GET, and the DEL takes both.
    let mut config = redis_config();
    config.store.url = StoreUrl(own.url());
    config.limits.max_consecutive_guesses = 100;
    let app = spawn_app(config).await;
    assert_eq!(app.send("+14155550103").await.status, 202);
    let code = app.outbox.last_code("+14155550103");
    assert_eq!(app.verify("+14155550103", &wrong(&code)).await.status, 422);
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    assert_eq!(app.verify("+14155550103", &code).await.status, 200);
    assert_eq!(commands(&own), counts(&[("del", 1), ("evalsha", 1), ("get", 2)]));

    // At the defaults (every limit on), a send is still one script: the
    // client's and the service's counters join the phone's keys, taken first
    // and given back on a refusal. So is a verify, with the client's counter.
    let mut config = redis_config();
    config.store.url = StoreUrl(own.url());
    config.limits = otpd::config::LimitsConfig::default();
    let app = spawn_app(config).await;
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    assert_eq!(app.send("+14155550104").await.status, 202);
    assert_eq!(
        commands(&own),
        counts(&[
            ("evalsha", 1),
            ("get", 1),
            ("incr", 2),
            ("pexpire", 2),
            ("set", 1),
            ("time", 1)
        ])
    );
    let code = app.outbox.last_code("+14155550104");
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    assert_eq!(app.verify("+14155550104", &code).await.status, 200);
    // Beside the phone's tally the key outlives the code, so the code's life
    // is read against Redis's clock, and the right guess leaves the tally
    // (a SET) where a key of the code's own would be deleted.
    assert_eq!(
        commands(&own),
        counts(&[
            ("del", 1),
            ("evalsha", 1),
            ("get", 2),
            ("incr", 1),
            ("pexpire", 1),
            ("set", 1),
            ("time", 1)
        ])
    );
}

#[tokio::test]
async fn a_key_of_another_type_reads_as_no_code() {
    // How otpd kept a code before records were strings: a hash.
    let config = redis_config();
    let key = format!("{}{{{PHONE}}}", config.store.key_prefix);
    let app = spawn_app(config).await;
    let mut conn = redis().await;
    let fields = [("h", "x".repeat(64)), ("a", "5".to_owned())];
    let () = conn.hset_multiple(&key, &fields).await.unwrap();
    let () = conn.expire(&key, 60).await.unwrap();

    app.verify(PHONE, "123456").await.assert_problem(404, "not_found");
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");
    // A new code takes the key over.
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn an_outage_keeps_its_cause_as_the_source_and_no_password() {
    let url = format!(
        "redis://:pw-not-for-logs@127.0.0.1:{}",
        crate::own_redis::free_port()
    );
    let store = RedisStore::new(
        &url,
        "otp:",
        Duration::from_millis(300),
        1,
        Arc::new(Metrics::new()),
    )
    .unwrap();

    let error = store.ping().await.unwrap_err();

    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // The message names the part; the cause follows as the source, once.
    assert_eq!(error.to_string(), "the store is unavailable");
    let cause = std::error::Error::source(&error).expect("a cause").to_string();
    assert!(!cause.is_empty());
    assert!(!format!("{error:?}").contains("pw-not-for-logs"), "{error:?}");
}

#[tokio::test]
async fn an_id_that_opens_to_no_phone_is_404_without_a_store_call() {
    let own = OwnRedis::start();
    let mut config = redis_config();
    config.store.url = StoreUrl(own.url());
    let app = spawn_app(config).await;
    let sent = app.send(PHONE).await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    // The same id sealed under another key, a random one, and the real one
    // with a digit changed.
    let other_key = {
        let mut config = redis_config();
        config.store.url = StoreUrl(own.url());
        config.otp.hash_keys = vec![otpd::config::Secret::new("another-hash-key-0123456789")];
        let other = spawn_app(config).await;
        other.send(PHONE).await.body["verification_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut changed = id.clone().into_bytes();
    changed[10] = if changed[10] == b'0' { b'1' } else { b'0' };
    let changed = String::from_utf8(changed).unwrap();
    // Once first, so the status script is loaded before counting.
    assert_eq!(app.get(&format!("/v1/verifications/{id}")).await.status, 200);
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    for id in [
        other_key.as_str(),
        "VE0123456789abcdef0123456789abcdef",
        changed.as_str(),
    ] {
        app.get(&format!("/v1/verifications/{id}"))
            .await
            .assert_problem(404, "not_found");
        app.post_json(
            "/v1/otp/verify",
            serde_json::json!({"verification_id": id, "code": "123456"}),
        )
        .await
        .assert_problem(404, "not_found");
    }
    assert_eq!(
        commands(&own),
        vec![],
        "no id that opens to nothing reaches Redis"
    );
    // The real one: one script, no lookup first.
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
    let fetched = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(fetched.body["phone"], PHONE);
    assert_eq!(commands(&own), counts(&[("evalsha", 1), ("get", 1), ("pttl", 1)]));
}

#[tokio::test]
async fn wrong_guesses_an_older_otpd_counted_still_count() {
    // Before issue 20 a phone's wrong codes in a row were a plain integer
    // (the guess wait had a key of its own).
    let mut config = redis_config();
    config.limits.max_consecutive_guesses = 20;
    config.limits.free_guesses = 10;
    let prefix = config.store.key_prefix.clone();
    let app = spawn_app(config).await;
    let mut conn = redis().await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.outbox.last_code(PHONE);
    let _: () = conn
        .set_ex(format!("{prefix}{{{PHONE}}}:fails"), 20, 600)
        .await
        .unwrap();
    app.verify(PHONE, &code)
        .await
        .assert_problem(429, "guess_budget_exceeded");
}

#[tokio::test]
async fn the_phones_tally_rides_in_its_key_and_outlives_the_code() {
    let mut config = redis_config();
    config.limits.sends_per_phone = 2;
    config.limits.sends_window_secs = 600;
    let key = format!("{}{{{PHONE}}}", config.store.key_prefix);
    let app = spawn_app(config).await;
    let mut conn = redis().await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let value: Vec<u8> = conn.get(&key).await.unwrap();
    assert_eq!(value[0], b'S', "the tally comes first");
    assert_eq!(&value[15..17], b"VE", "then the verification");
    let sends_key: bool = conn.exists(format!("{key}:sends")).await.unwrap();
    assert!(!sends_key, "no key of the sends' own");

    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    // The code is used up, its tally stays for the window.
    let value: Vec<u8> = conn.get(&key).await.unwrap();
    assert_eq!(value.len(), 15, "the tally alone");
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "pttl {ttl}");
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");
    app.verify(PHONE, &code).await.assert_problem(404, "not_found");

    assert_eq!(app.send(PHONE).await.status, 202);
    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    let left = status.body["expires_in"].as_u64().unwrap_or(0);
    assert!(
        (170..=180).contains(&left),
        "the code's life, not the tally's: {}",
        status.body
    );
    let capped = app.send(PHONE).await;
    capped.assert_problem(429, "send_quota_exceeded");
    assert!((590..=600).contains(&capped.retry_after.unwrap()));
}
