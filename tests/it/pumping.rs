//! The pumping breaker end to end: a pumped prefix is blocked at its floor
//! with a decision record (422 `destination_blocked`, `/v2` 60410, an
//! event), approvals make room, monitor mode sends and tells, the safe list
//! and test numbers pass, and the CLI lists and lifts blocks, on memory
//! and on Redis.

use otpd::config::{Config, RuleMode, Secret};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::events::{wait_for, with_events};
use crate::helpers::{memory_config, redis_config, spawn_app, TestApp};
use crate::sms_vendors::{twilio_created, with_twilio, TWILIO_PATH};

/// The 1k prefix every pumped number here is in.
const PREFIX: &str = "+2348031234";

fn pumped(n: u32) -> String {
    format!("{PREFIX}{n:03}")
}

/// `config` sending through a Twilio that accepts every message: a real
/// vendor, so the breaker enforces by default.
async fn through_twilio(mut config: Config) -> (Config, MockServer) {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(twilio_created("SM0123456789abcdef0123456789abcdef"))
        .mount(&twilio)
        .await;
    config.sms.provider = otpd::config::SmsProvider::Twilio;
    with_twilio(&mut config, &twilio);
    (config, twilio)
}

async fn vendor_sends(twilio: &MockServer) -> usize {
    twilio.received_requests().await.unwrap_or_default().len()
}

pub async fn a_pumped_prefix_is_blocked_at_its_floor(config: Config) {
    let (config, twilio) = through_twilio(config).await;
    let app = spawn_app(config).await;
    for n in 0..10 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "send {n}");
    }
    let refused = app.send(&pumped(10)).await;
    refused.assert_problem(422, "destination_blocked");
    let block = &refused.body["block"];
    assert_eq!(block["group"], PREFIX);
    assert_eq!(block["level"], "prefix");
    assert_eq!(block["window"], "hour");
    assert_eq!(
        (block["sent"].as_u64(), block["approved"].as_u64()),
        (Some(11), Some(0))
    );
    assert_eq!(
        (block["threshold"].as_u64(), block["strikes"].as_u64()),
        (Some(10), Some(1))
    );
    assert!(
        block["until"].as_str().is_some_and(|u| u.ends_with('Z')),
        "{block}"
    );
    let hours = refused.body["retry_after"].as_u64().unwrap();
    assert!((11 * 3600..=12 * 3600).contains(&hours), "{hours}");
    // Every later send to the prefix is refused and reaches no vendor.
    for n in 11..40 {
        app.send(&pumped(n))
            .await
            .assert_problem(422, "destination_blocked");
    }
    assert_eq!(vendor_sends(&twilio).await, 10, "ten SMS, then none");
    // Another prefix of the country, and another country, still go.
    assert_eq!(app.send("+2348039876000").await.status, 202);
    assert_eq!(app.send("+14155552671").await.status, 202);
    assert_eq!(vendor_sends(&twilio).await, 12);
}

#[tokio::test]
async fn a_pumped_prefix_is_blocked_at_its_floor_on_memory() {
    a_pumped_prefix_is_blocked_at_its_floor(memory_config()).await;
}

#[tokio::test]
async fn a_pumped_prefix_is_blocked_at_its_floor_on_redis() {
    a_pumped_prefix_is_blocked_at_its_floor(redis_config()).await;
}

/// Console, but enforcing: codes can be read and approved.
fn enforcing(mut config: Config) -> Config {
    config.fraud.country_mode = RuleMode::Enforce;
    config.fraud.prefix_mode = RuleMode::Enforce;
    config
}

async fn approve(app: &TestApp, phone: &str) {
    assert_eq!(app.send(phone).await.status, 202);
    let code = app.outbox.last_code(phone);
    assert_eq!(app.verify(phone, &code).await.status, 200);
}

#[tokio::test]
async fn approvals_make_room_one_for_one() {
    approvals_make_room_on(redis_config()).await;
}

