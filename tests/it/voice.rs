//! The voice channel: a call that reads the code, digit by digit and
//! twice, through Twilio's Calls API (a wiremock server checking the
//! request Twilio's API reference gives, with the TwiML inline) and its
//! signed status callbacks (tampering and replay); the console for local
//! work; and a channel with no caller.

use otpd::config::{Config, Secret, SmsProvider, VoiceProvider};
use serde_json::json;
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{code_in, memory_config, spawn_app, Reply, TestApp};
use crate::webhooks::{twilio_signature, PUBLIC, TWILIO_TOKEN};

const PHONE: &str = "+14155552671";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const CALL_SID: &str = "CA5ef8732a3c49700934481addd5ce1659";
const CALLS_URL: &str = "https://otp.example.com/v1/webhooks/twilio/calls";

fn with_twilio_voice(mut config: Config, twilio: &MockServer) -> Config {
    config.voice.provider = VoiceProvider::Twilio;
    config.voice.from = "+14155550100".into();
    let t = &mut config.sms.twilio;
    t.account_sid = ACCOUNT.into();
    t.auth_token = Secret::new(TWILIO_TOKEN);
    t.base_url = twilio.uri();
    config.http.public_url = Some(PUBLIC.into());
    config.sms.retries = 2;
    config
}

/// Twilio's answer to a call it queued (its API reference's example).
fn queued() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "sid": CALL_SID,
        "account_sid": ACCOUNT,
        "to": PHONE,
        "from": "+14155550100",
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
    }))
}

async fn twilio_server(reply: ResponseTemplate) -> MockServer {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json")))
        .and(basic_auth(ACCOUNT, TWILIO_TOKEN))
        .respond_with(reply)
        .mount(&twilio)
        .await;
    twilio
}

async fn call(app: &TestApp, locale: Option<&str>) -> Reply {
    let mut body = json!({"phone": PHONE, "channel": "voice"});
    if let Some(locale) = locale {
        body["locale"] = json!(locale);
    }
    app.post_json("/v1/otp", body).await
}

/// The forms Twilio was sent, as pairs in their order.
async fn forms(twilio: &MockServer) -> Vec<Vec<(String, String)>> {
    twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(
                r.headers.get("content-type").unwrap(),
                "application/x-www-form-urlencoded"
            );
            url::form_urlencoded::parse(&r.body).into_owned().collect()
        })
        .collect()
}

async fn call_status(app: &TestApp, params: &[(&str, &str)], signature: &str) -> Reply {
    let response = app
        .client
        .post(app.url("/v1/webhooks/twilio/calls"))
        .header("x-twilio-signature", signature)
        .form(params)
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response).await
}

#[tokio::test]
async fn a_call_reads_the_code_in_inline_twiml_and_the_code_verifies() {
    let twilio = twilio_server(queued()).await;
    let app = spawn_app(with_twilio_voice(memory_config(), &twilio)).await;
    let reply = call(&app, Some("de")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "voice");
    assert_eq!(reply.body["provider"], "twilio");
    assert_eq!(reply.body["message_id"], CALL_SID);
    let forms = forms(&twilio).await;
    assert_eq!(forms.len(), 1);
    let field = |name: &str| {
        forms[0]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {:?}", forms[0]))
    };
    assert_eq!(field("To"), PHONE);
    assert_eq!(field("From"), "+14155550100");
    assert_eq!(field("StatusCallback"), CALLS_URL);
    let twiml = field("Twiml");
    let code = code_in(&twiml.replace(". ", ""));
    let spoken: Vec<String> = code.chars().map(|d| format!("{d}.")).collect();
    let spoken = spoken.join(" ");
    assert_eq!(
        twiml,
        format!(
            "<Response><Say language=\"de-DE\">Ihr Bestätigungscode lautet: {spoken} \
             Noch einmal, Ihr Code lautet: {spoken}</Say></Response>"
        )
    );
    assert_eq!(forms[0].len(), 4, "{:?}", forms[0]);
    let verified = app.verify(PHONE, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "approved");
}

