//! Voice calls through Plivo: the Make a Call request (a wiremock server
//! checking the path, HTTP Basic and the JSON body of Plivo's API
//! reference), the sealed answer URL fetched as Plivo fetches it (signed
//! V3; altered, expired, foreign or unsigned fetches refused, revealing
//! nothing), the signed hangup callback (tampering, replay), refusals,
//! retries, and what start-up refuses.

use std::time::Duration;

use otpd::config::{Config, Secret, VoiceProvider};
use serde_json::{json, Value};
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{code_in, memory_config, refused_at_start, spawn_app, Reply, TestApp};
use crate::webhooks::{plivo_signature, PLIVO_TOKEN, PUBLIC};

const PHONE: &str = "+14155552671";
const AUTH_ID: &str = "MAXXXXXXXXXXXXXXXXXX";
const REQUEST_UUID: &str = "9834029e-58b6-11e1-b8b7-a5bd0e4e126f";
const CALL_UUID: &str = "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36";
const HANGUP_URL: &str = "https://otp.example.com/v1/webhooks/plivo/calls";
const ANSWER_PREFIX: &str = "https://otp.example.com/v1/voice/plivo/";
const NONCE: &str = "31627761595286130198";

/// Calls through Plivo from `sms.plivo.src` (no `voice.from`), SMS on the
/// console: the hangup key must not depend on SMS going through Plivo.
fn with_plivo_voice(mut config: Config, plivo: &MockServer) -> Config {
    config.voice.provider = VoiceProvider::Plivo;
    let p = &mut config.sms.plivo;
    p.auth_id = AUTH_ID.into();
    p.auth_token = Secret::new(PLIVO_TOKEN);
    p.src = "+14155550100".into();
    p.base_url = plivo.uri();
    config.http.public_url = Some(PUBLIC.into());
    config.sms.retries = 2;
    config
}

/// Plivo's answer to a call it fired (its API reference's example).
fn fired() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "message": "call fired",
        "request_uuid": REQUEST_UUID,
        "api_id": "97ceeb52-58b6-11e1-86da-77300b68f8bb",
    }))
}

async fn plivo_server(reply: ResponseTemplate) -> MockServer {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{AUTH_ID}/Call/")))
        .and(basic_auth(AUTH_ID, PLIVO_TOKEN))
        .respond_with(reply)
        .mount(&plivo)
        .await;
    plivo
}

async fn call(app: &TestApp, locale: Option<&str>) -> Reply {
    let mut body = json!({"phone": PHONE, "channel": "voice"});
    if let Some(locale) = locale {
        body["locale"] = json!(locale);
    }
    app.post_json("/v1/otp", body).await
}

/// The JSON bodies Plivo was sent, in order.
async fn bodies(plivo: &MockServer) -> Vec<Value> {
    plivo
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect()
}

/// What Plivo posts to the answer URL of an outbound call.
fn answer_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CallUUID", CALL_UUID),
        ("From", "14155550100"),
        ("To", "14155552671"),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound"),
        ("ALegUUID", CALL_UUID),
        ("ALegRequestUUID", REQUEST_UUID),
        ("RequestUUID", REQUEST_UUID),
        ("Event", "StartApp"),
    ]
}

/// Fetches `url` (public) from `app` as Plivo would, signed for
/// `signed_url`, or unsigned.
async fn fetch_answer(app: &TestApp, url: &str, signed_url: Option<&str>) -> reqwest::Response {
    let params = answer_params();
    let local = url.strip_prefix(PUBLIC).expect("a public URL");
    let mut request = app.client.post(app.url(local)).form(&params);
    if let Some(signed_url) = signed_url {
        request = request
            .header(
                "x-plivo-signature-v3",
                plivo_signature(signed_url, NONCE, &params),
            )
            .header("x-plivo-signature-v3-nonce", NONCE);
    }
    request.send().await.unwrap()
}

/// The answer URL the one call Plivo was asked for carries.
async fn answer_url(plivo: &MockServer) -> String {
    let bodies = bodies(plivo).await;
    bodies.last().unwrap()["answer_url"].as_str().unwrap().to_owned()
}

/// A refusal that says nothing of the words: a problem, no digit of a code.
async fn assert_refused(response: reqwest::Response, status: u16, code: &str) {
    let reply = crate::helpers::reply(response).await;
    reply.assert_problem(status, code);
    let text = reply.body.to_string();
    assert!(!text.contains("Speak") && !text.contains("code is"), "{text}");
}

