//! India's DLT ids: a route that sets them has each vendor whose API takes
//! them send them as its docs name them; the same vendor sends none for
//! destinations without them; bad ids, and a generic template that needs
//! ids where none are given, stop the start.

use otpd::adapters::sms::ConsoleOut;
use otpd::config::{Config, DltConfig, HttpBodyFormat, RouteConfig, Secret, SmsProvider};
use otpd::startup::Application;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::spawn_app;
use crate::sms_vendors::{config_for, plivo_accepted, requests_to, with_plivo, with_twilio, PHONE};
use crate::vendors_more::{
    form_without, infobip_answer, json_without, sns_published, vonage_answer, with_infobip, with_sns,
    with_vonage,
};

const INDIA: &str = "+919876543210";
const ENTITY: &str = "1101456789012345678";
const TEMPLATE: &str = "1107161234567890123";

fn dlt(category: &str) -> DltConfig {
    DltConfig {
        entity_id: ENTITY.into(),
        template_id: TEMPLATE.into(),
        template_category: category.into(),
    }
}

/// India by `vendor` with a DLT sender and ids; the rest by the same vendor
/// as the default provider, without.
fn india_route(vendor: SmsProvider, sender: &str, category: &str) -> RouteConfig {
    RouteConfig {
        countries: vec!["IN".into()],
        vendors: vec![vendor],
        senders: [(vendor_name(vendor).to_owned(), sender.to_owned())].into(),
        dlt: Some(dlt(category)),
        ..RouteConfig::default()
    }
}

fn vendor_name(vendor: SmsProvider) -> &'static str {
    match vendor {
        SmsProvider::Plivo => "plivo",
        SmsProvider::Vonage => "vonage",
        SmsProvider::Infobip => "infobip",
        SmsProvider::Sns => "sns",
        SmsProvider::Http => "http",
        SmsProvider::Twilio => "twilio",
        other => panic!("{other:?}"),
    }
}

/// One code to India, then one to the US: what the vendor got for each.
async fn india_then_us(config: Config, server: &MockServer) -> (Request, Request) {
    let app = spawn_app(config).await;
    let india = app.send(INDIA).await;
    assert_eq!(india.status, 202, "{}", india.body);
    let us = app.send(PHONE).await;
    assert_eq!(us.status, 202, "{}", us.body);
    let mut requests = requests_to(server).await;
    assert_eq!(requests.len(), 2);
    let us = requests.remove(1);
    (requests.remove(0), us)
}

async fn answering(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    owned.sort();
    owned
}

#[tokio::test]
async fn plivo_sends_dlt_entity_id_template_id_and_category_in_the_json_body() {
    let server = answering(plivo_accepted("plivo-uuid")).await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &server);
    config.sms.routes = vec![india_route(SmsProvider::Plivo, "ACMEOT", "service_implicit")];
    let (india, us) = india_then_us(config, &server).await;

    let (body, _) = json_without(&india, "/text");
    assert_eq!(
        body,
        json!({
            "src": "ACMEOT",
            "dst": "919876543210",
            "text": null,
            "dlt_entity_id": ENTITY,
            "dlt_template_id": TEMPLATE,
            "dlt_template_category": "service_implicit",
        })
    );
    let (body, _) = json_without(&us, "/text");
    assert_eq!(
        body,
        json!({"src": "14155550000", "dst": "14155552671", "text": null})
    );
}

#[tokio::test]
async fn plivo_sends_no_category_when_none_is_set() {
    let server = answering(plivo_accepted("plivo-uuid")).await;
    let mut config = config_for(SmsProvider::Plivo);
    with_plivo(&mut config, &server);
    config.sms.routes = vec![india_route(SmsProvider::Plivo, "ACMEOT", "")];
    let (india, _) = india_then_us(config, &server).await;
    let (body, _) = json_without(&india, "/text");
    assert_eq!(body["dlt_entity_id"], ENTITY);
    assert_eq!(body["dlt_template_id"], TEMPLATE);
    assert!(body.get("dlt_template_category").is_none(), "{body}");
}

#[tokio::test]
async fn vonage_sends_entity_id_and_content_id_as_form_fields() {
    let server = answering(vonage_answer("0", Some("0C000000217B7F02"), None)).await;
    let mut config = config_for(SmsProvider::Vonage);
    with_vonage(&mut config, &server);
    // The category is Plivo's alone: Vonage has no field for it.
    config.sms.routes = vec![india_route(SmsProvider::Vonage, "ACMEOT", "transactional")];
    let (india, us) = india_then_us(config, &server).await;

    let (mut fields, _) = form_without(&india, "text");
    fields.retain(|(k, _)| k != "client-ref");
    assert_eq!(
        fields,
        pairs(&[
            ("api_key", "abcd1234"),
            ("api_secret", "vonage-secret"),
            ("from", "ACMEOT"),
            ("to", "919876543210"),
            ("entity-id", ENTITY),
            ("content-id", TEMPLATE),
        ])
    );
    let (mut fields, _) = form_without(&us, "text");
    fields.retain(|(k, _)| k != "client-ref");
    assert_eq!(
        fields,
        pairs(&[
            ("api_key", "abcd1234"),
            ("api_secret", "vonage-secret"),
            ("from", "Acme"),
            ("to", "14155552671"),
        ])
    );
}

