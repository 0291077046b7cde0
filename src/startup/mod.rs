//! Builds the running service from a `Config`: store, SMS sender, service and
//! HTTP listener. `main` and the integration tests start it the same way.

mod dev;
mod events;
mod exposure;
mod fraud;
pub mod healthcheck;
mod languages;
mod routes;
mod sms;
mod spend;
mod voice;
mod whatsapp;
mod wiring;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::adapters::http;
use crate::adapters::http::handlers::ops::SmsChain;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::{ConsoleOut, Inbox};
use crate::adapters::timers::TokioTimers;
use crate::config::{Config, ConfigError, SmsProvider};
use crate::domain::Phone;
use crate::service::OtpService;

use self::wiring::{build_access, build_service, connection_timeouts};

/// A service bound to its address, ready to serve.
pub struct Application {
    service: Arc<OtpService>,
    parts: Parts,
    metrics_listener: Option<(TcpAcceptor, SocketAddr)>,
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    grace: Duration,
}

/// Everything but the service that the HTTP surface needs.
struct Parts {
    access: http::Access,
    metrics: Arc<Metrics>,
    sms_chain: SmsChain,
    /// The console's messages, for the `/dev` pages (see `dev`).
    inbox: Option<Arc<Inbox>>,
    /// Delivers events from the outbox, when endpoints are configured.
    deliverer: Option<crate::adapters::events::Deliverer>,
    /// Where workflows' fallbacks wait.
    timers: Arc<TokioTimers>,
    timeouts: http::server::idle::Timeouts,
}

pub use self::events::queue as event_outbox;

/// A config that passed every check, and what it builds.
pub struct Checked {
    service: OtpService,
    parts: Parts,
}

/// Builds everything a config names without binding any address, so every
/// setting is checked.
///
/// # Errors
/// A [`ConfigError`] naming the setting at fault.
pub fn check(config: &Config, console: ConsoleOut) -> Result<Checked, ConfigError> {
    check_with_inbox(config, console, None)
}

fn check_with_inbox(
    config: &Config,
    console: ConsoleOut,
    inbox: Option<Arc<Inbox>>,
) -> Result<Checked, ConfigError> {
    exposure::check(config)?;
    let metrics = Arc::new(Metrics::new());
    let (outbox, deliverer) = match events::build_events(config, &metrics)? {
        Some(events) => (Some(events.outbox), Some(events.deliverer)),
        None => (None, None),
    };
    let timers = Arc::new(TokioTimers::default());
    let answer_seal = voice::answer_seal(config);
    let service = build_service(
        config,
        console,
        inbox.clone(),
        outbox,
        answer_seal.clone(),
        &metrics,
        &timers,
    )?;
    let access = build_access(config, answer_seal)?;
    Ok(Checked {
        service,
        parts: Parts {
            access,
            metrics,
            sms_chain: SmsChain(sms_chain(config)),
            inbox,
            deliverer,
            timers,
            timeouts: connection_timeouts(config)?,
        },
    })
}

impl Checked {
    /// The service alone, for commands that serve nothing (`otpd unlock`).
    pub fn into_service(self) -> OtpService {
        self.service
    }
}

async fn bind(key: &str, address: &str) -> Result<(TcpAcceptor, SocketAddr), ConfigError> {
    let acceptor = TcpListener::bind(address.to_owned())
        .into_acceptor()
        .await
        .map_err(|e| ConfigError::new(key, format!("cannot listen on {address}: {e}")))?;
    let local_addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| ConfigError::new(key, "the listener has no address"))?;
    Ok((acceptor, local_addr))
}

