//! Languages: an explicit locale, the destination country's language, the
//! default template; every built-in template within one segment; operator
//! templates per locale, and the start-up check that names the locale.

use std::time::Duration;

use otpd::adapters::sms::ConsoleOut;
use otpd::config::Config;
use otpd::domain::{Autofill, Code, MessageTemplate, BUILT_IN_TEMPLATES};
use otpd::startup::Application;
use serde_json::json;

use crate::helpers::{memory_config, spawn_app, TestApp};

const US: &str = "+14155552671";
const FRANCE: &str = "+33612345678";
const JAPAN: &str = "+819012345678";
const INDIA: &str = "+919876543210";

async fn sent_text(app: &TestApp, phone: &str, locale: Option<&str>) -> String {
    let mut body = json!({"phone": phone});
    if let Some(locale) = locale {
        body["locale"] = json!(locale);
    }
    let reply = app.post_json("/v1/otp", body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let lines = app.outbox.lines();
    lines.last().cloned().unwrap()
}

#[tokio::test]
async fn an_explicit_locale_then_the_country_then_the_default() {
    let app = spawn_app(memory_config()).await;
    let text = sent_text(&app, US, Some("fr")).await;
    assert!(text.contains("otpd : votre code est"), "{text}");
    let text = sent_text(&app, US, Some("pt-BR")).await;
    assert!(text.contains("otpd: seu código é"), "pt-BR falls to pt: {text}");
    let text = sent_text(&app, JAPAN, None).await;
    assert!(
        text.contains("otpdの認証コードは"),
        "Japan reads Japanese: {text}"
    );
    let text = sent_text(&app, FRANCE, Some("en")).await;
    assert!(
        text.contains("Your otpd verification code is"),
        "asked for English: {text}"
    );
    let text = sent_text(&app, US, None).await;
    assert!(text.contains("Your otpd verification code is"), "{text}");
    let text = sent_text(&app, INDIA, None).await;
    assert!(
        text.contains("Your otpd verification code is"),
        "India is left to the default: {text}"
    );
    // Each on a phone of its own: a phone holds at most 8 verifications.
    for (i, (locale, says)) in [
        ("zh", "您的otpd验证码是"),
        ("zh-SG", "您的otpd验证码是"),
        ("zh-TW", "您的otpd驗證碼是"),
        ("zh-Hant-HK", "您的otpd驗證碼是"),
        ("nb-NO", "otpd: koden din er"),
        ("cs", "otpd: váš kód je"),
    ]
    .into_iter()
    .enumerate()
    {
        let text = sent_text(&app, &format!("+1415555270{i}"), Some(locale)).await;
        assert!(text.contains(says), "{locale}: {text}");
    }
    let text = sent_text(&app, "+14155552709", Some("en-GB")).await;
    assert!(text.contains("Your otpd verification code is"), "{text}");
    let text = sent_text(&app, FRANCE, Some("xx")).await;
    assert!(
        text.contains("Your otpd verification code is"),
        "no template for xx: {text}"
    );
}

#[tokio::test]
async fn a_bad_locale_is_400() {
    let app = spawn_app(memory_config()).await;
    for locale in ["english", "fr-", "fr_FR_FR", "zh-Hans-CN-x", "<b>"] {
        let reply = app
            .post_json("/v1/otp", json!({"phone": US, "locale": locale}))
            .await;
        assert_eq!(reply.status, 400, "{locale}: {}", reply.body);
    }
}

#[tokio::test]
async fn operator_templates_and_country_locales_override_the_built_in_ones() {
    let mut config = memory_config();
    config.sms.templates = [
        ("fr".to_owned(), "Code {app} : {code}".to_owned()),
        ("ja".to_owned(), String::new()),
    ]
    .into();
    config.sms.country_locales = [("IN".to_owned(), "hi".to_owned())].into();
    let app = spawn_app(config).await;
    let text = sent_text(&app, FRANCE, None).await;
    assert!(
        text.ends_with(&format!("Code otpd : {}", crate::helpers::code_in(&text))),
        "{text}"
    );
    let text = sent_text(&app, JAPAN, None).await;
    assert!(
        text.contains("Your otpd verification code is"),
        "ja turned off: {text}"
    );
    let text = sent_text(&app, INDIA, None).await;
    assert!(text.contains("आपका कोड"), "India mapped to Hindi: {text}");
}

async fn refusal(config: Config) -> (String, String) {
    let err = Application::build(&config, ConsoleOut::Writer(Box::new(std::io::sink())))
        .await
        .err()
        .unwrap();
    (err.key, err.reason)
}

#[tokio::test]
async fn an_operator_template_that_does_not_fit_stops_the_start_naming_the_locale() {
    let mut config = memory_config();
    config.sms.templates = [("de".to_owned(), format!("{} {{code}}", "x".repeat(160)))].into();
    let (key, reason) = refusal(config).await;
    assert_eq!(key, "sms.templates.de");
    assert!(reason.contains("over one SMS segment"), "{reason}");

    // A built-in one that doesn't fit with the operator's app name and
    // autofill lines is left out (with a warning): the default goes instead.
    let mut config = memory_config();
    config.sms.app_name = "A very long application name".into();
    config.sms.android_app_hash = Some("FA+9qCX9VSu".into());
    let app = spawn_app(config).await;
    let text = sent_text(&app, "+905321234567", None).await;
    assert!(
        text.contains("Your A very long application name verification code"),
        "{text}"
    );

    let mut config = memory_config();
    config.sms.templates = [("french".to_owned(), "{code}".to_owned())].into();
    assert_eq!(refusal(config).await.0, "sms.templates.french");
    let mut config = memory_config();
    config.sms.country_locales = [("FR".to_owned(), "fr-".to_owned())].into();
    assert_eq!(refusal(config).await.0, "sms.country_locales.FR");
}

#[test]
fn every_built_in_template_fits_one_segment_with_a_long_app_name() {
    assert!(BUILT_IN_TEMPLATES.len() + 1 >= 20, "English and at least 19 more");
    let app = "Acme Bank Online"; // 16 characters
                                  // Every minute count a code may live (1 to 1440), each in its form.
    for minutes in 1..=24 * 60 {
        let ttl = Duration::from_secs(minutes * 60);
        for (locale, forms) in BUILT_IN_TEMPLATES {
            let template = MessageTemplate::parse(forms.text(minutes), app, Autofill::default()).unwrap();
            assert_eq!(
                template.check_single_segment(ttl),
                Ok(()),
                "{locale}, {minutes} min"
            );
            let rendered = template.render(&Code::parse("123456").unwrap(), ttl);
            assert!(
                rendered.as_str().contains("123456") && rendered.as_str().contains(app),
                "{locale}"
            );
            // One and two minutes are written out in Arabic.
            if !(*locale == "ar" && minutes <= 2) {
                assert!(
                    rendered.as_str().contains(&minutes.to_string()),
                    "{locale}, {minutes} min"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_built_in_template_takes_the_form_of_its_minute_count() {
    let sent = |ttl_secs: u64, locale: &'static str| async move {
        let mut config = memory_config();
        config.otp.ttl_secs = ttl_secs;
        let app = spawn_app(config).await;
        sent_text(&app, US, Some(locale)).await
    };
    assert!(sent(60, "de").await.ends_with("Er ist 1 Minute gültig."));
    assert!(sent(120, "de").await.ends_with("Er ist 2 Minuten gültig."));
    assert!(sent(60, "ar").await.ends_with("صالح لمدة دقيقة واحدة."));
    assert!(sent(120, "ar").await.ends_with("صالح لمدة دقيقتين."));
    assert!(sent(180, "ar").await.ends_with("صالح لمدة 3 دقائق."));
    assert!(sent(15 * 60, "ar").await.ends_with("صالح لمدة 15 دقيقة."));
}
