//! From settings to the service and its access rules: store, hasher,
//! policy, template, test numbers and limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::http;
use crate::adapters::http::extract::auth::ApiKeys;
use crate::adapters::http::extract::client_ip::TrustedProxies;
use crate::adapters::http::extract::twilio_auth::{is_sid, TwilioCredentials};
use crate::adapters::http::handlers::twilio_verify::TwilioSurface;
use crate::adapters::http::handlers::webhooks::WebhookKeys;
use crate::adapters::metrics::Metrics;
use crate::adapters::sms::sealed_speech::SpeechSeal;
use crate::adapters::sms::{ConsoleOut, Inbox};
use crate::adapters::store::{MemoryStore, RedisStore};
use crate::adapters::timers::TokioTimers;
use crate::config::{Config, ConfigError, LimitsConfig, SmsConfig};
use crate::domain::{
    Autofill, ClientPrefixes, Code, CodeHasher, DestinationPolicy, GuessBudget, GuessCeiling, HashKey,
    MessageTemplate, OtpPolicy, Phone, PolicyError, PrefixError, Quota, SendLimits, TemplateError,
};
use crate::ports::{EventOutbox, OtpStore};
use crate::service::{Guards, OtpService};

use super::sms::{build_sms, webhook_keys};

const MEMORY_URL: &str = "memory://";

/// The service with the adapters the config names.
///
/// # Errors
/// A [`ConfigError`] naming the bad setting.
pub(super) fn build_service(
    config: &Config,
    console: ConsoleOut,
    inbox: Option<Arc<Inbox>>,
    events: Option<Arc<dyn EventOutbox>>,
    answer_seal: Option<Arc<SpeechSeal>>,
    metrics: &Arc<Metrics>,
    timers: &Arc<TokioTimers>,
) -> Result<OtpService, ConfigError> {
    let policy =
        OtpPolicy::new(Duration::from_secs(config.otp.ttl_secs), config.otp.max_attempts).map_err(|e| {
            let key = match e {
                PolicyError::Ttl => "otp.ttl_secs",
                PolicyError::MaxAttempts => "otp.max_attempts",
            };
            ConfigError::new(key, e)
        })?;
    let senders = build_sms(config, console, inbox, metrics)?;
    let whatsapp = super::whatsapp::build_whatsapp(config, senders.console.clone(), metrics)?;
    let voice = super::voice::build_voice(config, senders.console, answer_seal, metrics)?;
    let service = OtpService::new(
        build_store(config, metrics)?,
        senders.sms,
        build_hasher(config)?,
        policy,
        build_template(config, policy.ttl())?,
    )
    .with_templates(super::languages::build_templates(config, policy.ttl())?)
    .with_test_numbers(build_test_numbers(config)?)
    .with_guards(build_guards(config)?)
    .with_idempotency_window(idempotency_window(config)?)
    .with_meter(Arc::clone(metrics) as Arc<dyn crate::ports::Meter>);
    let service = match whatsapp {
        Some(sender) => service.with_whatsapp(sender),
        None => service,
    };
    let service = match voice {
        Some(caller) => service.with_voice(caller),
        None => service,
    };
    let (workflows, fallback_after) = super::voice::build_workflows(config, |c| service.sends_on(c))?;
    let service = service.with_workflows(workflows).with_fallbacks(
        Arc::clone(timers) as Arc<dyn crate::ports::FallbackTimers>,
        fallback_after,
    );
    Ok(match events {
        Some(outbox) => service.with_events(outbox),
        None => service,
    })
}

fn idempotency_window(config: &Config) -> Result<Duration, ConfigError> {
    within(
        "http.idempotency_window_secs",
        Duration::from_secs(config.http.idempotency_window_secs),
        Duration::from_secs(1)..=Duration::from_secs(7 * 86_400),
        "1 second and 7 days",
    )
}

/// How long a connection may idle and take over a request's head. Bounded
/// both ways: 0 would close every connection at once, and a deadline past
/// the clock's range would panic the worker that sets it.
pub(super) fn connection_timeouts(config: &Config) -> Result<http::server::idle::Timeouts, ConfigError> {
    Ok(http::server::idle::Timeouts {
        idle: within(
            "http.idle_timeout_secs",
            Duration::from_secs(config.http.idle_timeout_secs),
            Duration::from_secs(1)..=Duration::from_secs(86_400),
            "1 second and 1 day",
        )?,
        header: within(
            "http.header_timeout_ms",
            Duration::from_millis(config.http.header_timeout_ms),
            Duration::from_millis(100)..=Duration::from_secs(600),
            "100 ms and 10 minutes",
        )?,
    })
}

