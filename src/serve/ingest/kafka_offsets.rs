//! Kafka's copy of paritygate's progress, and where an assigned partition starts.
//!
//! Postgres holds the offsets that count: they are stored in the transaction of the state they
//! produced. After each checkpoint commits, the same offsets are committed to Kafka for the
//! consumer group, so the tools operators already watch (consumer-group lag in Burrow,
//! kafka-lag-exporter, `rpk group describe`, Redpanda Console) show how far behind paritygate is.
//!
//! That copy is never read back as a position. A partition the group assigns starts at its stored
//! `next_offset`, or at the beginning when Postgres has no row for it. So a commit that is stale,
//! lost, or ahead of the state (the database was reset or restored while the group id stayed) can
//! neither skip history nor count anything twice; Kafka's offsets only ever inform.

use crate::model::{Side, TopicPartition};
use crate::serve::ingest::verify::LogCheck;
use crate::serve::lane::cursor::Starts;
use crate::store::batch::Batch;
use crate::store::{Store, StoredOffset};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

/// How long an assignment waits for the stored offsets before starting at the beginning.
const STORE_ANSWER: Duration = Duration::from_secs(10);

/// The stored progress of partitions, by (topic, partition).
pub type Stored = HashMap<TopicPartition, StoredOffset>;

/// Looks the stored offsets of partitions up (`Err`: the store cannot answer now).
type Lookup = dyn Fn(&[String]) -> Result<Stored, String> + Send + Sync;

/// Where assigned partitions start: the store's answer, held by the consumer's context. The
/// explicit starts are also noted for the lanes (`Starts`), which tell a log reset by them.
pub struct StoredPositions {
    lookup: Box<Lookup>,
    starts: Starts,
    /// Whether each partition's log still holds the record counted last (`None`: not checked).
    check: Option<LogCheck>,
}

impl std::fmt::Debug for StoredPositions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredPositions")
    }
}

impl StoredPositions {
    pub fn new(
        lookup: impl Fn(&[String]) -> Result<Stored, String> + Send + Sync + 'static,
    ) -> StoredPositions {
        StoredPositions {
            lookup: Box::new(lookup),
            starts: Starts::default(),
            check: None,
        }
    }

    /// Check each assigned partition's log against the record counted last (`crate::serve::ingest::verify`).
    pub fn checking_logs(mut self, check: LogCheck) -> StoredPositions {
        self.check = Some(check);
        self
    }

    /// Note the starts of every assignment in `starts` (shared with the lanes).
    pub fn noting_starts_in(mut self, starts: Starts) -> StoredPositions {
        self.starts = starts;
        self
    }

    /// The store's answer, for the consumer's rebalance callback: it runs on the consumer thread
    /// (inside `poll`, outside the runtime, whose handle is taken here), so it blocks on the
    /// query, bounded so a database outage cannot hold the group's rebalance.
    /// `sides`: those of the consumer's cluster (a topic name may exist on both clusters).
    pub fn from_store(store: &Store, sides: &[Side]) -> StoredPositions {
        let (store, runtime) = (store.clone(), tokio::runtime::Handle::current());
        let sides = sides.to_vec();
        StoredPositions::new(move |topics| {
            // The timer is made inside the runtime (`timeout` needs its context to be created).
            let query = async {
                tokio::time::timeout(STORE_ANSWER, store.stored_offsets(&sides, topics)).await
            };
            match runtime.block_on(query) {
                Ok(Ok(stored)) => Ok(stored),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the stored offsets query timed out".to_owned()),
            }
        })
    }

    /// Set every partition of `assigned` to start where the store says. When the store cannot
    /// answer, everything starts at the beginning: slower (records already counted are read and
    /// skipped, `crate::serve::lane::worker`), never wrong.
    pub fn apply(&self, assigned: &mut TopicPartitionList) {
        let mut topics: Vec<String> = assigned
            .elements()
            .iter()
            .map(|e| e.topic().to_owned())
            .collect();
        topics.sort();
        topics.dedup();
        let stored = (self.lookup)(&topics).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored offsets unavailable: assigned partitions start at the beginning");
            HashMap::new()
        });
        let positions = assignment_starts(
            &partition_pairs(assigned),
            &stored,
            self.check.as_ref(),
            &self.starts,
        );
        for (topic, partition, offset) in &positions {
            if let Err(e) = assigned.set_partition_offset(topic, *partition, *offset) {
                tracing::warn!(%topic, partition, error = %e, "cannot set the start offset");
            }
        }
    }
}

