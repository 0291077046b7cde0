//! Plivo and Twilio, each a wiremock server that checks the exact wire format
//! of the vendor's docs; retries, failover, rejections and timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use otpd::config::{Config, Secret, SmsProvider};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{memory_config, spawn_app, TestApp};

pub(crate) const PHONE: &str = "+14155552671";
const PLIVO_ID: &str = "MAXXXXXXXXXXXXXXXXXX";
const PLIVO_TOKEN: &str = "plivo-token-secret";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-token-secret";
pub(crate) const PLIVO_PATH: &str = "/v1/Account/MAXXXXXXXXXXXXXXXXXX/Message/";
pub(crate) const TWILIO_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub(crate) fn with_plivo(config: &mut Config, server: &MockServer) {
    config.sms.plivo.auth_id = PLIVO_ID.into();
    config.sms.plivo.auth_token = Secret::new(PLIVO_TOKEN);
    config.sms.plivo.src = "14155550000".into();
    config.sms.plivo.base_url = server.uri();
}

pub(crate) fn with_twilio(config: &mut Config, server: &MockServer) {
    config.sms.twilio.account_sid = TWILIO_SID.into();
    config.sms.twilio.auth_token = Secret::new(TWILIO_TOKEN);
    config.sms.twilio.from = "+14155550000".into();
    config.sms.twilio.base_url = server.uri();
}

pub(crate) fn config_for(provider: SmsProvider) -> Config {
    let mut config = memory_config();
    config.sms.provider = provider;
    config.sms.timeout_ms = 2000;
    config
}

pub(crate) fn plivo_accepted(uuid: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "api_id": "db342550-7f1d-11e1-8ea7-1231380bc196",
        "message": "message(s) queued",
        "message_uuid": [uuid],
    }))
}

pub(crate) fn plivo_error(status: u16, error: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"api_id": "97ceeb52-58b6-11e1-86da-77300b68f8bb", "error": error}))
}

pub(crate) fn twilio_created(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued", "to": PHONE}))
}

pub(crate) fn twilio_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

/// The form body, field by field, exactly these fields.
pub(crate) struct FormBody(BTreeMap<String, String>);

impl FormBody {
    pub(crate) fn of(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

impl Match for FormBody {
    fn matches(&self, request: &Request) -> bool {
        let got: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body).into_owned().collect();
        got == self.0
    }
}

/// The text of the message the vendor got, for the `otp` to be read from.
pub(crate) fn sent_text(request: &Request) -> String {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(json) => json["text"].as_str().unwrap().to_owned(),
        Err(_) => url::form_urlencoded::parse(&request.body)
            .find(|(k, _)| k == "Body")
            .map(|(_, v)| v.into_owned())
            .unwrap(),
    }
}

pub(crate) async fn requests_to(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

/// The text otpd renders for `code` with the default template.
pub(crate) fn default_text(code: &str) -> String {
    format!("Your otpd verification code is {code}. It expires in 3 minutes.")
}

/// A body matcher on every field but the text, whose code is random; the
/// text is then checked against what the user verifies with.
struct PlivoFields(Value);

impl Match for PlivoFields {
    fn matches(&self, request: &Request) -> bool {
        let Ok(mut got) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let text = got.as_object_mut().and_then(|o| o.remove("text"));
        got == self.0
            && text.is_some_and(|t| t.as_str().is_some_and(|t| crate::helpers::code_in(t).len() == 6))
    }
}

async fn verify_code_from(app: &TestApp, request: &Request) {
    let text = sent_text(request);
    let code = crate::helpers::code_in(&text);
    assert_eq!(text, default_text(&code));
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn plivo_gets_its_documented_request() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PLIVO_PATH))
        .and(header("authorization", basic(PLIVO_ID, PLIVO_TOKEN).as_str()))
        .and(header("content-type", "application/json"))
        .and(PlivoFields(json!({"src": "14155550000", "dst": "14155552671"})))
        .respond_with(plivo_accepted("db3ce55a-7f1d-11e1-8ea7-1231380bc196"))
        .expect(1)
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;

    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "plivo");
    assert_eq!(sent.body["message_id"], "db3ce55a-7f1d-11e1-8ea7-1231380bc196");
    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    let delivery = &status.body["delivery"];
    assert_eq!(delivery["provider"], "plivo");
    assert_eq!(delivery["message_id"], "db3ce55a-7f1d-11e1-8ea7-1231380bc196");
    assert_eq!(delivery["state"], "queued");
    assert!(app.outbox.lines().is_empty(), "nothing on the console");
    verify_code_from(&app, &requests_to(&plivo).await[0]).await;
}

