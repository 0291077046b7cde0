//! Ordered workflows: a verification that tries WhatsApp (Meta's Cloud API,
//! a wiremock server) and then SMS (the console). A message Meta reports
//! failed moves to SMS at once; no delivered report within
//! `workflow.fallback_after_secs` moves on; a delivered report stops the
//! workflow. Each runs on memory and Redis here and on the cluster in
//! `cluster.rs`; the verification's attempts, its events and the metrics
//! say what happened.

use std::time::{Duration, Instant};

use otpd::config::Config;
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

use crate::helpers::{memory_config, redis_config, spawn_app, TestApp};
use crate::whatsapp::{accepted, meta_server, post_status, sign, status_body, with_meta, PHONE, WAMID};

/// WhatsApp first, SMS next; events to `endpoint`.
async fn workflow_app(config: Config, meta: &MockServer, endpoint: &MockServer, after_secs: u64) -> TestApp {
    let mut config = crate::events::with_events(with_meta(config, meta), endpoint, &[1]);
    config.workflow.fallback_after_secs = after_secs;
    spawn_app(config).await
}

async fn start(app: &TestApp) -> String {
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": PHONE, "channels": ["whatsapp", "sms"]}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(
        (&sent.body["channel"], &sent.body["message_id"]),
        (&json!("whatsapp"), &json!(WAMID))
    );
    sent.body["verification_id"].as_str().unwrap().to_owned()
}

fn sms_lines(app: &TestApp) -> usize {
    let prefix = format!("SMS to {PHONE}: ");
    app.outbox
        .lines()
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .count()
}

