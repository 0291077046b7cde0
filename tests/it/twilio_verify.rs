//! The Twilio Verify v2 surface end to end, as the Twilio SDKs speak it:
//! form bodies, HTTP Basic, Twilio's objects and error bodies.

use otpd::config::{Config, Secret};
use serde_json::Value;

use crate::helpers::{memory_config, redis_config, reply, spawn_app, wrong, Reply, TestApp};

pub const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const TOKEN: &str = "twilio-token-0123456789";
pub const SERVICE: &str = "VAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const PHONE: &str = "+14155552671";

/// `config` with the Twilio surface on: one account, two tokens, one service.
pub fn with_twilio(mut config: Config) -> Config {
    config.twilio_verify.account_sid = ACCOUNT.into();
    config.twilio_verify.auth_tokens = vec![Secret::new("old-token-0123456789"), Secret::new(TOKEN)];
    config
        .twilio_verify
        .services
        .insert(SERVICE.into(), "Acme".into());
    config.http.public_url = Some("https://otpd.example.com".into());
    config
}

async fn post(app: &TestApp, path: &str, form: &[(&str, &str)], password: &str) -> Reply {
    reply(
        app.client
            .post(app.url(path))
            .basic_auth(ACCOUNT, Some(password))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn create(app: &TestApp, to: &str) -> Reply {
    post(
        app,
        &format!("/v2/Services/{SERVICE}/Verifications"),
        &[
            ("To", to),
            ("Channel", "sms"),
            ("Locale", "en"),
            ("RateLimits", "{\"k\": \"v\"}"),
        ],
        TOKEN,
    )
    .await
}

async fn check(app: &TestApp, form: &[(&str, &str)]) -> Reply {
    post(
        app,
        &format!("/v2/Services/{SERVICE}/VerificationCheck"),
        form,
        TOKEN,
    )
    .await
}

async fn fetch(app: &TestApp, sid: &str) -> Reply {
    reply(
        app.client
            .get(app.url(&format!("/v2/Services/{SERVICE}/Verifications/{sid}")))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[track_caller]
fn assert_twilio_error(reply: &Reply, status: u16, code: u64) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert_eq!(reply.body["status"], status);
    assert_eq!(
        reply.body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(reply.body.get("type").is_none() && reply.body.get("title").is_none());
}

fn is_timestamp(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

async fn the_whole_flow(config: Config) {
    let app = spawn_app(with_twilio(config)).await;
    let created = create(&app, PHONE).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let v = &created.body;
    let sid = v["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("VE") && sid.len() == 34);
    assert_eq!(v["service_sid"], SERVICE);
    assert_eq!(v["account_sid"], ACCOUNT);
    assert_eq!(
        (v["to"].clone(), v["channel"].clone()),
        (PHONE.into(), "sms".into())
    );
    assert_eq!(
        (v["status"].clone(), v["valid"].clone()),
        ("pending".into(), false.into())
    );
    assert_eq!(v["lookup"], serde_json::json!({}));
    assert!(v["amount"].is_null() && v["payee"].is_null() && v["sna"].is_null());
    assert!(is_timestamp(&v["date_created"]) && is_timestamp(&v["date_updated"]));
    assert_eq!(v["send_code_attempts"].as_array().unwrap().len(), 1);
    assert!(is_timestamp(&v["send_code_attempts"][0]["time"]));
    assert_eq!(
        v["url"],
        format!("https://otpd.example.com/v2/Services/{SERVICE}/Verifications/{sid}")
    );
    let first = app.outbox.last_code(PHONE);
    assert!(
        app.outbox
            .lines()
            .last()
            .unwrap()
            .contains("Your Acme verification code"),
        "the service's friendly name is the SMS's app"
    );

    // A wrong code is an answer, not an error.
    let missed = check(&app, &[("To", PHONE), ("Code", &wrong(&first))]).await;
    assert_eq!(missed.status, 200, "{}", missed.body);
    assert_eq!(
        (missed.body["status"].clone(), missed.body["valid"].clone()),
        ("pending".into(), false.into())
    );
    assert_eq!(missed.body["sid"], sid.as_str());
    assert!(missed.body.get("url").is_none());

    // A resend keeps the verification and both codes.
    let resent = create(&app, PHONE).await;
    assert_eq!(resent.body["sid"], sid.as_str());
    let attempts = resent.body["send_code_attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_ne!(attempts[0]["attempt_sid"], attempts[1]["attempt_sid"]);
    let fetched = fetch(&app, &sid).await;
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(fetched.body["status"], "pending");
    assert_eq!(
        fetched.body["send_code_attempts"],
        resent.body["send_code_attempts"]
    );

    let approved = check(&app, &[("VerificationSid", &sid), ("Code", &first)]).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(
        (approved.body["status"].clone(), approved.body["valid"].clone()),
        ("approved".into(), true.into())
    );
    assert!(approved.body["sna_attempts_error_codes"].is_null());
    let again = check(&app, &[("VerificationSid", &sid), ("Code", &first)]).await;
    assert_twilio_error(&again, 404, 20404);
    assert_twilio_error(&fetch(&app, &sid).await, 404, 20404);

    // Cancel, then nothing answers for it.
    let sid = create(&app, PHONE).await.body["sid"].as_str().unwrap().to_owned();
    let path = format!("/v2/Services/{SERVICE}/Verifications/{sid}");
    let cancelled = post(&app, &path, &[("Status", "canceled")], TOKEN).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "canceled");
    assert_twilio_error(
        &post(&app, &path, &[("Status", "canceled")], TOKEN).await,
        404,
        20404,
    );
    let code = app.outbox.last_code(PHONE);
    assert_twilio_error(&check(&app, &[("To", PHONE), ("Code", &code)]).await, 404, 20404);

    // Approved by the app itself.
    let sid = create(&app, PHONE).await.body["sid"].as_str().unwrap().to_owned();
    let path = format!("/v2/Services/{SERVICE}/Verifications/{sid}");
    let approved = post(&app, &path, &[("Status", "approved")], TOKEN).await;
    assert_eq!(
        (approved.body["status"].clone(), approved.body["valid"].clone()),
        ("approved".into(), true.into())
    );
    assert_twilio_error(&fetch(&app, &sid).await, 404, 20404);

    // The attempt cap, by To and by sid each: five wrong, then 429 / 60202,
    // and 404 to a fetch. Guesses by To never use the sid's attempts, so
    // its holder still gets its five.
    let sid = create(&app, PHONE).await.body["sid"].as_str().unwrap().to_owned();
    let code = app.outbox.last_code(PHONE);
    for by in [("To", PHONE), ("VerificationSid", sid.as_str())] {
        for _ in 0..5 {
            let missed = check(&app, &[by, ("Code", &wrong(&code))]).await;
            assert_eq!(missed.status, 200);
            assert_eq!(missed.body["status"], "pending");
        }
        let capped = check(&app, &[by, ("Code", &code)]).await;
        assert_twilio_error(&capped, 429, 60202);
        assert!(capped.retry_after.is_some());
    }
    assert_twilio_error(&fetch(&app, &sid).await, 404, 20404);

    // To and VerificationSid must name the same verification.
    let sid = create(&app, "+14155552672").await.body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.outbox.last_code("+14155552672");
    let crossed = check(&app, &[("To", PHONE), ("VerificationSid", &sid), ("Code", &code)]).await;
    assert_twilio_error(&crossed, 404, 20404);
    let both = check(
        &app,
        &[("To", "+14155552672"), ("VerificationSid", &sid), ("Code", &code)],
    )
    .await;
    assert_eq!(both.body["status"], "approved");
}

#[tokio::test]
async fn the_whole_flow_on_memory() {
    the_whole_flow(memory_config()).await;
}

#[tokio::test]
async fn the_whole_flow_on_redis() {
    the_whole_flow(redis_config()).await;
}

#[tokio::test]
async fn the_send_quota_is_60203_and_other_limits_20429() {
    let mut config = with_twilio(memory_config());
    config.limits.sends_per_phone = 2;
    let app = spawn_app(config).await;
    assert_eq!(create(&app, PHONE).await.status, 201);
    assert_eq!(create(&app, PHONE).await.status, 201);
    let refused = create(&app, PHONE).await;
    assert_twilio_error(&refused, 429, 60203);
    assert!(refused.retry_after.is_some_and(|s| s >= 1));

    let mut config = with_twilio(memory_config());
    config.limits.resend_after_secs = 30;
    let app = spawn_app(config).await;
    assert_eq!(create(&app, PHONE).await.status, 201);
    assert_twilio_error(&create(&app, PHONE).await, 429, 20429);

    let mut config = with_twilio(memory_config());
    config.sms.allowed_countries = vec!["GB".into()];
    let app = spawn_app(config).await;
    assert_twilio_error(&create(&app, PHONE).await, 403, 60605);
}

#[tokio::test]
async fn bad_auth_missing_parameters_and_unknown_things() {
    let app = spawn_app(with_twilio(memory_config())).await;
    let path = format!("/v2/Services/{SERVICE}/Verifications");
    let form = [("To", PHONE), ("Channel", "sms")];
    assert_twilio_error(
        &post(&app, &path, &form, "wrong-token-0123456789").await,
        401,
        20003,
    );
    let anonymous = reply(app.client.post(app.url(&path)).form(&form).send().await.unwrap()).await;
    assert_twilio_error(&anonymous, 401, 20003);
    assert_eq!(
        post(&app, &path, &form, "old-token-0123456789").await.status,
        201,
        "rotation"
    );

    let invalid = post(&app, &path, &[("Channel", "sms")], TOKEN).await;
    assert_twilio_error(&invalid, 400, 60200);
    assert!(invalid.body["message"].as_str().unwrap().contains("To"));
    for channel in ["email", "sna", "auto", "Call", ""] {
        let refused = post(&app, &path, &[("To", PHONE), ("Channel", channel)], TOKEN).await;
        assert_twilio_error(&refused, 400, 60200);
        assert!(refused.body["message"].as_str().unwrap().contains("Channel"));
    }
    let custom = post(
        &app,
        &path,
        &[("To", PHONE), ("Channel", "sms"), ("CustomCode", "1234")],
        TOKEN,
    )
    .await;
    assert_twilio_error(&custom, 400, 60200);
    assert_twilio_error(
        &post(&app, &path, &[("To", "+1 nope"), ("Channel", "sms")], TOKEN).await,
        400,
        60200,
    );

    let neither = check(&app, &[("Code", "123456")]).await;
    assert_twilio_error(&neither, 400, 60221);
    let no_code = check(&app, &[("To", PHONE)]).await;
    assert_twilio_error(&no_code, 400, 60200);
    assert!(no_code.body["message"].as_str().unwrap().contains("Code"));
    assert_twilio_error(
        &check(&app, &[("VerificationSid", "VE12"), ("Code", "123456")]).await,
        404,
        20404,
    );
    assert_twilio_error(&fetch(&app, "VEnot-a-sid").await, 404, 20404);
    assert_twilio_error(&fetch(&app, &format!("VE{}", "0".repeat(32))).await, 404, 20404);
    let update = format!("{path}/VE{}", "0".repeat(32));
    assert_twilio_error(
        &post(&app, &update, &[("Status", "paused")], TOKEN).await,
        400,
        60200,
    );

    let other_service = format!("/v2/Services/VA{}/Verifications", "c".repeat(32));
    assert_twilio_error(&post(&app, &other_service, &form, TOKEN).await, 404, 20404);
    let json = reply(
        app.client
            .post(app.url(&path))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .json(&serde_json::json!({"To": PHONE}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(json.body["status"], json.status);
    assert!(json.body["code"].is_u64(), "{}", json.body);
    let java = reply(
        app.client
            .post(app.url(&path))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .header("content-type", "application/x-www-form-urlencoded; charset=UTF-8")
            .body("To=%2B14155552672&Channel=sms")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(java.status, 201, "{}", java.body);
    assert_eq!(java.body["to"], "+14155552672");
}

#[tokio::test]
async fn off_until_configured_and_the_api_key_does_not_apply() {
    let app = spawn_app(memory_config()).await;
    let off = post(
        &app,
        &format!("/v2/Services/{SERVICE}/Verifications"),
        &[("To", PHONE), ("Channel", "sms")],
        TOKEN,
    )
    .await;
    assert_twilio_error(&off, 404, 20404);

    let mut config = with_twilio(memory_config());
    config.auth.api_keys = vec![Secret::new("api-key-0123456789abcdef")];
    let app = spawn_app(config).await;
    assert_eq!(
        create(&app, PHONE).await.status,
        201,
        "Basic is the Twilio routes' sign-in"
    );
    app.send(PHONE).await.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_create_safe_to_retry() {
    let app = spawn_app(with_twilio(memory_config())).await;
    let path = format!("/v2/Services/{SERVICE}/Verifications");
    let create = |to: &'static str| {
        let request = app
            .client
            .post(app.url(&path))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .header("idempotency-key", "signup-7")
            .form(&[("To", to), ("Channel", "sms")]);
        async move { reply(request.send().await.unwrap()).await }
    };
    let first = create(PHONE).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = create(PHONE).await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    // The same number written another way is the same request.
    let spaced = create("+1 415 555 2671").await;
    assert_eq!((spaced.status, &spaced.body), (201, &first.body));
    assert_eq!(app.outbox.lines().len(), 1, "one SMS");
    assert_twilio_error(&create("+14155552672").await, 422, 60200);
}

/// `Locale` picks the SMS's language, as `locale` does on `/v1`; a bad one
/// is 60200 naming it.
#[tokio::test]
async fn locale_picks_the_language_of_the_sms() {
    let app = spawn_app(with_twilio(memory_config())).await;
    let path = format!("/v2/Services/{SERVICE}/Verifications");
    let created = post(
        &app,
        &path,
        &[("To", "+14155552671"), ("Channel", "sms"), ("Locale", "es")],
        TOKEN,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let line = app.outbox.lines().pop().unwrap();
    assert!(line.contains("Acme: tu código es"), "{line}");
    // Twilio's Chinese tags, resolved as BCP 47 likely subtags do.
    for (to, locale, says) in [
        ("+14155552673", "zh", "您的Acme验证码是"),
        ("+14155552674", "zh-CN", "您的Acme验证码是"),
        ("+14155552675", "zh-HK", "您的Acme驗證碼是"),
        ("+14155552676", "sv", "Acme: din kod är"),
    ] {
        let created = post(
            &app,
            &path,
            &[("To", to), ("Channel", "sms"), ("Locale", locale)],
            TOKEN,
        )
        .await;
        assert_eq!(created.status, 201, "{locale}: {}", created.body);
        let line = app.outbox.lines().pop().unwrap();
        assert!(line.contains(says), "{locale}: {line}");
    }
    let bad = post(
        &app,
        &path,
        &[
            ("To", "+14155552672"),
            ("Channel", "sms"),
            ("Locale", "not a locale!"),
        ],
        TOKEN,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], 60200);
    assert!(
        bad.body["message"].as_str().unwrap().contains("Locale"),
        "{}",
        bad.body
    );
}