#[tokio::test]
async fn plivo_is_asked_for_a_status_callback_when_public_url_is_set() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PLIVO_PATH))
        .and(PlivoFields(json!({
            "src": "14155550000",
            "dst": "14155552671",
            "url": "https://otp.example.com/v1/webhooks/plivo",
            "method": "POST",
        })))
        .respond_with(plivo_accepted("uuid-callback"))
        .expect(1)
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    config.http.public_url = Some("https://otp.example.com/".into());
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
}

#[tokio::test]
async fn twilio_gets_its_documented_request() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(header("authorization", basic(TWILIO_SID, TWILIO_TOKEN).as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(twilio_created("SM0123456789abcdef0123456789abcdef"))
        .expect(1)
        .mount(&twilio)
        .await;
    let mut config = config_for(SmsProvider::Twilio);
    with_twilio(&mut config, &twilio);
    let app = spawn_app(config).await;

    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "twilio");
    assert_eq!(sent.body["message_id"], "SM0123456789abcdef0123456789abcdef");

    let request = &requests_to(&twilio).await[0];
    let code = crate::helpers::code_in(&sent_text(request));
    let body = default_text(&code);
    assert!(FormBody::of(&[("To", PHONE), ("From", "+14155550000"), ("Body", &body)]).matches(request));
    verify_code_from(&app, request).await;
}

#[tokio::test]
async fn twilio_with_an_api_key_a_messaging_service_and_a_callback() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(header(
            "authorization",
            basic("SK0123456789abcdef0123456789abcdef", "key-secret").as_str(),
        ))
        .respond_with(twilio_created("SMfeed"))
        .expect(1)
        .mount(&twilio)
        .await;
    let mut config = config_for(SmsProvider::Twilio);
    with_twilio(&mut config, &twilio);
    // The auth token stays for checking delivery reports; the key sends.
    config.sms.twilio.api_key_sid = "SK0123456789abcdef0123456789abcdef".into();
    config.sms.twilio.api_key_secret = Secret::new("key-secret");
    config.sms.twilio.from = String::new();
    config.sms.twilio.messaging_service_sid = "MG0123456789abcdef0123456789abcdef".into();
    config.http.public_url = Some("https://otp.example.com".into());
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);

    let request = &requests_to(&twilio).await[0];
    let body = sent_text(request);
    assert!(FormBody::of(&[
        ("To", PHONE),
        ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
        ("Body", &body),
        ("StatusCallback", "https://otp.example.com/v1/webhooks/twilio"),
    ])
    .matches(request));
}

#[tokio::test]
async fn a_5xx_is_retried_then_succeeds() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PLIVO_PATH))
        .respond_with(plivo_error(503, "service unavailable"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .and(path(PLIVO_PATH))
        .respond_with(plivo_accepted("uuid-after-retries"))
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;
    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["message_id"], "uuid-after-retries");
    assert_eq!(requests_to(&plivo).await.len(), 3);
}

#[tokio::test]
async fn a_429_is_retried() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(twilio_error(429, 20429, "Too Many Requests"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(twilio_created("SMok"))
        .mount(&twilio)
        .await;
    let mut config = config_for(SmsProvider::Twilio);
    with_twilio(&mut config, &twilio);
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.body["message_id"], "SMok");
    assert_eq!(requests_to(&twilio).await.len(), 2);
}

#[tokio::test]
async fn when_retries_run_out_the_fallback_sends() {
    let (plivo, twilio) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(plivo_error(500, "internal error"))
        .expect(3)
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(twilio_created("SMfallback"))
        .expect(1)
        .mount(&twilio)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    config.sms.fallback = Some(SmsProvider::Twilio);
    with_plivo(&mut config, &plivo);
    with_twilio(&mut config, &twilio);
    let app = spawn_app(config).await;

    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "twilio");
    assert_eq!(sent.body["message_id"], "SMfallback");
    verify_code_from(&app, &requests_to(&twilio).await[0]).await;
}