#[tokio::test]
async fn infobip_sends_options_regional_india_dlt() {
    let server = answering(infobip_answer("ib-1", "PENDING", "PENDING_ACCEPTED")).await;
    let mut config = config_for(SmsProvider::Infobip);
    with_infobip(&mut config, &server);
    config.sms.routes = vec![india_route(SmsProvider::Infobip, "ACMEOT", "")];
    let (india, us) = india_then_us(config, &server).await;

    let (mut body, _) = json_without(&india, "/messages/0/content/text");
    body["messages"][0]["destinations"][0]["messageId"].take();
    assert_eq!(
        body,
        json!({"messages": [{
            "sender": "ACMEOT",
            "destinations": [{"to": "919876543210", "messageId": null}],
            "content": {"text": null},
            "options": {"regional": {"indiaDlt": {
                "principalEntityId": ENTITY,
                "contentTemplateId": TEMPLATE,
            }}},
        }]})
    );
    let (body, _) = json_without(&us, "/messages/0/content/text");
    assert!(body["messages"][0].get("options").is_none(), "{body}");
}

#[tokio::test]
async fn sns_sends_the_aws_mm_sms_entity_and_template_attributes() {
    let server = answering(sns_published("567910cd-659e-55d4-8ccb-5aaf14679dc0")).await;
    let mut config = config_for(SmsProvider::Sns);
    with_sns(&mut config, &server);
    config.sms.routes = vec![india_route(SmsProvider::Sns, "ACMEOT", "")];
    let (india, us) = india_then_us(config, &server).await;

    let attribute = |i: usize, name: &str, value: &str| {
        let entry = format!("MessageAttributes.entry.{i}");
        [
            (format!("{entry}.Name"), name.to_owned()),
            (format!("{entry}.Value.DataType"), "String".to_owned()),
            (format!("{entry}.Value.StringValue"), value.to_owned()),
        ]
    };
    let mut expected: Vec<(String, String)> = [
        ("Action".to_owned(), "Publish".to_owned()),
        ("PhoneNumber".to_owned(), INDIA.to_owned()),
        ("Version".to_owned(), "2010-03-31".to_owned()),
    ]
    .into_iter()
    .chain(attribute(1, "AWS.SNS.SMS.SMSType", "Transactional"))
    .chain(attribute(2, "AWS.SNS.SMS.SenderID", "ACMEOT"))
    .chain(attribute(3, "AWS.MM.SMS.EntityId", ENTITY))
    .chain(attribute(4, "AWS.MM.SMS.TemplateId", TEMPLATE))
    .collect();
    expected.sort();
    assert_eq!(form_without(&india, "Message").0, expected);
    let (fields, _) = form_without(&us, "Message");
    assert!(
        !fields.iter().any(|(_, v)| v.starts_with("AWS.MM.SMS.")),
        "{fields:?}"
    );
}

/// Plivo's Message API, by configuration alone, DLT ids included.
fn generic_as_plivo(config: &mut Config, server: &MockServer) {
    let http = &mut config.sms.http;
    http.url = format!("{}/v1/Account/MAXXXXXXXXXXXXXXXXXX/Message/", server.uri());
    http.body_format = HttpBodyFormat::Json;
    http.body = json!({
        "src": "{from}",
        "dst": "{to_digits}",
        "text": "{text}",
        "dlt_entity_id": "{dlt_entity_id}",
        "dlt_template_id": "{dlt_template_id}",
    })
    .to_string();
    http.from = "14155550000".into();
    http.auth = otpd::config::HttpAuth::Basic;
    http.username = "MAXXXXXXXXXXXXXXXXXX".into();
    http.password = Secret::new("plivo-token");
    http.id_pointer = "/message_uuid/0".into();
}

#[tokio::test]
async fn the_generic_vendor_puts_the_ids_where_its_template_names_them() {
    let server = answering(plivo_accepted("generic-uuid")).await;
    let mut config = config_for(SmsProvider::Console);
    generic_as_plivo(&mut config, &server);
    config.sms.routes = vec![india_route(SmsProvider::Http, "ACMEOT", "")];
    let app = spawn_app(config).await;
    let sent = app.send(INDIA).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "http");
    let (body, _) = json_without(&requests_to(&server).await[0], "/text");
    assert_eq!(
        body,
        json!({
            "src": "ACMEOT",
            "dst": "919876543210",
            "text": null,
            "dlt_entity_id": ENTITY,
            "dlt_template_id": TEMPLATE,
        })
    );
    // Elsewhere, the console: the generic vendor is used only where the ids are.
    assert_eq!(app.send(PHONE).await.body["provider"], "console");
}

