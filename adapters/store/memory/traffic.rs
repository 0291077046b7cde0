//! The pumping breaker's counts (`ports::Traffic`) in the embedded store:
//! each group's hour and day slots and its block, slots dropped once no
//! window reads them (`domain::traffic_slots`). The breaker decides.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MemoryStore, State};
use crate::domain::traffic_slots::{kept_from, slots, KEEP_DAYS};
use crate::domain::{Block, ClientNet, Group, GroupTraffic, HourCount};
use crate::ports::{CountriesNoted, CountryNote, SendCounts, SendToCount, StoreError, Traffic};

/// How long a group outlives its last count: its history's length.
const KEPT_FOR: Duration = Duration::from_secs(KEEP_DAYS * 86_400);

#[derive(Clone, Copy)]
enum Count {
    Send,
    /// A send held back by a block: read, nothing counted.
    Read,
    /// A send counted at these unix ms, taken back.
    Unsend(u64),
    Approval,
}

/// Adds a country to a client's day (room checked before).
fn note_country(state: &mut State, now: Instant, note: &CountryNote<'_>) -> CountriesNoted {
    if let Some(held) = state.countries.get_mut(&note.client, now) {
        let at = held.iter().position(|c| c == note.country);
        let new = at.is_none();
        if new {
            held.push(note.country.to_owned());
        }
        let place = at.map_or(held.len(), |at| at + 1);
        let ends = state
            .countries
            .get(&note.client, now)
            .map_or(now, |(_, ends)| ends);
        return CountriesNoted {
            new,
            place: u32::try_from(place).unwrap_or(u32::MAX),
            day_left: ends - now,
        };
    }
    state
        .countries
        .insert(note.client, vec![note.country.to_owned()], now + note.window);
    CountriesNoted {
        new: true,
        place: 1,
        day_left: note.window,
    }
}

impl MemoryStore {
    fn count(&self, groups: &[Group], count: Count) -> Result<(u64, Vec<GroupTraffic>), StoreError> {
        self.with_state(|state, now, ms| self.count_in(state, now, ms, groups, count))
    }

    fn count_in(
        &self,
        state: &mut State,
        now: Instant,
        ms: u64,
        groups: &[Group],
        count: Count,
    ) -> Result<(u64, Vec<GroupTraffic>), StoreError> {
        let (hour, day) = slots(ms);
        let (hour_from, day_from) = kept_from(ms);
        let trimmed = |mut held: GroupTraffic| {
            held.hours.retain(|h| h.slot >= hour_from);
            held.days.retain(|(d, _)| *d >= day_from);
            held
        };
        if let Count::Read = count {
            let read = groups.iter().map(|group| {
                let held = state.traffic.get(group, now).map(|(held, _)| held.clone());
                trimmed(held.unwrap_or_default())
            });
            return Ok((ms, read.collect()));
        }
        if !matches!(count, Count::Unsend(_)) {
            let new = groups.iter().filter(|g| !state.traffic.has_slot(g)).count();
            self.room_for_clients(state, new)?;
        }
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let held = match (state.traffic.remove(group), count) {
                (Some(held), _) => held,
                // Nothing to take back from a group never counted.
                (None, Count::Unsend(_)) => continue,
                (None, _) => GroupTraffic::default(),
            };
            let mut held = trimmed(held);
            match count {
                Count::Send => hour_of(&mut held, hour).sent += 1,
                Count::Read => {}
                Count::Unsend(at_ms) => {
                    let (slot, _) = slots(at_ms);
                    if let Some(h) = held.hours.iter_mut().find(|h| h.slot == slot) {
                        h.sent = h.sent.saturating_sub(1);
                    }
                }
                Count::Approval => {
                    hour_of(&mut held, hour).approved += 1;
                    match held.days.iter_mut().find(|(d, _)| *d == day) {
                        Some((_, n)) => *n += 1,
                        None => held.days.push((day, 1)),
                    }
                }
            }
            out.push(held.clone());
            state.traffic.insert(group.clone(), held, now + KEPT_FOR);
        }
        Ok((ms, out))
    }
}

