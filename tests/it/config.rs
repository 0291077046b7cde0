//! Layered settings: defaults, a TOML file, then `OTPD_*` variables.

use std::io::Write;

use otpd::adapters::sms::ConsoleOut;
use otpd::config::{Config, ConfigError};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_from(None, &env(pairs))
}

#[test]
fn defaults_need_no_redis() {
    let config = load(&[]).unwrap();
    assert_eq!(config.http.listen, "127.0.0.1:8080");
    assert_eq!(config.store.url.expose(), "memory://");
    assert_eq!(config.store.key_prefix, "otp:");
    assert_eq!(config.store.timeout_ms, 500);
    assert_eq!(config.otp.ttl_secs, 180);
    assert_eq!(config.otp.max_attempts, 5);
    assert!(config.otp.hash_keys.is_empty());
}

#[test]
fn the_environment_sets_nested_keys() {
    let config = load(&[
        ("OTPD_HTTP__LISTEN", "0.0.0.0:9000"),
        ("OTPD_STORE__URL", "redis://127.0.0.1:6379/2"),
        ("OTPD_OTP__TTL_SECS", "60"),
        ("OTPD_OTP__MAX_ATTEMPTS", "3"),
        ("OTPD_OTP__HASH_KEYS", "new-key-0123456789,old-key-0123456789"),
        ("OTPD_SMS__PROVIDER", "console"),
        ("OTPD_TEST_REDIS_URL", "redis://elsewhere"),
    ])
    .unwrap();
    assert_eq!(config.http.listen, "0.0.0.0:9000");
    assert_eq!(config.store.url.expose(), "redis://127.0.0.1:6379/2");
    assert_eq!(config.otp.ttl_secs, 60);
    assert_eq!(config.otp.max_attempts, 3);
    let keys: Vec<_> = config
        .otp
        .hash_keys
        .iter()
        .map(|k| k.expose().to_owned())
        .collect();
    assert_eq!(keys, ["new-key-0123456789", "old-key-0123456789"]);
}

#[test]
fn number_like_values_stay_strings() {
    let config = load(&[
        ("OTPD_STORE__KEY_PREFIX", "+14155552671"),
        ("OTPD_OTP__HASH_KEYS", "00012345678901234567"),
        ("OTPD_SMS__APP_NAME", "1e5"),
    ])
    .unwrap();
    assert_eq!(config.store.key_prefix, "+14155552671");
    assert_eq!(config.otp.hash_keys[0].expose(), "00012345678901234567");
    assert_eq!(config.sms.app_name, "1e5");
}

