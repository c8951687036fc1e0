//! Waves and their sign-offs: `GET /api/v1/waves`, `GET /api/v1/waves/{id}`,
//! `POST /api/v1/waves/{id}/signoff` and `POST /api/v1/waves/{id}/revoke`.
//!
//! Sign-offs and revocations are appended to `wave_signoffs` (append-only in the database). The
//! rules (ordering, distinct approvers, staleness) are in `crate::signoff`; the check and the
//! insert run under one lock in [`audit::append_signoff`].

use super::auth::Approver;
use super::body::Fields;
use super::wave_state::{self, load};
use super::{ApiError, AppState};
use crate::config::model::WaveConfig;
use crate::signoff::{self, WaveStatus};
use crate::signoff::{SignoffAction, SignoffRecord};
use crate::store::audit::{self, NewSignoff};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const MAX_COMMENT_CHARS: usize = 2000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WaveList {
    /// In id order.
    pub waves: Vec<WaveStatus>,
}

/// A wave's status and its whole audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WaveDetail {
    #[serde(flatten)]
    pub status: WaveStatus,
    /// Every sign-off and revocation of the wave, oldest first, with its snapshot.
    pub trail: Vec<SignoffRecord>,
}

/// Body of `POST …/signoff`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // refused with a 400 naming the field (`http::body`)
#[allow(dead_code)] // documentation only: the body is read field by field (see `http::body`)
pub struct SignoffRequest {
    /// What was checked (not blank, no NUL, at most 2000 characters).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    comment: String,
}

/// Body of `POST …/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // refused with a 400 naming the field (`http::body`)
#[allow(dead_code)] // documentation only
pub struct RevokeRequest {
    /// Why the sign-off no longer stands (not blank, no NUL, at most 2000 characters).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    reason: String,
}

/// The configured wave `raw`: 400 if it is not an id, 404 if no wave has it.
fn known_wave<'a>(state: &'a AppState, raw: &str) -> Result<&'a WaveConfig, ApiError> {
    let id: u32 = raw.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "parameter `id`: must be a wave id (an integer), got `{raw}`"
        ))
    })?;
    state
        .config
        .waves
        .iter()
        .find(|w| w.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("unknown wave `{id}`")))
}

fn db_id(wave: &WaveConfig) -> Result<i32, ApiError> {
    i32::try_from(wave.id)
        .map_err(|_| ApiError::Internal(format!("wave id {} out of range", wave.id)))
}