/// Waits up to `within` for the console's SMS to the phone.
async fn an_sms_within(app: &TestApp, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if sms_lines(app) > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn verification(app: &TestApp, id: &str) -> Value {
    let read = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    read.body
}

fn channels(v: &Value) -> Vec<String> {
    v["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap().to_owned())
        .collect()
}

async fn fallbacks_counted(app: &TestApp, channel: &str, reason: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("otpd_fallbacks_total{{channel=\"{channel}\",reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |n| n.parse().unwrap())
}

/// Meta reports the message failed: the SMS goes out at once, with a new
/// code that verifies; the same report again sends nothing more.
pub async fn an_undelivered_whatsapp_moves_to_sms_at_once(config: Config) {
    let (meta, endpoint) = (meta_server(accepted()).await, MockServer::start().await);
    // A wait no test reaches: only the report can move it.
    let app = workflow_app(config, &meta, &endpoint, 600).await;
    let id = start(&app).await;
    assert_eq!(verification(&app, &id).await["next_channels"], json!(["sms"]));
    let failed = status_body("failed", Some(131_026));
    let taken = post_status(&app, &failed, Some(&sign(&failed))).await;
    assert_eq!(taken.body["recorded"], true, "{}", taken.body);
    assert!(
        an_sms_within(&app, Duration::from_secs(5)).await,
        "the SMS after the failed WhatsApp"
    );
    let v = verification(&app, &id).await;
    assert_eq!(channels(&v), ["whatsapp", "sms"]);
    assert_eq!(
        (&v["channel"], &v["next_channels"], &v["sends"]),
        (&json!("sms"), &json!([]), &json!(2))
    );
    assert_eq!(v["delivery"]["provider"], "console");
    // Replayed: changes nothing, sends nothing.
    let again = post_status(&app, &failed, Some(&sign(&failed))).await;
    assert_eq!(again.body["recorded"], false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sms_lines(&app), 1);
    assert_eq!(fallbacks_counted(&app, "sms", "undelivered").await, 1);
    let events = crate::events::wait_for(
        &endpoint,
        &[
            "verification.code_sent",
            "verification.code_sent",
            "verification.delivery_updated",
        ],
    )
    .await;
    let sent: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "verification.code_sent")
        .map(|e| &e["data"])
        .collect();
    assert_eq!(
        (&sent[0]["channel"], sent[0].get("fallback")),
        (&json!("whatsapp"), None)
    );
    assert_eq!(
        (&sent[1]["channel"], &sent[1]["fallback"]),
        (&json!("sms"), &json!("undelivered"))
    );
    let code = app.outbox.last_code(PHONE);
    let approved = app
        .post_json("/v1/otp/verify", json!({"verification_id": id, "code": code}))
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}

/// No report within the wait: SMS goes out, counted as `no_report`.
pub async fn no_report_in_time_moves_on(config: Config) {
    let (meta, endpoint) = (meta_server(accepted()).await, MockServer::start().await);
    let app = workflow_app(config, &meta, &endpoint, 1).await;
    let id = start(&app).await;
    assert_eq!(sms_lines(&app), 0, "not before the wait");
    assert!(
        an_sms_within(&app, Duration::from_secs(6)).await,
        "the SMS after the wait"
    );
    assert_eq!(channels(&verification(&app, &id).await), ["whatsapp", "sms"]);
    assert_eq!(fallbacks_counted(&app, "sms", "no_report").await, 1);
    // The SMS is the workflow's last channel: nothing follows it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sms_lines(&app), 1);
}

/// Meta reports the message delivered: the workflow stops there.
pub async fn a_delivered_report_stops_the_workflow(config: Config) {
    let (meta, endpoint) = (meta_server(accepted()).await, MockServer::start().await);
    let app = workflow_app(config, &meta, &endpoint, 1).await;
    let id = start(&app).await;
    let delivered = status_body("delivered", None);
    let taken = post_status(&app, &delivered, Some(&sign(&delivered))).await;
    assert_eq!(taken.body["recorded"], true, "{}", taken.body);
    assert!(
        !an_sms_within(&app, Duration::from_millis(2500)).await,
        "no SMS after a delivered WhatsApp"
    );
    let v = verification(&app, &id).await;
    assert_eq!(
        (channels(&v), &v["delivery"]["state"]),
        (vec!["whatsapp".to_owned()], &json!("delivered"))
    );
    // A failed report after the delivered one changes nothing.
    let failed = status_body("failed", Some(131_026));
    assert_eq!(
        post_status(&app, &failed, Some(&sign(&failed))).await.body["recorded"],
        false
    );
    assert_eq!(fallbacks_counted(&app, "sms", "no_report").await, 0);
}

#[tokio::test]
async fn an_undelivered_whatsapp_moves_to_sms_at_once_on_memory() {
    an_undelivered_whatsapp_moves_to_sms_at_once(memory_config()).await;
}

#[tokio::test]
async fn an_undelivered_whatsapp_moves_to_sms_at_once_on_redis() {
    an_undelivered_whatsapp_moves_to_sms_at_once(redis_config()).await;
}

#[tokio::test]
async fn no_report_in_time_moves_on_on_memory() {
    no_report_in_time_moves_on(memory_config()).await;
}

#[tokio::test]
async fn no_report_in_time_moves_on_on_redis() {
    no_report_in_time_moves_on(redis_config()).await;
}

#[tokio::test]
async fn a_delivered_report_stops_the_workflow_on_memory() {
    a_delivered_report_stops_the_workflow(memory_config()).await;
}

#[tokio::test]
async fn a_delivered_report_stops_the_workflow_on_redis() {
    a_delivered_report_stops_the_workflow(redis_config()).await;
}

#[tokio::test]
async fn a_workflow_is_checked_and_the_configured_one_is_used() {
    let app = spawn_app(memory_config()).await;
    for (body, why) in [
        (json!({"phone": PHONE, "channels": []}), "empty"),
        (json!({"phone": PHONE, "channels": ["sms", "sms"]}), "repeated"),
        (
            json!({"phone": PHONE, "channels": ["sms", "voice", "whatsapp", "sms"]}),
            "too long",
        ),
        (json!({"phone": PHONE, "channels": ["fax"]}), "unknown"),
        (
            json!({"phone": PHONE, "channel": "sms", "channels": ["voice"]}),
            "both",
        ),
    ] {
        let refused = app.post_json("/v1/otp", body).await;
        assert_eq!(refused.status, 400, "{why}: {}", refused.body);
    }
    assert_eq!(app.outbox.lines().len(), 0, "nothing was sent");
    // Configured per country: Brazil calls first, then texts.
    let mut config = memory_config();
    config.workflow.countries.insert(
        "BR".into(),
        otpd::config::ChannelNames(vec!["voice".into(), "sms".into()]),
    );
    let app = spawn_app(config).await;
    let sent = app.post_json("/v1/otp", json!({"phone": "+5511987654321"})).await;
    assert_eq!(sent.body["channel"], "voice", "{}", sent.body);
    let id = sent.body["verification_id"].as_str().unwrap();
    assert_eq!(verification(&app, id).await["next_channels"], json!(["sms"]));
    // A resend that names no channel goes on the workflow's next one.
    let mut config = memory_config();
    config.limits.resend_after_secs = 0;
    let app = spawn_app(config).await;
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": PHONE, "channels": ["voice", "whatsapp"]}),
        )
        .await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let resent = app
        .post_json("/v1/otp", json!({"phone": PHONE, "verification_id": id}))
        .await;
    assert_eq!(resent.body["channel"], "whatsapp", "{}", resent.body);
    let list = app
        .post_json(
            "/v1/otp",
            json!({"phone": PHONE, "verification_id": id, "channels": ["sms"]}),
        )
        .await;
    list.assert_problem(400, "invalid_request");
    let again = app
        .post_json("/v1/otp", json!({"phone": PHONE, "verification_id": id}))
        .await;
    assert_eq!(
        again.body["channel"], "whatsapp",
        "the last channel again: {}",
        again.body
    );
    assert_eq!(
        channels(&verification(&app, &id).await),
        ["voice", "whatsapp", "whatsapp"]
    );
}

#[tokio::test]
async fn a_workflow_naming_a_channel_without_a_sender_is_refused_at_start() {
    let mut config = memory_config();
    config.voice.provider = otpd::config::VoiceProvider::Off;
    config.workflow.channels = vec!["voice".into(), "sms".into()];
    assert_eq!(
        crate::helpers::refused_at_start(&config).await.key,
        "workflow.channels"
    );
    let mut config = memory_config();
    config
        .workflow
        .countries
        .insert("B1".into(), otpd::config::ChannelNames(vec!["sms".into()]));
    assert_eq!(
        crate::helpers::refused_at_start(&config).await.key,
        "workflow.countries.B1"
    );
    let mut config = memory_config();
    config.workflow.fallback_after_secs = 0;
    assert_eq!(
        crate::helpers::refused_at_start(&config).await.key,
        "workflow.fallback_after_secs"
    );
}

#[test]
fn workflows_load_from_the_environment() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let config = otpd::config::Config::load_from(
        None,
        &env(&[
            ("OTPD_WORKFLOW__CHANNELS", "whatsapp,sms"),
            ("OTPD_WORKFLOW__COUNTRIES__BR", "voice,sms"),
            ("OTPD_WORKFLOW__FALLBACK_AFTER_SECS", "20"),
        ]),
    )
    .unwrap();
    assert_eq!(config.workflow.channels, ["whatsapp", "sms"]);
    assert_eq!(config.workflow.countries["br"].0, ["voice", "sms"]);
    assert_eq!(config.workflow.fallback_after_secs, 20);
    // Lower case from the environment, the country's all the same.
    let mut config = config;
    config.voice.provider = otpd::config::VoiceProvider::Console;
    config.whatsapp.provider = otpd::config::WhatsappProvider::Console;
    let service = otpd::startup::check(
        &config,
        otpd::adapters::sms::ConsoleOut::Writer(Box::new(std::io::sink())),
    )
    .unwrap()
    .into_service();
    let brazil = otpd::domain::Phone::parse("+5511987654321").unwrap();
    use otpd::domain::Channel::{Sms, Voice, Whatsapp};
    assert_eq!(service.workflow(&brazil), [Voice, Sms]);
    assert_eq!(
        service.workflow(&otpd::domain::Phone::parse(PHONE).unwrap()),
        [Whatsapp, Sms]
    );
}

