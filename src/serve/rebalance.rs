//! Giving partitions up cleanly under the group protocol: the consumer's context, which also holds
//! the chunks of records the consumer thread has routed but not yet handed to the lane workers.
//!
//! When the group coordinator revokes partitions, librdkafka calls [`LaneContext::pre_rebalance`] on
//! the consumer thread, inside `poll`, before the partitions can be assigned elsewhere. It hands the
//! pending chunks over, asks every worker to checkpoint what it holds and waits until those
//! transactions committed; the workers then forget the revoked partitions' offsets and loaded
//! identities. So the next owner starts exactly where this replica's state ends, and neither
//! replica's compare-and-set fails (before this, the losing replica stopped and had to restart).

use super::worker::{Input, Routed};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
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
}

impl LaneContext {
    pub fn new(workers: Vec<SyncSender<Input>>) -> LaneContext {
        LaneContext {
            pending: Mutex::new((0..workers.len().max(1)).map(|_| Vec::new()).collect()),
            workers,
            stopping: AtomicBool::new(false),
        }
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
    pub fn revoke(&self, partitions: &[(String, i32)]) {
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

impl ClientContext for LaneContext {}

impl ConsumerContext for LaneContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions: Vec<(String, i32)> = list
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            if !partitions.is_empty() {
                self.revoke(&partitions);
            }
        }
    }
}
