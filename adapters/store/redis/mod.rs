//! The Redis store: one hash-tagged key per phone (`otp:{+14155552671}`)
//! holding its whole state (`domain::PhoneState`, packed as `record.rs`
//! says), and one Lua script per operation that repeats the domain's rule
//! on it (`domain/rules.rs`, line by line, under the Rust names), so every
//! call is one atomic round trip to one slot, on one server or a cluster
//! alike. On one server, the client's and the service's counters and the
//! client's waits join the phone's script (`admit`, `guess`); on a cluster
//! they live on other nodes, so those calls go in steps
//! (`ports::admit_in_steps`, `ports::guess_in_steps`). A verification's id
//! carries its phone (`domain::IdSeal`), so a call by id needs no lookup.
//!
//! Scripts answer with a name and what goes with it (`{'quota', ms}`); a
//! name this side doesn't know is an error, never a guess.

mod readings;
mod record;
mod spend;
mod traffic;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation, Value};

use crate::adapters::redis::{Call, Connections};

use crate::adapters::metrics::Metrics;
use crate::domain::{
    Admitted, Bucket, Checked, Claim, ClientNet, CodeHash, Delivery, DeliveryReport, GuessBudget,
    GuessCeiling, Idempotency, Named, Opened, PendingOtp, Phone, Quota, Scope, SendMode, SmsReceipt, Taken,
    Verification, VerificationId, VerifyOutcome,
};
use crate::ports::{
    admit_and_count_in_steps, admit_in_steps, guess_in_steps, Counters, Deliveries, Guess, Guesser,
    IdempotencyKeys, OtpStore, SendCounts, SendRules, SendToCount, StoreError, Verifications,
};

pub struct RedisStore {
    connections: Connections,
    key_prefix: String,
    scripts: Scripts,
    /// The breaker groups' hashes as this instance last read them.
    readings: readings::Readings,
}

struct Scripts {
    open: Script,
    check: Script,
    end: Script,
    status: Script,
    withdraw: Script,
    record_delivery: Script,
    update_delivery: Script,
    clear_guesses: Script,
    client_wait: Script,
    note_guess: Script,
    take: Script,
    give_back: Script,
    claim: Script,
    traffic: Script,
    block: Script,
    forget_country: Script,
    spend: Script,
}

/// A script that reads or writes a phone's state or a client's waits: the
/// layout's Lua side and the shared rules (`scripts/record.lua`) joined
/// onto its body. EVALSHA sends only the SHA, so the prelude costs nothing
/// per call.
macro_rules! with_layout {
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
                open: Script::new(concat!(
                    include_str!("scripts/record.lua"),
                    include_str!("scripts/traffic_count.lua"),
                    include_str!("scripts/open.lua")
                )),
                check: with_layout!("scripts/check.lua"),
                end: with_layout!("scripts/end.lua"),
                status: with_layout!("scripts/status.lua"),
                withdraw: with_layout!("scripts/withdraw.lua"),
                record_delivery: with_layout!("scripts/record_delivery.lua"),
                update_delivery: with_layout!("scripts/update_delivery.lua"),
                clear_guesses: with_layout!("scripts/clear_guesses.lua"),
                client_wait: with_layout!("scripts/client_wait.lua"),
                note_guess: with_layout!("scripts/note_guess.lua"),
                take: Script::new(include_str!("scripts/take.lua")),
                give_back: Script::new(include_str!("scripts/give_back.lua")),
                claim: Script::new(include_str!("scripts/claim.lua")),
                traffic: Script::new(concat!(
                    include_str!("scripts/traffic_count.lua"),
                    include_str!("scripts/traffic.lua")
                )),
                block: Script::new(include_str!("scripts/block.lua")),
                forget_country: Script::new(include_str!("scripts/forget_country.lua")),
                spend: Script::new(include_str!("scripts/spend.lua")),
            },
            readings: readings::Readings::default(),
        })
    }

    /// The phone's key; the braces make Redis Cluster hash only the phone,
    /// so every key of a phone shares one slot.
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

    /// A client's wrong guesses by phone in a row (`domain::ClientGuesses`),
    /// in its counters' slot.
    fn guesses_key(&self, client: ClientNet) -> String {
        format!("{}ip:{{{client}}}:guesses", self.key_prefix)
    }

    /// What the phone's key holds, and the unix ms it expires (-1: never,
    /// -2: no key), for the tests that hold the scripts to the domain.
    #[cfg(test)]
    async fn held(&self, phone: &Phone) -> (Option<Vec<u8>>, i64) {
        let key = self.key(phone);
        let packed = self.command(redis::cmd("GET").arg(&key).clone()).await.unwrap();
        let at = self
            .command(redis::cmd("PEXPIRETIME").arg(&key).clone())
            .await
            .unwrap();
        (packed, at)
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

/// A script's reply as its name and what follows it.
fn split_reply<'a>(script: &str, reply: &'a [Value]) -> Result<(&'a str, &'a [Value]), StoreError> {
    let name = match reply.first() {
        Some(Value::BulkString(name)) => std::str::from_utf8(name).ok(),
        Some(Value::SimpleString(name)) => Some(name.as_str()),
        _ => None,
    };
    let name = name.ok_or_else(|| unreadable(format!("a reply to {script}.lua without a name")))?;
    Ok((name, &reply[1..]))
}

