//! Per-service live status and gate verdicts, served from the verdicts stored by each service's
//! evaluator (`store::served`): whichever replica answers, the answer is the same. Marked stale as
//! of the answer; without the database, the verdicts this process last read (which go stale).

use super::{ApiError, AppState};
use crate::config::model::ServiceConfig;
use crate::core::canonical::CANONICAL_VERSION;
use crate::model::status::{GateStatus, KeySummary, ServiceStatus};
use crate::model::Verdict;
use crate::store::epochs::{self, EpochEntry};
use crate::store::{served, EpochKey};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// The configured service named `name`, or 404: only configured services exist for the API.
pub(crate) fn known_service<'a>(
    state: &'a AppState,
    name: &str,
) -> Result<&'a ServiceConfig, ApiError> {
    state
        .config
        .services
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("unknown service `{name}`")))
}

/// The store's id of a configured service (a restarted replica answers from the store before it
/// registered its services again); missing only before any process registered it.
pub(crate) async fn service_id(state: &AppState, name: &str) -> Result<i16, ApiError> {
    state.store.resolve_service_id(name).await?.ok_or_else(|| {
        ApiError::Unavailable(format!(
            "service `{name}` is not registered in the store yet"
        ))
    })
}

/// `?epoch=ID` of the status, mismatches and windows endpoints.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EpochParam {
    /// An epoch id of `GET …/epochs` (default: the current epoch).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub epoch: Option<String>,
}

/// The epochs of a configured service, newest first.
pub(crate) async fn entries(
    state: &AppState,
    config: &ServiceConfig,
) -> Result<(i16, Vec<EpochEntry>), ApiError> {
    let id = service_id(state, &config.name).await?;
    let list = epochs::list(
        &state.store.pool,
        id,
        &config.name,
        config.compare_from.start_ms(),
    )
    .await?;
    Ok((id, list))
}

/// The epoch a drill-down reads: its state key and, for an epoch that ended, the status it ended
/// with (`None`: the current epoch).
#[derive(Debug, Clone)]
pub struct Viewed {
    pub key: EpochKey,
    pub ended_with: Option<ServiceStatus>,
}

impl Viewed {
    /// The settled bound the page of this epoch uses: the evaluator's current one, or the one the
    /// epoch ended with (nothing of an ended epoch settles later).
    pub async fn settled_until_ms(&self, state: &AppState, config: &ServiceConfig) -> Option<i64> {
        match &self.ended_with {
            Some(ended) => ended.settled_until_ms,
            None => service_status(state, config).await.settled_until_ms,
        }
    }
}

/// Resolve `?epoch=` (absent: the current epoch): 400 when it is not an id, 404 when the service
/// has no such epoch, or when an ended epoch never had a status (`need_status`).
pub async fn viewed(
    state: &AppState,
    config: &ServiceConfig,
    raw: Option<&str>,
    need_status: bool,
) -> Result<Viewed, ApiError> {
    let wanted = raw
        .map(|r| {
            r.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "parameter `epoch`: must be an epoch id (an integer from 0), got `{r}`"
                ))
            })
        })
        .transpose()?;
    let (id, list) = entries(state, config).await?;
    let position = match wanted {
        None => 0,
        Some(n) => list.iter().position(|e| e.epoch.id == n).ok_or_else(|| {
            ApiError::NotFound(format!("service `{}` has no epoch {n}", config.name))
        })?,
    };
    let entry = &list[position];
    let key = EpochKey {
        service_id: id,
        epoch: entry.epoch.id,
    };
    if position == 0 {
        return Ok(Viewed {
            key,
            ended_with: None,
        });
    }
    match &entry.ended_with {
        Some(status) => Ok(Viewed {
            key,
            ended_with: Some(status.clone()),
        }),
        None if need_status => Err(ApiError::NotFound(format!(
            "epoch {} of `{}` ended before its first evaluation: no status was recorded",
            entry.epoch.id, config.name
        ))),
        // Its rows are still readable; nothing of it was settled when it ended.
        None => Ok(Viewed {
            key,
            ended_with: Some(ServiceStatus::default()),
        }),
    }
}

