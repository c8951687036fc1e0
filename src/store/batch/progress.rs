//! Where each partition of a batch stands: the offset its checkpoint stores and compares-and-sets,
//! its event-time range, the arrival base after a log reset and the fingerprint of its last record
//! (`serve::ingest::verify`); and the allocation-free (topic, partition) lookup the hot path uses.

use super::Batch;
use crate::model::{Side, TopicPartition};

/// Progress of one partition within the batch.
#[derive(Debug, Clone)]
pub struct PartitionProgress {
    pub service: usize,
    pub side: Side,
    /// The stored `next_offset` this batch starts from (`None`: no row yet).
    pub expected: Option<i64>,
    pub next_offset: i64,
    pub max_event_ms: Option<i64>,
    pub min_event_ms: Option<i64>,
    pub end_offset: Option<i64>,
    /// Set when the partition's log went back in this batch: the base its arrivals continue from
    /// (stored as `partitions.arrival_base`; `None` leaves the stored one).
    pub arrival_base: Option<i64>,
    /// Fingerprint of the record at `next_offset - 1` (`OwnedRecord::fingerprint`), when known.
    pub last_record: Option<u128>,
}

impl PartitionProgress {
    /// A partition's first record of the batch is at `offset`; `expected` is the stored offset
    /// this batch builds on.
    fn starting((service, side): (usize, Side), expected: Option<i64>, offset: i64) -> Self {
        PartitionProgress {
            service,
            side,
            expected,
            next_offset: offset,
            max_event_ms: None,
            min_event_ms: None,
            end_offset: None,
            arrival_base: None,
            last_record: None,
        }
    }

    /// Past `offset`, whose event time (if it made an event) widens the batch's range. The last
    /// record's fingerprint is unknown again until noted (`Batch::note_last_record`).
    fn advance(&mut self, offset: i64, event_ms: Option<i64>) {
        self.next_offset = self.next_offset.max(offset + 1);
        self.last_record = None;
        self.max_event_ms = self.max_event_ms.max(event_ms);
        self.min_event_ms = match (self.min_event_ms, event_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// A (topic, partition) map key rewritten in place for each record, so looking a partition up
/// costs no allocation; a copy is made only when a partition is inserted.
#[derive(Debug, Default)]
pub struct PartitionProbe {
    key: TopicPartition,
}

impl PartitionProbe {
    /// The key for `topic`/`partition`.
    pub fn of(&mut self, topic: &str, partition: i32) -> &TopicPartition {
        self.key.topic.clear();
        self.key.topic.push_str(topic);
        self.key.partition = partition;
        &self.key
    }
}

impl Batch {
    /// Advance a partition past `offset`; `expected` is the stored offset this batch builds on.
    pub fn advance(
        &mut self,
        (topic, partition, offset): (&str, i32, i64),
        ids: (usize, Side),
        expected: Option<i64>,
        event_ms: Option<i64>,
    ) {
        // Looked up through the probe first: this runs for every record, and inserting needs an
        // owned key.
        let key = self.probe.of(topic, partition);
        if let Some(p) = self.partitions.get_mut(key) {
            p.advance(offset, event_ms);
        } else {
            let mut p = PartitionProgress::starting(ids, expected, offset);
            p.advance(offset, event_ms);
            self.partitions.insert(key.clone(), p);
        }
    }

    /// The partition's log went back to `offset` (see `super::cursor`): the next offset this batch
    /// stores is counted from there, not kept at the highest offset seen before, and its arrivals
    /// continue from `arrival_base`.
    pub fn rewind(
        &mut self,
        (topic, partition, offset): (&str, i32, i64),
        ids: (usize, Side),
        expected: Option<i64>,
        arrival_base: i64,
    ) {
        let p = self
            .partitions
            .entry(TopicPartition::new(topic, partition))
            .or_insert_with(|| PartitionProgress::starting(ids, expected, offset));
        p.next_offset = offset;
        p.arrival_base = Some(arrival_base);
        p.last_record = None;
    }

    /// `fingerprint` is of the record at `offset`: kept if the partition's next offset is just past
    /// it (so a stored fingerprint always belongs to the record before the stored offset).
    pub fn note_last_record(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        fingerprint: u128,
    ) {
        let key = self.probe.of(topic, partition);
        if let Some(p) = self.partitions.get_mut(key) {
            if p.next_offset == offset + 1 {
                p.last_record = Some(fingerprint);
            }
        }
    }
}
