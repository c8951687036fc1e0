//! One checkpoint's worth of consumed records, accumulated in memory between two checkpoints.
//!
//! Pure bookkeeping: the ingest loop adds records, `store::write::checkpoint` turns a batch into one
//! transaction. Offsets advance for every record, whatever became of it, so one bad message never
//! blocks a partition.

use crate::config::Side;
use crate::core::event::Event;
use crate::core::operation::Operation;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// A distinct-event candidate (the database decides whether it is new).
#[derive(Debug, Clone, Copy)]
pub struct BatchEvent {
    pub service: usize,
    pub side: Side,
    pub key_hash: u128,
    /// Source position, or 0 when the service has none (the digest identifies the event).
    pub position: u128,
    pub operation: Operation,
    pub digest: u128,
    /// Arrival order within the partition (the Kafka offset): final state without positions.
    pub arrival: i64,
    pub event_ms: i64,
    pub window_start_ms: i64,
    pub partition: i32,
    /// The Kafka record timestamp (delivery time): the latency guardrail compares the sides' deliveries.
    pub record_ms: Option<i64>,
}

/// One event of a key in this batch that may define its final state.
#[derive(Debug, Clone)]
pub struct FinalCandidate {
    pub order: (u128, Operation, i64),
    pub digest: u128,
    /// The normalized content (canonical JSON), `None` for deletes and non-JSON payloads.
    pub content: Option<String>,
}

/// A key's events in this batch. The final state is chosen at checkpoint time among the events
/// the store found new: a replayed duplicate (later offset, older content) must never win.
#[derive(Debug, Clone, Default)]
pub struct KeyBatch {
    pub key_text: String,
    pub last_event_ms: i64,
    pub partition: i32,
    pub candidates: Vec<FinalCandidate>,
}

impl KeyBatch {
    /// The latest candidate among `new` ones, never a before-image unless that is all there is.
    pub fn final_of(&self, is_new: impl Fn(&FinalCandidate) -> bool) -> Option<&FinalCandidate> {
        let new: Vec<&FinalCandidate> = self.candidates.iter().filter(|c| is_new(c)).collect();
        new.iter()
            .copied()
            .filter(|c| c.order.1 != Operation::UpdateBefore)
            .max_by_key(|c| c.order)
            .or_else(|| new.iter().copied().max_by_key(|c| c.order))
    }
}

/// Progress of one partition within the batch.
#[derive(Debug, Clone)]
pub struct PartitionProgress {
    pub service: usize,
    pub side: Side,
    /// The stored `next_offset` this batch starts from (`None`: no row yet).
    pub expected: Option<i64>,
    pub next_offset: i64,
    pub max_event_ms: Option<i64>,
    pub end_offset: Option<i64>,
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
    pub sample: String,
}

/// Samples kept per (service, side, reason) and batch: enough to inspect, bounded under floods.
const SAMPLES_PER_REASON: usize = 5;
/// Bytes of a bad message kept as its sample.
const SAMPLE_BYTES: usize = 2048;

#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<BatchEvent>,
    pub keys: HashMap<(usize, Side, u128), KeyBatch>,
    /// (service, side, kind, name) → records.
    pub tallies: BTreeMap<(usize, Side, &'static str, String), i64>,
    pub partitions: BTreeMap<(String, i32), PartitionProgress>,
    pub samples: Vec<BadSample>,
    pub records: usize,
    pub started: Option<Instant>,
}

impl Batch {
    fn touch(&mut self) {
        self.records += 1;
        self.started.get_or_insert_with(Instant::now);
    }

    /// Count a record under `kind`/`name` (operation, rejected, skipped, unparseable).
    pub fn tally(&mut self, service: usize, side: Side, kind: &'static str, name: &str) {
        *self
            .tallies
            .entry((service, side, kind, name.to_owned()))
            .or_default() += 1;
    }

    pub fn add_event(&mut self, e: BatchEvent, key_text: &[u8], event: &Event) {
        self.touch();
        self.tally(e.service, e.side, "operation", e.operation.as_str());
        self.events.push(e);
        let deleted = e.operation == Operation::Delete;
        let content = match event.content.as_ref().map(|c| &c.0) {
            Some(crate::core::event::Content::Json(v)) if !deleted => Some(compact(v)),
            _ => None,
        };
        let key = self
            .keys
            .entry((e.service, e.side, e.key_hash))
            .or_insert_with(|| KeyBatch {
                key_text: String::from_utf8_lossy(key_text).into_owned(),
                last_event_ms: e.event_ms,
                partition: e.partition,
                candidates: Vec::new(),
            });
        key.last_event_ms = key.last_event_ms.max(e.event_ms);
        key.partition = e.partition;
        // A replay of an event already in this batch is never a candidate: its later arrival
        // would otherwise make old content the final state (the store keeps the first arrival).
        let replay = key
            .candidates
            .iter()
            .any(|c| (c.order.0, c.order.1, c.digest) == (e.position, e.operation, e.digest));
        if !replay {
            key.candidates.push(FinalCandidate {
                order: (e.position, e.operation, e.arrival),
                digest: e.digest,
                content,
            });
        }
    }

    /// A record that produced no event (rejected, skipped or unparseable), with an optional sample.
    pub fn add_other(
        &mut self,
        service: usize,
        side: Side,
        kind: &'static str,
        reason: &'static str,
        sample: Option<(&str, i32, i64, &[u8])>,
    ) {
        self.touch();
        self.note(service, side, kind, reason, sample);
    }

