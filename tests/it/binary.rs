//! The built `otpd` binary, run as the README says: a code is sent, read from
//! the console, and verified.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::{code_in, redis_url, unique_prefix};

const BIN: &str = env!("CARGO_BIN_EXE_otpd");
const PHONE: &str = "+14155552671";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn run_flow(extra_env: &[(&str, String)]) {
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .env("OTPD_HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let sent = loop {
        match client
            .post(format!("{base}/v1/otp"))
            .json(&serde_json::json!({"phone": PHONE}))
            .send()
            .await
        {
            Ok(reply) => break reply,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("otpd did not come up: {e}"),
        }
    };
    assert_eq!(sent.status(), 202);
    let line = lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(line.starts_with(&format!("SMS to {PHONE}: ")), "{line}");
    let code = code_in(&line);

    let verified = client
        .post(format!("{base}/v1/otp/verify"))
        .json(&serde_json::json!({"phone": PHONE, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);

    // SIGTERM: a clean stop with exit status 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "otpd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
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

#[test]
fn openapi_command_prints_the_committed_spec() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line() {
    let out = Command::new(BIN)
        .env("OTPD_OTP__TTL_SECS", "soon")
        .env("OTPD_HTTP__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap();
    assert!(last.starts_with("otpd: invalid setting otp.ttl_secs"), "{stderr}");
}
