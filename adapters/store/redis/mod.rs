//! The Redis store: one hash-tagged key per phone (`otp:{+14155552671}`)
//! holding one string (`record.rs`), and one Lua script per operation that
//! must read before it writes, so every call is one round trip to one slot,
//! on one server or a cluster alike.

mod connections;
mod record;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation};

pub(crate) use self::connections::{Call, Connections};

use crate::adapters::metrics::Metrics;
use crate::domain::{
    Bucket, CodeHash, Delivery, DeliveryReport, DeliveryState, GuessBudget, Issued, OtpStatus, PendingOtp,
    Phone, Quota, SendLimits, SmsReceipt, Taken, VerifyOutcome,
};
use crate::ports::{OtpStore, StoreError};

pub struct RedisStore {
    connections: Connections,
    key_prefix: String,
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
    update_delivery: Script,
}

/// A script that reads a code's record: the layout's Lua side
/// (`scripts/record.lua`, see `record.rs`) joined onto its body, so the body
/// splits the record with the prelude's functions. EVALSHA sends only the
/// SHA, so the prelude costs nothing per call.
macro_rules! reading_records {
    ($body:literal) => {
        Script::new(concat!(include_str!("scripts/record.lua"), include_str!($body)))
    };
}

impl RedisStore {
    /// Prepares the connections (see [`Connections::open`] for the URLs);
    /// none is made before the first call.
    ///
    /// # Errors
    /// A [`RedisError`] for a URL Redis can't use.
    pub fn new(
        url: &str,
        key_prefix: &str,
        timeout: Duration,
        pool_size: u32,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RedisError> {
        Ok(Self {
            connections: Connections::open(url, timeout, pool_size, metrics)?,
            key_prefix: key_prefix.to_owned(),
            scripts: Scripts {
                issue: Script::new(include_str!("scripts/issue.lua")),
                take: Script::new(include_str!("scripts/take.lua")),
                give_back: Script::new(include_str!("scripts/give_back.lua")),
                verify: reading_records!("scripts/verify.lua"),
                status: reading_records!("scripts/status.lua"),
                withdraw: reading_records!("scripts/withdraw.lua"),
                record_delivery: reading_records!("scripts/record_delivery.lua"),
                update_delivery: reading_records!("scripts/update_delivery.lua"),
            },
        })
    }

    /// The phone's key; the braces make Redis Cluster hash only the phone,
    /// so its code and its counters share one slot.
    pub fn key(&self, phone: &Phone) -> String {
        self.key_of(phone.as_str())
    }

    fn key_of(&self, e164: &str) -> String {
        format!("{}{{{e164}}}", self.key_prefix)
    }

    /// Where a tracked message's phone is found; its own slot, since the
    /// phone isn't known when the provider's report arrives.
    fn link_key(&self, provider: &str, message_id: &str) -> String {
        format!("{}msg:{{{provider}:{message_id}}}", self.key_prefix)
    }

    fn bucket_key(&self, bucket: Bucket) -> String {
        match bucket {
            Bucket::SendsFrom(net) => format!("{}ip:{{{net}}}:sends", self.key_prefix),
            Bucket::VerifiesFrom(net) => format!("{}ip:{{{net}}}:verifies", self.key_prefix),
            Bucket::LookupsFrom(net) => format!("{}ip:{{{net}}}:lookups", self.key_prefix),
            Bucket::GlobalSends => format!("{}{{global}}:sends", self.key_prefix),
        }
    }

    /// Runs one prepared script invocation within the store timeout.
    async fn run<T: FromRedisValue>(&self, invocation: ScriptInvocation<'_>) -> Result<T, StoreError> {
        self.connections.call(Call::Script(invocation)).await
    }

    /// Runs one plain command within the store timeout.
    async fn command<T: FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        self.connections.call(Call::Command(cmd)).await
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A PTTL reply as a wait; a key without a TTL (-1) or gone (-2) means none.
fn wait_of(pttl_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(pttl_ms).unwrap_or(0))
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
        let record = record::encode(otp);
        if limits.is_off() {
            // Nothing to check first: the write is the whole operation.
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(record).arg("PX").arg(millis(otp.ttl));
            self.command::<()>(set).await?;
            return Ok(Issued::Stored);
        }
        let mut invocation = self.scripts.issue.key(&key);
        invocation
            .key(format!("{key}:cooldown"))
            .key(format!("{key}:sends"))
            .arg(record)
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
        budget: &GuessBudget,
    ) -> Result<VerifyOutcome, StoreError> {
        let key = self.key(phone);
        let mut invocation = self.scripts.verify.key(&key);
        invocation
            .key(format!("{key}:fails"))
            .key(format!("{key}:wait"))
            .arg(budget.free)
            .arg(millis(budget.first_delay))
            .arg(millis(budget.max_delay))
            .arg(budget.max_consecutive)
            .arg(millis(budget.memory));
        for candidate in candidates {
            invocation.arg(candidate.as_bytes().as_slice());
        }
        let reply: Vec<i64> = self.run(invocation).await?;
        Ok(match reply.as_slice() {
            [1] => VerifyOutcome::Approved,
            [2, wait] => VerifyOutcome::Locked {
                expires_in: wait_of(*wait),
            },
            [3, left, blocked] => VerifyOutcome::Mismatch {
                attempts_remaining: u32::try_from(*left).unwrap_or(0),
                phone_blocked: *blocked == 1,
            },
            [4, wait] => VerifyOutcome::Throttled {
                retry_after: wait_of(*wait),
            },
            _ => VerifyOutcome::NotFound,
        })
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        let key = self.key(phone);
        let mut del = redis::cmd("DEL");
        del.arg(format!("{key}:fails")).arg(format!("{key}:wait"));
        Ok(self.command::<i64>(del).await? > 0)
    }

