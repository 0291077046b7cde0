//! Builds the running service from a `Config`: store, SMS sender, service and
//! HTTP listener. `main` and the integration tests start it the same way.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::adapters::http;
use crate::adapters::sms::ConsoleSender;
use crate::adapters::store::{MemoryStore, RedisStore};
use crate::config::{Config, ConfigError, SmsProvider};
use crate::domain::{CodeHasher, HashKey, MessageTemplate, OtpPolicy, PolicyError};
use crate::ports::{OtpStore, SmsSender};
use crate::service::OtpService;

/// A service bound to its address, ready to serve.
pub struct Application {
    service: Arc<OtpService>,
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
}

impl Application {
    /// Checks every setting, builds the adapters and binds the listener.
    /// `console` is where the console SMS sender writes (stdout in `main`).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting that stops the start.
    pub async fn build(config: &Config, console: Box<dyn Write + Send>) -> Result<Self, ConfigError> {
        let service = Arc::new(build_service(config, console)?);
        let acceptor = TcpListener::bind(config.http.listen.clone())
            .into_acceptor()
            .await
            .map_err(|e| {
                ConfigError::new(
                    "http.listen",
                    format!("cannot listen on {}: {e}", config.http.listen),
                )
            })?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| ConfigError::new("http.listen", "the listener has no address"))?;
        Ok(Self {
            service,
            acceptor,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn service(&self) -> Arc<OtpService> {
        Arc::clone(&self.service)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> std::io::Result<()> {
        poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(http::app(self.service), shutdown, Some(grace))
            .await
    }
}

/// The service with the adapters the config names.
///
/// # Errors
/// A [`ConfigError`] naming the bad setting.
pub fn build_service(config: &Config, console: Box<dyn Write + Send>) -> Result<OtpService, ConfigError> {
    let policy =
        OtpPolicy::new(Duration::from_secs(config.otp.ttl_secs), config.otp.max_attempts).map_err(|e| {
            let key = match e {
                PolicyError::Ttl => "otp.ttl_secs",
                PolicyError::MaxAttempts => "otp.max_attempts",
            };
            ConfigError::new(key, e)
        })?;
    let template = MessageTemplate::parse(&config.sms.template, &config.sms.app_name)
        .map_err(|e| ConfigError::new("sms.template", e))?;
    Ok(OtpService::new(
        build_store(config)?,
        build_sms(config, console),
        build_hasher(config)?,
        policy,
        template,
    ))
}

fn build_store(config: &Config) -> Result<Arc<dyn OtpStore>, ConfigError> {
    let url = config.store.url.expose();
    if url == "memory://" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        let timeout = Duration::from_millis(config.store.timeout_ms.max(1));
        let store = RedisStore::new(url, &config.store.key_prefix, timeout, config.store.pool_size)
            .map_err(|e| ConfigError::new("store.url", e))?;
        return Ok(Arc::new(store));
    }
    Err(ConfigError::new(
        "store.url",
        format!(
            "{} is not memory://, redis://... or rediss://...",
            config.store.url.redacted()
        ),
    ))
}

fn build_sms(config: &Config, console: Box<dyn Write + Send>) -> Arc<dyn SmsSender> {
    match config.sms.provider {
        SmsProvider::Console => Arc::new(ConsoleSender::new(console)),
    }
}

fn build_hasher(config: &Config) -> Result<CodeHasher, ConfigError> {
    let mut keys = Vec::with_capacity(config.otp.hash_keys.len());
    for (i, secret) in config.otp.hash_keys.iter().enumerate() {
        keys.push(
            HashKey::new(secret.expose().as_bytes())
                .map_err(|e| ConfigError::new(format!("otp.hash_keys[{i}]"), e))?,
        );
    }
    let mut keys = keys.into_iter();
    Ok(match keys.next() {
        Some(current) => CodeHasher::new(current, keys.collect()),
        None => {
            tracing::warn!(
                "otp.hash_keys is not set: using a random key for this process; codes won't survive \
                 a restart nor verify on another instance"
            );
            CodeHasher::new(HashKey::random(), Vec::new())
        }
    })
}