#[tokio::test]
async fn a_rejected_number_is_422_without_retry_or_fallback() {
    let (plivo, twilio) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(twilio_error(
            400,
            21211,
            "The 'To' number +14155552671 is not a valid phone number.",
        ))
        .expect(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepted("never"))
        .expect(0)
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Twilio);
    config.sms.fallback = Some(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    with_twilio(&mut config, &twilio);
    let app = spawn_app(config).await;

    let reply = app.send(PHONE).await;
    reply.assert_problem(422, "phone_rejected");
    assert_eq!(reply.body["vendor_code"], "21211");
    // The vendor's words with their digits masked: a vendor may echo the code.
    assert_eq!(
        reply.body["vendor_message"],
        "The 'To' number +########### is not a valid phone number."
    );
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn plivo_refusing_dst_is_422() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_error(400, "invalid 'dst' parameter"))
        .expect(1)
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;
    let reply = app.send(PHONE).await;
    reply.assert_problem(422, "phone_rejected");
    assert_eq!(reply.body["vendor_code"], "400");
    assert_eq!(reply.body["vendor_message"], "invalid 'dst' parameter");
}

#[tokio::test]
async fn bad_credentials_are_502_at_once_and_leave_no_code() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_error(401, "authentication failed"))
        .expect(1)
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;
    let reply = app.send(PHONE).await;
    reply.assert_problem(502, "sms_delivery_failed");
    assert!(!reply.body.to_string().contains(PLIVO_TOKEN));
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_silent_vendor_times_out_into_a_502() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepted("too-late").set_delay(Duration::from_secs(5)))
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    config.sms.timeout_ms = 300;
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;
    let started = std::time::Instant::now();
    app.send(PHONE).await.assert_problem(502, "sms_delivery_failed");
    // Far under the vendor's 5 s: the deadline cut it (loose bound, shared machine).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_vendor_that_is_down_falls_back_to_the_console() {
    let closed = crate::own_redis::free_port();
    let mut config = config_for(SmsProvider::Twilio);
    config.sms.fallback = Some(SmsProvider::Console);
    config.sms.twilio.account_sid = TWILIO_SID.into();
    config.sms.twilio.auth_token = Secret::new(TWILIO_TOKEN);
    config.sms.twilio.from = "+14155550000".into();
    config.sms.twilio.base_url = format!("http://127.0.0.1:{closed}");
    let app = spawn_app(config).await;
    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "console");
    // The receipt differs from the one expected of Twilio, so it is recorded after the send.
    let delivery = app.get(&format!("/v1/otp/{PHONE}")).await.body["delivery"].clone();
    assert_eq!(delivery["provider"], "console");
    assert_eq!(delivery["message_id"], sent.body["message_id"]);
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

/// A vendor call carries its credentials and the code: a redirect is not
/// followed (the send fails as any refusal does), so neither reaches the
/// host the answer points to.
#[tokio::test]
async fn vendor_calls_follow_no_redirect() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepted("stolen"))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/steal", elsewhere.uri()).as_str()),
        )
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;
    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 502, "{}", sent.body);
    assert!(!plivo.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn test_numbers_get_their_fixed_code_and_no_sms() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepted("x"))
        .expect(0)
        .mount(&plivo)
        .await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    config.otp.test_numbers = [("+1 415 555 0100".to_owned(), Secret::new("424242"))].into();
    let app = spawn_app(config).await;

    let sent = app.send("+14155550100").await;
    assert_eq!(sent.status, 202);
    assert_eq!(sent.body["provider"], "test-number");
    assert_eq!(
        app.verify("+14155550100", "000000").await.body["attempts_remaining"],
        4
    );
    assert_eq!(app.verify("+14155550100", "424242").await.status, 200);
    app.verify("+14155550100", "424242")
        .await
        .assert_problem(404, "not_found");
}

/// A test number is never texted: no destination rule, cooldown or send
/// quota refuses it (Twilio's magic number is a US personal number), and
/// its guesses keep their limits.
#[tokio::test]
async fn test_numbers_skip_the_send_rules_and_keep_the_guess_limits() {
    let mut config = memory_config();
    config.limits = otpd::config::LimitsConfig::default();
    config.sms.denied_countries = vec!["US".into()];
    let magic = "+15005550006";
    config.otp.test_numbers = [(magic.to_owned(), Secret::new("424242"))].into();
    let app = spawn_app(config).await;
    app.send("+14155550100")
        .await
        .assert_problem(422, "destination_not_allowed");
    let mut approved = 0;
    for _ in 0..30 {
        let sent = app.send(magic).await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_eq!(sent.body["provider"], "test-number");
        assert_eq!(app.verify(magic, "424242").await.status, 200);
        approved += 1;
    }
    assert_eq!(approved, 30, "past the cooldown and the 5 sends per 10 minutes");
    let id = app.send(magic).await.body["verification_id"].clone();
    for remaining in (0..5).rev() {
        let wrong = app
            .post_json(
                "/v1/otp/verify",
                serde_json::json!({"verification_id": id, "code": "000000"}),
            )
            .await;
        assert_eq!(wrong.body["attempts_remaining"], remaining, "{}", wrong.body);
    }
    app.post_json(
        "/v1/otp/verify",
        serde_json::json!({"verification_id": id, "code": "424242"}),
    )
    .await
    .assert_problem(429, "max_attempts_reached");
}

