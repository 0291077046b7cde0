//! The findings of the outside security review, each tried as an attacker
//! would: odd methods, guessing across codes, SMS pumping ranges, IPv6
//! prefixes, status probes, unsafe starts, a full memory store, metrics and
//! readiness, the docs' headers, proxies' `IP:port` hops, request ids, the
//! original routes' missing fields and the spec's input shapes.

use std::io::Read;

use otpd::adapters::sms::ConsoleOut;
use otpd::config::{Config, LimitsConfig, Secret, StoreUrl};
use otpd::startup::Application;
use serde_json::{json, Value};

use crate::helpers::{memory_config, redis_config, reply, spawn_app, wrong, Reply, TestApp};

const PHONE: &str = "+14155552671";
const KEY: &str = "hardening-key-0123456789";

async fn with_key(request: reqwest::RequestBuilder) -> Reply {
    reply(request.bearer_auth(KEY).send().await.unwrap()).await
}

#[tokio::test]
async fn odd_methods_add_no_metric_series_and_are_refused_first() {
    let mut config = memory_config();
    config.auth.api_keys = vec![Secret::new(KEY)];
    let app = spawn_app(config).await;
    let scrape = || with_key(app.client.get(app.url("/metrics")));
    // The first scrape adds its own series; count from the second.
    scrape().await;
    let before = scrape().await.body.as_str().unwrap().to_owned();

    let odd = |method: reqwest::Method, path: &str| {
        let request = app.client.request(method, app.url(path));
        async move { reply(request.send().await.unwrap()).await }
    };
    for i in 0..1000 {
        let method = reqwest::Method::from_bytes(format!("ODD{i}").as_bytes()).unwrap();
        // A route that exists names its methods; any other path: 501.
        odd(method.clone(), "/v1/otp")
            .await
            .assert_problem(405, "method_not_allowed");
        odd(method, "/nowhere")
            .await
            .assert_problem(501, "method_not_implemented");
    }
    let huge = reqwest::Method::from_bytes("X".repeat(100_000).as_bytes()).unwrap();
    odd(huge, "/nowhere")
        .await
        .assert_problem(501, "method_not_implemented");
    let query = reqwest::Method::from_bytes(b"QUERY").unwrap();
    let answer = app
        .client
        .request(query, app.url("/v1/otp"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 405);
    assert_eq!(answer.headers()["allow"], "POST");

    let after = scrape().await.body.as_str().unwrap().to_owned();
    assert!(!after.contains("ODD"), "an odd method became a label");
    assert!(!after.contains("XXXX"));
    let series = |text: &str| text.lines().filter(|l| l.contains("method=\"")).count();
    // Two new series sets, the odd methods' `other` on unmatched routes with
    // 405 and 501, each a histogram of 16 lines (13 buckets, +Inf, sum, count).
    assert_eq!(series(&after) - series(&before), 32, "{after}");
    assert!(after.contains("method=\"other\",route=\"unmatched\",status=\"501\""));
    assert!(after.contains("method=\"other\",route=\"unmatched\",status=\"405\""));
    assert!(after.len() < before.len() + 8_000, "the scrape stayed small");
}

/// Codes sent and guessed at by phone through two instances in turn: the
/// phone's ceiling (20 wrong codes an hour) hears only what the live
/// verifications have not reserved, then refuses a new verification; the
/// attempts the first one reserved for its id still work.
pub async fn guesses_across_codes(a: &TestApp, b: &TestApp) {
    let mut heard = 0;
    let mut first = None;
    let mut refused = None;
    for i in 0..10 {
        let (sender, other) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let sent = sender.send(PHONE).await;
        if sent.status != 202 {
            refused = Some(sent);
            break;
        }
        let code = sender.outbox.last_code(PHONE);
        first.get_or_insert((sent.body["verification_id"].clone(), code.clone()));
        loop {
            let answer = other.verify(PHONE, &wrong(&code)).await;
            match answer.status {
                422 => heard += 1,
                _ => {
                    assert_eq!(answer.status, 429, "{:?}", answer.body);
                    break;
                }
            }
        }
    }
    // Two verifications reserve 10; 5 wrong codes by phone each fill the rest.
    assert_eq!(
        heard, 10,
        "wrong codes heard by phone, across codes and instances"
    );
    let refused = refused.expect("the ceiling refused a new verification");
    refused.assert_problem(429, "guess_budget_exceeded");
    // Room comes back when the first reserving verification expires.
    assert!((1..=180).contains(&refused.retry_after.unwrap()));
    let (id, code) = first.unwrap();
    let approved = b
        .post_json(
            "/v1/otp/verify",
            serde_json::json!({"verification_id": id, "code": code}),
        )
        .await;
    assert_eq!(approved.status, 200, "its reserved attempts are its own");
}

/// Every limit off but the guess budget, at its defaults.
pub fn guess_budget_only(mut config: Config) -> Config {
    config.limits = LimitsConfig {
        resend_after_secs: 0,
        sends_per_phone: 0,
        sends_per_ip: 0,
        verifies_per_ip: 0,
        lookups_per_ip: 0,
        ..LimitsConfig::default()
    };
    config
}

#[tokio::test]
async fn wrong_guesses_are_budgeted_across_codes_and_instances_on_redis() {
    let config = guess_budget_only(redis_config());
    let (a, b) = (spawn_app(config.clone()).await, spawn_app(config).await);
    guesses_across_codes(&a, &b).await;
}

#[tokio::test]
async fn wrong_guesses_are_budgeted_on_memory() {
    let app = spawn_app(guess_budget_only(memory_config())).await;
    guesses_across_codes(&app, &app).await;
}

#[tokio::test]
async fn pumping_ranges_are_refused_by_default_and_allowed_by_prefix() {
    let app = spawn_app(memory_config()).await;
    let refused = [
        "+80012345678",  // international freephone
        "+80812345678",  // international shared cost
        "+870301234567", // Inmarsat
        "+881612345678", // global mobile satellite
        "+8823421234",   // international networks
        "+883510012345", // international networks
        "+447012345678", // UK personal number
        "+447640123456", // UK pager
        "+19002345678",  // premium rate
    ];
    for phone in refused {
        app.send(phone)
            .await
            .assert_problem(422, "destination_not_allowed");
    }
    assert!(app.outbox.lines().is_empty(), "no SMS");

    let mut config = memory_config();
    config.sms.allowed_special_prefixes = vec!["+882".into(), "+4470".into()];
    let app = spawn_app(config).await;
    assert_eq!(app.send("+8823421234").await.status, 202);
    assert_eq!(app.send("+447012345678").await.status, 202);
    app.send("+447640123456")
        .await
        .assert_problem(422, "destination_not_allowed");
    app.send("+19002345678")
        .await
        .assert_problem(422, "destination_not_allowed");
}

fn behind_proxy(mut config: Config) -> Config {
    config.http.trusted_proxies = vec!["127.0.0.1".into()];
    config
}

async fn send_from(app: &TestApp, phone: &str, client: &str) -> Reply {
    app.post_json_with(
        "/v1/otp",
        json!({ "phone": phone }),
        &[("x-forwarded-for", client)],
    )
    .await
}

#[tokio::test]
async fn ipv6_clients_share_a_quota_per_64() {
    let mut config = behind_proxy(memory_config());
    config.limits.sends_per_ip = 20;
    let app = spawn_app(config).await;
    for i in 0..20 {
        let client = format!("2001:db8:1:2:{i:x}::{:x}", i * 7 + 1);
        assert_eq!(
            send_from(&app, &format!("+1415555{i:04}"), &client).await.status,
            202
        );
    }
    for i in 20..25 {
        let client = format!("2001:db8:1:2:ffff:{i:x}::1");
        send_from(&app, &format!("+1415555{i:04}"), &client)
            .await
            .assert_problem(429, "ip_quota_exceeded");
    }
    // The next /64 is another client.
    assert_eq!(
        send_from(&app, "+14155550099", "2001:db8:1:3::1").await.status,
        202
    );
}

#[tokio::test]
async fn forwarded_hops_with_ports_are_their_address() {
    let mut config = behind_proxy(memory_config());
    config.limits.sends_per_ip = 1;
    let app = spawn_app(config).await;
    assert_eq!(
        send_from(&app, "+14155550001", "203.0.113.9:5555").await.status,
        202
    );
    send_from(&app, "+14155550002", "203.0.113.9:6666")
        .await
        .assert_problem(429, "ip_quota_exceeded");
    assert_eq!(
        send_from(&app, "+14155550003", "[2001:db8::9]:443").await.status,
        202,
        "another client, not the proxy's bucket"
    );
    assert_eq!(
        send_from(&app, "+14155550004", "198.51.100.1:1").await.status,
        202
    );
}

#[tokio::test]
async fn status_probes_take_a_quota() {
    let mut config = memory_config();
    config.limits.lookups_per_ip = 60;
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let mut answered = 0;
    let mut limited = 0;
    for i in 0..100 {
        let answer = if i % 2 == 0 {
            app.get(&format!("/v1/otp/{PHONE}")).await
        } else {
            app.post_form("/validate_otp", &[("phone_number", "14155550123")])
                .await
        };
        match answer.status {
            200 | 404 => answered += 1,
            429 => {
                answer.assert_problem(429, "ip_quota_exceeded");
                limited += 1;
            }
            other => panic!("{other}: {}", answer.body),
        }
    }
    assert_eq!((answered, limited), (60, 40));
}

async fn start_error(config: &Config) -> otpd::config::ConfigError {
    Application::build(config, ConsoleOut::Writer(Box::new(std::io::sink())))
        .await
        .err()
        .expect("the start is refused")
}

#[tokio::test]
async fn an_open_api_on_a_public_address_does_not_start() {
    let mut config = memory_config();
    config.auth.allow_anonymous = false;
    config.http.listen = "0.0.0.0:0".into();
    let err = start_error(&config).await;
    assert_eq!(err.key, "auth.api_keys");
    let text = err.to_string();
    assert!(
        text.contains("http.listen") && text.contains("auth.allow_anonymous"),
        "{text}"
    );

    config.auth.allow_anonymous = true;
    assert!(
        Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .is_ok()
    );
    config.auth.allow_anonymous = false;
    config.auth.api_keys = vec![Secret::new(KEY)];
    assert!(
        Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .is_ok()
    );
    // On loopback, open and friendly.
    config = memory_config();
    config.auth.allow_anonymous = false;
    assert!(
        Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .is_ok()
    );
}

/// Loopback is local only with no proxy in front (a proxy on this machine
/// carries strangers' requests to it) and no real phone texted.
#[tokio::test]
async fn an_open_api_behind_a_proxy_or_with_a_real_vendor_does_not_start() {
    let local = || {
        let mut config = memory_config();
        config.auth.allow_anonymous = false;
        config
    };
    let mut proxied = local();
    proxied.http.trusted_proxies = vec!["127.0.0.1".into()];
    let mut vendor = local();
    vendor.sms.provider = otpd::config::SmsProvider::Twilio;
    let mut fallback = local();
    fallback.sms.fallback = Some(otpd::config::SmsProvider::Plivo);
    let mut routed = local();
    routed.sms.routes = vec![otpd::config::RouteConfig {
        countries: vec!["GB".into()],
        vendors: vec![otpd::config::SmsProvider::Twilio],
        ..otpd::config::RouteConfig::default()
    }];
    for (config, why) in [
        (proxied, "trusted_proxies"),
        (vendor, "real SMS vendor"),
        (fallback, "real SMS vendor"),
        (routed, "real SMS vendor"),
    ] {
        let err = start_error(&config).await;
        assert_eq!(err.key, "auth.api_keys");
        assert!(err.to_string().contains(why), "{err}");
        let mut keyed = config.clone();
        keyed.auth.api_keys = vec![Secret::new(KEY)];
        let mut anonymous = config;
        anonymous.auth.allow_anonymous = true;
        for config in [keyed, anonymous] {
            // The vendors here have no credentials, which stops the start
            // later: only the keys' refusal is gone.
            let refused = Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
                .await
                .err()
                .map(|e| e.key);
            assert_ne!(refused.as_deref(), Some("auth.api_keys"), "{why}");
        }
    }
}

#[tokio::test]
async fn a_shared_store_without_a_hash_key_does_not_start() {
    let mut config = redis_config();
    config.otp.hash_keys = Vec::new();
    let err = start_error(&config).await;
    assert_eq!(err.key, "otp.hash_keys");
    assert!(err.to_string().contains("openssl rand -hex 32"), "{err}");

    let mut config = memory_config();
    config.otp.hash_keys = Vec::new();
    assert!(
        Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_full_memory_store_answers_503_and_keeps_what_it_holds() {
    let mut config = memory_config();
    // Each send holds one: its verification.
    config.store.memory_max_entries = 5;
    let app = spawn_app(config).await;
    for i in 0..5 {
        assert_eq!(app.send(&format!("+1415555{i:04}")).await.status, 202);
    }
    let full = app.send("+14155550005").await;
    full.assert_problem(503, "store_full");
    assert_eq!(
        app.outbox.lines().len(),
        5,
        "no SMS for a code that was not stored"
    );
    // A code already held still verifies, and its room is then reused.
    let code = app.outbox.last_code("+14155550000");
    assert_eq!(app.verify("+14155550000", &code).await.status, 200);
    assert_eq!(app.send("+14155550000").await.status, 202);
}

#[tokio::test]
async fn metrics_need_a_key_when_keys_are_set_and_readiness_shows_no_error_text() {
    let mut config = memory_config();
    config.auth.api_keys = vec![Secret::new(KEY)];
    let app = spawn_app(config).await;
    app.get("/metrics").await.assert_problem(401, "unauthorized");
    assert_eq!(with_key(app.client.get(app.url("/metrics"))).await.status, 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "readiness stays open");
    assert_eq!(
        ready.body,
        serde_json::json!({"status": "ready", "store": "ok"}),
        "and names no SMS vendor"
    );

    let app = spawn_app(crate::helpers::unreachable_redis_config(300)).await;
    let ready = app.get("/readyz").await;
    ready.assert_problem(503, "not_ready");
    assert_eq!(ready.body["detail"], "store: not answering");
}

#[tokio::test]
async fn docs_pages_carry_security_headers_and_come_gzipped() {
    let app = spawn_app(memory_config()).await;
    let plain = app.client.get(app.url("/docs")).send().await.unwrap();
    let headers = plain.headers().clone();
    let html = plain.text().await.unwrap();
    assert!(html.len() > 1_000_000, "Swagger UI whole");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'sha256-",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src 'unsafe-inline'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let zipped = app
        .client
        .get(app.url("/docs"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    assert!(bytes.len() < html.len() / 3, "{} of {}", bytes.len(), html.len());
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, html);

    for path in ["/v1/otp/+14155552671", "/healthz", "/openapi.json", "/nope"] {
        let answer = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(answer.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn request_ids_are_random() {
    let app = spawn_app(memory_config()).await;
    let id = |response: reqwest::Response| response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let first = id(app.client.get(app.url("/healthz")).send().await.unwrap());
    let second = id(app.client.get(app.url("/healthz")).send().await.unwrap());
    for id in [&first, &second] {
        assert_eq!(id.len(), 24, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    // Counters share a prefix and differ at the end; random ids share nothing.
    assert_ne!(first[..12], second[..12]);
}

#[tokio::test]
async fn the_original_routes_say_which_field_is_missing_as_the_original_did() {
    let app = spawn_app(memory_config()).await;
    let bare = |path: &str| reply_of(app.client.post(app.url(path)));
    for (path, form, field) in [
        ("/generate_otp", vec![], "phone_number"),
        ("/validate_otp", vec![], "phone_number"),
        ("/verify_otp", vec![("otp", "123456")], "phone_number"),
        ("/verify_otp", vec![("phone_number", "14155552671")], "otp"),
    ] {
        let answer = app.post_form(path, &form).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(answer.content_type, "application/json; charset=utf-8");
        assert_eq!(
            answer.body,
            json!({"status": "error", "message": format!("{field} is required.")})
        );
    }
    for path in ["/generate_otp", "/validate_otp", "/verify_otp"] {
        let answer = bare(path).await;
        assert_eq!(answer.status, 400, "no body at all: {path}: {}", answer.body);
        assert_eq!(answer.body["status"], "error");
    }
    app.post_raw(
        "/generate_otp",
        "application/json",
        r#"{"phone_number":"14155552671"}"#,
    )
    .await
    .assert_problem(415, "unsupported_media_type");
}

async fn reply_of(request: reqwest::RequestBuilder) -> Reply {
    reply(request.send().await.unwrap()).await
}

#[test]
fn the_spec_says_what_inputs_are_accepted() {
    let spec: Value = serde_json::from_str(&otpd::adapters::http::spec().spec()).unwrap();
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["VerifyRequest"]["properties"]["code"]["pattern"],
        "^[0-9]{6}$"
    );
    assert_eq!(schemas["VerifyRequest"]["properties"]["phone"]["maxLength"], 32);
    assert_eq!(schemas["SendRequest"]["properties"]["phone"]["maxLength"], 32);
    assert_eq!(schemas["SendRequest"]["properties"]["phone"]["minLength"], 1);
    assert_eq!(
        schemas["VerifyForm"]["properties"]["otp"]["pattern"],
        "^[0-9]{6}$"
    );
    assert_eq!(
        schemas["PhoneForm"]["properties"]["phone_number"]["maxLength"],
        32
    );
    let status = &spec["paths"]["/v1/otp/{phone}"]["get"]["parameters"][0]["schema"];
    assert_eq!(status["maxLength"], 32);
}

#[tokio::test]
async fn a_store_url_other_than_memory_needs_the_hash_key_even_for_check_config() {
    let mut config = memory_config();
    config.store.url = StoreUrl(crate::helpers::redis_url());
    config.otp.hash_keys = Vec::new();
    let checked = otpd::startup::check(&config, ConsoleOut::Writer(Box::new(std::io::sink())));
    assert_eq!(checked.err().unwrap().key, "otp.hash_keys");
}
