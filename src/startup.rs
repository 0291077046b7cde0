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
use crate::adapters::http::webhooks::WebhookKeys;
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
    access: http::Access,
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
        let access = build_access(config)?;
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
            access,
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
            .run_with_graceful_shutdown(http::app(self.service, self.access), shutdown, Some(grace))
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
    Ok(OtpService::new(
        build_store(config)?,
        build_sms(config, console)?,
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

fn build_sms(config: &Config, console: Box<dyn Write + Send>) -> Result<Arc<dyn SmsSender>, ConfigError> {
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
                ))
            }
            SmsProvider::Twilio => {
                check_twilio(&sms.twilio)?;
                Arc::new(TwilioSender::new(
                    &sms.twilio,
                    http.clone(),
                    policy,
                    callback("twilio"),
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