fn within(
    key: &str,
    value: Duration,
    range: std::ops::RangeInclusive<Duration>,
    words: &str,
) -> Result<Duration, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(key, format!("must be between {words}")))
    }
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
    // The Redis store packs a phone's count with its last send's time.
    if limits.sends_per_phone > 1000 {
        return Err(ConfigError::new(
            "limits.sends_per_phone",
            "must be 1000 or fewer",
        ));
    }
    let destinations = DestinationPolicy::default()
        .allow(&config.sms.allowed_countries)
        .map_err(|e| ConfigError::new("sms.allowed_countries", e))?
        .deny(&config.sms.denied_countries)
        .map_err(|e| ConfigError::new("sms.denied_countries", e))?
        .allow_special(&config.sms.allowed_special_prefixes)
        .map_err(|e| ConfigError::new("sms.allowed_special_prefixes", e))?;
    let client_prefixes = ClientPrefixes::new(limits.ipv4_prefix, limits.ipv6_prefix).map_err(|e| {
        let key = match e {
            PrefixError::V4 => "limits.ipv4_prefix",
            PrefixError::V6 => "limits.ipv6_prefix",
        };
        ConfigError::new(key, e)
    })?;
    let minute = Duration::from_secs(60);
    let (prices, caps) = super::spend::build_spend(config)?;
    Ok(Guards {
        send: SendLimits {
            resend_after: Duration::from_secs(limits.resend_after_secs),
            per_phone: Quota::new(limits.sends_per_phone, window),
        },
        sends_per_ip: Quota::new(limits.sends_per_ip, window),
        verifies_per_ip: Quota::new(limits.verifies_per_ip, minute),
        lookups_per_ip: Quota::new(limits.lookups_per_ip, minute),
        global_sends: Quota::new(limits.sends_per_hour, Duration::from_secs(3600)),
        destinations,
        guesses: build_guess_budget(limits)?,
        ceiling: build_ceiling(limits)?,
        client_prefixes,
        breaker: super::fraud::build_breaker(config)?,
        prices,
        caps,
    })
}

fn build_ceiling(limits: &LimitsConfig) -> Result<GuessCeiling, ConfigError> {
    if limits.wrong_codes_per_phone > 0 && limits.wrong_codes_window_secs == 0 {
        return Err(ConfigError::new(
            "limits.wrong_codes_window_secs",
            "must be above 0 while limits.wrong_codes_per_phone is on",
        ));
    }
    Ok(GuessCeiling {
        limit: limits.wrong_codes_per_phone,
        window: Duration::from_secs(limits.wrong_codes_window_secs),
    })
}

fn build_guess_budget(limits: &LimitsConfig) -> Result<GuessBudget, ConfigError> {
    if limits.max_consecutive_guesses == 0 {
        return Ok(GuessBudget::OFF);
    }
    if limits.forget_guesses_after_secs == 0 {
        return Err(ConfigError::new(
            "limits.forget_guesses_after_secs",
            "must be above 0 while the guess budget is on",
        ));
    }
    if limits.max_guess_delay_secs < limits.guess_delay_secs {
        return Err(ConfigError::new(
            "limits.max_guess_delay_secs",
            "must be at least limits.guess_delay_secs",
        ));
    }
    Ok(GuessBudget {
        free: limits.free_guesses,
        first_delay: Duration::from_secs(limits.guess_delay_secs),
        max_delay: Duration::from_secs(limits.max_guess_delay_secs),
        max_consecutive: limits.max_consecutive_guesses,
        memory: Duration::from_secs(limits.forget_guesses_after_secs),
    })
}

