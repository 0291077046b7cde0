//! The outbox on Redis, shared by every instance: Redis Streams with one
//! consumer group. Jobs spread over `shards` streams, each under its own hash
//! tag (`otp:events:{3}`) with its retries (a sorted set by due time) and its
//! dead letters (a capped stream) beside it, so each step touches one slot
//! and the shards spread over a cluster's masters.
//!
//! A job is XADDed before the API call answers; a worker XREADGROUPs it,
//! delivers, and settles it with one script (XACK and XDEL, and a ZADD for a
//! retry or an XADD to the dead letters). A worker that dies holding jobs
//! leaves them pending; another claims them (XAUTOCLAIM) once they have been
//! idle longer than a delivery can take. Delivery is at least once: a job
//! delivered just before its worker died is delivered again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::Script;
use tokio::sync::Notify;

use super::queue::{Claimed, DeadLetter, Fanout, Job, Queue, Taken};
use crate::adapters::redis::{Call, Connections};
use crate::domain::Event;
use crate::ports::{EventOutbox, OutboxError, StoreError};

const GROUP: &str = "otpd";
/// Dead letters kept per shard (about: trimmed by whole stream nodes).
const DEAD_KEPT: usize = 10_000;
/// Retries moved per shard per promotion.
const PROMOTE_AT_ONCE: usize = 100;
const PROMOTE_EVERY: Duration = Duration::from_secs(1);

pub struct RedisOutbox {
    connections: Connections,
    prefix: String,
    shards: usize,
    fanout: Fanout,
    /// Jobs each shard may hold: the outbox's bound over the shards.
    per_shard: usize,
    /// This worker's name in the group.
    consumer: String,
    /// A claimed job idle this long is taken over from its worker.
    claim_after: Duration,
    scripts: Scripts,
    timers: Mutex<Timers>,
    /// Where the next read starts, so no shard waits behind the others.
    next_shard: AtomicUsize,
    added: Notify,
}

struct Scripts {
    publish: Script,
    ack: Script,
    claim: Script,
    settle: Script,
    promote: Script,
    group: Script,
}

#[derive(Default)]
struct Timers {
    groups_made: bool,
    promoted: Option<Instant>,
    claimed: Option<Instant>,
}

impl RedisOutbox {
    pub fn new(
        connections: Connections,
        prefix: &str,
        shards: usize,
        fanout: Fanout,
        max_jobs: usize,
        claim_after: Duration,
    ) -> Self {
        let shards = shards.max(1);
        Self {
            connections,
            prefix: prefix.to_owned(),
            shards,
            fanout,
            per_shard: max_jobs.div_ceil(shards),
            consumer: format!("otpd-{}", hex::encode(rand::random::<[u8; 6]>())),
            claim_after,
            scripts: Scripts {
                publish: Script::new(include_str!("scripts/publish.lua")),
                ack: Script::new(include_str!("scripts/ack.lua")),
                claim: Script::new(include_str!("scripts/claim.lua")),
                settle: Script::new(include_str!("scripts/settle.lua")),
                promote: Script::new(include_str!("scripts/promote.lua")),
                group: Script::new(include_str!("scripts/group.lua")),
            },
            timers: Mutex::default(),
            next_shard: AtomicUsize::new(0),
            added: Notify::new(),
        }
    }

    fn stream(&self, shard: usize) -> String {
        format!("{}events:{{{shard}}}", self.prefix)
    }

    fn retries(&self, shard: usize) -> String {
        format!("{}events:{{{shard}}}:retry", self.prefix)
    }

    fn dead(&self, shard: usize) -> String {
        format!("{}events:{{{shard}}}:dead", self.prefix)
    }

    fn disabled_key(&self) -> String {
        format!("{}events:disabled", self.prefix)
    }

    /// The shard of an API call's events: by phone, so they go in one step.
    fn shard_of(&self, events: &[Event]) -> usize {
        let phone = events
            .first()
            .and_then(|e| e.phone.as_ref())
            .map_or("", |p| p.as_str());
        let hash = phone.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        usize::try_from(hash % self.shards as u64).unwrap_or(0)
    }

