//! Starting the real application and talking to it, as a client would.

use std::io::Write;
use std::sync::{Arc, Mutex};

use otpd::adapters::sms::ConsoleOut;
use otpd::config::{Config, LimitsConfig, Secret, StoreUrl};
use otpd::startup::Application;
use serde_json::Value;
use tokio::sync::oneshot;

pub const HASH_KEY: &str = "test-hash-key-0123456789abcdef";

pub fn redis_url() -> String {
    std::env::var("OTPD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("otpd-test:{}:", uuid::Uuid::new_v4().simple())
}

/// Every abuse limit off, for tests about something else.
pub fn no_limits() -> LimitsConfig {
    LimitsConfig {
        resend_after_secs: 0,
        sends_per_phone: 0,
        sends_window_secs: 600,
        sends_per_ip: 0,
        verifies_per_ip: 0,
        lookups_per_ip: 0,
        sends_per_hour: 0,
        max_consecutive_guesses: 0,
        wrong_codes_per_phone: 0,
        ..LimitsConfig::default()
    }
}

/// Memory store, console SMS, a fixed hash key, a free port, no limits.
/// Open without API keys even where a real start would want them (the
/// tests' vendors are wiremock servers, their proxies this machine):
/// `hardening.rs` tries those rules with `auth.allow_anonymous` off.
pub fn memory_config() -> Config {
    let mut config = Config::default();
    config.auth.allow_anonymous = true;
    config.http.listen = "127.0.0.1:0".into();
    config.otp.hash_keys = vec![Secret::new(HASH_KEY)];
    config.limits = no_limits();
    config
}

/// As [`memory_config`], on the test Redis under a fresh prefix.
pub fn redis_config() -> Config {
    let mut config = memory_config();
    config.store.url = StoreUrl(redis_url());
    config.store.key_prefix = unique_prefix();
    config
}

/// As [`redis_config`], pointed at a port nothing listens on.
pub fn unreachable_redis_config(timeout_ms: u64) -> Config {
    let mut config = redis_config();
    config.store.url = StoreUrl(format!("redis://127.0.0.1:{}", crate::own_redis::free_port()));
    config.store.timeout_ms = timeout_ms;
    config
}

/// What the console SMS sender wrote, shared with the test.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<u8>>>);

impl Write for Outbox {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Outbox {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The code in the last message to `phone` (E.164).
    pub fn last_code(&self, phone: &str) -> String {
        let prefix = format!("SMS to {phone}: ");
        let line = self
            .lines()
            .into_iter()
            .rev()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no SMS to {phone}"));
        code_in(&line)
    }
}

/// The setting a start with `config` is refused for; panics if it starts.
pub async fn refused_at_start(config: &Config) -> otpd::config::ConfigError {
    let console = otpd::adapters::sms::ConsoleOut::Writer(Box::new(std::io::sink()));
    match otpd::startup::Application::build(config, console).await {
        Ok(_) => panic!("the start was not refused"),
        Err(e) => e,
    }
}

/// The first run of exactly six digits in `text`.
pub fn code_in(text: &str) -> String {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(5))
        .find(|&i| {
            bytes[i..i + 6].iter().all(u8::is_ascii_digit)
                && (i == 0 || !bytes[i - 1].is_ascii_digit())
                && bytes.get(i + 6).is_none_or(|b| !b.is_ascii_digit())
        })
        .map(|i| text[i..i + 6].to_owned())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub outbox: Outbox,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app(config: Config) -> TestApp {
    let outbox = Outbox::default();
    let app = Application::build(&config, ConsoleOut::Writer(Box::new(outbox.clone())))
        .await
        .expect("the app builds");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        outbox,
        _stop: stop,
    }
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// The `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn reply(response: reqwest::Response) -> Reply {
        reply(response).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.post_json_with(path, body, &[]).await
    }

    pub async fn post_json_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.post(self.url(path)).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::reply(request.send().await.unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
        Self::reply(
            self.client
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        Self::reply(self.client.post(self.url(path)).form(form).send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Self::reply(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn send(&self, phone: &str) -> Reply {
        self.post_json("/v1/otp", serde_json::json!({ "phone": phone }))
            .await
    }

    pub async fn verify(&self, phone: &str, code: &str) -> Reply {
        self.post_json(
            "/v1/otp/verify",
            serde_json::json!({ "phone": phone, "code": code }),
        )
        .await
    }
}

impl Reply {
    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.content_type, "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], format!("urn:otpd:problem:{code}"));
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(self.body["title"].as_str().is_some_and(|d| !d.is_empty()));
        if status == 429 {
            let seconds = self.retry_after.expect("a 429 carries Retry-After");
            assert!(seconds >= 1);
            assert_eq!(self.body["retry_after"], seconds, "the header and the body agree");
        }
    }
}

/// A code that is certainly not `code`.
pub fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// What came back, read once.
pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        content_type,
        retry_after,
        body,
    }
}
