//! `GET /api/v1/services/{service}/rows`: the sampled row diffs of a service's sink tables
//! (`[services.targets]`): the newest sampler rounds and the differing keys of the latest one.

use super::error::query;
use super::explore::{parse_limit, LIMIT_MAX};
use super::services::known_service;
use super::services::service_id;
use super::{ApiError, AppState};
use crate::store::rows::{self, RowDiffItem, RowRound, MAX_STORED_DIFFS};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const ROUNDS_LIMIT_DEFAULT: i64 = 10;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Number of rounds, newest first, 1 to 1000 (default 10).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowsPage {
    pub service: String,
    /// Whether the service has `[services.targets]`; without it the lists stay empty.
    pub targets_configured: bool,
    /// Newest first; empty until the first round finished.
    pub rounds: Vec<RowRound>,
    /// The latest round's differing keys (uniform sample first), at most 1000 stored.
    pub diffs: Vec<RowDiffItem>,
}

/// Sampled row diffs of the sink tables: latest rounds (rows sampled, differing by kind, in
/// flight, diff ratio and its 95% upper bound, columns) and the latest round's differing keys.
#[utoipa::path(get, path = "/api/v1/services/{service}/rows", tag = "services",
    params(("service" = String, Path, description = "Service name from the config"), RowsQuery),
    responses(
        (status = 200, description = "Latest sampler rounds and differing keys", body = RowsPage),
        (status = 400, description = "Bad parameter (named in the message)", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
    ))]
pub async fn rows(
    State(state): State<AppState>,
    Path(service): Path<String>,
    q: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Json<RowsPage>, ApiError> {
    let config = known_service(&state, &service)?;
    let q = query(q)?;
    let limit = parse_limit(q.limit.as_deref(), ROUNDS_LIMIT_DEFAULT, LIMIT_MAX)?;
    // 200 with empty lists rather than 404: the service exists, its tables are just not compared
    // (clients polling every configured service need no special case).
    if config.targets.is_none() {
        return Ok(Json(RowsPage {
            service: config.name.clone(),
            targets_configured: false,
            rounds: Vec::new(),
            diffs: Vec::new(),
        }));
    }
    let id = service_id(&state, &config.name).await?;
    let pool = &state.store.pool;
    Ok(Json(RowsPage {
        service: config.name.clone(),
        targets_configured: true,
        rounds: rows::latest_rounds(pool, id, limit).await?,
        diffs: rows::latest_diffs(pool, id, MAX_STORED_DIFFS as i64).await?,
    }))
}
