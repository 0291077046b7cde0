//! Connections to Redis, one server or a cluster, behind one `call` that is
//! bounded by the store timeout, counts failures, and drops a connection a
//! call failed on so the next one dials afresh.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bb8::{Pool, RunError};
use bb8_redis::RedisConnectionManager;
use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::{Cmd, FromRedisValue, RedisError, ScriptInvocation};

use crate::adapters::metrics::Metrics;
use crate::ports::StoreError;

/// One request to Redis.
pub enum Call<'a> {
    Script(ScriptInvocation<'a>),
    Command(Cmd),
    /// Commands written together, answered together: one round trip. On
    /// one server only; a cluster would need each key's node.
    Pipeline(redis::Pipeline),
}

pub struct Connections {
    backend: Backend,
    timeout: Duration,
    metrics: Arc<Metrics>,
    calls: prometheus::IntCounter,
}

enum Backend {
    Single(Pool<Tracked<RedisConnectionManager>>),
    Cluster(Pool<Tracked<ClusterClient>>),
}

impl Connections {
    /// Prepares the pool for `url`: `redis://`, `rediss://`, or
    /// `redis+cluster://host:port,host:port` (`rediss+cluster://` for TLS).
    /// Nothing is dialled until the first call, so the service can start,
    /// and report itself unready, while Redis is still down.
    ///
    /// Its calls count as `caller`'s (`requests` or `events`).
    ///
    /// # Errors
    /// A [`RedisError`] for a URL Redis can't use.
    pub fn open(
        url: &str,
        timeout: Duration,
        pool_size: u32,
        metrics: Arc<Metrics>,
        caller: &str,
    ) -> Result<Self, RedisError> {
        let backend = match cluster_nodes(url) {
            Some(nodes) => {
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()?;
                Backend::Cluster(pool(client, timeout, pool_size))
            }
            None => Backend::Single(pool(RedisConnectionManager::new(url)?, timeout, pool_size)),
        };
        Ok(Self {
            backend,
            timeout,
            calls: metrics.store_calls(caller),
            metrics,
        })
    }

    /// Whether the keys are spread over a cluster's nodes.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    pub async fn call<T: FromRedisValue>(&self, call: Call<'_>) -> Result<T, StoreError> {
        self.calls.inc();
        let result = self.uncounted(call).await;
        if result.is_err() {
            self.metrics.store_error();
        }
        result
    }

    /// As [`Connections::call`], counted nowhere: for what start-up reads of
    /// the server itself, which is no caller's work.
    pub async fn uncounted<T: FromRedisValue>(&self, call: Call<'_>) -> Result<T, StoreError> {
        let attempt = async {
            match &self.backend {
                Backend::Single(pool) => on(pool, call).await,
                Backend::Cluster(pool) => on(pool, call).await,
            }
        };
        let timed_out = StoreError::Timeout(u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX));
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or(Err(timed_out))
    }
}

fn pool<M: Connector>(inner: M, timeout: Duration, size: u32) -> Pool<Tracked<M>> {
    Pool::builder()
        .max_size(size.max(1))
        .connection_timeout(timeout)
        // Checking each connection on checkout would double the round trips;
        // one a call failed on is dropped at its next checkout instead.
        .test_on_check_out(false)
        .build_unchecked(Tracked { inner, timeout })
}

/// Runs `call` on a clone of a pooled connection. A multiplexed connection
/// carries any number of calls at once, so the pool slot is handed back
/// before the call instead of being held through it.
async fn on<M: Connector, T: FromRedisValue>(
    pool: &Pool<Tracked<M>>,
    call: Call<'_>,
) -> Result<T, StoreError> {
    let (mut conn, broken) = checkout(pool).await?;
    let result = match call {
        Call::Script(invocation) => invocation.invoke_async(&mut conn).await,
        Call::Command(cmd) => cmd.query_async(&mut conn).await,
        Call::Pipeline(pipe) => pipe.query_async(&mut conn).await,
    };
    if result.is_err() {
        broken.store(true, Ordering::Relaxed);
    }
    result.map_err(unavailable)
}

/// A healthy connection and its broken flag. One marked broken is handed
/// back, which makes the pool drop it, and the next one is taken.
async fn checkout<M: Connector>(pool: &Pool<Tracked<M>>) -> Result<(M::Conn, Arc<AtomicBool>), StoreError> {
    loop {
        let pooled = pool.get().await.map_err(|e| match e {
            RunError::User(e) => unavailable(e),
            RunError::TimedOut => unavailable("no connection to Redis could be made in time"),
        })?;
        if !pooled.broken.load(Ordering::Relaxed) {
            return Ok((pooled.inner.clone(), Arc::clone(&pooled.broken)));
        }
    }
}

/// A failure as the port's error, the cause kept as its source: where it is
/// logged, `ErrorChain` prints it after "the store is unavailable".
fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Unavailable(cause.into())
}

/// `redis+cluster://[user:pass@]h1:p1,h2:p2` as one URL per node.
fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else {
        ("rediss", url.strip_prefix("rediss+cluster://")?)
    };
    let rest = rest.trim_end_matches('/');
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|host| format!("{scheme}://{credentials}{host}"))
            .collect(),
    )
}

/// A way of making connections, with whatever it needs to bound their calls.
pub trait Connector:
    bb8::ManageConnection<Error = RedisError, Connection = <Self as Connector>::Conn>
{
    type Conn: ConnectionLike + Clone + Send + 'static;

    fn bound(_conn: &mut Self::Conn, _timeout: Duration) {}
}

impl Connector for RedisConnectionManager {
    type Conn = redis::aio::MultiplexedConnection;

    fn bound(conn: &mut Self::Conn, timeout: Duration) {
        conn.set_response_timeout(timeout);
    }
}

/// The cluster client is built with its timeouts.
impl Connector for ClusterClient {
    type Conn = redis::cluster_async::ClusterConnection;
}

/// A manager whose connections carry a flag to drop them after a failed
/// call: a multiplexed connection never heals, and bb8 can't tell by itself.
pub struct Tracked<M> {
    inner: M,
    timeout: Duration,
}

pub struct TrackedConnection<C> {
    inner: C,
    /// Set by any clone a call failed on.
    broken: Arc<AtomicBool>,
}

impl<M: Connector> bb8::ManageConnection for Tracked<M> {
    type Connection = TrackedConnection<M::Conn>;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, RedisError> {
        let mut inner = self.inner.connect().await?;
        M::bound(&mut inner, self.timeout);
        Ok(TrackedConnection {
            inner,
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), RedisError> {
        self.inner.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_each_node() {
        assert_eq!(
            cluster_nodes("redis+cluster://10.0.0.1:7000,10.0.0.2:7001/"),
            Some(vec![
                "redis://10.0.0.1:7000".to_owned(),
                "redis://10.0.0.2:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://:secret@a:1,b:2"),
            Some(vec![
                "rediss://:secret@a:1".to_owned(),
                "rediss://:secret@b:2".to_owned()
            ])
        );
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
    }
}