    async fn command<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        self.connections.call(Call::Command(cmd)).await
    }

    /// Which maintenance is due now, marking it done.
    fn due(&self) -> (bool, bool, bool) {
        let mut timers = self
            .timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let make_groups = !timers.groups_made;
        let promote = timers.promoted.is_none_or(|t| t.elapsed() >= PROMOTE_EVERY);
        if promote {
            timers.promoted = Some(Instant::now());
        }
        // Looking twice per claim period finds a lost job within 1.5 periods.
        let claim = timers.claimed.is_none_or(|t| t.elapsed() >= self.claim_after / 2);
        if claim {
            timers.claimed = Some(Instant::now());
        }
        (make_groups, promote, claim)
    }

    fn set_groups_made(&self, made: bool) {
        self.timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .groups_made = made;
    }

    async fn make_groups(&self) -> Result<(), StoreError> {
        for shard in 0..self.shards {
            let mut invocation = self.scripts.group.key(self.stream(shard));
            invocation.arg(GROUP);
            let _: i64 = self.connections.call(Call::Script(invocation)).await?;
        }
        Ok(())
    }

    /// Moves the due retries of `shards` (which must share a node) into
    /// their streams, in one call.
    async fn promote(&self, shards: &[usize]) -> Result<(), StoreError> {
        let mut invocation = self.scripts.promote.prepare_invoke();
        for shard in shards {
            invocation.key(self.stream(*shard)).key(self.retries(*shard));
        }
        invocation.arg(super::unix_now_ms()).arg(PROMOTE_AT_ONCE);
        let _: i64 = self.connections.call(Call::Script(invocation)).await?;
        Ok(())
    }

    /// `shards` as the calls that reach them, sent together: all in one on
    /// one server; one each on a cluster, where each shard is its own slot.
    fn calls(&self, shards: Vec<usize>) -> Vec<Vec<usize>> {
        if self.connections.is_cluster() {
            shards.into_iter().map(|shard| vec![shard]).collect()
        } else if shards.is_empty() {
            Vec::new()
        } else {
            vec![shards]
        }
    }

    /// Every shard's due retries.
    async fn promote_all(&self) -> Result<(), StoreError> {
        let calls = self.calls((0..self.shards).collect());
        let promoted = futures_util::future::join_all(calls.iter().map(|shards| self.promote(shards))).await;
        promoted.into_iter().collect()
    }

    /// Jobs held too long by other workers, from every shard.
    async fn claim_all(&self, max: usize) -> Result<Vec<Claimed>, StoreError> {
        let calls = self.calls((0..self.shards).collect());
        let claims = calls.iter().map(|shards| self.claim(shards, max));
        let mut taken = Vec::new();
        for claimed in futures_util::future::join_all(claims).await {
            taken.extend(claimed?);
        }
        Ok(taken)
    }

    /// Up to `max` jobs from each of `shards` that other workers have held
    /// past `claim_after`, in one call (their streams must share a node).
    async fn claim(&self, shards: &[usize], max: usize) -> Result<Vec<Claimed>, StoreError> {
        let mut invocation = self.scripts.claim.prepare_invoke();
        for shard in shards {
            invocation.key(self.stream(*shard));
        }
        invocation
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(u64::try_from(self.claim_after.as_millis()).unwrap_or(u64::MAX))
            .arg(max);
        let replies: Vec<StreamRangeReply> = self.connections.call(Call::Script(invocation)).await?;
        Ok(shards
            .iter()
            .zip(replies)
            .flat_map(|(shard, reply)| self.claimed(*shard, reply.ids))
            .collect())
    }

    /// Up to `max` new jobs from each of `shards`, in one XREADGROUP (their
    /// streams must share a node), and whether a shard gave all `max`, so
    /// may hold more.
    async fn read(&self, shards: &[usize], max: usize) -> Result<Taken, StoreError> {
        let streams: Vec<String> = shards.iter().map(|shard| self.stream(*shard)).collect();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(&streams);
        for _ in shards {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = self.command(cmd).await?;
        let mut taken = Taken::default();
        // Each stream in the reply by its name back to its shard.
        for stream in reply.into_iter().flat_map(|r| r.keys) {
            let Some(at) = streams.iter().position(|name| *name == stream.key) else {
                continue;
            };
            taken.more |= stream.ids.len() >= max;
            taken.jobs.extend(self.claimed(shards[at], stream.ids));
        }
        Ok(taken)
    }

    /// New jobs from every shard, starting at `first`: about `max` from
    /// each call (a reply of `max` from each of 16 streams is hundreds of
    /// KB that the worker delivers 32 at a time anyway).
    async fn read_all(&self, first: usize, max: usize) -> Result<Taken, StoreError> {
        let calls = self.calls((0..self.shards).map(|i| (first + i) % self.shards).collect());
        let reads = calls
            .iter()
            .map(|shards| self.read(shards, max.div_ceil(shards.len()).max(4)));
        let mut taken = Taken::default();
        for read in futures_util::future::join_all(reads).await {
            let read = read?;
            taken.jobs.extend(read.jobs);
            taken.more |= read.more;
        }
        Ok(taken)
    }

    /// Entries as claimed jobs, less any that isn't one (otpd never writes
    /// such an entry).
    fn claimed(&self, shard: usize, ids: Vec<StreamId>) -> Vec<Claimed> {
        ids.into_iter()
            .filter_map(|entry| {
                let job = entry.get::<String>("j").and_then(|j| Job::decode(&j))?;
                Some(Claimed {
                    job,
                    token: format!("{shard}/{}", entry.id),
                })
            })
            .collect()
    }

    async fn settle(&self, claimed: &Claimed, how: Settle<'_>) -> Result<(), StoreError> {
        let Some((shard, id)) = entry_of(claimed) else {
            return Ok(());
        };
        let mut invocation = self.scripts.settle.key(self.stream(shard));
        invocation
            .key(self.retries(shard))
            .key(self.dead(shard))
            .arg(GROUP)
            .arg(id);
        match how {
            Settle::Retry { due_ms, job } => invocation.arg("retry").arg(due_ms).arg(job.encode()),
            Settle::Dead(letter) => invocation
                .arg("dead")
                .arg(DEAD_KEPT)
                .arg(serde_json::to_string(&letter).unwrap_or_default()),
        };
        let _: i64 = self.connections.call(Call::Script(invocation)).await?;
        Ok(())
    }

    async fn dead_entries(&self, shard: usize) -> Result<Vec<(String, DeadLetter)>, StoreError> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.dead(shard)).arg("-").arg("+");
        let reply: StreamRangeReply = self.command(cmd).await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|entry| {
                let letter = serde_json::from_str(&entry.get::<String>("d")?).ok()?;
                Some((entry.id, letter))
            })
            .collect())
    }
}