#[tokio::test]
async fn signed_call_statuses_move_the_delivery_and_forged_or_replayed_ones_do_not() {
    let twilio = twilio_server(queued()).await;
    let app = spawn_app(with_twilio_voice(memory_config(), &twilio)).await;
    let sent = call(&app, None).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let completed = [
        ("AccountSid", ACCOUNT),
        ("CallSid", CALL_SID),
        ("CallStatus", "completed"),
        ("CallDuration", "14"),
        ("Direction", "outbound-api"),
    ];
    // Signed for the messages' path, or with a field changed: refused.
    let wrong_url = twilio_signature("https://otp.example.com/v1/webhooks/twilio", &completed);
    call_status(&app, &completed, &wrong_url)
        .await
        .assert_problem(403, "invalid_signature");
    let mut tampered = completed;
    tampered[2] = ("CallStatus", "no-answer");
    let signature = twilio_signature(CALLS_URL, &completed);
    call_status(&app, &tampered, &signature)
        .await
        .assert_problem(403, "invalid_signature");
    let status = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(status.body["delivery"]["state"], "queued", "{}", status.body);

    let taken = call_status(&app, &completed, &signature).await;
    assert_eq!(
        (taken.status, &taken.body["recorded"]),
        (200, &json!(true)),
        "{}",
        taken.body
    );
    let status = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(status.body["channel"], "voice");
    assert_eq!(status.body["attempts"][0]["channel"], "voice");
    assert_eq!(status.body["delivery"]["provider"], "twilio");
    assert_eq!(status.body["delivery"]["message_id"], CALL_SID);
    assert_eq!(status.body["delivery"]["state"], "delivered");
    // The same report again, or a late one: nothing changes.
    let replayed = call_status(&app, &completed, &signature).await;
    assert_eq!(replayed.body["recorded"], false);
    let late = [("CallSid", CALL_SID), ("CallStatus", "ringing")];
    let late_reply = call_status(&app, &late, &twilio_signature(CALLS_URL, &late)).await;
    assert_eq!(late_reply.body["recorded"], false);
}

#[tokio::test]
async fn twilio_refusing_the_number_is_a_rejected_phone_and_nothing_stays_pending() {
    let refused = ResponseTemplate::new(400).set_body_json(json!({
        "code": 21215,
        "message": "Account not authorized to call +14155552671. Perhaps you need to enable some international permissions",
        "more_info": "https://www.twilio.com/docs/errors/21215",
        "status": 400,
    }));
    let twilio = twilio_server(refused).await;
    let app = spawn_app(with_twilio_voice(memory_config(), &twilio)).await;
    call(&app, None).await.assert_problem(422, "phone_rejected");
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1, "not retried");
    let status = app.get(&format!("/v1/otp/{}", PHONE.replace('+', "%2B"))).await;
    assert_eq!(status.status, 404, "{}", status.body);
}

#[tokio::test]
async fn twilio_busy_is_retried_and_then_calls() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 20503, "message": "Service unavailable", "status": 503})),
        )
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(queued())
        .mount(&twilio)
        .await;
    let app = spawn_app(with_twilio_voice(memory_config(), &twilio)).await;
    let reply = call(&app, None).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(twilio.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_console_prints_what_a_call_would_say_and_the_inbox_keeps_it() {
    let app = spawn_app(memory_config()).await;
    let reply = call(&app, Some("fr-CA")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "voice");
    assert_eq!(reply.body["provider"], "console");
    let line = app
        .outbox
        .lines()
        .into_iter()
        .find(|l| {
            l.starts_with(&format!(
                "Voice call to {PHONE}: (fr-CA) Votre code de vérification est: "
            ))
        })
        .expect("the call's line");
    let code = code_in(&line.replace(". ", ""));
    assert!(!app.outbox.lines().iter().any(|l| l.starts_with("SMS to")));
    let verified = app.verify(PHONE, &code).await;
    assert_eq!(verified.body["status"], "approved", "{}", verified.body);
}

#[tokio::test]
async fn without_a_caller_the_voice_channel_is_refused_before_anything_is_taken() {
    let twilio = MockServer::start().await;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Twilio;
    config.sms.twilio.account_sid = ACCOUNT.into();
    config.sms.twilio.auth_token = Secret::new(TWILIO_TOKEN);
    config.sms.twilio.from = "+14155550100".into();
    config.sms.twilio.base_url = twilio.uri();
    let app = spawn_app(config).await;
    call(&app, None).await.assert_problem(422, "channel_unavailable");
    assert!(twilio.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_twilio_caller_needs_a_number_to_call_from() {
    let twilio = MockServer::start().await;
    let mut config = with_twilio_voice(memory_config(), &twilio);
    config.voice.from = String::new();
    let refused = crate::helpers::refused_at_start(&config).await;
    assert_eq!(refused.key, "voice.from", "{refused}");
}
