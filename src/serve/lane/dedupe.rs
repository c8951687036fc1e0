//! Deduplication of consumed events, in the memory of the process that owns their partitions
//! (the identities themselves are `core::identity`).
//!
//! A runtime partitions by key, so every copy of an event (a re-delivery, a replay after a
//! producer retry) lands on the partition of its first copy, and the replica that owns a partition
//! can decide "new or duplicate" without asking Postgres. The identities it accepted are stored
//! per partition in the checkpoint that stores their effects (`store::write`), and loaded back
//! before a partition's first record is processed (`store::Store::partition_identities`), so a
//! restart or a rebalance remembers exactly what was counted. See docs/architecture.md.

use crate::core::identity::unpack;
use crate::model::Side;
use rustc_hash::{FxHashMap, FxHashSet};

/// The identities seen per (service, side) on the partitions this process has loaded. Looked up
/// for every record: identities are BLAKE3-derived, so the fast non-keyed Fx hash is safe here.
#[derive(Debug, Default)]
pub struct Seen {
    sets: FxHashMap<(usize, Side), FxHashSet<u128>>,
    /// Loaded partitions per topic (nested so a lookup borrows the topic name).
    loaded: FxHashMap<String, FxHashSet<i32>>,
}

impl Seen {
    /// Whether a partition's stored identities still have to be loaded.
    pub fn needs_load(&self, topic: &str, partition: i32) -> bool {
        !self
            .loaded
            .get(topic)
            .is_some_and(|partitions| partitions.contains(&partition))
    }

    /// Add a partition's stored identities (rows as stored) to its service side's set.
    pub fn load<'a>(
        &mut self,
        (topic, partition): (&str, i32),
        (service, side): (usize, Side),
        rows: impl IntoIterator<Item = &'a [u8]>,
    ) -> usize {
        let set = self.sets.entry((service, side)).or_default();
        let before = set.len();
        for row in rows {
            set.extend(unpack(row));
        }
        self.loaded
            .entry(topic.to_owned())
            .or_default()
            .insert(partition);
        set.len() - before
    }

    /// The partition left this process: load it again if it comes back. Its identities stay in
    /// the set: all of them were committed before the partition was released, so they remain true.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.loaded.get_mut(topic) {
            partitions.remove(&partition);
        }
    }

    /// True when the event is new (and now remembered), false for a duplicate.
    pub fn insert(&mut self, service: usize, side: Side, identity: u128) -> bool {
        self.sets
            .entry((service, side))
            .or_default()
            .insert(identity)
    }

    /// Identities remembered in all.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sets.values().map(FxHashSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::identity::pack;

    #[test]
    fn duplicates_are_recognized_per_service_side_and_after_a_reload() {
        let mut seen = Seen::default();
        assert!(seen.insert(0, Side::Baseline, 42));
        assert!(!seen.insert(0, Side::Baseline, 42));
        // The other side and another service have sets of their own.
        assert!(seen.insert(0, Side::Candidate, 42));
        assert!(seen.insert(1, Side::Baseline, 42));

        // A restarted process knows nothing until the partition's rows are loaded.
        let mut restarted = Seen::default();
        assert!(restarted.needs_load("t", 3));
        let stored = pack(&[42, 43]);
        let added = restarted.load(("t", 3), (0, Side::Baseline), [stored.as_slice()]);
        assert_eq!(added, 2);
        assert!(!restarted.needs_load("t", 3));
        assert!(restarted.needs_load("t", 4));
        assert!(!restarted.insert(0, Side::Baseline, 43));
        assert!(restarted.insert(0, Side::Baseline, 44));
        assert_eq!(restarted.len(), 3);
        // Released and reassigned: loaded again, and what another owner added is learned.
        restarted.forget("t", 3);
        assert!(restarted.needs_load("t", 3));
        let later = pack(&[42, 43, 45]);
        assert_eq!(
            restarted.load(("t", 3), (0, Side::Baseline), [later.as_slice()]),
            1
        );
        assert!(!restarted.insert(0, Side::Baseline, 45));
    }
}