    /// Count and sample a remark about a record that is counted elsewhere (e.g. `flagged`/`not_json`).
    pub fn note(
        &mut self,
        service: usize,
        side: Side,
        kind: &'static str,
        reason: &'static str,
        sample: Option<(&str, i32, i64, &[u8])>,
    ) {
        self.tally(service, side, kind, reason);
        if let Some((topic, partition, offset, bytes)) = sample {
            let kept = self
                .samples
                .iter()
                .filter(|s| s.service == service && s.side == side && s.reason == reason)
                .count();
            if kept < SAMPLES_PER_REASON {
                let end = bytes.len().min(SAMPLE_BYTES);
                self.samples.push(BadSample {
                    service,
                    side,
                    reason,
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    sample: String::from_utf8_lossy(&bytes[..end]).into_owned(),
                });
            }
        }
    }

    /// Advance a partition past `offset`; `expected` is the stored offset this batch builds on.
    pub fn advance(
        &mut self,
        (topic, partition, offset): (&str, i32, i64),
        (service, side): (usize, Side),
        expected: Option<i64>,
        event_ms: Option<i64>,
    ) {
        let p = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_insert(PartitionProgress {
                service,
                side,
                expected,
                next_offset: offset + 1,
                max_event_ms: None,
                end_offset: None,
            });
        p.next_offset = p.next_offset.max(offset + 1);
        p.max_event_ms = p.max_event_ms.max(event_ms);
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.partitions.is_empty()
    }
}

fn compact(value: &Value) -> String {
    let mut out = Vec::new();
    crate::core::canonical::write_canonical(value, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(position: u128, operation: Operation, arrival: i64, event_ms: i64) -> BatchEvent {
        BatchEvent {
            service: 0,
            side: Side::Baseline,
            key_hash: 7,
            position,
            operation,
            digest: position * 10 + operation as u128,
            arrival,
            event_ms,
            window_start_ms: 0,
            partition: 1,
            record_ms: None,
        }
    }

    fn plain() -> Event {
        Event {
            key: b"7".to_vec(),
            operation: Operation::Insert,
            position: None,
            digest: 0,
            event_time_ms: None,
            content: None,
        }
    }

    #[test]
    fn final_state_is_the_greatest_new_event_and_never_a_before_image() {
        let mut b = Batch::default();
        b.add_event(ev(5, Operation::UpdateBefore, 10, 100), b"7", &plain());
        b.add_event(ev(5, Operation::UpdateAfter, 11, 100), b"7", &plain());
        b.add_event(ev(3, Operation::Insert, 12, 300), b"7", &plain());
        b.add_event(ev(6, Operation::UpdateBefore, 13, 50), b"7", &plain());
        let k = &b.keys[&(0, Side::Baseline, 7)];
        assert_eq!(
            k.final_of(|_| true).map(|c| c.order),
            Some((5, Operation::UpdateAfter, 11))
        );
        assert_eq!(k.last_event_ms, 300);
        // Only the insert is new (the rest were replays): it defines the final state.
        assert_eq!(
            k.final_of(|c| c.order.0 == 3).map(|c| c.order),
            Some((3, Operation::Insert, 12))
        );
        assert_eq!(
            k.final_of(|c| c.order.0 == 6).map(|c| c.order.1),
            Some(Operation::UpdateBefore)
        );
        assert_eq!(
            b.tallies[&(0, Side::Baseline, "operation", "update_before".into())],
            2
        );
        assert_eq!(b.records, 4);
    }

    #[test]
    fn a_replay_within_the_batch_never_becomes_the_final_state() {
        let with_digest = |arrival, digest| BatchEvent {
            digest,
            ..ev(0, Operation::Change, arrival, 1)
        };
        let mut b = Batch::default();
        b.add_event(with_digest(1, 100), b"7", &plain());
        b.add_event(with_digest(2, 200), b"7", &plain());
        b.add_event(with_digest(3, 100), b"7", &plain()); // replay of arrival 1
        let k = &b.keys[&(0, Side::Baseline, 7)];
        assert_eq!(k.candidates.len(), 2);
        assert_eq!(
            k.final_of(|_| true).map(|c| (c.order.2, c.digest)),
            Some((2, 200))
        );
    }

    #[test]
    fn deletes_have_no_content_and_samples_are_bounded() {
        let mut b = Batch::default();
        b.add_event(ev(9, Operation::Delete, 1, 1), b"7", &plain());
        assert_eq!(b.keys[&(0, Side::Baseline, 7)].candidates[0].content, None);
        for i in 0..20 {
            b.add_other(
                0,
                Side::Candidate,
                "unparseable",
                "too_large",
                Some(("t", 0, i, b"xx")),
            );
        }
        assert_eq!(b.samples.len(), SAMPLES_PER_REASON);
        assert_eq!(
            b.tallies[&(0, Side::Candidate, "unparseable", "too_large".into())],
            20
        );
    }

    #[test]
    fn partitions_advance_past_the_highest_offset() {
        let mut b = Batch::default();
        b.advance(("t", 0, 4), (0, Side::Baseline), Some(4), Some(10));
        b.advance(("t", 0, 6), (0, Side::Baseline), Some(4), Some(5));
        let p = &b.partitions[&("t".to_owned(), 0)];
        assert_eq!(
            (p.expected, p.next_offset, p.max_event_ms),
            (Some(4), 7, Some(10))
        );
    }
}
