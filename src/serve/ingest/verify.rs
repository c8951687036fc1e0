//! At assignment: does each partition's log still hold the record the state counted last?
//!
//! A checkpoint stores, with a partition's `next_offset`, a fingerprint of the record just before
//! it (`partitions.last_record`, `OwnedRecord::fingerprint`). When the partition is assigned again
//! (start-up, restart, rebalance), the record found at `next_offset - 1` is fetched and compared.
//! A different record means the topic was deleted and recreated (or truncated and rewritten) while
//! this replica was away and the new log already reaches past the stored offset: offsets alone
//! cannot tell, and starting at the stored offset would silently skip the new log's first records.
//! Such a partition starts at its beginning instead and is handled as a log reset
//! (`crate::serve::lane::cursor`). A record that is gone (retention, compaction) or does not arrive within
//! [`WAIT`] proves nothing: the partition starts where it is stored, as before.

use crate::config::Config;
use crate::model::TopicPartition;
use crate::serve::lane::cursor::Starts;
use crate::serve::lane::record::OwnedRecord;
use crate::store::StoredOffset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an assignment waits for the records it checks (it delays only that assignment).
pub const WAIT: Duration = Duration::from_secs(3);

/// (topic, partition) → (offset, record fingerprint).
type Records = HashMap<TopicPartition, (i64, u128)>;

/// What the record before a stored offset says about the partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// The record counted last is still there: same log.
    Same,
    /// Another record (or an earlier offset: the log is shorter) is there: the log was replaced.
    Replaced,
    /// Nothing to compare with.
    Unknown,
}

/// Judge the first record delivered from `at` (the offset before the stored one).
pub fn judge(stored: u128, at: i64, found: Option<(i64, u128)>) -> Finding {
    match found {
        Some((offset, fingerprint)) if offset == at && fingerprint == stored => Finding::Same,
        Some((offset, _)) if offset <= at => Finding::Replaced,
        _ => Finding::Unknown,
    }
}

/// Checks assigned partitions' logs against the stored fingerprints.
#[derive(Clone)]
pub struct LogCheck {
    /// The consumer's settings (brokers, security) for the client that fetches the records.
    config: Arc<Config>,
}

impl std::fmt::Debug for LogCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogCheck")
    }
}

impl LogCheck {
    pub fn new(config: Arc<Config>) -> LogCheck {
        LogCheck { config }
    }

    /// Of `positions` (an assignment's starts, from `stored`), set those whose log was replaced to
    /// start at the beginning, and note them in `starts` as replaced (with every other start).
    pub fn apply(
        &self,
        positions: &mut [(String, i32, Offset)],
        stored: &HashMap<TopicPartition, StoredOffset>,
        starts: &Starts,
    ) {
        let replaced = self.replaced(positions, stored);
        starts.record(positions);
        for (topic, partition, offset) in positions.iter_mut() {
            let Offset::Offset(stored) = *offset else {
                continue;
            };
            if replaced
                .iter()
                .any(|tp| &tp.topic == topic && tp.partition == *partition)
            {
                tracing::warn!(
                    %topic,
                    partition,
                    stored,
                    "the record before the stored offset is another one: the topic was recreated \
                     (or rewritten) meanwhile; reading its new log from the beginning"
                );
                starts.mark_replaced(topic, *partition, stored);
                *offset = Offset::Beginning;
            }
        }
    }

    /// The partitions of `positions` whose record before the explicit start is another one than
    /// the one `stored` has a fingerprint of.
    fn replaced(
        &self,
        positions: &[(String, i32, Offset)],
        stored: &HashMap<TopicPartition, StoredOffset>,
    ) -> Vec<TopicPartition> {
        let wanted: Records = positions
            .iter()
            .filter_map(|(topic, partition, offset)| {
                let Offset::Offset(start) = offset else {
                    return None;
                };
                let key = TopicPartition::new(topic.clone(), *partition);
                let fingerprint = stored.get(&key)?.last_record?;
                (*start > 0).then(|| (key, (start - 1, fingerprint)))
            })
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        let found = match self.fetch(&wanted) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the records to check: not checked");
                return Vec::new();
            }
        };
        let mut replaced = Vec::new();
        let mut same = 0;
        for (key, (at, fingerprint)) in &wanted {
            match judge(*fingerprint, *at, found.get(key).copied()) {
                Finding::Same => same += 1,
                Finding::Replaced => replaced.push(key.clone()),
                Finding::Unknown => {}
            }
        }
        tracing::debug!(
            checked = wanted.len(),
            same,
            replaced = replaced.len(),
            "logs checked against the records counted last"
        );
        replaced
    }

    /// The first record delivered from each wanted offset: (offset, fingerprint), within [`WAIT`].
    fn fetch(&self, wanted: &Records) -> Result<Records, rdkafka::error::KafkaError> {
        let consumer: BaseConsumer = crate::serve::ingest::consumer(&self.config)?;
        let mut list = TopicPartitionList::new();
        for (TopicPartition { topic, partition }, (at, _)) in wanted {
            list.add_partition_offset(topic, *partition, Offset::Offset(*at))?;
        }
        consumer.assign(&list)?;
        let mut found = HashMap::new();
        let deadline = Instant::now() + WAIT;
        while found.len() < wanted.len() && Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                let record = OwnedRecord::copy_from(&message, Arc::from(message.topic()));
                found
                    .entry(TopicPartition::new(
                        record.topic.to_string(),
                        record.partition,
                    ))
                    .or_insert((record.offset, record.fingerprint()));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_before_the_stored_offset_decides() {
        assert_eq!(judge(7, 99, Some((99, 7))), Finding::Same);
        assert_eq!(judge(7, 99, Some((99, 8))), Finding::Replaced);
        // The log starts below the checked offset (shorter than it was): replaced.
        assert_eq!(judge(7, 99, Some((0, 7))), Finding::Replaced);
        // The record is gone (retention, compaction), or nothing came: nothing proven.
        assert_eq!(judge(7, 99, Some((120, 8))), Finding::Unknown);
        assert_eq!(judge(7, 99, None), Finding::Unknown);
    }
}
