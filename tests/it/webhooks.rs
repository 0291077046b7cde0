//! Delivery reports end to end: a send through a mocked vendor, a signed
//! callback, the state in the status; forged, misdirected and late reports.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use otpd::config::{Config, Secret, SmsProvider};
use serde_json::json;
use sha1::Sha1;
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{memory_config, redis_config, spawn_app, Reply, TestApp};

const PHONE: &str = "+14155552671";
pub const PUBLIC: &str = "https://otp.example.com";
pub const PLIVO_TOKEN: &str = "plivo-token-for-reports";
pub const TWILIO_TOKEN: &str = "twilio-token-for-reports";

/// Signs as Plivo does (V3, POST without query), written out here rather
/// than borrowed from the code under test.
pub fn plivo_signature(url: &str, nonce: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let body: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(PLIVO_TOKEN.as_bytes()).unwrap();
    mac.update(format!("{url}?{body}.{nonce}").as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

pub fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

pub async fn plivo_app(mut config: Config, vendor: &MockServer, uuid: &str) -> TestApp {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "api_id": "a", "message": "message(s) queued", "message_uuid": [uuid]
        })))
        .mount(vendor)
        .await;
    config.sms.provider = SmsProvider::Plivo;
    config.sms.plivo.auth_id = "MAXXXXXXXXXXXXXXXXXX".into();
    config.sms.plivo.auth_token = Secret::new(PLIVO_TOKEN);
    config.sms.plivo.src = "14155550000".into();
    config.sms.plivo.base_url = vendor.uri();
    config.http.public_url = Some(PUBLIC.into());
    spawn_app(config).await
}

pub async fn plivo_report(app: &TestApp, params: &[(&str, &str)], signed_url: &str) -> Reply {
    let nonce = "31627761595286130198";
    let signature = plivo_signature(signed_url, nonce, params);
    let response = app
        .client
        .post(app.url("/v1/webhooks/plivo"))
        .header("x-plivo-signature-v3", format!("c29tZW9uZSBlbHNl,{signature}"))
        .header("x-plivo-signature-v3-nonce", nonce)
        .form(params)
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response).await
}

async fn delivery(app: &TestApp) -> serde_json::Value {
    app.get(&format!("/v1/otp/{PHONE}")).await.body["delivery"].clone()
}

async fn plivo_flow(config: Config) {
    let vendor = MockServer::start().await;
    let app = plivo_app(config, &vendor, "uuid-1").await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let queued = delivery(&app).await;
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["message_id"], "uuid-1");

    let url = format!("{PUBLIC}/v1/webhooks/plivo");
    let sent = [
        ("MessageUUID", "uuid-1"),
        ("Status", "sent"),
        ("To", "14155552671"),
    ];
    let reply = plivo_report(&app, &sent, &url).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (200, json!({"recorded": true}))
    );
    assert_eq!(delivery(&app).await["state"], "sent");

    let delivered = [
        ("MessageUUID", "uuid-1"),
        ("Status", "delivered"),
        ("ErrorCode", "000"),
        ("Units", "1"),
    ];
    assert_eq!(plivo_report(&app, &delivered, &url).await.body["recorded"], true);
    let now = delivery(&app).await;
    assert_eq!(now["state"], "delivered");
    assert!(now.get("error_code").is_none(), "000 is no error: {now}");
    assert!(now["updated_at"].as_u64().unwrap() >= queued["updated_at"].as_u64().unwrap());

    // A late `sent`, and the same `delivered` again, change nothing.
    assert_eq!(plivo_report(&app, &sent, &url).await.body["recorded"], false);
    assert_eq!(plivo_report(&app, &delivered, &url).await.body["recorded"], false);
    assert_eq!(delivery(&app).await["state"], "delivered");
}

#[tokio::test]
async fn a_signed_plivo_report_reaches_the_status_on_memory() {
    plivo_flow(memory_config()).await;
}

#[tokio::test]
async fn a_signed_plivo_report_reaches_the_status_on_redis() {
    plivo_flow(redis_config()).await;
}

