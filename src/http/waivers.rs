//! Waivers (`POST`/`GET /api/v1/services/{service}/waivers`) and the served-verdict history
//! (`GET /api/v1/services/{service}/gate/history`).
//!
//! A waiver makes a failing or pending criterion count as passed (shown as `waived`) until it
//! expires by itself; the evaluator reads the active ones on every evaluation. Waivers are
//! bounded in time ([`MAX_WAIVER_DAYS`]) so a forgotten one cannot hide drift for good.

use super::auth::Approver;
use super::body::Fields;
use super::explore::{parse_limit, LIMIT_MAX};
use super::services::known_service;
use super::{ApiError, AppState};
use crate::model::{CriterionName, Waiver};
use crate::store::audit::{self, GateHistoryRow, NewWaiver};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The longest a waiver may last.
pub const MAX_WAIVER_DAYS: i64 = 30;
const MAX_REASON_CHARS: usize = 2000;
pub const HISTORY_LIMIT_DEFAULT: i64 = 50;

/// Body of `POST …/waivers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // refused with a 400 naming the field (`http::body`)
#[allow(dead_code)] // documentation only: the body is read field by field (see `http::body`)
pub struct WaiverRequest {
    /// The criterion to waive (every criterion may be).
    criterion: CriterionName,
    /// Why drift on this criterion is acceptable for now (not blank, no NUL).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    reason: String,
    /// RFC 3339; in the future and at most 30 days ahead.
    expires_at: DateTime<Utc>,
}

/// A validated waiver request: (criterion, reason, expires_at).
pub fn validate_waiver(
    fields: &Fields,
    now: DateTime<Utc>,
) -> Result<(CriterionName, String, DateTime<Utc>), ApiError> {
    let raw_criterion = fields.text("criterion", 64)?;
    // Every criterion may be waived.
    let criterion = CriterionName::parse(&raw_criterion).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "field `criterion`: must be one of {}, got `{raw_criterion}`",
            CriterionName::ALL.map(CriterionName::as_str).join(", ")
        ))
    })?;
    let reason = fields.text("reason", MAX_REASON_CHARS)?;
    let raw = fields.text("expires_at", 64)?;
    let expires_at = DateTime::parse_from_rfc3339(&raw)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "field `expires_at`: must be an RFC 3339 timestamp (e.g. 2026-12-01T12:00:00Z), got `{raw}`"
            ))
        })?
        .with_timezone(&Utc);
    if expires_at <= now {
        return Err(ApiError::BadRequest(
            "field `expires_at`: must be in the future".into(),
        ));
    }
    if expires_at > now + Duration::days(MAX_WAIVER_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "field `expires_at`: at most {MAX_WAIVER_DAYS} days ahead"
        )));
    }
    Ok((criterion, reason, expires_at))
}

/// Waive a criterion of a service until `expires_at` (approver token).
#[utoipa::path(post, path = "/api/v1/services/{service}/waivers", tag = "gates",
    params(("service" = String, Path, description = "Service name from the config")),
    request_body = WaiverRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The stored waiver", body = Waiver),
        (status = 400, description = "Invalid field (named in the message)", body = super::error::ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = super::error::ErrorBody),
        (status = 403, description = "A reader's token", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Approver(identity): Approver,
    Path(service): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Waiver>), ApiError> {
    let config = known_service(&state, &service)?;
    let fields = Fields::parse(body, &["criterion", "reason", "expires_at"])?;
    let (criterion, reason, expires_at) = validate_waiver(&fields, Utc::now())?;
    let new = NewWaiver {
        service: &config.name,
        criterion,
        reason: &reason,
        expires_at,
        created_by: &identity,
    };
    let row = audit::insert_waiver(&state.store.pool, &new).await?;
    tracing::info!(service = %row.service, criterion = %row.criterion, by = %row.created_by,
        expires_at = %row.expires_at, "waiver created");
    Ok((StatusCode::CREATED, Json(row)))
}

