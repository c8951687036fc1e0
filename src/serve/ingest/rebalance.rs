//! Giving partitions up cleanly under the group protocol: the consumer's context, which also holds
//! the chunks of records the consumer thread has routed but not yet handed to the lane workers.
//!
//! When the group coordinator revokes partitions, librdkafka calls [`LaneContext::pre_rebalance`] on
//! the consumer thread, inside `poll`, before the partitions can be assigned elsewhere. It hands the
//! pending chunks over, asks every worker to checkpoint what it holds and waits until those
//! transactions committed; the workers then forget the revoked partitions' offsets and loaded
//! identities. So the next owner starts exactly where this replica's state ends, and neither
//! replica's compare-and-set fails (before this, the losing replica stopped and had to restart).
//!
//! When partitions are assigned, each starts where Postgres says (`crate::serve::ingest::kafka_offsets`), never
//! at the offset Kafka has committed for the group: that is only a copy for lag tools.

use crate::model::TopicPartition;
use crate::serve::ingest::cluster::ClusterHealth;
use crate::serve::ingest::kafka_offsets::{partition_pairs, StoredPositions};
use crate::serve::lane::record::{Input, Routed};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records per chunk handed to a worker: amortizes the channel, small enough to keep lanes busy.
pub const CHUNK: usize = 512;
/// How long a revocation waits for the workers' checkpoints before letting the rebalance go on
/// (a database outage must not hold the whole group; the compare-and-set still protects the state).
const REVOKE_WAIT: Duration = Duration::from_secs(30);

/// The consumer's context: per-lane pending chunks and the lane workers' inboxes.
#[derive(Debug)]
pub struct LaneContext {
    pending: Mutex<Vec<Vec<Routed>>>,
    workers: Vec<SyncSender<Input>>,
    /// Set by [`LaneContext::stop_all`]: the workers have checkpointed and stopped, so the
    /// revocation that closing the consumer triggers has nothing to wait for.
    stopping: AtomicBool,
    /// Where assigned partitions start (`None`: where librdkafka would, for tests without a store).
    positions: Option<StoredPositions>,
    /// `paritygate_kafka_commit_failures_total`.
    commit_failures: Option<prometheus::IntCounter>,
    /// Where this consumer's errors go (`/readyz` names the cause).
    health: Option<ClusterHealth>,
}

impl LaneContext {
    pub fn new(workers: Vec<SyncSender<Input>>) -> LaneContext {
        LaneContext {
            pending: Mutex::new((0..workers.len().max(1)).map(|_| Vec::new()).collect()),
            workers,
            stopping: AtomicBool::new(false),
            positions: None,
            commit_failures: None,
            health: None,
        }
    }

    /// Record this consumer's errors for its cluster's readiness.
    pub fn reporting_to(mut self, health: ClusterHealth) -> LaneContext {
        self.health = Some(health);
        self
    }

    /// Start assigned partitions at the stored offsets, and count failed Kafka commits.
    pub fn with_store_positions(
        mut self,
        positions: StoredPositions,
        commit_failures: prometheus::IntCounter,
    ) -> LaneContext {
        self.positions = Some(positions);
        self.commit_failures = Some(commit_failures);
        self
    }

    pub fn lanes(&self) -> usize {
        self.workers.len().max(1)
    }

    /// Queue a record for its lane; hands the chunk over once it is full. False: the worker is gone.
    pub fn push(&self, lane: usize, routed: Routed) -> bool {
        let full = {
            let mut pending = self.lock();
            let Some(chunk) = pending.get_mut(lane) else {
                return false;
            };
            chunk.push(routed);
            (chunk.len() >= CHUNK).then(|| std::mem::take(chunk))
        };
        full.is_none_or(|chunk| self.send(lane, Input::Records(chunk)))
    }

    /// Hand every non-empty pending chunk over. False: a worker is gone.
    pub fn hand_over_all(&self) -> bool {
        let chunks: Vec<(usize, Vec<Routed>)> = self
            .lock()
            .iter_mut()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(lane, c)| (lane, std::mem::take(c)))
            .collect();
        chunks
            .into_iter()
            .all(|(lane, chunk)| self.send(lane, Input::Records(chunk)))
    }

    /// Hand the last chunks over and tell every worker to checkpoint and stop.
    pub fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.hand_over_all();
        for worker in &self.workers {
            let _ = worker.send(Input::Stop);
        }
    }

    fn send(&self, lane: usize, input: Input) -> bool {
        self.workers
            .get(lane)
            .is_some_and(|w| w.send(input).is_ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Routed>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checkpoint everything consumed so far and forget `partitions` (see the module doc).
    pub fn revoke(&self, partitions: &[TopicPartition]) {
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let started = Instant::now();
        if !self.hand_over_all() {
            return;
        }
        let (done, finished) = sync_channel(self.workers.len());
        let asked = self
            .workers
            .iter()
            .filter(|w| {
                w.send(Input::Revoke {
                    partitions: partitions.to_vec(),
                    done: done.clone(),
                })
                .is_ok()
            })
            .count();
        drop(done);
        for _ in 0..asked {
            let left = REVOKE_WAIT.saturating_sub(started.elapsed());
            if finished.recv_timeout(left).is_err() {
                tracing::warn!("revoked partitions: a lane did not confirm its checkpoint in time");
                return;
            }
        }
        tracing::info!(
            partitions = partitions.len(),
            ms = started.elapsed().as_millis() as u64,
            "revoked partitions checkpointed and released"
        );
    }
}

/// The lanes seek through the consumer (a partition started at the beginning that the store has
/// far ahead: `lane::cursor`).
impl crate::serve::lane::worker::Seek for BaseConsumer<LaneContext> {
    fn seek(&self, topic: &str, partition: i32, offset: i64) {
        let _ = Consumer::seek(
            self,
            topic,
            partition,
            rdkafka::Offset::Offset(offset),
            Duration::from_secs(1),
        );
    }
}

impl ClientContext for LaneContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka consumer error");
        if let Some(health) = &self.health {
            health.record(reason.to_owned());
        }
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        match &self.health {
            Some(health) => crate::serve::ingest::cluster::log(health, level, fac, message),
            None => {
                crate::serve::ingest::cluster::log(&ClusterHealth::default(), level, fac, message)
            }
        }
    }
}

impl ConsumerContext for LaneContext {
    /// librdkafka's default strategy (as rdkafka's default implementation), with two changes:
    /// revoked partitions are checkpointed before they are given up, and assigned ones start at
    /// the stored offsets.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result: KafkaResult<()> = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(positions) = &self.positions {
                    positions.apply(partitions);
                }
                tracing::info!(
                    partitions = partitions.count(),
                    protocol = if cooperative { "cooperative" } else { "eager" },
                    "partitions assigned"
                );
                if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked = partition_pairs(partitions);
                if !revoked.is_empty() {
                    self.revoke(&revoked);
                }
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; giving the assignment up");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying the rebalance failed");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // A copy for lag tools only (see `crate::serve::ingest::kafka_offsets`): counted, never fatal.
            tracing::debug!(error = %e, "kafka offset commit failed");
            if let Some(failures) = &self.commit_failures {
                failures.inc();
            }
        }
    }
}

#[cfg(test)]
#[path = "rebalance_tests.rs"]
mod tests;