async fn refusal(config: Config) -> String {
    match Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink()))).await {
        Ok(_) => panic!("the start should be refused"),
        Err(e) => format!("{}: {}", e.key, e.reason),
    }
}

#[tokio::test]
async fn ids_that_are_not_what_dlt_issues_stop_the_start_naming_the_setting() {
    let server = MockServer::start().await;
    let mut base = config_for(SmsProvider::Console);
    with_plivo(&mut base, &server);
    let with = |entity: &str, template: &str, category: &str| {
        let mut config = base.clone();
        let mut route = india_route(SmsProvider::Plivo, "ACMEOT", category);
        route.dlt = Some(DltConfig {
            entity_id: entity.into(),
            template_id: template.into(),
            template_category: category.into(),
        });
        config.sms.routes = vec![route];
        config
    };
    let id_reason = |what: &str| format!("must be the {what} the DLT platform gave: 1 to 20 digits");
    let cases = [
        (
            with("", TEMPLATE, ""),
            format!(
                "sms.routes[0].dlt.entity_id: {}",
                id_reason("principal entity id")
            ),
        ),
        (
            with("1101\"}, \"evil\": {\"", TEMPLATE, ""),
            format!(
                "sms.routes[0].dlt.entity_id: {}",
                id_reason("principal entity id")
            ),
        ),
        (
            with(ENTITY, "1107&api_secret=x", ""),
            format!(
                "sms.routes[0].dlt.template_id: {}",
                id_reason("content template id")
            ),
        ),
        (
            with(ENTITY, &"1".repeat(21), ""),
            format!(
                "sms.routes[0].dlt.template_id: {}",
                id_reason("content template id")
            ),
        ),
        (
            with(ENTITY, TEMPLATE, "otp"),
            "sms.routes[0].dlt.template_category: must be transactional, promotional, \
             service_implicit or service_explicit"
                .to_owned(),
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(refusal(config).await, expected);
    }
}

#[tokio::test]
async fn a_generic_template_naming_dlt_ids_outside_a_dlt_route_stops_the_start() {
    let server = MockServer::start().await;
    let mut config = config_for(SmsProvider::Http);
    generic_as_plivo(&mut config, &server);
    assert!(refusal(config.clone())
        .await
        .starts_with("sms.http.body: names {dlt_entity_id} or {dlt_template_id}"),);
    // In a route without `dlt`, too.
    config.sms.provider = SmsProvider::Console;
    let mut route = india_route(SmsProvider::Http, "ACMEOT", "");
    route.dlt = None;
    config.sms.routes = vec![route];
    assert!(refusal(config).await.starts_with("sms.http.body: "));
}

#[tokio::test]
async fn a_vendor_that_takes_no_ids_still_sends_on_a_dlt_route() {
    // Twilio takes DLT templates at registration, not per request.
    let server =
        answering(ResponseTemplate::new(201).set_body_json(json!({"sid": "SMin", "status": "queued"}))).await;
    let mut config = config_for(SmsProvider::Console);
    with_twilio(&mut config, &server);
    config.sms.routes = vec![india_route(SmsProvider::Twilio, "ACMEOT", "")];
    let app = spawn_app(config).await;
    assert_eq!(app.send(INDIA).await.status, 202);
    let fields: Vec<String> = url::form_urlencoded::parse(&requests_to(&server).await[0].body)
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(fields, ["To", "Body", "From"]);
}

#[test]
fn dlt_ids_load_from_a_file_and_from_the_environment() {
    let toml = r#"
[[sms.routes]]
countries = ["IN"]
vendors = ["vonage"]
senders = { vonage = "ACMEOT" }
dlt = { entity_id = "1101456789012345678", template_id = "1107161234567890123" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otpd.toml");
    std::fs::write(&file, toml).unwrap();
    let from_file = Config::load_from(Some(&file), &[]).unwrap();
    assert_eq!(from_file.sms.routes[0].dlt, Some(dlt("")));

    let env = [(
        "OTPD_SMS__ROUTES".to_owned(),
        json!([{"countries": ["IN"], "vendors": ["vonage"], "dlt": {
            "entity_id": ENTITY, "template_id": TEMPLATE, "template_category": "transactional",
        }}])
        .to_string(),
    )];
    let from_env = Config::load_from(None, &env).unwrap();
    assert_eq!(from_env.sms.routes[0].dlt, Some(dlt("transactional")));

    let unknown = [(
        "OTPD_SMS__ROUTES".to_owned(),
        json!([{"countries": ["IN"], "vendors": ["vonage"], "dlt": {"pe_id": ENTITY}}]).to_string(),
    )];
    let err = Config::load_from(None, &unknown).unwrap_err();
    assert!(err.key.starts_with("sms.routes"), "{err}");
}
