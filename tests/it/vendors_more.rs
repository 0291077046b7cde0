//! The vendors beyond Plivo and Twilio, and the generic HTTP vendor: each a
//! wiremock server checking the exact method, path, auth and body of the
//! vendor's docs; a success, a retried failure, a refused number, failover.

use otpd::config::{Config, HttpAuth, HttpBodyFormat, Secret, SmsProvider};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{code_in, spawn_app, TestApp};
use crate::sms_vendors::{
    basic, config_for, default_text, plivo_accepted, requests_to, twilio_created, twilio_error, with_plivo,
    PHONE,
};

/// Sets a vendor's settings to reach `server`.
type Configure = fn(&mut Config, &MockServer);

/// The JSON body with the text taken out, and the text.
pub(crate) fn json_without(request: &Request, text_pointer: &str) -> (Value, String) {
    let mut body: Value = serde_json::from_slice(&request.body).unwrap();
    let text = body
        .pointer(text_pointer)
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    *body.pointer_mut(text_pointer).unwrap() = Value::Null;
    (body, text)
}

/// The form fields, with the one holding the text taken out, and the text.
pub(crate) fn form_without(request: &Request, text_field: &str) -> (Vec<(String, String)>, String) {
    let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(&request.body).into_owned().collect();
    let at = fields.iter().position(|(k, _)| k == text_field).unwrap();
    let (_, text) = fields.remove(at);
    fields.sort();
    (fields, text)
}

pub(crate) fn header_of(request: &Request, name: &str) -> String {
    request.headers[name].to_str().unwrap().to_owned()
}

/// The user verifies with the code the vendor was given.
pub(crate) async fn verify_with(app: &TestApp, text: &str) {
    let code = code_in(text);
    assert_eq!(text, default_text(&code));
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

/// One answer that may pass on another try, then `ok`: two requests, sent.
pub(crate) async fn retried_then_sent(
    provider: SmsProvider,
    configure: Configure,
    transient: ResponseTemplate,
    ok: ResponseTemplate,
    id: &str,
) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(transient)
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ok).mount(&server).await;
    let mut config = config_for(provider);
    configure(&mut config, &server);
    let app = spawn_app(config).await;

    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["message_id"], id);
    assert_eq!(requests_to(&server).await.len(), 2);
}

/// A refused number: 422 with the vendor's code, no retry, no fallback.
pub(crate) async fn refused(
    provider: SmsProvider,
    configure: Configure,
    refusal: ResponseTemplate,
    code: &str,
) {
    let (server, plivo) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(refusal)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepted("never"))
        .expect(0)
        .mount(&plivo)
        .await;
    let mut config = config_for(provider);
    config.sms.fallback = Some(SmsProvider::Plivo);
    configure(&mut config, &server);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;

    let reply = app.send(PHONE).await;
    reply.assert_problem(422, "phone_rejected");
    assert_eq!(reply.body["vendor_code"], code);
}

/// A vendor that keeps failing hands the message to the next in the chain.
pub(crate) async fn fails_over(provider: SmsProvider, configure: Configure, failure: ResponseTemplate) {
    let (server, plivo) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .respond_with(failure)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepted("plivo-took-it"))
        .expect(1)
        .mount(&plivo)
        .await;
    let mut config = config_for(provider);
    config.sms.retries = 1;
    config.sms.fallback = Some(SmsProvider::Plivo);
    configure(&mut config, &server);
    with_plivo(&mut config, &plivo);
    let app = spawn_app(config).await;

    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "plivo");
    assert_eq!(requests_to(&server).await.len(), 2, "tried twice first");
}

/// Sends one code and gives back what the vendor got.
pub(crate) async fn one_send(
    provider: SmsProvider,
    configure: Configure,
    ok: ResponseTemplate,
    id: &str,
) -> (TestApp, Request) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok)
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config_for(provider);
    configure(&mut config, &server);
    let app = spawn_app(config).await;
    let sent = app.send(PHONE).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["message_id"], id);
    let request = requests_to(&server).await.remove(0);
    (app, request)
}

