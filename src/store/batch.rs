//! One checkpoint's worth of consumed records, accumulated in memory between two checkpoints.
//!
//! Pure bookkeeping: the ingest loop adds records, `store::write::checkpoint` turns a batch into one
//! transaction. Offsets advance for every record, whatever became of it, so one bad message never
//! blocks a partition.

use crate::core::operation::Operation;
use crate::core::range::BEFORE_START;
use crate::core::record::RecordView;
use crate::model::{EpochScope, Side, TallyKind, TopicPartition};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::time::Instant;

mod log_entry;
mod progress;
mod unverified;
pub use log_entry::{counted_keys, pack, unpack, LogEntry, LOG_ENTRY_BYTES};
pub use progress::{PartitionProbe, PartitionProgress};
pub use unverified::{judge, Replay, StoredFinal, Unverified, BEYOND_HORIZON, REPLAY_BY_POSITION};

/// A distinct event, new to the service (duplicates were recognized in memory, `serve::lane::dedupe`).
#[derive(Debug, Clone, Copy)]
pub struct BatchEvent {
    pub service: usize,
    pub side: Side,
    pub key_hash: u128,
    /// Source position, or 0 when the service has none (the digest identifies the event).
    pub position: u128,
    /// What orders the key's events for its final state: the position, or the arrival (the Kafka
    /// offset) when the service has none, as `diff` orders them (`core::compare::final_state`).
    pub sequence: u128,
    pub operation: Operation,
    pub digest: u128,
    /// `dedupe::event_identity` of the event.
    pub identity: u128,
    /// Arrival order within the partition (its arrival base plus the Kafka offset, see
    /// `super::cursor`): final state without positions.
    pub arrival: i64,
    pub event_ms: i64,
    pub window_start_ms: i64,
    pub partition: i32,
    /// The Kafka offset of the record it came from (which record a sample names).
    pub offset: i64,
    /// The Kafka record timestamp (delivery time): the latency guardrail compares the sides' deliveries.
    pub record_ms: Option<i64>,
}

/// One event of a key in this batch that may define its final state.
#[derive(Debug, Clone)]
pub struct FinalCandidate {
    pub order: (u128, Operation, i64),
    pub digest: u128,
    /// The normalized content (canonical JSON, or the raw payload when it is not JSON), `None`
    /// for deletes and tombstones. Bytes, not text: a payload may hold any bytes (NUL included).
    pub content: Option<Vec<u8>>,
}

/// A key's new events in this batch, folded as they come into the one that is its final state.
#[derive(Debug, Clone, Default)]
pub struct KeyBatch {
    /// The key as the record carried it (any bytes; shown with `core::event::display_bytes`).
    pub key: Vec<u8>,
    pub last_event_ms: i64,
    pub partition: i32,
    /// The final state so far. Only the winner is kept: a key with many events in one batch
    /// holds one content, not one per event, until the checkpoint.
    best: Option<FinalCandidate>,
}

impl KeyBatch {
    /// The latest event, never a before-image unless that is all there is.
    pub fn final_state(&self) -> Option<&FinalCandidate> {
        self.best.as_ref()
    }

    /// Whether an event ordered `order` becomes the final state: it ranks by (not a
    /// before-image, order), and a tie goes to the later one, as `max_by_key` over all the
    /// events would decide.
    fn is_overtaken_by(&self, order: (u128, Operation, i64)) -> bool {
        let rank = |o: (u128, Operation, i64)| (o.1 != Operation::UpdateBefore, o);
        self.best
            .as_ref()
            .is_none_or(|best| rank(order) >= rank(best.order))
    }

    /// Take the key's bytes from its stored row, and the row's final content when that is the
    /// final event here too (`order`: the row's final event). Used by a new epoch's rebuild.
    pub fn adopt(
        &mut self,
        key: Vec<u8>,
        order: Option<(u128, Operation, i64)>,
        content: Option<Vec<u8>>,
    ) {
        self.key = key;
        if let Some(best) = self.best.as_mut() {
            if Some(best.order) == order && best.order.1 != Operation::Delete {
                best.content = content;
            }
        }
    }
}

/// A re-delivered record of an event already counted, logged for a later epoch's record counts.
#[derive(Debug, Clone, Copy)]
pub struct LoggedDuplicate {
    pub service: usize,
    pub side: Side,
    pub entry: LogEntry,
}

impl LoggedDuplicate {
    pub fn of(e: &BatchEvent) -> Self {
        Self {
            service: e.service,
            side: e.side,
            entry: LogEntry {
                duplicate: true,
                ..LogEntry::of(e)
            },
        }
    }
}

/// What a record was counted as, per service side: the key of a batch's (and the store's) tallies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TallyId {
    pub service: usize,
    pub side: Side,
    pub kind: TallyKind,
    /// The operation (`insert`…) or the reason (`too_large`…).
    pub name: &'static str,
}

