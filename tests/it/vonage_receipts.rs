//! Vonage's delivery receipts in every form its account settings offer: GET
//! (a query string), POST (a form) and POST-JSON, each signed with the
//! method the settings name (MD5 hash, or HMAC-MD5, -SHA1, -SHA256,
//! -SHA512). A receipt signed any other way, unsigned or stale is 403;
//! hostile ones (huge, badly encoded, parameters twice) are refused without
//! a 500 and change nothing.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use otpd::config::{Secret, SmsProvider, VonageSignatureMethod as Method};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{memory_config, reply, spawn_app, Reply, TestApp};

const PHONE: &str = "+14155552671";
const SECRET: &str = "vonage-signature-secret";
const METHODS: [Method; 5] = [
    Method::Md5hash,
    Method::Md5,
    Method::Sha1,
    Method::Sha256,
    Method::Sha512,
];

#[derive(Debug, Clone, Copy)]
enum Transport {
    Get,
    Form,
    Json,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(message: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Vonage's "Signing messages" recipe, written out here on its own: every
/// parameter but `sig`, sorted by name, as `&name=value` with `&` and `=` in
/// values made `_`; then the MD5 of that and the secret, or its HMAC.
fn vonage_sig(method: Method, params: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort();
    let query: String = sorted
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect();
    match method {
        Method::Md5hash => hex::encode(Md5::digest(format!("{query}{SECRET}"))),
        Method::Md5 => hmac_hex::<Hmac<Md5>>(&query),
        Method::Sha1 => hmac_hex::<Hmac<Sha1>>(&query),
        Method::Sha256 => hmac_hex::<Hmac<Sha256>>(&query),
        Method::Sha512 => hmac_hex::<Hmac<Sha512>>(&query),
    }
}

/// A receipt as Vonage's SMS API docs show one, at `at`, without `sig`.
fn receipt(status: &str, at: u64) -> Vec<(String, String)> {
    [
        ("msisdn", "14155552671"),
        ("to", "Acme"),
        ("network-code", "310004"),
        ("messageId", "0C000000217B7F02"),
        ("price", "0.03330000"),
        ("status", status),
        ("scts", "2001011400"),
        ("err-code", "0"),
        ("api-key", "abcd1234"),
        ("client-ref", "a&b=c"),
        ("message-timestamp", "2020-01-01 14:00:00"),
        ("nonce", "ec11dd3e-1e7f-4db5-9467-82b02cd223b9"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .chain([("timestamp".to_owned(), at.to_string())])
    .collect()
}

fn signed(method: Method, mut params: Vec<(String, String)>) -> Vec<(String, String)> {
    let sig = vonage_sig(method, &params);
    params.push(("sig".into(), sig));
    params
}

async fn deliver(app: &TestApp, transport: Transport, params: &[(String, String)]) -> Reply {
    let url = app.url("/v1/webhooks/vonage");
    let request = match transport {
        Transport::Get => app.client.get(url).query(params),
        Transport::Form => app.client.post(url).form(params),
        Transport::Json => {
            let object: serde_json::Map<String, Value> =
                params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            app.client.post(url).json(&object)
        }
    };
    reply(request.send().await.unwrap()).await
}

/// otpd sending by Vonage with `method` set, one code sent.
async fn app_with(method: Method) -> (TestApp, MockServer) {
    let vendor = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
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
    config.sms.vonage.signature_secret = Secret::new(SECRET);
    config.sms.vonage.signature_method = method;
    config.sms.vonage.base_url = vendor.uri();
    config.http.public_url = Some("https://otp.example.com".into());
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    (app, vendor)
}

async fn state(app: &TestApp) -> Value {
    app.get(&format!("/v1/otp/{PHONE}")).await.body["delivery"]["state"].clone()
}

#[tokio::test]
async fn each_transport_and_each_method_is_taken_when_it_is_the_one_configured() {
    for method in METHODS {
        for transport in [Transport::Get, Transport::Form, Transport::Json] {
            let (app, _vendor) = app_with(method).await;
            let case = format!("{method:?} by {transport:?}");

            // Signed by any other method, unsigned, forged or stale: 403.
            for other in METHODS.into_iter().filter(|m| *m != method) {
                deliver(&app, transport, &signed(other, receipt("delivered", now())))
                    .await
                    .assert_problem(403, "invalid_signature");
            }
            deliver(&app, transport, &receipt("delivered", now()))
                .await
                .assert_problem(403, "invalid_signature");
            let mut forged = signed(method, receipt("delivered", now()));
            forged[5].1 = "failed".into();
            deliver(&app, transport, &forged)
                .await
                .assert_problem(403, "invalid_signature");
            deliver(
                &app,
                transport,
                &signed(method, receipt("delivered", now() - 600)),
            )
            .await
            .assert_problem(403, "invalid_signature");
            assert_eq!(state(&app).await, "queued", "{case}");

            let taken = deliver(&app, transport, &signed(method, receipt("delivered", now()))).await;
            assert_eq!(
                (taken.status, taken.body.clone()),
                (200, json!({"recorded": true})),
                "{case}"
            );
            assert_eq!(state(&app).await, "delivered", "{case}");
            // Forward only: a late `buffered` is taken and changes nothing.
            let late = deliver(&app, transport, &signed(method, receipt("buffered", now()))).await;
            assert_eq!(late.body, json!({"recorded": false}), "{case}");
            assert_eq!(state(&app).await, "delivered", "{case}");
        }
    }
}

#[tokio::test]
async fn the_signature_may_come_in_upper_case_hex() {
    let (app, _vendor) = app_with(Method::Sha512).await;
    let mut params = signed(Method::Sha512, receipt("delivered", now()));
    let sig = &mut params.last_mut().unwrap().1;
    *sig = sig.to_ascii_uppercase();
    assert_eq!(deliver(&app, Transport::Get, &params).await.status, 200);
}

#[tokio::test]
async fn hostile_receipts_are_refused_without_a_500() {
    let (app, _vendor) = app_with(Method::Sha256).await;
    let url = app.url("/v1/webhooks/vonage");
    let good = signed(Method::Sha256, receipt("delivered", now()));
    let form = serde_urlencoded::to_string(&good).unwrap();

    // A parameter twice, even where each copy is signed: which one was
    // signed and which one read can't be told apart.
    let twice = format!("{form}&status=failed");
    app.post_raw(
        "/v1/webhooks/vonage",
        "application/x-www-form-urlencoded",
        twice.clone(),
    )
    .await
    .assert_problem(400, "invalid_request");
    let by_get = reply(app.client.get(format!("{url}?{twice}")).send().await.unwrap()).await;
    by_get.assert_problem(400, "invalid_request");
    let json_twice = format!(
        "{{{}, \"status\": \"failed\"}}",
        good.iter()
            .map(|(k, v)| format!("{}: {}", json!(k), json!(v)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    app.post_raw("/v1/webhooks/vonage", "application/json", json_twice)
        .await
        .assert_problem(400, "invalid_request");

    // Bytes that are not UTF-8, percent-encoded or raw; JSON that is not a
    // flat object of strings.
    for (content_type, body) in [
        (
            "application/x-www-form-urlencoded",
            format!("{form}&x=%FF%FE").into_bytes(),
        ),
        (
            "application/x-www-form-urlencoded",
            [form.as_bytes(), b"&x=\xff"].concat(),
        ),
        ("application/json", b"{\"status\": \"\xff\"}".to_vec()),
        ("application/json", b"[\"status\", \"delivered\"]".to_vec()),
        ("application/json", b"{\"status\": {\"$gt\": \"\"}}".to_vec()),
        ("application/json", b"{\"status\": \"delivered\"".to_vec()),
    ] {
        app.post_raw("/v1/webhooks/vonage", content_type, body)
            .await
            .assert_problem(400, "invalid_request");
    }
    let bad_query = reply(
        app.client
            .get(format!("{url}?{form}&x=%C3%28"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    bad_query.assert_problem(400, "invalid_request");

    // Too big, or of another type.
    let huge = format!("{form}&pad={}", "a".repeat(20 * 1024));
    app.post_raw("/v1/webhooks/vonage", "application/x-www-form-urlencoded", huge)
        .await
        .assert_problem(413, "payload_too_large");
    app.post_raw("/v1/webhooks/vonage", "text/plain", form.clone())
        .await
        .assert_problem(415, "unsupported_media_type");
    // A long query of many parameters, none signed.
    let many: String = (0..800).map(|i| format!("p{i}=v{i}&")).collect();
    let long = reply(app.client.get(format!("{url}?{many}")).send().await.unwrap()).await;
    long.assert_problem(403, "invalid_signature");

    // Signed, but without what a receipt needs.
    let mut bare: Vec<(String, String)> = receipt("delivered", now())
        .into_iter()
        .filter(|(k, _)| k != "messageId")
        .collect();
    bare = signed(Method::Sha256, bare);
    deliver(&app, Transport::Form, &bare)
        .await
        .assert_problem(400, "invalid_request");

    assert_eq!(state(&app).await, "queued", "nothing changed");
    // And the good one still goes through.
    assert_eq!(deliver(&app, Transport::Form, &good).await.status, 200);
}

#[test]
fn the_signature_method_is_read_from_the_settings() {
    let env = [(
        "OTPD_SMS__VONAGE__SIGNATURE_METHOD".to_owned(),
        "md5hash".to_owned(),
    )];
    let config = otpd::config::Config::load_from(None, &env).unwrap();
    assert_eq!(config.sms.vonage.signature_method, Method::Md5hash);
    assert_eq!(
        otpd::config::Config::default().sms.vonage.signature_method,
        Method::Sha256
    );
    let env = [(
        "OTPD_SMS__VONAGE__SIGNATURE_METHOD".to_owned(),
        "sha384".to_owned(),
    )];
    let err = otpd::config::Config::load_from(None, &env).unwrap_err();
    assert_eq!(err.key, "sms.vonage.signature_method", "{err}");
}