impl Application {
    /// Checks every setting, builds the adapters and binds the listeners.
    /// `console` is where the console SMS sender writes (standard output in `main`).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting that stops the start.
    pub async fn build(config: &Config, console: ConsoleOut) -> Result<Self, ConfigError> {
        // Bound first: whether there is an inbox depends on the address.
        let (acceptor, local_addr) = bind("http.listen", &config.http.listen).await?;
        let inbox = dev::dev_inbox(config, local_addr);
        let Checked { service, parts } = check_with_inbox(config, console, inbox)?;
        Phone::prepare();
        let metrics_listener = match config.metrics.listen.as_deref().filter(|l| !l.is_empty()) {
            Some(address) => Some(bind("metrics.listen", address).await?),
            None => None,
        };
        Ok(Self {
            service: Arc::new(service),
            parts,
            metrics_listener,
            acceptor,
            local_addr,
            grace: Duration::from_secs(config.http.shutdown_grace_secs),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/metrics` is served when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// One line saying what this instance is about to do.
    pub fn summary(&self, config: &Config) -> String {
        let addr = self.local_addr;
        let limits = &config.limits;
        let metrics = self.metrics_addr().map_or_else(
            || format!("http://{addr}/metrics"),
            |m| format!("http://{m}/metrics"),
        );
        let inbox = match self.parts.inbox {
            Some(_) => format!(", SMS inbox at http://{addr}{}", http::dev::INBOX),
            None => String::new(),
        };
        format!(
            "otpd {} listening on http://{addr}, Swagger UI at http://{addr}/docs{inbox}; store {}; sms {}; \
             codes live {}s with {} attempts; limits: resend after {}s, {} per phone and {} per client \
             per {}s, {} verifies per client per minute, {} per hour in all (0 = off); api keys {}; metrics {metrics}",
            env!("CARGO_PKG_VERSION"),
            config.store.url.redacted(),
            self.parts.sms_chain.0,
            config.otp.ttl_secs,
            config.otp.max_attempts,
            limits.resend_after_secs,
            limits.sends_per_phone,
            limits.sends_per_ip,
            limits.sends_window_secs,
            limits.verifies_per_ip,
            limits.sends_per_hour,
            if self.parts.access.api_keys.is_empty() { "off" } else { "on" },
        )
    }

    /// Serves until `shutdown` completes, then gives in-flight requests
    /// `http.shutdown_grace_secs` to finish.
    ///
    /// # Errors
    /// An I/O error from a listener.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let when_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let Parts {
            access,
            metrics,
            sms_chain,
            inbox,
            deliverer,
            timers,
            timeouts,
        } = self.parts;
        // Delivery runs beside the servers and ends with them; what it had
        // in hand another instance (or the next start) delivers.
        let delivering = deliverer.map(|d| tokio::spawn(d.run()));
        // Workflows' timers run beside the servers; a stop forgets them.
        let service = Arc::clone(&self.service);
        let falling_back = tokio::spawn(async move { timers.run(service).await });
        let service = Arc::clone(&self.service);
        tokio::spawn(async move {
            for concern in service.store_concerns().await {
                tracing::warn!("{concern}");
            }
        });
        let metrics_elsewhere = self.metrics_listener.is_some();
        let acceptor = http::server::idle::IdleClosingAcceptor::new(self.acceptor, timeouts);
        let main = poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            http::app(
                self.service,
                access,
                Arc::clone(&metrics),
                sms_chain,
                metrics_elsewhere,
                inbox.clone(),
            ),
            when_stopped(stopped.clone()),
            Some(self.grace),
        );
        let side = async {
            match self.metrics_listener {
                Some((acceptor, _)) => {
                    poem::Server::new_with_acceptor(acceptor)
                        .run_with_graceful_shutdown(
                            http::metrics_app(metrics),
                            when_stopped(stopped),
                            Some(self.grace),
                        )
                        .await
                }
                None => Ok(()),
            }
        };
        let servers = async {
            let (main, side) = tokio::join!(main, side);
            main.and(side)
        };
        tokio::pin!(servers);
        let result = tokio::select! {
            result = &mut servers => result,
            () = shutdown => {
                let _ = stop.send(true);
                if let Some(inbox) = &inbox {
                    inbox.close();
                }
                servers.await
            }
        };
        if let Some(delivering) = delivering {
            delivering.abort();
        }
        falling_back.abort();
        result
    }
}

/// The SMS providers in order, as logs and readiness name them.
fn sms_chain(config: &Config) -> String {
    let name = |p: SmsProvider| format!("{p:?}").to_lowercase();
    match config.sms.fallback {
        Some(fallback) => format!("{}, then {}", name(config.sms.provider), name(fallback)),
        None => name(config.sms.provider),
    }
}
