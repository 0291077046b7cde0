//! The `/v1` API, driven over HTTP against the real server.

use serde_json::json;

use crate::helpers::{memory_config, redis_config, spawn_app, wrong, TestApp};

const PHONE: &str = "+14155552671";

async fn full_flow(app: TestApp) {
    let sent = app.send("+1 415-555-2671").await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.body["status"], "pending");
    assert_eq!(sent.body["phone"], PHONE);
    assert_eq!(sent.body["expires_in"], 180);
    assert_eq!(sent.body["provider"], "console");
    assert!(!sent.body["message_id"].as_str().unwrap().is_empty());

    let lines = app.outbox.lines();
    assert_eq!(lines.len(), 1);
    let code = app.outbox.last_code(PHONE);
    assert_eq!(
        lines[0],
        format!("SMS to {PHONE}: Your otpd verification code is {code}. It expires in 3 minutes.")
    );

    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    assert_eq!(status.status, 200);
    let delivery = &status.body["delivery"];
    assert_eq!(delivery["provider"], "console");
    assert_eq!(delivery["message_id"], sent.body["message_id"]);
    assert_eq!(delivery["state"], "queued");
    assert!(delivery["updated_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        status.body,
        json!({"status": "pending", "expires_in": 180, "attempts_remaining": 5, "channel": "sms", "delivery": delivery}),
        "a read by phone never carries the id: that is its starter's alone"
    );

    let approved = app.verify(PHONE, &code).await;
    assert_eq!(approved.status, 200);
    assert_eq!(
        approved.body,
        json!({"status": "approved", "verification_id": sent.body["verification_id"]})
    );

    app.verify(PHONE, &code).await.assert_problem(404, "not_found");
    app.get(&format!("/v1/otp/{PHONE}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn send_read_verify_on_memory() {
    full_flow(spawn_app(memory_config()).await).await;
}

#[tokio::test]
async fn send_read_verify_on_redis() {
    full_flow(spawn_app(redis_config()).await).await;
}

async fn lock_after_max_attempts(app: TestApp) {
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    for remaining in (0..5).rev() {
        let reply = app.verify(PHONE, &wrong(&code)).await;
        reply.assert_problem(422, "code_mismatch");
        assert_eq!(reply.body["attempts_remaining"], remaining);
    }
    app.verify(PHONE, &code)
        .await
        .assert_problem(429, "max_attempts_reached");
    app.verify(PHONE, &wrong(&code))
        .await
        .assert_problem(429, "max_attempts_reached");
    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    assert_eq!(status.body["attempts_remaining"], 0);

    // A new code unlocks, and the old one is just wrong now.
    app.send(PHONE).await;
    let fresh = app.outbox.last_code(PHONE);
    if fresh != code {
        app.verify(PHONE, &code)
            .await
            .assert_problem(422, "code_mismatch");
    }
    assert_eq!(app.verify(PHONE, &fresh).await.status, 200);
}

#[tokio::test]
async fn the_attempt_lock_on_memory() {
    lock_after_max_attempts(spawn_app(memory_config()).await).await;
}

#[tokio::test]
async fn the_attempt_lock_on_redis() {
    lock_after_max_attempts(spawn_app(redis_config()).await).await;
}

#[tokio::test]
async fn configured_ttl_and_attempts_are_reported() {
    let mut config = memory_config();
    config.otp.ttl_secs = 90;
    config.otp.max_attempts = 2;
    let app = spawn_app(config).await;
    assert_eq!(app.send(PHONE).await.body["expires_in"], 90);
    assert!(app.outbox.lines()[0].ends_with("It expires in 2 minutes."));
    let status = app.get("/v1/otp/%2B14155552671").await;
    assert_eq!(status.body["attempts_remaining"], 2);
    assert_eq!(status.body["expires_in"], 90);
}

#[tokio::test]
async fn status_never_shows_the_code_or_its_hash() {
    let app = spawn_app(memory_config()).await;
    app.send(PHONE).await;
    let code = app.outbox.last_code(PHONE);
    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    let keys: Vec<_> = status.body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "attempts_remaining",
            "channel",
            "delivery",
            "expires_in",
            "status",
        ]
    );
    assert!(!status.body.to_string().contains(&code));
}