/// The active (unexpired) waivers of a service, soonest to expire first.
#[utoipa::path(get, path = "/api/v1/services/{service}/waivers", tag = "gates",
    params(("service" = String, Path, description = "Service name from the config")),
    responses(
        (status = 200, description = "Active waivers", body = Vec<Waiver>),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Result<Json<Vec<Waiver>>, ApiError> {
    let config = known_service(&state, &service)?;
    let rows = audit::active_waivers(&state.store.pool, &config.name, Utc::now()).await?;
    Ok(Json(rows))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Number of rows, newest first, 1 to 1000 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// Served verdicts of a service over time (one row per change), newest first.
#[utoipa::path(get, path = "/api/v1/services/{service}/gate/history", tag = "gates",
    params(("service" = String, Path, description = "Service name from the config"), HistoryQuery),
    responses(
        (status = 200, description = "Newest first", body = Vec<GateHistoryRow>),
        (status = 400, description = "Bad parameter (named in the message)", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service", body = super::error::ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    Path(service): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Vec<GateHistoryRow>>, ApiError> {
    let config = known_service(&state, &service)?;
    let Query(q) =
        q.map_err(|e| ApiError::BadRequest(format!("query string: {}", e.body_text())))?;
    let limit = parse_limit(q.limit.as_deref(), HISTORY_LIMIT_DEFAULT, LIMIT_MAX)?;
    Ok(Json(
        audit::gate_history(&state.store.pool, &config.name, limit).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{evaluate_criteria, GateInputs, GateThresholds};

    fn fields(raw: serde_json::Value) -> Fields {
        Fields::parse(
            Ok(Bytes::from(raw.to_string())),
            &["criterion", "reason", "expires_at"],
        )
        .unwrap()
    }

    fn error(raw: serde_json::Value, now: DateTime<Utc>) -> String {
        match validate_waiver(&fields(raw), now) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn waivable_criteria_are_exactly_the_evaluated_ones() {
        let names: Vec<CriterionName> =
            evaluate_criteria(&GateInputs::default(), &GateThresholds::default())
                .into_iter()
                .map(|c| c.name)
                .collect();
        assert_eq!(names, CriterionName::ALL);
    }

    #[test]
    fn waivers_are_validated_field_by_field() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ok = serde_json::json!({"criterion": "key_parity", "reason": "known ticket 42",
            "expires_at": "2026-11-25T12:00:00+01:00"});
        let (c, r, e) = validate_waiver(&fields(ok), now).unwrap();
        assert_eq!((c.as_str(), r.as_str()), ("key_parity", "known ticket 42"));
        assert_eq!(e.to_rfc3339(), "2026-11-25T11:00:00+00:00");

        let with = |k: &str, v: serde_json::Value| {
            let mut body = serde_json::json!({"criterion": "freshness", "reason": "r",
                "expires_at": "2026-11-30T00:00:00Z"});
            body[k] = v;
            body
        };
        assert!(error(with("criterion", "speed".into()), now)
            .starts_with("field `criterion`: must be one of evidence, count_parity"));
        assert_eq!(
            error(with("reason", " ".into()), now),
            "field `reason`: must not be empty"
        );
        assert!(error(with("expires_at", "tomorrow".into()), now)
            .starts_with("field `expires_at`: must be an RFC 3339 timestamp"));
        assert_eq!(
            error(with("expires_at", "2026-11-24T12:00:00Z".into()), now),
            "field `expires_at`: must be in the future"
        );
        assert_eq!(
            error(with("expires_at", "2026-12-24T12:00:01Z".into()), now),
            "field `expires_at`: at most 30 days ahead"
        );
        assert!(validate_waiver(
            &fields(with("expires_at", "2026-12-24T12:00:00Z".into())),
            now
        )
        .is_ok());
        assert_eq!(
            error(serde_json::json!({"criterion": "freshness"}), now),
            "field `reason`: is required"
        );
    }
}
