//! An ingest worker: owns the partitions of one checkpoint lane (partition number modulo lanes),
//! turns their records into that lane's batch with the pure core, and hands each batch to the
//! lane's checkpointer. Extraction is the CPU-heavy part of the service, so the lanes run on
//! threads of their own and the consumer thread only polls and routes (see docs/architecture.md).
//!
//! Everything a partition needs is here: where it stands (`crate::serve::lane::cursor`: records below its stored
//! offset are already in the state and skipped, unless its log went back), the identities of the
//! events it already counted (loaded from the store before its first record, `crate::serve::lane::dedupe`), and
//! the batch being built.

use crate::config::Config;
use crate::core::avro::Schemas;
use crate::model::{TallyKind, TopicPartition};
use crate::serve::lane::cursor::{Cursor, Starts, Step};
use crate::serve::lane::dedupe::Seen;
use crate::serve::lane::intake;
use crate::serve::lane::record::{Input, Routed};
use crate::serve::progress::EndOffsets;
use crate::serve::progress::Heartbeats;
use crate::store::batch::{Batch, PartitionProbe};
use crate::store::Store;
use rustc_hash::FxHashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

// When a lane hands its batch to the checkpointer: the batching policy between the size and time
// bounds of `[serve]` and the latency of settling.

/// No input for this long: the lane has caught up (or its partitions are quiet).
pub const INPUT_QUIET: Duration = Duration::from_millis(50);
/// Quiet lanes checkpoint at most this often, so a trickle of records is not one transaction each.
const QUIET_FLUSH_SPACING: Duration = Duration::from_millis(100);

/// Whether a lane checkpoints its (non-empty) batch of `records` now: when the batch is full, when
/// `interval` has passed since the last checkpoint, or as soon as its input went quiet. Waiting
/// out the interval once nothing more arrives would only delay the state (and every verdict
/// settling on it) by up to a whole interval after a catch-up or a burst ends.
pub fn flush_due(
    records: usize,
    max_records: usize,
    since_last: Duration,
    interval: Duration,
    quiet: bool,
) -> bool {
    records >= max_records
        || since_last >= interval
        || (quiet && since_last >= QUIET_FLUSH_SPACING.min(interval))
}

/// How a lane moves its consumer forward on a partition that is far behind (implemented by the
/// consumer, `super::crate::serve::ingest`): the lane never polls, it only seeks.
pub trait Seek: Send + Sync {
    fn seek(&self, topic: &str, partition: i32, offset: i64);
}

/// One lane's worker.
pub struct Worker {
    pub seek: Arc<dyn Seek>,
    pub config: Arc<Config>,
    /// Each side's Avro schema source (a Schema Registry), when a side writes Avro.
    pub schemas: Schemas,
    pub store: Store,
    pub runtime: Handle,
    pub records: Receiver<Input>,
    pub batches: mpsc::Sender<Batch>,
    pub end_offsets: EndOffsets,
    /// Where the assignments explicitly started each partition (a log reset is told by it).
    pub starts: Starts,
    /// This lane's sign of life, beaten on every turn of the loop (`/readyz` tells a blocked lane).
    pub heartbeats: Heartbeats,
    pub lane: usize,
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

/// A lane's state between two checkpoints.
#[derive(Debug, Default)]
pub struct Lane {
    /// Where each partition stands: its stored offset as of the last batch handed over.
    cursors: FxHashMap<TopicPartition, Cursor>,
    probe: PartitionProbe,
    /// Identities of the events already counted on this lane's partitions.
    seen: Seen,
    batch: Batch,
}

impl Worker {
    /// Run until the consumer thread says stop (it does when cancelled); the last batch is
    /// committed before returning.
    pub fn run(self) {
        let mut lane = Lane {
            seen: Seen::new(self.config.serve.dedupe_horizon_ms()),
            ..Lane::default()
        };
        lane.batch.scopes = self.store.scopes_of(&self.config.service_names());
        let interval = Duration::from_millis(self.config.serve.checkpoint_interval_ms);
        let mut last_flush = Instant::now();
        loop {
            self.heartbeats.beat(self.lane);
            let mut quiet = false;
            match self.records.recv_timeout(INPUT_QUIET) {
                Ok(Input::Records(chunk)) => {
                    for routed in &chunk {
                        self.handle(&mut lane, routed);
                    }
                    note_last_records(&mut lane.batch, &chunk);
                }
                Ok(Input::Revoke { partitions, done }) => {
                    self.release(&mut lane, &partitions);
                    last_flush = Instant::now();
                    let _ = done.send(());
                }
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    // Committed before the consumer closes and the group hands the partitions on.
                    self.release(&mut lane, &[]);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => quiet = true,
            }
            if !lane.batch.is_empty()
                && flush_due(
                    lane.batch.records,
                    self.config.serve.checkpoint_max_records,
                    last_flush.elapsed(),
                    interval,
                    quiet,
                )
            {
                self.flush(&mut lane, None);
                last_flush = Instant::now();
            }
        }
    }

