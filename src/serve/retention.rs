//! The pruner: every few minutes, each service's windows and delivery samples older than
//! `[store] retention_days` of event time and its bad-message samples older than that in wall
//! time are deleted (`store::retention`), a small batch per short transaction with a pause between
//! batches, so checkpoints never wait behind it. Every replica may run it: deletes are idempotent.
//! Identities behind the dedupe horizon (`[serve] dedupe_horizon_seconds`) are pruned too.
//! The event log is kept `[store] rewind_minutes` behind each service's newest event, except for a
//! service whose `compare_from = "auto"` start is not decided yet: that start is rebuilt from it.

use crate::config::model::CompareFrom;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::FIRST_EPOCH;
use crate::store::retention::{prune_batch, prune_identities, prune_log};
use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows per table and batch.
const BATCH: i64 = 1_000;
/// Between two batches: the database serves checkpoints meanwhile.
const PAUSE: Duration = Duration::from_millis(50);
/// Between two sweeps over all services.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Whether the service's event log may be cut: not while `compare_from = "auto"` has not decided
/// the start (the first compared epoch is rebuilt from the log, however far back it lies).
async fn log_prunable(
    store: &Store,
    id: i16,
    service: &crate::config::model::ServiceConfig,
) -> Result<bool, crate::store::StoreError> {
    if service.compare_from != CompareFrom::Auto {
        return Ok(true);
    }
    let (epoch, _) = crate::store::epochs::current(&store.pool, id, &service.name, None).await?;
    Ok(epoch.id != FIRST_EPOCH)
}

/// Prune until cancelled; the first sweep runs at once.
pub async fn run(
    config: std::sync::Arc<Config>,
    store: Store,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let retention_ms = i64::from(config.store.retention_days).saturating_mul(86_400_000);
    let rewind_ms = i64::from(config.store.rewind_minutes).saturating_mul(60_000);
    let horizon_ms = config.serve.dedupe_horizon_ms();
    loop {
        for service in &config.services {
            let Some(id) = store.service_id(&service.name) else {
                continue;
            };
            loop {
                let pruned = tokio::select! {
                    () = cancel.cancelled() => return,
                    p = async {
                        let mut p = prune_batch(&store.pool, id, retention_ms, BATCH).await?;
                        p.event_ids = prune_identities(&store.pool, id, horizon_ms, BATCH).await?;
                        if log_prunable(&store, id, service).await? {
                            p.event_log = prune_log(&store.pool, id, rewind_ms, BATCH).await?;
                        }
                        Ok::<_, crate::store::StoreError>(p)
                    } => p,
                };
                match pruned {
                    Ok(p) => {
                        for (table, n) in [
                            ("windows", p.windows),
                            ("deliveries", p.deliveries),
                            ("bad_messages", p.bad_messages),
                            ("event_log", p.event_log),
                            ("event_ids", p.event_ids),
                        ] {
                            metrics.pruned_rows.with_label_values(&[table]).inc_by(n);
                        }
                        if p.total() == 0 {
                            break;
                        }
                        tracing::debug!(service = %service.name, ?p, "pruned");
                    }
                    Err(e) => {
                        tracing::warn!(service = %service.name, error = %e, "pruning failed; next sweep retries");
                        break;
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(PAUSE) => {}
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}
