//! The floor: a bare rdkafka consumer that only reads. Manual assignment of every partition from
//! the beginning, poll, touch each payload's length, count until every produced record was seen.

use super::{client, Endpoint};
use crate::core::record::RecordView;
use anyhow::bail;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// One bare consumer run.
#[derive(Debug, Clone, Copy)]
pub struct BareRun {
    pub records: u64,
    pub payload_bytes: u64,
    pub seconds: f64,
}

/// Read `topics` (each with `partitions` partitions) until `expected` records were seen; the clock
/// includes creating the consumer and assigning, as `serve`'s clock includes its start-up.
/// Gives up after `timeout` without a new record.
pub fn bare_consume(
    endpoint: &Endpoint,
    topics: &[String],
    partitions: i32,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<BareRun> {
    consume_each(endpoint, topics, partitions, (expected, timeout), |_| {})
}

/// [`bare_consume`] that also hands every message to `each` (e.g. the comparison core's
/// extraction, to measure what parsing costs on top of reading).
pub fn consume_each(
    endpoint: &Endpoint,
    topics: &[String],
    partitions: i32,
    (expected, timeout): (u64, Duration),
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<BareRun> {
    let start = Instant::now();
    let consumer: BaseConsumer = client(endpoint)
        .set("group.id", "paritygate-bench-bare")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let (mut records, mut payload_bytes) = (0u64, 0u64);
    let mut last_progress = Instant::now();
    while records < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                each(&m);
                payload_bytes += m.payload_len() as u64;
                last_progress = Instant::now();
            }
            Some(Err(e)) => bail!("bare consumer: {e}"),
            None if last_progress.elapsed() > timeout => {
                bail!("bare consumer: stuck at {records} of {expected} records")
            }
            None => {}
        }
    }
    Ok(BareRun {
        records,
        payload_bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The comparison core's view of a consumed message (borrowed: no copy of key, headers or payload).
pub fn record_view<M: Message>(message: &M) -> RecordView<'_> {
    RecordView {
        topic: Cow::Borrowed(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        headers: message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (Cow::Borrowed(h.key), h.value.map(Cow::Borrowed)))
                    .collect()
            })
            .unwrap_or_default(),
        key: message.key().filter(|k| !k.is_empty()).map(Cow::Borrowed),
        payload: message.payload().map(Cow::Borrowed),
    }
}
