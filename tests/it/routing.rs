//! Per-country routes: a country or a prefix picks a vendor chain and its
//! senders, the rest take the default chain; bad routes stop the start.

use otpd::adapters::sms::ConsoleOut;
use otpd::config::{Config, RouteConfig, SmsProvider};
use otpd::startup::Application;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::spawn_app;
use crate::sms_vendors::{
    config_for, plivo_accepted, requests_to, twilio_created, with_plivo, with_twilio, PLIVO_PATH, TWILIO_PATH,
};

const INDIA: &str = "+919876543210";
const UK_MOBILE: &str = "+447400123456";
const UK_LANDLINE: &str = "+442079460958";
const US: &str = "+14155552671";

fn route(
    countries: &[&str],
    prefixes: &[&str],
    vendors: &[SmsProvider],
    senders: &[(&str, &str)],
) -> RouteConfig {
    RouteConfig {
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        vendors: vendors.to_vec(),
        senders: senders
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        dlt: None,
    }
}

/// Twilio by default with Plivo behind it; both vendors answer.
async fn vendors() -> (MockServer, MockServer, Config) {
    let plivo = MockServer::start().await;
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PLIVO_PATH))
        .respond_with(plivo_accepted("plivo-uuid"))
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(twilio_created("SMtwilio"))
        .mount(&twilio)
        .await;
    let mut config = config_for(SmsProvider::Twilio);
    config.sms.fallback = Some(SmsProvider::Plivo);
    with_plivo(&mut config, &plivo);
    with_twilio(&mut config, &twilio);
    (plivo, twilio, config)
}

fn plivo_src(request: &Request) -> String {
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    body["src"].as_str().unwrap().to_owned()
}

fn twilio_from(request: &Request) -> String {
    url::form_urlencoded::parse(&request.body)
        .find(|(k, _)| k == "From")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn a_country_picks_its_chain_and_sender_and_the_rest_take_the_default() {
    let (plivo, twilio, mut config) = vendors().await;
    config.sms.routes = vec![
        route(&["IN"], &[], &[SmsProvider::Plivo], &[("plivo", "ACMEOT")]),
        route(&["GB"], &[], &[SmsProvider::Twilio], &[("twilio", "Acme")]),
    ];
    let app = spawn_app(config).await;

    let india = app.send(INDIA).await;
    assert_eq!(india.status, 202, "{}", india.body);
    assert_eq!(india.body["provider"], "plivo");
    let uk = app.send(UK_MOBILE).await;
    assert_eq!(uk.body["provider"], "twilio");
    let us = app.send(US).await;
    assert_eq!(us.body["provider"], "twilio");
    assert_eq!(
        app.get(&format!("/v1/otp/{INDIA}")).await.body["delivery"]["provider"],
        "plivo"
    );

    let to_plivo = requests_to(&plivo).await;
    assert_eq!(to_plivo.len(), 1);
    assert_eq!(plivo_src(&to_plivo[0]), "ACMEOT", "India's DLT sender");
    let to_twilio = requests_to(&twilio).await;
    assert_eq!(to_twilio.len(), 2);
    assert_eq!(twilio_from(&to_twilio[0]), "Acme", "the UK's alphanumeric sender");
    assert_eq!(twilio_from(&to_twilio[1]), "+14155550000", "the default sender");

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"otpd_sms_vendor_sends_total{country="IN",outcome="sent",provider="plivo"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"otpd_sms_vendor_sends_total{country="GB",outcome="sent",provider="twilio"} 1"#));
}

#[tokio::test]
async fn the_longest_prefix_wins_over_a_country() {
    let (plivo, twilio, mut config) = vendors().await;
    config.sms.routes = vec![
        route(&["GB"], &[], &[SmsProvider::Twilio], &[]),
        route(
            &[],
            &["+4474"],
            &[SmsProvider::Plivo],
            &[("plivo", "447400000000")],
        ),
    ];
    let app = spawn_app(config).await;

    assert_eq!(app.send(UK_MOBILE).await.body["provider"], "plivo");
    assert_eq!(app.send(UK_LANDLINE).await.body["provider"], "twilio");
    assert_eq!(plivo_src(&requests_to(&plivo).await[0]), "447400000000");
    assert_eq!(requests_to(&twilio).await.len(), 1);
}

#[tokio::test]
async fn a_route_fails_over_along_its_own_chain_with_its_senders() {
    let plivo = MockServer::start().await;
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(twilio_created("SMfallback"))
        .mount(&twilio)
        .await;
    let mut config = config_for(SmsProvider::Console);
    config.sms.retries = 0;
    with_plivo(&mut config, &plivo);
    with_twilio(&mut config, &twilio);
    config.sms.routes = vec![route(
        &["IN"],
        &[],
        &[SmsProvider::Plivo, SmsProvider::Twilio],
        &[("plivo", "ACMEOT"), ("twilio", "ACMEIN")],
    )];
    let app = spawn_app(config).await;

    let sent = app.send(INDIA).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["provider"], "twilio");
    assert_eq!(twilio_from(&requests_to(&twilio).await[0]), "ACMEIN");
    // The rest still go to the console.
    assert_eq!(app.send(US).await.body["provider"], "console");
}

