//! Delivery reports from Vonage (HMAC-SHA256 `sig`) and Telnyx (Ed25519):
//! a send, signed reports moving the state forward only, forged and stale
//! ones refused with 403.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use otpd::config::{Secret, SmsProvider};
use serde_json::json;
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{memory_config, reply, spawn_app, Reply, TestApp};

const PHONE: &str = "+14155552671";
const PUBLIC: &str = "https://otp.example.com";
const VONAGE_SIGNATURE_SECRET: &str = "vonage-signature-secret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn delivery(app: &TestApp) -> serde_json::Value {
    app.get(&format!("/v1/otp/{PHONE}")).await.body["delivery"].clone()
}

/// Signs as Vonage's SDK does: every field but `sig` sorted by name, each
/// as `&name=value` with `&` and `=` in values made `_`, HMAC-SHA256 in hex.
fn vonage_sig(params: &[(&str, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let query: String = sorted
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(VONAGE_SIGNATURE_SECRET.as_bytes()).unwrap();
    mac.update(query.as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

async fn vonage_report(app: &TestApp, status: &str, err_code: &str, at: u64, sig: Option<&str>) -> Reply {
    let mut params = vec![
        ("msisdn", "14155552671".to_owned()),
        ("to", "Acme".to_owned()),
        ("network-code", "310004".to_owned()),
        ("messageId", "0C000000217B7F02".to_owned()),
        ("price", "0.03330000".to_owned()),
        ("status", status.to_owned()),
        ("scts", "2001011400".to_owned()),
        ("err-code", err_code.to_owned()),
        ("message-timestamp", "2020-01-01 14:00:00".to_owned()),
        ("timestamp", at.to_string()),
        ("nonce", "ec11dd3e-1e7f-4db5-9467-82b02cd223b9".to_owned()),
    ];
    let sig = sig.map_or_else(|| vonage_sig(&params), str::to_owned);
    params.push(("sig", sig));
    let response = app
        .client
        .post(app.url("/v1/webhooks/vonage"))
        .form(&params)
        .send()
        .await
        .unwrap();
    reply(response).await
}

#[tokio::test]
async fn a_signed_vonage_receipt_reaches_the_status() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"message-count": "1", "messages": [
                {"to": "14155552671", "message-id": "0C000000217B7F02", "status": "0"}
            ]})),
        )
        .mount(&vendor)
        .await;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Vonage;
    config.sms.vonage.api_key = "abcd1234".into();
    config.sms.vonage.api_secret = Secret::new("vonage-secret");
    config.sms.vonage.from = "Acme".into();
    config.sms.vonage.signature_secret = Secret::new(VONAGE_SIGNATURE_SECRET);
    config.sms.vonage.base_url = vendor.uri();
    config.http.public_url = Some(PUBLIC.into());
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let asked = &vendor.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&asked.body).into_owned().collect();
    assert!(form.contains(&("callback".into(), format!("{PUBLIC}/v1/webhooks/vonage"))));
    assert!(form.contains(&("status-report-req".into(), "1".into())));

    // Forged, stale: 403, nothing changes.
    vonage_report(&app, "delivered", "0", now(), Some("00"))
        .await
        .assert_problem(403, "invalid_signature");
    vonage_report(&app, "delivered", "0", now() - 600, None)
        .await
        .assert_problem(403, "invalid_signature");
    assert_eq!(delivery(&app).await["state"], "queued");

    let delivered = vonage_report(&app, "delivered", "0", now(), None).await;
    assert_eq!(
        (delivered.status, delivered.body.clone()),
        (200, json!({"recorded": true}))
    );
    let now_state = delivery(&app).await;
    assert_eq!(now_state["state"], "delivered");
    assert!(
        now_state.get("error_code").is_none(),
        "0 is no error: {now_state}"
    );
    // A late `buffered` doesn't move it back.
    assert_eq!(
        vonage_report(&app, "buffered", "0", now(), None).await.body["recorded"],
        false
    );
    assert_eq!(delivery(&app).await["state"], "delivered");
}

