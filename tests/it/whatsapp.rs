//! The WhatsApp channel: a code in the operator's approved authentication
//! template through Meta's WhatsApp Cloud API (a wiremock server checking
//! the request Meta's OTP sample app and API reference give), Meta's
//! refusals, its webhook (the verification request, signed statuses,
//! tampering and replay), the console for local work, and a channel with
//! no sender.

use hmac::{Hmac, Mac};
use otpd::config::{Config, Secret, WhatsappProvider};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{code_in, memory_config, spawn_app, TestApp};

pub const PHONE: &str = "+14155552671";
pub const WAMID: &str = "wamid.HBgLMTQxNTU1NTI2NzEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";
const APP_SECRET: &str = "meta-app-secret";
const VERIFY_TOKEN: &str = "verify-me-3f9a";

pub fn with_meta(mut config: Config, meta: &MockServer) -> Config {
    config.whatsapp.provider = WhatsappProvider::Meta;
    let m = &mut config.whatsapp.meta;
    m.phone_number_id = "106540352242922".into();
    m.access_token = Secret::new("EAAG-access-token");
    m.app_secret = Secret::new(APP_SECRET);
    m.verify_token = Secret::new(VERIFY_TOKEN);
    m.base_url = meta.uri();
    m.templates = [("en_US", "otp_en"), ("pt_BR", "otp_pt_br")]
        .into_iter()
        .map(|(l, n)| (l.to_owned(), n.to_owned()))
        .collect();
    config.sms.retries = 2;
    config
}

pub fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": PHONE, "wa_id": "14155552671"}],
        "messages": [{"id": WAMID}],
    }))
}

fn meta_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "message": format!("(#{code}) {message}"),
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "A4O5a8RAgePwbcGSu",
        }
    }))
}

pub async fn meta_server(reply: ResponseTemplate) -> MockServer {
    let meta = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/106540352242922/messages"))
        .and(header("authorization", "Bearer EAAG-access-token"))
        .and(header("content-type", "application/json"))
        .respond_with(reply)
        .mount(&meta)
        .await;
    meta
}

async fn send_whatsapp(app: &TestApp, locale: Option<&str>) -> crate::helpers::Reply {
    let mut body = json!({"phone": PHONE, "channel": "whatsapp"});
    if let Some(locale) = locale {
        body["locale"] = json!(locale);
    }
    app.post_json("/v1/otp", body).await
}

/// The bodies Meta was sent.
async fn sent(meta: &MockServer) -> Vec<Value> {
    meta.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_code_goes_in_the_approved_template_of_its_language_and_verifies() {
    let meta = meta_server(accepted()).await;
    let app = spawn_app(with_meta(memory_config(), &meta)).await;
    let reply = send_whatsapp(&app, Some("pt-BR")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "whatsapp");
    assert_eq!(reply.body["provider"], "meta");
    assert_eq!(reply.body["message_id"], WAMID);
    let bodies = sent(&meta).await;
    assert_eq!(bodies.len(), 1);
    let code = bodies[0]["template"]["components"][0]["parameters"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);
    let parameters = json!([{"type": "text", "text": code}]);
    assert_eq!(
        bodies[0],
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": PHONE,
            "type": "template",
            "template": {
                "name": "otp_pt_br",
                "language": {"code": "pt_BR"},
                "components": [
                    {"type": "body", "parameters": parameters},
                    {"type": "button", "sub_type": "url", "index": "0", "parameters": parameters},
                ],
            },
        })
    );
    // No SMS went: the code is in the WhatsApp message alone.
    assert!(app.outbox.lines().is_empty(), "{:?}", app.outbox.lines());
    assert_eq!(app.verify(PHONE, &code).await.status, 200);

    // A language with no template of its own gets the default's.
    let other = "+14155552672";
    let reply = app
        .post_json(
            "/v1/otp",
            json!({"phone": other, "channel": "whatsapp", "locale": "fr"}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let bodies = sent(&meta).await;
    assert_eq!(bodies[1]["template"]["name"], "otp_en");
    assert_eq!(bodies[1]["template"]["language"]["code"], "en_US");
}

#[tokio::test]
async fn meta_s_refusals_read_by_their_codes() {
    // Not on WhatsApp: the number is refused, as a vendor's refusal is.
    let meta = meta_server(meta_error(400, 131_026, "Message undeliverable")).await;
    let app = spawn_app(with_meta(memory_config(), &meta)).await;
    send_whatsapp(&app, None)
        .await
        .assert_problem(422, "phone_rejected");
    assert_eq!(
        app.get(&format!("/v1/otp/{PHONE}")).await.status,
        404,
        "no code is pending"
    );
    assert_eq!(sent(&meta).await.len(), 1, "a refused number is not tried again");

    // A template Meta doesn't have: no retry, the send fails, nothing pends.
    let meta = meta_server(meta_error(
        404,
        132_001,
        "Template name does not exist in the translation",
    ))
    .await;
    let app = spawn_app(with_meta(memory_config(), &meta)).await;
    let failed = send_whatsapp(&app, None).await;
    failed.assert_problem(502, "sms_delivery_failed");
    assert!(!failed.body.to_string().contains("EAAG"), "{}", failed.body);
    assert_eq!(sent(&meta).await.len(), 1);
    assert_eq!(app.get(&format!("/v1/otp/{PHONE}")).await.status, 404);

    // Meta's throughput limit passes on another try.
    let meta = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(meta_error(429, 130_429, "Rate limit hit"))
        .up_to_n_times(1)
        .mount(&meta)
        .await;
    Mock::given(method("POST"))
        .respond_with(accepted())
        .mount(&meta)
        .await;
    let app = spawn_app(with_meta(memory_config(), &meta)).await;
    assert_eq!(send_whatsapp(&app, None).await.status, 202);
    assert_eq!(sent(&meta).await.len(), 2);
}

pub fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn status_body(status: &str, error: Option<i64>) -> String {
    let mut item =
        json!({"id": WAMID, "status": status, "timestamp": "1796000000", "recipient_id": "14155552671"});
    if let Some(code) = error {
        item["errors"] = json!([{"code": code, "title": "Message undeliverable", "message": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."}}]);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "statuses": [item],
        }}]}],
    })
    .to_string()
}