pub async fn approvals_make_room_on(config: Config) {
    let app = spawn_app(enforcing(config)).await;
    for n in 0..15 {
        approve(&app, &pumped(n)).await;
    }
    for n in 15..30 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "unverified send {n}");
    }
    let refused = app.send(&pumped(30)).await;
    refused.assert_problem(422, "destination_blocked");
    assert_eq!(refused.body["block"]["approved"], 15);
    assert_eq!(refused.body["block"]["threshold"], 15);
}

#[tokio::test]
async fn monitor_mode_sends_and_tells_once() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    // The console alone: the breaker's rules default to monitor.
    let app = spawn_app(with_events(memory_config(), &endpoint, &[1])).await;
    for n in 0..15 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "send {n}");
    }
    let got = wait_for(&endpoint, &["fraud.would_block"]).await;
    let told: Vec<&Value> = got.iter().filter(|e| e["type"] == "fraud.would_block").collect();
    assert_eq!(told.len(), 1, "once per block, not per send: {told:?}");
    let data = &told[0]["data"];
    assert_eq!(data["phone"], pumped(10), "the send that tripped it");
    assert_eq!(data["block"]["group"], PREFIX);
    assert_eq!(data["block"]["enforced"], false);
    assert_eq!(data["block"]["sent"], 11);
    assert!(got.iter().all(|e| e["type"] != "fraud.blocked"));
}

#[tokio::test]
async fn an_enforced_rule_holds_whatever_the_other_rules_mode() {
    // The prefix watched, the country enforced: the prefix's would-be
    // block must not stop the country counting.
    let mut config = enforcing(memory_config());
    config.fraud.prefix_mode = RuleMode::Monitor;
    let app = spawn_app(config).await;
    for n in 0..30 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "send {n}");
    }
    let refused = app.send(&pumped(30)).await;
    refused.assert_problem(422, "destination_blocked");
    assert_eq!(refused.body["block"]["group"], "NG");
    // The country watched, the prefix enforced.
    let mut config = enforcing(memory_config());
    config.fraud.country_mode = RuleMode::Monitor;
    let app = spawn_app(config).await;
    for n in 0..40 {
        let phone = format!("+23480{:05}000", 33000 + n);
        assert_eq!(app.send(&phone).await.status, 202, "spread send {n}");
    }
    for n in 0..10 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "send {n}");
    }
    let refused = app.send(&pumped(10)).await;
    refused.assert_problem(422, "destination_blocked");
    assert_eq!(refused.body["block"]["group"], PREFIX);
}