/// A claimed job's shard and stream entry, from its token.
fn entry_of(claimed: &Claimed) -> Option<(usize, &str)> {
    let (shard, id) = claimed.token.split_once('/')?;
    Some((shard.parse().ok()?, id))
}

enum Settle<'a> {
    Retry { due_ms: u64, job: &'a Job },
    Dead(DeadLetter),
}

#[async_trait]
impl EventOutbox for RedisOutbox {
    async fn publish(&self, events: &[Event]) -> Result<(), OutboxError> {
        let jobs = self.fanout.jobs(events);
        if jobs.is_empty() {
            return Ok(());
        }
        let shard = self.shard_of(events);
        let mut invocation = self.scripts.publish.key(self.stream(shard));
        // -1: no bound (Event::must_be_kept).
        let bound = match events.iter().any(Event::must_be_kept) {
            true => -1,
            false => i64::try_from(self.per_shard).unwrap_or(i64::MAX),
        };
        invocation.key(self.retries(shard)).arg(bound);
        for job in &jobs {
            invocation.arg(job.encode());
        }
        let kept: i64 = self.connections.call(Call::Script(invocation)).await?;
        if kept < 0 {
            return Err(OutboxError::Full(self.per_shard * self.shards));
        }
        self.added.notify_one();
        Ok(())
    }
}

#[async_trait]
impl Queue for RedisOutbox {
    async fn take(&self, max: usize) -> Result<Taken, StoreError> {
        let (make_groups, promote, claim) = self.due();
        if make_groups {
            self.make_groups().await?;
            self.set_groups_made(true);
        }
        let first = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards;
        // Each step's calls go out together: on a cluster each shard may be
        // on another node, and on one server they share a write.
        if promote {
            self.promote_all().await?;
        }
        let claimed = match claim {
            true => self.claim_all(max).await?,
            false => Vec::new(),
        };
        match self.read_all(first, max).await {
            Ok(mut taken) => {
                // A claim may have left more behind: look again at once.
                taken.more |= !claimed.is_empty();
                taken.jobs.extend(claimed);
                Ok(taken)
            }
            Err(e) => {
                // Perhaps the streams and their group were deleted: they
                // are made again on the next take.
                self.set_groups_made(false);
                Err(e)
            }
        }
    }