/// How long an answer waits for the store before falling back to the verdicts last read.
const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a service that was never evaluated is served as.
fn not_evaluated(service: &ServiceConfig) -> ServiceStatus {
    ServiceStatus {
        service: service.name.clone(),
        wave: service.wave,
        gate: GateStatus {
            verdict: Verdict::Pending,
            reasons: vec!["not evaluated yet".into()],
            evaluated_at: None,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The stored statuses of `services` by name, or `None` when the store does not answer.
async fn stored(
    state: &AppState,
    services: &[&ServiceConfig],
) -> Option<HashMap<String, ServiceStatus>> {
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    match tokio::time::timeout(STORE_WAIT, served::by_names(&state.store.pool, &names)).await {
        Ok(Ok(rows)) => Some(rows.into_iter().map(|(name, v)| (name, v.status)).collect()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the stored verdicts; answering from the last ones read");
            None
        }
        Err(_) => {
            tracing::warn!("the store did not answer; answering from the last verdicts read");
            None
        }
    }
}

/// The statuses of `services` as served now, in their order.
async fn statuses(state: &AppState, services: &[&ServiceConfig]) -> Vec<ServiceStatus> {
    let mut found = match stored(state, services).await {
        Some(found) => found,
        None => state.status.read(|s| {
            services
                .iter()
                .filter_map(|c| Some((c.name.clone(), s.services.get(&c.name)?.clone())))
                .collect()
        }),
    };
    let now = Utc::now();
    services
        .iter()
        .map(|c| match found.remove(&c.name) {
            Some(mut status) => {
                crate::gate::mark_stale(&mut status.gate, now);
                status
            }
            None => not_evaluated(c),
        })
        .collect()
}

/// The status of a configured service as served now; before its first evaluation, an empty
/// `pending` one.
pub(crate) async fn service_status(state: &AppState, service: &ServiceConfig) -> ServiceStatus {
    let mut one = statuses(state, &[service]).await;
    one.pop().unwrap_or_else(|| not_evaluated(service))
}

/// Every configured service's status as served now, in config order (one read of the store).
pub(crate) async fn all_statuses(state: &AppState) -> Vec<ServiceStatus> {
    let services: Vec<&ServiceConfig> = state.config.services.iter().collect();
    statuses(state, &services).await
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceSummary {
    pub service: String,
    pub wave: Option<u32>,
    pub verdict: Verdict,
    pub evaluated_at: Option<DateTime<Utc>>,
    pub keys: KeySummary,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceList {
    /// In config order.
    pub services: Vec<ServiceSummary>,
}

/// Every configured service with its wave, gate verdict and key summary.
#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, description = "Configured services", body = ServiceList)))]
pub async fn list(State(state): State<AppState>) -> Json<ServiceList> {
    let services = state
        .config
        .services
        .iter()
        .zip(all_statuses(&state).await)
        .map(|(service, status)| ServiceSummary {
            service: service.name.clone(),
            wave: service.wave,
            verdict: status.gate.verdict,
            evaluated_at: status.evaluated_at,
            keys: status.keys,
        })
        .collect();
    Json(ServiceList { services })
}

/// The live status of one service: counts, key summary, watermarks, lag, last settled window.
/// With `?epoch=ID` of an ended epoch: the status it ended with.
#[utoipa::path(get, path = "/api/v1/services/{service}", tag = "services",
    params(("service" = String, Path, description = "Service name from the config"), EpochParam),
    responses(
        (status = 200, description = "Live status", body = ServiceStatus),
        (status = 400, description = "Bad parameter (named in the message)", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service, or an epoch without a recorded status", body = super::error::ErrorBody),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    Path(service): Path<String>,
    q: Result<Query<EpochParam>, QueryRejection>,
) -> Result<Json<ServiceStatus>, ApiError> {
    let config = known_service(&state, &service)?;
    let q = super::error::query(q)?;
    if q.epoch.is_some() {
        if let Some(ended) = viewed(&state, config, q.epoch.as_deref(), true)
            .await?
            .ended_with
        {
            return Ok(Json(ended));
        }
    }
    Ok(Json(service_status(&state, config).await))
}

/// The config digest of a configured service (empty only if digests were not computed).
pub(crate) fn config_digest(state: &AppState, service: &ServiceConfig) -> String {
    state
        .config
        .services
        .iter()
        .position(|s| s.name == service.name)
        .map(|i| state.config.digest(i).to_owned())
        .unwrap_or_default()
}

/// The gate exactly as served: by `GET …/gate`, by Flagger's hooks and in sign-off snapshots.
/// What the evaluator left empty (before the first evaluation) is what this process decides
/// under: its canonical-form version and the config digest of the service.
pub(crate) async fn served_gate(state: &AppState, service: &ServiceConfig) -> GateStatus {
    completed(state, service, service_status(state, service).await.gate)
}

/// A served gate with what the evaluator left empty (before the first evaluation) filled in.
pub(crate) fn completed(
    state: &AppState,
    service: &ServiceConfig,
    mut gate: GateStatus,
) -> GateStatus {
    if gate.canonical_version.is_empty() {
        gate.canonical_version = CANONICAL_VERSION.into();
    }
    if gate.config_digest.is_empty() {
        gate.config_digest = config_digest(state, service);
    }
    gate
}

/// A gate verdict in the shape Argo Rollouts' web metric provider reads (`$.verdict`): the full
/// `GateStatus` with the service's name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GateResponse {
    pub service: String,
    #[serde(flatten)]
    pub gate: GateStatus,
}

/// The gate of one service: verdict, reasons, every criterion with its evidence. Always 200 for a
/// configured service, `pending` included: Argo Rollouts' web provider counts any non-2xx answer
/// as an Error, not as "not yet".
#[utoipa::path(get, path = "/api/v1/services/{service}/gate", tag = "gates",
    params(("service" = String, Path, description = "Service name from the config")),
    responses(
        (status = 200, description = "Verdict (pass, warn, pending or fail) with reasons and criteria", body = GateResponse),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
    ))]
pub async fn gate(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Json<GateResponse>, ApiError> {
    let config = known_service(&state, &service)?;
    Ok(Json(GateResponse {
        service: config.name.clone(),
        gate: served_gate(&state, config).await,
    }))
}