#[tokio::test]
async fn a_plivo_call_fetches_sealed_words_that_speak_the_code_and_the_code_verifies() {
    let plivo = plivo_server(fired()).await;
    let app = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    let reply = call(&app, Some("de")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "voice");
    assert_eq!(reply.body["provider"], "plivo");
    assert_eq!(reply.body["message_id"], REQUEST_UUID);

    let bodies = bodies(&plivo).await;
    assert_eq!(bodies.len(), 1);
    let body = bodies[0].as_object().unwrap();
    assert_eq!(body["from"], "14155550100");
    assert_eq!(body["to"], "14155552671");
    assert_eq!(body["answer_method"], "POST");
    assert_eq!(body["hangup_url"], HANGUP_URL);
    assert_eq!(body["hangup_method"], "POST");
    assert_eq!(body.len(), 6, "{body:?}");
    let url = body["answer_url"].as_str().unwrap();
    let token = url.strip_prefix(ANSWER_PREFIX).expect("the answer path");
    assert!(
        token.len() > 100
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );

    let answer = fetch_answer(&app, url, Some(url)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "text/xml");
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let xml = answer.text().await.unwrap();
    let code = code_in(&xml.replace(". ", ""));
    assert!(!url.contains(&code), "the URL shows the code");
    let spoken: Vec<String> = code.chars().map(|d| format!("{d}.")).collect();
    let spoken = spoken.join(" ");
    assert_eq!(
        xml,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Speak language=\"de-DE\">\
             Ihr Bestätigungscode lautet: {spoken} Noch einmal, Ihr Code lautet: {spoken}\
             </Speak></Response>"
        )
    );
    let verified = app.verify(PHONE, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "approved");
}

#[tokio::test]
async fn unsigned_misdirected_altered_and_foreign_fetches_are_refused_and_reveal_nothing() {
    let plivo = plivo_server(fired()).await;
    let app = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    assert_eq!(call(&app, None).await.status, 202);
    let url = answer_url(&plivo).await;

    // Unsigned, or signed for another URL: the signature is wrong.
    assert_refused(fetch_answer(&app, &url, None).await, 403, "invalid_signature").await;
    assert_refused(
        fetch_answer(&app, &url, Some(HANGUP_URL)).await,
        403,
        "invalid_signature",
    )
    .await;

    // Altered anywhere, though signed as it stands: no words.
    let token = url.strip_prefix(ANSWER_PREFIX).unwrap();
    for at in [0, token.len() / 2, token.len() - 1] {
        let mut altered = token.as_bytes().to_vec();
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = format!("{ANSWER_PREFIX}{}", String::from_utf8(altered).unwrap());
        assert_refused(
            fetch_answer(&app, &altered, Some(&altered)).await,
            404,
            "not_found",
        )
        .await;
    }
    let made_up = format!("{ANSWER_PREFIX}{}", "A".repeat(200));
    assert_refused(
        fetch_answer(&app, &made_up, Some(&made_up)).await,
        404,
        "not_found",
    )
    .await;

    // Sealed by an instance with another hash key: not ours to open.
    let other_plivo = plivo_server(fired()).await;
    let mut other = with_plivo_voice(memory_config(), &other_plivo);
    other.otp.hash_keys = vec![Secret::new("another-hash-key-0123456789abcdef")];
    let other = spawn_app(other).await;
    assert_eq!(call(&other, None).await.status, 202);
    let foreign = answer_url(&other_plivo).await;
    assert_refused(
        fetch_answer(&app, &foreign, Some(&foreign)).await,
        404,
        "not_found",
    )
    .await;
    // ... which another instance with the same key opens.
    let twin = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    assert_eq!(fetch_answer(&twin, &url, Some(&url)).await.status(), 200);
}