// The generic vendor, configured as two real vendors.

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// Twilio's Messages API, by configuration alone.
fn generic_as_twilio(config: &mut Config, server: &MockServer) {
    let http = &mut config.sms.http;
    http.url = format!("{}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", server.uri());
    http.auth = HttpAuth::Basic;
    http.username = TWILIO_SID.into();
    http.password = Secret::new("twilio-token");
    http.body_format = HttpBodyFormat::Form;
    http.body = "To={to}&From={from}&Body={text}".into();
    http.from = "+14155550000".into();
    http.id_pointer = "/sid".into();
    http.error_pointer = "/code".into();
    http.rejected_codes = vec!["21211".into(), "21614".into()];
}

/// Infobip's SMS API v3, by configuration alone.
fn generic_as_infobip(config: &mut Config, server: &MockServer) {
    let http = &mut config.sms.http;
    http.url = format!("{}/sms/3/messages", server.uri());
    http.auth = HttpAuth::Header;
    http.auth_header = "Authorization".into();
    http.token = Secret::new("App 0123456789abcdef");
    http.headers = [("Accept".to_owned(), "application/json".to_owned())].into();
    http.body = json!({"messages": [{
        "sender": "{from}",
        "destinations": [{"to": "{to_digits}", "messageId": "{id}"}],
        "content": {"text": "{text}"},
    }]})
    .to_string();
    http.from = "Acme".into();
    http.id_pointer = "/messages/0/messageId".into();
}