    async fn done(&self, claimed: &[Claimed]) -> Result<(), StoreError> {
        let mut by_shard: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for (shard, id) in claimed.iter().filter_map(entry_of) {
            by_shard.entry(shard).or_default().push(id);
        }
        let calls = self.calls(by_shard.keys().copied().collect());
        let acks = calls.into_iter().map(|shards| {
            let mut invocation = self.scripts.ack.prepare_invoke();
            invocation.arg(GROUP);
            for shard in shards {
                let ids = &by_shard[&shard];
                invocation.key(self.stream(shard)).arg(ids.len()).arg(ids);
            }
            async move { self.connections.call::<i64>(Call::Script(invocation)).await }
        });
        for acked in futures_util::future::join_all(acks).await {
            acked?;
        }
        Ok(())
    }

    async fn retry(&self, claimed: &Claimed, wait: Duration) -> Result<(), StoreError> {
        let next = Job {
            attempt: claimed.job.attempt + 1,
            ..claimed.job.clone()
        };
        let due_ms = super::unix_now_ms() + u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.settle(claimed, Settle::Retry { due_ms, job: &next }).await
    }

    async fn dead(&self, claimed: &Claimed, reason: &str) -> Result<(), StoreError> {
        let letter = DeadLetter {
            job: claimed.job.clone(),
            reason: reason.to_owned(),
            at: super::unix_now(),
        };
        self.settle(claimed, Settle::Dead(letter)).await
    }

