//! The composition root: command line, config, logs, then the service.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use otpd::config::Config;
use otpd::startup::Application;

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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", otpd::adapters::http::spec().spec_yaml());
        return ExitCode::SUCCESS;
    }
    init_logs();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    let app = match Application::build(&config, Box::new(std::io::stdout())).await {
        Ok(app) => app,
        Err(e) => return fail(&e),
    };
    let addr = app.local_addr();
    tracing::info!(
        "otpd listening on http://{addr}, Swagger UI at http://{addr}/docs; store {}, sms {:?}, codes live {}s with {} attempts",
        config.store.url.redacted(),
        config.sms.provider,
        config.otp.ttl_secs,
        config.otp.max_attempts,
    );
    match app.run_until(shutdown_signal(), Duration::from_secs(10)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("otpd: {e}");
    ExitCode::FAILURE
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
}
