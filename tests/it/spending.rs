//! Money caps end to end: each send costs its country's price, a hard cap
//! refuses every send until its window rolls (429 `spend_cap_reached`), a
//! soft cap lets only destinations with approved history through, a
//! refused or failed send costs nothing, the caps are told once as
//! `spend.cap_reached`, and `verification.code_sent` carries the cost, on
//! memory and on Redis (the tallies on the cluster are in `traffic.rs`).

use std::collections::BTreeMap;

use otpd::config::Config;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::events::{received, wait_for, with_events};
use crate::helpers::{memory_config, redis_config, spawn_app, TestApp};

const US: &str = "+14155552671";

/// Sends to the US cost 1.00 and to Nigeria 0.60 here.
fn priced(mut config: Config) -> Config {
    config.spend.prices = BTreeMap::from([("US".into(), 1.0), ("NG".into(), 0.6)]);
    config
}

fn us(n: u32) -> String {
    format!("+1415555{n:04}")
}

/// Seconds left in the UTC day.
fn day_left() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    86_400 - now % 86_400
}

async fn endpoint() -> MockServer {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    endpoint
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

pub async fn a_hard_cap_refuses_every_send_until_the_day_ends(config: Config) {
    let hooks = endpoint().await;
    let mut config = with_events(priced(config), &hooks, &[1]);
    config.spend.day_hard = 3.0;
    config.limits.resend_after_secs = 60;
    let app = spawn_app(config).await;
    for n in 0..3 {
        assert_eq!(app.send(&us(n)).await.status, 202, "send {n}");
    }
    // A send another rule refuses costs nothing.
    app.send(&us(0)).await.assert_problem(429, "resend_too_soon");
    let refused = app.send(&us(3)).await;
    refused.assert_problem(429, "spend_cap_reached");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(!detail.contains("country"), "the whole service's cap: {detail}");
    let retry = refused.body["retry_after"].as_u64().unwrap();
    assert!(retry.abs_diff(day_left()) <= 2, "{retry} vs {}", day_left());
    // A cheaper country is refused too: the cap is reached.
    app.send("+2348031234567")
        .await
        .assert_problem(429, "spend_cap_reached");
    // No code is pending from a refused send.
    assert_eq!(app.get(&format!("/v1/otp/{}", us(3))).await.status, 404);

    let events = wait_for(&hooks, &["spend.cap_reached"]).await;
    let reached = of_type(&events, "spend.cap_reached");
    assert_eq!(reached.len(), 1, "told once: {events:?}");
    let spend = &reached[0]["data"]["spend"];
    assert_eq!(
        (
            &spend["level"],
            &spend["window"],
            &spend["limit"],
            &spend["spent"]
        ),
        (&"hard".into(), &"day".into(), &"3.00".into(), &"3.00".into())
    );
    assert_eq!(spend["country"], Value::Null);
    assert_eq!(spend["currency"], "USD");
    for sent in of_type(&events, "verification.code_sent") {
        assert_eq!(
            (&sent["data"]["cost"], &sent["data"]["currency"]),
            (&"1.00".into(), &"USD".into())
        );
    }
    // More refusals tell nothing new.
    app.send(&us(4)).await.assert_problem(429, "spend_cap_reached");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(of_type(&received(&hooks).await, "spend.cap_reached").len(), 1);
}

#[tokio::test]
async fn a_hard_cap_refuses_every_send_until_the_day_ends_on_memory() {
    a_hard_cap_refuses_every_send_until_the_day_ends(memory_config()).await;
}

#[tokio::test]
async fn a_hard_cap_refuses_every_send_until_the_day_ends_on_redis() {
    a_hard_cap_refuses_every_send_until_the_day_ends(redis_config()).await;
}

async fn approve(app: &TestApp, phone: &str) {
    assert_eq!(app.send(phone).await.status, 202);
    let code = app.outbox.last_code(phone);
    assert_eq!(app.verify(phone, &code).await.status, 200);
}

pub async fn past_a_soft_cap_only_destinations_with_approved_history_go(config: Config) {
    let hooks = endpoint().await;
    let mut config = with_events(priced(config), &hooks, &[1]);
    config.spend.day_soft = 2.0;
    config.spend.day_hard = 10.0;
    let app = spawn_app(config).await;
    // A user of +1415555 0xxx verifies; a new number elsewhere is sent one.
    approve(&app, &us(1)).await;
    assert_eq!(app.send("+12125550100").await.status, 202);
    // Past 2.00: a number of a prefix that never verified waits...
    let refused = app.send("+13105550100").await;
    refused.assert_problem(429, "spend_cap_reached");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("verified before"),
        "{}",
        refused.body
    );
    // ... a new number in the prefix that verified goes, while the prefix
    // converts (no more unverified codes than approved ones)...
    assert_eq!(app.send(&us(2)).await.status, 202);
    // ... and no further: one approval does not open a range.
    app.send(&us(3)).await.assert_problem(429, "spend_cap_reached");
    let events = wait_for(&hooks, &["spend.cap_reached"]).await;
    let reached = of_type(&events, "spend.cap_reached");
    assert_eq!(reached.len(), 1, "{events:?}");
    assert_eq!(reached[0]["data"]["spend"]["level"], "soft");
    assert_eq!(reached[0]["data"]["spend"]["limit"], "2.00");
}

