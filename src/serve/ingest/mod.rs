//! Kafka in: one consumer for every configured topic, polled on a dedicated thread that only
//! routes: each record is copied out of librdkafka's buffer and handed, in chunks, to the worker of
//! its partition's lane (`crate::serve::lane::worker`), where extraction, deduplication and batching happen on
//! threads of their own. A bounded channel per worker is the backpressure when Postgres is slow.
//!
//! Offsets live in Postgres: a partition resumes at its stored `next_offset`, whether assigned
//! manually (here) or by the group (`crate::serve::ingest::rebalance` sets the start from the store). Records
//! below it are skipped all the same. Kafka receives a copy of the offsets after each checkpoint
//! (`crate::serve::ingest::kafka_offsets`) for lag tools, and it is never read back.

pub mod cluster;
pub mod kafka_offsets;
pub mod rebalance;
pub mod verify;

use crate::config::model::Assignment;
use crate::config::Config;
use crate::model::status::SharedStatus;
use crate::model::{Side, TopicPartition};
use crate::serve::ingest::cluster::HealthContext;
use crate::serve::ingest::kafka_offsets::{assignment_starts, Stored};
use crate::serve::ingest::rebalance::LaneContext;
use crate::serve::ingest::verify::LogCheck;
use crate::serve::lane::cursor::Starts;
use crate::serve::lane::record::{OwnedRecord, Routed};
use crate::store::Store;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// A partly filled chunk is handed over after this long (quiet topics still flow); checked at
/// every clock read (see `CLOCK_EVERY`), so under steady traffic up to 64 records later.
const CHUNK_LINGER: Duration = Duration::from_millis(20);
/// How often the assigned-partitions gauge is refreshed.
const ASSIGNMENT_REFRESH: Duration = Duration::from_secs(1);
/// Records polled between two reads of the clock (at 700,000 records/s, ~0.1 ms).
const CLOCK_EVERY: u32 = 64;

/// End offsets per partition as last fetched from the broker (shared with the evaluator).
/// Build a consumer (metadata client) from `[kafka]`.
pub fn consumer(config: &Config) -> Result<BaseConsumer, rdkafka::error::KafkaError> {
    client_config(config).create()
}

/// The evaluator's metadata client, whose errors are recorded for readiness.
pub fn health_consumer(
    config: &Config,
    context: HealthContext,
) -> Result<BaseConsumer<HealthContext>, rdkafka::error::KafkaError> {
    client_config(config).create_with_context(context)
}

/// The ingest consumer: `[kafka]` plus the context that releases revoked partitions cleanly.
pub fn lane_consumer(
    config: &Config,
    context: LaneContext,
) -> Result<BaseConsumer<LaneContext>, rdkafka::error::KafkaError> {
    client_config(config).create_with_context(context)
}

/// How long librdkafka waits before fetching again for a partition whose prefetched queue was full.
const FETCH_QUEUE_BACKOFF_MS: &str = "20";

/// `[kafka]` as librdkafka properties; pass-through properties come last so they win.
fn client_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("client.id", "paritygate")
        // librdkafka stops fetching a partition whose prefetched queue is over its thresholds and
        // looks again only after this backoff (default 1000 ms). Serve reads slower than the
        // broker serves, so the queue fills, the lanes drain it well within a second, and then
        // everything waited for the backoff: the machine sat idle ~0.25-0.5 s in every 2 s.
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        // Connection failures (facility FAIL) are logged at warning or above: they must reach the
        // context whatever the process' own log level (`crate::serve::ingest::cluster::log`).
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c
}

/// The consumer thread's parts (rdkafka's consumer has no `Debug`, hence the manual impl below).
pub struct Ingest {
    /// Its context holds the pending chunks and the workers' inboxes, indexed by lane.
    pub consumer: Arc<BaseConsumer<LaneContext>>,
    /// `paritygate_assigned_partitions`: this replica's current share of the partitions.
    pub assigned: prometheus::IntGauge,
    pub config: Arc<Config>,
    pub store: Store,
    pub runtime: Handle,
    pub status: SharedStatus,
    /// Manual assignment notes its explicit starts here for the lanes (`crate::serve::lane::cursor`).
    pub starts: Starts,
    /// Checks each partition's log against the record counted last before assigning it.
    pub check: LogCheck,
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("brokers", &self.config.kafka.brokers)
            .finish_non_exhaustive()
    }
}

/// The lane (worker and checkpointer) of a partition: fixed, so one partition's batches are
/// stored in order.
pub fn lane_of(partition: i32, lanes: usize) -> usize {
    partition.unsigned_abs() as usize % lanes.max(1)
}

