//! Lifecycle events end to end: each type reaches a wiremock endpoint signed
//! as Standard Webhooks says (checked here with an HMAC written out
//! independently), on memory and on Redis; retries after a 5xx; 410
//! disables; dead letters; a down endpoint costs the API nothing; no code,
//! hash or secret in any payload.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use otpd::config::{Config, EventEndpoint, Secret};
use serde_json::Value;
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{memory_config, redis_config, spawn_app, wrong, TestApp};

const PHONE: &str = "+14155552671";
/// 32 bytes, base64: a secret as an operator makes one.
pub const SECRET: &str = "whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=";
const OLD_SECRET: &str = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Events to `endpoint`, retried after 1 s once, then dead.
pub fn with_events(mut config: Config, endpoint: &MockServer, retries: &[u64]) -> Config {
    config.events.endpoints.insert(
        "app".into(),
        EventEndpoint {
            url: format!("{}/hooks/otpd", endpoint.uri()),
            secrets: vec![Secret::new(SECRET), Secret::new(OLD_SECRET)],
            types: Vec::new(),
        },
    );
    config.events.retry_schedule_secs = retries.to_vec();
    config.events.timeout_ms = 1000;
    config.otp.max_attempts = 2;
    config
}

/// Checks a request as a Standard Webhooks receiver would, with each of the
/// endpoint's secrets; returns the payload.
pub fn verified(request: &Request) -> Value {
    let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap().to_owned();
    let (id, timestamp, signatures) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    assert_eq!(header("content-type"), "application/json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sent: u64 = timestamp.parse().unwrap();
    assert!(now.abs_diff(sent) < 60, "a fresh timestamp");
    // One signature per configured secret: the current one, then the old.
    let secrets = [SECRET, OLD_SECRET];
    let count = signatures.split(' ').count();
    assert!((1..=2).contains(&count), "{signatures}");
    for secret in &secrets[..count] {
        let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        assert!(
            signatures.split(' ').any(|s| s == expected),
            "signed with {secret}: {signatures}"
        );
    }
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["id"], id, "the payload's id is the webhook-id");
    payload
}

/// The payloads received so far, each checked.
pub async fn received(endpoint: &MockServer) -> Vec<Value> {
    endpoint
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(verified)
        .collect()
}

/// Waits until `endpoint` has received `types` (in any order), or fails.
pub async fn wait_for(endpoint: &MockServer, types: &[&str]) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let got = received(endpoint).await;
        let names: Vec<String> = got
            .iter()
            .map(|p| p["type"].as_str().unwrap().to_owned())
            .collect();
        if types
            .iter()
            .all(|t| names.iter().filter(|n| n == t).count() >= types.iter().filter(|x| x == &t).count())
        {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "waited for {types:?}, got {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn accepting() -> MockServer {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    endpoint
}