/// The (topic, partition) pairs of a list.
pub fn partition_pairs(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

/// An assignment's starts, manual and the group's alike: each partition's stored offset, or the
/// beginning; with `check`, the beginning too where the log was found replaced
/// (`crate::serve::ingest::verify`); all noted in `starts` for the lanes (`crate::serve::lane::cursor`).
pub fn assignment_starts(
    assigned: &[TopicPartition],
    stored: &Stored,
    check: Option<&LogCheck>,
    starts: &Starts,
) -> Vec<(String, i32, Offset)> {
    let mut positions = start_positions(assigned, stored);
    match check {
        Some(check) => check.apply(&mut positions, stored, starts),
        None => starts.record(&positions),
    }
    positions
}

/// Each partition's start: its stored next offset, or the beginning when it has none.
fn start_positions(assigned: &[TopicPartition], stored: &Stored) -> Vec<(String, i32, Offset)> {
    assigned
        .iter()
        .map(|tp| {
            let offset = stored
                .get(tp)
                .map_or(Offset::Beginning, |s| Offset::Offset(s.next));
            (tp.topic.clone(), tp.partition, offset)
        })
        .collect()
}

/// The offsets a stored batch moved to: each of its partitions' next offset.
pub fn moved_to(batch: &Batch) -> Vec<(&str, i32, i64)> {
    batch
        .partitions
        .iter()
        .map(|(TopicPartition { topic, partition }, p)| (topic.as_str(), *partition, p.next_offset))
        .collect()
}

/// Commits stored batches' offsets to Kafka without waiting: the checkpointer must never stall on
/// the broker for a copy that only informs. Holds the consumer weakly so that closing it (and the
/// group leaving) is not delayed by a checkpointer.
pub struct KafkaCommits<C: ConsumerContext + 'static> {
    consumer: Weak<BaseConsumer<C>>,
}

impl<C: ConsumerContext + 'static> std::fmt::Debug for KafkaCommits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaCommits")
    }
}

impl<C: ConsumerContext + 'static> KafkaCommits<C> {
    pub fn new(consumer: Weak<BaseConsumer<C>>) -> KafkaCommits<C> {
        KafkaCommits { consumer }
    }

    /// Commit what `batch` stored (asynchronously; failures reach the context's commit callback).
    pub fn commit(&self, batch: &Batch) {
        let Some(consumer) = self.consumer.upgrade() else {
            return; // closing: the next owner's commits take over
        };
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in moved_to(batch) {
            if list
                .add_partition_offset(topic, partition, Offset::Offset(next))
                .is_err()
            {
                return;
            }
        }
        if list.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&list, CommitMode::Async) {
            tracing::debug!(error = %e, "kafka offset commit not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;
    use crate::serve::lane::cursor::Start;

    /// Stored at `next`, the last record unknown.
    fn at(next: i64) -> StoredOffset {
        StoredOffset {
            next,
            last_record: None,
        }
    }

    #[test]
    fn assigned_partitions_start_at_the_stored_offset_or_at_the_beginning() {
        let stored = HashMap::from([
            (TopicPartition::new("orders", 0), at(42)),
            (TopicPartition::new("orders", 2), at(0)),
        ]);
        let assigned = [
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1),
            TopicPartition::new("orders", 2),
            TopicPartition::new("payments", 0),
        ];
        assert_eq!(
            start_positions(&assigned, &stored),
            [
                ("orders".to_owned(), 0, Offset::Offset(42)),
                ("orders".to_owned(), 1, Offset::Beginning),
                ("orders".to_owned(), 2, Offset::Offset(0)),
                ("payments".to_owned(), 0, Offset::Beginning),
            ]
        );
    }

    #[test]
    fn applying_overrides_whatever_offset_the_group_proposed() {
        let positions = StoredPositions::new(|topics| {
            assert_eq!(topics, ["a", "b"]);
            Ok(HashMap::from([(TopicPartition::new("a", 1), at(7))]))
        });
        let starts = Starts::default();
        let positions = positions.noting_starts_in(starts.clone());
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("b", 0, Offset::Offset(500))
            .unwrap();
        list.add_partition_offset("a", 1, Offset::Stored).unwrap();
        positions.apply(&mut list);
        let offsets: Vec<_> = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
            .collect();
        assert_eq!(
            offsets,
            [
                ("b".to_owned(), 0, Offset::Beginning),
                ("a".to_owned(), 1, Offset::Offset(7))
            ]
        );
        // The lanes learn the explicit start (a log reset is told by it).
        assert_eq!(
            (starts.of("a", 1), starts.of("b", 0)),
            (Some(Start::At(7)), None)
        );
    }

    #[test]
    fn a_store_that_cannot_answer_starts_everything_at_the_beginning() {
        let positions = StoredPositions::new(|_| Err("database away".to_owned()));
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("a", 0, Offset::Offset(900))
            .unwrap();
        positions.apply(&mut list);
        assert_eq!(list.elements()[0].offset(), Offset::Beginning);
    }

    #[test]
    fn a_batch_moves_each_partition_to_its_next_offset() {
        let mut batch = Batch::default();
        batch.advance(("t", 3, 10), (0, Side::Baseline), Some(10), None);
        batch.advance(("t", 3, 11), (0, Side::Baseline), Some(10), None);
        batch.advance(("u", 0, 0), (0, Side::Candidate), None, None);
        assert_eq!(moved_to(&batch), [("t", 3, 12), ("u", 0, 1)]);
    }
}