    /// Checkpoint the lane's batch and wait until it committed, then forget `partitions`: if they
    /// come back, their stored offsets and identities are read again (another replica may have
    /// moved them on meanwhile).
    fn release(&self, state: &mut Lane, partitions: &[TopicPartition]) {
        if !state.batch.is_empty() {
            let (committed, confirmed) = sync_channel(1);
            self.flush(state, Some(committed));
            if confirmed.recv().is_err() {
                tracing::warn!("the checkpoint before a revocation did not commit");
            }
        }
        for TopicPartition { topic, partition } in partitions {
            state
                .cursors
                .remove(&TopicPartition::new(topic.clone(), *partition));
            state.seen.forget(topic, *partition);
        }
    }

    fn handle(&self, state: &mut Lane, routed: &Routed) {
        let owned = &routed.record;
        let (service, side) = (routed.service, routed.side);
        let (topic, partition, offset) = (&*owned.topic, owned.partition, owned.offset);
        let key = state.probe.of(topic, partition);
        let cursor = match state.cursors.get_mut(key) {
            Some(cursor) => cursor,
            None => {
                // First record of this partition here: ask the store where it stands.
                let Some(stored) =
                    self.retry(|| self.store.stored_partition(side, topic, partition))
                else {
                    return; // cancelled: nothing consumed
                };
                let start = self.starts.of(topic, partition);
                let cursor = Cursor::new(stored.map(|s| s.0), stored.map_or(0, |s| s.1), start);
                state.cursors.entry(key.clone()).or_insert(cursor)
            }
        };
        let expected = cursor.stored;
        let step = cursor.observe(offset);
        let (arrival_base, arrival) = (cursor.arrival_base, cursor.arrival(offset));
        match step {
            Step::Take => {}
            Step::Skip { seek_to } => {
                // Already in the state. Far behind (the partition was assigned while the store
                // could not say where it stands, so it started at the beginning): seek, once.
                if let Some(next) = seek_to {
                    self.seek.seek(topic, partition, next);
                }
                return;
            }
            Step::LogReset { after } => {
                tracing::warn!(
                    topic,
                    partition,
                    after,
                    offset,
                    "the partition's log went back (topic recreated or truncated): its new records \
                     are read from here, and events already counted are recognized by identity"
                );
                let at = (topic, partition, offset);
                state
                    .batch
                    .rewind(at, (service, side), expected, arrival_base);
                state
                    .batch
                    .tally(service, side, TallyKind::LogResets, "log_reset");
            }
        }
        if state.seen.needs_load(topic, partition) {
            let horizon_ms = self.config.serve.dedupe_horizon_ms();
            let Some(memory) = self.retry(|| {
                self.store
                    .partition_identities(side, topic, partition, horizon_ms)
            }) else {
                return; // cancelled before the partition's memory was loaded: nothing consumed
            };
            let added = state.seen.load(
                (topic, partition),
                (service, side),
                memory.newest_ms,
                memory.rows.iter().map(|(ids, at)| (ids.as_slice(), *at)),
            );
            tracing::debug!(
                topic,
                partition,
                identities = added,
                "partition memory loaded"
            );
        }
        let record = owned.view();
        let event_ms = if routed.is_error {
            state
                .batch
                .without_event()
                .note(service, side, TallyKind::Errors, "error_topic", None);
            None
        } else {
            intake::admit(
                (&self.config, &self.schemas),
                (&mut state.batch, &mut state.seen),
                (service, side),
                &record,
                arrival,
            )
        };
        state.batch.advance(
            (topic, partition, offset),
            (service, side),
            expected,
            event_ms,
        );
    }