#[tokio::test]
async fn the_generic_vendor_speaks_twilio_by_configuration() {
    let (app, request) = one_send(
        SmsProvider::Http,
        generic_as_twilio,
        twilio_created("SMgeneric"),
        "SMgeneric",
    )
    .await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(
        request.url.path(),
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    assert_eq!(
        header_of(&request, "authorization"),
        basic(TWILIO_SID, "twilio-token")
    );
    assert_eq!(
        header_of(&request, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let (fields, text) = form_without(&request, "Body");
    assert_eq!(
        fields,
        [
            ("From".to_owned(), "+14155550000".to_owned()),
            ("To".to_owned(), PHONE.to_owned())
        ]
    );
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn the_generic_vendor_speaks_infobip_by_configuration() {
    let ok = ResponseTemplate::new(200).set_body_json(json!({
        "bulkId": "2034072219640523073",
        "messages": [{"messageId": "ib-1", "status": {"groupId": 1, "groupName": "PENDING"}, "destination": "14155552671"}],
    }));
    let (app, request) = one_send(SmsProvider::Http, generic_as_infobip, ok, "ib-1").await;
    assert_eq!(request.url.path(), "/sms/3/messages");
    assert_eq!(header_of(&request, "authorization"), "App 0123456789abcdef");
    assert_eq!(header_of(&request, "accept"), "application/json");
    assert_eq!(header_of(&request, "content-type"), "application/json");
    let (mut body, text) = json_without(&request, "/messages/0/content/text");
    let local_id = body["messages"][0]["destinations"][0]["messageId"].take();
    assert!(
        local_id.as_str().is_some_and(|id| !id.is_empty()),
        "otpd's own id"
    );
    assert_eq!(
        body,
        json!({"messages": [{
            "sender": "Acme",
            "destinations": [{"to": "14155552671", "messageId": null}],
            "content": {"text": null},
        }]})
    );
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn the_generic_vendor_retries_refuses_and_fails_over() {
    retried_then_sent(
        SmsProvider::Http,
        generic_as_twilio,
        ResponseTemplate::new(503),
        twilio_created("SMsecond"),
        "SMsecond",
    )
    .await;
    refused(
        SmsProvider::Http,
        generic_as_twilio,
        twilio_error(400, 21211, "The 'To' number is not a valid phone number."),
        "21211",
    )
    .await;
    fails_over(SmsProvider::Http, generic_as_twilio, ResponseTemplate::new(500)).await;
}

#[tokio::test]
async fn a_generic_vendor_missing_settings_stops_the_start() {
    use otpd::adapters::sms::ConsoleOut;
    use otpd::startup::Application;
    let server = MockServer::start().await;
    type Spoil = fn(&mut Config);
    let cases: [(Spoil, &str); 5] = [
        (|c| c.sms.http.id_pointer.clear(), "sms.http.id_pointer"),
        // A message has several lines; a header value can hold none.
        (
            |c| {
                c.sms.http.headers.insert("X-Text".into(), "{text}".into());
            },
            "sms.http.headers",
        ),
        (
            |c| c.sms.http.body = "From={from}&Body={text}".into(),
            "sms.http.body",
        ),
        (
            |c| c.sms.http.body = "To={to}&Body={message}".into(),
            "sms.http.body",
        ),
        (|c| c.sms.http.password = Secret::default(), "sms.http.password"),
    ];
    for (spoil, key) in cases {
        let mut config = config_for(SmsProvider::Http);
        generic_as_twilio(&mut config, &server);
        spoil(&mut config);
        let err = Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .err()
            .unwrap();
        assert_eq!(err.key, key, "{err}");
    }
}

// Vonage: SMS API, form-encoded, key and secret in the body, 200 always.

pub(crate) fn with_vonage(config: &mut Config, server: &MockServer) {
    config.sms.vonage.api_key = "abcd1234".into();
    config.sms.vonage.api_secret = Secret::new("vonage-secret");
    config.sms.vonage.from = "Acme".into();
    config.sms.vonage.base_url = server.uri();
}

pub(crate) fn vonage_answer(status: &str, id: Option<&str>, error: Option<&str>) -> ResponseTemplate {
    let mut message = json!({"to": "14155552671", "status": status});
    if let Some(id) = id {
        message["message-id"] = json!(id);
        message["remaining-balance"] = json!("15.53590000");
        message["message-price"] = json!("0.03330000");
        message["network"] = json!("310004");
    }
    if let Some(error) = error {
        message["error-text"] = json!(error);
    }
    ResponseTemplate::new(200).set_body_json(json!({"message-count": "1", "messages": [message]}))
}

#[tokio::test]
async fn vonage_gets_its_documented_request() {
    let (app, request) = one_send(
        SmsProvider::Vonage,
        with_vonage,
        vonage_answer("0", Some("0C000000217B7F02"), None),
        "0C000000217B7F02",
    )
    .await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/sms/json");
    assert_eq!(
        header_of(&request, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let (mut fields, text) = form_without(&request, "text");
    let at = fields.iter().position(|(k, _)| k == "client-ref").unwrap();
    assert!(!fields.remove(at).1.is_empty(), "otpd's own id as client-ref");
    let expected: Vec<(String, String)> = [
        ("api_key", "abcd1234"),
        ("api_secret", "vonage-secret"),
        ("from", "Acme"),
        ("to", "14155552671"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(fields, expected);
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn vonage_is_told_of_a_message_outside_gsm_7() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(vonage_answer("0", Some("0C000000217B7F09"), None))
        .mount(&server)
        .await;
    let mut config = config_for(SmsProvider::Vonage);
    with_vonage(&mut config, &server);
    let app = spawn_app(config).await;
    for (locale, unicode) in [("ja", true), ("fr", false)] {
        let sent = app
            .post_json("/v1/otp", json!({"phone": PHONE, "locale": locale}))
            .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        let request = requests_to(&server).await.pop().unwrap();
        let (fields, _) = form_without(&request, "text");
        let typed = fields.contains(&("type".to_owned(), "unicode".to_owned()));
        assert_eq!(typed, unicode, "{locale}");
    }
}

#[tokio::test]
async fn vonage_retries_refuses_and_fails_over() {
    retried_then_sent(
        SmsProvider::Vonage,
        with_vonage,
        vonage_answer(
            "1",
            None,
            Some("Throughput Rate Exceeded - please wait [ 2000 ] and retry"),
        ),
        vonage_answer("0", Some("0C000000217B7F03"), None),
        "0C000000217B7F03",
    )
    .await;
    refused(
        SmsProvider::Vonage,
        with_vonage,
        vonage_answer("7", None, Some("Number barred.")),
        "7",
    )
    .await;
    fails_over(SmsProvider::Vonage, with_vonage, ResponseTemplate::new(500)).await;
}

// Telnyx: Messaging v2, JSON, bearer key.

fn with_telnyx(config: &mut Config, server: &MockServer) {
    config.sms.telnyx.api_key = Secret::new("KEY0123456789");
    config.sms.telnyx.from = "+14155550000".into();
    config.sms.telnyx.base_url = server.uri();
}

fn telnyx_accepted(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {
        "record_type": "message",
        "direction": "outbound",
        "id": id,
        "type": "SMS",
        "to": [{"phone_number": "+14155552671", "status": "queued"}],
    }}))
}

fn telnyx_error(status: u16, code: &str, title: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"errors": [{"code": code, "title": title, "detail": title}]}))
}

#[tokio::test]
async fn telnyx_gets_its_documented_request() {
    let (app, request) = one_send(
        SmsProvider::Telnyx,
        with_telnyx,
        telnyx_accepted("40317f5b-6d3c-4f1e-9d3b-6b1e2d1f0a01"),
        "40317f5b-6d3c-4f1e-9d3b-6b1e2d1f0a01",
    )
    .await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/v2/messages");
    assert_eq!(header_of(&request, "authorization"), "Bearer KEY0123456789");
    assert_eq!(header_of(&request, "content-type"), "application/json");
    let (body, text) = json_without(&request, "/text");
    assert_eq!(body, json!({"from": "+14155550000", "to": PHONE, "text": null}));
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn telnyx_retries_refuses_and_fails_over() {
    retried_then_sent(
        SmsProvider::Telnyx,
        with_telnyx,
        telnyx_error(429, "10011", "Too many requests"),
        telnyx_accepted("second"),
        "second",
    )
    .await;
    refused(
        SmsProvider::Telnyx,
        with_telnyx,
        telnyx_error(400, "40310", "Invalid 'to' address"),
        "40310",
    )
    .await;
    fails_over(SmsProvider::Telnyx, with_telnyx, ResponseTemplate::new(503)).await;
}

// Sinch: SMS REST batches, JSON, bearer token.

fn with_sinch(config: &mut Config, server: &MockServer) {
    config.sms.sinch.service_plan_id = "jd63jf88477ll123ab4567cd89012ef3".into();
    config.sms.sinch.api_token = Secret::new("sinch-token");
    config.sms.sinch.from = "12345".into();
    config.sms.sinch.base_url = server.uri();
}

fn sinch_created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "id": id,
        "to": [PHONE],
        "from": "12345",
        "canceled": false,
        "type": "mt_text",
    }))
}