impl TallyId {
    pub fn of(service: usize, side: Side, kind: TallyKind, name: &'static str) -> Self {
        Self {
            service,
            side,
            kind,
            name,
        }
    }
}

/// A sampled message that could not be compared.
#[derive(Debug, Clone)]
pub struct BadSample {
    pub service: usize,
    pub side: Side,
    pub reason: &'static str,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's key and the first [`SAMPLE_BYTES`] of its payload, as bytes (any bytes).
    pub key: Option<Vec<u8>>,
    pub sample: Vec<u8>,
}

/// Samples kept per (service, side, reason) and batch: enough to inspect, bounded under floods.
pub const SAMPLES_PER_REASON: usize = 5;
/// Bytes of a bad message's payload (and of its key) kept as its sample.
pub const SAMPLE_BYTES: usize = 2048;

#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<BatchEvent>,
    /// Fx-hashed: key hashes are BLAKE3-derived, and this map is updated for every event.
    pub keys: FxHashMap<(usize, Side, u128), KeyBatch>,
    /// Records per tally (what they were counted as).
    pub tallies: BTreeMap<TallyId, i64>,
    pub partitions: BTreeMap<TopicPartition, PartitionProgress>,
    /// Identities of the new events per partition, stored with the offsets (see `serve::lane::dedupe`).
    pub identities: BTreeMap<TopicPartition, Vec<u128>>,
    pub samples: Vec<BadSample>,
    /// Re-delivered records (counted as records only), kept for the event log.
    pub duplicates: Vec<LoggedDuplicate>,
    /// Events from beyond the dedupe horizon of services with positions, resolved at the
    /// checkpoint against their keys' stored final positions (`unverified`).
    pub unverified: Vec<Unverified>,
    /// The epoch each service (by index) was in when this batch was filled: what the lane
    /// filtered by. The checkpoint rebases the batch when a newer epoch has started since.
    pub scopes: Vec<EpochScope>,
    pub records: usize,
    pub started: Option<Instant>,
    /// Told once this batch's transaction committed (a revocation waits for it).
    pub committed: Option<std::sync::mpsc::SyncSender<()>>,
    probe: PartitionProbe,
}

impl Batch {
    /// An empty batch sized like `last` (its events and keys), so the vector and map of a large
    /// batch are not regrown on every checkpoint.
    pub fn sized_like(last: &Batch) -> Self {
        Self {
            events: Vec::with_capacity(last.events.len()),
            keys: FxHashMap::with_capacity_and_hasher(last.keys.len(), Default::default()),
            ..Self::default()
        }
    }

    fn touch(&mut self) {
        self.records += 1;
        self.started.get_or_insert_with(Instant::now);
    }

    /// Count a record under `kind`/`name` (operation, rejected, skipped, unparseable).
    pub fn tally(&mut self, service: usize, side: Side, kind: TallyKind, name: &'static str) {
        *self
            .tallies
            .entry(TallyId {
                service,
                side,
                kind,
                name,
            })
            .or_default() += 1;
    }

    /// The epoch `service` was in when this batch was filled (the first, when not told).
    pub fn scope(&self, service: usize) -> EpochScope {
        self.scopes.get(service).copied().unwrap_or_default()
    }

    /// Add a new event; `canonical` is its payload's canonical JSON (what extraction hashed), moved
    /// in to become the key's final content without a copy.
    pub fn add_event(&mut self, e: BatchEvent, key: &[u8], canonical: Option<Vec<u8>>) {
        self.touch();
        self.tally(
            e.service,
            e.side,
            TallyKind::Operation,
            e.operation.as_str(),
        );
        self.fold(e, key, canonical);
    }

    /// Fold an event into its key's batch (count it, and make it the final state when it orders
    /// last); tallies are the caller's.
    fn fold(&mut self, e: BatchEvent, key: &[u8], canonical: Option<Vec<u8>>) {
        self.events.push(e);
        let deleted = e.operation == Operation::Delete;
        // Built only for an event that becomes the final state.
        let content = || canonical.filter(|_| !deleted);
        let key = self
            .keys
            .entry((e.service, e.side, e.key_hash))
            .or_insert_with(|| KeyBatch {
                key: key.to_vec(),
                last_event_ms: e.event_ms,
                partition: e.partition,
                best: None,
            });
        key.last_event_ms = key.last_event_ms.max(e.event_ms);
        key.partition = e.partition;
        let order = (e.sequence, e.operation, e.arrival);
        if key.is_overtaken_by(order) {
            key.best = Some(FinalCandidate {
                order,
                digest: e.digest,
                content: content(),
            });
        }
    }

