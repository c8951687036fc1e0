//! Kafka in: one consumer for every configured topic, on a dedicated thread (the hot path stays
//! synchronous: poll, route, extract with the pure core, add to the batch). Batches go to the
//! checkpointer through a bounded channel, which is the backpressure when Postgres is slow or down.
//!
//! Offsets live in Postgres, not in Kafka: a partition resumes at its stored `next_offset`
//! (manual assignment seeks there; under the group protocol, records below it are skipped and the
//! consumer seeks forward). Kafka commits are only a hint for group restarts.

use super::batch::{Batch, BatchEvent};
use super::dedupe::{event_identity, Seen};
use super::status::SharedStatus;
use crate::config::model::Assignment;
use crate::config::{Config, Side};
use crate::core::event::{extract, key_hash, Outcome};
use crate::core::record::RecordView;
use crate::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// End offsets per partition as last fetched from the broker (shared with the evaluator).
pub type EndOffsets = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// Build the consumer from `[kafka]`; pass-through properties come last so they win.
pub fn consumer(config: &Config) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("client.id", "paritygate");
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c.create()
}

/// The ingest thread's parts (rdkafka's consumer has no `Debug`, hence the manual impl below).
pub struct Ingest {
    pub consumer: BaseConsumer,
    pub config: Arc<Config>,
    pub store: Store,
    pub runtime: Handle,
    /// One sender per checkpoint lane (see [`lane_of`]).
    pub batches: Vec<mpsc::Sender<Batch>>,
    pub status: SharedStatus,
    pub end_offsets: EndOffsets,
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("brokers", &self.config.kafka.brokers)
            .finish_non_exhaustive()
    }
}

struct Loop {
    routes: HashMap<String, (usize, Side)>,
    error_routes: HashMap<String, (usize, Side)>,
    /// Next offset per partition after the last batch handed to the checkpointer (`None`: no row).
    next: HashMap<(String, i32), Option<i64>>,
    sought: HashSet<(String, i32)>,
    /// Identities of the events already counted on the partitions this process owns.
    seen: Seen,
    /// The batch being built for each checkpoint lane.
    lanes: Vec<Batch>,
    last_flush: Instant,
}

/// The checkpoint lane of a partition: fixed, so one partition's batches are stored in order.
pub fn lane_of(partition: i32, lanes: usize) -> usize {
    partition.unsigned_abs() as usize % lanes.max(1)
}

impl Loop {
    fn lane(&mut self, partition: i32) -> &mut Batch {
        let lane = lane_of(partition, self.lanes.len());
        &mut self.lanes[lane]
    }

    fn records(&self) -> usize {
        self.lanes.iter().map(|b| b.records).sum()
    }

    fn is_empty(&self) -> bool {
        self.lanes.iter().all(Batch::is_empty)
    }
}