#[tokio::test]
async fn past_a_soft_cap_only_destinations_with_approved_history_go_on_memory() {
    past_a_soft_cap_only_destinations_with_approved_history_go(memory_config()).await;
}

#[tokio::test]
async fn past_a_soft_cap_only_destinations_with_approved_history_go_on_redis() {
    past_a_soft_cap_only_destinations_with_approved_history_go(redis_config()).await;
}

#[tokio::test]
async fn a_country_cap_stops_that_country_alone() {
    let mut config = priced(redis_config());
    config.spend.country_day_hard = 1.0;
    let app = spawn_app(config).await;
    assert_eq!(app.send("+2348031234567").await.status, 202);
    let refused = app.send("+2348039876543").await;
    refused.assert_problem(429, "spend_cap_reached");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("this phone's country"),
        "the country's own cap: {detail}"
    );
    assert_eq!(app.send(US).await.status, 202);
    // 1.00 is the US's price: at the cap, not past it.
    app.send("+14155550000")
        .await
        .assert_problem(429, "spend_cap_reached");
}

#[tokio::test]
async fn a_send_the_vendor_fails_costs_nothing() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&vendor)
        .await;
    let mut config = priced(memory_config());
    config.sms.provider = otpd::config::SmsProvider::Twilio;
    config.sms.retries = 0;
    crate::sms_vendors::with_twilio(&mut config, &vendor);
    config.spend.day_hard = 2.0;
    let app = spawn_app(config).await;
    for n in 0..4 {
        app.send(&us(n)).await.assert_problem(502, "sms_delivery_failed");
    }
    // Four failed sends spent nothing: the vendor is back, two go.
    vendor.reset().await;
    Mock::given(method("POST"))
        .respond_with(crate::sms_vendors::twilio_created(
            "SM0123456789abcdef0123456789abcdef",
        ))
        .mount(&vendor)
        .await;
    assert_eq!(app.send(&us(10)).await.status, 202);
    assert_eq!(app.send(&us(11)).await.status, 202);
    app.send(&us(12)).await.assert_problem(429, "spend_cap_reached");
}

#[tokio::test]
async fn test_numbers_cost_nothing_and_are_never_capped() {
    let hooks = endpoint().await;
    let mut config = with_events(priced(memory_config()), &hooks, &[1]);
    config.spend.day_hard = 0.5;
    config
        .otp
        .test_numbers
        .insert(US.into(), otpd::config::Secret::new("123456"));
    let app = spawn_app(config).await;
    assert_eq!(app.send(US).await.status, 202);
    let events = wait_for(&hooks, &["verification.code_sent"]).await;
    assert_eq!(
        of_type(&events, "verification.code_sent")[0]["data"]["cost"],
        "0.00"
    );
    app.send(&us(1)).await.assert_problem(429, "spend_cap_reached");
}

