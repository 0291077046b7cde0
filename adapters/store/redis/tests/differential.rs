//! The differential test: random sequences of every store operation, on
//! two phones, two scopes and two clients, with time advancing, run on the
//! memory store (the domain's rules under a lock) and on Redis (the scripts)
//! side by side. Every answer, and the phone's whole state after each step,
//! must agree; proptest shrinks a failure to a short sequence that shows it.
//! On `OTPD_TEST_REDIS_URL`, and on a cluster of three masters and three
//! replicas started here (with `redis-server` on the PATH).
//! `OTPD_DIFF_CASES` sets the number of sequences (64 on one server, 32 on
//! the cluster).
//!
//! Time moves in ticks of a second. Every duration given to the stores is a
//! whole number of seconds and a half, and a tick's steps all run in its
//! first 300 ms, so nothing ends within 200 ms of a step: the two stores,
//! called a few ms apart, never see a part end between their calls.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::{by_phone, client, hash, otp, phone, Near, Pair};
use crate::domain::{
    DeliveryReport, DeliveryState, GuessBudget, GuessCeiling, Named, Opened, Quota, Scope, SendLimits,
    SendMode, SmsReceipt, VerificationId,
};
use crate::ports::{
    guess_in_steps, Counters, Deliveries, Guess, Guesser, OtpStore, SendRules, Verifications,
};

const TICK: Duration = Duration::from_secs(1);
/// Steps start a tick late past this.
const STEPS_WITHIN: Duration = Duration::from_millis(300);

/// A whole number of ticks and a half.
fn ticks(n: u64) -> Duration {
    TICK * u32::try_from(n).unwrap() + TICK / 2
}

/// One call, drawn at random: what it does and on what.
#[derive(Debug, Clone)]
struct Step {
    /// Which call: see `run`.
    kind: u8,
    phone: usize,
    scope: usize,
    client: usize,
    /// Which of the phone's sends the step names (an id, a code); `None`
    /// or no sends: an id and a code nobody was given.
    pick: Option<u8>,
    /// Switches, one bit each: see `Step::flag`.
    flags: u8,
    attempts: u32,
    mode: u8,
}

impl Step {
    fn flag(&self, bit: u8) -> bool {
        self.flags & (1 << bit) != 0
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0u8..40,
        0usize..2,
        0usize..2,
        0usize..2,
        prop::option::weighted(0.9, any::<u8>()),
        any::<u8>(),
        1u32..=5,
        0u8..6,
    )
        .prop_map(|(kind, phone, scope, client, pick, flags, attempts, mode)| Step {
            kind,
            phone,
            scope,
            client,
            pick,
            flags,
            attempts,
            mode,
        });
    prop::collection::vec(step, 1..60)
}

