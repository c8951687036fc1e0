//! Deduplication of consumed events within a bounded horizon of event time, in the memory of the
//! process that owns their partitions (the identities themselves are `core::identity`).
//!
//! A runtime partitions by key, so every copy of an event (a re-delivery, a replay after a
//! producer retry) lands on the partition of its first copy, and the replica that owns a partition
//! can decide "new or duplicate" without asking Postgres. The identities it accepted are stored
//! per partition in the checkpoint that stores their effects (`store::write`, with the newest event
//! time of each row), and loaded back before a partition's first record is processed
//! (`store::Store::partition_identities`), so a restart or a rebalance remembers what was counted.
//!
//! **The horizon** (`[serve] dedupe_horizon_seconds`). An identity is remembered while its event
//! time lies within the horizon behind the newest event time of its partition; older ones are
//! forgotten (swept from memory, not loaded after a restart, pruned from `event_ids`). So memory
//! and the load before a partition's first record grow with the events of one horizon, not with
//! history. An event whose identity is remembered is a duplicate, exactly as before. An event
//! older than its partition's horizon that is not remembered is [`Admission::Unverifiable`]:
//! with positions the checkpoint compares it with its key's last counted position
//! (`store::batch::Unverified`); without, it is counted as new and flagged
//! `beyond_dedupe_horizon`, visibly. See docs/architecture.md.

use crate::core::identity::unpack;
use crate::model::Side;
use rustc_hash::FxHashMap;

/// What an event's identity says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not seen within the horizon: a new event.
    New,
    /// Already counted: a re-delivery.
    Duplicate,
    /// Older than its partition's horizon and not remembered: counted as new, but a replay of an
    /// event counted long ago would look the same.
    Unverifiable,
}

/// One service side's remembered identities with the event time each was remembered at.
#[derive(Debug, Default)]
struct Memory {
    ids: FxHashMap<u128, i64>,
    /// The newest event time remembered; a sweep runs when it passes `next_sweep_ms`.
    newest_ms: i64,
    next_sweep_ms: i64,
}

/// A loaded partition: the service side its identities belong to and its newest event time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    owner: (usize, Side),
    newest_ms: Option<i64>,
}

/// The identities seen per (service, side) on the partitions this process has loaded. Looked up
/// for every record: identities are BLAKE3-derived, so the fast non-keyed Fx hash is safe here.
#[derive(Debug)]
pub struct Seen {
    memories: FxHashMap<(usize, Side), Memory>,
    /// Loaded partitions per topic (nested so a lookup borrows the topic name).
    clocks: FxHashMap<String, FxHashMap<i32, Clock>>,
    horizon_ms: i64,
}

impl Default for Seen {
    fn default() -> Self {
        Self::new(i64::MAX)
    }
}

impl Seen {
    /// Remember identities `horizon_ms` of event time behind each partition's newest event.
    pub fn new(horizon_ms: i64) -> Self {
        Self {
            memories: FxHashMap::default(),
            clocks: FxHashMap::default(),
            horizon_ms: horizon_ms.max(1),
        }
    }

    /// Whether a partition's stored identities still have to be loaded.
    pub fn needs_load(&self, topic: &str, partition: i32) -> bool {
        !self
            .clocks
            .get(topic)
            .is_some_and(|partitions| partitions.contains_key(&partition))
    }

