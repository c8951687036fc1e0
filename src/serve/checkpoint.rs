//! The checkpointer: takes batches from the ingest thread and stores each in one transaction,
//! retrying with backoff while the database is unavailable (ingestion waits meanwhile: the bounded
//! channel is the backpressure). Losing a partition to another replica is fatal by design: the
//! process stops and, restarted, resumes from the stored offsets (crash-only recovery).
//! Once a batch is stored, its offsets are also committed to Kafka (`crate::serve::ingest::kafka_offsets`): a
//! copy for consumer-group lag tools, never read back as a position.

use crate::metrics::Metrics;
use crate::model::status::{Fault, SharedStatus};
use crate::model::TallyKind;
use crate::serve::ingest::kafka_offsets::KafkaCommits;
use crate::serve::ingest::rebalance::LaneContext;
use crate::serve::progress::backlog::Positions;
use crate::store::batch::Batch;
use crate::store::{Store, StoreError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One lane's checkpointer and what it reports to.
#[derive(Debug)]
pub struct Checkpointer {
    pub store: Store,
    /// Configured service names, indexed like the batches' service indexes.
    pub names: Vec<String>,
    pub status: SharedStatus,
    pub metrics: Metrics,
    pub positions: Positions,
    /// `None`: no Kafka copy (tests that store batches without a consumer).
    pub kafka: Option<KafkaCommits<LaneContext>>,
    pub cancel: CancellationToken,
}

impl Checkpointer {
    /// Store batches until the channel closes.
    pub async fn run(self, mut batches: mpsc::Receiver<Batch>) -> Result<(), StoreError> {
        let Checkpointer {
            store,
            names,
            status,
            metrics,
            positions,
            kafka,
            cancel,
        } = self;
        while let Some(batch) = batches.recv().await {
            let mut delays =
                super::retry::delays(Duration::from_millis(100), Duration::from_secs(10));
            loop {
                let timer = metrics.checkpoint_seconds.start_timer();
                match store.checkpoint(&names, &batch).await {
                    Ok(stored) => {
                        timer.observe_duration();
                        // Before confirming a revocation's checkpoint: the copy is sent while this
                        // replica still owns the partitions.
                        if let Some(kafka) = &kafka {
                            kafka.commit(&batch);
                        }
                        if let Some(committed) = &batch.committed {
                            let _ = committed.send(());
                        }
                        record(&metrics, &names, &batch, &stored);
                        positions.record(&batch);
                        status.write(|s| {
                            s.readiness.database = true;
                            for key in sides(&batch) {
                                s.faults.checkpoints.remove(&key);
                            }
                        });
                        break;
                    }
                    Err(e @ StoreError::OwnershipLost { .. }) => {
                        tracing::error!(error = %e, "stopping: another replica owns a partition of this batch");
                        cancel.cancel();
                        return Err(e);
                    }
                    Err(e) => {
                        timer.stop_and_discard();
                        metrics
                            .checkpoint_failures
                            .with_label_values(&["database"])
                            .inc();
                        let delay = delays.next().unwrap_or(Duration::from_secs(10));
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "checkpoint failed; retrying");
                        // Counting of these sides has stopped until it commits: `/readyz` and the
                        // freshness criterion say so (`IngestionFaults`).
                        let now = chrono::Utc::now();
                        status.write(|s| {
                            s.readiness.database = false;
                            s.readiness.last_error = Some(e.to_string());
                            for key in sides(&batch) {
                                let fault = s.faults.checkpoints.entry(key).or_insert(Fault {
                                    since: now,
                                    detail: String::new(),
                                });
                                fault.detail = e.to_string();
                            }
                        });
                        if cancel.is_cancelled() {
                            // Shutting down with the database away: the batch is dropped, its offsets were
                            // not stored, so it is consumed again after the restart.
                            return Ok(());
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The (service, side) pairs whose partitions a batch carries.
fn sides(batch: &Batch) -> std::collections::BTreeSet<(usize, crate::model::Side)> {
    batch
        .partitions
        .values()
        .map(|p| (p.service, p.side))
        .collect()
}

fn record(
    metrics: &Metrics,
    names: &[String],
    batch: &Batch,
    stored: &crate::store::write::Stored,
) {
    for (t, n) in &stored.tallies {
        let Some(service_name) = names.get(t.service) else {
            continue;
        };
        let (side, name) = (t.side.as_str(), t.name);
        match t.kind {
            TallyKind::Operation => {
                let new = stored
                    .new_by_operation
                    .get(&(t.service, t.side, t.name))
                    .copied()
                    .unwrap_or(0);
                metrics
                    .records
                    .with_label_values(&[service_name, side, name])
                    .inc_by(*n as u64);
                metrics
                    .events
                    .with_label_values(&[service_name, side, name])
                    .inc_by(new);
                metrics
                    .duplicates
                    .with_label_values(&[service_name, side, name])
                    .inc_by((*n as u64).saturating_sub(new));
            }
            TallyKind::Unparseable | TallyKind::Rejected | TallyKind::Flagged => {
                metrics
                    .unparseable
                    .with_label_values(&[service_name, side, name])
                    .inc_by(*n as u64);
            }
            TallyKind::LogResets => {
                metrics
                    .log_resets
                    .with_label_values(&[service_name, side])
                    .inc_by(*n as u64);
            }
            TallyKind::Skipped => {
                metrics
                    .skipped
                    .with_label_values(&[service_name, side, name])
                    .inc_by(*n as u64);
            }
            TallyKind::Errors => {}
        }
    }
    if let Some(started) = batch.started {
        metrics
            .processing_latency_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}
