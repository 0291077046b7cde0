//! The composition root: command line, config, logs, then the service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use otpd::adapters::sms::ConsoleOut;
use otpd::config::{Config, LogFormat};
use otpd::startup::{self, Application};
use tracing_subscriber::EnvFilter;

/// Requests allocate and free many small buffers across worker threads,
/// which glibc's malloc served at a tenth of the service's CPU.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Two arenas for two worker threads' worth of requests, and freed pages
/// handed back within a second rather than ten, so memory stays near what
/// is in use (docs/performance.md).
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &[u8; 47] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Sends 6-digit one-time codes by SMS and verifies each exactly once.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Settings file (default: ./otpd.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Print the OpenAPI document; `openapi.yaml` is this output.
    Openapi,
    /// Check the settings and print them, secrets redacted; exits non-zero
    /// on a bad one.
    CheckConfig,
    /// Forget a phone's wrong codes in a row, so its owner may try again
    /// (the guess budget otherwise holds them off); with the same settings
    /// as the service, on its Redis.
    Unlock {
        /// The phone in international form, e.g. `+14155552671`.
        phone: String,
    },
    /// Exit 0 when the service serving on `http.listen` here answers
    /// `/healthz`: a container's HEALTHCHECK, which has no curl.
    Healthcheck,
    /// The event outbox on Redis: dead letters and disabled endpoints.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The pumping breaker on Redis: blocked destinations.
    Fraud {
        #[command(subcommand)]
        command: FraudCommand,
    },
}

#[derive(Subcommand)]
enum FraudCommand {
    /// List the blocked destination groups, what tripped each and its
    /// figures now.
    Status,
    /// End a group's block now and judge it afresh.
    Unblock {
        /// A country (`NG`) or a prefix (`+2348031234`), as `status` lists it.
        group: String,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// List the events given up on after their last retry.
    Dead,
    /// Deliver dead letters again: every one, or one event's.
    Replay {
        /// An event id (`evt_...`); none: all.
        event_id: Option<String>,
    },
    /// Deliver again to an endpoint that answered 410 Gone.
    Enable {
        /// The endpoint's name in `events.endpoints`.
        endpoint: String,
    },
}

/// Tasks a worker runs before it looks for new I/O again (tokio's default
/// is 61). Under load a request's task and the Redis connection's task wake
/// each other in turn; with 61, requests arriving on other connections
/// waited behind them, which showed in the 99th percentile of latency
/// (docs/performance.md).
const EVENT_INTERVAL: u32 = 15;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => fail(&e),
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        print!("{}", otpd::adapters::http::spec().spec_yaml());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    // Before any check, so its warnings reach the operator.
    init_logs(&config);
    match command {
        Command::CheckConfig => check_config(&config),
        Command::Unlock { phone } => unlock(&config, &phone).await,
        Command::Fraud { command } => fraud(&config, command).await,
        Command::Healthcheck => match startup::healthcheck::probe(&config.http.listen).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Events { command } => events(&config, command).await,
        _ => serve(&config).await,
    }
}