/// Every wave: verdict, sign-off state, staleness and what blocks a sign-off.
#[utoipa::path(get, path = "/api/v1/waves", tag = "waves",
    responses((status = 200, description = "Configured waves in id order", body = WaveList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<WaveList>, ApiError> {
    let (waves, _) = load(&state).await?;
    Ok(Json(WaveList { waves }))
}

/// One wave with its audit trail.
#[utoipa::path(get, path = "/api/v1/waves/{id}", tag = "waves",
    params(("id" = u32, Path, description = "Wave id from the config")),
    responses(
        (status = 200, description = "The wave and its trail", body = WaveDetail),
        (status = 400, description = "Not a wave id", body = super::error::ErrorBody),
        (status = 404, description = "Unknown wave", body = super::error::ErrorBody),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WaveDetail>, ApiError> {
    let wave = known_wave(&state, &id)?;
    let (waves, rows) = load(&state).await?;
    let status = waves
        .into_iter()
        .find(|w| w.id == wave.id)
        .ok_or_else(|| ApiError::Internal(format!("wave {} missing from statuses", wave.id)))?;
    let id = db_id(wave)?;
    let trail = rows.into_iter().filter(|r| r.wave_id == id).collect();
    Ok(Json(WaveDetail { status, trail }))
}

/// Append a record for `wave` if `check` (given every wave's status) allows it.
async fn append(
    state: &AppState,
    wave: &WaveConfig,
    action: SignoffAction,
    identity: &str,
    comment: &str,
    check: impl FnOnce(&WaveStatus) -> Result<(), ApiError>,
) -> Result<SignoffRecord, ApiError> {
    let snapshot = serde_json::to_value(wave_state::snapshot(state, wave).await)
        .map_err(|e| ApiError::Internal(format!("snapshot: {e}")))?;
    let inputs = wave_state::inputs(state).await;
    let new = NewSignoff {
        wave_id: db_id(wave)?,
        action,
        identity,
        comment,
        snapshot: &snapshot,
    };
    let row = audit::append_signoff(&state.store.pool, &new, |rows| {
        let statuses = signoff::wave_statuses(inputs, rows);
        match statuses.iter().find(|w| w.id == wave.id) {
            Some(status) => check(status),
            None => Err(ApiError::Internal(format!("wave {} missing", wave.id))),
        }
    })
    .await??;
    // Metrics follow at once rather than at the watcher's next pass.
    if let Err(e) = load(state).await {
        tracing::warn!(error = %e, "cannot refresh wave metrics");
    }
    Ok(row)
}

/// Sign a wave off (approver token): 409 unless the wave passes or warns and every earlier wave
/// is signed off (and not stale). The record keeps who (from the token), when, the comment, and
/// every service's served gate with its config digest.
#[utoipa::path(post, path = "/api/v1/waves/{id}/signoff", tag = "waves",
    params(("id" = u32, Path, description = "Wave id from the config")),
    request_body = SignoffRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The immutable sign-off record", body = SignoffRecord),
        (status = 400, description = "Invalid field (named in the message)", body = super::error::ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = super::error::ErrorBody),
        (status = 403, description = "A reader's token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown wave", body = super::error::ErrorBody),
        (status = 409, description = "The wave's verdict or an earlier wave does not allow it", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB"),
    ))]
pub async fn sign_off(
    State(state): State<AppState>,
    Approver(identity): Approver,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SignoffRecord>), ApiError> {
    let action = SignoffAction::Signoff;
    let row = act_on_wave(&state, &identity, &id, action, || {
        Fields::parse(body, &[action_field(action)])
    })
    .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// Record `action` on wave `id` as `identity`, with the text of `fields` (`comment` for a
/// sign-off, `reason` for a revocation; read after the wave is known, so an unknown wave is a 404
/// whatever the body). 409 when the wave does not allow it. Shared by the API and the operator page.
pub(crate) async fn act_on_wave(
    state: &AppState,
    identity: &str,
    id: &str,
    action: SignoffAction,
    fields: impl FnOnce() -> Result<Fields, ApiError>,
) -> Result<SignoffRecord, ApiError> {
    let wave = known_wave(state, id)?;
    let text = fields()?.text(action_field(action), MAX_COMMENT_CHARS)?;
    let row = append(state, wave, action, identity, &text, |w| match action {
        SignoffAction::Signoff if !w.signoff_blockers.is_empty() => {
            Err(ApiError::Conflict(format!(
                "wave {} cannot be signed off: {}",
                w.id,
                w.signoff_blockers.join("; ")
            )))
        }
        SignoffAction::Revocation if w.approvals.is_empty() => Err(ApiError::Conflict(format!(
            "wave {} has no sign-off to revoke",
            w.id
        ))),
        _ => Ok(()),
    })
    .await?;
    match action {
        SignoffAction::Signoff => {
            tracing::info!(wave = wave.id, by = %identity, id = row.id, "wave signed off")
        }
        SignoffAction::Revocation => {
            tracing::warn!(wave = wave.id, by = %identity, id = row.id, reason = %text, "wave sign-off revoked")
        }
    }
    Ok(row)
}

/// The request field holding an action's text.
pub(crate) fn action_field(action: SignoffAction) -> &'static str {
    match action {
        SignoffAction::Signoff => "comment",
        SignoffAction::Revocation => "reason",
    }
}

/// Revoke a wave's sign-offs (approver token): appends a revocation; sign-offs before it no
/// longer count. 409 when no sign-off counts.
#[utoipa::path(post, path = "/api/v1/waves/{id}/revoke", tag = "waves",
    params(("id" = u32, Path, description = "Wave id from the config")),
    request_body = RevokeRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The immutable revocation record", body = SignoffRecord),
        (status = 400, description = "Invalid field (named in the message)", body = super::error::ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = super::error::ErrorBody),
        (status = 403, description = "A reader's token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown wave", body = super::error::ErrorBody),
        (status = 409, description = "Nothing to revoke", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Approver(identity): Approver,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SignoffRecord>), ApiError> {
    let action = SignoffAction::Revocation;
    let row = act_on_wave(&state, &identity, &id, action, || {
        Fields::parse(body, &[action_field(action)])
    })
    .await?;
    Ok((StatusCode::CREATED, Json(row)))
}
