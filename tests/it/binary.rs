//! The built `otpd` binary, run as the README says: a code is sent, read from
//! the console, and verified; its logs, its signals and its commands.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{code_in, redis_url, unique_prefix};
use crate::own_redis::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_otpd");
const PHONE: &str = "+14155552671";

/// A running `otpd`, its standard output line by line and its standard
/// error kept whole; stopped (SIGKILL) on drop if still running.
struct Running {
    child: Child,
    base: String,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    client: reqwest::Client,
}

impl Running {
    async fn start(env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut command = Command::new(BIN);
        command
            .env("OTPD_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let (lines_tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sink, mut err) = (Arc::clone(&stderr), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let running = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            client: reqwest::Client::new(),
        };
        let started = Instant::now();
        while running
            .client
            .get(format!("{}/healthz", running.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "otpd did not come up: {}",
                running.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn post(&self, path: &str, body: serde_json::Value, api_key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap()
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "otpd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run_flow(env: &[(&str, String)]) {
    let mut otpd = Running::start(env).await;
    assert_eq!(
        otpd.post("/v1/otp", json!({"phone": PHONE}), None).await.status(),
        202
    );
    let line = otpd.stdout.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(line.starts_with(&format!("SMS to {PHONE}: ")), "{line}");
    let code = code_in(&line);
    let verified = otpd
        .post("/v1/otp/verify", json!({"phone": PHONE, "code": code}), None)
        .await;
    assert_eq!(verified.status(), 200);
    let status = otpd.terminate();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_binary_serves_on_the_memory_store_by_default() {
    run_flow(&[]).await;
}

#[tokio::test]
async fn the_binary_serves_on_redis() {
    run_flow(&[
        ("OTPD_STORE__URL", redis_url()),
        ("OTPD_STORE__KEY_PREFIX", unique_prefix()),
        ("OTPD_OTP__HASH_KEYS", "binary-test-key-0123456789".into()),
    ])
    .await;
}

const HASH_KEY: &str = "log-test-hash-key-0123456789";
const API_KEY: &str = "log-test-api-key-0123456789";
const PLIVO_TOKEN: &str = "log-test-plivo-token-0123456789";

fn plivo_env(vendor: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("OTPD_SMS__PROVIDER", "plivo".into()),
        ("OTPD_SMS__PLIVO__AUTH_ID", "MAXXXXXXXXXXXXXXXXXX".into()),
        ("OTPD_SMS__PLIVO__AUTH_TOKEN", PLIVO_TOKEN.into()),
        ("OTPD_SMS__PLIVO__SRC", "14155550000".into()),
        ("OTPD_SMS__PLIVO__BASE_URL", vendor.uri()),
        ("OTPD_OTP__HASH_KEYS", HASH_KEY.into()),
        ("OTPD_AUTH__API_KEYS", API_KEY.into()),
    ]
}

fn plivo_accepts() -> ResponseTemplate {
    ResponseTemplate::new(202)
        .set_body_json(json!({"api_id": "a", "message": "queued", "message_uuid": ["u-1"]}))
}

#[tokio::test]
async fn logs_of_a_whole_flow_hold_no_code_and_no_secret() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepts())
        .mount(&vendor)
        .await;
    let mut env = plivo_env(&vendor);
    env.push(("OTPD_LOG__FORMAT", "json".into()));
    env.push(("OTPD_LOG__LEVEL", "debug".into()));
    let mut otpd = Running::start(&env).await;

    let sent = otpd.post("/v1/otp", json!({"phone": PHONE}), Some(API_KEY)).await;
    assert_eq!(sent.status(), 202);
    let request = &vendor.received_requests().await.unwrap()[0];
    let text: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let code = code_in(text["text"].as_str().unwrap());
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let reply = otpd
        .post(
            "/v1/otp/verify",
            json!({"phone": PHONE, "code": wrong}),
            Some(API_KEY),
        )
        .await;
    assert_eq!(reply.status(), 422);
    let reply = otpd
        .post(
            "/v1/otp/verify",
            json!({"phone": PHONE, "code": code}),
            Some(API_KEY),
        )
        .await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        otpd.post("/v1/otp", json!({"phone": PHONE}), Some("not-the-key"))
            .await
            .status(),
        401
    );
    assert!(otpd.terminate().success());

    let logs = otpd.stderr();
    let lines: Vec<serde_json::Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let requests: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 5, "{logs}");
    let routes: Vec<_> = requests
        .iter()
        .map(|l| l["fields"]["route"].as_str().unwrap())
        .collect();
    assert_eq!(
        routes,
        ["healthz", "send_otp", "verify_otp", "verify_otp", "unmatched"]
    );
    for line in &requests {
        let fields = &line["fields"];
        assert!(
            fields["request_id"].as_str().is_some_and(|id| id.len() >= 8),
            "{line}"
        );
        assert!(
            fields["status"].as_u64().is_some() && fields["latency_ms"].as_f64().is_some(),
            "{line}"
        );
        assert!(fields["method"] == "POST" || fields["method"] == "GET", "{line}");
    }
    for secret in [
        code.as_str(),
        HASH_KEY,
        API_KEY,
        "not-the-key",
        PLIVO_TOKEN,
        PHONE,
        "14155552671",
    ] {
        assert!(!logs.contains(secret), "the logs hold {secret}:\n{logs}");
    }
    // Nothing on the console with a real provider.
    assert!(otpd.stdout.try_recv().is_err());
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_then_exits_0() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(plivo_accepts().set_delay(Duration::from_millis(1500)))
        .mount(&vendor)
        .await;
    let mut otpd = Running::start(&plivo_env(&vendor)).await;
    let (client, base) = (otpd.client.clone(), otpd.base.clone());
    let in_flight = tokio::spawn(async move {
        client
            .post(format!("{base}/v1/otp"))
            .bearer_auth(API_KEY)
            .json(&json!({"phone": PHONE}))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = otpd.terminate();
        (status, otpd.stderr())
    });
    assert_eq!(in_flight.await.unwrap(), 202, "the in-flight send completed");
    let (status, logs) = status.await.unwrap();
    assert!(status.success(), "{status:?}: {logs}");
    assert!(logs.contains("shutting down"), "{logs}");
}

