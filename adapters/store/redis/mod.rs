//! The Redis store: one hash-tagged key per phone (`otp:{+14155552671}`)
//! holding its verification as one string (`record.rs`), behind the tally of
//! its sends when a limit counts them (`scripts/record.lua`), and one Lua script
//! per operation that must read before it writes, so every call is one
//! round trip to one slot, on one server or a cluster alike. On one server,
//! the client's and the service's counters join the phone's script, so a
//! send or a verify at the defaults is still one round trip; on a cluster
//! they live on other nodes and are taken first. A verification's id
//! carries its phone (`domain::IdSeal`), so a call by id needs no lookup.

mod connections;
mod record;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation, Value};

pub(crate) use self::connections::{Call, Connections};

use crate::adapters::metrics::Metrics;
use crate::domain::{
    Admitted, Bucket, Checked, Claim, CodeHash, Delivery, DeliveryReport, GuessBudget, Idempotency, Opened,
    PendingOtp, Phone, Quota, Resend, SendLimits, SmsReceipt, Taken, Verification, VerificationId,
    VerifyOutcome,
};
use crate::ports::{admit_in_steps, guess_in_steps, OtpStore, StoreError};

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
    end: Script,
    withdraw: Script,
    record_delivery: Script,
    update_delivery: Script,
    claim: Script,
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
            connections: Connections::open(url, timeout, pool_size, metrics, "requests")?,
            key_prefix: key_prefix.to_owned(),
            scripts: Scripts {
                issue: reading_records!("scripts/issue.lua"),
                take: Script::new(include_str!("scripts/take.lua")),
                give_back: Script::new(include_str!("scripts/give_back.lua")),
                verify: reading_records!("scripts/verify.lua"),
                status: reading_records!("scripts/status.lua"),
                end: reading_records!("scripts/end.lua"),
                withdraw: reading_records!("scripts/withdraw.lua"),
                record_delivery: reading_records!("scripts/record_delivery.lua"),
                update_delivery: reading_records!("scripts/update_delivery.lua"),
                claim: Script::new(include_str!("scripts/claim.lua")),
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

    /// An idempotency key's claim, in its own slot.
    fn claim_key(&self, idempotency: &Idempotency) -> String {
        format!("{}idem:{{{}}}", self.key_prefix, idempotency.slot)
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

/// A script's reply of a record and the ms it has left.
fn verification_of(record: &Value, left: &Value) -> Option<Verification> {
    let (Value::BulkString(record), Value::Int(left)) = (record, left) else {
        return None;
    };
    // A key without a TTL would be a bug elsewhere; treat it as gone.
    (*left > 0).then_some(())?;
    record::decode(record, wait_of(*left))
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        _ => 0,
    }
}

fn unreadable(what: &str) -> StoreError {
    StoreError::Unavailable(format!("Redis returned {what} otpd can't read").into())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A PTTL reply as a wait; a key without a TTL (-1) or gone (-2) means none.
fn wait_of(pttl_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(pttl_ms).unwrap_or(0))
}

impl RedisStore {
    /// [`OtpStore::admit`] in one round trip on one server: the quotas'
    /// counters and the phone's keys in one script. On a cluster the
    /// counters live on other nodes, so it is asked for no quotas.
    async fn open_with(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Admitted<Opened>, StoreError> {
        let key = self.key(phone);
        let record = record::encode(otp);
        let ttl = millis(otp.ttl);
        let unguarded = limits.is_off() && quotas.is_empty();
        if unguarded {
            // Nothing to check: a new verification is a plain SET, with NX
            // when a pending one is to be kept, which most sends find none
            // of. A record already there (a resend) is the script's to keep.
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(&record);
            if resend == Resend::Keeps {
                set.arg("NX");
            }
            set.arg("PX").arg(ttl);
            if self.command::<Option<String>>(set).await?.is_some() {
                return record::decode(&record, otp.ttl)
                    .map(|v| Admitted::Done(Opened::Stored(v)))
                    .ok_or_else(|| unreadable("a new record"));
            }
        }
        let mut invocation = self.scripts.issue.key(&key);
        for (bucket, _) in quotas {
            invocation.key(self.bucket_key(*bucket));
        }
        invocation
            .arg(record)
            .arg(ttl)
            .arg(millis(limits.resend_after))
            .arg(if limits.per_phone.is_off() {
                0
            } else {
                limits.per_phone.limit
            })
            .arg(millis(limits.per_phone.window))
            .arg(u8::from(resend == Resend::Keeps));
        for (_, quota) in quotas {
            invocation.arg(quota.limit).arg(millis(quota.window));
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        Ok(match reply.as_slice() {
            [Value::Int(1), wait] => Admitted::Done(Opened::TooSoon {
                retry_after: wait_of(int(wait)),
            }),
            [Value::Int(2), wait] => Admitted::Done(Opened::QuotaExceeded {
                retry_after: wait_of(int(wait)),
            }),
            [Value::Int(3), wait, which] => Admitted::Refused {
                refused: usize::try_from(int(which)).unwrap_or(0),
                retry_after: wait_of(int(wait)),
            },
            [Value::Int(0), Value::BulkString(stored)] => Admitted::Done(Opened::Stored(
                record::decode(stored, otp.ttl).ok_or_else(|| unreadable("a stored record"))?,
            )),
            _ => return Err(unreadable("the send script's reply")),
        })
    }

    /// [`OtpStore::guess`] in one round trip: the client's counter and the
    /// phone's keys in one script, on one server; `quota` is off for a
    /// cluster (its counter lives on another node) or when the caller took it.
    async fn check_with(
        &self,
        quota: Option<(Bucket, Quota)>,
        phone: &Phone,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<Admitted<Checked>, StoreError> {
        let key = self.key(phone);
        let mut invocation = self.scripts.verify.key(&key);
        invocation.key(format!("{key}:fails"));
        let (limit, window) = match quota {
            Some((bucket, quota)) if !quota.is_off() => {
                invocation.key(self.bucket_key(bucket));
                (quota.limit, millis(quota.window))
            }
            _ => (0, 0),
        };
        invocation
            .arg(budget.free)
            .arg(millis(budget.first_delay))
            .arg(millis(budget.max_delay))
            .arg(budget.max_consecutive)
            .arg(millis(budget.memory))
            .arg(id.map_or("", VerificationId::as_str))
            .arg(limit)
            .arg(window);
        for candidate in candidates {
            invocation.arg(candidate.as_bytes().as_slice());
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        // The record a right or wrong guess returns; its life is read
        // again only by those who need it (status).
        let read = |record: &Value| match record {
            Value::BulkString(bytes) => record::decode(bytes, Duration::ZERO),
            _ => None,
        };
        let (outcome, verification) = match reply.as_slice() {
            [Value::Int(1), record] => (VerifyOutcome::Approved, read(record)),
            [Value::Int(2), wait] => (
                VerifyOutcome::Locked {
                    expires_in: wait_of(int(wait)),
                },
                None,
            ),
            [Value::Int(3), left, record, blocked] => (
                VerifyOutcome::Mismatch {
                    attempts_remaining: u32::try_from(int(left)).unwrap_or(0),
                    phone_blocked: int(blocked) == 1,
                },
                read(record),
            ),
            [Value::Int(4), wait] => (
                VerifyOutcome::Throttled {
                    retry_after: wait_of(int(wait)),
                },
                None,
            ),
            [Value::Int(5), wait] => {
                return Ok(Admitted::Refused {
                    refused: 0,
                    retry_after: wait_of(int(wait)),
                })
            }
            _ => (VerifyOutcome::NotFound, None),
        };
        Ok(Admitted::Done(Checked {
            outcome,
            verification,
        }))
    }
}

/// The outcome a call without quotas came to.
fn done<T>(admitted: Admitted<T>) -> Result<T, StoreError> {
    match admitted {
        Admitted::Done(done) => Ok(done),
        Admitted::Refused { .. } => Err(unreadable("a quota's refusal where none was asked for")),
    }
}

#[async_trait]
impl OtpStore for RedisStore {
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Opened, StoreError> {
        done(self.open_with(&[], phone, otp, limits, resend).await?)
    }

    async fn admit(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Admitted<Opened>, StoreError> {
        if self.connections.is_cluster() {
            return admit_in_steps(self, quotas, phone, otp, limits, resend).await;
        }
        self.open_with(quotas, phone, otp, limits, resend).await
    }

    async fn end(&self, phone: &Phone, id: &VerificationId) -> Result<Option<Verification>, StoreError> {
        let mut invocation = self.scripts.end.key(self.key(phone));
        invocation.arg(id.as_str());
        let reply: Option<(Value, Value)> = self.run(invocation).await?;
        Ok(reply.and_then(|(record, pttl)| verification_of(&record, &pttl)))
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

    async fn check(
        &self,
        phone: &Phone,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<Checked, StoreError> {
        done(self.check_with(None, phone, id, candidates, budget).await?)
    }

    async fn guess(
        &self,
        quota: (Bucket, Quota),
        phone: &Phone,
        id: Option<&VerificationId>,
        candidates: &[CodeHash],
        budget: &GuessBudget,
    ) -> Result<Admitted<Checked>, StoreError> {
        if self.connections.is_cluster() {
            return guess_in_steps(self, quota, phone, id, candidates, budget).await;
        }
        self.check_with(Some(quota), phone, id, candidates, budget).await
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        let key = self.key(phone);
        let mut del = redis::cmd("DEL");
        del.arg(format!("{key}:fails"));
        Ok(self.command::<i64>(del).await? > 0)
    }

    async fn status(&self, phone: &Phone) -> Result<Option<Verification>, StoreError> {
        let invocation = self.scripts.status.key(self.key(phone));
        let reply: Option<(Value, Value)> = self.run(invocation).await?;
        Ok(reply.and_then(|(record, pttl)| verification_of(&record, &pttl)))
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

    async fn claim(&self, idempotency: &Idempotency, hold: Duration) -> Result<Claim, StoreError> {
        let mut invocation = self.scripts.claim.key(self.claim_key(idempotency));
        invocation.arg(&idempotency.fingerprint).arg(millis(hold));
        let reply: Vec<Value> = self.run(invocation).await?;
        Ok(match reply.as_slice() {
            [Value::Int(0)] => Claim::Fresh,
            [Value::Int(1)] => Claim::InFlight,
            [Value::Int(3), Value::BulkString(answer)] => {
                Claim::Answered(String::from_utf8_lossy(answer).into_owned())
            }
            _ => Claim::Reused,
        })
    }

    async fn settle(
        &self,
        idempotency: &Idempotency,
        answer: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.claim_key(idempotency))
            .arg(format!("1{}{answer}", idempotency.fingerprint))
            .arg("PX")
            .arg(millis(window));
        self.command::<()>(set).await
    }

    async fn release(&self, idempotency: &Idempotency) -> Result<(), StoreError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.claim_key(idempotency));
        self.command::<i64>(del).await.map(drop)
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