async fn events(config: &Config, command: EventsCommand) -> ExitCode {
    if config.store.url.expose() == "memory://" {
        return fail(&"the memory store's outbox lives inside the serving process");
    }
    let metrics = std::sync::Arc::new(otpd::adapters::metrics::Metrics::new());
    let queue = match startup::event_outbox(config, &metrics) {
        Ok(Some((_, queue))) => queue,
        Ok(None) => return fail(&"no events.endpoints are configured"),
        Err(e) => return fail(&e),
    };
    let done = match command {
        EventsCommand::Dead => queue.dead_letters().await.map(|letters| {
            for letter in &letters {
                println!(
                    "{}\t{}\t{}\tattempts {}\tat {}\t{}",
                    letter.job.event_id,
                    letter.job.event_type,
                    letter.job.endpoint,
                    letter.job.attempt + 1,
                    letter.at,
                    letter.reason
                );
            }
            eprintln!("{} dead letters", letters.len());
        }),
        EventsCommand::Replay { event_id } => queue
            .replay(event_id.as_deref())
            .await
            .map(|n| println!("{n} dead letters queued again")),
        EventsCommand::Enable { endpoint } => queue.enable(&endpoint).await.map(|was| {
            let what = if was { "enabled again" } else { "was not disabled" };
            println!("{endpoint}: {what}");
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&otpd::ports::ErrorChain(&e)),
    }
}

/// The service on the configured Redis, for a command that serves nothing.
fn store_service(config: &Config) -> Result<otpd::service::OtpService, ExitCode> {
    if config.store.url.expose() == "memory://" {
        return Err(fail(
            &"the memory store lives inside the serving process: restarting it forgets every count",
        ));
    }
    startup::check(config, ConsoleOut::Writer(Box::new(std::io::sink())))
        .map(startup::Checked::into_service)
        .map_err(|e| fail(&e))
}

async fn fraud(config: &Config, command: FraudCommand) -> ExitCode {
    let service = match store_service(config) {
        Ok(service) => service,
        Err(code) => return code,
    };
    match command {
        FraudCommand::Status => match service.blocked_groups().await {
            Ok(blocked) if blocked.is_empty() => {
                println!("no destination is blocked");
                ExitCode::SUCCESS
            }
            Ok(blocked) => {
                for b in blocked {
                    let f = &b.block.figures;
                    let [hour, day] = b.now;
                    println!(
                        "{} ({}) {} until {} (strike {}): {} sent, {} approved in the {}, over {}; now {}/{} an hour, {}/{} a day (sent/approved)",
                        b.group,
                        b.group.level.as_str(),
                        if b.block.enforced { "blocked" } else { "would be blocked (monitor)" },
                        otpd::domain::rfc3339(b.block.until_ms),
                        b.block.strikes,
                        f.sent,
                        f.approved,
                        f.window.as_str(),
                        f.threshold,
                        hour.sent,
                        hour.approved,
                        day.sent,
                        day.approved,
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        // A country as people write it too: `ng` is NG.
        FraudCommand::Unblock { group } => match service.unblock(&group.trim().to_ascii_uppercase()).await {
            Ok(Some(group)) => {
                println!("{group}: unblocked");
                ExitCode::SUCCESS
            }
            Ok(None) => fail(&format!("{group} is not blocked")),
            Err(e) => fail(&e),
        },
    }
}

async fn unlock(config: &Config, phone: &str) -> ExitCode {
    let phone = match otpd::domain::Phone::parse(phone) {
        Ok(phone) => phone,
        Err(e) => return fail(&e),
    };
    let service = match store_service(config) {
        Ok(service) => service,
        Err(code) => return code,
    };
    match service.clear_guesses(&phone).await {
        Ok(cleared) => {
            let what = if cleared {
                "cleared its wrong codes"
            } else {
                "had no wrong codes to clear"
            };
            println!("{}: {what}", phone.masked());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

async fn serve(config: &Config) -> ExitCode {
    let app = match Application::build(config, ConsoleOut::Stdout).await {
        Ok(app) => app,
        Err(e) => return fail(&e),
    };
    tracing::info!("{}", app.summary(config));
    match app.run_until(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn check_config(config: &Config) -> ExitCode {
    if let Err(e) = startup::check(config, ConsoleOut::Writer(Box::new(std::io::sink()))) {
        return fail(&e);
    }
    let mut shown = config.clone();
    shown.store.url.0 = config.store.url.redacted();
    for endpoint in shown.events.endpoints.values_mut() {
        // Its query may carry a token (a user or password is refused).
        endpoint.url = otpd::config::without_query(&endpoint.url);
    }
    match toml::to_string(&shown) {
        Ok(text) => {
            println!(
                "# otpd {}: the settings are valid; secrets are redacted\n{text}",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("otpd: {e}");
    ExitCode::FAILURE
}

/// Logs go to standard error: human-readable, or one JSON object a line.
/// `RUST_LOG`, when set, wins over `log.level`.
fn init_logs(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.init(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return interrupt.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
    tracing::info!("shutting down: no new connections, in-flight requests may finish");
}
