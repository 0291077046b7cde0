//! The voice channel through Vonage's Voice API: a wiremock server checks
//! the request of its "Create an outbound call" reference (a JWT that the
//! application's key signs, the callee and caller without `+`, an inline
//! NCCO that says the code, the event URL), refusals and retries; the
//! signed call events move the delivery, and unsigned, foreign, tampered,
//! stale or replayed ones do not; the start refuses an incomplete
//! application.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use otpd::config::{Config, Secret, VoiceProvider};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{code_in, memory_config, refused_at_start, reply, spawn_app, Reply, TestApp};
use crate::webhooks::PUBLIC;

const PHONE: &str = "+14155552671";
const APPLICATION: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
const SECRET: &str = "vonage-signature-secret";
const CALL_UUID: &str = "63f61863-4a51-4f6b-86e1-46edebcf9356";
const EVENTS_URL: &str = "https://otp.example.com/v1/webhooks/vonage/calls";

/// A key made for these tests only (`openssl genpkey -algorithm RSA`), in
/// the PKCS #8 PEM form Vonage's dashboard hands out.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDhbEkyhdxYH5Rs\n\
cnlkZQAUconVPQRmYhkEg1jH2DNCt3+1Rd2o4fNDsjOvxGzugWw/IP4w4e+JR8Qc\n\
uh12rDywDcY+2V+w63wfMGbEbSzDtQZlQVYqBX700+PiBU/g/YdleO4AVVJ5wBg9\n\
Myklcz4fJxM1DXxtzSd79yEQJQ4Gx6f+kqkCBAgR/+PJwZ/dO6cmOrOegWqANX9I\n\
5okKM3UDkf9jMzHKOQRlU6JKDnQZpri0n4MK3Fc4Pk65vpZco0jtM7erDx85kj9u\n\
vOwl9HpPSyw/bNxp1kVrAlMzAJ9yiBG1Tsc9fBHnT1mIj0K0lPXBt1f+KvXLR039\n\
AyyPkO8rAgMBAAECggEAHjo7Bn9UsKxrZq9i/8dbX2KMgP+Rm3kECcrjGMkw9n1M\n\
rq4TrxW9XRKEQ8l/IexQ65Ys/7kMOchZz9BVKxileqYeM0dKwZqSJkyDO0u4ePXJ\n\
ScKdHz1lbMcNA73anDzi7wRsRbcrPBA6L9qwZckyR1MiDDcmvEKKTOEymcueOeJD\n\
fJweESb7KldlksTZvpeRJNRJ6ixcwbL9Lgz1ruUcqUeDNPpxpEif757mH75OeXEg\n\
pc8rJ/xUDjVKDbu6xFc3hUEIWC6gtXDu3Rt7Kpyqzc/lYjOVvQo+YK01Ec2Ds3pi\n\
+WgEx02jKb0Tsmv6edY7vU8VBDbVPgY3il1GSafnIQKBgQD3Xh3uDyKqyOE68uir\n\
aboppbKvSw6dWceOIBNkpDh9cOGKRm5ayYL2rVwat/4MfP05Yc8ZlM4woOr+1MNO\n\
cwmHFykIx97B2fQGR+WzSGoYhYxcaN+PX6idaXdWikHnM9qMZUbRKDBNDT5j9GQ5\n\
Ju4mT0xoY1eb9ti3JZ5pfXLSpwKBgQDpSh/S6lf5ns5C73rKK3Tp20K4+w7bMHUy\n\
9uQLsydCMbzLcPdzab+aHwG7lEP1qQZr5Sv4dXzYkEt/WPxuerrahnDTrFY1Z35n\n\
WgrVaSOvNA1BRRqHKpJ3GRex/z73mqt36ybkgg7Bfagp6XjZJMK61fZYft1UVAo3\n\
vffLYAHj3QKBgQCoIkeTpKP6kzlLuQleYSmQ3zg5n3maiAh0WOb1lA11bcFPHBos\n\
CSXEBwdAfejmkhoH46xBhfwz31x6wyDQ9K34LUzN1BRbjIoprrq5BjJe4n8J3Jp/\n\
uBRCkgn0P1sWDA+zN69PwNI7vRG4HMf2dLiQP3v+w+8rajfZHG+04fimpwKBgQC1\n\
JcqqUy+29BpDnYNiQvZItOoNi10Q1ILc7RtM/nMIkmiALJro8n9GJLeKuWk/81y6\n\
ITzQdCJaY0lMfIOfIgu/rc8kflh+pXtgs2lgJ4D/BdMZEJi1xlfuxPxCSenSCDcH\n\
KgCMRXVBx9nxmYouSr4up//e3bvtREie2hL0x/sPvQKBgQCmHsdOdh8oSROWJqED\n\
TOg10RaIe80wgeXAAvFmyKoN0mY9jtHve5B4g2doPXs086RjGOlr+kx+4lU3Iox1\n\
SWxCe8cbtVR2cFE/M/9z0Bpnc9Mws1rF2DvXHAn/EsjSys9N8/RDwiq9k0bCh0Qa\n\
WDpx52Jt8dHDld3Rk2mm9C/j9A==\n\
-----END PRIVATE KEY-----";
const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4WxJMoXcWB+UbHJ5ZGUA\n\
FHKJ1T0EZmIZBINYx9gzQrd/tUXdqOHzQ7Izr8Rs7oFsPyD+MOHviUfEHLoddqw8\n\
sA3GPtlfsOt8HzBmxG0sw7UGZUFWKgV+9NPj4gVP4P2HZXjuAFVSecAYPTMpJXM+\n\
HycTNQ18bc0ne/chECUOBsen/pKpAgQIEf/jycGf3TunJjqznoFqgDV/SOaJCjN1\n\
A5H/YzMxyjkEZVOiSg50Gaa4tJ+DCtxXOD5Oub6WXKNI7TO3qw8fOZI/brzsJfR6\n\
T0ssP2zcadZFawJTMwCfcogRtU7HPXwR509ZiI9CtJT1wbdX/ir1y0dN/QMsj5Dv\n\
KwIDAQAB\n\
-----END PUBLIC KEY-----";

