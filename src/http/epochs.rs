//! Observation epochs over HTTP: `GET`/`POST /api/v1/services/{service}/epochs` (the `?epoch=ID`
//! parameter of the status, mismatches and windows endpoints is `services::viewed`).
//!
//! Starting an epoch is an approver's act, like a waiver: the identity comes from the token, the
//! reason from the body, and the store refuses a start it cannot honour (`store::epochs::start`),
//! which becomes a 400 naming `starts_at`.

use super::auth::Approver;
use super::body::Fields;
use super::services::{entries, known_service, service_id};
use super::{ApiError, AppState};
use crate::config::model::ServiceConfig;
use crate::model::status::ServiceStatus;
use crate::model::Epoch;
use crate::store::epochs::{self, NewEpoch, StartRefused};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const MAX_REASON_CHARS: usize = 2000;

/// Body of `POST …/epochs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // refused with a 400 naming the field (`http::body`)
#[allow(dead_code)] // documentation only: the body is read field by field (see `http::body`)
pub struct EpochRequest {
    /// Why the judgement restarts (the fix that went out; not blank, no NUL).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    reason: String,
    /// RFC 3339 event time the new epoch covers from: not in the future, not before the current
    /// epoch's start. Default: now.
    starts_at: Option<DateTime<Utc>>,
}

/// An epoch and the gate status it ended with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpochItem {
    #[serde(flatten)]
    pub epoch: Epoch,
    /// Whether the gate judges this epoch now (the newest).
    pub current: bool,
    /// The served status when the next epoch started (absent for the current epoch, and for one
    /// that ended before its first evaluation).
    pub ended_with: Option<ServiceStatus>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpochList {
    /// Newest first; the last is the first epoch (from `compare_from`).
    pub epochs: Vec<EpochItem>,
}

/// A service's observation epochs, newest first, each with the gate status it ended with.
#[utoipa::path(get, path = "/api/v1/services/{service}/epochs", tag = "gates",
    params(("service" = String, Path, description = "Service name from the config")),
    responses(
        (status = 200, description = "Epochs, newest first", body = EpochList),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Json<EpochList>, ApiError> {
    let config = known_service(&state, &service)?;
    let (_, list) = entries(&state, config).await?;
    let epochs = list
        .into_iter()
        .enumerate()
        .map(|(i, e)| EpochItem {
            epoch: e.epoch,
            current: i == 0,
            ended_with: e.ended_with,
        })
        .collect();
    Ok(Json(EpochList { epochs }))
}

/// A validated start: (reason, starts_at in Unix ms).
pub fn validate_start(fields: &Fields, now: DateTime<Utc>) -> Result<(String, i64), ApiError> {
    let reason = fields.text("reason", MAX_REASON_CHARS)?;
    let starts_at = match fields.optional_text("starts_at", 64)? {
        None => now,
        Some(raw) => DateTime::parse_from_rfc3339(&raw)
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "field `starts_at`: must be an RFC 3339 timestamp (e.g. {}), got `{raw}`",
                    crate::core::range::INSTANT_EXAMPLE
                ))
            })?
            .with_timezone(&Utc),
    };
    Ok((reason, starts_at.timestamp_millis()))
}

/// Start a service's epoch as `identity`; shared by the API and the operator page.
pub async fn start_epoch(
    state: &AppState,
    config: &ServiceConfig,
    identity: &str,
    fields: Fields,
) -> Result<Epoch, ApiError> {
    let now = Utc::now();
    let (reason, starts_at_ms) = validate_start(&fields, now)?;
    let id = service_id(state, &config.name).await?;
    let new = NewEpoch {
        service_id: id,
        service: &config.name,
        starts_at_ms,
        reason: &reason,
        created_by: identity,
        compare_from_ms: config.compare_from.start_ms(),
        window_ms: config.window_ms(),
        now_ms: now.timestamp_millis(),
    };
    let epoch = epochs::start(&state.store.pool, &new)
        .await
        .map_err(|e| match e {
            StartRefused::Store(e) => ApiError::from(e),
            refused => ApiError::BadRequest(format!("field `starts_at`: {refused}")),
        })?;
    // This replica's lanes filter by it from their next batch (the others learn it at their next
    // checkpoint, which rebases whatever they filled under the previous epoch).
    state.store.remember_scopes([(id, epoch.scope())]);
    tracing::warn!(service = %config.name, epoch = epoch.id, by = %identity, starts_at = ?epoch.starts_at,
        reason = %epoch.reason, "observation epoch started: the gate judges events from its start");
    Ok(epoch)
}

/// Start a new observation epoch (approver token): from `starts_at` (default now) the gate, key
/// summary, mismatches, windows and counts cover only events at or after it, rebuilt from what
/// was already counted (nothing is re-read from Kafka). The wave's sign-offs become stale.
#[utoipa::path(post, path = "/api/v1/services/{service}/epochs", tag = "gates",
    params(("service" = String, Path, description = "Service name from the config")),
    request_body = EpochRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The started epoch", body = Epoch),
        (status = 400, description = "Invalid field (named in the message)", body = super::error::ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = super::error::ErrorBody),
        (status = 403, description = "A reader's token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB"),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Approver(identity): Approver,
    Path(service): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Epoch>), ApiError> {
    let config = known_service(&state, &service)?;
    let fields = Fields::parse(body, &["reason", "starts_at"])?;
    let epoch = start_epoch(&state, config, &identity, fields).await?;
    Ok((StatusCode::CREATED, Json(epoch)))
}