#[tokio::test]
async fn sinch_gets_its_documented_request() {
    let (app, request) = one_send(
        SmsProvider::Sinch,
        with_sinch,
        sinch_created("01FC66621XXXXX119Z8PMV1QPQ"),
        "01FC66621XXXXX119Z8PMV1QPQ",
    )
    .await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(
        request.url.path(),
        "/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches"
    );
    assert_eq!(header_of(&request, "authorization"), "Bearer sinch-token");
    assert_eq!(header_of(&request, "content-type"), "application/json");
    let (mut body, text) = json_without(&request, "/body");
    assert!(body["client_reference"]
        .take()
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(
        body,
        json!({"from": "12345", "to": [PHONE], "body": null, "client_reference": null})
    );
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn sinch_retries_refuses_and_fails_over() {
    retried_then_sent(
        SmsProvider::Sinch,
        with_sinch,
        ResponseTemplate::new(503),
        sinch_created("second"),
        "second",
    )
    .await;
    refused(
        SmsProvider::Sinch,
        with_sinch,
        ResponseTemplate::new(400).set_body_json(json!({
            "code": "syntax_invalid_parameter_format",
            "text": "Invalid parameter format for to: +1415555",
        })),
        "syntax_invalid_parameter_format",
    )
    .await;
    fails_over(SmsProvider::Sinch, with_sinch, ResponseTemplate::new(500)).await;
}

// Infobip: SMS v3, JSON, `App` key.

pub(crate) fn with_infobip(config: &mut Config, server: &MockServer) {
    config.sms.infobip.api_key = Secret::new("infobip-key");
    config.sms.infobip.sender = "Acme".into();
    config.sms.infobip.base_url = server.uri();
}

pub(crate) fn infobip_answer(id: &str, group: &str, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "bulkId": "2034072219640523072",
        "messages": [{
            "messageId": id,
            "status": {"groupId": 1, "groupName": group, "id": 26, "name": name, "description": name},
            "destination": "14155552671",
        }],
    }))
}