async fn every_type_arrives_signed(config: Config) {
    let endpoint = accepting().await;
    let app = spawn_app(with_events(config, &endpoint, &[1])).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 422);
    assert_eq!(app.verify(PHONE, &wrong(&code)).await.status, 422);
    assert_eq!(app.send("+14155552672").await.status, 202);
    let other = app.outbox.last_code("+14155552672");
    assert_eq!(app.verify("+14155552672", &other).await.status, 200);

    let payloads = wait_for(
        &endpoint,
        &[
            "verification.created",
            "verification.created",
            "verification.code_sent",
            "verification.code_sent",
            "verification.guess_failed",
            "verification.guess_failed",
            "verification.locked",
            "verification.approved",
        ],
    )
    .await;
    for payload in &payloads {
        let text = payload.to_string();
        assert!(
            !text.contains(&code) && !text.contains(&other),
            "no code in {text}"
        );
        assert!(!text.contains("whsec_"), "no secret in {text}");
        assert!(payload["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let of = |t: &str| payloads.iter().find(|p| p["type"] == t).unwrap().clone();
    let sent = of("verification.code_sent");
    assert_eq!(sent["data"]["provider"], "console");
    assert_eq!(sent["data"]["country"], "US");
    assert!(sent["data"]["message_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(of("verification.locked")["data"]["reason"], "attempts");
    assert_eq!(of("verification.locked")["data"]["phone"], PHONE);
    assert_eq!(of("verification.approved")["data"]["phone"], "+14155552672");
    assert_eq!(of("verification.approved")["data"]["approved_by"], "code");
    let attempts: Vec<u64> = payloads
        .iter()
        .filter(|p| p["type"] == "verification.guess_failed")
        .map(|p| p["data"]["attempts_remaining"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.contains(&1) && attempts.contains(&0));
    let ids: std::collections::BTreeSet<&str> = payloads.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), payloads.len(), "every event its own id");
}

#[tokio::test]
async fn every_type_arrives_signed_on_memory() {
    every_type_arrives_signed(memory_config()).await;
}

#[tokio::test]
async fn every_type_arrives_signed_on_redis() {
    every_type_arrives_signed(redis_config()).await;
}

async fn failing_once_then_ok() -> MockServer {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&endpoint)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&endpoint)
        .await;
    endpoint
}

async fn a_500_is_retried_and_then_settled(config: Config) {
    let endpoint = failing_once_then_ok().await;
    let mut config = with_events(config, &endpoint, &[1, 1]);
    config.events.endpoints.get_mut("app").unwrap().types = vec!["verification.approved".into()];
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    let got = wait_for(&endpoint, &["verification.approved", "verification.approved"]).await;
    assert_eq!(got[0]["id"], got[1]["id"], "the same event, the same webhook-id");
    // Acknowledged on the second try: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(received(&endpoint).await.len(), 2, "delivered twice at most");
}

#[tokio::test]
async fn a_500_is_retried_and_then_settled_on_memory() {
    a_500_is_retried_and_then_settled(memory_config()).await;
}

#[tokio::test]
async fn a_500_is_retried_and_then_settled_on_redis() {
    a_500_is_retried_and_then_settled(redis_config()).await;
}

/// 410 Gone: the endpoint is disabled; what comes for it meanwhile is kept
/// as a dead letter, replayed once the operator enables it again.
async fn gone_disables_the_endpoint(config: Config) -> TestApp {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&endpoint)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&endpoint)
        .await;
    let mut config = with_events(config, &endpoint, &[1]);
    config.events.endpoints.get_mut("app").unwrap().types = vec!["verification.created".into()];
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    wait_for(&endpoint, &["verification.created"]).await;
    app.send("+14155552672").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        received(&endpoint).await.len(),
        1,
        "nothing more to a disabled endpoint"
    );
    app
}

#[tokio::test]
async fn gone_disables_the_endpoint_on_memory() {
    gone_disables_the_endpoint(memory_config()).await;
}

#[tokio::test]
async fn gone_disables_the_endpoint_on_redis() {
    gone_disables_the_endpoint(redis_config()).await;
}

/// An endpoint that never answers costs a send and a verify nothing: they
/// answer long before its delivery times out.
#[tokio::test]
async fn a_hanging_endpoint_never_slows_the_api() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&endpoint)
        .await;
    let mut config = with_events(redis_config(), &endpoint, &[1]);
    config.events.timeout_ms = 20_000;
    let app = spawn_app(config).await;
    for i in 0..20 {
        let phone = format!("+1415555{i:04}");
        let started = Instant::now();
        assert_eq!(app.send(&phone).await.status, 202);
        let code = app.outbox.last_code(&phone);
        assert_eq!(app.verify(&phone, &code).await.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a send and a verify took {:?} while the endpoint hangs for 30 s",
            started.elapsed()
        );
    }
}

/// What an endpoint answers past its status changes nothing: a long body
/// is a delivery all the same (its connection is dropped, the next event
/// gets a new one), and one that answers too late is retried, then kept as
/// a dead letter whose reason says so without the endpoint's URL, which
/// may carry a token of the app's.
#[tokio::test]
async fn a_long_answer_is_delivered_and_a_late_one_dies_without_its_url() {
    let long = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 1 << 20]))
        .mount(&long)
        .await;
    let late = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_secs(3)))
        .mount(&late)
        .await;
    let mut config = with_events(redis_config(), &long, &[1]);
    config.events.timeout_ms = 300;
    config.events.endpoints.get_mut("app").unwrap().types = vec!["verification.created".into()];
    let mut slow = config.events.endpoints["app"].clone();
    slow.url = format!("{}/hooks?token=s3cr3t-of-the-app", late.uri());
    config.events.endpoints.insert("late".into(), slow);
    let app = spawn_app(config.clone()).await;
    for i in 0..3 {
        assert_eq!(app.send(&format!("+1415555260{i}")).await.status, 202);
    }
    let got = wait_for(&long, &["verification.created"; 3]).await;
    assert_eq!(got.len(), 3, "each event once, though no answer's body was read");

    let metrics = std::sync::Arc::new(otpd::adapters::metrics::Metrics::new());
    let (_, queue) = otpd::startup::event_outbox(&config, &metrics).unwrap().unwrap();
    let started = Instant::now();
    let letters = loop {
        let letters = queue.dead_letters().await.unwrap();
        if letters.len() == 3 {
            break letters;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "dead letters: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for letter in letters {
        assert_eq!(letter.job.endpoint, "late");
        assert_eq!(letter.job.attempt, 1, "tried twice: once, then once more");
        assert_eq!(letter.reason, "no answer within 300 ms");
    }
    assert_eq!(
        received(&long).await.len(),
        3,
        "the other endpoint's events stay delivered once"
    );
}