/// From the black-box review: sends other rules refuse, or a block holds
/// back, count for nothing, however many arrive at once.
#[tokio::test]
async fn refused_sends_never_trip_a_block() {
    let mut config = enforcing(redis_config());
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    config.limits.sends_per_ip = 3;
    config.limits.resend_after_secs = 30;
    let app = spawn_app(config).await;
    // A client past its quota floods a prefix: 429s, nothing counted.
    for n in 0..3 {
        assert_eq!(send_from(&app, &pumped(n), "198.51.100.1").await.status, 202);
    }
    let flood: Vec<String> = (100..160).map(pumped).collect();
    let answers =
        futures_util::future::join_all(flood.iter().map(|p| send_from(&app, p, "198.51.100.1"))).await;
    assert!(answers.iter().all(|a| a.status == 429));
    // One phone, sixty at once: the cooldown admits one.
    let clients: Vec<String> = (0..60).map(|i| format!("2001:db8:{i:x}::1")).collect();
    let answers =
        futures_util::future::join_all(clients.iter().map(|c| send_from(&app, "+2348031234900", c))).await;
    assert_eq!(answers.iter().filter(|a| a.status == 202).count(), 1);
    // So the prefix has had 4 sends: 6 more go, the 11th is refused.
    for n in 0..6 {
        let reply = send_from(&app, &pumped(200 + n), &format!("203.0.113.{n}")).await;
        assert_eq!(reply.status, 202, "send {n}: {}", reply.body);
    }
    let refused = send_from(&app, &pumped(210), "203.0.113.99").await;
    refused.assert_problem(422, "destination_blocked");
    assert_eq!(refused.body["block"]["sent"], 11);
    // A flood at the blocked prefix adds nothing to its country: 20 more
    // sends to other prefixes go (the country's 30 an hour, 10 used).
    let flood: Vec<(String, String)> = (0..100)
        .map(|i| (pumped(300 + i), format!("2001:db8:1:{i:x}::1")))
        .collect();
    let answers = futures_util::future::join_all(flood.iter().map(|(p, c)| send_from(&app, p, c))).await;
    assert!(answers.iter().all(|a| a.status == 422));
    for n in 0..20 {
        let phone = format!("+23480{:05}000", 33000 + n);
        let reply = send_from(&app, &phone, &format!("2001:db8:2:{n:x}::1")).await;
        assert_eq!(reply.status, 202, "other prefix {n}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_burst_that_trips_at_once_tells_once() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    let app = spawn_app(with_events(redis_config(), &endpoint, &[1])).await;
    // 25 at once: 15 of them over the prefix's floor, the country under its own.
    let phones: Vec<String> = (0..25).map(pumped).collect();
    let sends = futures_util::future::join_all(phones.iter().map(|p| app.send(p))).await;
    assert!(sends.iter().all(|s| s.status == 202), "monitor mode sends");
    wait_for(&endpoint, &["fraud.would_block"]).await;
    // Time for any second one to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let told = crate::events::received(&endpoint)
        .await
        .iter()
        .filter(|e| e["type"] == "fraud.would_block")
        .count();
    assert_eq!(told, 1);
}

#[tokio::test]
async fn an_enforced_block_is_an_event() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    let app = spawn_app(with_events(enforcing(memory_config()), &endpoint, &[1])).await;
    for n in 0..11 {
        app.send(&pumped(n)).await;
    }
    let got = wait_for(&endpoint, &["fraud.blocked"]).await;
    let blocked = got.iter().find(|e| e["type"] == "fraud.blocked").unwrap();
    assert_eq!(blocked["data"]["block"]["enforced"], true);
    assert_eq!(blocked["data"]["block"]["strikes"], 1);
    assert_eq!(blocked["data"]["country"], "NG");
}

#[tokio::test]
async fn safe_numbers_and_test_numbers_are_never_blocked() {
    let mut config = enforcing(memory_config());
    config.fraud.safe = vec![PREFIX.into()];
    let tests = |n: u32| format!("+2348035550{n:03}");
    config.otp.test_numbers = (0..15).map(|n| (tests(n), Secret::new("424242"))).collect();
    let app = spawn_app(config).await;
    for n in 0..30 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "safe send {n}");
    }
    for n in 0..15 {
        assert_eq!(app.send(&tests(n)).await.status, 202, "test number {n}");
    }
    // Neither counted for the country either: its floor of 30 is untouched.
    for n in 0..30 {
        let status = app
            .send(&format!("+23480{:08}", 40_000_000 + n * 1000))
            .await
            .status;
        assert_eq!(status, 202, "send {n} to other prefixes");
    }
    app.send("+2348049999000")
        .await
        .assert_problem(422, "destination_blocked");
}

#[tokio::test]
async fn the_twilio_surface_answers_60410() {
    let app = spawn_app(crate::twilio_verify::with_twilio(enforcing(memory_config()))).await;
    let create = |to: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!(
                    "/v2/Services/{}/Verifications",
                    crate::twilio_verify::SERVICE
                )))
                .basic_auth(crate::twilio_verify::ACCOUNT, Some(crate::twilio_verify::TOKEN))
                .form(&[("To", to.as_str()), ("Channel", "sms")])
                .send()
                .await
                .unwrap()
        }
    };
    for n in 0..10 {
        assert_eq!(create(pumped(n)).await.status(), 201);
    }
    let refused = create(pumped(10)).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 60410, "{body}");
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/60410");
}

/// A send from `client` (behind the trusted proxy).
async fn send_from(app: &TestApp, phone: &str, client: &str) -> crate::helpers::Reply {
    app.post_json_with(
        "/v1/otp",
        serde_json::json!({"phone": phone}),
        &[("x-forwarded-for", client)],
    )
    .await
}

