//! `/v1` verifications end to end, on the memory store and on Redis: a send
//! starts one, a resend keeps it, and it can be read, verified by id or
//! phone, and cancelled.

use otpd::config::Config;
use serde_json::json;

use crate::helpers::{memory_config, redis_config, spawn_app, wrong, TestApp};

const PHONE: &str = "+14155552671";

async fn verify_by_id(app: &TestApp, id: &str, code: &str) -> crate::helpers::Reply {
    app.post_json("/v1/otp/verify", json!({"verification_id": id, "code": code}))
        .await
}

/// A resend: the send names the verification its code joins.
async fn resend(app: &TestApp, id: &str) -> crate::helpers::Reply {
    app.post_json("/v1/otp", json!({"phone": PHONE, "verification_id": id}))
        .await
}

async fn a_resend_keeps_the_verification(config: Config) {
    let app = spawn_app(config).await;
    let first = app.send(PHONE).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let id = first.body["verification_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("VE") && id.len() == 34, "{id}");
    assert_eq!(
        (
            first.body["sends"].clone(),
            first.body["attempts_remaining"].clone()
        ),
        (json!(1), json!(5))
    );
    let first_code = app.outbox.last_code(PHONE);

    let missed = verify_by_id(&app, &id, &wrong(&first_code)).await;
    missed.assert_problem(422, "code_mismatch");
    assert_eq!(missed.body["attempts_remaining"], 4);

    let second = resend(&app, &id).await;
    assert_eq!(second.body["verification_id"], id.as_str(), "a resend keeps it");
    assert_eq!(second.body["sends"], 2);
    assert_eq!(second.body["attempts_remaining"], 4, "and restores no guess");
    let second_code = app.outbox.last_code(PHONE);

    let fetched = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(fetched.body["id"], id.as_str());
    assert_eq!(fetched.body["status"], "pending");
    assert_eq!(fetched.body["phone"], PHONE);
    assert_eq!(fetched.body["sends"], 2);
    assert_eq!(fetched.body["attempts_remaining"], 4);
    assert_eq!(fetched.body["expires_in"], 180);
    assert_eq!(fetched.body["delivery"]["provider"], "console");
    assert_eq!(fetched.body["delivery"]["message_id"], second.body["message_id"]);

    // The first SMS's code still works (unless the two are the same).
    let code = if first_code == second_code {
        &second_code
    } else {
        &first_code
    };
    let approved = app.verify(PHONE, code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["verification_id"], id.as_str());
    verify_by_id(&app, &id, &second_code)
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/verifications/{id}"))
        .await
        .assert_problem(404, "not_found");
    app.client
        .delete(app.url(&format!("/v1/verifications/{id}")))
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 404))
        .unwrap();

    // A new send after the approval is a new verification.
    let next = app.send(PHONE).await;
    assert_ne!(next.body["verification_id"], id.as_str());
}

