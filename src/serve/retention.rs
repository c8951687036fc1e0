//! The pruner: every few minutes, each service's windows and delivery samples older than
//! `[store] retention_days` of event time and its bad-message samples older than that in wall
//! time are deleted (`store::retention`), a small batch per short transaction with a pause between
//! batches, so checkpoints never wait behind it. Every replica may run it: deletes are idempotent.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::retention::prune_batch;
use crate::store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows per table and batch.
const BATCH: i64 = 1_000;
/// Between two batches: the database serves checkpoints meanwhile.
const PAUSE: Duration = Duration::from_millis(50);
/// Between two sweeps over all services.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Prune until cancelled; the first sweep runs at once.
pub async fn run(
    config: std::sync::Arc<Config>,
    store: Store,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let retention_ms = i64::from(config.store.retention_days).saturating_mul(86_400_000);
    loop {
        for service in &config.services {
            let Some(id) = store.service_id(&service.name) else {
                continue;
            };
            loop {
                let pruned = tokio::select! {
                    () = cancel.cancelled() => return,
                    p = prune_batch(&store.pool, id, retention_ms, BATCH) => p,
                };
                match pruned {
                    Ok(p) => {
                        for (table, n) in [
                            ("windows", p.windows),
                            ("deliveries", p.deliveries),
                            ("bad_messages", p.bad_messages),
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
