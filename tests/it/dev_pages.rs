//! The local inbox and try pages: served with the console alone on a loopback
//! address, with their security headers; fed by every console send, as JSON
//! and as server-sent events, keeping the last `Inbox::CAPACITY`; and an
//! unknown route whenever a real vendor is configured or the service listens
//! beyond loopback.

use std::time::Duration;

use futures_util::StreamExt;
use otpd::adapters::http::dev;
use otpd::adapters::sms::{ConsoleOut, Inbox};
use otpd::config::{Config, Secret, SmsProvider};
use otpd::startup::Application;
use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::{memory_config, reply, spawn_app, TestApp};

const PHONE: &str = "+14155552671";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn with_twilio(config: &mut Config, vendor: &MockServer) {
    config.sms.twilio.account_sid = "AC0123456789abcdef0123456789abcdef".into();
    config.sms.twilio.auth_token = Secret::new("twilio-token-secret");
    config.sms.twilio.from = "+14155550000".into();
    config.sms.twilio.base_url = vendor.uri();
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The JSON of the next `data:` line on an event stream.
async fn next_event<B: AsRef<[u8]>>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
) -> Value {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(data).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(chunk.as_ref()).unwrap());
    }
}

#[tokio::test]
async fn the_pages_are_served_with_their_security_headers_on_loopback_with_the_console() {
    let app = spawn_app(memory_config()).await;
    let kinds = [
        (dev::INBOX, "text/html"),
        (dev::TRY, "text/html"),
        (dev::MESSAGES, "application/json"),
        (dev::EVENTS, "text/event-stream"),
        (dev::STYLE, "text/css"),
        (dev::INBOX_SCRIPT, "text/javascript"),
        (dev::TRY_SCRIPT, "text/javascript"),
    ];
    assert_eq!(kinds.len(), dev::ROUTES.len());
    for (route, kind) in kinds {
        // Headers only: the event stream never ends by itself.
        let response = app.client.get(app.url(route)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{route}");
        assert!(header(&response, "content-type").starts_with(kind), "{route}");
        assert_eq!(header(&response, "content-security-policy"), CSP, "{route}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{route}");
        assert_eq!(header(&response, "cache-control"), "no-store", "{route}");
    }
    let page = app
        .client
        .get(app.url(dev::TRY))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"autocomplete="one-time-code""#));
    assert!(
        !page.contains("<script>") && !page.contains(" onclick="),
        "no inline script"
    );
    let post = app.post_json(dev::INBOX, serde_json::json!({})).await;
    post.assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn a_sent_code_is_listed_and_streamed_to_open_pages() {
    let app = spawn_app(memory_config()).await;
    let events = app.client.get(app.url(dev::EVENTS)).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut stream = events.bytes_stream();

    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.outbox.last_code(PHONE);

    let streamed = next_event(&mut stream, &mut String::new()).await;
    assert_eq!(streamed["phone"], PHONE);
    assert_eq!(streamed["provider"], "console");
    assert_eq!(streamed["state"], "queued");
    assert!(streamed["text"].as_str().unwrap().contains(&code));
    let listed = app.get(dev::MESSAGES).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["messages"][0], streamed);
    assert_eq!(listed.body["capacity"], Inbox::CAPACITY);
    assert_eq!(
        app.verify(PHONE, &code).await.status,
        200,
        "the inbox's code is the real one"
    );
}

#[tokio::test]
async fn the_inbox_keeps_only_the_newest_messages() {
    let app = spawn_app(memory_config()).await;
    let sends = Inbox::CAPACITY + 5;
    for i in 0..sends {
        assert_eq!(app.send(&format!("+1415555{i:04}")).await.status, 202);
    }
    let listed = app.get(dev::MESSAGES).await;
    let ids: Vec<u64> = listed.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    let newest = sends as u64;
    let expected: Vec<u64> = (newest - Inbox::CAPACITY as u64 + 1..=newest).rev().collect();
    assert_eq!(ids, expected, "the last {} sends, newest first", Inbox::CAPACITY);
    let last = format!("+1415555{:04}", sends - 1);
    let code = app.outbox.last_code(&last);
    assert!(listed.body["messages"][0]["text"]
        .as_str()
        .unwrap()
        .contains(&code));
}

#[tokio::test]
async fn the_pages_need_no_api_key_but_the_api_still_does() {
    let mut config = memory_config();
    config.auth.api_keys = vec![Secret::new("dev-pages-key-0123456789")];
    let app = spawn_app(config).await;
    assert_eq!(app.get(dev::INBOX).await.status, 200);
    assert_eq!(app.get(dev::MESSAGES).await.status, 200);
    app.send(PHONE).await.assert_problem(401, "unauthorized");
}

/// Every development route answers exactly what an unknown route does.
async fn assert_off(base: &str) {
    let client = reqwest::Client::new();
    let unknown = reply(client.get(format!("{base}/no-such-route")).send().await.unwrap()).await;
    unknown.assert_problem(404, "route_not_found");
    for route in dev::ROUTES.into_iter().chain(["/dev", "/dev/"]) {
        let answer = reply(client.get(format!("{base}{route}")).send().await.unwrap()).await;
        assert_eq!(
            (answer.status, &answer.content_type, &answer.body),
            (unknown.status, &unknown.content_type, &unknown.body),
            "{route}"
        );
    }
}

#[tokio::test]
async fn the_pages_are_an_unknown_route_with_a_real_vendor() {
    let vendor = MockServer::start().await;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Twilio;
    with_twilio(&mut config, &vendor);
    assert_off(&spawn_app(config).await.base).await;
}

#[tokio::test]
async fn the_pages_are_an_unknown_route_with_a_real_fallback() {
    let vendor = MockServer::start().await;
    let mut config = memory_config();
    config.sms.provider = SmsProvider::Console;
    config.sms.fallback = Some(SmsProvider::Twilio);
    with_twilio(&mut config, &vendor);
    assert_off(&spawn_app(config).await.base).await;
}

#[tokio::test]
async fn the_pages_are_an_unknown_route_beyond_loopback() {
    let mut config = memory_config();
    config.http.listen = "0.0.0.0:0".into();
    // Whatever lets it start there: the pages stay off.
    config.auth.allow_anonymous = true;
    let app: TestApp = spawn_app(config).await;
    let port = app.base.rsplit(':').next().unwrap();
    assert!(app.base.starts_with("http://0.0.0.0:"), "{}", app.base);
    // Asked through loopback: still off, as the address listened on is not.
    assert_off(&format!("http://127.0.0.1:{port}")).await;
}

/// A request a proxy carried came from elsewhere, whatever its `Host`.
#[tokio::test]
async fn the_pages_are_an_unknown_route_through_a_proxy() {
    let app = spawn_app(memory_config()).await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
        ("x-forwarded-host", "otp.example"),
    ] {
        let proxied = app
            .client
            .get(app.url(dev::MESSAGES))
            .header(name, value)
            .send()
            .await
            .unwrap();
        reply(proxied).await.assert_problem(404, "route_not_found");
    }
    assert_eq!(
        app.client
            .get(app.url(dev::MESSAGES))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_pages_are_an_unknown_route_with_a_trusted_proxy() {
    let mut config = memory_config();
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    assert_off(&spawn_app(config).await.base).await;
}

#[tokio::test]
async fn the_pages_are_an_unknown_route_with_a_real_route() {
    let vendor = MockServer::start().await;
    let mut config = memory_config();
    config.sms.routes = vec![otpd::config::RouteConfig {
        countries: vec!["GB".into()],
        vendors: vec![SmsProvider::Twilio],
        ..otpd::config::RouteConfig::default()
    }];
    with_twilio(&mut config, &vendor);
    assert_off(&spawn_app(config).await.base).await;
}

#[tokio::test]
async fn the_pages_refuse_a_host_that_is_not_this_machine() {
    let app = spawn_app(memory_config()).await;
    let rebound = app
        .client
        .get(app.url(dev::MESSAGES))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    reply(rebound).await.assert_problem(404, "route_not_found");
    let by_name = app
        .client
        .get(app.url(dev::MESSAGES))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);
}

#[tokio::test]
async fn the_start_up_line_links_the_inbox_only_when_it_is_on() {
    let console = memory_config();
    let app = Application::build(&console, ConsoleOut::Writer(Box::new(std::io::sink())))
        .await
        .unwrap();
    let link = format!("SMS inbox at http://{}{}", app.local_addr(), dev::INBOX);
    assert!(app.summary(&console).contains(&link), "{}", app.summary(&console));

    let vendor = MockServer::start().await;
    let mut twilio = memory_config();
    twilio.sms.provider = SmsProvider::Twilio;
    with_twilio(&mut twilio, &vendor);
    let app = Application::build(&twilio, ConsoleOut::Writer(Box::new(std::io::sink())))
        .await
        .unwrap();
    assert!(
        !app.summary(&twilio).contains("/dev/"),
        "{}",
        app.summary(&twilio)
    );
}
