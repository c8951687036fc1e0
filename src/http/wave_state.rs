//! Waves as they are now: the live gates of their services joined with the stored sign-offs, the
//! two wave metrics, and the watcher that keeps those metrics current and says loudly (an
//! `error` log line) when a sign-off goes stale.

use super::services::{all_statuses, completed, config_digest};
use super::{ApiError, AppState};
use crate::config::model::WaveConfig;
use crate::metrics::Metrics;
use crate::signoff::SignoffRecord;
use crate::signoff::{self, ServiceSnapshot, Snapshot, WaveInput, WaveStatus};
use crate::store::audit;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The wave's services as served right now (a configured wave only names configured services),
/// from `served`: every configured service's status, in config order.
fn current_services(
    state: &AppState,
    wave: &WaveConfig,
    served: &[crate::model::status::ServiceStatus],
) -> Vec<ServiceSnapshot> {
    wave.services
        .iter()
        .filter_map(|name| {
            let at = state.config.services.iter().position(|s| &s.name == name)?;
            Some((&state.config.services[at], served.get(at)?))
        })
        .map(|(service, status)| {
            let gate = completed(state, service, status.gate.clone());
            ServiceSnapshot {
                service: service.name.clone(),
                config_digest: config_digest(state, service),
                canonical_version: gate.canonical_version.clone(),
                epoch: status.epoch.as_ref().map(|e| e.id),
                gate,
            }
        })
        .collect()
}

/// Every configured wave with its services as served now.
pub async fn inputs(state: &AppState) -> Vec<WaveInput> {
    let served = all_statuses(state).await;
    state
        .config
        .waves
        .iter()
        .map(|w| WaveInput {
            id: w.id,
            name: w.name.clone(),
            required_approvals: w.required_approvals,
            services: current_services(state, w, &served),
        })
        .collect()
}

/// The snapshot a sign-off or revocation of `wave` records.
pub async fn snapshot(state: &AppState, wave: &WaveConfig) -> Snapshot {
    let served = all_statuses(state).await;
    let services = current_services(state, wave, &served);
    let (verdict, reasons) = signoff::wave_verdict(&services);
    Snapshot {
        wave: wave.id,
        verdict,
        reasons,
        services,
    }
}

/// Every wave's status from the store's records; also refreshes the wave metrics.
pub async fn load(state: &AppState) -> Result<(Vec<WaveStatus>, Vec<SignoffRecord>), ApiError> {
    let rows = audit::signoffs(&state.store.pool).await?;
    let statuses = signoff::wave_statuses(inputs(state).await, &rows);
    publish(&state.metrics, &statuses);
    Ok((statuses, rows))
}

/// `wave_signed_off` and `wave_signoff_stale`, one series per configured wave.
pub fn publish(metrics: &Metrics, statuses: &[WaveStatus]) {
    for w in statuses {
        let wave = w.id.to_string();
        metrics
            .wave_signed_off
            .with_label_values(&[wave.as_str()])
            .set(i64::from(w.signed_off));
        metrics
            .wave_signoff_stale
            .with_label_values(&[wave.as_str()])
            .set(i64::from(w.stale));
    }
}

/// Re-check every wave each evaluation interval until cancelled. A sign-off turning stale is
/// logged at `error` once per transition (and again when it recovers), besides the metric.
pub async fn watch(state: AppState, cancel: CancellationToken) {
    if state.config.waves.is_empty() {
        return;
    }
    let interval = Duration::from_millis(state.config.serve.evaluation_interval_ms.max(200));
    let mut was_stale: HashMap<u32, bool> = HashMap::new();
    loop {
        // Before the migrations ran there is nothing to read (and every query would fail).
        let migrated = state.status.read(|s| s.readiness.migrations);
        let loaded = if migrated {
            Some(load(&state).await)
        } else {
            None
        };
        match loaded {
            None => {}
            Some(Ok((statuses, _))) => {
                for w in &statuses {
                    let before = was_stale.insert(w.id, w.stale).unwrap_or(false);
                    if w.stale && !before {
                        tracing::error!(wave = w.id, name = %w.name, reasons = ?w.stale_reasons,
                            "STALE SIGN-OFF: the evidence wave {} was signed off on no longer holds", w.id);
                    } else if !w.stale && before {
                        tracing::info!(wave = w.id, "wave {} sign-off is no longer stale", w.id);
                    }
                }
            }
            // Keep the last published values: a database outage says nothing about the evidence.
            Some(Err(e)) => tracing::warn!(error = %e, "cannot check wave sign-offs"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