impl Ingest {
    /// Run until cancelled; the last batch is handed over before returning.
    pub fn run(self) {
        let mut state = Loop {
            routes: self
                .config
                .routes()
                .into_iter()
                .map(|(t, r)| (t.to_owned(), r))
                .collect(),
            error_routes: self
                .config
                .error_routes()
                .into_iter()
                .map(|(t, r)| (t.to_owned(), r))
                .collect(),
            next: HashMap::new(),
            sought: HashSet::new(),
            seen: Seen::default(),
            lanes: (0..self.batches.len().max(1))
                .map(|_| Batch::default())
                .collect(),
            last_flush: Instant::now(),
        };
        let topics: Vec<String> = self.config.all_topics();
        while !self.cancel.is_cancelled() && !self.start(&topics, &mut state) {
            std::thread::sleep(Duration::from_secs(1));
        }
        let interval = Duration::from_millis(self.config.serve.checkpoint_interval_ms);
        while !self.cancel.is_cancelled() {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => self.handle(&mut state, &message),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error");
                    self.status
                        .write(|s| s.readiness.last_error = Some(format!("kafka: {e}")));
                }
                None => {}
            }
            if state.records() >= self.config.serve.checkpoint_max_records
                || (!state.is_empty() && state.last_flush.elapsed() >= interval)
            {
                self.flush(&mut state);
            }
        }
        self.flush(&mut state);
    }

    /// Load stored offsets and assign (manual) or subscribe (group). False: retry later.
    fn start(&self, topics: &[String], state: &mut Loop) -> bool {
        let stored = match self.runtime.block_on(self.store.stored_offsets(topics)) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load stored offsets yet");
                return false;
            }
        };
        for (topic, partition, next) in stored {
            state.next.insert((topic, partition), Some(next));
        }
        match self.config.kafka.assignment {
            Assignment::Group => {
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                if let Err(e) = self.consumer.subscribe(&names) {
                    tracing::warn!(error = %e, "subscribe failed");
                    return false;
                }
                true
            }
            Assignment::Manual => self.assign_manually(topics, state),
        }
    }

    fn assign_manually(&self, topics: &[String], state: &mut Loop) -> bool {
        let (index, replicas) = (
            self.config.kafka.replica_index,
            self.config.kafka.replicas.max(1),
        );
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            let metadata = match self
                .consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "metadata unavailable");
                    self.set_broker(false, Some(format!("kafka metadata: {e}")));
                    return false;
                }
            };
            let Some(t) = metadata
                .topics()
                .first()
                .filter(|t| !t.partitions().is_empty())
            else {
                tracing::warn!(%topic, "topic has no partitions yet");
                return false;
            };
            for p in t
                .partitions()
                .iter()
                .filter(|p| (p.id() as u32) % replicas == index)
            {
                let offset = match state.next.get(&(topic.clone(), p.id())) {
                    Some(Some(n)) => Offset::Offset(*n),
                    _ => {
                        state.next.insert((topic.clone(), p.id()), None);
                        Offset::Beginning
                    }
                };
                if tpl.add_partition_offset(topic, p.id(), offset).is_err() {
                    return false;
                }
            }
        }
        let assigned = self.consumer.assign(&tpl).is_ok();
        self.set_broker(assigned, None);
        assigned
    }

    fn set_broker(&self, up: bool, error: Option<String>) {
        self.status.write(|s| {
            s.readiness.broker = up;
            if error.is_some() {
                s.readiness.last_error = error;
            }
        });
    }

    fn handle(&self, state: &mut Loop, message: &rdkafka::message::BorrowedMessage<'_>) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let (service, side, is_error) =
            match (state.routes.get(topic), state.error_routes.get(topic)) {
                (Some(&(service, side)), _) => (service, side, false),
                (None, Some(&(service, side))) => (service, side, true),
                (None, None) => return,
            };
        let tp = (topic.to_owned(), partition);
        let expected = match state.next.get(&tp) {
            Some(n) => *n,
            None => {
                // Group protocol: first record of a newly assigned partition; ask the store where it stands.
                let stored = self
                    .runtime
                    .block_on(self.store.stored_offset(topic, partition))
                    .ok()
                    .flatten();
                state.next.insert(tp.clone(), stored);
                stored
            }
        };
        if let Some(next) = expected {
            if offset < next {
                // Already in the state: skip; far behind (Kafka commit lost), seek once.
                if next - offset > 1000 && state.sought.insert(tp.clone()) {
                    let _ = self.consumer.seek(
                        topic,
                        partition,
                        Offset::Offset(next),
                        Duration::from_secs(1),
                    );
                }
                return;
            }
        }
        if state.seen.needs_load(topic, partition)
            && !self.load_identities(state, (topic, partition), (service, side))
        {
            return; // shutting down before the partition's memory was loaded: nothing consumed
        }
        let record = crate::kafka_tools::record_view(message);
        let event_ms = if is_error {
            // A dead-letter record: counted for `error_parity`, never compared.
            state
                .lane(partition)
                .add_other(service, side, "errors", "error_topic", None);
            None
        } else {
            self.process(state, service, side, &record)
        };
        state.lane(partition).advance(
            (topic, partition, offset),
            (service, side),
            expected,
            event_ms,
        );
    }

    /// Load what a partition already counted before its first record is processed; retried while
    /// the database is away (processing without it would count re-deliveries twice). False when
    /// cancelled first.
    fn load_identities(&self, state: &mut Loop, at: (&str, i32), route: (usize, Side)) -> bool {
        let mut delay = Duration::from_millis(100);
        while !self.cancel.is_cancelled() {
            match self
                .runtime
                .block_on(self.store.partition_identities(at.0, at.1))
            {
                Ok(rows) => {
                    let added = state.seen.load(at, route, rows.iter().map(Vec::as_slice));
                    tracing::debug!(
                        topic = at.0,
                        partition = at.1,
                        identities = added,
                        "partition memory loaded"
                    );
                    return true;
                }
                Err(e) => {
                    tracing::warn!(topic = at.0, partition = at.1, error = %e, "cannot load the partition's event identities yet");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        false
    }

    /// Extract and add one record to the batch; returns its event time when it became an event.
    fn process(
        &self,
        state: &mut Loop,
        service: usize,
        side: Side,
        record: &RecordView<'_>,
    ) -> Option<i64> {
        let payload_len = record.payload.as_ref().map_or(0, |p| p.len());
        let sample = |r: &RecordView<'_>| {
            let bytes: &[u8] = r.payload.as_deref().unwrap_or_default();
            (
                r.topic.as_ref().to_owned(),
                r.partition,
                r.offset,
                bytes.to_vec(),
            )
        };
        if payload_len > self.config.kafka.max_message_bytes {
            let (t, p, o, b) = sample(record);
            state.lane(record.partition).add_other(
                service,
                side,
                "unparseable",
                "too_large",
                Some((&t, p, o, &b)),
            );
            return None;
        }
        let plan = &self.config.plans[service];
        let side_plan = if side == Side::Baseline {
            &plan.baseline
        } else {
            &plan.candidate
        };
        match extract(side_plan, record, true) {
            Outcome::Event(event) => {
                if matches!(
                    event.content.as_ref().map(|c| &c.0),
                    Some(crate::core::event::Content::Bytes(_))
                ) {
                    // Not JSON: still compared as bytes (as `diff` does), but flagged and sampled.
                    let (t, p, o, b) = sample(record);
                    state.lane(record.partition).note(
                        service,
                        side,
                        "flagged",
                        "not_json",
                        Some((&t, p, o, &b)),
                    );
                }
                let event_ms = event
                    .event_time_ms
                    .or(record.timestamp_ms)
                    .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                let window_ms = (self.config.services[service].window_seconds as i64)
                    .saturating_mul(1000)
                    .max(1);
                let key_hash = key_hash(&event.key);
                let position = if plan.has_position {
                    event.position.unwrap_or(0)
                } else {
                    0
                };
                let identity =
                    event_identity(key_hash, position, event.operation as u8, event.digest);
                if !state.seen.insert(service, side, identity) {
                    let lane = state.lane(record.partition);
                    lane.add_duplicate(service, side, event.operation);
                    return Some(event_ms);
                }
                let e = BatchEvent {
                    service,
                    side,
                    key_hash,
                    position,
                    operation: event.operation,
                    digest: event.digest,
                    identity,
                    arrival: record.offset,
                    event_ms,
                    window_start_ms: event_ms.div_euclid(window_ms) * window_ms,
                    partition: record.partition,
                    record_ms: record.timestamp_ms,
                };
                let lane = state.lane(record.partition);
                lane.add_event(e, &event.key, &event);
                lane.remember(&record.topic, record.partition, identity);
                Some(event_ms)
            }
            Outcome::Rejected(reason) => {
                let (t, p, o, b) = sample(record);
                state.lane(record.partition).add_other(
                    service,
                    side,
                    "rejected",
                    reason.as_str(),
                    Some((&t, p, o, &b)),
                );
                None
            }
            Outcome::Skipped(skip) => {
                state.lane(record.partition).add_other(
                    service,
                    side,
                    "skipped",
                    skip.as_str(),
                    None,
                );
                None
            }
        }
    }

    /// Hand every lane's batch to its checkpointer (blocking while that lane's channel is full:
    /// backpressure).
    fn flush(&self, state: &mut Loop) {
        state.last_flush = Instant::now();
        if state.is_empty() {
            return;
        }
        let ends = self
            .end_offsets
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        for (lane, sender) in self.batches.iter().enumerate() {
            let Some(slot) = state.lanes.get_mut(lane) else {
                continue;
            };
            if slot.is_empty() {
                continue;
            }
            let mut batch = std::mem::take(slot);
            for ((topic, partition), p) in batch.partitions.iter_mut() {
                p.end_offset = ends.get(&(topic.clone(), *partition)).copied();
                state
                    .next
                    .insert((topic.clone(), *partition), Some(p.next_offset));
            }
            if sender.blocking_send(batch).is_err() {
                tracing::error!("checkpointer is gone; stopping ingestion");
                self.cancel.cancel();
                return;
            }
        }
    }
}

/// Ask the broker for the end offsets of every configured topic's partitions, with a client of
/// its own so the hot loop never waits on it. `Err` means the broker is not reachable.
pub fn fetch_end_offsets(
    client: &BaseConsumer,
    topics: &[String],
) -> Result<HashMap<(String, i32), i64>, rdkafka::error::KafkaError> {
    let timeout = Duration::from_secs(2);
    let mut ends = HashMap::new();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), timeout)?;
        for t in metadata.topics() {
            for p in t.partitions() {
                let (_, high) = client.fetch_watermarks(topic, p.id(), timeout)?;
                ends.insert((topic.clone(), p.id()), high);
            }
        }
    }
    Ok(ends)
}
