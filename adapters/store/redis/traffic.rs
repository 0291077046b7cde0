//! The pumping breaker's counts (`ports::Traffic`) in Redis: a hash per
//! group in its country's slot (`otp:traffic:{NG}:+2348031234`), counted
//! and pruned by `scripts/traffic.lua` in one call for a phone's groups,
//! even on a cluster; and an index of blocked groups by when their block
//! ends, for `otpd fraud status`. The breaker decides; this only keeps.

use std::sync::Arc;

use async_trait::async_trait;
use redis::{ScriptInvocation, Value};

use super::readings::{overlay, Reading};
use super::{int, millis, split_reply, unknown, unreadable, wait, RedisStore};
use crate::domain::traffic_slots::{kept_from, slots, KEEP_DAYS, KEEP_HOURS};
use crate::domain::{Block, ClientNet, Figures, Group, GroupTraffic, HourCount, Level, Window};
use crate::ports::{CountriesNoted, CountryNote, SendCounts, SendToCount, StoreError, Traffic};

/// The field holding a group's block.
const BLOCK: &str = "b";

impl RedisStore {
    fn traffic_key(&self, group: &Group) -> String {
        format!("{}traffic:{{{}}}:{}", self.key_prefix, group.country, group.name)
    }

    /// A client's countries of the day, in its counters' slot.
    fn countries_key(&self, client: ClientNet) -> String {
        format!("{}ip:{{{client}}}:countries", self.key_prefix)
    }

    fn blocks_key(&self) -> String {
        format!("{}traffic:blocks", self.key_prefix)
    }

    /// The groups' keys, and for a send, this instance's readings of them.
    pub(super) fn reads(&self, groups: &[Group], send: bool) -> Reads {
        let keys: Vec<String> = groups.iter().map(|g| self.traffic_key(g)).collect();
        let held = if send { self.readings.of(&keys) } else { Vec::new() };
        Reads { keys, held }
    }

    /// Runs `traffic.lua` on `groups`: `what`, the hour slot for an
    /// unsend, and a country to note for a client's day.
    async fn count(
        &self,
        groups: &[Group],
        what: &str,
        slot: u64,
        country: Option<&CountryNote<'_>>,
    ) -> Result<(u64, Vec<Value>), StoreError> {
        let reads = self.reads(groups, false);
        self.count_holding(&reads, &[], what, slot, country)
            .await
            .map(|(now, _, values)| (now, values))
    }

    /// [`RedisStore::count`], a send held back by the blocks `holds` names
    /// (while on) counting nothing: the ms, whether it was held, the values.
    async fn count_holding(
        &self,
        reads: &Reads,
        holds: &[bool],
        what: &str,
        slot: u64,
        country: Option<&CountryNote<'_>>,
    ) -> Result<(u64, bool, Vec<Value>), StoreError> {
        let mut invocation = self.scripts.traffic.prepare_invoke();
        self.count_parts(&mut invocation, reads, holds, what, slot, country);
        let reply: Vec<Value> = self.run(invocation).await?;
        counted_reply(&reply)
    }

