//! The Redis store: one hash-tagged key per phone (`otp:{+14155552671}`)
//! holding its verification as one string (`record.rs`), and one Lua script
//! per operation that must read before it writes, so every call is one
//! round trip to one slot, on one server or a cluster alike. A
//! verification's id links to its phone under its own key (`ve:{VE…}`), so
//! a call by id is a GET of the link, then the phone's script.

mod connections;
mod record;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation, Value};

pub(crate) use self::connections::{Call, Connections};

use crate::adapters::metrics::Metrics;
use crate::domain::{
    Bucket, Checked, Claim, CodeHash, Delivery, DeliveryReport, GuessBudget, Idempotency, Opened, PendingOtp,
    Phone, Quota, Resend, SendLimits, SmsReceipt, Taken, Verification, VerificationId, VerifyOutcome,
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
            connections: Connections::open(url, timeout, pool_size, metrics)?,
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

    /// Where a verification's phone is found; its own slot, since only its
    /// id is known to a call by id.
    fn id_key(&self, id: &VerificationId) -> String {
        format!("{}ve:{{{id}}}", self.key_prefix)
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

/// A script's reply of a record and its key's PTTL.
fn verification_of(record: &Value, pttl: &Value) -> Option<Verification> {
    let (Value::BulkString(record), Value::Int(pttl)) = (record, pttl) else {
        return None;
    };
    // A key without a TTL would be a bug elsewhere; treat it as gone.
    (*pttl > 0).then_some(())?;
    record::decode(record, wait_of(*pttl))
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

#[async_trait]
impl OtpStore for RedisStore {
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        limits: &SendLimits,
        resend: Resend,
    ) -> Result<Opened, StoreError> {
        let key = self.key(phone);
        let record = record::encode(otp);
        let ttl = millis(otp.ttl);
        let stored = |record: &[u8]| {
            record::decode(record, otp.ttl)
                .map(Opened::Stored)
                .ok_or_else(|| unreadable("a new record"))
        };
        if limits.is_off() && resend == Resend::Replaces {
            // Nothing to check or keep: the write is the whole operation.
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(&record).arg("PX").arg(ttl);
            self.command::<()>(set).await?;
            return stored(&record);
        }
        let mut link = redis::cmd("SET");
        link.arg(self.id_key(&otp.id))
            .arg(phone.as_str())
            .arg("PX")
            .arg(ttl);
        let pipelined = limits.is_off() && !self.connections.is_cluster();
        if pipelined {
            // Nothing to check, and most sends find no verification to keep:
            // the id's link and the new record with NX, written together in
            // one round trip, as plain SETs. A record already there (a
            // resend) is the script's to keep or replace, below.
            let mut new = redis::cmd("SET");
            new.arg(&key).arg(&record).arg("NX").arg("PX").arg(ttl);
            let mut both = redis::pipe();
            both.add_command(link.clone()).ignore().add_command(new);
            let (created,): (Option<String>,) = self.connections.call(Call::Pipeline(both)).await?;
            if created.is_some() {
                return stored(&record);
            }
        }
        let mut invocation = self.scripts.issue.key(&key);
        invocation
            .key(format!("{key}:cooldown"))
            .key(format!("{key}:sends"))
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
        let reply: Vec<Value> = if resend == Resend::Keeps && !pipelined {
            // The new id's link goes with the script, on one connection: one
            // round trip. If the script keeps a pending verification instead,
            // or refuses, the link leads to no verification of that id and
            // expires unused.
            let (linked, reply) = tokio::join!(self.command::<()>(link), self.run(invocation));
            linked?;
            reply?
        } else {
            self.run(invocation).await?
        };
        Ok(match reply.as_slice() {
            [Value::Int(1), wait] => Opened::TooSoon {
                retry_after: wait_of(int(wait)),
            },
            [Value::Int(2), wait] => Opened::QuotaExceeded {
                retry_after: wait_of(int(wait)),
            },
            [Value::Int(0), Value::BulkString(stored)] => {
                let verification =
                    record::decode(stored, otp.ttl).ok_or_else(|| unreadable("a stored record"))?;
                if verification.sends > 1 && resend == Resend::Keeps {
                    // Kept: its link lives as long as its newest code.
                    let mut expire = redis::cmd("PEXPIRE");
                    expire.arg(self.id_key(&verification.id)).arg(ttl);
                    self.command::<i64>(expire).await?;
                }
                Opened::Stored(verification)
            }
            _ => return Err(unreadable("the send script's reply")),
        })
    }

    async fn find(&self, id: &VerificationId) -> Result<Option<Phone>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.id_key(id));
        let phone = self.command::<Option<String>>(get).await?;
        Ok(phone.and_then(|p| Phone::parse(&p).ok()))
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
        let key = self.key(phone);
        let mut invocation = self.scripts.verify.key(&key);
        invocation
            .key(format!("{key}:fails"))
            .key(format!("{key}:wait"))
            .arg(budget.free)
            .arg(millis(budget.first_delay))
            .arg(millis(budget.max_delay))
            .arg(budget.max_consecutive)
            .arg(millis(budget.memory))
            .arg(id.map_or("", VerificationId::as_str));
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
            _ => (VerifyOutcome::NotFound, None),
        };
        Ok(Checked {
            outcome,
            verification,
        })
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        let key = self.key(phone);
        let mut del = redis::cmd("DEL");
        del.arg(format!("{key}:fails")).arg(format!("{key}:wait"));
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