fn with_vonage_voice(mut config: Config, vonage: &MockServer) -> Config {
    config.voice.provider = VoiceProvider::Vonage;
    config.voice.from = "+14155550100".into();
    let v = &mut config.voice.vonage;
    v.application_id = APPLICATION.into();
    v.private_key = Secret::new(PRIVATE_KEY);
    v.base_url = vonage.uri();
    config.sms.vonage.signature_secret = Secret::new(SECRET);
    config.http.public_url = Some(PUBLIC.into());
    config.sms.retries = 2;
    config
}

/// Vonage's answer to a call it placed (its API reference's example).
fn started() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "uuid": CALL_UUID,
        "status": "started",
        "direction": "outbound",
        "conversation_uuid": "CON-2be039b2-d0a4-4274-afc8-d7b241c7c044",
    }))
}

async fn vonage_server(reply: ResponseTemplate) -> MockServer {
    let vonage = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/calls"))
        .respond_with(reply)
        .mount(&vonage)
        .await;
    vonage
}

async fn call(app: &TestApp, locale: Option<&str>) -> Reply {
    let mut body = json!({"phone": PHONE, "channel": "voice"});
    if let Some(locale) = locale {
        body["locale"] = json!(locale);
    }
    app.post_json("/v1/otp", body).await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The JWT Vonage signs an event with: HS256 by `secret`, the body's
/// SHA-256 in `payload_hash`, issued at `iat`.
fn event_token(secret: &str, body: &str, iat: u64) -> String {
    let claims = json!({
        "iat": iat,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": "Vonage",
        "payload_hash": hex::encode(Sha256::digest(body.as_bytes())),
        "api_key": "abcd1234",
        "application_id": APPLICATION,
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A call event as Vonage posts it: compact JSON.
fn event(status: &str) -> String {
    json!({
        "uuid": CALL_UUID,
        "conversation_uuid": "CON-2be039b2-d0a4-4274-afc8-d7b241c7c044",
        "status": status,
        "direction": "outbound",
        "timestamp": "2026-01-01T12:00:00.000Z",
        "from": "14155550100",
        "to": "14155552671",
    })
    .to_string()
}

async fn post_event(app: &TestApp, body: &str, token: Option<&str>) -> Reply {
    let mut request = app
        .client
        .post(app.url("/v1/webhooks/vonage/calls"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    reply(request.send().await.unwrap()).await
}

async fn delivery(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/verifications/{id}")).await.body["delivery"].clone()
}

#[tokio::test]
async fn a_call_carries_a_signed_jwt_and_an_inline_ncco_and_the_code_verifies() {
    let vonage = vonage_server(started()).await;
    let app = spawn_app(with_vonage_voice(memory_config(), &vonage)).await;
    let reply = call(&app, Some("de")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "voice");
    assert_eq!(reply.body["provider"], "vonage");
    assert_eq!(reply.body["message_id"], CALL_UUID);

    let requests = vonage.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.url.path(), "/v1/calls");
    assert_eq!(request.headers.get("content-type").unwrap(), "application/json");
    let token = request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .expect("a bearer token");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
        &validation,
    )
    .expect("the JWT verifies with the application's public key")
    .claims;
    assert_eq!(claims["application_id"], APPLICATION);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) < 60, "{claims}");
    assert!(claims["exp"].as_u64().unwrap() > iat);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "{claims}");

    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let words = body["ncco"][0]["text"].as_str().unwrap().to_owned();
    let code = code_in(&words.replace(". ", ""));
    let spoken: Vec<String> = code.chars().map(|d| format!("{d}.")).collect();
    let spoken = spoken.join(" ");
    assert_eq!(
        body,
        json!({
            "to": [{"type": "phone", "number": "14155552671"}],
            "from": {"type": "phone", "number": "14155550100"},
            "ncco": [{
                "action": "talk",
                "text": format!(
                    "Ihr Bestätigungscode lautet: {spoken} Noch einmal, Ihr Code lautet: {spoken}"
                ),
                "language": "de-DE",
            }],
            "event_url": [EVENTS_URL],
            "event_method": "POST",
        })
    );
    let verified = app.verify(PHONE, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "approved");
}

#[tokio::test]
async fn a_signed_completed_event_delivers_and_forged_tampered_stale_or_replayed_ones_change_nothing() {
    let vonage = vonage_server(started()).await;
    let app = spawn_app(with_vonage_voice(memory_config(), &vonage)).await;
    let sent = call(&app, None).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let completed = event("completed");

    // Unsigned, signed with another secret, changed after signing, or
    // signed too long ago: refused, and the call stays where it was.
    post_event(&app, &completed, None)
        .await
        .assert_problem(403, "invalid_signature");
    let foreign = event_token("another-secret", &completed, now());
    post_event(&app, &completed, Some(&foreign))
        .await
        .assert_problem(403, "invalid_signature");
    let signed = event_token(SECRET, &completed, now());
    let tampered = event("busy");
    post_event(&app, &tampered, Some(&signed))
        .await
        .assert_problem(403, "invalid_signature");
    let stale = event_token(SECRET, &completed, now() - 600);
    post_event(&app, &completed, Some(&stale))
        .await
        .assert_problem(403, "invalid_signature");
    assert_eq!(delivery(&app, &id).await["state"], "queued");

    let taken = post_event(&app, &completed, Some(&signed)).await;
    assert_eq!(
        (taken.status, &taken.body["recorded"]),
        (200, &json!(true)),
        "{}",
        taken.body
    );
    let delivery = delivery(&app, &id).await;
    assert_eq!(delivery["provider"], "vonage");
    assert_eq!(delivery["message_id"], CALL_UUID);
    assert_eq!(delivery["state"], "delivered", "{delivery}");

    // The same event again, or a late one: nothing changes.
    let replayed = post_event(&app, &completed, Some(&signed)).await;
    assert_eq!(
        (replayed.status, &replayed.body["recorded"]),
        (200, &json!(false))
    );
    let ringing = event("ringing");
    let late = post_event(&app, &ringing, Some(&event_token(SECRET, &ringing, now()))).await;
    assert_eq!((late.status, &late.body["recorded"]), (200, &json!(false)));
}

#[tokio::test]
async fn vonage_refusing_the_callee_is_a_rejected_phone_and_is_not_retried() {
    let refused = ResponseTemplate::new(400).set_body_raw(
        json!({
            "type": "https://developer.nexmo.com/api-errors#invalid-params",
            "title": "Bad Request",
            "detail": "The request failed due to validation errors",
            "invalid_parameters": [{"name": "to[0].number", "reason": "Invalid phone number"}],
            "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
        })
        .to_string(),
        "application/problem+json",
    );
    let vonage = vonage_server(refused).await;
    let app = spawn_app(with_vonage_voice(memory_config(), &vonage)).await;
    call(&app, None).await.assert_problem(422, "phone_rejected");
    assert_eq!(vonage.received_requests().await.unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn vonage_unavailable_is_retried_with_a_fresh_token_and_then_calls() {
    let vonage = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_raw(
            r#"{"type":"https://developer.nexmo.com/api-errors#internal-error","title":"Service Unavailable"}"#,
            "application/problem+json",
        ))
        .up_to_n_times(1)
        .mount(&vonage)
        .await;
    Mock::given(method("POST"))
        .respond_with(started())
        .mount(&vonage)
        .await;
    let app = spawn_app(with_vonage_voice(memory_config(), &vonage)).await;
    let reply = call(&app, None).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let requests = vonage.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let token = |i: usize| requests[i].headers.get("authorization").unwrap().clone();
    assert_ne!(token(0), token(1), "each try has its own jti");
}

#[tokio::test]
async fn bad_credentials_fail_the_send_without_retrying() {
    let vonage = vonage_server(ResponseTemplate::new(401).set_body_raw(
        r#"{"type":"https://developer.nexmo.com/api-errors#unauthorized","title":"Invalid Token"}"#,
        "application/problem+json",
    ))
    .await;
    let app = spawn_app(with_vonage_voice(memory_config(), &vonage)).await;
    let reply = call(&app, None).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(vonage.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_start_refuses_an_incomplete_vonage_application() {
    let vonage = MockServer::start().await;
    let ready = || with_vonage_voice(memory_config(), &vonage);

    let mut config = ready();
    config.voice.vonage.application_id = String::new();
    assert_eq!(refused_at_start(&config).await.key, "voice.vonage.application_id");

    for bad in [
        "",
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        let mut config = ready();
        config.voice.vonage.private_key = Secret::new(bad);
        let refused = refused_at_start(&config).await;
        assert_eq!(refused.key, "voice.vonage.private_key", "{refused}");
        assert!(!refused.to_string().contains("AAAA"), "{refused}");
    }

    // No number: voice.from is empty and sms.vonage.from is a sender id.
    let mut config = ready();
    config.voice.from = String::new();
    config.sms.vonage.from = "ACMEOT".into();
    assert_eq!(refused_at_start(&config).await.key, "voice.from");

    let mut config = ready();
    config.sms.vonage.signature_secret = Secret::default();
    assert_eq!(refused_at_start(&config).await.key, "sms.vonage.signature_secret");

    let mut config = ready();
    config.voice.vonage.base_url = "http://api.nexmo.example".into();
    assert_eq!(refused_at_start(&config).await.key, "voice.vonage.base_url");
}

#[tokio::test]
async fn the_sms_sender_is_the_calling_number_when_voice_from_is_empty() {
    let vonage = vonage_server(started()).await;
    let mut config = with_vonage_voice(memory_config(), &vonage);
    config.voice.from = String::new();
    config.sms.vonage.from = "+14155550199".into();
    let app = spawn_app(config).await;
    assert_eq!(call(&app, None).await.status, 202);
    let requests = vonage.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["from"], json!({"type": "phone", "number": "14155550199"}));
}