fn otpd(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn openapi_command_prints_the_committed_spec() {
    let (ok, stdout, _) = otpd(&["openapi"], &[]);
    assert!(ok);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert_eq!(stdout, committed);
}

#[test]
fn version_and_help() {
    let (ok, stdout, _) = otpd(&["--version"], &[]);
    assert!(ok);
    assert_eq!(stdout.trim(), format!("otpd {}", env!("CARGO_PKG_VERSION")));
    let (ok, stdout, _) = otpd(&["--help"], &[]);
    assert!(ok);
    for word in ["serve", "openapi", "check-config", "--config", "--version"] {
        assert!(stdout.contains(word), "{word} missing from:\n{stdout}");
    }
}

#[test]
fn check_config_prints_the_settings_with_secrets_redacted() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, b"[otp]\nttl_secs = 120\n").unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let (ok, stdout, stderr) = otpd(
        &["check-config", "--config", &path],
        &[
            ("OTPD_OTP__HASH_KEYS", "check-config-key-0123456789"),
            ("OTPD_STORE__URL", "redis://:hunter2-password@127.0.0.1:6379"),
            ("OTPD_OTP__TEST_NUMBERS", "+14155550100=424242"),
            (
                "OTPD_EVENTS__ENDPOINTS__APP__URL",
                "https://hooks.example/otp?token=endpoint-pass",
            ),
            (
                "OTPD_EVENTS__ENDPOINTS__APP__SECRETS",
                "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
            ),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ttl_secs = 120"), "{stdout}");
    assert!(
        !stdout.contains("endpoint-pass") && stdout.contains("https://hooks.example/otp?<redacted>"),
        "an endpoint's token: {stdout}"
    );
    assert!(stdout.contains("<redacted>"), "{stdout}");
    assert!(
        !stdout.contains("check-config-key") && !stdout.contains("hunter2"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("424242"),
        "a test number's code is a secret: {stdout}"
    );
    assert!(stdout.contains("\"+14155550100\" = \"<redacted>\""), "{stdout}");
    let parsed: toml::Value = toml::from_str(&stdout).unwrap();
    assert_eq!(
        parsed["store"]["url"].as_str(),
        Some("redis://<redacted>@127.0.0.1:6379")
    );
}

#[test]
fn a_bad_setting_stops_check_config_and_serve_with_one_line() {
    for args in [&["check-config"][..], &["serve"][..], &[][..]] {
        let (ok, _, stderr) = otpd(
            args,
            &[
                ("OTPD_OTP__TTL_SECS", "soon"),
                ("OTPD_HTTP__LISTEN", "127.0.0.1:0"),
            ],
        );
        assert!(!ok, "{args:?}");
        assert!(
            stderr.trim().starts_with("otpd: invalid setting otp.ttl_secs"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let (ok, _, stderr) = otpd(&["check-config", "--config", "/no/such/file.toml"], &[]);
    assert!(!ok);
    assert!(stderr.contains("--config"), "{stderr}");
}

#[tokio::test]
async fn two_processes_on_one_redis_share_codes_attempts_and_limits() {
    let env = [
        ("OTPD_STORE__URL", redis_url()),
        ("OTPD_STORE__KEY_PREFIX", unique_prefix()),
        ("OTPD_OTP__HASH_KEYS", "two-process-key-0123456789".into()),
    ];
    let (mut a, mut b) = (Running::start(&env).await, Running::start(&env).await);
    assert_eq!(
        a.post("/v1/otp", json!({"phone": PHONE}), None).await.status(),
        202
    );
    let code = code_in(&a.stdout.recv_timeout(Duration::from_secs(5)).unwrap());
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);

    // The resend cooldown set by A holds on B.
    assert_eq!(
        b.post("/v1/otp", json!({"phone": PHONE}), None).await.status(),
        429
    );
    // Attempts spent on either count on both.
    let first = b
        .post("/v1/otp/verify", json!({"phone": PHONE, "code": wrong}), None)
        .await;
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["attempts_remaining"], 4);
    let second = a
        .post("/v1/otp/verify", json!({"phone": PHONE, "code": wrong}), None)
        .await;
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["attempts_remaining"], 3);
    // Sent through A, verified through B, once.
    assert_eq!(
        b.post("/v1/otp/verify", json!({"phone": PHONE, "code": code}), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        a.post("/v1/otp/verify", json!({"phone": PHONE, "code": code}), None)
            .await
            .status(),
        404
    );
    assert!(a.terminate().success() && b.terminate().success());
}

#[test]
fn risky_settings_are_named_in_warnings_at_start() {
    let key = ("OTPD_AUTH__API_KEYS", "binary-test-key-0123456789");
    let (ok, _, stderr) = otpd(&["check-config"], &[key, ("OTPD_HTTP__LISTEN", "0.0.0.0:8080")]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("sms.provider"),
        "the console on a public address: {stderr}"
    );

    let twilio = [
        ("OTPD_SMS__PROVIDER", "twilio"),
        (
            "OTPD_SMS__TWILIO__ACCOUNT_SID",
            "AC0123456789abcdef0123456789abcdef",
        ),
        ("OTPD_SMS__TWILIO__AUTH_TOKEN", "twilio-token"),
        ("OTPD_SMS__TWILIO__FROM", "+14155550000"),
    ];
    let mut env = twilio.to_vec();
    env.push(key);
    env.push(("OTPD_LIMITS__SENDS_PER_HOUR", "0"));
    let (ok, _, stderr) = otpd(&["check-config"], &env);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("limits.sends_per_hour"), "{stderr}");
    assert!(stderr.contains("sms.allowed_countries"), "{stderr}");
    // A real vendor and no hard money cap.
    assert!(stderr.contains("spend.day_hard"), "{stderr}");
    assert!(
        !stderr.contains("sms.provider:"),
        "on loopback the console is fine: {stderr}"
    );

    let mut env = twilio.to_vec();
    env.push(key);
    env.push(("OTPD_SMS__ALLOWED_COUNTRIES", "US,CA"));
    let (ok, _, stderr) = otpd(&["check-config"], &env);
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("sends_per_hour") && !stderr.contains("allowed_countries"),
        "the default budget and a country list: no such warning: {stderr}"
    );
    assert!(
        !stderr.contains("fraud."),
        "the breaker at its defaults: {stderr}"
    );

    // The pumping breaker off with a real vendor, or a whole country safe.
    let mut env = twilio.to_vec();
    env.push(key);
    env.extend([
        ("OTPD_FRAUD__COUNTRY_MODE", "off"),
        ("OTPD_FRAUD__PREFIX_MODE", "off"),
        ("OTPD_FRAUD__CLIENT_MODE", "off"),
        ("OTPD_FRAUD__SAFE", "+1"),
    ]);
    let (ok, _, stderr) = otpd(&["check-config"], &env);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("fraud.client_mode are off"), "{stderr}");
    assert!(
        stderr.contains("fraud.safe holds +1, a whole country"),
        "{stderr}"
    );

    let endpoint = |url: &'static str| {
        [
            ("OTPD_EVENTS__ENDPOINTS__APP__URL", url),
            (
                "OTPD_EVENTS__ENDPOINTS__APP__SECRETS",
                "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
            ),
        ]
    };
    let (ok, _, stderr) = otpd(&["check-config"], &endpoint("http://hooks.internal/otp"));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("events.endpoints.app.url is http://"), "{stderr}");
    let (ok, _, stderr) = otpd(&["check-config"], &endpoint("http://127.0.0.1:9000/otp"));
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("unencrypted"), "loopback is fine: {stderr}");
}