/// `answer_seal`: the one the voice caller seals with, if it does.
pub(super) fn build_access(
    config: &Config,
    answer_seal: Option<Arc<SpeechSeal>>,
) -> Result<http::Access, ConfigError> {
    let api_keys = ApiKeys::parse(&config.auth.api_keys).map_err(|e| ConfigError::new("auth.api_keys", e))?;
    if api_keys.is_empty() {
        tracing::warn!("auth.api_keys is not set: anyone who reaches this service can send codes");
    }
    let trusted_proxies = TrustedProxies::parse(&config.http.trusted_proxies)
        .map_err(|e| ConfigError::new("http.trusted_proxies", e))?;
    let mut webhook_keys = WebhookKeys {
        meta: super::whatsapp::meta_keys(config)?,
        ..webhook_keys(config)?
    };
    let channels = [
        super::voice::report_key(config)?,
        super::whatsapp::report_key(config)?,
    ];
    for (vendor, key) in channels.into_iter().flatten() {
        webhook_keys.tokens.insert(vendor, key);
    }
    Ok(http::Access {
        api_keys,
        trusted_proxies,
        webhook_keys,
        body_timeout: within(
            "http.body_timeout_ms",
            Duration::from_millis(config.http.body_timeout_ms),
            Duration::from_millis(100)..=Duration::from_secs(600),
            "100 ms and 10 minutes",
        )?,
        twilio: twilio_surface(config)?.map(Arc::new),
        answer_seal,
    })
}

/// The Twilio Verify API: off while nothing of it is set; once anything is,
/// the account, a token and a service are all needed.
fn twilio_surface(config: &Config) -> Result<Option<TwilioSurface>, ConfigError> {
    let twilio = &config.twilio_verify;
    if twilio.account_sid.is_empty()
        && twilio.auth_tokens.is_empty()
        && twilio.api_keys.is_empty()
        && twilio.services.is_empty()
    {
        return Ok(None);
    }
    let credentials = TwilioCredentials::new(&twilio.account_sid, &twilio.auth_tokens, &twilio.api_keys)
        .map_err(|(key, reason)| ConfigError::new(format!("twilio_verify.{key}"), reason))?;
    if twilio.services.is_empty() {
        return Err(ConfigError::new(
            "twilio_verify.services",
            "at least one service is needed",
        ));
    }
    if let Some(bad) = twilio.services.keys().find(|sid| !is_sid("VA", sid)) {
        return Err(ConfigError::new(
            "twilio_verify.services",
            format!("{bad:?} is not VA and 32 hex digits"),
        ));
    }
    // Each friendly name is its service's `{app}`: its SMS must still fit.
    let ttl = Duration::from_secs(config.otp.ttl_secs);
    let template = build_template(config, ttl)?;
    for (sid, name) in &twilio.services {
        template
            .for_app(name)
            .check_single_segment(ttl)
            .map_err(|e| ConfigError::new("twilio_verify.services", format!("{sid}: {e}")))?;
    }
    Ok(Some(TwilioSurface {
        credentials,
        services: twilio.services.clone(),
        public_url: super::sms::public_url(config)?.map(str::to_owned),
    }))
}

/// The autofill lines the settings ask for, on every template.
pub(super) fn autofill(sms: &SmsConfig) -> Autofill {
    Autofill {
        android_app_hash: sms.android_app_hash.clone().filter(|h| !h.is_empty()),
        webotp_domain: sms.webotp_domain.clone().filter(|d| !d.is_empty()),
    }
}

fn build_template(config: &Config, ttl: Duration) -> Result<MessageTemplate, ConfigError> {
    let sms = &config.sms;
    let template = MessageTemplate::parse(&sms.template, &sms.app_name, autofill(sms)).map_err(|e| {
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
        let code = Code::parse(code.expose()).map_err(|e| ConfigError::new(&key, e))?;
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
    if url == MEMORY_URL {
        return Ok(Arc::new(MemoryStore::new(config.store.memory_max_entries)));
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
        None if config.store.url.expose() != MEMORY_URL => {
            return Err(ConfigError::new(
                "otp.hash_keys",
                "is required with a shared store: every instance must hash codes with the same \
                 key, or a right code sent through one is a wrong guess on another; make one \
                 with `openssl rand -hex 32`",
            ));
        }
        None => {
            tracing::warn!(
                "otp.hash_keys is not set: using a random key for this process; codes won't survive \
                 a restart nor verify on another instance"
            );
            CodeHasher::new(HashKey::random(), Vec::new())
        }
    })
}