    /// Add a partition's stored identities (rows as stored, each with its newest event time when
    /// known) to its service side's memory; `newest_ms` is the partition's newest counted event.
    pub fn load<'a>(
        &mut self,
        (topic, partition): (&str, i32),
        owner: (usize, Side),
        newest_ms: Option<i64>,
        rows: impl IntoIterator<Item = (&'a [u8], Option<i64>)>,
    ) -> usize {
        let memory = self.memories.entry(owner).or_default();
        let before = memory.ids.len();
        for (row, row_ms) in rows {
            // A row stored before its time was recorded counts as of the partition's newest.
            let at = row_ms.or(newest_ms).unwrap_or(i64::MIN);
            for id in unpack(row) {
                let t = memory.ids.entry(id).or_insert(at);
                *t = (*t).max(at);
            }
        }
        let added = memory.ids.len() - before;
        if let Some(n) = newest_ms {
            memory.newest_ms = memory.newest_ms.max(n);
        }
        self.clocks
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, Clock { owner, newest_ms });
        added
    }

    /// The partition left this process: load it again if it comes back. Its identities stay in
    /// memory: all of them were committed before the partition was released, so they remain true.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.clocks.get_mut(topic) {
            partitions.remove(&partition);
        }
    }

    /// Decide on an event of `topic`/`partition` at `event_ms`, and remember it unless it is a
    /// duplicate.
    pub fn insert(
        &mut self,
        (service, side): (usize, Side),
        (topic, partition): (&str, i32),
        identity: u128,
        event_ms: i64,
    ) -> Admission {
        let clock = self
            .clocks
            .get_mut(topic)
            .and_then(|p| p.get_mut(&partition));
        let floor = clock
            .as_ref()
            .and_then(|c| c.newest_ms)
            .map(|n| n.saturating_sub(self.horizon_ms));
        if let Some(c) = clock {
            c.newest_ms = Some(c.newest_ms.map_or(event_ms, |n| n.max(event_ms)));
        }
        let memory = self.memories.entry((service, side)).or_default();
        // One lookup per record (the hot path): the entry decides and remembers.
        match memory.ids.entry(identity) {
            std::collections::hash_map::Entry::Occupied(_) => return Admission::Duplicate,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(event_ms);
            }
        }
        if event_ms > memory.newest_ms {
            memory.newest_ms = event_ms;
        }
        let admission = if floor.is_some_and(|f| event_ms < f) {
            Admission::Unverifiable
        } else {
            Admission::New
        };
        if memory.newest_ms >= memory.next_sweep_ms {
            self.sweep((service, side));
        }
        admission
    }

    /// Forget the identities of `owner` older than the horizon behind the least advanced of its
    /// loaded partitions (a partition that lags keeps what it may still see again). Runs when the
    /// side's newest event time has moved an eighth of the horizon since the last sweep, so its
    /// cost is spread over that many events.
    fn sweep(&mut self, owner: (usize, Side)) {
        let least = self
            .clocks
            .values()
            .flat_map(|p| p.values())
            .filter(|c| c.owner == owner)
            .filter_map(|c| c.newest_ms)
            .min();
        let Some(memory) = self.memories.get_mut(&owner) else {
            return;
        };
        let step = (self.horizon_ms / 8).max(1);
        memory.next_sweep_ms = memory.newest_ms.saturating_add(step);
        if let Some(floor) = least.map(|n| n.saturating_sub(self.horizon_ms)) {
            memory.ids.retain(|_, t| *t >= floor);
        }
    }

    /// Identities remembered in all.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.memories.values().map(|m| m.ids.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::identity::pack;

    const B: (usize, Side) = (0, Side::Baseline);

    #[test]
    fn duplicates_are_recognized_per_service_side_and_after_a_reload() {
        let mut seen = Seen::default();
        let at = ("t", 3);
        assert_eq!(seen.insert(B, at, 42, 10), Admission::New);
        assert_eq!(seen.insert(B, at, 42, 10), Admission::Duplicate);
        // The other side and another service have memories of their own.
        assert_eq!(
            seen.insert((0, Side::Candidate), at, 42, 10),
            Admission::New
        );
        assert_eq!(seen.insert((1, Side::Baseline), at, 42, 10), Admission::New);

        // A restarted process knows nothing until the partition's rows are loaded.
        let mut restarted = Seen::default();
        assert!(restarted.needs_load("t", 3));
        let stored = pack(&[42, 43]);
        let added = restarted.load(at, B, Some(10), [(stored.as_slice(), Some(10))]);
        assert_eq!(added, 2);
        assert!(!restarted.needs_load("t", 3));
        assert!(restarted.needs_load("t", 4));
        assert_eq!(restarted.insert(B, at, 43, 10), Admission::Duplicate);
        assert_eq!(restarted.insert(B, at, 44, 10), Admission::New);
        assert_eq!(restarted.len(), 3);
        // Released and reassigned: loaded again, and what another owner added is learned.
        restarted.forget("t", 3);
        assert!(restarted.needs_load("t", 3));
        let later = pack(&[42, 43, 45]);
        assert_eq!(
            restarted.load(at, B, Some(10), [(later.as_slice(), None)]),
            1
        );
        assert_eq!(restarted.insert(B, at, 45, 10), Admission::Duplicate);
    }

    #[test]
    fn a_replay_within_the_horizon_is_exact_and_beyond_it_is_flagged() {
        let mut seen = Seen::new(1_000);
        let at = ("t", 0);
        seen.load(at, B, None, []);
        for i in 0..100u128 {
            assert_eq!(seen.insert(B, at, i, i as i64 * 100), Admission::New);
        }
        // Newest 9 900: the horizon reaches back to 8 900. A replay of 9 000..9 900 is exact.
        for i in 90..100u128 {
            assert_eq!(seen.insert(B, at, i, i as i64 * 100), Admission::Duplicate);
        }
        // Older identities were swept (memory bounded by the horizon, not by 100 events) …
        assert!(seen.len() < 30, "{} remembered", seen.len());
        // … so a replay of them cannot be recognized: counted, and flagged as such.
        assert_eq!(seen.insert(B, at, 5, 500), Admission::Unverifiable);
        // An old event never seen is just as unverifiable; a new one is new.
        assert_eq!(seen.insert(B, at, 1_000, 600), Admission::Unverifiable);
        assert_eq!(seen.insert(B, at, 1_001, 9_950), Admission::New);
    }

    #[test]
    fn a_lagging_partition_keeps_what_it_may_still_see() {
        let mut seen = Seen::new(1_000);
        let (fast, slow) = (("t", 0), ("t", 1));
        seen.load(fast, B, None, []);
        seen.load(slow, B, None, []);
        // The slow partition is at 500 while the fast one runs to 20 000.
        assert_eq!(seen.insert(B, slow, 7, 500), Admission::New);
        for i in 0..200u128 {
            seen.insert(B, fast, 1_000 + i, i as i64 * 100);
        }
        // Within the slow partition's own horizon: still exact.
        assert_eq!(seen.insert(B, slow, 7, 500), Admission::Duplicate);
    }

    #[test]
    fn a_restart_loads_rows_with_their_times_and_forgets_them_by_the_horizon() {
        let mut seen = Seen::new(1_000);
        let at = ("t", 0);
        let (old, recent) = (pack(&[1, 2]), pack(&[3]));
        seen.load(
            at,
            B,
            Some(5_000),
            [
                (old.as_slice(), Some(100)),
                (recent.as_slice(), Some(4_900)),
            ],
        );
        assert_eq!(seen.insert(B, at, 3, 4_900), Admission::Duplicate);
        // Moving on sweeps the old row's identities.
        for i in 0..20u128 {
            seen.insert(B, at, 100 + i, 5_000 + i as i64 * 100);
        }
        assert_eq!(seen.insert(B, at, 1, 100), Admission::Unverifiable);
    }
}