#[tokio::test]
async fn forged_and_misdirected_reports_are_refused() {
    let vendor = MockServer::start().await;
    let app = plivo_app(memory_config(), &vendor, "uuid-2").await;
    app.send(PHONE).await;
    let failed = [
        ("MessageUUID", "uuid-2"),
        ("Status", "failed"),
        ("ErrorCode", "420"),
    ];

    // Signed for another service's URL: replayed here, it fails.
    plivo_report(&app, &failed, "https://evil.example.com/v1/webhooks/plivo")
        .await
        .assert_problem(403, "invalid_signature");
    // No signature at all.
    app.post_form("/v1/webhooks/plivo", &failed)
        .await
        .assert_problem(403, "invalid_signature");
    // A parameter changed after signing.
    let url = format!("{PUBLIC}/v1/webhooks/plivo");
    let signature = plivo_signature(&url, "1", &failed);
    let response = app
        .client
        .post(app.url("/v1/webhooks/plivo"))
        .header("x-plivo-signature-v3", signature)
        .header("x-plivo-signature-v3-nonce", "1")
        .form(&[
            ("MessageUUID", "uuid-2"),
            ("Status", "delivered"),
            ("ErrorCode", "420"),
        ])
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response)
        .await
        .assert_problem(403, "invalid_signature");
    // A report for Twilio, which isn't configured here.
    app.post_form(
        "/v1/webhooks/twilio",
        &[("MessageSid", "SM1"), ("MessageStatus", "sent")],
    )
    .await
    .assert_problem(403, "invalid_signature");

    assert_eq!(delivery(&app).await["state"], "queued", "nothing was recorded");

    // The real thing, posted to whatever host this is, passes.
    let reply = plivo_report(&app, &failed, &url).await;
    assert_eq!(reply.status, 200);
    let now = delivery(&app).await;
    assert_eq!(
        (now["state"].clone(), now["error_code"].clone()),
        (json!("failed"), json!("420"))
    );
}

#[tokio::test]
async fn reports_for_unknown_messages_are_taken_and_ignored() {
    let vendor = MockServer::start().await;
    let app = plivo_app(memory_config(), &vendor, "uuid-3").await;
    let url = format!("{PUBLIC}/v1/webhooks/plivo");
    let unknown = [("MessageUUID", "never-sent"), ("Status", "delivered")];
    let reply = plivo_report(&app, &unknown, &url).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (200, json!({"recorded": false}))
    );
    let odd = [("MessageUUID", "never-sent"), ("Status", "teleported")];
    assert_eq!(plivo_report(&app, &odd, &url).await.body["recorded"], false);
    let incomplete = [("Status", "delivered")];
    plivo_report(&app, &incomplete, &url)
        .await
        .assert_problem(400, "invalid_request");
}

/// Plivo's V2 signs the URL and a nonce but not the body: a captured pair
/// would carry any report, so V2 alone is refused.
#[tokio::test]
async fn a_plivo_v2_signature_alone_is_refused() {
    let vendor = MockServer::start().await;
    let app = plivo_app(memory_config(), &vendor, "uuid-4").await;
    app.send(PHONE).await;
    let url = format!("{PUBLIC}/v1/webhooks/plivo");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(PLIVO_TOKEN.as_bytes()).unwrap();
    mac.update(format!("{url}42").as_bytes());
    let response = app
        .client
        .post(app.url("/v1/webhooks/plivo"))
        .header("x-plivo-signature-v2", BASE64.encode(mac.finalize().into_bytes()))
        .header("x-plivo-signature-v2-nonce", "42")
        .form(&[
            ("MessageUUID", "uuid-4"),
            ("Status", "undelivered"),
            ("ErrorCode", "forged"),
        ])
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response)
        .await
        .assert_problem(403, "invalid_signature");
    assert_eq!(delivery(&app).await["state"], "queued", "nothing changed");
}