async fn refusal(config: Config) -> String {
    let mut config = config;
    config.http.listen = "127.0.0.1:0".into();
    match Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink()))).await {
        Ok(_) => panic!("the start should be refused"),
        Err(e) => format!("{}: {}", e.key, e.reason),
    }
}

#[tokio::test]
async fn bad_routes_stop_the_start_naming_the_setting() {
    let (_plivo, _twilio, config) = vendors().await;
    let with = |routes: Vec<RouteConfig>| {
        let mut config = config.clone();
        config.sms.routes = routes;
        config
    };
    let cases = [
        (
            with(vec![
                route(&[], &["+91"], &[SmsProvider::Plivo], &[]),
                route(&[], &["+91"], &[SmsProvider::Twilio], &[]),
            ]),
            "sms.routes[1].prefixes: +91 is claimed by another route too",
        ),
        (
            with(vec![
                route(&["IN"], &[], &[SmsProvider::Plivo], &[]),
                route(&["IN", "GB"], &[], &[SmsProvider::Twilio], &[]),
            ]),
            "sms.routes[1].countries: IN is claimed by an earlier route too",
        ),
        (
            with(vec![route(&["GB"], &[], &[SmsProvider::Twilio], &[("twilio", "AcmeBankingUK")])]),
            "sms.routes[0].senders.twilio: the alphanumeric sender `AcmeBankingUK` is longer than 11 characters",
        ),
        (
            with(vec![route(&["GB"], &[], &[SmsProvider::Twilio], &[("plivo", "Acme")])]),
            "sms.routes[0].senders.plivo: names no vendor of this route",
        ),
        (
            with(vec![route(&["GB"], &[], &[], &[])]),
            "sms.routes[0].vendors: a route needs at least one vendor",
        ),
        (
            with(vec![route(&["GB"], &[], &[SmsProvider::Console], &[])]),
            "sms.routes[0].vendors: the console is no vendor to route to",
        ),
        (
            with(vec![route(&[], &["44"], &[SmsProvider::Twilio], &[])]),
            "sms.routes[0].prefixes: `44` is not an E.164 prefix such as +44 or +9198",
        ),
        (
            with(vec![route(&["uk"], &[], &[SmsProvider::Twilio], &[])]),
            "sms.routes[0].countries: `uk` is not an ISO 3166 country code such as IN or GB",
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(refusal(config).await, expected);
    }
}

#[tokio::test]
async fn a_routed_vendor_without_credentials_stops_the_start() {
    let mut config = config_for(SmsProvider::Console);
    config.sms.routes = vec![route(&["IN"], &[], &[SmsProvider::Plivo], &[])];
    assert_eq!(
        refusal(config).await,
        "sms.plivo.auth_id: is required by the chosen SMS provider"
    );
}

#[test]
fn routes_load_from_a_file_and_from_the_environment() {
    let toml = r#"
[[sms.routes]]
countries = ["IN"]
vendors = ["plivo", "twilio"]
senders = { plivo = "ACMEOT" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("otpd.toml");
    std::fs::write(&file, toml).unwrap();
    let from_file = Config::load_from(Some(&file), &[]).unwrap();
    let expected = vec![route(
        &["IN"],
        &[],
        &[SmsProvider::Plivo, SmsProvider::Twilio],
        &[("plivo", "ACMEOT")],
    )];
    assert_eq!(from_file.sms.routes, expected);

    let env = [(
        "OTPD_SMS__ROUTES".to_owned(),
        r#"[{"countries": ["IN"], "vendors": ["plivo", "twilio"], "senders": {"plivo": "ACMEOT"}}]"#
            .to_owned(),
    )];
    assert_eq!(Config::load_from(None, &env).unwrap().sms.routes, expected);

    let unknown = [(
        "OTPD_SMS__ROUTES".to_owned(),
        r#"[{"countries": ["IN"], "vendors": ["pigeon"]}]"#.to_owned(),
    )];
    let err = Config::load_from(None, &unknown).unwrap_err();
    assert!(err.key.starts_with("sms.routes"), "{err}");
    assert!(err.reason.contains("pigeon"), "{err}");
}
