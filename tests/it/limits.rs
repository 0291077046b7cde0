//! Abuse protection over HTTP: every limit, its Retry-After, and that limits
//! hold across instances sharing one Redis.

use std::sync::Arc;

use otpd::config::{Config, Secret};
use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{memory_config, no_limits, redis_config, redis_url, spawn_app, wrong, TestApp};

const PHONE: &str = "+14155552671";

fn phone(n: u32) -> String {
    format!("+1415555{n:04}")
}

async fn send_from(app: &TestApp, phone: &str, client: &str) -> crate::helpers::Reply {
    app.post_json_with(
        "/v1/otp",
        json!({ "phone": phone }),
        &[("x-forwarded-for", client)],
    )
    .await
}

#[tokio::test]
async fn a_resend_inside_the_cooldown_is_429_and_keeps_the_code() {
    let mut config = memory_config();
    config.limits.resend_after_secs = 30;
    let app = spawn_app(config).await;
    let first = app.send(PHONE).await;
    assert_eq!(first.status, 202);
    assert_eq!(first.body["resend_after"], 30);
    let code = app.outbox.last_code(PHONE);

    let again = app.send(PHONE).await;
    again.assert_problem(429, "resend_too_soon");
    assert!((1..=30).contains(&again.retry_after.unwrap()));
    assert_eq!(app.outbox.lines().len(), 1, "no second SMS");
    // The refused request left the pending code and its attempts alone.
    assert_eq!(
        app.get(&format!("/v1/otp/{PHONE}")).await.body["attempts_remaining"],
        5
    );
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn sends_per_phone_are_capped_per_window() {
    let mut config = memory_config();
    config.limits.sends_per_phone = 3;
    let app = spawn_app(config).await;
    for _ in 0..3 {
        assert_eq!(app.send(PHONE).await.status, 202);
    }
    let capped = app.send(PHONE).await;
    capped.assert_problem(429, "send_quota_exceeded");
    assert!(
        (590..=600).contains(&capped.retry_after.unwrap()),
        "{:?}",
        capped.retry_after
    );
    assert_eq!(app.outbox.lines().len(), 3);
    // Another phone is unaffected.
    assert_eq!(app.send(&phone(1)).await.status, 202);
}

#[tokio::test]
async fn sends_per_client_are_capped_across_phones() {
    let mut config = memory_config();
    config.limits.sends_per_ip = 2;
    let app = spawn_app(config).await;
    assert_eq!(app.send(&phone(1)).await.status, 202);
    assert_eq!(app.send(&phone(2)).await.status, 202);
    let capped = app.send(&phone(3)).await;
    capped.assert_problem(429, "ip_quota_exceeded");
    assert!((590..=600).contains(&capped.retry_after.unwrap()));
    assert_eq!(app.outbox.lines().len(), 2);
}

async fn verifies_capped_at_three(config: Config) {
    let mut config = config;
    config.limits.verifies_per_ip = 3;
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    for n in 1..=3 {
        app.verify(&phone(n), "123456")
            .await
            .assert_problem(404, "not_found");
    }
    for _ in 0..3 {
        let capped = app.verify(PHONE, &code).await;
        capped.assert_problem(429, "ip_quota_exceeded");
        assert!((1..=60).contains(&capped.retry_after.unwrap()));
    }
    // The capped requests used none of the code's attempts.
    assert_eq!(
        app.get(&format!("/v1/otp/{PHONE}")).await.body["attempts_remaining"],
        5
    );
}

#[tokio::test]
async fn verifies_per_client_are_capped_across_phones() {
    verifies_capped_at_three(memory_config()).await;
}

#[tokio::test]
async fn verifies_per_client_are_capped_across_phones_in_redis() {
    let config = redis_config();
    let key = format!("{}ip:{{127.0.0.1/32}}:verifies", config.store.key_prefix);
    verifies_capped_at_three(config).await;
    let mut conn = redis_conn().await;
    let taken: i64 = conn.get(key).await.unwrap();
    assert_eq!(taken, 3, "a refused verify gives back what it took");
}

#[tokio::test]
async fn the_global_budget_caps_every_client() {
    let mut config = memory_config();
    config.limits.sends_per_hour = 2;
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_app(config).await;
    assert_eq!(send_from(&app, &phone(1), "203.0.113.1").await.status, 202);
    assert_eq!(send_from(&app, &phone(2), "203.0.113.2").await.status, 202);
    let capped = send_from(&app, &phone(3), "203.0.113.3").await;
    capped.assert_problem(429, "global_quota_exceeded");
    assert!((3590..=3600).contains(&capped.retry_after.unwrap()));
}

async fn refused_sends_use_up_nothing(config: Config) {
    let mut config = config;
    config.limits.resend_after_secs = 30;
    config.limits.sends_per_phone = 5;
    config.limits.sends_per_ip = 3;
    config.limits.sends_per_hour = 2;
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    for _ in 0..5 {
        app.send(PHONE).await.assert_problem(429, "resend_too_soon");
    }
    assert_eq!(
        app.send(&phone(1)).await.status,
        202,
        "the cooldown refusals were given back"
    );
    // The service's budget refuses after the client's quota let it through:
    // the client's is given back too.
    for n in 2..5 {
        app.send(&phone(n))
            .await
            .assert_problem(429, "global_quota_exceeded");
    }
}

#[tokio::test]
async fn a_refused_send_does_not_use_up_the_client_or_global_budget() {
    refused_sends_use_up_nothing(memory_config()).await;
}

#[tokio::test]
async fn a_refused_send_does_not_use_up_the_client_or_global_budget_in_redis() {
    let config = redis_config();
    let prefix = config.store.key_prefix.clone();
    refused_sends_use_up_nothing(config).await;
    let mut conn = redis_conn().await;
    // Two sends went out; each counter holds those two and nothing else.
    let client: i64 = conn
        .get(format!("{prefix}ip:{{127.0.0.1/32}}:sends"))
        .await
        .unwrap();
    let global: i64 = conn.get(format!("{prefix}{{global}}:sends")).await.unwrap();
    assert_eq!((client, global), (2, 2));
    // The phone's tally, beside its verification: one send.
    let state: Vec<u8> = conn.get(format!("{prefix}{{{PHONE}}}")).await.unwrap();
    let state = rmpv::decode::read_value(&mut state.as_slice()).unwrap();
    // record.lua: the state's first place is the tally, the tally's its sends.
    let first = |array: &rmpv::Value| array.as_array().and_then(|a| a.first()).cloned();
    let sends = first(&first(&state).unwrap());
    assert_eq!(
        sends.and_then(|s| s.as_u64()),
        Some(1),
        "the phone's tally holds its one send"
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let mut trusted = memory_config();
    trusted.limits.sends_per_ip = 1;
    trusted.http.trusted_proxies = vec!["127.0.0.0/8".into()];
    let app = spawn_app(trusted).await;
    assert_eq!(send_from(&app, &phone(1), "203.0.113.1").await.status, 202);
    send_from(&app, &phone(2), "203.0.113.1")
        .await
        .assert_problem(429, "ip_quota_exceeded");
    assert_eq!(send_from(&app, &phone(3), "203.0.113.2").await.status, 202);
    // A client can't escape by prepending a fake hop: the proxy's view counts.
    send_from(&app, &phone(4), "198.51.100.1, 203.0.113.2")
        .await
        .assert_problem(429, "ip_quota_exceeded");

    let mut untrusted = memory_config();
    untrusted.limits.sends_per_ip = 1;
    let app = spawn_app(untrusted).await;
    assert_eq!(send_from(&app, &phone(1), "203.0.113.1").await.status, 202);
    send_from(&app, &phone(2), "203.0.113.2")
        .await
        .assert_problem(429, "ip_quota_exceeded");
}

#[tokio::test]
async fn country_and_number_type_rules() {
    let mut only_us = memory_config();
    only_us.sms.allowed_countries = vec!["US".into()];
    let app = spawn_app(only_us).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let gb = app.send("+44 7400 123456").await;
    gb.assert_problem(422, "destination_not_allowed");
    assert!(gb.body["detail"].as_str().unwrap().contains("GB"));

    let mut no_us = memory_config();
    no_us.sms.denied_countries = vec!["us".into()];
    let app = spawn_app(no_us).await;
    app.send(PHONE)
        .await
        .assert_problem(422, "destination_not_allowed");
    assert_eq!(app.send("+447400123456").await.status, 202);

    let app = spawn_app(memory_config()).await;
    app.send("+1 900 234 5678")
        .await
        .assert_problem(422, "destination_not_allowed");
    assert!(app.outbox.lines().is_empty(), "no SMS to a premium-rate number");
}

#[tokio::test]
async fn limits_hold_on_the_drop_in_routes() {
    let mut config = memory_config();
    config.limits.resend_after_secs = 30;
    let app = spawn_app(config).await;
    let form = [("phone_number", "14155552671")];
    assert_eq!(app.post_form("/generate_otp", &form).await.status, 200);
    app.post_form("/generate_otp", &form)
        .await
        .assert_problem(429, "resend_too_soon");
    assert_eq!(app.outbox.lines().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_sends_to_one_phone_give_one_sms() {
    let mut config = redis_config();
    config.limits = otpd::config::LimitsConfig::default();
    config.limits.sends_per_ip = 0;
    let app = Arc::new(spawn_app(config).await);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.send(PHONE).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 99);
    assert_eq!(app.outbox.lines().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_wrong_verifies_never_pass_max_attempts() {
    let app = Arc::new(spawn_app(redis_config()).await);
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (app, guess) = (Arc::clone(&app), wrong(&code));
            tokio::spawn(async move { app.verify(PHONE, &guess).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 195);
    app.verify(PHONE, &code)
        .await
        .assert_problem(429, "max_attempts_reached");
}

/// Two instances on one Redis: same prefix, same hash key.
async fn two_instances(mut config: Config) -> (TestApp, TestApp) {
    config.store.key_prefix = crate::helpers::unique_prefix();
    let a = spawn_app(config.clone()).await;
    let b = spawn_app(config).await;
    (a, b)
}

#[tokio::test]
async fn two_instances_share_codes_attempts_and_every_counter() {
    let mut config = redis_config();
    config.limits.resend_after_secs = 30;
    config.limits.sends_per_phone = 5;
    config.limits.sends_per_ip = 2;
    config.limits.verifies_per_ip = 4;
    config.limits.sends_per_hour = 100;
    let (a, b) = two_instances(config).await;

    assert_eq!(a.send(PHONE).await.status, 202);
    let code = a.outbox.last_code(PHONE);
    b.send(PHONE).await.assert_problem(429, "resend_too_soon");

    // Attempts: two wrong on A, one on B; B sees one left of... five minus three.
    a.verify(PHONE, &wrong(&code))
        .await
        .assert_problem(422, "code_mismatch");
    a.verify(PHONE, &wrong(&code))
        .await
        .assert_problem(422, "code_mismatch");
    let third = b.verify(PHONE, &wrong(&code)).await;
    assert_eq!(third.body["attempts_remaining"], 2);
    // A code sent through A verifies through B, once.
    assert_eq!(b.verify(PHONE, &code).await.status, 200);
    // That was the fourth verify from this client: the fifth is over the quota.
    a.verify(PHONE, &code)
        .await
        .assert_problem(429, "ip_quota_exceeded");

    // The client quota is shared too: one more send on B, then none on A.
    assert_eq!(b.send(&phone(1)).await.status, 202);
    a.send(&phone(2)).await.assert_problem(429, "ip_quota_exceeded");
}

#[tokio::test]
async fn counters_expire_by_themselves_in_redis() {
    let mut config = redis_config();
    config.limits = otpd::config::LimitsConfig::default();
    config.limits.sends_per_hour = 1000;
    let prefix = config.store.key_prefix.clone();
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    app.verify(PHONE, "000000").await;

    let mut conn = redis_conn().await;
    let expectations = [
        // The phone's state lives as long as its ceiling's window, from the wrong code.
        (format!("{prefix}{{{PHONE}}}"), 3_600_000),
        (format!("{prefix}ip:{{127.0.0.1/32}}:sends"), 600_000),
        (format!("{prefix}ip:{{127.0.0.1/32}}:verifies"), 60_000),
        (format!("{prefix}ip:{{127.0.0.1/32}}:guesses"), 86_400_000),
        (format!("{prefix}{{global}}:sends"), 3_600_000),
    ];
    for (key, window_ms) in expectations {
        let ttl: i64 = conn.pttl(&key).await.unwrap();
        assert!(ttl > window_ms - 5_000 && ttl <= window_ms, "{key}: pttl {ttl}");
    }
}

#[tokio::test]
async fn the_defaults_are_the_documented_ones() {
    let limits = otpd::config::LimitsConfig::default();
    assert_eq!(
        (
            limits.resend_after_secs,
            limits.sends_per_phone,
            limits.sends_window_secs,
            limits.sends_per_ip,
            limits.verifies_per_ip,
            limits.lookups_per_ip,
            limits.sends_per_hour
        ),
        (30, 5, 600, 20, 60, 60, 1000)
    );
    assert_eq!(
        (
            limits.free_guesses,
            limits.guess_delay_secs,
            limits.max_guess_delay_secs,
            limits.max_consecutive_guesses,
            limits.forget_guesses_after_secs,
            limits.ipv4_prefix,
            limits.ipv6_prefix
        ),
        (10, 30, 3600, 100, 86_400, 32, 64)
    );
    assert_eq!(
        (limits.wrong_codes_per_phone, limits.wrong_codes_window_secs),
        (20, 3600)
    );
    let off = no_limits();
    assert_eq!((off.resend_after_secs, off.sends_per_phone), (0, 0));
}

fn with_keys(keys: &[&str]) -> Config {
    let mut config = memory_config();
    config.auth.api_keys = keys.iter().map(|k| Secret::new(*k)).collect();
    config
}

#[tokio::test]
async fn api_keys_guard_every_api_route() {
    use sha2::{Digest, Sha256};
    let hashed = format!("sha256:{}", hex::encode(Sha256::digest(b"second-key-0123456789")));
    let app = spawn_app(with_keys(&["first-key-0123456789", &hashed])).await;
    let body = json!({ "phone": PHONE });

    app.post_json("/v1/otp", body.clone())
        .await
        .assert_problem(401, "unauthorized");
    app.post_json_with(
        "/v1/otp",
        body.clone(),
        &[("authorization", "Bearer wrong-key-0123456789")],
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post_json_with(
        "/v1/otp",
        body.clone(),
        &[("authorization", "Basic Zmlyc3Qta2V5")],
    )
    .await
    .assert_problem(401, "unauthorized");
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(401, "unauthorized");
    app.post_form("/generate_otp", &[("phone_number", "14155552671")])
        .await
        .assert_problem(401, "unauthorized");
    app.post_raw("/v1/otp/verify", "application/json", "{")
        .await
        .assert_problem(401, "unauthorized");
    assert!(app.outbox.lines().is_empty());

    let bearer = app
        .post_json_with(
            "/v1/otp",
            body.clone(),
            &[("authorization", "Bearer first-key-0123456789")],
        )
        .await;
    assert_eq!(bearer.status, 202);
    let header = app
        .post_json_with(
            "/v1/otp",
            json!({ "phone": phone(1) }),
            &[("x-api-key", "second-key-0123456789")],
        )
        .await;
    assert_eq!(header.status, 202, "the sha256: entry admits its key");

    for open in ["/docs", "/openapi.json", "/openapi.yaml"] {
        assert_eq!(app.get(open).await.status, 200, "{open}");
    }
}

#[test]
fn the_spec_offers_an_authorize_button() {
    let spec: serde_json::Value = serde_json::from_str(&otpd::adapters::http::spec().spec()).unwrap();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["BearerKey"]["scheme"], "bearer");
    assert_eq!(schemes["HeaderKey"]["name"], "X-API-Key");
    for (route, method) in [
        ("/v1/otp", "post"),
        ("/v1/otp/verify", "post"),
        ("/v1/otp/{phone}", "get"),
        ("/generate_otp", "post"),
        ("/verify_otp", "post"),
        ("/validate_otp", "post"),
    ] {
        let security = spec["paths"][route][method]["security"].to_string();
        assert!(
            security.contains("BearerKey") && security.contains("HeaderKey"),
            "{route}: {security}"
        );
    }
}

#[tokio::test]
async fn two_instances_share_the_phone_quota_and_the_global_budget() {
    let mut config = redis_config();
    config.limits.sends_per_phone = 1;
    config.limits.sends_per_hour = 3;
    let (a, b) = two_instances(config).await;
    assert_eq!(a.send(&phone(1)).await.status, 202);
    b.send(&phone(1)).await.assert_problem(429, "send_quota_exceeded");
    assert_eq!(b.send(&phone(2)).await.status, 202);
    assert_eq!(a.send(&phone(3)).await.status, 202);
    b.send(&phone(4))
        .await
        .assert_problem(429, "global_quota_exceeded");
    a.send(&phone(5))
        .await
        .assert_problem(429, "global_quota_exceeded");
}

/// A connection to the tests' Redis, to read what the store wrote.
async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