#[tokio::test]
async fn a_signed_report_with_a_hostile_error_code_or_id_is_refused() {
    let vendor = MockServer::start().await;
    let app = plivo_app(memory_config(), &vendor, "uuid-5").await;
    app.send(PHONE).await;
    let url = format!("{PUBLIC}/v1/webhooks/plivo");
    let long = "9".repeat(65);
    for (id, error) in [
        ("uuid-5", "<script>alert(1)</script>"),
        ("uuid-5", "30003\nforged"),
        ("uuid-5", long.as_str()),
        ("uuid-5", "30 03"),
        ("uuid\n5", "30003"),
    ] {
        let report = [
            ("MessageUUID", id),
            ("Status", "undelivered"),
            ("ErrorCode", error),
        ];
        plivo_report(&app, &report, &url)
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(delivery(&app).await["state"], "queued", "nothing stored");
    let report = [
        ("MessageUUID", "uuid-5"),
        ("Status", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    assert_eq!(plivo_report(&app, &report, &url).await.status, 200);
    let delivered = delivery(&app).await;
    assert_eq!(
        (delivered["state"].clone(), delivered["error_code"].clone()),
        (json!("undelivered"), json!("30003"))
    );
}

async fn twilio_app(vendor: &MockServer, api_keys: &[&str]) -> TestApp {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SMabc", "status": "queued"})))
        .mount(vendor)
        .await;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Twilio;
    config.sms.twilio.account_sid = "AC0123456789abcdef0123456789abcdef".into();
    config.sms.twilio.auth_token = Secret::new(TWILIO_TOKEN);
    config.sms.twilio.from = "+14155550000".into();
    config.sms.twilio.base_url = vendor.uri();
    config.http.public_url = Some(PUBLIC.into());
    config.auth.api_keys = api_keys.iter().map(|k| Secret::new(*k)).collect();
    spawn_app(config).await
}

async fn twilio_report(app: &TestApp, params: &[(&str, &str)], signed_url: &str) -> Reply {
    let response = app
        .client
        .post(app.url("/v1/webhooks/twilio"))
        .header("x-twilio-signature", twilio_signature(signed_url, params))
        .form(params)
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response).await
}

#[tokio::test]
async fn twilio_reports_with_extra_fields_and_an_explicit_port() {
    let vendor = MockServer::start().await;
    let app = twilio_app(&vendor, &[]).await;
    app.send(PHONE).await;
    let undelivered = [
        ("MessageSid", "SMabc"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30008"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("SomethingNew", "tolerated and signed over"),
    ];
    let with_port = "https://otp.example.com:443/v1/webhooks/twilio";
    let reply = twilio_report(&app, &undelivered, with_port).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let now = delivery(&app).await;
    assert_eq!(
        (now["state"].clone(), now["error_code"].clone()),
        (json!("undelivered"), json!("30008"))
    );

    let forged = twilio_report(&app, &undelivered, "https://otp.example.com/v1/webhooks/plivo").await;
    forged.assert_problem(403, "invalid_signature");
}

#[tokio::test]
async fn webhooks_need_no_api_key_but_keep_the_body_limit() {
    let vendor = MockServer::start().await;
    let app = twilio_app(&vendor, &["an-api-key-0123456789"]).await;
    let sent = app
        .post_json_with(
            "/v1/otp",
            json!({"phone": PHONE}),
            &[("x-api-key", "an-api-key-0123456789")],
        )
        .await;
    assert_eq!(sent.status, 202);
    let url = format!("{PUBLIC}/v1/webhooks/twilio");
    let reply = twilio_report(
        &app,
        &[("MessageSid", "SMabc"), ("MessageStatus", "delivered")],
        &url,
    )
    .await;
    assert_eq!(reply.body, json!({"recorded": true}));

    let padding = "x".repeat(20 * 1024);
    let big = [
        ("MessageSid", "SMabc"),
        ("MessageStatus", "delivered"),
        ("Padding", padding.as_str()),
    ];
    twilio_report(&app, &big, &url)
        .await
        .assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn the_report_link_lives_as_long_as_the_code_and_a_grace() {
    use redis::AsyncCommands;
    let vendor = MockServer::start().await;
    let config = redis_config();
    let prefix = config.store.key_prefix.clone();
    let app = plivo_app(config, &vendor, "uuid-5").await;
    app.send(PHONE).await;
    let mut conn = redis::Client::open(crate::helpers::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let link = format!("{prefix}msg:{{plivo:uuid-5}}");
    let phone: String = conn.get(&link).await.unwrap();
    assert_eq!(phone, PHONE);
    let ttl: i64 = conn.ttl(&link).await.unwrap();
    assert!((235..=240).contains(&ttl), "ttl {ttl}");
}