#[tokio::test]
async fn invalid_phones_are_400_invalid_phone() {
    let app = spawn_app(memory_config()).await;
    for phone in [
        "",
        "4155552671",
        "+1 000 000 0000",
        "+1415abc2671",
        "+123",
        "++14155552671",
        &"9".repeat(100),
    ] {
        app.send(phone).await.assert_problem(400, "invalid_phone");
        app.verify(phone, "123456")
            .await
            .assert_problem(400, "invalid_phone");
    }
    app.get("/v1/otp/not-a-phone")
        .await
        .assert_problem(400, "invalid_phone");
    assert!(app.outbox.lines().is_empty(), "no SMS for a bad phone");
}

#[tokio::test]
async fn malformed_codes_are_400_and_use_no_attempt() {
    let app = spawn_app(memory_config()).await;
    app.send(PHONE).await;
    for code in ["", "12345", "1234567", "12345a", " 123456", "１２３４５６"] {
        app.verify(PHONE, code)
            .await
            .assert_problem(400, "invalid_code_format");
    }
    let status = app.get(&format!("/v1/otp/{PHONE}")).await;
    assert_eq!(status.body["attempts_remaining"], 5);
}

#[tokio::test]
async fn malformed_requests_are_problems_never_500() {
    let app = spawn_app(memory_config()).await;
    let json = "application/json";
    app.post_raw("/v1/otp", json, "{\"phone\":")
        .await
        .assert_problem(400, "invalid_request");
    app.post_raw("/v1/otp", json, "not json")
        .await
        .assert_problem(400, "invalid_request");
    app.post_raw("/v1/otp", json, "")
        .await
        .assert_problem(400, "invalid_request");
    app.post_json("/v1/otp", json!({}))
        .await
        .assert_problem(400, "invalid_request");
    app.post_json("/v1/otp", json!({"phone": ["+14155552671"]}))
        .await
        .assert_problem(400, "invalid_request");
    app.post_json("/v1/otp", json!({"phone": null}))
        .await
        .assert_problem(400, "invalid_request");
    app.post_json("/v1/otp/verify", json!({"phone": PHONE}))
        .await
        .assert_problem(400, "invalid_request");
    app.post_json("/v1/otp/verify", json!({"phone": PHONE, "code": 123456}))
        .await
        .assert_problem(400, "invalid_request");
    app.post_raw("/v1/otp", "text/plain", "+14155552671")
        .await
        .assert_problem(415, "unsupported_media_type");
    app.get("/v1/nothing-here")
        .await
        .assert_problem(404, "route_not_found");
    let reply = app.client.delete(app.url("/v1/otp")).send().await.unwrap();
    assert_eq!(reply.status(), 405);
    assert!(app.outbox.lines().is_empty());
}

#[tokio::test]
async fn bodies_over_16_kib_are_413() {
    let app = spawn_app(memory_config()).await;
    let padding = " ".repeat(16 * 1024);
    let body = format!("{{\"phone\": \"{PHONE}\"{padding}}}");
    app.post_raw("/v1/otp", "application/json", body.clone())
        .await
        .assert_problem(413, "payload_too_large");

    // Without a Content-Length (chunked), the limit holds all the same.
    let chunks = futures_chunks(body);
    let reply = app
        .client
        .post(app.url("/v1/otp"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);

    // Just under the limit is fine.
    let body = format!("{{\"phone\": \"{PHONE}\"{}}}", " ".repeat(16 * 1024 - 40));
    assert_eq!(
        app.post_raw("/v1/otp", "application/json", body).await.status,
        202
    );
}

fn futures_chunks(body: String) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.into_bytes().chunks(1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn swagger_ui_and_the_spec_are_served() {
    let app = spawn_app(memory_config()).await;
    let docs = app.get("/docs").await;
    assert_eq!(docs.status, 200);
    assert!(docs.body.as_str().unwrap().contains("swagger"));
    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    assert!(spec.body["paths"]["/v1/otp"]["post"].is_object());
    let yaml = app.get("/openapi.yaml").await;
    assert_eq!(yaml.status, 200);
    assert_eq!(
        yaml.body.as_str().unwrap(),
        otpd::adapters::http::spec().spec_yaml()
    );
}
