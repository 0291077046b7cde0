//! From settings to the event outbox (beside the store: Redis Streams, or a
//! bounded queue in memory) and the worker that delivers from it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::events::{
    Counted, Deliverer, Endpoint, EventClient, Fanout, MemoryOutbox, Queue, RedisOutbox, SigningKey,
};
use crate::adapters::metrics::Metrics;
use crate::adapters::redis::Connections;
use crate::config::{Config, ConfigError, EventsConfig};
use crate::domain::EVENT_TYPES;
use crate::ports::EventOutbox;

/// The outbox the service writes to, and the worker that delivers from it.
pub(super) struct Events {
    pub outbox: Arc<dyn EventOutbox>,
    pub deliverer: Deliverer,
}

/// The events the settings ask for; `None` without endpoints.
///
/// # Errors
/// A [`ConfigError`] naming the setting at fault.
pub(super) fn build_events(config: &Config, metrics: &Arc<Metrics>) -> Result<Option<Events>, ConfigError> {
    let events = &config.events;
    if events.endpoints.is_empty() {
        return Ok(None);
    }
    let endpoints = endpoints(events)?;
    let (outbox, queue) =
        queue(config, metrics)?.ok_or_else(|| ConfigError::new("events", "needs the store"))?;
    let http = EventClient::new(Duration::from_millis(events.timeout_ms.max(1)));
    Ok(Some(Events {
        outbox: Arc::new(Counted {
            inner: outbox,
            metrics: Arc::clone(metrics),
        }),
        deliverer: Deliverer {
            queue,
            endpoints,
            http,
            schedule: events
                .retry_schedule_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            metrics: Arc::clone(metrics),
            gone: AtomicBool::new(false),
        },
    }))
}

/// The outbox as the service writes to it and as workers and the CLI read
/// it: one object, two views.
pub type OutboxViews = (Arc<dyn EventOutbox>, Arc<dyn Queue>);

/// The outbox's two views; `None` with no endpoints configured.
///
/// # Errors
/// A [`ConfigError`] naming the setting at fault.
pub fn queue(config: &Config, metrics: &Arc<Metrics>) -> Result<Option<OutboxViews>, ConfigError> {
    let events = &config.events;
    if events.endpoints.is_empty() {
        return Ok(None);
    }
    if !(1..=1024).contains(&events.shards) {
        return Err(ConfigError::new("events.shards", "must be 1 to 1024"));
    }
    if events.max_backlog == 0 {
        return Err(ConfigError::new("events.max_backlog", "must be above 0"));
    }
    let fanout = Fanout(
        events
            .endpoints
            .iter()
            .map(|(name, endpoint)| (name.clone(), endpoint.types.clone()))
            .collect::<BTreeMap<_, _>>(),
    );
    let url = config.store.url.expose();
    if url == "memory://" {
        let outbox = Arc::new(MemoryOutbox::new(fanout, events.max_backlog));
        return Ok(Some((outbox.clone(), outbox)));
    }
    let timeout = Duration::from_millis(config.store.timeout_ms.max(1));
    // Its own connections: a worker's reads never queue behind API calls.
    let connections = Connections::open(url, timeout, 1, Arc::clone(metrics), "events")
        .map_err(|e| ConfigError::new("store.url", e))?;
    // A claimed delivery idle for two request timeouts has lost its worker.
    let claim_after = Duration::from_millis(events.timeout_ms.max(1) * 2);
    let outbox = Arc::new(RedisOutbox::new(
        connections,
        &config.store.key_prefix,
        events.shards,
        fanout,
        events.max_backlog,
        claim_after,
    ));
    Ok(Some((outbox.clone(), outbox)))
}

/// The secret the Standard Webhooks specification and its libraries publish
/// in their examples: anyone can sign with it.
const PUBLISHED_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn endpoints(events: &EventsConfig) -> Result<HashMap<String, Endpoint>, ConfigError> {
    let mut endpoints = HashMap::new();
    for (name, endpoint) in &events.endpoints {
        let key = format!("events.endpoints.{name}");
        let named = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !named {
            return Err(ConfigError::new(
                &key,
                "a name is 1 to 64 letters, digits, `-` or `_`",
            ));
        }
        if !(endpoint.url.starts_with("https://") || endpoint.url.starts_with("http://")) {
            return Err(ConfigError::new(
                format!("{key}.url"),
                "must start with https:// or http://",
            ));
        }
        // Parsed once here, not per delivery; as a URL first, which refuses
        // what a URI lets by (a port past 65535, say).
        let url = url::Url::parse(&endpoint.url).map_err(|e| ConfigError::new(format!("{key}.url"), e))?;
        if !url.username().is_empty() || url.password().is_some() {
            // Never sent (each event is signed instead), and a library's
            // trace would name it.
            return Err(ConfigError::new(
                format!("{key}.url"),
                "must not carry a user or password: each event is signed with the endpoint's secrets instead",
            ));
        }
        let uri: hyper::Uri = url
            .as_str()
            .parse()
            .map_err(|e| ConfigError::new(format!("{key}.url"), e))?;
        if super::exposure::in_clear_off_this_machine(&endpoint.url) {
            // Allowed (a private network may have no TLS), but named: every
            // event carries a phone number, and these go in clear.
            tracing::warn!(
                "{key}.url is http:// off this machine: its events, phone numbers included, travel unencrypted"
            );
        }
        if endpoint.secrets.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.secrets"),
                "needs at least one `whsec_` secret",
            ));
        }
        if let Some(i) = endpoint
            .secrets
            .iter()
            .position(|s| s.expose() == PUBLISHED_SECRET)
        {
            return Err(ConfigError::new(
                format!("{key}.secrets[{i}]"),
                "is the Standard Webhooks specification's published example; make one of 32 random bytes",
            ));
        }
        let keys = endpoint
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                SigningKey::parse(s).map_err(|e| ConfigError::new(format!("{key}.secrets[{i}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(unknown) = endpoint.types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
            return Err(ConfigError::new(
                format!("{key}.types"),
                format!("`{unknown}` is not one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        endpoints.insert(name.clone(), Endpoint { uri, keys });
    }
    Ok(endpoints)
}
