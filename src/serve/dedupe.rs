//! Deduplication of consumed events, in the memory of the process that owns their partitions.
//!
//! A runtime partitions by key, so every copy of an event (a re-delivery, a replay after a
//! producer retry) lands on the partition of its first copy, and the replica that owns a partition
//! can decide "new or duplicate" without asking Postgres. The identities it accepted are stored
//! per partition in the checkpoint that stores their effects (`store::write`), and loaded back
//! before a partition's first record is processed (`store::Store::partition_identities`), so a
//! restart or a rebalance remembers exactly what was counted. See docs/architecture.md.

use crate::config::Side;
use rustc_hash::{FxHashMap, FxHashSet};

/// Bytes per stored identity.
pub const IDENTITY_BYTES: usize = 16;
/// One event in this many is sampled for delivery delays (chosen by identity: both sides agree).
pub const DELIVERY_SAMPLE: u128 = 32;

/// The 128-bit identity of a distinct event: what `diff` deduplicates on (key, position,
/// operation) plus the content digest, so a conflicting duplicate is kept and cannot hide drift.
pub fn event_identity(key_hash: u128, position: u128, operation: u8, digest: u128) -> u128 {
    const DOMAIN: &[u8] = b"paritygate-event/1";
    // One contiguous input hashed in one call: the same BLAKE3 value as feeding the parts to a
    // `Hasher` one by one, without its per-update overhead (this runs for every record).
    let mut input = [0u8; DOMAIN.len() + IDENTITY_INPUT];
    input[..DOMAIN.len()].copy_from_slice(DOMAIN);
    input[DOMAIN.len()..].copy_from_slice(&identity_parts(key_hash, position, operation, digest));
    let mut first = [0u8; IDENTITY_BYTES];
    first.copy_from_slice(&blake3::hash(&input).as_bytes()[..IDENTITY_BYTES]);
    u128::from_be_bytes(first)
}

/// Bytes an event's identity and fingerprint are hashed from (after the identity's domain).
pub const IDENTITY_INPUT: usize = 49;

/// Key hash, position, operation and digest, big-endian, one after the other.
pub fn identity_parts(
    key_hash: u128,
    position: u128,
    operation: u8,
    digest: u128,
) -> [u8; IDENTITY_INPUT] {
    let mut out = [0u8; IDENTITY_INPUT];
    out[..16].copy_from_slice(&key_hash.to_be_bytes());
    out[16..32].copy_from_slice(&position.to_be_bytes());
    out[32] = operation;
    out[33..].copy_from_slice(&digest.to_be_bytes());
    out
}

/// Whether an event's delivery time is kept as latency evidence.
pub fn is_delivery_sample(identity: u128) -> bool {
    identity % DELIVERY_SAMPLE == 0
}

/// Identities packed for storage, 16 bytes each.
pub fn pack(ids: &[u128]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_be_bytes()).collect()
}

/// The identities in a stored row (a trailing partial identity, which `pack` never writes, is ignored).
pub fn unpack(bytes: &[u8]) -> impl Iterator<Item = u128> + '_ {
    bytes.chunks_exact(IDENTITY_BYTES).map(|c| {
        let mut b = [0u8; IDENTITY_BYTES];
        b.copy_from_slice(c);
        u128::from_be_bytes(b)
    })
}

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
    pub fn len(&self) -> usize {
        self.sets.values().map(FxHashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_storage() {
        let ids = [0u128, 1, u128::MAX, event_identity(7, 8, 3, 9)];
        let packed = pack(&ids);
        assert_eq!(packed.len(), ids.len() * IDENTITY_BYTES);
        assert_eq!(unpack(&packed).collect::<Vec<_>>(), ids);
        // A torn trailing identity is not invented.
        assert_eq!(unpack(&packed[..20]).count(), 1);
    }

    #[test]
    fn identity_separates_every_component() {
        let base = event_identity(1, 2, 3, 4);
        assert_ne!(base, event_identity(9, 2, 3, 4));
        assert_ne!(base, event_identity(1, 9, 3, 4));
        assert_ne!(base, event_identity(1, 2, 9, 4));
        assert_ne!(base, event_identity(1, 2, 3, 9));
        assert_eq!(base, event_identity(1, 2, 3, 4));
    }

    #[test]
    fn identities_and_fingerprints_keep_the_values_already_stored() {
        // Stored identities and fingerprint sums must stay comparable across releases: the
        // one-call hashing must give what hashing the parts one by one gave before it.
        let reference = |domain: &[u8], k: u128, p: u128, o: u8, d: u128| {
            let mut h = blake3::Hasher::new();
            h.update(domain);
            h.update(&k.to_be_bytes());
            h.update(&p.to_be_bytes());
            h.update(&[o]);
            h.update(&d.to_be_bytes());
            *h.finalize().as_bytes()
        };
        for (k, p, o, d) in [
            (1, 2, 3, 4),
            (u128::MAX, 0, 0, u128::MAX),
            (7 << 90, 11, 2, 13),
        ] {
            let full = reference(b"paritygate-event/1", k, p, o, d);
            let mut id = [0u8; IDENTITY_BYTES];
            id.copy_from_slice(&full[..IDENTITY_BYTES]);
            assert_eq!(event_identity(k, p, o, d), u128::from_be_bytes(id));
            let plain = reference(b"", k, p, o, d);
            let mut fp = [0u8; 8];
            fp.copy_from_slice(&plain[..8]);
            assert_eq!(
                crate::store::write::fingerprint(k, p, o, d),
                i64::from_be_bytes(fp)
            );
        }
    }

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

    #[test]
    fn about_one_event_in_thirty_two_is_a_delivery_sample() {
        let sampled = (0..32_000u128)
            .filter(|i| is_delivery_sample(event_identity(*i, 0, 1, 0)))
            .count();
        assert!((700..1300).contains(&sampled), "{sampled}");
    }
}