impl Ingest {
    /// Run until cancelled; the last chunks are handed over and the workers told to checkpoint
    /// and stop before returning.
    pub fn run(self) {
        // Topic → (shared name, service, side, from a dead-letter topic). A topic both compared and
        // dead-letter is compared: the compared routes come last and win.
        let routes: HashMap<String, (Arc<str>, usize, Side, bool)> = self
            .config
            .error_routes()
            .into_iter()
            .map(|(t, r)| (t, r, true))
            .chain(self.config.routes().into_iter().map(|(t, r)| (t, r, false)))
            .map(|(t, (service, side), is_error)| {
                (t.to_owned(), (Arc::from(t), service, side, is_error))
            })
            .collect();
        let topics: Vec<String> = self.config.all_topics();
        while !self.cancel.is_cancelled() && !self.start(&topics) {
            std::thread::sleep(Duration::from_secs(1));
        }
        let lanes = self.consumer.context().lanes();
        let mut last_handover = Instant::now();
        let mut last_assignment = None::<Instant>;
        // The clock is read once per CLOCK_EVERY records, and after every empty poll: two reads
        // per record were ~4 % of this thread's CPU.
        let mut polls_since_clock = CLOCK_EVERY;
        // With a cluster per side each consumer adds its share to the one gauge.
        let mut assigned = 0;
        while !self.cancel.is_cancelled() {
            if polls_since_clock >= CLOCK_EVERY {
                polls_since_clock = 0;
                let now = Instant::now();
                // Rebalances change it under the group protocol; reading it is a copy of the list.
                if last_assignment.is_none_or(|t| now.duration_since(t) >= ASSIGNMENT_REFRESH) {
                    last_assignment = Some(now);
                    if let Ok(list) = self.consumer.assignment() {
                        let count = list.count() as i64;
                        self.assigned.add(count - assigned);
                        assigned = count;
                    }
                }
                if now.duration_since(last_handover) >= CHUNK_LINGER {
                    last_handover = now;
                    if !self.consumer.context().hand_over_all() {
                        self.worker_gone();
                        break;
                    }
                }
            }
            polls_since_clock += 1;
            match self.consumer.poll(Duration::from_millis(10)) {
                Some(Ok(message)) => {
                    let Some((topic, service, side, is_error)) = routes.get(message.topic()) else {
                        continue;
                    };
                    let lane = lane_of(message.partition(), lanes);
                    let routed = Routed {
                        record: OwnedRecord::copy_from(&message, topic.clone()),
                        service: *service,
                        side: *side,
                        is_error: *is_error,
                    };
                    if !self.consumer.context().push(lane, routed) {
                        self.worker_gone();
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error");
                    self.status
                        .write(|s| s.readiness.last_error = Some(format!("kafka: {e}")));
                }
                None => polls_since_clock = CLOCK_EVERY,
            }
        }
        self.assigned.sub(assigned);
        self.consumer.context().stop_all();
    }

    fn worker_gone(&self) {
        tracing::error!("an ingest worker is gone; stopping ingestion");
        self.cancel.cancel();
    }

    /// Load stored offsets and assign (manual) or subscribe (group). False: retry later.
    /// Under the group the offsets are read again at each assignment (`crate::serve::ingest::rebalance`); loading
    /// them here first still makes a replica join only once its database answers, so its first
    /// assignment does not fall back to reading every partition from the beginning.
    fn start(&self, topics: &[String]) -> bool {
        let stored = match self
            .runtime
            .block_on(self.store.stored_offsets(self.config.sides(), topics))
        {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load stored offsets yet");
                return false;
            }
        };
        match self.config.kafka.assignment {
            Assignment::Group => {
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                if let Err(e) = self.consumer.subscribe(&names) {
                    tracing::warn!(error = %e, "subscribe failed");
                    return false;
                }
                true
            }
            Assignment::Manual => self.assign_manually(topics, &stored),
        }
    }

    fn assign_manually(&self, topics: &[String], stored: &Stored) -> bool {
        let (index, replicas) = (
            self.config.kafka.replica_index,
            self.config.kafka.replicas.max(1),
        );
        let mut mine: Vec<TopicPartition> = Vec::new();
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
            mine.extend(
                t.partitions()
                    .iter()
                    .filter(|p| (p.id() as u32) % replicas == index)
                    .map(|p| TopicPartition::new(topic.clone(), p.id())),
            );
        }
        let mut tpl = TopicPartitionList::new();
        let positions = assignment_starts(&mine, stored, Some(&self.check), &self.starts);
        for (topic, partition, offset) in &positions {
            if tpl
                .add_partition_offset(topic, *partition, *offset)
                .is_err()
            {
                return false;
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
}

/// What one fetch of end offsets found: the ends of the partitions of the topics that exist,
/// and the configured topics the broker does not know (with its error).
#[derive(Debug, Default)]
pub struct Fetched {
    pub ends: HashMap<TopicPartition, i64>,
    pub missing: Vec<(String, String)>,
}

/// Ask the broker for the end offsets of every configured topic's partitions, with a client of
/// its own so the hot loop never waits on it. `Err` means the broker is not reachable.
pub fn fetch_end_offsets<C: rdkafka::consumer::ConsumerContext>(
    client: &BaseConsumer<C>,
    topics: &[String],
) -> Result<Fetched, rdkafka::error::KafkaError> {
    let timeout = Duration::from_secs(2);
    let mut fetched = Fetched::default();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), timeout)?;
        for t in metadata.topics() {
            if let Some(error) = t.error() {
                let error = rdkafka::error::RDKafkaErrorCode::from(error);
                fetched.missing.push((topic.clone(), error.to_string()));
                continue;
            }
            if t.partitions().is_empty() {
                fetched
                    .missing
                    .push((topic.clone(), "the broker lists no partitions".into()));
            }
            for p in t.partitions() {
                let (_, high) = client.fetch_watermarks(topic, p.id(), timeout)?;
                fetched
                    .ends
                    .insert(TopicPartition::new(topic.clone(), p.id()), high);
            }
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetching_resumes_soon_after_a_full_queue_unless_the_config_says_otherwise() {
        let path = std::path::Path::new("fixtures/demo/paritygate.toml");
        let mut config = Config::load(path).expect("the demo config loads");
        assert_eq!(
            client_config(&config).get("fetch.queue.backoff.ms"),
            Some(FETCH_QUEUE_BACKOFF_MS)
        );
        config
            .kafka
            .properties
            .insert("fetch.queue.backoff.ms".into(), "500".into());
        assert_eq!(
            client_config(&config).get("fetch.queue.backoff.ms"),
            Some("500")
        );
    }
}
