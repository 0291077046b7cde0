//! Builds the running service from a `Config`: store, SMS sender, service and
//! HTTP listener. `main` and the integration tests start it the same way.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::adapters::http;
use crate::adapters::http::auth::ApiKeys;
use crate::adapters::http::client_ip::TrustedProxies;
use crate::adapters::http::ops::SmsChain;
use crate::adapters::http::webhooks::WebhookKeys;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::{ConsoleSender, Failover, PlivoSender, RetryPolicy, TwilioSender};
use crate::adapters::store::{MemoryStore, RedisStore};
use crate::config::{Config, ConfigError, PlivoConfig, Secret, SmsProvider, TwilioConfig};
use crate::domain::{
    Autofill, Code, CodeHasher, DestinationPolicy, HashKey, MessageTemplate, OtpPolicy, Phone, PolicyError,
    Quota, SendLimits, TemplateError,
};
use crate::ports::{OtpStore, SmsSender};
use crate::service::{Guards, OtpService};

/// A service bound to its address, ready to serve.
pub struct Application {
    service: Arc<OtpService>,
    parts: Parts,
    metrics_listener: Option<(TcpAcceptor, SocketAddr)>,
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    grace: Duration,
    idle_timeout: Duration,
}

/// Everything but the service that the HTTP surface needs.
struct Parts {
    access: http::Access,
    metrics: Arc<Metrics>,
    sms_chain: SmsChain,
}

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
pub fn check(config: &Config, console: Box<dyn Write + Send>) -> Result<Checked, ConfigError> {
    let metrics = Arc::new(Metrics::new());
    let service = build_service(config, console, &metrics)?;
    let access = build_access(config)?;
    Ok(Checked {
        service,
        parts: Parts {
            access,
            metrics,
            sms_chain: SmsChain(sms_chain(config)),
        },
    })
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
    /// `console` is where the console SMS sender writes (stdout in `main`).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting that stops the start.
    pub async fn build(config: &Config, console: Box<dyn Write + Send>) -> Result<Self, ConfigError> {
        let Checked { service, parts } = check(config, console)?;
        let (acceptor, local_addr) = bind("http.listen", &config.http.listen).await?;
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
            idle_timeout: Duration::from_secs(config.http.idle_timeout_secs.max(1)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/metrics` is served when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    pub fn service(&self) -> Arc<OtpService> {
        Arc::clone(&self.service)
    }

    /// One line saying what this instance is about to do.
    pub fn summary(&self, config: &Config) -> String {
        let addr = self.local_addr;
        let limits = &config.limits;
        let metrics = self.metrics_addr().map_or_else(
            || format!("http://{addr}/metrics"),
            |m| format!("http://{m}/metrics"),
        );
        format!(
            "otpd {} listening on http://{addr}, Swagger UI at http://{addr}/docs; store {}; sms {}; \
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
        } = self.parts;
        let metrics_elsewhere = self.metrics_listener.is_some();
        let main = poem::Server::new_with_acceptor(self.acceptor)
            .idle_timeout(self.idle_timeout)
            .run_with_graceful_shutdown(
                http::app(
                    self.service,
                    access,
                    Arc::clone(&metrics),
                    sms_chain,
                    metrics_elsewhere,
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
        tokio::select! {
            result = &mut servers => result,
            () = shutdown => {
                let _ = stop.send(true);
                servers.await
            }
        }
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

/// The service with the adapters the config names.
///
/// # Errors
/// A [`ConfigError`] naming the bad setting.
fn build_service(
    config: &Config,
    console: Box<dyn Write + Send>,
    metrics: &Arc<Metrics>,
) -> Result<OtpService, ConfigError> {
    let policy =
        OtpPolicy::new(Duration::from_secs(config.otp.ttl_secs), config.otp.max_attempts).map_err(|e| {
            let key = match e {
                PolicyError::Ttl => "otp.ttl_secs",
                PolicyError::MaxAttempts => "otp.max_attempts",
            };
            ConfigError::new(key, e)
        })?;
    Ok(OtpService::new(
        build_store(config, metrics)?,
        build_sms(config, console, metrics)?,
        build_hasher(config)?,
        policy,
        build_template(config, policy.ttl())?,
    )
    .with_test_numbers(build_test_numbers(config)?)
    .with_guards(build_guards(config)?))
}

fn build_guards(config: &Config) -> Result<Guards, ConfigError> {
    let limits = &config.limits;
    let window = Duration::from_secs(limits.sends_window_secs);
    if window.is_zero() && (limits.sends_per_phone > 0 || limits.sends_per_ip > 0) {
        return Err(ConfigError::new(
            "limits.sends_window_secs",
            "must be above 0 while a send quota is on",
        ));
    }
    let destinations = DestinationPolicy::default()
        .allow(&config.sms.allowed_countries)
        .map_err(|e| ConfigError::new("sms.allowed_countries", e))?
        .deny(&config.sms.denied_countries)
        .map_err(|e| ConfigError::new("sms.denied_countries", e))?;
    Ok(Guards {
        send: SendLimits {
            resend_after: Duration::from_secs(limits.resend_after_secs),
            per_phone: Quota::new(limits.sends_per_phone, window),
        },
        sends_per_ip: Quota::new(limits.sends_per_ip, window),
        verifies_per_ip: Quota::new(limits.verifies_per_ip, Duration::from_secs(60)),
        global_sends: Quota::new(limits.sends_per_hour, Duration::from_secs(3600)),
        destinations,
    })
}

fn build_access(config: &Config) -> Result<http::Access, ConfigError> {
    let api_keys = ApiKeys::parse(&config.auth.api_keys).map_err(|e| ConfigError::new("auth.api_keys", e))?;
    if api_keys.is_empty() {
        tracing::warn!("auth.api_keys is not set: anyone who reaches this service can send codes");
    }
    let trusted_proxies = TrustedProxies::parse(&config.http.trusted_proxies)
        .map_err(|e| ConfigError::new("http.trusted_proxies", e))?;
    let sms = &config.sms;
    let uses = |provider| sms.provider == provider || sms.fallback == Some(provider);
    let token = |provider, token: &Secret| (uses(provider) && !token.is_empty()).then(|| token.clone());
    let webhook_keys = WebhookKeys {
        public_url: public_url(config)?.map(str::to_owned),
        plivo_auth_token: token(SmsProvider::Plivo, &sms.plivo.auth_token),
        twilio_auth_token: token(SmsProvider::Twilio, &sms.twilio.auth_token),
    };
    if webhook_keys.public_url.is_some()
        && uses(SmsProvider::Twilio)
        && webhook_keys.twilio_auth_token.is_none()
    {
        return Err(ConfigError::new(
            "sms.twilio.auth_token",
            "is required to check Twilio's delivery reports when http.public_url is set",
        ));
    }
    Ok(http::Access {
        api_keys,
        trusted_proxies,
        webhook_keys,
        body_timeout: Duration::from_millis(config.http.body_timeout_ms.max(1)),
    })
}

fn build_template(config: &Config, ttl: Duration) -> Result<MessageTemplate, ConfigError> {
    let sms = &config.sms;
    let autofill = Autofill {
        android_app_hash: sms.android_app_hash.clone().filter(|h| !h.is_empty()),
        webotp_domain: sms.webotp_domain.clone().filter(|d| !d.is_empty()),
    };
    let template = MessageTemplate::parse(&sms.template, &sms.app_name, autofill).map_err(|e| {
        let key = match e {
            TemplateError::AppHash => "sms.android_app_hash",
            TemplateError::WebOtpDomain => "sms.webotp_domain",
            _ => "sms.template",
        };
        ConfigError::new(key, e)
    })?;
    template
        .check_single_segment(ttl)
        .map_err(|e| ConfigError::new("sms.template", e))?;
    Ok(template)
}

fn build_test_numbers(config: &Config) -> Result<HashMap<Phone, Code>, ConfigError> {
    let mut numbers = HashMap::new();
    for (phone, code) in &config.otp.test_numbers {
        let key = format!("otp.test_numbers.{phone}");
        let phone = Phone::parse(phone).map_err(|e| ConfigError::new(&key, e))?;
        let code = Code::parse(code).map_err(|e| ConfigError::new(&key, e))?;
        numbers.insert(phone, code);
    }
    if !numbers.is_empty() {
        let masked: Vec<String> = numbers.keys().map(Phone::masked).collect();
        tracing::warn!(numbers = %masked.join(", "), "test numbers are on: their codes are fixed and never texted");
    }
    Ok(numbers)
}

fn build_store(config: &Config, metrics: &Arc<Metrics>) -> Result<Arc<dyn OtpStore>, ConfigError> {
    let url = config.store.url.expose();
    if url == "memory://" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    let schemes = ["redis://", "rediss://", "redis+cluster://", "rediss+cluster://"];
    if schemes.iter().any(|scheme| url.starts_with(scheme)) {
        let timeout = Duration::from_millis(config.store.timeout_ms.max(1));
        let store = RedisStore::new(
            url,
            &config.store.key_prefix,
            timeout,
            config.store.pool_size,
            Arc::clone(metrics),
        )
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

fn build_sms(
    config: &Config,
    console: Box<dyn Write + Send>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn SmsSender>, ConfigError> {
    let sms = &config.sms;
    if sms.fallback == Some(sms.provider) {
        return Err(ConfigError::new(
            "sms.fallback",
            "must name another provider than sms.provider",
        ));
    }
    let timeout = Duration::from_millis(sms.timeout_ms.max(1));
    let http = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| ConfigError::new("sms", e))?;
    let policy = RetryPolicy::new(sms.retries, timeout);
    let public_url = public_url(config)?;
    let callback = |provider: &str| public_url.map(|base| format!("{base}/v1/webhooks/{provider}"));
    let mut console = Some(console);
    let mut build = |kind: SmsProvider| -> Result<Arc<dyn SmsSender>, ConfigError> {
        Ok(match kind {
            SmsProvider::Console => Arc::new(ConsoleSender::new(
                console.take().unwrap_or_else(|| Box::new(std::io::stdout())),
            )),
            SmsProvider::Plivo => {
                check_plivo(&sms.plivo)?;
                Arc::new(PlivoSender::new(
                    &sms.plivo,
                    http.clone(),
                    policy,
                    callback("plivo"),
                    Arc::clone(metrics),
                ))
            }
            SmsProvider::Twilio => {
                check_twilio(&sms.twilio)?;
                Arc::new(TwilioSender::new(
                    &sms.twilio,
                    http.clone(),
                    policy,
                    callback("twilio"),
                    Arc::clone(metrics),
                ))
            }
        })
    };
    let primary = build(sms.provider)?;
    Ok(match sms.fallback {
        Some(kind) => Arc::new(Failover::new(primary, build(kind)?)),
        None => primary,
    })
}

/// `http.public_url` without a trailing slash, if set.
fn public_url(config: &Config) -> Result<Option<&str>, ConfigError> {
    match config.http.public_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(Some(url.trim_end_matches('/')))
        }
        Some(_) => Err(ConfigError::new(
            "http.public_url",
            "must start with https:// or http://",
        )),
        None => Ok(None),
    }
}

fn required(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(key, "is required by the chosen SMS provider"));
    }
    Ok(())
}

fn check_plivo(plivo: &PlivoConfig) -> Result<(), ConfigError> {
    required("sms.plivo.auth_id", &plivo.auth_id)?;
    required("sms.plivo.auth_token", plivo.auth_token.expose())?;
    required("sms.plivo.src", &plivo.src)
}

fn check_twilio(twilio: &TwilioConfig) -> Result<(), ConfigError> {
    required("sms.twilio.account_sid", &twilio.account_sid)?;
    if twilio.api_key_sid.is_empty() {
        required("sms.twilio.auth_token", twilio.auth_token.expose())?;
    } else {
        required("sms.twilio.api_key_secret", twilio.api_key_secret.expose())?;
    }
    if twilio.messaging_service_sid.is_empty() {
        required("sms.twilio.from", &twilio.from)?;
    }
    Ok(())
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
