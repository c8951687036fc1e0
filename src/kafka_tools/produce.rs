//! Produce capture files to a broker, fast: batched (`linger.ms`, large batches), streamed line by
//! line (memory does not grow with the capture), each record to its captured topic and partition.

use super::{client, Endpoint};
use crate::capture::for_each_line;
use crate::capture::format::parse_line;
use anyhow::{bail, Context};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Counts delivery failures (the bench refuses to measure an incomplete topic; `generate` refuses
/// to report traffic that did not arrive).
#[derive(Debug, Default)]
pub struct Deliveries {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Deliveries {
    /// Records not delivered so far, with the first error, or `None` when every one was.
    pub fn failures(&self) -> Option<(u64, String)> {
        let failed = self.failed.load(Ordering::Relaxed);
        (failed > 0).then(|| {
            let first = self
                .first_error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .unwrap_or_default();
            (failed, first)
        })
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// What was produced: records and payload bytes per topic.
#[derive(Debug, Clone, Default)]
pub struct Produced {
    pub records: BTreeMap<String, u64>,
    pub payload_bytes: u64,
}

impl Produced {
    pub fn total(&self) -> u64 {
        self.records.values().sum()
    }
}

/// Produce every record of `files` whose topic is in `topics` (others are skipped, as `serve`
/// would never read them). Partitions must be below `partitions`. Returns once all are acknowledged.
pub fn produce_captures(
    endpoint: &Endpoint,
    files: &[PathBuf],
    topics: &HashSet<String>,
    partitions: i32,
) -> anyhow::Result<Produced> {
    let producer: ThreadedProducer<Deliveries> = client(endpoint)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("batch.size", "4000000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        // One request in flight per connection keeps each partition's order (no idempotence).
        .set("max.in.flight.requests.per.connection", "1")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "120000")
        .create_with_context(Deliveries::default())?;
    let mut produced = Produced::default();
    for path in files {
        let mut failure: Option<anyhow::Error> = None;
        for_each_line(
            path,
            Default::default(),
            |line_no, line| match produce_line(&producer, line, topics, partitions, &mut produced) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e.context(format!("{}:{line_no}", path.display())));
                    false
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .context("flushing the producer")?;
    if let Some((failed, first)) = producer.context().failures() {
        bail!("{failed} records were not delivered (first error: {first:?})");
    }
    Ok(produced)
}

fn produce_line(
    producer: &ThreadedProducer<Deliveries>,
    line: &[u8],
    topics: &HashSet<String>,
    partitions: i32,
    produced: &mut Produced,
) -> anyhow::Result<()> {
    let (_, view) = parse_line(line).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if !topics.contains(view.topic.as_ref()) {
        return Ok(());
    }
    if !(0..partitions).contains(&view.partition) {
        bail!("partition {} is not below {partitions}", view.partition);
    }
    let mut headers = OwnedHeaders::new_with_capacity(view.headers.len());
    for (name, value) in &view.headers {
        headers = headers.insert(Header {
            key: name.as_ref(),
            value: value.as_deref(),
        });
    }
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(view.topic.as_ref())
        .partition(view.partition)
        .headers(headers);
    if let Some(key) = view.key.as_deref() {
        record = record.key(key);
    }
    if let Some(payload) = view.payload.as_deref() {
        record = record.payload(payload);
        produced.payload_bytes += payload.len() as u64;
    }
    if let Some(ts) = view.timestamp_ms {
        record = record.timestamp(ts);
    }
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => bail!("produce to {}/{}: {e}", view.topic, view.partition),
        }
    }
    *produced.records.entry(view.topic.into_owned()).or_default() += 1;
    Ok(())
}