    /// Adds `count_traffic`'s keys and its 9 arguments to `invocation`
    /// (`traffic.lua`, or `open.lua` after its own): keys and arguments
    /// are two lists, so each lands after what is already in its own.
    pub(super) fn count_parts(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        reads: &Reads,
        holds: &[bool],
        what: &str,
        slot: u64,
        country: Option<&CountryNote<'_>>,
    ) {
        for key in &reads.keys {
            invocation.key(key);
        }
        if let Some(note) = country {
            invocation.key(self.countries_key(note.client));
        }
        invocation
            .arg(what)
            .arg(slot)
            .arg(KEEP_HOURS)
            .arg(KEEP_DAYS)
            .arg(reads.keys.len())
            .arg(country.map_or("", |n| n.country))
            .arg(country.map_or(0, |n| millis(n.window)))
            .arg(
                holds
                    .iter()
                    .map(|h| if *h { '1' } else { '0' })
                    .collect::<String>(),
            )
            .arg(
                reads
                    .held
                    .iter()
                    .map(|r| r.as_ref().map_or(0, |r| r.hour).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
    }

    /// Each group's counts as the script answers them (its hash whole, or
    /// the hour laid over this instance's reading), kept as the group's
    /// reading, less any slot no window reads any more (the script drops
    /// those once an hour).
    fn groups_traffic(
        &self,
        reads: &Reads,
        values: &[Value],
        at_ms: u64,
    ) -> Result<Vec<GroupTraffic>, StoreError> {
        let (hour_from, day_from) = kept_from(at_ms);
        let mut all = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let bad = || unreadable(format!("{value:?} for a group's counts"));
            let Value::Array(parts) = value else {
                return Err(bad());
            };
            let [Value::BulkString(kind), Value::Array(fields)] = &parts[..] else {
                return Err(bad());
            };
            let mut held = match (&kind[..], reads.held.get(i)) {
                (b"all", _) => traffic(fields)?,
                (b"hour", Some(Some(reading))) => overlay(reading, traffic(fields)?),
                _ => return Err(bad()),
            };
            held.hours.retain(|h| h.slot >= hour_from);
            held.days.retain(|(d, _)| *d >= day_from);
            if let Some(key) = reads.keys.get(i) {
                self.readings.keep(key, at_ms, &held);
            }
            all.push(held);
        }
        Ok(all)
    }

    /// What a send's count found, from `count_traffic`'s reply on one
    /// server (the client's countries last, when the send noted one).
    pub(super) fn send_counts(
        &self,
        reads: &Reads,
        reply: &[Value],
        noted: bool,
    ) -> Result<SendCounts, StoreError> {
        let (at_ms, held, mut values) = counted_reply(reply)?;
        let countries = match noted {
            true => Some(countries(
                &values.pop().ok_or_else(|| unreadable("no countries".into()))?,
            )?),
            false => None,
        };
        Ok(SendCounts {
            at_ms,
            traffic: self.groups_traffic(reads, &values, at_ms)?,
            held,
            countries,
        })
    }
}

/// A send's groups' keys, and this instance's reading of each, if any.
pub(super) struct Reads {
    keys: Vec<String>,
    held: Vec<Option<Arc<Reading>>>,
}

/// The keys `count_parts` adds for `send`.
pub(super) fn count_keys(send: &SendToCount<'_>) -> usize {
    send.groups.len() + usize::from(send.country.is_some())
}

/// `count_traffic`'s reply: the ms, whether a block held the send, and
/// the rest (each group's fields, then the client's countries).
fn counted_reply(reply: &[Value]) -> Result<(u64, bool, Vec<Value>), StoreError> {
    match split_reply("traffic", reply)? {
        ("counted", [now, rest @ ..]) => Ok((int(now)?, false, rest.to_vec())),
        ("held", [now, rest @ ..]) => Ok((int(now)?, true, rest.to_vec())),
        (name, _) => Err(unknown("traffic", name)),
    }
}

/// A client's countries as the script answers them.
fn countries(value: &Value) -> Result<CountriesNoted, StoreError> {
    match value {
        Value::Array(parts) => match &parts[..] {
            [added, place, left] => Ok(CountriesNoted {
                new: int::<u8>(added)? == 1,
                place: int(place)?,
                day_left: wait(left)?,
            }),
            _ => Err(unreadable(format!("{parts:?} for a client's countries"))),
        },
        other => Err(unreadable(format!("{other:?} for a client's countries"))),
    }
}

impl RedisStore {
    /// `block.lua`, then the index when the block was kept.
    async fn keep_block(
        &self,
        group: &Group,
        block: &Block,
        only_if_none_on: bool,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.block.key(self.traffic_key(group));
        invocation
            .arg(encode(block))
            .arg(block.since_ms)
            .arg(u8::from(only_if_none_on))
            .arg(KEEP_DAYS * 86_400_000);
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("block", &reply)? {
            ("set", []) => {}
            ("held", []) => return Ok(false),
            (name, _) => return Err(unknown("block", name)),
        }
        // The index lives in a slot of its own: a second call.
        let index = redis::cmd("ZADD")
            .arg(self.blocks_key())
            .arg(block.until_ms)
            .arg(member(group))
            .clone();
        self.command::<i64>(index).await?;
        Ok(true)
    }
}

/// A group's hash, as its fields and values.
fn traffic(fields: &[Value]) -> Result<GroupTraffic, StoreError> {
    let mut held = GroupTraffic::default();
    for pair in fields.chunks(2) {
        let [Value::BulkString(field), Value::BulkString(value)] = pair else {
            return Err(unreadable(format!("{pair:?} in a group's counts")));
        };
        let (field, value) = (String::from_utf8_lossy(field), String::from_utf8_lossy(value));
        if field == BLOCK {
            held.block = Some(decode(&value).ok_or_else(|| unreadable(format!("the block {value:?}")))?);
            continue;
        }
        let bad = || unreadable(format!("the count {field:?} = {value:?}"));
        let (kind, slot) = field.split_at(1);
        let slot: u64 = slot.parse().map_err(|_| bad())?;
        let n: u32 = value.parse().map_err(|_| bad())?;
        match kind {
            "s" | "a" => {
                let at = match held.hours.iter().position(|h| h.slot == slot) {
                    Some(at) => at,
                    None => {
                        held.hours.push(HourCount {
                            slot,
                            ..HourCount::default()
                        });
                        held.hours.len() - 1
                    }
                };
                if kind == "s" {
                    held.hours[at].sent = n;
                } else {
                    held.hours[at].approved = n;
                }
            }
            "d" => held.days.push((slot, n)),
            _ => return Err(bad()),
        }
    }
    held.hours.sort_by_key(|h| h.slot);
    held.days.sort_unstable();
    Ok(held)
}

/// A block as its field holds it: since, until, strikes, window, sent,
/// approved, threshold, enforced (1 or 0).
fn encode(block: &Block) -> String {
    let f = &block.figures;
    format!(
        "{},{},{},{},{},{},{},{}",
        block.since_ms,
        block.until_ms,
        block.strikes,
        f.window.as_str(),
        f.sent,
        f.approved,
        f.threshold,
        u8::from(block.enforced)
    )
}

fn decode(text: &str) -> Option<Block> {
    let parts: Vec<&str> = text.split(',').collect();
    let [since, until, strikes, window, sent, approved, threshold, enforced] = parts[..] else {
        return None;
    };
    Some(Block {
        since_ms: since.parse().ok()?,
        until_ms: until.parse().ok()?,
        strikes: strikes.parse().ok()?,
        figures: Figures {
            window: match window {
                "hour" => Window::Hour,
                "day" => Window::Day,
                _ => return None,
            },
            sent: sent.parse().ok()?,
            approved: approved.parse().ok()?,
            threshold: threshold.parse().ok()?,
        },
        enforced: match enforced {
            "1" => true,
            "0" => false,
            _ => return None,
        },
    })
}

/// A group as the index names it: its country and its name.
fn member(group: &Group) -> String {
    format!("{} {}", group.country, group.name)
}

fn group_of(member: &str) -> Option<Group> {
    let (country, name) = member.split_once(' ')?;
    Some(Group {
        level: if country == name {
            Level::Country
        } else {
            Level::Prefix
        },
        country: country.to_owned(),
        name: name.to_owned(),
    })
}

#[async_trait]
impl Traffic for RedisStore {
    async fn count_send(&self, send: &SendToCount<'_>) -> Result<SendCounts, StoreError> {
        let reads = self.reads(send.groups, true);
        if !self.connections.is_cluster() || send.groups.is_empty() {
            // On one server, one script.
            let mut invocation = self.scripts.traffic.prepare_invoke();
            self.count_parts(
                &mut invocation,
                &reads,
                send.holds,
                "send",
                0,
                send.country.as_ref(),
            );
            let reply: Vec<Value> = self.run(invocation).await?;
            return self.send_counts(&reads, &reply, send.country.is_some());
        }
        // On a cluster the client's countries live in its counters' slot,
        // apart from the groups': two calls at once.
        let groups = self.count_holding(&reads, send.holds, "send", 0, None);
        let noted = async {
            match &send.country {
                Some(note) => self.count(&[], "send", 0, Some(note)).await.map(Some),
                None => Ok(None),
            }
        };
        let (groups, noted) = futures_util::future::join(groups, noted).await;
        let countries = match noted? {
            Some((_, values)) => values.first().map(countries).transpose()?,
            None => None,
        };
        let (at_ms, held, values) = groups?;
        Ok(SendCounts {
            at_ms,
            traffic: self.groups_traffic(&reads, &values, at_ms)?,
            held,
            countries,
        })
    }