#[test]
fn a_bad_setting_names_its_key() {
    let cases = [
        ("OTPD_OTP__TTL_SECS", "soon", "otp.ttl_secs"),
        ("OTPD_OTP__MAX_ATTEMPTS", "-1", "otp.max_attempts"),
        ("OTPD_SMS__PROVIDER", "pigeon", "sms.provider"),
        ("OTPD_OTP__TYPO", "1", "otp"),
    ];
    for (name, value, key) in cases {
        let err = load(&[(name, value)]).unwrap_err();
        assert!(err.key.starts_with(key), "{name}={value}: {err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}

#[test]
fn a_toml_file_sits_between_defaults_and_the_environment() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[otp]\nttl_secs = 120\nmax_attempts = 4\nhash_keys = [\"file-key-0123456789\"]"
    )
    .unwrap();
    let config = Config::load_from(Some(file.path()), &env(&[("OTPD_OTP__MAX_ATTEMPTS", "2")])).unwrap();
    assert_eq!(config.otp.ttl_secs, 120);
    assert_eq!(config.otp.max_attempts, 2);
    assert_eq!(config.otp.hash_keys[0].expose(), "file-key-0123456789");

    let missing = Config::load_from(Some(std::path::Path::new("/no/such/otpd.toml")), &[]).unwrap_err();
    assert_eq!(missing.key, "--config");
}

#[test]
fn secrets_never_show_in_debug() {
    let config = load(&[
        ("OTPD_OTP__HASH_KEYS", "super-secret-hash-key"),
        ("OTPD_STORE__URL", "redis://:hunter2-password@127.0.0.1:6379"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("super-secret-hash-key"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert_eq!(config.store.url.redacted(), "redis://<redacted>@127.0.0.1:6379");
}

#[tokio::test]
async fn invalid_values_stop_the_start_naming_the_key() {
    use otpd::startup::Application;
    let build = |pairs: &[(&str, &str)]| {
        let mut config = load(pairs).unwrap();
        config.http.listen = "127.0.0.1:0".into();
        config
    };
    let cases: [(&[(&str, &str)], &str); 17] = [
        (&[("OTPD_OTP__TTL_SECS", "0")], "otp.ttl_secs"),
        (&[("OTPD_OTP__MAX_ATTEMPTS", "0")], "otp.max_attempts"),
        (&[("OTPD_OTP__HASH_KEYS", "short")], "otp.hash_keys[0]"),
        (&[("OTPD_STORE__URL", "mysql://localhost")], "store.url"),
        (&[("OTPD_SMS__TEMPLATE", "no code here")], "sms.template"),
        (&[("OTPD_LIMITS__IPV4_PREFIX", "0")], "limits.ipv4_prefix"),
        (&[("OTPD_LIMITS__IPV6_PREFIX", "129")], "limits.ipv6_prefix"),
        (
            &[("OTPD_SMS__ALLOWED_SPECIAL_PREFIXES", "882")],
            "sms.allowed_special_prefixes",
        ),
        (
            &[("OTPD_LIMITS__MAX_GUESS_DELAY_SECS", "1")],
            "limits.max_guess_delay_secs",
        ),
        (
            &[("OTPD_LIMITS__FORGET_GUESSES_AFTER_SECS", "0")],
            "limits.forget_guesses_after_secs",
        ),
        (
            &[("OTPD_LIMITS__SENDS_PER_PHONE", "1001")],
            "limits.sends_per_phone",
        ),
        // 0 would close every connection at once; u64::MAX put a deadline
        // past the clock's range and panicked the worker that set it.
        (&[("OTPD_HTTP__IDLE_TIMEOUT_SECS", "0")], "http.idle_timeout_secs"),
        (
            &[("OTPD_HTTP__IDLE_TIMEOUT_SECS", "18446744073709551615")],
            "http.idle_timeout_secs",
        ),
        (&[("OTPD_HTTP__HEADER_TIMEOUT_MS", "0")], "http.header_timeout_ms"),
        (
            &[("OTPD_HTTP__HEADER_TIMEOUT_MS", "18446744073709551615")],
            "http.header_timeout_ms",
        ),
        (&[("OTPD_HTTP__BODY_TIMEOUT_MS", "0")], "http.body_timeout_ms"),
        (
            &[("OTPD_HTTP__IDEMPOTENCY_WINDOW_SECS", "18446744073709551615")],
            "http.idempotency_window_secs",
        ),
    ];
    for (pairs, key) in cases {
        let err = Application::build(&build(pairs), ConsoleOut::Writer(Box::new(std::io::sink())))
            .await
            .err()
            .unwrap();
        assert_eq!(err.key, key, "{err}");
    }
}

/// Every setting's dotted path, from the defaults; an empty table counts as
/// one setting (a map the operator fills).
fn setting_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                setting_paths(child, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_setting_is_documented_and_nothing_else() {
    let mut settings = Vec::new();
    setting_paths(
        &serde_json::to_value(Config::default()).unwrap(),
        "",
        &mut settings,
    );
    settings.sort();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    let mut documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect();
    documented.sort();
    assert_eq!(
        documented, settings,
        "docs/configuration.md and the Config struct disagree"
    );
    for key in &settings {
        let env = format!("`OTPD_{}`", key.to_uppercase().replace('.', "__"));
        assert!(doc.contains(&env), "{key}: {env} is not documented");
    }
}

#[test]
fn the_documented_example_loads() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    let example = doc
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(example.as_bytes()).unwrap();
    let config = Config::load_from(Some(file.path()), &[]).unwrap();
    assert_eq!(config.sms.fallback, Some(otpd::config::SmsProvider::Plivo));
    assert_eq!(config.limits.sends_per_hour, 2000);
    assert_eq!(config.sms.routes.len(), 2);
    assert_eq!(config.sms.routes[0].senders["vonage"], "ACMEOT");
    // Its secrets are placeholders that can't start: copied as they stand,
    // public text would key the hashes.
    for key in &config.otp.hash_keys {
        assert!(otpd::domain::HashKey::new(key.expose()).is_err(), "{key:?}");
    }
}