pub async fn post_status(app: &TestApp, body: &str, signature: Option<&str>) -> crate::helpers::Reply {
    let mut request = app
        .client
        .post(app.url("/v1/webhooks/meta"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    crate::helpers::reply(request.send().await.unwrap()).await
}

async fn delivery(app: &TestApp) -> Value {
    app.get(&format!("/v1/otp/{PHONE}")).await.body["delivery"].clone()
}

#[tokio::test]
async fn the_webhook_answers_its_verification_and_takes_only_signed_statuses() {
    let meta = meta_server(accepted()).await;
    let app = spawn_app(with_meta(memory_config(), &meta)).await;
    let challenge = |mode: &str, token: &str, challenge: &str| {
        app.client.get(app.url("/v1/webhooks/meta")).query(&[
            ("hub.mode", mode),
            ("hub.verify_token", token),
            ("hub.challenge", challenge),
        ])
    };
    let answer = challenge("subscribe", VERIFY_TOKEN, "1158201444")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(answer.text().await.unwrap(), "1158201444");
    for (mode, token, text) in [
        ("subscribe", "verify-me-3f9b", "1158201444"),
        ("unsubscribe", VERIFY_TOKEN, "1158201444"),
        ("subscribe", "verify-me-3f9b", "<script>alert(1)</script>"),
    ] {
        let refused = crate::helpers::reply(challenge(mode, token, text).send().await.unwrap()).await;
        refused.assert_problem(403, "invalid_signature");
    }
    // The right token and a challenge otpd won't echo: said as such, not echoed.
    let markup = crate::helpers::reply(
        challenge("subscribe", VERIFY_TOKEN, "<script>alert(1)</script>")
            .send()
            .await
            .unwrap(),
    )
    .await;
    markup.assert_problem(400, "invalid_request");
    assert!(!markup.body.to_string().contains("<script>"));

    assert_eq!(send_whatsapp(&app, None).await.status, 202);
    assert_eq!(delivery(&app).await["state"], "queued");
    // Unsigned, signed with another secret, or tampered after signing: refused, nothing changes.
    let delivered = status_body("delivered", None);
    post_status(&app, &delivered, None)
        .await
        .assert_problem(403, "invalid_signature");
    let tampered = delivered.replace("delivered", "failed");
    post_status(&app, &tampered, Some(&sign(&delivered)))
        .await
        .assert_problem(403, "invalid_signature");
    let mut other = Hmac::<Sha256>::new_from_slice(b"another-secret").unwrap();
    other.update(delivered.as_bytes());
    let forged = format!("sha256={}", hex::encode(other.finalize().into_bytes()));
    post_status(&app, &delivered, Some(&forged))
        .await
        .assert_problem(403, "invalid_signature");
    assert_eq!(delivery(&app).await["state"], "queued");

    let taken = post_status(&app, &delivered, Some(&sign(&delivered))).await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!(taken.body["recorded"], true);
    let now = delivery(&app).await;
    assert_eq!(now["state"], "delivered");
    assert_eq!(now["provider"], "meta");
    assert_eq!(now["message_id"], WAMID);
    // A replay, or a late `sent`, moves nothing back.
    let replayed = post_status(&app, &delivered, Some(&sign(&delivered))).await;
    assert_eq!(replayed.body["recorded"], false);
    let sent_late = status_body("sent", None);
    post_status(&app, &sent_late, Some(&sign(&sent_late))).await;
    assert_eq!(delivery(&app).await["state"], "delivered");
}

#[tokio::test]
async fn a_failed_status_records_meta_s_error_code() {
    let meta = meta_server(accepted()).await;
    let app = spawn_app(with_meta(memory_config(), &meta)).await;
    assert_eq!(send_whatsapp(&app, None).await.status, 202);
    let failed = status_body("failed", Some(131_026));
    assert_eq!(post_status(&app, &failed, Some(&sign(&failed))).await.status, 200);
    let now = delivery(&app).await;
    assert_eq!(now["state"], "failed");
    assert_eq!(now["error_code"], "131026");
    // A body that isn't Meta's shape, signed, is taken and changes nothing.
    let odd = json!({"object": "page", "entry": [{"changes": "no"}]}).to_string();
    let taken = post_status(&app, &odd, Some(&sign(&odd))).await;
    assert_eq!(taken.status, 200);
    assert_eq!(taken.body["recorded"], false);
    // An id that could be markup is refused.
    let hostile = status_body("delivered", None).replace(WAMID, "wamid.<b>");
    post_status(&app, &hostile, Some(&sign(&hostile)))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn the_console_prints_a_whatsapp_message_for_local_work() {
    let app = spawn_app(memory_config()).await;
    let reply = send_whatsapp(&app, None).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "whatsapp");
    let lines = app.outbox.lines();
    let line = lines.last().unwrap();
    assert!(line.starts_with(&format!("WhatsApp to {PHONE}: *")), "{line}");
    let code = code_in(line);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    // An SMS still says so.
    let sms = app.send("+14155552673").await;
    assert_eq!(sms.body["channel"], "sms");
}

#[tokio::test]
async fn a_channel_with_no_sender_is_refused_before_anything_is_taken() {
    let mut config = memory_config();
    config.whatsapp.provider = WhatsappProvider::Off;
    config.limits.resend_after_secs = 60;
    let app = spawn_app(config).await;
    send_whatsapp(&app, None)
        .await
        .assert_problem(422, "channel_unavailable");
    // The cooldown was not started: an SMS goes at once.
    assert_eq!(app.send(PHONE).await.status, 202);
    let unknown = app
        .post_json("/v1/otp", json!({"phone": PHONE, "channel": "carrier-pigeon"}))
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
}

#[tokio::test]
async fn meta_settings_that_cannot_send_are_refused_at_start() {
    type Change = fn(&mut Config);
    let cases: [(&str, Change); 5] = [
        ("whatsapp.meta.templates", |c| c.whatsapp.meta.templates.clear()),
        ("whatsapp.meta.templates.pt-BR", |c| {
            c.whatsapp.meta.templates.insert("pt-BR".into(), "otp".into());
        }),
        ("whatsapp.meta.default_language", |c| {
            c.whatsapp.meta.default_language = "de".into();
        }),
        ("whatsapp.meta.app_secret", |c| {
            c.whatsapp.meta.app_secret = Secret::default()
        }),
        ("whatsapp.meta.base_url", |c| {
            c.whatsapp.meta.base_url = "http://graph.example.com".into();
        }),
    ];
    let meta = MockServer::start().await;
    for (key, change) in cases {
        let mut config = with_meta(memory_config(), &meta);
        change(&mut config);
        let err = crate::helpers::refused_at_start(&config).await;
        assert_eq!(err.key, key, "{err}");
    }
}