#[tokio::test]
async fn bad_endpoint_settings_stop_the_start_naming_them() {
    let endpoint = accepting().await;
    type Spoil = fn(&mut EventEndpoint);
    let cases: [(Spoil, &str); 7] = [
        (|e| e.url = "ftp://x".into(), "events.endpoints.app.url"),
        // Never sent: each event is signed instead.
        (
            |e| e.url = e.url.replacen("://", "://user:not-whsec@", 1),
            "events.endpoints.app.url",
        ),
        (
            |e| e.url = "http://127.0.0.1:99999/hook".into(),
            "events.endpoints.app.url",
        ),
        // The specification's published example: anyone can sign with it.
        (
            |e| {
                e.secrets
                    .push(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            },
            "events.endpoints.app.secrets[2]",
        ),
        (|e| e.secrets = Vec::new(), "events.endpoints.app.secrets"),
        (
            |e| e.secrets = vec![Secret::new("not-whsec")],
            "events.endpoints.app.secrets[0]",
        ),
        (
            |e| e.types = vec!["verification.nope".into()],
            "events.endpoints.app.types",
        ),
    ];
    for (spoil, key) in cases {
        let mut config = with_events(memory_config(), &endpoint, &[1]);
        spoil(config.events.endpoints.get_mut("app").unwrap());
        let err = otpd::startup::check(
            &config,
            otpd::adapters::sms::ConsoleOut::Writer(Box::new(std::io::sink())),
        )
        .err()
        .unwrap();
        assert_eq!(err.key, key, "{err}");
        assert!(
            !err.to_string().contains("not-whsec"),
            "no secret in the error: {err}"
        );
    }
}

/// A vendor's signed report that moves the SMS forward is an event; a send
/// no vendor took is one too.
async fn delivery_reports_and_failed_sends_are_events(config: Config) {
    let endpoint = accepting().await;
    let vendor = MockServer::start().await;
    let config = with_events(config, &endpoint, &[1]);
    let app = crate::webhooks::plivo_app(config, &vendor, "uuid-ev").await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let url = format!("{}/v1/webhooks/plivo", crate::webhooks::PUBLIC);
    let report = [
        ("MessageUUID", "uuid-ev"),
        ("Status", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    assert_eq!(
        crate::webhooks::plivo_report(&app, &report, &url).await.status,
        200
    );
    let got = wait_for(&endpoint, &["verification.delivery_updated"]).await;
    let updated = got
        .iter()
        .find(|p| p["type"] == "verification.delivery_updated")
        .unwrap();
    assert_eq!(updated["data"]["provider"], "plivo");
    assert_eq!(updated["data"]["message_id"], "uuid-ev");
    assert_eq!(updated["data"]["state"], "undelivered");
    assert_eq!(updated["data"]["error_code"], "30003");
    assert_eq!(updated["data"]["phone"], PHONE);

    // The vendor now fails every send.
    vendor.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "bad src"})))
        .mount(&vendor)
        .await;
    assert_eq!(app.send("+14155552672").await.status, 502);
    let got = wait_for(&endpoint, &["verification.send_failed"]).await;
    let failed = got
        .iter()
        .find(|p| p["type"] == "verification.send_failed")
        .unwrap();
    assert_eq!(failed["data"]["phone"], "+14155552672");
}