/// Meta refuses the number (not on WhatsApp): the workflow goes on at
/// once, in the request itself for its first channel, and when a fallback
/// is refused, to the channel after it.
pub async fn a_refused_channel_moves_on_at_once(config: Config) {
    let not_on_whatsapp = ResponseTemplate::new(400).set_body_json(json!({
        "error": {"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131_026}
    }));
    let (meta, endpoint) = (meta_server(not_on_whatsapp).await, MockServer::start().await);
    // The cooldown on: the refused send must not hold the next one back.
    let mut config = config;
    config.limits.resend_after_secs = 30;
    let app = workflow_app(config, &meta, &endpoint, 1).await;
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": PHONE, "channels": ["whatsapp", "sms"]}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["channel"], "sms", "the SMS in the same request");
    assert_eq!(sms_lines(&app), 1);
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    assert_eq!(channels(&verification(&app, &id).await), ["sms"]);
    // SMS, then WhatsApp (refused when the wait ends), then a call at once.
    let phone = "+14155552672";
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": phone, "channels": ["sms", "whatsapp", "voice"]}),
        )
        .await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while !app
        .outbox
        .lines()
        .iter()
        .any(|l| l.starts_with(&format!("Voice call to {phone}")))
    {
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "no call after the refused WhatsApp"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = verification(&app, &id).await;
    assert_eq!(
        channels(&v),
        ["sms", "voice"],
        "the refused WhatsApp left no send"
    );
    assert_eq!(v["next_channels"], json!([]));
    assert_eq!(
        meta.received_requests().await.unwrap().len(),
        2,
        "one try each, not retried"
    );
    let code = app.outbox.last_code(PHONE);
    let approved = app.verify(PHONE, &code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
}

#[tokio::test]
async fn a_refused_channel_moves_on_at_once_on_memory() {
    a_refused_channel_moves_on_at_once(memory_config()).await;
}

#[tokio::test]
async fn a_refused_channel_moves_on_at_once_on_redis() {
    a_refused_channel_moves_on_at_once(redis_config()).await;
}