    /// A store read this worker cannot go on without, retried with backoff while the database is
    /// away (going on without it would count re-deliveries twice). `None` when cancelled first.
    fn retry<T, F>(&self, mut read: impl FnMut() -> F) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, crate::store::StoreError>>,
    {
        let mut delays =
            crate::serve::retry::delays(Duration::from_millis(100), Duration::from_secs(5));
        while !self.cancel.is_cancelled() {
            match self.runtime.block_on(read()) {
                Ok(v) => return Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the partition's stored state yet");
                    std::thread::sleep(delays.next().unwrap_or(Duration::from_secs(5)));
                }
            }
        }
        None
    }

    /// Hand the lane's batch to its checkpointer (blocking while the channel is full: backpressure);
    /// `committed` is told once the batch's transaction committed.
    fn flush(&self, state: &mut Lane, committed: Option<SyncSender<()>>) {
        if state.batch.is_empty() {
            return;
        }
        let ends = self.end_offsets.snapshot().offsets;
        let mut next = Batch::sized_like(&state.batch);
        next.scopes = self.store.scopes_of(&self.config.service_names());
        let mut batch = std::mem::replace(&mut state.batch, next);
        batch.committed = committed;
        for (TopicPartition { topic, partition }, p) in batch.partitions.iter_mut() {
            p.end_offset = ends
                .get(&TopicPartition::new(topic.clone(), *partition))
                .copied();
            if let Some(cursor) = state
                .cursors
                .get_mut(&TopicPartition::new(topic.clone(), *partition))
            {
                cursor.handed_over(p.next_offset);
            }
        }
        if self.batches.blocking_send(batch).is_err() {
            tracing::error!("checkpointer is gone; stopping ingestion");
            self.cancel.cancel();
        }
    }
}

/// Fingerprint each partition's last record of a chunk, the one a checkpoint then stores as the
/// record before the partition's next offset (`crate::serve::ingest::verify` checks it at the next assignment).
/// Once per partition and chunk, not per record: hashing every record would cost ~3 % of a lane.
fn note_last_records(batch: &mut Batch, chunk: &[Routed]) {
    // Records of one topic share the routing table's name (one `Arc`): its address identifies the
    // topic, so this scan compares integers, not names.
    let mut done: Vec<(*const u8, i32)> = Vec::new();
    for routed in chunk.iter().rev() {
        let r = &routed.record;
        let id = (Arc::as_ptr(&r.topic).cast::<u8>(), r.partition);
        if done.contains(&id) {
            continue;
        }
        done.push(id);
        batch.note_last_record(&r.topic, r.partition, r.offset, r.fingerprint());
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;

#[cfg(test)]
mod flush_tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_busy_lane_checkpoints_when_full_or_when_the_interval_passed() {
        let ms = Duration::from_millis;
        assert!(!flush_due(10, 100, ms(500), SECOND, false));
        assert!(flush_due(100, 100, ms(1), SECOND, false));
        assert!(flush_due(10, 100, SECOND, SECOND, false));
    }

    #[test]
    fn a_quiet_lane_checkpoints_at_once_but_not_more_often_than_the_spacing() {
        let ms = Duration::from_millis;
        assert!(flush_due(10, 100, ms(100), SECOND, true));
        assert!(!flush_due(10, 100, ms(99), SECOND, true));
        // A shorter configured interval still bounds the wait.
        assert!(flush_due(10, 100, ms(20), ms(20), true));
    }
}