    async fn status(&self, phone: &Phone) -> Result<Option<OtpStatus>, StoreError> {
        let invocation = self.scripts.status.key(self.key(phone));
        type Reply = (
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<u64>,
        );
        let reply: Option<Reply> = self.run(invocation).await?;
        Ok(reply.and_then(
            |(left, ttl_ms, provider, message_id, state, error_code, updated_at)| {
                // A key without a TTL would be a bug elsewhere; treat it as gone.
                (ttl_ms > 0).then(|| OtpStatus {
                    expires_in: wait_of(ttl_ms),
                    attempts_remaining: u32::try_from(left).unwrap_or(0),
                    delivery: match (
                        provider,
                        message_id,
                        state.as_deref().and_then(DeliveryState::from_name),
                    ) {
                        (Some(provider), Some(message_id), Some(state)) => Some(Delivery {
                            provider,
                            message_id,
                            state,
                            error_code,
                            updated_at: updated_at.unwrap_or(0),
                        }),
                        _ => None,
                    },
                })
            },
        ))
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
        at: u64,
        link_ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_delivery.key(self.key(phone));
        invocation
            .arg(hash.as_bytes().as_slice())
            .arg(record::delivery_fields(&Delivery::queued(receipt, at)));
        let noted: i64 = self.run(invocation).await?;
        if noted == 1 && receipt.tracked {
            let mut set = redis::cmd("SET");
            set.arg(self.link_key(&receipt.provider, &receipt.message_id))
                .arg(phone.as_str())
                .arg("PX")
                .arg(millis(link_ttl));
            self.command::<()>(set).await?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.command::<String>(redis::cmd("PING")).await.map(drop)
    }

    async fn update_delivery(&self, report: &DeliveryReport) -> Result<Option<Phone>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.link_key(&report.provider, &report.message_id));
        let Some(phone) = self.command::<Option<String>>(get).await? else {
            return Ok(None);
        };
        let mut invocation = self.scripts.update_delivery.key(self.key_of(&phone));
        invocation
            .arg(record::field(&report.provider).as_ref())
            .arg(record::field(&report.message_id).as_ref())
            .arg(report.state.as_str())
            .arg(report.state.rank())
            .arg(record::field(report.error_code.as_deref().unwrap_or("")).as_ref())
            .arg(report.at);
        let applied = self.run::<i64>(invocation).await? == 1;
        // The link holds what this store wrote: an E.164 phone.
        Ok(applied.then(|| Phone::parse(&phone).ok()).flatten())
    }
}