#[tokio::test]
async fn unlock_lets_a_blocked_phone_guess_again() {
    let env = [
        ("OTPD_STORE__URL", redis_url()),
        ("OTPD_STORE__KEY_PREFIX", unique_prefix()),
        ("OTPD_OTP__HASH_KEYS", "unlock-test-key-0123456789".into()),
        // The verification reserves its 5 attempts by id: 2 wrong codes by
        // phone fill the phone's ceiling.
        ("OTPD_LIMITS__WRONG_CODES_PER_PHONE", "7".into()),
        ("OTPD_LIMITS__MAX_CONSECUTIVE_GUESSES", "0".into()),
    ];
    let otpd_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let running = Running::start(&env).await;
    assert_eq!(
        running
            .post("/v1/otp", json!({"phone": PHONE}), None)
            .await
            .status(),
        202
    );
    let code = code_in(&running.stdout.recv_timeout(Duration::from_secs(5)).unwrap());
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..2 {
        let answer = running
            .post("/v1/otp/verify", json!({"phone": PHONE, "code": wrong}), None)
            .await;
        assert_eq!(answer.status(), 422);
    }
    let blocked = running
        .post("/v1/otp/verify", json!({"phone": PHONE, "code": code}), None)
        .await;
    assert_eq!(blocked.status(), 429);
    let body: serde_json::Value = blocked.json().await.unwrap();
    assert_eq!(body["code"], "guess_budget_exceeded");

    let (ok, stdout, stderr) = otpd(&["unlock", "+1 415 555 2671"], &otpd_env);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("cleared"), "{stdout}");
    assert!(!stdout.contains(PHONE), "the phone is masked: {stdout}");
    let approved = running
        .post("/v1/otp/verify", json!({"phone": PHONE, "code": code}), None)
        .await;
    assert_eq!(approved.status(), 200);

    let (ok, stdout, _) = otpd(&["unlock", PHONE], &otpd_env);
    assert!(ok && stdout.contains("no wrong codes"), "{stdout}");
    let (ok, _, stderr) = otpd(&["unlock", "not a phone"], &otpd_env);
    assert!(!ok && stderr.contains("phone"), "{stderr}");
    let (ok, _, stderr) = otpd(&["unlock", PHONE], &[]);
    assert!(!ok && stderr.contains("memory store"), "{stderr}");
}

