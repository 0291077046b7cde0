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
    let sent = app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);

    let mut conn = redis().await;
    // SCAN, not KEYS: the shared Redis may hold millions of others' keys,
    // and KEYS would block every client of it while it walks them.
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, some): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(some);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    let key = format!("{prefix}{{{PHONE}}}");
    let id = sent.body["verification_id"].clone();
    // One key for the phone: the id carries its phone sealed, so no link
    // to it is kept, and nothing of the phone shows in it. Beside it, the
    // pumping breaker's counts for the phone's country and 1k prefix,
    // which name no whole number, and the client's countries of the day.
    let traffic = [
        format!("{prefix}traffic:{{US}}:+14155552"),
        format!("{prefix}traffic:{{US}}:US"),
    ];
    let countries = format!("{prefix}ip:{{127.0.0.1/32}}:countries");
    assert_eq!(
        keys,
        [
            countries.clone(),
            traffic[0].clone(),
            traffic[1].clone(),
            key.clone()
        ]
    );
    let held: String = conn.get(&countries).await.unwrap();
    assert_eq!(held, "US,");
    let ttl: i64 = conn.ttl(&countries).await.unwrap();
    assert!((86_000..=86_400).contains(&ttl), "{ttl}");
    for group in &traffic {
        let ttl: i64 = conn.ttl(group).await.unwrap();
        assert!((14 * 86_400..=15 * 86_400).contains(&ttl), "{group}: {ttl}");
    }
    let id = id.as_str().unwrap();
    assert!(!id.contains(&PHONE[2..8]), "{id}");

    // The phone's state (record.lua): its one verification, with its id,
    // its one code's HMAC and expiry, the attempts, the console's receipt.
    let raw: Vec<u8> = conn.get(&key).await.unwrap();
    let state = stored(&mut conn, &key).await;
    let all = at(&state, VERIFICATIONS);
    let v = &all.as_array().unwrap()[0];
    assert_eq!(at(v, 0).as_str(), Some(id), "its id");
    assert_eq!(at(v, 3).as_u64(), Some(5), "its attempts");
    assert_eq!(at(v, 4).as_u64(), Some(5), "its attempts by phone");
    assert_eq!(
        at(&at(v, 8), 0).as_str(),
        Some("console"),
        "its delivery's provider"
    );
    let codes = at(v, 2);
    let code_entry = codes.as_array().unwrap()[0].as_array().unwrap();
    let stored_hash = match &code_entry[0] {
        rmpv::Value::Binary(b) => b.clone(),
        rmpv::Value::String(s) => s.as_bytes().to_vec(),
        other => panic!("{other:?}"),
    };
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(HASH_KEY.as_bytes()).unwrap();
    mac.update(format!("{PHONE}:{code}").as_bytes());
    assert_eq!(stored_hash, mac.finalize().into_bytes().as_slice());
    assert_ne!(
        stored_hash,
        Sha512::digest(code.as_bytes()).as_slice(),
        "not the plain SHA-512"
    );
    // Nothing in the record is the code itself.
    assert!(
        !raw.windows(6).any(|w| w == code.as_bytes()),
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

/// `scripts` EVALSHAs since the last reset, and nothing else but the
/// commands a script runs inside it.
fn assert_scripts(own: &OwnRedis, scripts: u64) {
    let ran = commands(own);
    let inside = [
        "get",
        "set",
        "time",
        "incr",
        "decr",
        "pexpire",
        "pexpireat",
        "del",
        "pttl",
        // The pumping breaker's counts (traffic.lua).
        "hincrby",
        "hgetall",
        "hmget",
        "hget",
        "hdel",
    ];
    assert!(ran.contains(&("evalsha".to_owned(), scripts)), "{ran:?}");
    for (name, _) in &ran {
        assert!(name == "evalsha" || inside.contains(&name.as_str()), "{ran:?}");
    }
    crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);
}

/// One round trip: one script.
fn assert_one_script(own: &OwnRedis) {
    assert_scripts(own, 1);
}

#[tokio::test]
async fn a_send_is_one_round_trip_with_the_breakers_count_and_a_verify_one() {
    let own = OwnRedis::start();
    for limits in [crate::helpers::no_limits(), otpd::config::LimitsConfig::default()] {
        let mut config = redis_config();
        config.store.url = StoreUrl(own.url());
        config.limits = limits;
        let app = spawn_app(config).await;
        // The first calls load the scripts; count from a warm start.
        assert_eq!(app.send("+14155550100").await.status, 202);
        let code = app.outbox.last_code("+14155550100");
        assert_eq!(app.verify("+14155550100", &wrong(&code)).await.status, 422);
        // An approval loads the breaker's own script (its count).
        assert_eq!(app.verify("+14155550100", &code).await.status, 200);
        crate::own_redis::cli(own.port, &["CONFIG", "RESETSTAT"]);

        // The verification's script counts for the pumping breaker too.
        let sent = app.send(PHONE).await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_scripts(&own, 1);
        let id = sent.body["verification_id"].as_str().unwrap().to_owned();
        let resent = app
            .post_json(
                "/v1/otp",
                serde_json::json!({"phone": PHONE, "verification_id": id}),
            )
            .await;
        // Sent and counted, or refused by the cooldown at the defaults and
        // not counted: one script either way.
        assert!(matches!(resent.status, 202 | 429), "{}", resent.body);
        assert_scripts(&own, 1);
        let code = app.outbox.last_code(PHONE);
        assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 422);
        assert_one_script(&own);
        let approved = app
            .post_json(
                "/v1/otp/verify",
                serde_json::json!({"verification_id": id, "code": code}),
            )
            .await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        // The approval is counted for the breaker beside the events.
        assert_scripts(&own, 2);
        app.send("+1 not a phone")
            .await
            .assert_problem(400, "invalid_phone");
        assert_eq!(commands(&own), vec![]);
    }
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
    assert_eq!(commands(&own), counts(&[("evalsha", 1), ("get", 1), ("time", 1)]));
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
    let state = stored(&mut conn, &key).await;
    assert_eq!(at(&at(&state, TALLY), 0).as_u64(), Some(1), "its sends");
    assert_eq!(
        at(&state, VERIFICATIONS).as_array().map(Vec::len),
        Some(1),
        "beside the verification"
    );
    let sends_key: bool = conn.exists(format!("{key}:sends")).await.unwrap();
    assert!(!sends_key, "no key of the sends' own");

    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    // The code is used up, its tally stays for the window.
    let state = stored(&mut conn, &key).await;
    assert_eq!(
        at(&state, VERIFICATIONS).as_array().map(Vec::len).unwrap_or(0),
        0,
        "the tally alone"
    );
    assert_eq!(at(&at(&state, TALLY), 0).as_u64(), Some(1), "its sends");
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

