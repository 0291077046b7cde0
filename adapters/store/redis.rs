//! The Redis store: one Lua script per operation, one hash-tagged key per
//! phone (`otp:{+14155552671}`), so every call is one round trip to one slot.

use std::time::Duration;

use async_trait::async_trait;
use bb8::{Pool, RunError};
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation};

use crate::domain::{CodeHash, OtpStatus, PendingOtp, Phone, SmsReceipt, VerifyOutcome};
use crate::ports::{OtpStore, StoreError};

pub struct RedisStore {
    pool: Pool<Manager>,
    key_prefix: String,
    timeout: Duration,
    scripts: Scripts,
}

struct Scripts {
    put: Script,
    verify: Script,
    status: Script,
    withdraw: Script,
    record_delivery: Script,
}

impl RedisStore {
    /// Prepares a pool; connections are made on first use, so the service can
    /// start (and report itself unready) while Redis is still down.
    ///
    /// # Errors
    /// A [`RedisError`] for a URL Redis can't use.
    pub fn new(url: &str, key_prefix: &str, timeout: Duration, pool_size: u32) -> Result<Self, RedisError> {
        let manager = Manager {
            inner: RedisConnectionManager::new(url)?,
            response_timeout: timeout,
        };
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(timeout)
            // Checking each connection on checkout would double the round trips;
            // broken ones are dropped when a command fails on them instead.
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Self {
            pool,
            key_prefix: key_prefix.to_owned(),
            timeout,
            scripts: Scripts {
                put: Script::new(include_str!("scripts/put.lua")),
                verify: Script::new(include_str!("scripts/verify.lua")),
                status: Script::new(include_str!("scripts/status.lua")),
                withdraw: Script::new(include_str!("scripts/withdraw.lua")),
                record_delivery: Script::new(include_str!("scripts/record_delivery.lua")),
            },
        })
    }

    /// The phone's key; the braces make Redis Cluster hash only the phone.
    pub fn key(&self, phone: &Phone) -> String {
        format!("{}{{{}}}", self.key_prefix, phone.as_str())
    }

    /// Runs one prepared script invocation within the store timeout.
    async fn run<T: FromRedisValue>(&self, invocation: ScriptInvocation<'_>) -> Result<T, StoreError> {
        let call = async {
            let mut conn = self.pool.get().await.map_err(|e| match e {
                RunError::User(e) => unavailable(&e),
                RunError::TimedOut => StoreError::Timeout(self.timeout.as_millis() as u64),
            })?;
            let result = invocation.invoke_async(&mut conn.inner).await;
            if let Err(e) = &result {
                conn.broken = true;
                tracing::warn!(error = %e, "redis command failed");
            }
            result.map_err(|e| unavailable(&e))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.timeout.as_millis() as u64)))
    }
}

fn unavailable(e: &RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[async_trait]
impl OtpStore for RedisStore {
    async fn put(&self, phone: &Phone, otp: &PendingOtp) -> Result<(), StoreError> {
        let mut invocation = self.scripts.put.key(self.key(phone));
        invocation
            .arg(otp.hash.as_bytes().as_slice())
            .arg(otp.attempts)
            .arg(otp.ttl.as_millis() as u64);
        self.run::<i64>(invocation).await.map(drop)
    }

    async fn verify_and_consume(
        &self,
        phone: &Phone,
        candidates: &[CodeHash],
    ) -> Result<VerifyOutcome, StoreError> {
        let mut invocation = self.scripts.verify.key(self.key(phone));
        for candidate in candidates {
            invocation.arg(candidate.as_bytes().as_slice());
        }
        let reply: Vec<i64> = self.run(invocation).await?;
        Ok(match reply.as_slice() {
            [1] => VerifyOutcome::Approved,
            [2] => VerifyOutcome::Locked,
            [3, left] => VerifyOutcome::Mismatch {
                attempts_remaining: u32::try_from(*left).unwrap_or(0),
            },
            _ => VerifyOutcome::NotFound,
        })
    }

    async fn status(&self, phone: &Phone) -> Result<Option<OtpStatus>, StoreError> {
        let invocation = self.scripts.status.key(self.key(phone));
        let reply: Option<(i64, i64, Option<String>, Option<String>)> = self.run(invocation).await?;
        Ok(reply.and_then(|(left, ttl_ms, provider, message_id)| {
            // A key without a TTL would be a bug elsewhere; treat it as gone.
            (ttl_ms > 0).then(|| OtpStatus {
                expires_in: Duration::from_millis(ttl_ms as u64),
                attempts_remaining: u32::try_from(left).unwrap_or(0),
                delivery: provider
                    .zip(message_id)
                    .map(|(provider, message_id)| SmsReceipt { provider, message_id }),
            })
        }))
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        let mut invocation = self.scripts.withdraw.key(self.key(phone));
        invocation.arg(hash.as_bytes().as_slice());
        self.run::<i64>(invocation).await.map(drop)
    }

    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_delivery.key(self.key(phone));
        invocation
            .arg(hash.as_bytes().as_slice())
            .arg(&receipt.provider)
            .arg(&receipt.message_id);
        self.run::<i64>(invocation).await.map(drop)
    }
}

/// bb8-redis's manager, plus a flag to drop a connection a command failed on:
/// a multiplexed connection never heals, and bb8 can't tell by itself.
struct Manager {
    inner: RedisConnectionManager,
    response_timeout: Duration,
}

struct Connection {
    inner: MultiplexedConnection,
    broken: bool,
}

impl bb8::ManageConnection for Manager {
    type Connection = Connection;
    type Error = RedisError;

    async fn connect(&self) -> Result<Connection, RedisError> {
        let mut inner = self.inner.connect().await?;
        inner.set_response_timeout(self.response_timeout);
        Ok(Connection { inner, broken: false })
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), RedisError> {
        self.inner.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.broken
    }
}