#[tokio::test]
async fn caps_and_prices_out_of_range_are_refused_at_start() {
    type Change = fn(&mut Config);
    let cases: [(&str, Change); 11] = [
        ("spend.countries", |c| {
            c.spend.countries.insert("UK".into(), Default::default());
        }),
        ("spend.countries.NG.day_soft", |c| {
            let own = otpd::config::CountryCaps {
                day_soft: 9.0,
                day_hard: 5.0,
                ..Default::default()
            };
            c.spend.countries.insert("ng".into(), own);
        }),
        ("spend.currency", |c| c.spend.currency = "dollars".into()),
        ("spend.default_price", |c| c.spend.default_price = -1.0),
        ("spend.prices", |c| {
            c.spend.prices.insert("Nigeria".into(), 0.3);
        }),
        // Numbers are GB: a price for UK would never apply.
        ("spend.prices", |c| {
            c.spend.prices.insert("UK".into(), 0.3);
        }),
        ("spend.prices", |c| {
            c.spend.prices.insert("NG".into(), f64::NAN);
        }),
        ("spend.day_soft", |c| {
            c.spend.day_soft = 20.0;
            c.spend.day_hard = 10.0;
        }),
        ("spend.country_month_hard", |c| c.spend.country_month_hard = 1e12),
        // Below a millionth: it would be 0, off.
        ("spend.day_hard", |c| c.spend.day_hard = 0.000_000_4),
        // A soft limit lets through converting prefixes: the prefix rule
        // must count them.
        ("spend.month_soft", |c| {
            c.spend.month_soft = 5.0;
            c.fraud.prefix_mode = otpd::config::RuleMode::Off;
        }),
    ];
    for (key, change) in cases {
        let mut config = memory_config();
        change(&mut config);
        let err = crate::helpers::refused_at_start(&config).await;
        assert_eq!(err.key, key, "{err}");
    }
}

#[tokio::test]
async fn the_twilio_surface_answers_20429_past_a_cap() {
    let mut config = priced(crate::twilio_verify::with_twilio(memory_config()));
    config.spend.day_hard = 1.0;
    let app = spawn_app(config).await;
    let create = |to: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!(
                    "/v2/Services/{}/Verifications",
                    crate::twilio_verify::SERVICE
                )))
                .basic_auth(crate::twilio_verify::ACCOUNT, Some(crate::twilio_verify::TOKEN))
                .form(&[("To", to), ("Channel", "sms")])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(create(US).await.status(), 201);
    let refused = create("+14155550000").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 20429, "{body}");
}

