//! Health, readiness, metrics and request ids, as an operator sees them.

use serde_json::json;

use crate::helpers::{memory_config, redis_config, spawn_app, unreachable_redis_config, wrong, TestApp};

const PHONE: &str = "+14155552671";

/// The value of the sample `name{labels}` in Prometheus text, 0 if absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            metric == name
                && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                && rest.matches('=').count() == labels.len()
        })
        .map_or(0.0, |(_, value)| value.parse().unwrap())
}

async fn metrics_of(app: &TestApp) -> String {
    let reply = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert!(reply.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    reply.text().await.unwrap()
}

#[tokio::test]
async fn liveness_and_readiness_on_memory() {
    let app = spawn_app(memory_config()).await;
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body,
        json!({"status": "ready", "store": "ok", "sms": "console"})
    );
}

#[tokio::test]
async fn readiness_follows_redis() {
    let app = spawn_app(redis_config()).await;
    assert_eq!(app.get("/readyz").await.status, 200);

    let app = spawn_app(unreachable_redis_config(300)).await;
    let ready = app.get("/readyz").await;
    ready.assert_problem(503, "not_ready");
    assert!(
        ready.body["detail"].as_str().unwrap().starts_with("store:"),
        "{}",
        ready.body
    );
    assert_eq!(app.get("/healthz").await.status, 200, "alive all the same");
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let mut config = memory_config();
    config.limits.resend_after_secs = 30;
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    app.send(PHONE).await.assert_problem(429, "resend_too_soon");
    app.verify(PHONE, &wrong(&code)).await;
    app.verify(PHONE, &code).await;
    app.verify(PHONE, &code).await;
    app.send("not a phone").await;

    let text = metrics_of(&app).await;
    let sends = "otpd_sends_total";
    assert_eq!(
        sample(&text, sends, &[("outcome", "sent"), ("provider", "console")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            sends,
            &[("outcome", "resend_too_soon"), ("provider", "none")]
        ),
        1.0
    );
    let verifications = "otpd_verifications_total";
    assert_eq!(sample(&text, verifications, &[("outcome", "code_mismatch")]), 1.0);
    assert_eq!(sample(&text, verifications, &[("outcome", "approved")]), 1.0);
    assert_eq!(sample(&text, verifications, &[("outcome", "not_found")]), 1.0);
    assert_eq!(
        sample(&text, "otpd_rejections_total", &[("limit", "resend_too_soon")]),
        1.0
    );
    let requests = "otpd_http_request_duration_seconds_count";
    let send_202 = [("route", "send_otp"), ("method", "POST"), ("status", "202")];
    assert_eq!(sample(&text, requests, &send_202), 1.0);
    let send_400 = [("route", "send_otp"), ("method", "POST"), ("status", "400")];
    assert_eq!(
        sample(&text, requests, &send_400),
        1.0,
        "a parse failure keeps its route"
    );
    let verify_422 = [("route", "verify_otp"), ("method", "POST"), ("status", "422")];
    assert_eq!(sample(&text, requests, &verify_422), 1.0);
    assert_eq!(sample(&text, "otpd_store_errors_total", &[]), 0.0);
    assert!(
        text.contains("otpd_http_request_duration_seconds_bucket{"),
        "{text}"
    );
}

#[tokio::test]
async fn store_errors_are_counted() {
    let app = spawn_app(unreachable_redis_config(200)).await;
    app.send(PHONE).await.assert_problem(503, "store_unavailable");
    app.verify(PHONE, "123456")
        .await
        .assert_problem(503, "store_unavailable");
    let text = metrics_of(&app).await;
    // A send's admission (the breaker counts only what was admitted) and
    // a verify's one.
    assert_eq!(sample(&text, "otpd_store_errors_total", &[]), 2.0, "{text}");
    assert_eq!(
        sample(&text, "otpd_store_calls_total", &[("caller", "requests")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "otpd_verifications_total",
            &[("outcome", "store_unavailable")]
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_can_have_their_own_listener() {
    let mut config = memory_config();
    config.metrics.listen = Some("127.0.0.1:0".into());
    let app = otpd::startup::Application::build(
        &config,
        otpd::adapters::sms::ConsoleOut::Writer(Box::new(std::io::sink())),
    )
    .await
    .unwrap();
    let (main, side) = (app.local_addr(), app.metrics_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let own = client.get(format!("http://{side}/metrics")).send().await.unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("otpd_"));
    let on_main = client.get(format!("http://{main}/metrics")).send().await.unwrap();
    assert_eq!(on_main.status(), 404);
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_echoed() {
    let app = spawn_app(memory_config()).await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "req-abc-123");
    let made = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    let again = app.client.get(app.url("/healthz")).send().await.unwrap();
    let next = again.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() >= 14 && id != next, "{id} then {next}");
    let forged = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "line\tbreak")
        .send()
        .await
        .unwrap();
    assert_ne!(forged.headers()["x-request-id"], "line\tbreak");
}

#[tokio::test]
async fn metrics_count_sends_approvals_blocks_and_spend_by_country() {
    let mut config = memory_config();
    config.fraud.prefix_mode = otpd::config::RuleMode::Enforce;
    config.spend.prices.insert("NG".into(), 0.5);
    config
        .otp
        .test_numbers
        .insert("+14155550100".into(), otpd::config::Secret::new("123456"));
    let app = spawn_app(config).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    // A test number is neither a send nor an approval here.
    app.send("+14155550100").await;
    assert_eq!(app.verify("+14155550100", "123456").await.status, 200);
    // Ten sends to one Nigerian prefix, then its block.
    for n in 0..11 {
        app.send(&format!("+2348031234{n:03}")).await;
    }

    let text = metrics_of(&app).await;
    let country = |name, country| sample(&text, name, &[("country", country)]);
    assert_eq!(country("otpd_country_sends_total", "US"), 1.0);
    assert_eq!(country("otpd_country_approvals_total", "US"), 1.0);
    assert_eq!(country("otpd_country_sends_total", "NG"), 10.0);
    assert_eq!(country("otpd_country_approvals_total", "NG"), 0.0);
    assert_eq!(country("otpd_country_spend_total", "NG"), 5.0);
    assert_eq!(country("otpd_country_spend_total", "US"), 0.008);
    assert_eq!(
        sample(
            &text,
            "otpd_country_blocks_total",
            &[("country", "NG"), ("level", "prefix"), ("mode", "enforce")]
        ),
        1.0
    );
}