    async fn uncount_send(&self, groups: &[Group], at_ms: u64) -> Result<(), StoreError> {
        self.count(groups, "unsend", slots(at_ms).0, None).await.map(drop)
    }

    async fn count_approval(&self, groups: &[Group]) -> Result<(), StoreError> {
        self.count(groups, "approve", 0, None).await.map(drop)
    }

    async fn forget_hours(&self, group: &Group) -> Result<(), StoreError> {
        self.count(std::slice::from_ref(group), "forget", 0, None)
            .await
            .map(drop)
    }

    async fn start_block(&self, group: &Group, block: &Block) -> Result<bool, StoreError> {
        self.keep_block(group, block, true).await
    }

    async fn set_block(&self, group: &Group, block: &Block) -> Result<(), StoreError> {
        self.keep_block(group, block, false).await.map(drop)
    }

    async fn forget_country(&self, client: ClientNet, country: &str) -> Result<(), StoreError> {
        let mut invocation = self.scripts.forget_country.key(self.countries_key(client));
        invocation.arg(country);
        let reply: Vec<Value> = self.run(invocation).await?;
        match split_reply("forget_country", &reply)? {
            ("forgotten", []) => Ok(()),
            (name, _) => Err(unknown("forget_country", name)),
        }
    }

    async fn blocks(&self, since_ms: u64) -> Result<Vec<(Group, GroupTraffic)>, StoreError> {
        let index = self.blocks_key();
        // Blocks that ended before `since_ms` are of no more use to list.
        let trim = redis::cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(format!("({since_ms}"))
            .clone();
        self.command::<i64>(trim).await?;
        let members: Vec<String> = self
            .command(redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1).clone())
            .await?;
        let mut blocked = Vec::with_capacity(members.len());
        for group in members.iter().filter_map(|m| group_of(m)) {
            let fields: Vec<Value> = self
                .command(redis::cmd("HGETALL").arg(self.traffic_key(&group)).clone())
                .await?;
            let held = traffic(&fields)?;
            if held.block.as_ref().is_some_and(|b| b.until_ms >= since_ms) {
                blocked.push((group, held));
            }
        }
        blocked.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(blocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_reads_back_as_written() {
        let block = Block {
            since_ms: 1,
            until_ms: 43_200_001,
            strikes: 2,
            figures: Figures {
                window: Window::Day,
                sent: 21,
                approved: 0,
                threshold: 20,
            },
            enforced: true,
        };
        assert_eq!(decode(&encode(&block)), Some(block));
        assert_eq!(decode("1,2,3"), None);
        let group = Group {
            level: Level::Prefix,
            country: "NG".into(),
            name: "+2348031234".into(),
        };
        assert_eq!(group_of(&member(&group)), Some(group));
    }
}
