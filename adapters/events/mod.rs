//! Lifecycle events to the app's endpoints: kept in an outbox before the API
//! call that caused them answers (Redis Streams beside the Redis store, a
//! bounded queue beside the memory store), then delivered at least once by a
//! worker on every instance, signed as Standard Webhooks says, retried on a
//! schedule, and kept as dead letters after the last try.

mod deliver;
mod http;
mod memory;
mod payload;
mod queue;
mod redis;
mod signature;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::deliver::{Deliverer, Endpoint};
pub use self::http::EventClient;
pub use self::memory::MemoryOutbox;
pub use self::queue::{DeadLetter, Fanout, Queue, Taken};
pub use self::redis::RedisOutbox;
pub use self::signature::{KeyError, SigningKey};
use crate::adapters::metrics::Metrics;
use crate::domain::Event;
use crate::ports::{EventOutbox, OutboxError};

/// An outbox that counts what it is given, and what it turns away.
pub struct Counted {
    pub inner: Arc<dyn EventOutbox>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl EventOutbox for Counted {
    async fn publish(&self, events: &[Event]) -> Result<(), OutboxError> {
        let published = self.inner.publish(events).await;
        for event in events {
            let outcome = if published.is_ok() { "kept" } else { "dropped" };
            self.metrics.event(event.kind.name(), outcome);
        }
        published
    }
}

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_now() -> u64 {
    unix_now_ms() / 1000
}