fn telnyx_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

async fn telnyx_report(
    app: &TestApp,
    status: &str,
    errors: serde_json::Value,
    at: u64,
    key: &SigningKey,
) -> Reply {
    let body = json!({"data": {
        "event_type": "message.finalized",
        "id": "b301ed3f-1490-491f-995f-6e64e69674d4",
        "occurred_at": "2026-01-01T00:00:00.000+00:00",
        "payload": {
            "id": "40317f5b-6d3c-4f1e-9d3b-6b1e2d1f0a01",
            "to": [{"phone_number": PHONE, "status": status, "carrier": "T-Mobile USA"}],
            "errors": errors,
            "type": "SMS",
        },
        "record_type": "event",
    }, "meta": {"attempt": 1, "delivered_to": format!("{PUBLIC}/v1/webhooks/telnyx")}})
    .to_string();
    let signature = BASE64.encode(key.sign(format!("{at}|{body}").as_bytes()).to_bytes());
    let response = app
        .client
        .post(app.url("/v1/webhooks/telnyx"))
        .header("content-type", "application/json")
        .header("telnyx-signature-ed25519", signature)
        .header("telnyx-timestamp", at.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    reply(response).await
}

#[tokio::test]
async fn a_signed_telnyx_webhook_reaches_the_status() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": "40317f5b-6d3c-4f1e-9d3b-6b1e2d1f0a01"}})),
        )
        .mount(&vendor)
        .await;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Telnyx;
    config.sms.telnyx.api_key = Secret::new("KEY0123");
    config.sms.telnyx.from = "+14155550000".into();
    config.sms.telnyx.public_key = Secret::new(BASE64.encode(telnyx_key().verifying_key().to_bytes()));
    config.sms.telnyx.base_url = vendor.uri();
    config.http.public_url = Some(PUBLIC.into());
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let asked: serde_json::Value =
        serde_json::from_slice(&vendor.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(asked["webhook_url"], format!("{PUBLIC}/v1/webhooks/telnyx"));
    assert_eq!(asked["use_profile_webhooks"], false);

    let stranger = SigningKey::from_bytes(&[1; 32]);
    telnyx_report(&app, "delivered", json!([]), now(), &stranger)
        .await
        .assert_problem(403, "invalid_signature");
    telnyx_report(&app, "delivered", json!([]), now() - 600, &telnyx_key())
        .await
        .assert_problem(403, "invalid_signature");
    assert_eq!(delivery(&app).await["state"], "queued");

    let sent = telnyx_report(&app, "sent", json!([]), now(), &telnyx_key()).await;
    assert_eq!((sent.status, sent.body.clone()), (200, json!({"recorded": true})));
    assert_eq!(delivery(&app).await["state"], "sent");
    let failed = telnyx_report(
        &app,
        "delivery_failed",
        json!([{"code": "40001", "title": "Not routable"}]),
        now(),
        &telnyx_key(),
    )
    .await;
    assert_eq!(failed.body["recorded"], true);
    let state = delivery(&app).await;
    assert_eq!(state["state"], "undelivered");
    assert_eq!(state["error_code"], "40001");
    assert_eq!(
        telnyx_report(&app, "sent", json!([]), now(), &telnyx_key())
            .await
            .body["recorded"],
        false,
        "forward only"
    );
}

#[tokio::test]
async fn reports_without_their_key_stop_the_start() {
    use otpd::adapters::sms::ConsoleOut;
    use otpd::startup::Application;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Telnyx;
    config.sms.telnyx.api_key = Secret::new("KEY0123");
    config.sms.telnyx.from = "+14155550000".into();
    config.http.public_url = Some(PUBLIC.into());
    let err = Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
        .await
        .err()
        .unwrap();
    assert_eq!(err.key, "sms.telnyx.public_key");
    config.sms.telnyx.public_key = Secret::new("not a key");
    let err = Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
        .await
        .err()
        .unwrap();
    assert_eq!(err.key, "sms.telnyx.public_key");
}