/// Runs `steps` on both stores of `p`, asserting at each that they agree.
async fn run(p: &Pair, steps: &[Step]) {
    let phones = [phone(501), phone(502)];
    let scopes = [Scope::of("a"), Scope::of("b")];
    let nets = [client("198.51.100.1"), client("2001:db8:7::1")];
    let ceiling = GuessCeiling {
        limit: 8,
        window: ticks(2),
    };
    let waits = GuessBudget {
        free: 2,
        first_delay: ticks(1),
        max_delay: ticks(2),
        max_consecutive: 6,
        memory: ticks(3),
    };
    let unknown = VerificationId::from_bytes([0xee; 16]);
    // What was sent: phone, id, code; and the messages recorded.
    let mut sent: Vec<(usize, VerificationId, u8)> = Vec::new();
    let mut messages: Vec<String> = Vec::new();
    let mut tick_started = Instant::now();
    for (n, step) in steps.iter().enumerate() {
        if step.kind >= 37 || tick_started.elapsed() > STEPS_WITHIN {
            let passed = tick_started
                .elapsed()
                .as_millis()
                .div_ceil(TICK.as_millis())
                .max(1);
            tick_started += TICK * u32::try_from(passed).unwrap();
            tokio::time::sleep_until(tick_started.into()).await;
            if step.kind >= 37 {
                continue;
            }
        }
        let (ph, scope, net) = (&phones[step.phone], &scopes[step.scope], nets[step.client]);
        let on_phone: Vec<_> = sent.iter().filter(|s| s.0 == step.phone).collect();
        let known = match (step.pick, on_phone.len()) {
            (Some(i), len) if len > 0 => Some(on_phone[usize::from(i) % len].clone()),
            _ => None,
        };
        let id = known.as_ref().map_or(&unknown, |k| &k.1);
        let code = known.as_ref().map_or(255, |k| k.2);
        let candidates = if step.flag(0) {
            vec![hash(255), hash(code)]
        } else {
            vec![hash(255)]
        };
        let ceiling = if step.flag(1) { ceiling } else { GuessCeiling::OFF };
        let named = if step.flag(2) {
            Named::ById(id)
        } else {
            Named::ByPhone
        };
        let guess = Guess {
            scope,
            named,
            candidates: &candidates,
            ceiling,
        };
        match step.kind {
            0..=11 => {
                let code = u8::try_from(n % 250).unwrap();
                let mut otp = otp(scope, code, step.attempts);
                otp.ttl = ticks(1);
                let mode = match step.mode {
                    0 => SendMode::New,
                    1 => SendMode::KeepPending,
                    2 => SendMode::Replace,
                    3 => SendMode::Resend(id.clone()),
                    // A workflow's fallback, after a message recorded, or
                    // after a send no vendor took (`""`).
                    _ => SendMode::Fallback {
                        id: id.clone(),
                        after: if step.flag(7) {
                            String::new()
                        } else {
                            messages.last().cloned().unwrap_or_default()
                        },
                    },
                };
                let rules = SendRules {
                    limits: SendLimits {
                        resend_after: if step.flag(3) { ticks(1) } else { Duration::ZERO },
                        per_phone: if step.flag(4) {
                            Quota::new(4, ticks(1))
                        } else {
                            Quota::OFF
                        },
                    },
                    ceiling,
                };
                let opened = same!(p, ph, |s| s.open(ph, &otp, &mode, &rules));
                if let Opened::Stored(v) = opened {
                    sent.push((step.phone, v.id, code));
                }
            }
            12..=19 => {
                same!(p, ph, |s| s.check(ph, &guess));
            }
            20..=23 => {
                let guesser = Guesser {
                    client: net,
                    quota: Quota::new(1000, ticks(3)),
                    waits,
                };
                if step.flag(5) {
                    same!(p, ph, |s| s.guess(&guesser, ph, &guess));
                } else {
                    same!(p, ph, |s| guess_in_steps(s, &guesser, ph, &guess));
                }
            }
            24 | 25 => {
                same!(p, ph, |s| s.end(ph, scope, id));
            }
            26 | 27 => {
                same!(p, ph, |s| s.status(ph, scope, named));
            }
            28 => {
                same!(p, ph, |s| s.withdraw(ph, &hash(code)));
            }
            29 | 30 => {
                let receipt = SmsReceipt {
                    provider: "twilio".into(),
                    message_id: format!("{}{n}", p.prefix),
                    tracked: true,
                };
                messages.push(receipt.message_id.clone());
                same!(p, ph, |s| s.record_delivery(
                    ph,
                    &hash(code),
                    &receipt,
                    1_700_000_000,
                    ticks(1)
                ));
            }
            31 | 32 if !messages.is_empty() => {
                let states = [
                    DeliveryState::Queued,
                    DeliveryState::Sent,
                    DeliveryState::Delivered,
                    DeliveryState::Failed,
                    DeliveryState::Undelivered,
                ];
                let report = DeliveryReport {
                    provider: "twilio".into(),
                    message_id: messages[usize::from(step.mode) % messages.len()].clone(),
                    state: states[usize::from(step.mode) % states.len()],
                    error_code: step.flag(6).then(|| "30003".to_owned()),
                    at: 1_700_000_100,
                };
                same!(p, ph, |s| s.update_delivery(&report));
            }
            33 => {
                same!(p, ph, |s| s.clear_guesses(ph));
            }
            34 | 35 => {
                same!(p, ph, |s| s.check(ph, &by_phone(scope, &candidates, ceiling)));
            }
            _ => {
                same!(p, ph, |s| s.client_wait(net, &waits));
            }
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("OTPD_DIFF_CASES").map_or(default, |n| n.parse().expect("OTPD_DIFF_CASES is a number"))
}

/// Runs `cases` random sequences on Redis at `url` beside a memory store,
/// each on a store pair of its own.
fn differ(url: &str, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&steps(), |steps| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let p = Pair::on(url).await;
            run(&p, &steps).await;
            p.clean_up().await;
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("the stores differ: {failure}");
    }
}

#[test]
fn random_sequences_agree_on_redis() {
    let Ok(url) = std::env::var("OTPD_TEST_REDIS_URL") else {
        eprintln!("OTPD_TEST_REDIS_URL is not set: the Redis store goes untested");
        return;
    };
    differ(&url, cases(64));
}

#[test]
fn random_sequences_agree_on_a_cluster() {
    if std::env::var("OTPD_TEST_REDIS_URL").is_err() {
        eprintln!("OTPD_TEST_REDIS_URL is not set: the cluster goes untested");
        return;
    }
    let cluster = own_redis::OwnCluster::start();
    differ(&cluster.url(), cases(32));
}

/// The integration tests' own Redis servers, of which this uses the cluster.
#[allow(dead_code)]
#[path = "../../../../tests/it/own_redis.rs"]
mod own_redis;