    async fn disabled(&self) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("HKEYS");
        cmd.arg(self.disabled_key());
        self.command(cmd).await
    }

    async fn disable(&self, endpoint: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.disabled_key()).arg(endpoint).arg(super::unix_now());
        self.command::<i64>(cmd).await.map(drop)
    }

    async fn enable(&self, endpoint: &str) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.disabled_key()).arg(endpoint);
        Ok(self.command::<i64>(cmd).await? > 0)
    }

    async fn sizes(&self) -> Result<(u64, u64), StoreError> {
        let (mut waiting, mut dead) = (0, 0);
        for shard in 0..self.shards {
            let mut xlen = redis::cmd("XLEN");
            xlen.arg(self.stream(shard));
            let mut zcard = redis::cmd("ZCARD");
            zcard.arg(self.retries(shard));
            let mut dlen = redis::cmd("XLEN");
            dlen.arg(self.dead(shard));
            waiting += self.command::<u64>(xlen).await? + self.command::<u64>(zcard).await?;
            dead += self.command::<u64>(dlen).await?;
        }
        Ok((waiting, dead))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut letters = Vec::new();
        for shard in 0..self.shards {
            letters.extend(self.dead_entries(shard).await?.into_iter().map(|(_, l)| l));
        }
        letters.sort_by_key(|l| l.at);
        Ok(letters)
    }

    async fn replay(&self, event_id: Option<&str>) -> Result<usize, StoreError> {
        let mut replayed = 0;
        for shard in 0..self.shards {
            for (id, letter) in self.dead_entries(shard).await? {
                if event_id.is_some_and(|e| e != letter.job.event_id) {
                    continue;
                }
                // Added before it is removed: a failure between the two
                // delivers it twice rather than never (at least once).
                let job = Job {
                    attempt: 0,
                    ..letter.job
                };
                let mut add = redis::cmd("XADD");
                add.arg(self.stream(shard)).arg("*").arg("j").arg(job.encode());
                let _: String = self.command(add).await?;
                let mut del = redis::cmd("XDEL");
                del.arg(self.dead(shard)).arg(&id);
                let _: i64 = self.command(del).await?;
                replayed += 1;
            }
        }
        Ok(replayed)
    }

    async fn wait(&self, idle: Duration) {
        let _ = tokio::time::timeout(idle, self.added.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use super::RedisOutbox;
    use crate::adapters::events::queue::{Claimed, Fanout, Queue};
    use crate::adapters::metrics::Metrics;
    use crate::adapters::redis::Connections;
    use crate::domain::{Event, EventKind, Phone};
    use crate::ports::EventOutbox;

    fn ids(jobs: &[Claimed]) -> Vec<String> {
        let mut ids: Vec<String> = jobs.iter().map(|c| c.job.event_id.clone()).collect();
        ids.sort();
        ids
    }

    /// A worker that dies holding jobs loses them to another once they have
    /// been idle past `claim_after`, each once, from every shard (on one
    /// server in one call).
    #[tokio::test]
    async fn a_dead_workers_jobs_are_taken_over() {
        let url = std::env::var("OTPD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("test:claim:{}:", hex::encode(rand::random::<[u8; 6]>()));
        let claim_after = Duration::from_millis(300);
        let worker = || {
            let metrics = Arc::new(Metrics::new());
            let connections = Connections::open(&url, Duration::from_secs(2), 1, metrics, "events").unwrap();
            let fanout = Fanout(BTreeMap::from([("app".to_owned(), Vec::new())]));
            RedisOutbox::new(connections, &prefix, 4, fanout, 1000, claim_after)
        };
        let (dead, heir) = (worker(), worker());
        let mut published = Vec::new();
        for i in 0..12 {
            let phone = Phone::parse(&format!("+1415555{:04}", 2600 + i)).unwrap();
            let event = Event::new(Some(phone), None, EventKind::Canceled, 0);
            published.push(event.id.clone());
            dead.publish(std::slice::from_ref(&event)).await.unwrap();
        }
        published.sort();
        let held = dead.take(100).await.unwrap().jobs;
        assert_eq!(ids(&held), published, "the first worker takes every job");
        assert!(
            heir.take(100).await.unwrap().jobs.is_empty(),
            "jobs held for less than claim_after stay with their worker"
        );
        tokio::time::sleep(claim_after * 2).await;
        let taken = heir.take(100).await.unwrap().jobs;
        assert_eq!(
            ids(&taken),
            published,
            "the heir takes over every idle job, each once"
        );
        heir.done(&taken).await.unwrap();
        assert_eq!(
            heir.sizes().await.unwrap(),
            (0, 0),
            "settled jobs leave nothing behind"
        );
        assert!(
            dead.take(100).await.unwrap().jobs.is_empty(),
            "nothing is left to take"
        );
        let streams: Vec<String> = (0..4).map(|shard| dead.stream(shard)).collect();
        let mut del = redis::cmd("DEL");
        del.arg(&streams);
        let _: i64 = dead.command(del).await.unwrap();
    }

    /// A take says whether it left due jobs behind, so the worker reads
    /// again at once only then: one phone's 10 jobs sit in one shard, and a
    /// take of about 8 over 4 shards reads up to 4 from each.
    #[tokio::test]
    async fn a_take_says_whether_more_are_due() {
        let url = std::env::var("OTPD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("test:more:{}:", hex::encode(rand::random::<[u8; 6]>()));
        let metrics = Arc::new(Metrics::new());
        let connections = Connections::open(&url, Duration::from_secs(2), 1, metrics, "events").unwrap();
        let fanout = Fanout(BTreeMap::from([("app".to_owned(), Vec::new())]));
        let outbox = RedisOutbox::new(connections, &prefix, 4, fanout, 1000, Duration::from_secs(60));
        let phone = Phone::parse("+14155552600").unwrap();
        let events: Vec<Event> = (0..10)
            .map(|_| Event::new(Some(phone.clone()), None, EventKind::Canceled, 0))
            .collect();
        outbox.publish(&events).await.unwrap();
        let mut sizes = Vec::new();
        loop {
            let taken = outbox.take(8).await.unwrap();
            sizes.push((taken.jobs.len(), taken.more));
            outbox.done(&taken.jobs).await.unwrap();
            if !taken.more {
                break;
            }
        }
        assert_eq!(sizes, [(4, true), (4, true), (2, false)]);
        let streams: Vec<String> = (0..4).map(|shard| outbox.stream(shard)).collect();
        let mut del = redis::cmd("DEL");
        del.arg(&streams);
        let _: i64 = outbox.command(del).await.unwrap();
    }
}