#[tokio::test]
async fn a_flood_the_caps_refuse_neither_moves_the_totals_nor_spends_the_quotas() {
    let hooks = endpoint().await;
    let mut config = with_events(priced(redis_config()), &hooks, &[1]);
    config.spend.day_soft = 1.0;
    config.spend.day_hard = 3.0;
    config.spend.country_day_hard = 2.0;
    config.limits.sends_per_hour = 20;
    let app = spawn_app(config).await;
    // A user of +1415555 0xxx verifies: 1.00 spent, the soft limit reached.
    approve(&app, &us(1)).await;
    // Forty sends to unknown numbers, ten at a time, all refused at the
    // soft limit: none stays counted against the hourly budget of 20 (a
    // refused send holds its share only while it is being refused).
    for batch in 0..4 {
        let flood = (0..10).map(|n| {
            let app = &app;
            async move { app.send(&format!("+1310555{:04}", batch * 10 + n)).await }
        });
        for reply in futures_util::future::join_all(flood).await {
            reply.assert_problem(429, "spend_cap_reached");
        }
    }
    // The known prefix still goes, up to the US's cap of 2.00.
    approve(&app, &us(2)).await;
    app.send(&us(3)).await.assert_problem(429, "spend_cap_reached");
    let events = wait_for(&hooks, &["spend.cap_reached", "spend.cap_reached"]).await;
    let reached: Vec<_> = of_type(&events, "spend.cap_reached")
        .into_iter()
        .map(|e| {
            let spend = &e["data"]["spend"];
            (
                spend["level"].as_str().unwrap().to_owned(),
                spend["country"].clone(),
                spend["spent"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Told once each, with what was kept: never a refused send's cost.
    assert_eq!(reached.len(), 2, "{reached:?}");
    assert!(
        reached.contains(&("soft".into(), Value::Null, "1.00".into())),
        "{reached:?}"
    );
    assert!(
        reached.contains(&("hard".into(), "US".into(), "2.00".into())),
        "{reached:?}"
    );
}

#[tokio::test]
async fn a_country_s_own_cap_stands_in_place_of_every_country_s() {
    let mut config = priced(memory_config());
    config.spend.country_day_hard = 100.0;
    let own = otpd::config::CountryCaps {
        day_hard: 1.0,
        ..Default::default()
    };
    config.spend.countries.insert("NG".into(), own);
    let app = spawn_app(config).await;
    assert_eq!(app.send("+2348031234567").await.status, 202);
    app.send("+2348039876543")
        .await
        .assert_problem(429, "spend_cap_reached");
    for n in 0..3 {
        assert_eq!(app.send(&us(n)).await.status, 202, "send {n}");
    }
}

#[tokio::test]
async fn a_flood_the_caps_refuse_trips_no_block() {
    let hooks = endpoint().await;
    let mut config = with_events(priced(redis_config()), &hooks, &[1]);
    config.fraud.prefix_mode = otpd::config::RuleMode::Enforce;
    config.spend.day_hard = 0.5;
    let app = spawn_app(config).await;
    // Past the prefix's floor of 10, every one refused by the cap.
    for n in 0..15 {
        app.send(&format!("+1212555{n:04}"))
            .await
            .assert_problem(429, "spend_cap_reached");
    }
    wait_for(&hooks, &["spend.cap_reached"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = received(&hooks).await;
    assert!(of_type(&events, "fraud.blocked").is_empty(), "{events:?}");
}

/// Each channel at its own price: two calls fill a cap that thirty SMS
/// would not, and each `code_sent` says what its channel cost.
#[tokio::test]
async fn the_caps_price_each_channel() {
    let hooks = endpoint().await;
    let mut config = with_events(memory_config(), &hooks, &[1]);
    config.spend.prices = BTreeMap::from([("US".into(), 0.01)]);
    config.spend.voice_prices = BTreeMap::from([("default".into(), 0.4), ("US".into(), 0.45)]);
    config.spend.whatsapp_prices = BTreeMap::from([("default".into(), 0.02)]);
    config.spend.day_hard = 1.0;
    let app = spawn_app(config).await;
    let call = |n: u32| app.post_json("/v1/otp", json!({"phone": us(n), "channel": "voice"}));
    assert_eq!(call(0).await.status, 202);
    assert_eq!(call(1).await.status, 202);
    call(2).await.assert_problem(429, "spend_cap_reached");
    // 0.90 spent: an SMS (0.01) and a WhatsApp message (0.02) still fit.
    assert_eq!(app.send(&us(3)).await.status, 202);
    let whatsapp = app
        .post_json("/v1/otp", json!({"phone": us(4), "channel": "whatsapp"}))
        .await;
    assert_eq!(whatsapp.status, 202, "{}", whatsapp.body);
    let events = wait_for(&hooks, &["verification.code_sent"; 4]).await;
    let mut costs: Vec<(String, String)> = of_type(&events, "verification.code_sent")
        .iter()
        .map(|e| {
            let data = &e["data"];
            (
                data["channel"].as_str().unwrap().to_owned(),
                data["cost"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    costs.sort();
    assert_eq!(
        costs,
        [
            ("sms", "0.01"),
            ("voice", "0.45"),
            ("voice", "0.45"),
            ("whatsapp", "0.02")
        ]
        .map(|(c, p)| (c.to_owned(), p.to_owned()))
    );
}

#[tokio::test]
async fn a_channel_price_table_is_checked_at_start() {
    for (table, change) in [
        (
            "spend.voice_prices",
            (|c: &mut Config| c.spend.voice_prices = BTreeMap::from([("UK".into(), 0.1)])) as fn(&mut Config),
        ),
        ("spend.whatsapp_prices", |c| {
            c.spend.whatsapp_prices = BTreeMap::from([("default".into(), -1.0)])
        }),
    ] {
        let mut config = memory_config();
        change(&mut config);
        assert_eq!(crate::helpers::refused_at_start(&config).await.key, table);
    }
}