#[tokio::test]
async fn infobip_gets_its_documented_request() {
    let (app, request) = one_send(
        SmsProvider::Infobip,
        with_infobip,
        infobip_answer(
            "2250be2d4219-3af1-78856-aabe-1362af1edfd2",
            "PENDING",
            "PENDING_ACCEPTED",
        ),
        "2250be2d4219-3af1-78856-aabe-1362af1edfd2",
    )
    .await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/sms/3/messages");
    assert_eq!(header_of(&request, "authorization"), "App infobip-key");
    assert_eq!(header_of(&request, "accept"), "application/json");
    assert_eq!(header_of(&request, "content-type"), "application/json");
    let (mut body, text) = json_without(&request, "/messages/0/content/text");
    let id = body["messages"][0]["destinations"][0]["messageId"].take();
    assert!(id.as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(
        body,
        json!({"messages": [{
            "sender": "Acme",
            "destinations": [{"to": "14155552671", "messageId": null}],
            "content": {"text": null},
        }]})
    );
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn infobip_retries_refuses_and_fails_over() {
    retried_then_sent(
        SmsProvider::Infobip,
        with_infobip,
        ResponseTemplate::new(429),
        infobip_answer("second", "PENDING", "PENDING_ACCEPTED"),
        "second",
    )
    .await;
    refused(
        SmsProvider::Infobip,
        with_infobip,
        infobip_answer("rejected", "REJECTED", "REJECTED_DESTINATION"),
        "REJECTED_DESTINATION",
    )
    .await;
    fails_over(SmsProvider::Infobip, with_infobip, ResponseTemplate::new(502)).await;
}

#[tokio::test]
async fn each_vendor_names_its_missing_credential() {
    use otpd::adapters::sms::ConsoleOut;
    use otpd::startup::Application;
    for (provider, key) in [
        (SmsProvider::Vonage, "sms.vonage.api_key"),
        (SmsProvider::Telnyx, "sms.telnyx.api_key"),
        (SmsProvider::Sinch, "sms.sinch.service_plan_id"),
        (SmsProvider::Infobip, "sms.infobip.api_key"),
        (SmsProvider::Sns, "sms.sns.region"),
        (SmsProvider::Http, "sms.http.url"),
    ] {
        let config = config_for(provider);
        let err = Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .err()
            .unwrap();
        assert_eq!(err.key, key, "{err}");
    }
}

#[test]
fn no_vendor_secret_shows_in_debug() {
    let mut config = Config::default();
    config.sms.vonage.api_secret = Secret::new("vonage-s3cret");
    config.sms.vonage.signature_secret = Secret::new("vonage-sig-s3cret");
    config.sms.telnyx.api_key = Secret::new("telnyx-s3cret");
    config.sms.sinch.api_token = Secret::new("sinch-s3cret");
    config.sms.infobip.api_key = Secret::new("infobip-s3cret");
    config.sms.http.password = Secret::new("http-s3cret");
    config.sms.http.token = Secret::new("http-token-s3cret");
    config.sms.sns.secret_access_key = Secret::new("sns-s3cret");
    config.sms.sns.session_token = Secret::new("sns-token-s3cret");
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

// Amazon SNS: Publish, form-encoded, SigV4, XML answers.

pub(crate) fn with_sns(config: &mut Config, server: &MockServer) {
    config.sms.sns.region = "eu-west-1".into();
    config.sms.sns.access_key_id = "AKIDEXAMPLE".into();
    config.sms.sns.secret_access_key = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    config.sms.sns.sender_id = "Acme".into();
    config.sms.sns.endpoint = server.uri();
}

pub(crate) fn sns_published(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(format!(
        "<PublishResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\">\
         <PublishResult><MessageId>{id}</MessageId></PublishResult>\
         <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>\
         </PublishResponse>"
    ))
}

fn sns_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_string(format!(
        "<ErrorResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\">\
         <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>9dd01905-5012-5f99-8663-4b3ecd0dfaef</RequestId></ErrorResponse>"
    ))
}

#[tokio::test]
async fn sns_gets_a_signed_publish() {
    let (app, request) = one_send(
        SmsProvider::Sns,
        with_sns,
        sns_published("567910cd-659e-55d4-8ccb-5aaf14679dc0"),
        "567910cd-659e-55d4-8ccb-5aaf14679dc0",
    )
    .await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/");
    assert_eq!(
        header_of(&request, "content-type"),
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let (fields, text) = form_without(&request, "Message");
    let expected: Vec<(String, String)> = [
        ("Action", "Publish"),
        ("MessageAttributes.entry.1.Name", "AWS.SNS.SMS.SMSType"),
        ("MessageAttributes.entry.1.Value.DataType", "String"),
        ("MessageAttributes.entry.1.Value.StringValue", "Transactional"),
        ("MessageAttributes.entry.2.Name", "AWS.SNS.SMS.SenderID"),
        ("MessageAttributes.entry.2.Value.DataType", "String"),
        ("MessageAttributes.entry.2.Value.StringValue", "Acme"),
        ("PhoneNumber", PHONE),
        ("Version", "2010-03-31"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(fields, expected);
    // SigV4: the key id and today's scope, the signed headers, a SHA-256 hex.
    let date = header_of(&request, "x-amz-date");
    assert!(
        date.len() == 16 && date.ends_with('Z') && date.as_bytes()[8] == b'T',
        "{date}"
    );
    let authorization = header_of(&request, "authorization");
    let expected_start = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=",
        &date[..8]
    );
    assert!(authorization.starts_with(&expected_start), "{authorization}");
    let signature = &authorization[expected_start.len()..];
    assert!(
        signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "{signature}"
    );
    verify_with(&app, &text).await;
}

#[tokio::test]
async fn sns_retries_refuses_and_fails_over() {
    retried_then_sent(
        SmsProvider::Sns,
        with_sns,
        sns_error(400, "Throttling", "Rate exceeded"),
        sns_published("second"),
        "second",
    )
    .await;
    refused(
        SmsProvider::Sns,
        with_sns,
        sns_error(
            400,
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: +1415 is not valid to publish to",
        ),
        "InvalidParameter",
    )
    .await;
    fails_over(
        SmsProvider::Sns,
        with_sns,
        sns_error(500, "InternalError", "try again"),
    )
    .await;
}

/// A vendor call carries its credentials and the code: `http://` is for a
/// vendor on this machine only (a stand-in, a local relay).
#[tokio::test]
async fn a_vendor_in_clear_off_this_machine_stops_the_start() {
    use otpd::adapters::sms::ConsoleOut;
    use otpd::startup::Application;
    let start = |config: Config| async move {
        Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .err()
            .map(|e| e.key)
    };
    let server = MockServer::start().await;
    let mut config = config_for(SmsProvider::Http);
    generic_as_twilio(&mut config, &server);
    for (url, refused) in [
        ("http://sms.example.com/send", true),
        ("http://user:pass@10.0.0.5:8080/send", true),
        ("http://[::1]:9/send", false),
        ("http://localhost:9/send", false),
        ("https://sms.example.com/send", false),
    ] {
        let mut config = config.clone();
        config.sms.http.url = url.into();
        let key = start(config).await;
        assert_eq!(key.as_deref() == Some("sms.http.url"), refused, "{url}: {key:?}");
    }
    config.sms.provider = SmsProvider::Console;
    config.sms.fallback = Some(SmsProvider::Twilio);
    config.sms.twilio.base_url = "http://api.twilio.example".into();
    assert_eq!(start(config).await.as_deref(), Some("sms.twilio.base_url"));
}