    /// A record whose event was already counted (a re-delivery): counted as a record only, and
    /// logged (an epoch started later counts its records too).
    pub fn add_duplicate(&mut self, e: &BatchEvent) {
        self.count_duplicate(e.service, e.side, e.operation);
        self.duplicates.push(LoggedDuplicate::of(e));
    }

    /// Count a re-delivered record.
    pub fn count_duplicate(&mut self, service: usize, side: Side, operation: Operation) {
        self.touch();
        self.tally(service, side, TallyKind::Operation, operation.as_str());
    }

    /// This batch as it would have been filled under `scopes` (by service index; a service not
    /// named keeps its events): events and re-delivered records before their service's new start
    /// are counted as `before_start` instead. A key whose final event is left out keeps the
    /// content of its new final event only when that event was the batch's final one anyway;
    /// otherwise its digest decides the comparison and its content waits for its next change.
    pub fn rebased(&self, scopes: &BTreeMap<usize, EpochScope>) -> Batch {
        let outside = |service: usize, event_ms: i64| {
            scopes
                .get(&service)
                .is_some_and(|scope| !scope.admits(event_ms))
        };
        let mut out = Batch {
            tallies: self.tallies.clone(),
            partitions: self.partitions.clone(),
            identities: self.identities.clone(),
            samples: self.samples.clone(),
            scopes: self.scopes.clone(),
            records: self.records,
            started: self.started,
            committed: self.committed.clone(),
            probe: PartitionProbe::default(),
            ..Batch::default()
        };
        for (service, scope) in scopes {
            if let Some(slot) = out.scopes.get_mut(*service) {
                *slot = *scope;
            }
        }
        for e in &self.events {
            if outside(e.service, e.event_ms) {
                out.move_to_before_start(e.service, e.side, e.operation);
                continue;
            }
            let (key, content) = match self.keys.get(&(e.service, e.side, e.key_hash)) {
                Some(k) => (
                    k.key.as_slice(),
                    k.best
                        .as_ref()
                        .filter(|b| b.order == (e.sequence, e.operation, e.arrival))
                        .and_then(|b| b.content.clone()),
                ),
                None => (&[][..], None),
            };
            out.fold(*e, key, content);
        }
        for d in &self.duplicates {
            if outside(d.service, d.entry.event_ms) {
                out.move_to_before_start(d.service, d.side, d.entry.operation);
            } else {
                out.duplicates.push(*d);
            }
        }
        for u in &self.unverified {
            if outside(u.event.service, u.event.event_ms) {
                out.move_to_before_start(u.event.service, u.event.side, u.event.operation);
            } else {
                out.unverified.push(u.clone());
            }
        }
        out
    }

    fn move_to_before_start(&mut self, service: usize, side: Side, operation: Operation) {
        let from = TallyId::of(service, side, TallyKind::Operation, operation.as_str());
        if let Some(n) = self.tallies.get_mut(&from) {
            *n -= 1;
            if *n <= 0 {
                self.tallies.remove(&from);
            }
        }
        *self
            .tallies
            .entry(TallyId::of(service, side, TallyKind::Skipped, BEFORE_START))
            .or_default() += 1;
    }

    /// Remember a new event's identity for the partition it came from.
    pub fn remember(&mut self, topic: &str, partition: i32, identity: u128) {
        let key = self.probe.of(topic, partition);
        if let Some(ids) = self.identities.get_mut(key) {
            ids.push(identity);
        } else {
            self.identities.insert(key.clone(), vec![identity]);
        }
    }

    /// A record that produced no event (rejected, skipped or unparseable): counted as a record;
    /// what it was is then [`Batch::note`]d.
    pub fn without_event(&mut self) -> &mut Self {
        self.touch();
        self
    }

    /// Count and sample a remark about a record that is counted elsewhere (e.g. `flagged`/`not_json`).
    pub fn note(
        &mut self,
        service: usize,
        side: Side,
        kind: TallyKind,
        reason: &'static str,
        sample: Option<&RecordView<'_>>,
    ) {
        self.tally(service, side, kind, reason);
        if let Some(record) = sample {
            let kept = self
                .samples
                .iter()
                .filter(|s| s.service == service && s.side == side && s.reason == reason)
                .count();
            if kept < SAMPLES_PER_REASON {
                let bytes = record.payload.as_deref().unwrap_or_default();
                let cut = |b: &[u8]| b[..b.len().min(SAMPLE_BYTES)].to_vec();
                self.samples.push(BadSample {
                    service,
                    side,
                    reason,
                    topic: record.topic.as_ref().to_owned(),
                    partition: record.partition,
                    offset: record.offset,
                    key: record.key.as_deref().map(cut),
                    sample: cut(bytes),
                });
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.partitions.is_empty()
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
