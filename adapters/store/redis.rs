//! The Redis store: one Lua script per operation, one hash-tagged key per
//! phone (`otp:{+14155552671}`), so every call is one round trip to one slot.

use std::time::Duration;

use async_trait::async_trait;
use bb8::{Pool, RunError};
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation};

use crate::domain::{
    Bucket, CodeHash, Issued, OtpStatus, PendingOtp, Phone, Quota, SendLimits, SmsReceipt, Taken,
    VerifyOutcome,
};
use crate::ports::{OtpStore, StoreError};

pub struct RedisStore {
    pool: Pool<Manager>,
    key_prefix: String,
    timeout: Duration,
    scripts: Scripts,
}

struct Scripts {
    issue: Script,
    take: Script,
    give_back: Script,
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
                issue: Script::new(include_str!("scripts/issue.lua")),
                take: Script::new(include_str!("scripts/take.lua")),
                give_back: Script::new(include_str!("scripts/give_back.lua")),
                verify: Script::new(include_str!("scripts/verify.lua")),
                status: Script::new(include_str!("scripts/status.lua")),
                withdraw: Script::new(include_str!("scripts/withdraw.lua")),
                record_delivery: Script::new(include_str!("scripts/record_delivery.lua")),
            },
        })
    }

    /// The phone's key; the braces make Redis Cluster hash only the phone,
    /// so its code and its counters share one slot.
    pub fn key(&self, phone: &Phone) -> String {
        format!("{}{{{}}}", self.key_prefix, phone.as_str())
    }

    fn bucket_key(&self, bucket: Bucket) -> String {
        match bucket {
            Bucket::SendsFromIp(ip) => format!("{}ip:{{{ip}}}:sends", self.key_prefix),
            Bucket::VerifiesFromIp(ip) => format!("{}ip:{{{ip}}}:verifies", self.key_prefix),
            Bucket::GlobalSends => format!("{}{{global}}:sends", self.key_prefix),
        }
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A PTTL reply as a wait; a key without a TTL (-1) or gone (-2) means none.
fn wait_of(pttl_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(pttl_ms).unwrap_or(0))
}

fn unavailable(e: &RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[async_trait]
impl OtpStore for RedisStore {
    async fn issue(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
    ) -> Result<Issued, StoreError> {
        let key = self.key(phone);
        let mut invocation = self.scripts.issue.key(&key);
        invocation
            .key(format!("{key}:cooldown"))
            .key(format!("{key}:sends"))
            .arg(otp.hash.as_bytes().as_slice())
            .arg(otp.attempts)
            .arg(millis(otp.ttl))
            .arg(millis(limits.resend_after))
            .arg(if limits.per_phone.is_off() {
                0
            } else {
                limits.per_phone.limit
            })
            .arg(millis(limits.per_phone.window));
        let reply: Vec<i64> = self.run(invocation).await?;
        Ok(match reply.as_slice() {
            [1, wait] => Issued::TooSoon {
                retry_after: wait_of(*wait),
            },
            [2, wait] => Issued::QuotaExceeded {
                retry_after: wait_of(*wait),
            },
            _ => Issued::Stored,
        })
    }

    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        let mut invocation = self.scripts.take.key(self.bucket_key(bucket));
        invocation.arg(quota.limit).arg(millis(quota.window));
        let reply: Vec<i64> = self.run(invocation).await?;
        Ok(match reply.as_slice() {
            [0, wait] => Taken::Exhausted {
                retry_after: wait_of(*wait),
            },
            _ => Taken::Granted,
        })
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        let invocation = self.scripts.give_back.key(self.bucket_key(bucket));
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
            [2, wait] => VerifyOutcome::Locked {
                expires_in: wait_of(*wait),
            },
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
                expires_in: wait_of(ttl_ms),
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