impl MemoryStore {
    /// Keeps `block` as the group's; with `only_if_none_on`, not while
    /// another is on at its start.
    fn keep_block(&self, group: &Group, block: &Block, only_if_none_on: bool) -> Result<bool, StoreError> {
        self.with_state(|state, now, _| {
            let mut held = match state.traffic.remove(group) {
                Some(held) => held,
                None => {
                    self.room_for_clients(state, 1)?;
                    GroupTraffic::default()
                }
            };
            let on = held.block.as_ref().is_some_and(|b| b.until_ms > block.since_ms);
            let kept = !(only_if_none_on && on);
            if kept {
                held.block = Some(block.clone());
            }
            state.traffic.insert(group.clone(), held, now + KEPT_FOR);
            Ok(kept)
        })
    }
}

/// The group's count of hour `slot`, made if it has none.
fn hour_of(held: &mut GroupTraffic, slot: u64) -> &mut HourCount {
    let at = match held.hours.iter().position(|h| h.slot == slot) {
        Some(at) => at,
        None => {
            held.hours.push(HourCount {
                slot,
                ..HourCount::default()
            });
            held.hours.sort_by_key(|h| h.slot);
            held.hours.iter().position(|h| h.slot == slot).unwrap_or_default()
        }
    };
    &mut held.hours[at]
}

#[async_trait]
impl Traffic for MemoryStore {
    async fn count_send(&self, send: &SendToCount<'_>) -> Result<SendCounts, StoreError> {
        // One lock for both, as Redis's one script.
        let (at_ms, held, traffic, countries) = self.with_state(|state, now, ms| {
            if let Some(note) = &send.country {
                let new = usize::from(!state.countries.has_slot(&note.client));
                let groups = send.groups.iter().filter(|g| !state.traffic.has_slot(g)).count();
                self.room_for_clients(state, new + groups)?;
            }
            let held = send.groups.iter().zip(send.holds).any(|(group, holds)| {
                *holds
                    && state
                        .traffic
                        .get(group, now)
                        .and_then(|(held, _)| held.block.as_ref())
                        .is_some_and(|b| b.until_ms > ms)
            });
            let count = if held { Count::Read } else { Count::Send };
            let (at_ms, traffic) = self.count_in(state, now, ms, send.groups, count)?;
            let countries = send.country.map(|note| note_country(state, now, &note));
            Ok::<_, StoreError>((at_ms, held, traffic, countries))
        })?;
        Ok(SendCounts {
            at_ms,
            traffic,
            held,
            countries,
        })
    }

    async fn uncount_send(&self, groups: &[Group], at_ms: u64) -> Result<(), StoreError> {
        self.count(groups, Count::Unsend(at_ms)).map(drop)
    }

    async fn count_approval(&self, groups: &[Group]) -> Result<(), StoreError> {
        self.count(groups, Count::Approval).map(drop)
    }

    async fn forget_hours(&self, group: &Group) -> Result<(), StoreError> {
        self.with_state(|state, now, _| {
            if let Some(held) = state.traffic.get_mut(group, now) {
                held.hours.clear();
            }
        });
        Ok(())
    }

    async fn start_block(&self, group: &Group, block: &Block) -> Result<bool, StoreError> {
        self.keep_block(group, block, true)
    }

    async fn set_block(&self, group: &Group, block: &Block) -> Result<(), StoreError> {
        self.keep_block(group, block, false).map(drop)
    }

    async fn forget_country(&self, client: ClientNet, country: &str) -> Result<(), StoreError> {
        self.with_state(|state, now, _| {
            if let Some(held) = state.countries.get_mut(&client, now) {
                held.retain(|c| c != country);
            }
        });
        Ok(())
    }

    async fn blocks(&self, since_ms: u64) -> Result<Vec<(Group, GroupTraffic)>, StoreError> {
        Ok(self.with_state(|state, now, _| {
            let mut blocked: Vec<_> = state
                .traffic
                .iter(now)
                .filter(|(_, held)| held.block.as_ref().is_some_and(|b| b.until_ms >= since_ms))
                .map(|(group, held)| (group.clone(), held.clone()))
                .collect();
            blocked.sort_by(|a, b| a.0.cmp(&b.0));
            blocked
        }))
    }
}
