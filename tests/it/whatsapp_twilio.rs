//! WhatsApp through Twilio: the Messages API with `whatsapp:` addresses and
//! the approved authentication template's Content SID by language (a
//! wiremock server checking the request Twilio's API reference gives), its
//! refusals, and its statuses, taken as a message's at `/v1/webhooks/twilio`
//! and moving a workflow on.

use otpd::config::{Config, Secret, WhatsappProvider};
use serde_json::{json, Value};
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{memory_config, refused_at_start, spawn_app, Reply, TestApp};
use crate::webhooks::{twilio_signature, PUBLIC, TWILIO_TOKEN};

const PHONE: &str = "+14155552671";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const SID: &str = "SM3f5e8e4a1b2c4d5e6f708192a3b4c5d6";
const EN: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";
const PT_BR: &str = "HX0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const REPORTS: &str = "https://otp.example.com/v1/webhooks/twilio";

fn with_twilio_whatsapp(mut config: Config, twilio: &MockServer) -> Config {
    config.whatsapp.provider = WhatsappProvider::Twilio;
    let w = &mut config.whatsapp.twilio;
    w.from = "+14155238886".into();
    w.templates = [("en", EN), ("pt_BR", PT_BR)]
        .into_iter()
        .map(|(l, s)| (l.to_owned(), s.to_owned()))
        .collect();
    let t = &mut config.sms.twilio;
    t.account_sid = ACCOUNT.into();
    t.auth_token = Secret::new(TWILIO_TOKEN);
    t.base_url = twilio.uri();
    config.http.public_url = Some(PUBLIC.into());
    config.sms.retries = 2;
    config
}

async fn twilio_server(reply: ResponseTemplate) -> MockServer {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")))
        .and(basic_auth(ACCOUNT, TWILIO_TOKEN))
        .respond_with(reply)
        .mount(&twilio)
        .await;
    twilio
}

/// Twilio's answer to a message it queued.
fn queued() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "sid": SID, "account_sid": ACCOUNT, "to": format!("whatsapp:{PHONE}"),
        "from": "whatsapp:+14155238886", "status": "queued", "body": "",
    }))
}

async fn forms(twilio: &MockServer) -> Vec<Vec<(String, String)>> {
    twilio
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| url::form_urlencoded::parse(&r.body).into_owned().collect())
        .collect()
}

async fn report(app: &TestApp, params: &[(&str, &str)]) -> Reply {
    let response = app
        .client
        .post(app.url("/v1/webhooks/twilio"))
        .header("x-twilio-signature", twilio_signature(REPORTS, params))
        .form(params)
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response).await
}

#[tokio::test]
async fn a_code_goes_in_the_content_template_of_its_language_and_verifies() {
    let twilio = twilio_server(queued()).await;
    let app = spawn_app(with_twilio_whatsapp(memory_config(), &twilio)).await;
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": PHONE, "channel": "whatsapp", "locale": "pt-BR"}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(
        (&sent.body["provider"], &sent.body["message_id"]),
        (&json!("twilio"), &json!(SID))
    );
    let sent_forms = forms(&twilio).await;
    assert_eq!(sent_forms.len(), 1);
    let variables: Value = serde_json::from_str(&sent_forms[0][3].1).unwrap();
    let code = variables["1"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert_eq!(
        sent_forms[0],
        [
            ("To", format!("whatsapp:{PHONE}")),
            ("From", "whatsapp:+14155238886".to_owned()),
            ("ContentSid", PT_BR.to_owned()),
            ("ContentVariables", json!({"1": code}).to_string()),
            ("StatusCallback", REPORTS.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
    );
    let verified = app.verify(PHONE, &code).await;
    assert_eq!(verified.body["status"], "approved", "{}", verified.body);
    // A language without a template: the default's.
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": "+14155552672", "channel": "whatsapp", "locale": "fr"}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(forms(&twilio).await[1][2].1, EN);
}

#[tokio::test]
async fn no_whatsapp_at_the_number_is_a_rejected_phone() {
    let refused = ResponseTemplate::new(400).set_body_json(json!({
        "code": 63003, "message": "Channel could not find To address", "status": 400,
        "more_info": "https://www.twilio.com/docs/errors/63003",
    }));
    let twilio = twilio_server(refused).await;
    let app = spawn_app(with_twilio_whatsapp(memory_config(), &twilio)).await;
    let sent = app
        .post_json("/v1/otp", json!({"phone": PHONE, "channel": "whatsapp"}))
        .await;
    sent.assert_problem(422, "phone_rejected");
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn an_undelivered_status_moves_the_workflow_to_sms() {
    let twilio = twilio_server(queued()).await;
    let app = spawn_app(with_twilio_whatsapp(memory_config(), &twilio)).await;
    let sent = app
        .post_json(
            "/v1/otp",
            json!({"phone": PHONE, "channels": ["whatsapp", "sms"]}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let undelivered = [
        ("MessageSid", SID),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "63016"),
        ("ChannelPrefix", "whatsapp"),
    ];
    // Forged: refused, nothing moves.
    let mut forged = undelivered;
    forged[1] = ("MessageStatus", "failed");
    let response = app
        .client
        .post(app.url("/v1/webhooks/twilio"))
        .header("x-twilio-signature", twilio_signature(REPORTS, &undelivered))
        .form(&forged)
        .send()
        .await
        .unwrap();
    crate::helpers::reply(response)
        .await
        .assert_problem(403, "invalid_signature");
    let taken = report(&app, &undelivered).await;
    assert_eq!(taken.body["recorded"], true, "{}", taken.body);
    let started = std::time::Instant::now();
    while !app
        .outbox
        .lines()
        .iter()
        .any(|l| l.starts_with(&format!("SMS to {PHONE}")))
    {
        assert!(
            started.elapsed().as_secs() < 5,
            "no SMS after the undelivered WhatsApp"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let v = app.get(&format!("/v1/verifications/{id}")).await.body;
    let channels: Vec<&str> = v["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["whatsapp", "sms"]);
}

#[tokio::test]
async fn settings_that_cannot_send_are_refused_at_start() {
    let twilio = MockServer::start().await;
    type Change = fn(&mut Config);
    let cases: [(&str, Change); 5] = [
        ("whatsapp.twilio.from", |c| c.whatsapp.twilio.from.clear()),
        ("whatsapp.twilio.templates", |c| {
            c.whatsapp.twilio.templates.clear()
        }),
        ("whatsapp.twilio.templates.en", |c| {
            c.whatsapp.twilio.templates.insert("en".into(), "otp_en".into());
        }),
        ("whatsapp.twilio.default_language", |c| {
            c.whatsapp.twilio.default_language = "de".into()
        }),
        ("sms.twilio.auth_token", |c| {
            c.sms.twilio.auth_token = Secret::default()
        }),
    ];
    for (key, change) in cases {
        let mut config = with_twilio_whatsapp(memory_config(), &twilio);
        change(&mut config);
        assert_eq!(refused_at_start(&config).await.key, key);
    }
}