async fn cancel_and_the_attempt_cap(config: Config) {
    let app = spawn_app(config).await;
    let sent = app.send(PHONE).await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let code = app.outbox.last_code(PHONE);
    let cancelled = crate::helpers::reply(
        app.client
            .delete(app.url(&format!("/v1/verifications/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "canceled");
    verify_by_id(&app, &id, &code)
        .await
        .assert_problem(404, "not_found");
    app.verify(PHONE, &code).await.assert_problem(404, "not_found");

    // Five wrong codes lock it: 429 to a guess, 404 to a read, and a send
    // starts a new one.
    let sent = app.send(PHONE).await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let code = app.outbox.last_code(PHONE);
    for left in (0..5).rev() {
        let missed = verify_by_id(&app, &id, &wrong(&code)).await;
        assert_eq!(missed.body["attempts_remaining"], left, "{}", missed.body);
    }
    verify_by_id(&app, &id, &code)
        .await
        .assert_problem(429, "max_attempts_reached");
    app.get(&format!("/v1/verifications/{id}"))
        .await
        .assert_problem(404, "not_found");
    let fresh = app.send(PHONE).await;
    assert_ne!(fresh.body["verification_id"], id.as_str());
    assert_eq!(fresh.body["attempts_remaining"], 5);
}

#[tokio::test]
async fn a_resend_keeps_the_verification_on_memory() {
    a_resend_keeps_the_verification(memory_config()).await;
}

#[tokio::test]
async fn a_resend_keeps_the_verification_on_redis() {
    a_resend_keeps_the_verification(redis_config()).await;
}

#[tokio::test]
async fn cancel_and_the_attempt_cap_on_memory() {
    cancel_and_the_attempt_cap(memory_config()).await;
}

#[tokio::test]
async fn cancel_and_the_attempt_cap_on_redis() {
    cancel_and_the_attempt_cap(redis_config()).await;
}

#[tokio::test]
async fn two_instances_share_verifications() {
    let config = redis_config();
    let (a, b) = (spawn_app(config.clone()).await, spawn_app(config).await);
    let sent = a.send(PHONE).await;
    let id = sent.body["verification_id"].as_str().unwrap().to_owned();
    let code = a.outbox.last_code(PHONE);
    let resent = resend(&b, &id).await;
    assert_eq!(resent.body["verification_id"], id.as_str());
    assert_eq!(b.get(&format!("/v1/verifications/{id}")).await.body["sends"], 2);
    assert_eq!(verify_by_id(&b, &id, &code).await.status, 200);
    a.get(&format!("/v1/verifications/{id}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn the_send_quota_holds_across_resends() {
    let mut config = memory_config();
    config.limits.sends_per_phone = 2;
    let app = spawn_app(config).await;
    let id = app.send(PHONE).await.body["verification_id"].clone();
    assert_eq!(
        resend(&app, id.as_str().unwrap()).await.body["verification_id"],
        id
    );
    app.send(PHONE).await.assert_problem(429, "send_quota_exceeded");
}

#[tokio::test]
async fn bad_ids_and_missing_parameters_are_refused_without_the_store() {
    let app = spawn_app(memory_config()).await;
    for path in [
        "/v1/verifications/VE123",
        "/v1/verifications/nope",
        "/v1/verifications/VE0123456789abcdef0123456789abcdeg",
    ] {
        app.get(path).await.assert_problem(404, "not_found");
    }
    let unknown = format!("/v1/verifications/VE{}", "0".repeat(32));
    app.get(&unknown).await.assert_problem(404, "not_found");
    app.post_json("/v1/otp/verify", json!({"code": "123456"}))
        .await
        .assert_problem(400, "invalid_request");
    app.post_json(
        "/v1/otp/verify",
        json!({"code": "123456", "phone": PHONE, "verification_id": format!("VE{}", "0".repeat(32))}),
    )
    .await
    .assert_problem(400, "invalid_request");
    verify_by_id(&app, "VE12", "123456")
        .await
        .assert_problem(400, "invalid_request");
}

async fn send_with_key(app: &TestApp, phone: &str, key: &str) -> crate::helpers::Reply {
    app.post_json_with("/v1/otp", json!({ "phone": phone }), &[("idempotency-key", key)])
        .await
}

async fn an_idempotent_retry_sends_once(config: Config) {
    let app = spawn_app(config).await;
    let first = send_with_key(&app, PHONE, "order-42").await;
    assert_eq!(first.status, 202, "{}", first.body);
    let retry = send_with_key(&app, PHONE, "order-42").await;
    assert_eq!(
        (retry.status, &retry.body),
        (202, &first.body),
        "the first answer, again"
    );
    assert_eq!(app.outbox.lines().len(), 1, "and no second SMS");

    send_with_key(&app, "+14155552672", "order-42")
        .await
        .assert_problem(422, "idempotency_key_reused");
    send_with_key(&app, PHONE, &"k".repeat(256))
        .await
        .assert_problem(400, "invalid_request");
    // A key that isn't ASCII is refused, not taken for no key at all.
    let non_ascii = reqwest::header::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
    let refused = app
        .client
        .post(app.url("/v1/otp"))
        .header("idempotency-key", non_ascii)
        .json(&json!({ "phone": PHONE }))
        .send()
        .await
        .unwrap();
    crate::helpers::reply(refused)
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(app.outbox.lines().len(), 1, "nothing sent");
    // Another key is another send: a verification of its own.
    let other = send_with_key(&app, PHONE, "order-43").await;
    assert_ne!(other.body["verification_id"], first.body["verification_id"]);
    assert_eq!(other.body["sends"], 1);
    assert_eq!(app.outbox.lines().len(), 2);

    // Twenty at once: one SMS; the rest are told to wait or get its answer.
    let racers = (0..20).map(|_| send_with_key(&app, "+14155552673", "race"));
    let replies = futures_util::future::join_all(racers).await;
    let sent: Vec<_> = replies.iter().filter(|r| r.status == 202).collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|r| r.body == sent[0].body));
    for r in replies.iter().filter(|r| r.status != 202) {
        r.assert_problem(409, "idempotency_key_in_use");
    }
    let texted = app
        .outbox
        .lines()
        .iter()
        .filter(|l| l.contains("+14155552673"))
        .count();
    assert_eq!(texted, 1);
}

#[tokio::test]
async fn an_idempotent_retry_sends_once_on_memory() {
    an_idempotent_retry_sends_once(memory_config()).await;
}

#[tokio::test]
async fn an_idempotent_retry_sends_once_on_redis() {
    an_idempotent_retry_sends_once(redis_config()).await;
}

#[tokio::test]
async fn idempotency_keys_are_each_callers_own() {
    let mut config = memory_config();
    config.auth.api_keys = vec![
        otpd::config::Secret::new("first-key-0123456789"),
        otpd::config::Secret::new("second-key-0123456789"),
    ];
    let app = spawn_app(config).await;
    let app = &app;
    let send = |key: &'static str| async move {
        app.post_json_with(
            "/v1/otp",
            json!({ "phone": PHONE }),
            &[("idempotency-key", "same"), ("x-api-key", key)],
        )
        .await
    };
    let first = send("first-key-0123456789").await;
    assert_eq!(first.status, 202);
    let second = send("second-key-0123456789").await;
    assert_eq!(second.status, 202);
    assert_ne!(
        second.body["verification_id"], first.body["verification_id"],
        "not the first caller's answer"
    );
    assert_eq!(send("first-key-0123456789").await.body, first.body);
    assert_eq!(app.outbox.lines().len(), 2);
}