#[tokio::test]
async fn the_template_and_both_autofill_lines_reach_the_phone() {
    let mut config = memory_config();
    config.sms.template = "{app}: {code} is your code, valid {minutes} min.".into();
    config.sms.app_name = "Acme".into();
    config.sms.android_app_hash = Some("FA+9qCX9VSu".into());
    config.sms.webotp_domain = Some("acme.example".into());
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    assert_eq!(
        app.outbox.lines(),
        [format!("SMS to {PHONE}: Acme: {code} is your code, valid 3 min.\\n\\nFA+9qCX9VSu\\n@acme.example #{code}")]
    );
}

#[tokio::test]
async fn the_start_is_refused_for_bad_sms_settings() {
    use otpd::startup::Application;
    type Change = fn(&mut Config);
    let cases: [(Change, &str, &str); 8] = [
        (
            |c| {
                c.sms.provider = SmsProvider::Twilio;
                c.sms.twilio.account_sid = TWILIO_SID.into();
                c.sms.twilio.api_key_sid = "SK0123456789abcdef0123456789abcdef".into();
                c.sms.twilio.api_key_secret = Secret::new("key-secret");
                c.sms.twilio.from = "+14155550000".into();
                c.http.public_url = Some("https://otp.example.com".into());
            },
            "sms.twilio.auth_token",
            "delivery reports",
        ),
        (
            |c| c.sms.provider = SmsProvider::Plivo,
            "sms.plivo.auth_id",
            "required",
        ),
        (
            |c| {
                c.sms.provider = SmsProvider::Twilio;
                c.sms.twilio.account_sid = TWILIO_SID.into();
                c.sms.twilio.from = "+14155550000".into();
            },
            "sms.twilio.auth_token",
            "required",
        ),
        (
            |c| c.sms.fallback = Some(SmsProvider::Console),
            "sms.fallback",
            "another",
        ),
        (
            |c| c.sms.template = format!("{}{{code}}", "x".repeat(200)),
            "sms.template",
            "206",
        ),
        (
            |c| c.sms.android_app_hash = Some("nope".into()),
            "sms.android_app_hash",
            "11",
        ),
        (
            |c| c.http.public_url = Some("otp.example.com".into()),
            "http.public_url",
            "https://",
        ),
        (
            |c| c.otp.test_numbers = [("+1415".to_owned(), Secret::new("1"))].into(),
            "otp.test_numbers.+1415",
            "valid",
        ),
    ];
    for (change, key, reason) in cases {
        let mut config = memory_config();
        change(&mut config);
        let err = Application::build(
            &config,
            otpd::adapters::sms::ConsoleOut::Writer(Box::new(std::io::sink())),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.key, key, "{err}");
        assert!(err.reason.contains(reason), "{err}");
    }
}

#[test]
fn tokens_never_show_in_debug() {
    let mut config = config_for(SmsProvider::Plivo);
    config.sms.plivo.auth_token = Secret::new(PLIVO_TOKEN);
    config.sms.twilio.auth_token = Secret::new(TWILIO_TOKEN);
    config.sms.twilio.api_key_secret = Secret::new("key-secret-value");
    let debug = format!("{config:?}");
    for secret in [PLIVO_TOKEN, TWILIO_TOKEN, "key-secret-value"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    let sender = otpd::adapters::sms::VendorSender::<otpd::adapters::sms::plivo::Plivo>::new(
        &config.sms.plivo,
        reqwest::Client::new(),
        otpd::adapters::sms::RetryPolicy::new(0, Duration::from_secs(1)),
        None,
        std::sync::Arc::new(otpd::adapters::metrics::Metrics::new()),
    );
    assert!(!format!("{sender:?}").contains(PLIVO_TOKEN));
}