/// A reply whose name (or what follows it) this side doesn't know.
fn unknown(script: &str, name: &str) -> StoreError {
    unreadable(format!("a reply to {script}.lua ({name:?})"))
}

fn unreadable(what: String) -> StoreError {
    StoreError::Unavailable(format!("Redis returned {what} otpd can't read").into())
}

/// A whole number of a reply.
fn int<T: TryFrom<i64>>(value: &Value) -> Result<T, StoreError> {
    match value {
        Value::Int(n) => T::try_from(*n).map_err(|_| unreadable(format!("the number {n}"))),
        _ => Err(unreadable(format!("{value:?} for a number"))),
    }
}

/// A reply's ms as a wait; none below 0, as the domain's waits saturate.
fn wait(value: &Value) -> Result<Duration, StoreError> {
    int::<i64>(value).map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()))
}

/// A packed verification and Redis's unix ms as the caller sees it, with
/// the attempts of the way it was named (`Record::view`).
fn view(packed: &Value, now: &Value, named: Named<'_>) -> Result<Verification, StoreError> {
    let Value::BulkString(packed) = packed else {
        return Err(unreadable(format!("{packed:?} for a verification")));
    };
    let record = record::record(packed).ok_or_else(|| unreadable("a verification".to_owned()))?;
    Ok(record.view(named, int(now)?))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A quota's limit as the scripts take it: 0 for one that is off.
fn limit_of(quota: &Quota) -> u32 {
    if quota.is_off() {
        0
    } else {
        quota.limit
    }
}

/// The ceiling as the scripts take it: its limit (0: off) and window ms.
fn ceiling_args(invocation: &mut ScriptInvocation<'_>, ceiling: &GuessCeiling) {
    let limit = if ceiling.is_off() { 0 } else { ceiling.limit };
    invocation.arg(limit).arg(millis(ceiling.window));
}

/// A client's waits as the scripts take them (`budget_of` in record.lua);
/// none: all 0, off.
fn budget_args(invocation: &mut ScriptInvocation<'_>, waits: Option<&GuessBudget>) {
    let waits = waits.unwrap_or(&GuessBudget::OFF);
    invocation
        .arg(waits.free)
        .arg(millis(waits.first_delay))
        .arg(millis(waits.max_delay))
        .arg(waits.max_consecutive)
        .arg(millis(waits.memory));
}

/// A delivery as the scripts take it: provider, message id, state, unix s
/// and, if it has one, its error code.
fn delivery_args(invocation: &mut ScriptInvocation<'_>, delivery: &Delivery) {
    invocation
        .arg(&delivery.provider)
        .arg(&delivery.message_id)
        .arg(delivery.state.as_str())
        .arg(delivery.updated_at);
    if let Some(code) = &delivery.error_code {
        invocation.arg(code);
    }
}

impl RedisStore {
    /// [`OtpStore::admit_and_count`] in one round trip on one server: the
    /// quotas' counters, the phone's key and the pumping breaker's keys in
    /// one script. On a cluster they live on other nodes: it is not used.
    async fn open_with(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
        count: Option<&SendToCount<'_>>,
    ) -> Result<Admitted<(Opened, Option<SendCounts>)>, StoreError> {
        let mut invocation = self.scripts.open.key(self.key(phone));
        for (bucket, _) in quotas {
            invocation.key(self.bucket_key(*bucket));
        }
        let (mode, joins, after) = match mode {
            SendMode::New => ("new", "", ""),
            SendMode::Resend(id) => ("resend", id.as_str(), ""),
            SendMode::KeepPending => ("keep", "", ""),
            SendMode::Replace => ("replace", "", ""),
            SendMode::Fallback { id, after } => ("fallback", id.as_str(), after.as_str()),
        };
        let limits = &rules.limits;
        invocation
            .arg(otp.id.as_str())
            .arg(otp.scope.as_str())
            .arg(otp.hash.as_bytes().as_slice())
            .arg(millis(otp.ttl))
            .arg(otp.attempts)
            .arg(otp.sent_at)
            .arg(otp.channel.map_or("", record::channel_letter))
            .arg(record::channel_letters(&otp.next))
            .arg(mode)
            .arg(joins)
            .arg(after)
            .arg(millis(limits.resend_after))
            .arg(limit_of(&limits.per_phone))
            .arg(millis(limits.per_phone.window))
            .arg(u8::from(!limits.is_off()));
        ceiling_args(&mut invocation, &rules.ceiling);
        invocation.arg(count.map_or(0, traffic::count_keys));
        for (_, quota) in quotas {
            // As given: the memory store refuses a quota of 0 too.
            invocation.arg(quota.limit).arg(millis(quota.window));
        }
        let reads = count.map(|send| self.reads(send.groups, true));
        if let (Some(send), Some(reads)) = (count, &reads) {
            let country = send.country.as_ref();
            self.count_parts(&mut invocation, reads, send.holds, "send", 0, country);
        }
        if let Some(delivery) = &otp.delivery {
            delivery_args(&mut invocation, delivery);
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        let done = |opened| Ok(Admitted::Done((opened, None)));
        match split_reply("open", &reply)? {
            ("stored", [record, now, rest @ ..]) => {
                let stored = Opened::Stored(view(record, now, Named::ById(&otp.id))?);
                let counts = match (count, &reads, rest) {
                    (Some(send), Some(reads), [Value::Array(counted)]) => {
                        Some(self.send_counts(reads, counted, send.country.is_some())?)
                    }
                    (None, _, []) => None,
                    _ => return Err(unreadable(format!("{rest:?} for a send's count"))),
                };
                Ok(Admitted::Done((stored, counts)))
            }
            ("too_soon", [ms]) => done(Opened::TooSoon {
                retry_after: wait(ms)?,
            }),
            ("quota", [ms]) => done(Opened::QuotaExceeded {
                retry_after: wait(ms)?,
            }),
            ("ceiling", [ms]) => done(Opened::GuessCeiling {
                retry_after: wait(ms)?,
            }),
            ("not_found", []) => done(Opened::NotFound),
            ("refused", [ms, which]) => Ok(Admitted::Refused {
                refused: int(which)?,
                retry_after: wait(ms)?,
            }),
            (name, _) => Err(unknown("open", name)),
        }
    }

    /// [`OtpStore::check`], and on one server [`OtpStore::guess`] in one
    /// round trip: the client's counter and waits join the phone's script
    /// when `guesser` is given.
    async fn check_with(
        &self,
        guesser: Option<&Guesser>,
        phone: &Phone,
        guess: &Guess<'_>,
    ) -> Result<Admitted<Checked>, StoreError> {
        let mut invocation = self.scripts.check.key(self.key(phone));
        let (quota, waits) = match guesser {
            Some(guesser) => {
                invocation
                    .key(self.bucket_key(Bucket::VerifiesFrom(guesser.client)))
                    .key(self.guesses_key(guesser.client));
                let by_phone = guess.named == Named::ByPhone;
                (guesser.quota, by_phone.then_some(&guesser.waits))
            }
            None => (Quota::OFF, None),
        };
        let id = match guess.named {
            Named::ById(id) => id.as_str(),
            Named::ByPhone => "",
        };
        invocation.arg(guess.scope.as_str()).arg(id);
        ceiling_args(&mut invocation, &guess.ceiling);
        invocation.arg(limit_of(&quota)).arg(millis(quota.window));
        budget_args(&mut invocation, waits);
        for candidate in guess.candidates {
            invocation.arg(candidate.as_bytes().as_slice());
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        let done = |outcome, verification| {
            Ok(Admitted::Done(Checked {
                outcome,
                verification,
            }))
        };
        match split_reply("check", &reply)? {
            ("approved", [record, now]) => {
                done(VerifyOutcome::Approved, Some(view(record, now, guess.named)?))
            }
            ("mismatch", [left, blocked, record, now]) => done(
                VerifyOutcome::Mismatch {
                    attempts_remaining: int(left)?,
                    phone_blocked: int::<u8>(blocked)? == 1,
                },
                Some(view(record, now, guess.named)?),
            ),
            ("locked", [ms]) => done(
                VerifyOutcome::Locked {
                    expires_in: wait(ms)?,
                },
                None,
            ),
            ("not_found", []) => done(VerifyOutcome::NotFound, None),
            ("throttled", [ms]) => done(
                VerifyOutcome::Throttled {
                    retry_after: wait(ms)?,
                },
                None,
            ),
            ("refused", [ms, which]) => Ok(Admitted::Refused {
                refused: int(which)?,
                retry_after: wait(ms)?,
            }),
            (name, _) => Err(unknown("check", name)),
        }
    }

    /// Runs a script on the phone's key with `args`.
    async fn on_phone(
        &self,
        script: &Script,
        phone: &Phone,
        args: &[&[u8]],
    ) -> Result<Vec<Value>, StoreError> {
        let mut invocation = script.key(self.key(phone));
        for arg in args {
            invocation.arg(*arg);
        }
        self.run(invocation).await
    }
}

/// The outcome a call without quotas came to.
fn without_quotas<T>(admitted: Admitted<T>) -> Result<T, StoreError> {
    match admitted {
        Admitted::Done(done) => Ok(done),
        Admitted::Refused { .. } => Err(unreadable(
            "a quota's refusal where none was asked for".to_owned(),
        )),
    }
}

#[async_trait]
impl Verifications for RedisStore {
    async fn open(
        &self,
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Opened, StoreError> {
        without_quotas(self.open_with(&[], phone, otp, mode, rules, None).await?).map(|(opened, _)| opened)
    }

    async fn end(
        &self,
        phone: &Phone,
        scope: &Scope,
        id: &VerificationId,
    ) -> Result<Option<Verification>, StoreError> {
        let args: [&[u8]; 2] = [scope.as_str().as_bytes(), id.as_str().as_bytes()];
        let reply = self.on_phone(&self.scripts.end, phone, &args).await?;
        match split_reply("end", &reply)? {
            ("ended", [record, now]) => Ok(Some(view(record, now, Named::ById(id))?)),
            ("not_found", []) => Ok(None),
            (name, _) => Err(unknown("end", name)),
        }
    }

    async fn check(&self, phone: &Phone, guess: &Guess<'_>) -> Result<Checked, StoreError> {
        without_quotas(self.check_with(None, phone, guess).await?)
    }

    async fn status(
        &self,
        phone: &Phone,
        scope: &Scope,
        named: Named<'_>,
    ) -> Result<Option<Verification>, StoreError> {
        let id = match named {
            Named::ById(id) => id.as_str(),
            Named::ByPhone => "",
        };
        let args: [&[u8]; 2] = [scope.as_str().as_bytes(), id.as_bytes()];
        let reply = self.on_phone(&self.scripts.status, phone, &args).await?;
        match split_reply("status", &reply)? {
            ("found", [record, now]) => Ok(Some(view(record, now, named)?)),
            ("not_found", []) => Ok(None),
            (name, _) => Err(unknown("status", name)),
        }
    }

    async fn withdraw(&self, phone: &Phone, hash: &CodeHash) -> Result<(), StoreError> {
        let reply = self
            .on_phone(&self.scripts.withdraw, phone, &[hash.as_bytes()])
            .await?;
        match split_reply("withdraw", &reply)? {
            ("withdrawn" | "not_found", []) => Ok(()),
            (name, _) => Err(unknown("withdraw", name)),
        }
    }

    async fn clear_guesses(&self, phone: &Phone) -> Result<bool, StoreError> {
        let reply = self.on_phone(&self.scripts.clear_guesses, phone, &[]).await?;
        match split_reply("clear_guesses", &reply)? {
            ("cleared", []) => Ok(true),
            ("none", []) => Ok(false),
            (name, _) => Err(unknown("clear_guesses", name)),
        }
    }
}

#[async_trait]
impl Counters for RedisStore {
    async fn take(&self, bucket: Bucket, quota: Quota) -> Result<Taken, StoreError> {
        let mut invocation = self.scripts.take.key(self.bucket_key(bucket));
        invocation.arg(quota.limit).arg(millis(quota.window));
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("take", &reply)? {
            ("granted", []) => Ok(Taken::Granted),
            ("exhausted", [ms]) => Ok(Taken::Exhausted {
                retry_after: wait(ms)?,
            }),
            (name, _) => Err(unknown("take", name)),
        }
    }

    async fn give_back(&self, bucket: Bucket) -> Result<(), StoreError> {
        let invocation = self.scripts.give_back.key(self.bucket_key(bucket));
        self.run::<i64>(invocation).await.map(drop)
    }

    async fn client_wait(
        &self,
        client: ClientNet,
        waits: &GuessBudget,
    ) -> Result<Option<Duration>, StoreError> {
        let mut invocation = self.scripts.client_wait.key(self.guesses_key(client));
        budget_args(&mut invocation, Some(waits));
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("client_wait", &reply)? {
            ("throttled", [ms]) => Ok(Some(wait(ms)?)),
            ("free", []) => Ok(None),
            (name, _) => Err(unknown("client_wait", name)),
        }
    }

    async fn note_guess(
        &self,
        client: ClientNet,
        right: bool,
        waits: &GuessBudget,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.note_guess.key(self.guesses_key(client));
        invocation.arg(u8::from(right));
        budget_args(&mut invocation, Some(waits));
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("note_guess", &reply)? {
            ("noted", []) => Ok(()),
            (name, _) => Err(unknown("note_guess", name)),
        }
    }
}

#[async_trait]
impl Deliveries for RedisStore {
    async fn record_delivery(
        &self,
        phone: &Phone,
        hash: &CodeHash,
        receipt: &SmsReceipt,
        at: u64,
        link_ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_delivery.key(self.key(phone));
        invocation.arg(hash.as_bytes().as_slice());
        delivery_args(&mut invocation, &Delivery::queued(receipt, at));
        let reply: Vec<Value> = self.run(invocation).await?;
        let recorded = match split_reply("record_delivery", &reply)? {
            ("recorded", []) => true,
            ("not_found", []) => false,
            (name, _) => return Err(unknown("record_delivery", name)),
        };
        if recorded && receipt.tracked {
            let mut set = redis::cmd("SET");
            set.arg(self.link_key(&receipt.provider, &receipt.message_id))
                .arg(phone.as_str())
                .arg("PX")
                .arg(millis(link_ttl));
            self.command::<()>(set).await?;
        }
        Ok(())
    }

    async fn update_delivery(
        &self,
        report: &DeliveryReport,
    ) -> Result<Option<(Phone, Verification)>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(self.link_key(&report.provider, &report.message_id));
        let Some(phone) = self.command::<Option<String>>(get).await? else {
            return Ok(None);
        };
        let mut invocation = self.scripts.update_delivery.key(self.key_of(&phone));
        invocation
            .arg(&report.provider)
            .arg(&report.message_id)
            .arg(report.state.as_str())
            .arg(report.at);
        if let Some(code) = &report.error_code {
            invocation.arg(code);
        }
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("update_delivery", &reply)? {
            // The link holds what this store wrote: an E.164 phone.
            ("updated", [packed, now]) => {
                let Value::BulkString(packed) = packed else {
                    return Err(unreadable(format!("{packed:?} for a verification")));
                };
                let record = record::record(packed).ok_or_else(|| unreadable("a verification".to_owned()))?;
                let verification = record.view(Named::ById(&record.id), int(now)?);
                Ok(Phone::parse(&phone).ok().map(|phone| (phone, verification)))
            }
            ("unchanged", []) => Ok(None),
            (name, _) => Err(unknown("update_delivery", name)),
        }
    }
}

#[async_trait]
impl IdempotencyKeys for RedisStore {
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
}

#[async_trait]
impl OtpStore for RedisStore {
    async fn admit(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
    ) -> Result<Admitted<Opened>, StoreError> {
        if self.connections.is_cluster() {
            return admit_in_steps(self, quotas, phone, otp, mode, rules).await;
        }
        Ok(
            match self.open_with(quotas, phone, otp, mode, rules, None).await? {
                Admitted::Done((opened, _)) => Admitted::Done(opened),
                Admitted::Refused { refused, retry_after } => Admitted::Refused { refused, retry_after },
            },
        )
    }

    async fn admit_and_count(
        &self,
        quotas: &[(Bucket, Quota)],
        phone: &Phone,
        otp: &PendingOtp,
        mode: &SendMode,
        rules: &SendRules,
        count: Option<&SendToCount<'_>>,
    ) -> Result<Admitted<(Opened, Option<SendCounts>)>, StoreError> {
        if self.connections.is_cluster() {
            return admit_and_count_in_steps(self, quotas, phone, otp, mode, rules, count).await;
        }
        self.open_with(quotas, phone, otp, mode, rules, count).await
    }

    async fn guess(
        &self,
        guesser: &Guesser,
        phone: &Phone,
        guess: &Guess<'_>,
    ) -> Result<Admitted<Checked>, StoreError> {
        if self.connections.is_cluster() {
            return guess_in_steps(self, guesser, phone, guess).await;
        }
        self.check_with(Some(guesser), phone, guess).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.command::<String>(redis::cmd("PING")).await.map(drop)
    }

    async fn concerns(&self) -> Vec<String> {
        // An evicting Redis may drop a phone's state or a quota under memory
        // pressure: attempts, the ceiling's count and the quotas start over.
        // INFO, not CONFIG GET, which managed services often disable.
        let mut info = redis::cmd("INFO");
        info.arg("memory");
        let info = self
            .connections
            .uncounted::<String>(Call::Command(info))
            .await
            .unwrap_or_default();
        let policy = info
            .lines()
            .find_map(|line| line.strip_prefix("maxmemory_policy:"))
            .map(str::trim);
        match policy {
            Some(policy) if policy != "noeviction" => vec![format!(
                "Redis's maxmemory-policy is {policy}: under memory pressure it may evict a phone's \
                 state or a quota, and with them its wrong-code counts; set it to noeviction"
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