#[tokio::test]
async fn a_client_may_send_to_three_countries_a_day() {
    let mut config = enforcing(redis_config());
    config.fraud.client_mode = RuleMode::Enforce;
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_app(config).await;
    let walker = "198.51.100.7";
    for phone in ["+14155552671", "+442079460958", "+33612345678"] {
        assert_eq!(send_from(&app, phone, walker).await.status, 202, "{phone}");
    }
    let fourth = send_from(&app, "+819012345678", walker).await;
    fourth.assert_problem(429, "country_quota_exceeded");
    assert!(fourth.retry_after.unwrap() > 86_000, "the day's rest");
    // Its own countries still go; a refused one was not counted...
    assert_eq!(send_from(&app, "+14155552672", walker).await.status, 202);
    send_from(&app, "+919876543210", walker)
        .await
        .assert_problem(429, "country_quota_exceeded");
    // ...and another client has countries of its own.
    assert_eq!(send_from(&app, "+819012345678", "198.51.100.8").await.status, 202);
    // In monitor mode the fourth goes (and is logged).
    let mut config = memory_config();
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_app(config).await;
    for phone in ["+14155552671", "+442079460958", "+33612345678", "+819012345678"] {
        assert_eq!(send_from(&app, phone, walker).await.status, 202, "{phone}");
    }
}

/// From the second black-box review: concurrent sends to new countries
/// all see them past the share, not only the one that added each.
#[tokio::test]
async fn concurrent_sends_to_new_countries_keep_a_client_to_its_share() {
    let mut config = enforcing(redis_config());
    config.fraud.client_mode = RuleMode::Enforce;
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_app(config).await;
    let walker = "198.51.100.9";
    for phone in ["+14155552671", "+442079460958", "+33612345678"] {
        assert_eq!(send_from(&app, phone, walker).await.status, 202, "{phone}");
    }
    // Sixteen at once to one new country, then pairs to four more.
    let japan: Vec<String> = (0..16).map(|n| format!("+8190{:04}5678", 1000 + n)).collect();
    let more = [
        "+919876543210",
        "+919876543211",
        "+4915112345678",
        "+4915112345679",
    ];
    let phones: Vec<&str> = japan.iter().map(String::as_str).chain(more).collect();
    let answers = futures_util::future::join_all(phones.iter().map(|p| send_from(&app, p, walker))).await;
    for (phone, answer) in phones.iter().zip(&answers) {
        assert_eq!(answer.status, 429, "{phone}: {}", answer.body);
    }
    // Its own three still go.
    assert_eq!(send_from(&app, "+14155552672", walker).await.status, 202);
}

/// From the second black-box review: a burst of sends a country's block
/// refuses trips nothing of its own, so when the country's block is lifted
/// the range's real users are not held by a block of their prefix's.
#[tokio::test]
async fn a_refused_burst_never_blocks_a_prefix_of_its_own() {
    let config = enforcing(redis_config());
    let env = [
        ("OTPD_STORE__URL", config.store.url.expose().to_owned()),
        ("OTPD_STORE__KEY_PREFIX", config.store.key_prefix.clone()),
        ("OTPD_OTP__HASH_KEYS", crate::helpers::HASH_KEY.to_owned()),
    ];
    let app = spawn_app(config).await;
    // A real user in the prefix approves; the country is pumped past its floor.
    approve(&app, &pumped(0)).await;
    for n in 0..30 {
        let phone = format!("+23480{:05}000", 34000 + n);
        assert_eq!(app.send(&phone).await.status, 202, "pumped {n}");
    }
    app.send("+2348034999000")
        .await
        .assert_problem(422, "destination_blocked");
    // Eighty at once into the real user's prefix: past its one approval's
    // room (one unverified code), all refused by the country.
    let burst: Vec<String> = (100..180).map(pumped).collect();
    let answers = futures_util::future::join_all(burst.iter().map(|p| app.send(p))).await;
    let refused = answers
        .iter()
        .filter(|a| a.status == 422 && a.body["block"]["group"] == "NG")
        .count();
    assert!(refused >= 79, "{refused}");
    let (ok, stdout, stderr) = cli(&["fraud", "status"], &env);
    assert!(ok, "{stderr}");
    assert!(
        !stdout.contains(PREFIX),
        "the prefix has no block of its own: {stdout}"
    );
    let (ok, _, stderr) = cli(&["fraud", "unblock", "ng"], &env);
    assert!(ok, "{stderr}");
    approve(&app, &pumped(1)).await;
}