#[tokio::test]
async fn plivo_needs_no_api_key_for_the_words_or_the_hangup() {
    const KEY: &str = "voice-plivo-key-0123456789";
    let plivo = plivo_server(fired()).await;
    let mut config = with_plivo_voice(memory_config(), &plivo);
    config.auth.api_keys = vec![Secret::new(KEY)];
    let app = spawn_app(config).await;
    let sent = app
        .post_json_with(
            "/v1/otp",
            json!({"phone": PHONE, "channel": "voice"}),
            &[("authorization", &format!("Bearer {KEY}"))],
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let url = answer_url(&plivo).await;
    assert_eq!(fetch_answer(&app, &url, Some(&url)).await.status(), 200);
    let ringing = [("RequestUUID", REQUEST_UUID), ("CallStatus", "ringing")];
    assert_eq!(hangup(&app, &ringing, &ringing).await.status, 200);
}

#[tokio::test]
async fn an_answer_url_expires_with_the_code() {
    let plivo = plivo_server(fired()).await;
    let mut config = with_plivo_voice(memory_config(), &plivo);
    config.otp.ttl_secs = 1;
    let app = spawn_app(config).await;
    assert_eq!(call(&app, None).await.status, 202);
    let url = answer_url(&plivo).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_refused(fetch_answer(&app, &url, Some(&url)).await, 404, "not_found").await;
}

async fn hangup(app: &TestApp, params: &[(&str, &str)], signed: &[(&str, &str)]) -> Reply {
    let response = app
        .client
        .post(app.url("/v1/webhooks/plivo/calls"))
        .header("x-plivo-signature-v3", plivo_signature(HANGUP_URL, NONCE, signed))
        .header("x-plivo-signature-v3-nonce", NONCE)
        .form(params)
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response).await
}

#[tokio::test]
async fn signed_hangups_move_the_delivery_and_tampered_or_replayed_ones_do_not() {
    let plivo = plivo_server(fired()).await;
    let app = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    let sent = call(&app, None).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let completed = [
        ("CallUUID", CALL_UUID),
        ("RequestUUID", REQUEST_UUID),
        ("CallStatus", "completed"),
        ("HangupCause", "NORMAL_CLEARING"),
        ("Duration", "14"),
        ("Direction", "outbound"),
    ];
    let mut tampered = completed;
    tampered[2] = ("CallStatus", "no-answer");
    hangup(&app, &tampered, &completed)
        .await
        .assert_problem(403, "invalid_signature");
    let status = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(status.body["delivery"]["state"], "queued", "{}", status.body);

    let taken = hangup(&app, &completed, &completed).await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!(taken.body["recorded"], true);
    let status = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(status.body["delivery"]["provider"], "plivo");
    assert_eq!(status.body["delivery"]["message_id"], REQUEST_UUID);
    assert_eq!(status.body["delivery"]["state"], "delivered", "{}", status.body);
    let replayed = hangup(&app, &completed, &completed).await;
    assert_eq!(replayed.body["recorded"], false);
}

#[tokio::test]
async fn an_unanswered_call_is_undelivered() {
    let plivo = plivo_server(fired()).await;
    let app = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    let sent = call(&app, None).await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let unanswered = [
        ("RequestUUID", REQUEST_UUID),
        ("CallStatus", "no-answer"),
        ("HangupCause", "NO_ANSWER"),
    ];
    let taken = hangup(&app, &unanswered, &unanswered).await;
    assert_eq!(taken.body["recorded"], true, "{}", taken.body);
    let status = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(status.body["delivery"]["state"], "undelivered", "{}", status.body);
}

#[tokio::test]
async fn plivo_refusing_the_number_is_a_rejected_phone_and_not_retried() {
    let refused = ResponseTemplate::new(400).set_body_json(json!({
        "api_id": "c5b0f1b2-0c3a-11ee-8c4f-0242ac110003",
        "error": "invalid 'to' parameter",
    }));
    let plivo = plivo_server(refused).await;
    let app = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    call(&app, None).await.assert_problem(422, "phone_rejected");
    assert_eq!(plivo.received_requests().await.unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn plivo_failing_is_retried_and_then_calls() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "server error"})))
        .up_to_n_times(1)
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .respond_with(fired())
        .mount(&plivo)
        .await;
    let app = spawn_app(with_plivo_voice(memory_config(), &plivo)).await;
    let reply = call(&app, None).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(plivo.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_plivo_caller_needs_a_public_url_and_a_number_to_call_from() {
    let plivo = MockServer::start().await;
    let mut config = with_plivo_voice(memory_config(), &plivo);
    config.http.public_url = None;
    assert_eq!(refused_at_start(&config).await.key, "http.public_url");
    let mut config = with_plivo_voice(memory_config(), &plivo);
    config.sms.plivo.src = String::new();
    assert_eq!(refused_at_start(&config).await.key, "voice.from");
    config.voice.from = "OTPD".into();
    assert_eq!(refused_at_start(&config).await.key, "voice.from");
    let mut config = with_plivo_voice(memory_config(), &plivo);
    config.sms.plivo.auth_token = Secret::default();
    assert_eq!(refused_at_start(&config).await.key, "sms.plivo.auth_token");
}
