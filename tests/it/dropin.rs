//! The original service's routes, as its old clients call them.

use serde_json::json;

use crate::helpers::{memory_config, redis_config, spawn_app, wrong, TestApp};

const DIGITS: &str = "14155552671";
const PHONE: &str = "+14155552671";

async fn original_flow(app: TestApp) {
    let generated = app.post_form("/generate_otp", &[("phone_number", DIGITS)]).await;
    assert_eq!(generated.status, 200, "{}", generated.body);
    assert_eq!(generated.body["status"], "success");
    assert!(!generated.body["message_uuid"].as_str().unwrap().is_empty());
    let code = app.outbox.last_code(PHONE);

    let valid = app.post_form("/validate_otp", &[("phone_number", DIGITS)]).await;
    assert_eq!(
        (valid.status, valid.body.clone()),
        (200, json!({"status": "success", "message": "OTP valid."}))
    );

    let failed = app
        .post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", &wrong(&code))])
        .await;
    assert_eq!(
        (failed.status, failed.body.clone()),
        (
            401,
            json!({"status": "error", "message": "OTP verification failed."})
        )
    );

    let verified = app
        .post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", &code)])
        .await;
    assert_eq!(
        (verified.status, verified.body.clone()),
        (200, json!({"status": "success", "message": "OTP verified."}))
    );

    let not_found = json!({"status": "error", "message": "OTP not found."});
    let again = app
        .post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", &code)])
        .await;
    assert_eq!((again.status, again.body.clone()), (404, not_found.clone()));
    let gone = app.post_form("/validate_otp", &[("phone_number", DIGITS)]).await;
    assert_eq!((gone.status, gone.body.clone()), (404, not_found));
}

#[tokio::test]
async fn the_original_flow_on_memory() {
    original_flow(spawn_app(memory_config()).await).await;
}

#[tokio::test]
async fn the_original_flow_on_redis() {
    original_flow(spawn_app(redis_config()).await).await;
}

/// The original routes keep their verifications apart from `/v1`'s: their
/// sends replace, and must not replace what an app checks by id.
#[tokio::test]
async fn the_original_routes_and_v1_keep_their_verifications_apart() {
    let app = spawn_app(memory_config()).await;
    app.post_form("/generate_otp", &[("phone_number", PHONE)]).await;
    let code = app.outbox.last_code(PHONE);
    app.verify(PHONE, &code).await.assert_problem(404, "not_found");
    let verified = app
        .post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", &code)])
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
}

#[tokio::test]
async fn bad_input_is_a_problem() {
    let app = spawn_app(memory_config()).await;
    // A missing field is answered as the original did.
    for (path, form, field) in [
        ("/generate_otp", &[][..], "phone_number"),
        ("/verify_otp", &[("phone_number", DIGITS)][..], "otp"),
        ("/validate_otp", &[("phone", DIGITS)][..], "phone_number"),
    ] {
        let missing = app.post_form(path, form).await;
        assert_eq!(missing.status, 400);
        assert_eq!(
            missing.body,
            serde_json::json!({"status": "error", "message": format!("{field} is required.")})
        );
    }
    app.post_form("/generate_otp", &[("phone_number", "12")])
        .await
        .assert_problem(400, "invalid_phone");
    app.post_form("/generate_otp", &[("phone_number", "call me")])
        .await
        .assert_problem(400, "invalid_phone");
    app.post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", "12ab56")])
        .await
        .assert_problem(400, "invalid_code_format");
    assert!(app.outbox.lines().is_empty());
}

#[tokio::test]
async fn the_attempt_lock_holds_on_the_original_routes() {
    let app = spawn_app(memory_config()).await;
    app.post_form("/generate_otp", &[("phone_number", DIGITS)]).await;
    let code = app.outbox.last_code(PHONE);
    for _ in 0..5 {
        let reply = app
            .post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", &wrong(&code))])
            .await;
        assert_eq!(reply.status, 401);
    }
    app.post_form("/verify_otp", &[("phone_number", DIGITS), ("otp", &code)])
        .await
        .assert_problem(429, "max_attempts_reached");
}

/// A form post needs no CORS preflight, so a page of any site could have
/// its visitors' browsers post one to an open instance: a browser's word
/// that another site sent it is refused; a server's post (neither header)
/// and the instance's own pages are not.
#[tokio::test]
async fn a_form_from_another_sites_page_is_refused() {
    let app = spawn_app(memory_config()).await;
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = app
            .client
            .post(app.url("/generate_otp"))
            .form(&[("phone_number", DIGITS)]);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { crate::helpers::reply(request.send().await.unwrap()).await }
    };
    let host = app.base.trim_start_matches("http://").to_owned();
    for refused in [
        vec![("origin", "https://evil.example".to_owned())],
        vec![("origin", "null".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
    ] {
        post(refused).await.assert_problem(400, "invalid_request");
    }
    assert!(app.outbox.lines().is_empty(), "nothing sent");
    assert_eq!(post(vec![]).await.status, 200, "a server's post");
    let own = vec![
        ("origin", format!("http://{host}")),
        ("sec-fetch-site", "same-origin".to_owned()),
    ];
    assert_eq!(post(own).await.status, 200, "the instance's own page");
}
