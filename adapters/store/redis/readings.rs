//! What this instance last read of each breaker group's hash, so a send in
//! the same hour reads only what can change within it: the hour's sends
//! and approvals, today's approvals and the block (`traffic_count.lua`). The hours before it
//! and the days before today are fixed once their hour has passed, so the
//! reading stays exact. One exception, in the stricter direction: a send
//! counted in the last moment of an hour and taken back in the next is
//! still counted in the reading until the hour after.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::traffic_slots::slots;
use crate::domain::GroupTraffic;

/// Readings kept at most: a few MB. Past it, those of earlier hours go,
/// then all; a send with no reading reads its hash whole.
const MOST: usize = 10_000;

/// A group's hash as read at its hour slot.
#[derive(Debug, Clone)]
pub(super) struct Reading {
    pub hour: u64,
    pub traffic: GroupTraffic,
}

#[derive(Default)]
pub(super) struct Readings(Mutex<HashMap<String, Arc<Reading>>>);

impl Readings {
    /// The reading of each key, if this instance holds one.
    pub fn of(&self, keys: &[String]) -> Vec<Option<Arc<Reading>>> {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter().map(|key| held.get(key).cloned()).collect()
    }

    /// Keeps what a send found of `key` at unix ms `at_ms`.
    pub fn keep(&self, key: &str, at_ms: u64, traffic: &GroupTraffic) {
        let hour = slots(at_ms).0;
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.len() >= MOST && !held.contains_key(key) {
            held.retain(|_, r| r.hour >= hour);
            if held.len() >= MOST {
                held.clear();
            }
        }
        let reading = Arc::new(Reading {
            hour,
            traffic: traffic.clone(),
        });
        held.insert(key.to_owned(), reading);
    }
}

/// `reading` with what the script read of the hour laid over it (`now`:
/// the hour's sends and approvals, today's approvals and the block, all
/// as they are now).
pub(super) fn overlay(reading: &Reading, now: GroupTraffic) -> GroupTraffic {
    let today = reading.hour / 24;
    let mut traffic = reading.traffic.clone();
    traffic.hours.retain(|h| h.slot != reading.hour);
    traffic.hours.extend(now.hours);
    traffic.hours.sort_by_key(|h| h.slot);
    traffic.days.retain(|(day, _)| *day != today);
    traffic.days.extend(now.days);
    traffic.days.sort_unstable();
    traffic.block = now.block;
    traffic
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HourCount;

    const HOUR_MS: u64 = 3_600_000;

    #[test]
    fn the_hour_read_replaces_the_reading_s_hour_and_block_only() {
        let hour = 500_000;
        let readings = Readings::default();
        let before = GroupTraffic {
            hours: vec![
                HourCount {
                    slot: hour - 1,
                    sent: 7,
                    approved: 2,
                },
                HourCount {
                    slot: hour,
                    sent: 3,
                    approved: 1,
                },
            ],
            days: vec![(20_000, 4)],
            block: None,
        };
        readings.keep("k", hour * HOUR_MS + 5, &before);
        let held = readings.of(&["k".into(), "other".into()]);
        assert!(held[1].is_none());
        let reading = held[0].as_ref().unwrap();
        assert_eq!(reading.hour, hour);
        let now = GroupTraffic {
            hours: vec![HourCount {
                slot: hour,
                sent: 9,
                approved: 0,
            }],
            days: Vec::new(),
            block: None,
        };
        let merged = overlay(reading, now);
        assert_eq!(
            merged.hours,
            vec![
                before.hours[0],
                HourCount {
                    slot: hour,
                    sent: 9,
                    approved: 0
                }
            ]
        );
        assert_eq!(merged.days, before.days);
    }

    #[test]
    fn readings_stay_bounded() {
        let readings = Readings::default();
        for i in 0..MOST + 10 {
            readings.keep(&i.to_string(), 0, &GroupTraffic::default());
        }
        let held = readings.0.lock().unwrap().len();
        assert!(held <= MOST, "{held}");
        // Of an earlier hour, all go for a later one.
        readings.keep("late", HOUR_MS * 3, &GroupTraffic::default());
        for i in 0..MOST {
            readings.keep(&format!("x{i}"), HOUR_MS * 3, &GroupTraffic::default());
        }
        assert!(readings.0.lock().unwrap().len() <= MOST);
    }
}