/// Every event of a verification names it; cancelling it is an event too.
async fn events_name_their_verification_and_a_cancel_is_one(config: Config) {
    let endpoint = accepting().await;
    let app = spawn_app(with_events(config, &endpoint, &[1])).await;
    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202);
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let cancelled = app
        .client
        .delete(app.url(&format!("/v1/verifications/{id}")))
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    let got = wait_for(
        &endpoint,
        &[
            "verification.created",
            "verification.code_sent",
            "verification.canceled",
        ],
    )
    .await;
    for payload in &got {
        assert_eq!(payload["data"]["verification_id"], id.as_str(), "{payload}");
    }
}

#[tokio::test]
async fn delivery_reports_and_failed_sends_are_events_on_memory() {
    delivery_reports_and_failed_sends_are_events(memory_config()).await;
}

#[tokio::test]
async fn delivery_reports_and_failed_sends_are_events_on_redis() {
    delivery_reports_and_failed_sends_are_events(redis_config()).await;
}

#[tokio::test]
async fn events_name_their_verification_and_a_cancel_is_one_on_memory() {
    events_name_their_verification_and_a_cancel_is_one(memory_config()).await;
}

#[tokio::test]
async fn events_name_their_verification_and_a_cancel_is_one_on_redis() {
    events_name_their_verification_and_a_cancel_is_one(redis_config()).await;
}

#[tokio::test]
async fn a_burst_is_delivered_once_each_and_leaves_the_redis_outbox_empty() {
    let endpoint = accepting().await;
    let config = with_events(redis_config(), &endpoint, &[1]);
    let prefix = config.store.key_prefix.clone();
    let app = spawn_app(config).await;
    // 60 sends at once: 120 events over the shards, taken in batches and
    // settled a batch at a time.
    let phones: Vec<String> = (0..60).map(|i| format!("+1415555{:04}", 3000 + i)).collect();
    let sends = futures_util::future::join_all(phones.iter().map(|p| app.send(p))).await;
    assert!(sends.iter().all(|s| s.status == 202));
    let expected: Vec<&str> = ["verification.created", "verification.code_sent"]
        .into_iter()
        .cycle()
        .take(120)
        .collect();
    wait_for(&endpoint, &expected).await;
    // Nothing is delivered twice, and every delivered job has left its
    // stream, acknowledged: no entry is left for another worker to claim.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The burst is pumping by the breaker's measure too (monitor mode, with
    // the console): its `fraud.would_block` are counted apart.
    let all = received(&endpoint).await;
    let got: Vec<&Value> = all
        .iter()
        .filter(|p| p["type"].as_str().unwrap().starts_with("verification."))
        .collect();
    assert!(all.len() - got.len() <= 2, "one per group at most");
    let mut ids: Vec<&str> = got.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (120, 120));
    let mut conn = redis::Client::open(crate::helpers::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for shard in 0..16 {
        let stream = format!("{prefix}events:{{{shard}}}");
        let len: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .unwrap();
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(&stream)
            .arg("otpd")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(len, 0, "{stream}");
        let redis::Value::Array(summary) = pending else {
            panic!("{pending:?}")
        };
        assert_eq!(
            summary.first(),
            Some(&redis::Value::Int(0)),
            "{stream}: {summary:?}"
        );
    }
}

/// A full outbox drops new events but never an approval: the app signs its
/// user in on it.
async fn an_approval_is_kept_past_the_backlog(config: Config) {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&endpoint)
        .await;
    let mut config = with_events(config, &endpoint, &[3600]);
    config.events.max_backlog = 2;
    config.events.shards = 1;
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.outbox.last_code(PHONE);
    // Created and sent fill the outbox; the next send's events are dropped.
    assert_eq!(app.send("+14155552672").await.status, 202);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |kind: &str, outcome: &str| {
        let series = format!("otpd_events_total{{outcome=\"{outcome}\",type=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    assert_eq!(count("verification.created", "dropped"), 1.0, "{text}");
    assert_eq!(count("verification.approved", "kept"), 1.0, "{text}");
    assert_eq!(count("verification.approved", "dropped"), 0.0, "{text}");
}

#[tokio::test]
async fn an_approval_is_kept_past_the_backlog_on_memory() {
    an_approval_is_kept_past_the_backlog(memory_config()).await;
}

#[tokio::test]
async fn an_approval_is_kept_past_the_backlog_on_redis() {
    an_approval_is_kept_past_the_backlog(redis_config()).await;
}