#[tokio::test]
async fn bad_breaker_settings_stop_the_start_naming_them() {
    type Change = fn(&mut Config);
    let cases: [(Change, &str); 9] = [
        (|c| c.fraud.safe = vec!["+0123".into()], "fraud.safe"),
        (|c| c.fraud.safe = vec![String::new()], "fraud.safe"),
        (|c| c.fraud.prefix_day_floor = 5, "fraud.prefix_day_floor"),
        (|c| c.fraud.countries_per_client = 0, "fraud.countries_per_client"),
        (|c| c.fraud.prefix_digits = 0, "fraud.prefix_digits"),
        (
            |c| c.fraud.unverified_per_approved = -1.0,
            "fraud.unverified_per_approved",
        ),
        (|c| c.fraud.block_hours = 0, "fraud.block_hours"),
        (|c| c.fraud.prefix_hour_floor = 0, "fraud.prefix_hour_floor"),
        (|c| c.fraud.safe = vec!["2348031234".into()], "fraud.safe"),
    ];
    for (change, key) in cases {
        let mut config = memory_config();
        change(&mut config);
        let err = crate::helpers::refused_at_start(&config).await;
        assert_eq!(err.key, key, "{err}");
    }
}

#[tokio::test]
async fn the_cli_lists_a_block_and_lifts_it() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let config = with_events(enforcing(redis_config()), &hooks, &[1]);
    // The CLI keeps its events in the same outbox, which the app delivers.
    let env = [
        ("OTPD_STORE__URL", config.store.url.expose().to_owned()),
        ("OTPD_STORE__KEY_PREFIX", config.store.key_prefix.clone()),
        ("OTPD_OTP__HASH_KEYS", crate::helpers::HASH_KEY.to_owned()),
        (
            "OTPD_EVENTS__ENDPOINTS__APP__URL",
            format!("{}/hooks/otpd", hooks.uri()),
        ),
        (
            "OTPD_EVENTS__ENDPOINTS__APP__SECRETS",
            crate::events::SECRET.to_owned(),
        ),
    ];
    let app = spawn_app(config).await;
    for n in 0..11 {
        app.send(&pumped(n)).await;
    }
    app.send(&pumped(11))
        .await
        .assert_problem(422, "destination_blocked");

    let (ok, stdout, stderr) = cli(&["fraud", "status"], &env);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(PREFIX) && stdout.contains("prefix") && stdout.contains("blocked until"),
        "{stdout}"
    );
    assert!(
        stdout.contains("11 sent, 0 approved in the hour, over 10; now 10/0 an hour"),
        "{stdout}"
    );

    let (ok, stdout, stderr) = cli(&["fraud", "unblock", PREFIX], &env);
    assert!(ok && stdout.contains("unblocked"), "{stdout}{stderr}");
    let events = wait_for(&hooks, &["fraud.blocked", "fraud.unblocked"]).await;
    let unblocked: Vec<_> = events.iter().filter(|e| e["type"] == "fraud.unblocked").collect();
    assert_eq!(unblocked.len(), 1, "{events:?}");
    assert_eq!(
        unblocked[0]["data"],
        serde_json::json!({"country": "NG", "group": PREFIX, "level": "prefix"})
    );
    // Judged afresh: the prefix has its floor again.
    for n in 12..22 {
        assert_eq!(app.send(&pumped(n)).await.status, 202, "send {n}");
    }
    app.send(&pumped(22))
        .await
        .assert_problem(422, "destination_blocked");

    let (ok, stdout, _) = cli(&["fraud", "unblock", "+999"], &env);
    assert!(!ok, "{stdout}");
    let (ok, _, stderr) = cli(&["fraud", "status"], &[]);
    assert!(!ok && stderr.contains("memory store"), "{stderr}");
}

fn cli(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_otpd"));
    command.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
