//! Drill-down pages read from the store: differing keys (keyset-paged) and event-time windows.
//!
//! Query parameters arrive as strings and are validated here, so a bad value gets a 400 that names
//! the parameter (axum's typed `Query` rejection would not say which one was wrong).

use super::error::query;
use super::services::{known_service, viewed};
use super::{ApiError, AppState};
use crate::model::status::WindowStatus;
use crate::model::MismatchKind;
use crate::store::read::{self, MismatchPage};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

pub const MISMATCH_LIMIT_DEFAULT: i64 = 50;
pub const WINDOW_LIMIT_DEFAULT: i64 = 20;
pub const LIMIT_MAX: i64 = 1000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MismatchQuery {
    /// Only keys of this kind.
    #[param(value_type = Option<MismatchKind>)]
    pub kind: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page (a key hash, UUID-shaped).
    #[param(value_type = Option<String>, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub cursor: Option<String>,
    /// An epoch id of `GET …/epochs` (default: the current epoch).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub epoch: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// Number of windows, newest first, 1 to 1000 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// An epoch id of `GET …/epochs` (default: the current epoch).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub epoch: Option<String>,
}

/// `limit`: absent → `default`; otherwise an integer in `1..=max`.
pub fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "parameter `limit`: must be an integer from 1 to {max}, got `{raw}`"
        ))),
    }
}

pub fn parse_kind(raw: Option<&str>) -> Result<Option<MismatchKind>, ApiError> {
    raw.map(|k| {
        MismatchKind::parse(k).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "parameter `kind`: must be missing_in_candidate, extra_in_candidate or mismatched, got `{k}`"
            ))
        })
    })
    .transpose()
}

/// A `next_cursor`: exactly the hyphenated UUID form the pages hand out (the documented pattern;
/// `Uuid::parse_str` alone would also take braced, URN and bare-hex spellings).
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|c| {
        let hyphenated = c.len() == 36;
        Uuid::parse_str(c)
            .ok()
            .filter(|_| hyphenated)
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "parameter `cursor`: malformed; pass a previous page's `next_cursor`".into(),
                )
            })
    })
    .transpose()
}

/// Keys that differ between baseline and candidate, settled or in flight, paged by key hash.
#[utoipa::path(get, path = "/api/v1/services/{service}/mismatches", tag = "services",
    params(("service" = String, Path, description = "Service name from the config"), MismatchQuery),
    responses(
        (status = 200, description = "One page of differing keys", body = MismatchPage),
        (status = 400, description = "Bad parameter (named in the message)", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service or epoch", body = super::error::ErrorBody),
    ))]
pub async fn mismatches(
    State(state): State<AppState>,
    Path(service): Path<String>,
    q: Result<Query<MismatchQuery>, QueryRejection>,
) -> Result<Json<MismatchPage>, ApiError> {
    let config = known_service(&state, &service)?;
    let q = query(q)?;
    let kind = parse_kind(q.kind.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), MISMATCH_LIMIT_DEFAULT, LIMIT_MAX)?;
    let cursor = parse_cursor(q.cursor.as_deref())?;
    let epoch = viewed(&state, config, q.epoch.as_deref(), false).await?;
    // Settling follows the evaluation loop's published bound so this page agrees with the summary
    // (an ended epoch: the bound it ended with).
    let settled_until_ms = epoch.settled_until_ms(&state, config).await;
    let page = crate::store::parity::mismatches(
        &state.store.pool,
        epoch.key,
        kind,
        settled_until_ms,
        limit,
        cursor,
    )
    .await?;
    Ok(Json(page))
}

/// Event-time windows, newest first, with per-side counts, fingerprints and verdicts.
#[utoipa::path(get, path = "/api/v1/services/{service}/windows", tag = "services",
    params(("service" = String, Path, description = "Service name from the config"), WindowQuery),
    responses(
        (status = 200, description = "Newest windows first", body = Vec<WindowStatus>),
        (status = 400, description = "Bad parameter (named in the message)", body = super::error::ErrorBody),
        (status = 404, description = "Unknown service or epoch", body = super::error::ErrorBody),
    ))]
pub async fn windows(
    State(state): State<AppState>,
    Path(service): Path<String>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Vec<WindowStatus>>, ApiError> {
    let config = known_service(&state, &service)?;
    let q = query(q)?;
    let limit = parse_limit(q.limit.as_deref(), WINDOW_LIMIT_DEFAULT, LIMIT_MAX)?;
    let epoch = viewed(&state, config, q.epoch.as_deref(), false).await?;
    let window_ms = config.window_ms();
    let settled_until_ms = epoch.settled_until_ms(&state, config).await;
    let page = read::windows(
        &state.store.pool,
        epoch.key,
        window_ms,
        settled_until_ms,
        limit,
    )
    .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MismatchKind;

    fn bad_request(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(m) => m,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(parse_limit(None, 50, 1000).unwrap(), 50);
        assert_eq!(parse_limit(Some("1000"), 50, 1000).unwrap(), 1000);
        for raw in ["0", "1001", "-1", "ten", ""] {
            let m = bad_request(parse_limit(Some(raw), 50, 1000).unwrap_err());
            assert!(m.starts_with("parameter `limit`"), "{m}");
        }
    }

    #[test]
    fn kinds_and_cursors_are_validated() {
        assert_eq!(
            parse_kind(Some("mismatched")).unwrap(),
            Some(MismatchKind::Mismatched)
        );
        assert_eq!(parse_kind(None).unwrap(), None);
        assert!(bad_request(parse_kind(Some("drift")).unwrap_err()).starts_with("parameter `kind`"));
        let id = Uuid::from_u128(7);
        assert_eq!(parse_cursor(Some(&id.to_string())).unwrap(), Some(id));
        assert!(
            bad_request(parse_cursor(Some("zzz")).unwrap_err()).starts_with("parameter `cursor`")
        );
    }
}
