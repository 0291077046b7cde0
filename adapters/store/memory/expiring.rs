//! A map whose entries expire, swept a little on every call instead of by a
//! scan of the whole map: each key has one place in a queue ordered by
//! time, so a call removes only what has come due, in O(log n) each.
//!
//! A key keeps its slot (and its one place in the queue) when its value is
//! removed or replaced, until its place comes due; the queue never holds a
//! key twice, so it is never larger than the map.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

pub struct Expiring<K, V> {
    slots: HashMap<K, Slot<V>>,
    due: BinaryHeap<Reverse<(Instant, K)>>,
}

struct Slot<V> {
    value: Option<(V, Instant)>,
    /// When this key's place in the queue comes due.
    due_at: Instant,
}

impl<K: Hash + Ord + Clone, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            due: BinaryHeap::new(),
        }
    }
}

impl<K: Hash + Ord + Clone, V> Expiring<K, V> {
    /// Keys held, live or waiting for their place in the queue.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether `key` has a slot, so that setting it takes no new room.
    pub fn has_slot(&self, key: &K) -> bool {
        self.slots.contains_key(key)
    }

    /// The live value and its expiry.
    pub fn get(&self, key: &K, now: Instant) -> Option<(&V, Instant)> {
        match self.slots.get(key)?.value.as_ref()? {
            (value, expires_at) if *expires_at > now => Some((value, *expires_at)),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &K, now: Instant) -> Option<&mut V> {
        match self.slots.get_mut(key)?.value.as_mut()? {
            (value, expires_at) if *expires_at > now => Some(value),
            _ => None,
        }
    }

    pub fn insert(&mut self, key: K, value: V, expires_at: Instant) {
        if let Some(slot) = self.slots.get_mut(&key) {
            // The key keeps its place: when it comes due, a value still
            // alive gets a new place at its expiry, and one that expired
            // before then reads as gone meanwhile.
            slot.value = Some((value, expires_at));
            return;
        }
        self.due.push(Reverse((expires_at, key.clone())));
        self.slots.insert(
            key,
            Slot {
                value: Some((value, expires_at)),
                due_at: expires_at,
            },
        );
    }

    /// The live entries, in no order.
    pub fn iter(&self, now: Instant) -> impl Iterator<Item = (&K, &V)> {
        self.slots
            .iter()
            .filter_map(move |(key, slot)| match &slot.value {
                Some((value, expires_at)) if *expires_at > now => Some((key, value)),
                _ => None,
            })
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.slots.get_mut(key)?.value.take().map(|(value, _)| value)
    }

    /// Drops what has expired by `now`; a key whose value lives on gets
    /// a new place at its expiry.
    pub fn sweep(&mut self, now: Instant) {
        while let Some(Reverse((due_at, _))) = self.due.peek() {
            if *due_at > now {
                break;
            }
            let Some(Reverse((_, key))) = self.due.pop() else {
                break;
            };
            let live = self.slots.get(&key).and_then(|slot| match &slot.value {
                Some((_, expires_at)) if *expires_at > now => Some(*expires_at),
                _ => None,
            });
            match live {
                Some(expires_at) => {
                    if let Some(slot) = self.slots.get_mut(&key) {
                        slot.due_at = expires_at;
                    }
                    self.due.push(Reverse((expires_at, key)));
                }
                None => {
                    self.slots.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_keys_leave_at_their_time_and_live_ones_stay() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut map = Expiring::default();
        map.insert("a", 1, at(10));
        map.insert("b", 2, at(20));
        map.sweep(at(11));
        assert_eq!(map.len(), 1);
        assert!(map.get(&"a", at(11)).is_none());
        assert_eq!(map.get(&"b", at(11)).map(|(v, _)| *v), Some(2));
    }

    #[test]
    fn an_extended_key_keeps_one_place_and_moves_it() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut map = Expiring::default();
        for i in 0..100 {
            map.insert("k", i, at(10 + i));
        }
        assert_eq!(map.due.len(), 1, "one place however often it is set");
        map.sweep(at(50));
        assert_eq!(map.get(&"k", at(50)).map(|(v, _)| *v), Some(99));
        map.sweep(at(200));
        assert_eq!((map.len(), map.due.len()), (0, 0));
    }

    #[test]
    fn a_removed_key_holds_its_slot_until_due_and_reuses_it() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut map = Expiring::default();
        map.insert("k", 1, at(10));
        assert_eq!(map.remove(&"k"), Some(1));
        assert!(map.get(&"k", at(1)).is_none());
        assert!(map.has_slot(&"k"));
        map.insert("k", 2, at(5));
        assert_eq!(map.due.len(), 1);
        assert!(
            map.get(&"k", at(6)).is_none(),
            "expired at 5, though its place is at 10"
        );
        map.sweep(at(10));
        assert_eq!(map.len(), 0);
    }
}