/// Events through the real binary on Redis: an instance killed while it
/// delivers has its delivery taken over by another; the CLI lists dead
/// letters, replays them, and enables an endpoint a 410 disabled; no code
/// and no secret in any log line.
#[tokio::test]
async fn events_survive_a_killed_instance_and_the_cli_manages_dead_letters() {
    use wiremock::matchers::method as http_method;
    let endpoint = MockServer::start().await;
    Mock::given(http_method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(20)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&endpoint)
        .await;
    Mock::given(http_method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&endpoint)
        .await;
    let env = [
        ("OTPD_STORE__URL", redis_url()),
        ("OTPD_STORE__KEY_PREFIX", unique_prefix()),
        ("OTPD_OTP__HASH_KEYS", "events-test-key-0123456789".into()),
        (
            "OTPD_EVENTS__ENDPOINTS__APP__URL",
            format!("{}/hooks", endpoint.uri()),
        ),
        (
            "OTPD_EVENTS__ENDPOINTS__APP__SECRETS",
            crate::events::SECRET.into(),
        ),
        (
            "OTPD_EVENTS__ENDPOINTS__APP__TYPES",
            "verification.approved".into(),
        ),
        ("OTPD_EVENTS__TIMEOUT_MS", "1500".into()),
        ("OTPD_EVENTS__RETRY_SCHEDULE_SECS", String::new()),
        ("OTPD_LOG__LEVEL", "debug".into()),
    ];
    let cli_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut first = Running::start(&env).await;
    first.post("/v1/otp", json!({"phone": PHONE}), None).await;
    let code = code_in(&first.stdout.recv_timeout(Duration::from_secs(5)).unwrap());
    let approved = first
        .post("/v1/otp/verify", json!({"phone": PHONE, "code": code}), None)
        .await;
    assert_eq!(approved.status(), 200);
    // The first instance has the delivery in hand (the endpoint holds it)...
    let started = Instant::now();
    while endpoint.received_requests().await.unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "no delivery began");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = first.stderr();
    let _ = first.child.kill();
    let _ = first.child.wait();
    // ...and dies; another takes it over once it has been idle too long.
    let second = Running::start(&env).await;
    let started = Instant::now();
    let delivered = loop {
        let requests = endpoint.received_requests().await.unwrap();
        if requests.len() >= 2 {
            break requests;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the delivery was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let payloads: Vec<_> = delivered.iter().map(crate::events::verified).collect();
    assert_eq!(
        payloads[0]["id"], payloads[1]["id"],
        "the same event, delivered again"
    );
    assert_eq!(payloads[1]["type"], "verification.approved");

    // A failing endpoint, no retries: the next event is a dead letter.
    endpoint.reset().await;
    Mock::given(http_method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&endpoint)
        .await;
    second
        .post("/v1/otp", json!({"phone": "+14155552672"}), None)
        .await;
    let code = code_in(&second.stdout.recv_timeout(Duration::from_secs(5)).unwrap());
    second
        .post(
            "/v1/otp/verify",
            json!({"phone": "+14155552672", "code": code}),
            None,
        )
        .await;
    let started = Instant::now();
    let listed = loop {
        let (ok, stdout, stderr) = otpd(&["events", "dead"], &cli_env);
        assert!(ok, "{stderr}");
        if stdout.contains("HTTP 500") {
            break stdout;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no dead letter: {stdout}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(listed.contains("verification.approved\tapp"), "{listed}");
    assert!(!listed.contains(&code), "no code in a dead letter: {listed}");

    // Replayed to an endpoint that works again.
    endpoint.reset().await;
    Mock::given(http_method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&endpoint)
        .await;
    let (ok, stdout, stderr) = otpd(&["events", "replay"], &cli_env);
    assert!(
        ok && stdout.contains("1 dead letters queued again"),
        "{stdout}{stderr}"
    );
    let started = Instant::now();
    while endpoint.received_requests().await.unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the replay was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, stdout, _) = otpd(&["events", "dead"], &cli_env);
    assert!(
        ok && !stdout.contains("evt_"),
        "replayed letters leave the list: {stdout}"
    );

    // 410 disables the endpoint; the CLI enables it again.
    endpoint.reset().await;
    Mock::given(http_method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&endpoint)
        .await;
    second
        .post("/v1/otp", json!({"phone": "+14155552673"}), None)
        .await;
    let code = code_in(&second.stdout.recv_timeout(Duration::from_secs(5)).unwrap());
    second
        .post(
            "/v1/otp/verify",
            json!({"phone": "+14155552673", "code": code}),
            None,
        )
        .await;
    let started = Instant::now();
    loop {
        let (_, stdout, _) = otpd(&["events", "dead"], &cli_env);
        if stdout.contains("410") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "410 not recorded: {stdout}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, stdout, _) = otpd(&["events", "enable", "app"], &cli_env);
    assert!(ok && stdout.contains("app: enabled again"), "{stdout}");
    let (ok, stdout, _) = otpd(&["events", "enable", "app"], &cli_env);
    assert!(ok && stdout.contains("was not disabled"), "{stdout}");

    let logs = logs + &second.stderr();
    assert!(
        !logs.contains(crate::events::SECRET) && !logs.contains("whsec_"),
        "a secret in the logs"
    );
    assert!(!logs.contains(&code), "a code in the logs");
    let (ok, _, stderr) = otpd(&["events", "dead"], &[]);
    assert!(!ok && stderr.contains("memory store"), "{stderr}");
}