/// The phone's state as stored (`record.lua`'s msgpack).
async fn stored(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> rmpv::Value {
    let raw: Vec<u8> = conn.get(key).await.unwrap();
    rmpv::decode::read_value(&mut raw.as_slice()).unwrap()
}

/// The state's places (`record.lua`).
const TALLY: usize = 0;
const VERIFICATIONS: usize = 2;

/// The `i`th place of a msgpack array, or Nil.
fn at(array: &rmpv::Value, i: usize) -> rmpv::Value {
    array
        .as_array()
        .and_then(|a| a.get(i))
        .map_or(rmpv::Value::Nil, Clone::clone)
}

/// An evicting Redis could drop a phone's wrong-code counts: the store
/// names the policy at start, and says nothing of `noeviction`.
#[tokio::test]
async fn an_evicting_redis_is_named_at_start() {
    let own = OwnRedis::start();
    let store = RedisStore::new(
        &own.url(),
        "otp:",
        Duration::from_millis(300),
        1,
        Arc::new(Metrics::new()),
    )
    .unwrap();
    crate::own_redis::cli(own.port, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    assert_eq!(store.concerns().await, Vec::<String>::new());
    crate::own_redis::cli(own.port, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let concerns = store.concerns().await;
    assert_eq!(concerns.len(), 1, "{concerns:?}");
    assert!(
        concerns[0].contains("allkeys-lru") && concerns[0].contains("noeviction"),
        "{concerns:?}"
    );
}

/// A key written by an otpd that kept the state as maps by name (before
/// the arrays) is read as it was: a rolling upgrade forgets no attempt.
#[tokio::test]
async fn a_state_kept_by_names_is_read_and_kept_as_arrays() {
    use rmpv::Value;
    let mut config = redis_config();
    config.limits.wrong_codes_per_phone = 20;
    let key = format!("{}{{{PHONE}}}", config.store.key_prefix);
    let app = spawn_app(config).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(HASH_KEY.as_bytes()).unwrap();
    mac.update(format!("{PHONE}:135790").as_bytes());
    let hash = mac.finalize().into_bytes().to_vec();
    let s = |text: &str| Value::from(text);
    let record = Value::Map(vec![
        (s("id"), s(&format!("VE{}", "ab".repeat(16)))),
        (s("scope"), s(otpd::domain::Scope::of("open").as_str())),
        (
            s("codes"),
            Value::Array(vec![Value::Array(vec![
                // A Lua string, as cmsgpack packs the raw hash: put in below.
                s(&"x".repeat(64)),
                Value::from(now_ms + 120_000),
            ])]),
        ),
        (s("attempts"), Value::from(5u8)),
        (s("phone_attempts"), Value::from(2u8)),
        (s("created_at"), Value::from(now_ms / 1000)),
        (s("sends"), Value::from(1u8)),
        (s("send_times"), Value::Array(vec![Value::from(now_ms / 1000)])),
    ]);
    let state = Value::Map(vec![
        (s("v"), Value::Array(vec![record])),
        (
            s("wrong"),
            Value::Map(vec![
                (s("count"), Value::from(3u8)),
                (s("window_end_ms"), Value::from(now_ms + 600_000)),
            ]),
        ),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &state).unwrap();
    let at_hash = bytes.windows(64).position(|w| w == [b'x'; 64]).unwrap();
    bytes[at_hash..at_hash + 64].copy_from_slice(&hash);
    let mut conn = redis().await;
    let _: () = conn.set_ex(&key, bytes, 120).await.unwrap();

    let wrong = app.verify(PHONE, "000000").await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(
        wrong.body["attempts_remaining"], 1,
        "its 2 attempts by phone, less one"
    );
    let rewritten = stored(&mut conn, &key).await;
    let v = at(&at(&rewritten, VERIFICATIONS), 0);
    assert_eq!(at(&v, 4).as_u64(), Some(1), "written back as arrays");
    assert_eq!(
        at(&at(&rewritten, 1), 0).as_u64(),
        Some(4),
        "the ceiling's count kept, and this guess added"
    );
    assert_eq!(app.verify(PHONE, "135790").await.status, 200);
}
