//! Flagger webhooks: `POST /api/v1/flagger/gate` (confirm-promotion, or any gating hook) and
//! `POST /api/v1/flagger/rollback` (Flagger's rollback hook, whose meaning is inverted: a 2xx
//! tells Flagger to roll back).
//!
//! Flagger judges a hook by its status code alone and copies the body into its events, so
//! answers are plain text (`<service>: <verdict>` then one line per reason). Statuses:
//!
//! | hook | pass / warn | pending | fail | unknown service |
//! |---|---|---|---|---|
//! | gate | 200 | 425 Too Early | 412 Precondition Failed | 404 |
//! | rollback | 412 | 412 | 200 | 404 |
//!
//! 425 rather than 503 for "not yet": meshes and proxies retry or alert on 503, and nothing is
//! unavailable. Flagger calls these without our tokens, so they count as reads.

use super::body::bytes;
use super::services::served_gate;
use super::{ApiError, AppState};
use crate::model::status::GateStatus;
use crate::model::{CriterionStatus, Verdict};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What Flagger POSTs to a webhook. Unknown fields are ignored: Flagger may add some.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct FlaggerPayload {
    /// The canary's name (Flagger always sends it); a service of the same name is used unless
    /// `metadata.service` names one.
    #[schema(min_length = 1)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub checksum: String,
    /// The webhook's `metadata`; `service` names the paritygate service explicitly.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Errors as plain text too: the message ends up in Flagger's events.
fn error(e: ApiError) -> Response {
    if e.status_code().is_server_error() {
        tracing::error!(error = %e, "flagger hook failed");
    }
    text(e.status_code(), format!("{}\n", e.public_message()))
}

/// The service a payload is about: `metadata.service`, else a service named like the canary.
fn resolve(state: &AppState, raw: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let raw = bytes(raw)?;
    let payload: FlaggerPayload = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::BadRequest(format!("body: not a Flagger webhook payload: {e}")))?;
    if payload.name.is_empty() {
        return Err(ApiError::BadRequest(
            "field `name`: must not be empty (the canary's name)".into(),
        ));
    }
    let (name, from) = match payload.metadata.get("service") {
        Some(s) => (s.trim().to_owned(), "metadata.service"),
        None => (payload.name.trim().to_owned(), "name"),
    };
    if !state.config.services.iter().any(|s| s.name == name) {
        let ns = if payload.namespace.is_empty() {
            String::new()
        } else {
            format!(" in namespace `{}`", payload.namespace)
        };
        return Err(ApiError::NotFound(format!(
            "unknown service `{name}` (from `{from}`{ns}); set `metadata.service` to a configured service"
        )));
    }
    Ok(name)
}

/// `<service>: <verdict>`, one `- reason` line each, then the criteria that do not pass.
pub fn explain(service: &str, gate: &GateStatus) -> String {
    let mut out = format!("{service}: {}\n", gate.verdict.as_str());
    for r in &gate.reasons {
        out.push_str(&format!("- {r}\n"));
    }
    for c in &gate.criteria {
        if !matches!(
            c.status,
            CriterionStatus::Pass | CriterionStatus::NotApplicable
        ) {
            let status = serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push_str(&format!("- {} {status}: {}\n", c.name, c.explanation));
        }
    }
    out
}

/// The payload's service and its gate as served.
async fn lookup(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, GateStatus), ApiError> {
    let service = resolve(state, body)?;
    let config = super::services::known_service(state, &service)?;
    Ok((service, served_gate(state, config).await))
}

/// Flagger gating hook (confirm-promotion, pre-rollout, rollout…): 200 only on pass or warn.
#[utoipa::path(post, path = "/api/v1/flagger/gate", tag = "flagger",
    request_body = FlaggerPayload,
    responses(
        (status = 200, description = "pass or warn: proceed", body = String, content_type = "text/plain"),
        (status = 412, description = "fail: do not proceed", body = String, content_type = "text/plain"),
        (status = 425, description = "pending: not yet", body = String, content_type = "text/plain"),
        (status = 400, description = "Not a Flagger payload", body = String, content_type = "text/plain"),
        (status = 404, description = "Unknown service", body = String, content_type = "text/plain"),
    ))]
pub async fn gate(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let (service, gate) = match lookup(&state, body).await {
        Ok(found) => found,
        Err(e) => return error(e),
    };
    let status = match gate.verdict {
        Verdict::Pass | Verdict::Warn => StatusCode::OK,
        Verdict::Pending => StatusCode::TOO_EARLY,
        Verdict::Fail => StatusCode::PRECONDITION_FAILED,
    };
    text(status, explain(&service, &gate))
}

/// Flagger rollback hook: 200 (roll back) only when the verdict is fail.
#[utoipa::path(post, path = "/api/v1/flagger/rollback", tag = "flagger",
    request_body = FlaggerPayload,
    responses(
        (status = 200, description = "fail: roll back", body = String, content_type = "text/plain"),
        (status = 412, description = "not failing: no rollback", body = String, content_type = "text/plain"),
        (status = 400, description = "Not a Flagger payload", body = String, content_type = "text/plain"),
        (status = 404, description = "Unknown service", body = String, content_type = "text/plain"),
    ))]
pub async fn rollback(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (service, gate) = match lookup(&state, body).await {
        Ok(found) => found,
        Err(e) => return error(e),
    };
    if gate.verdict == Verdict::Fail {
        text(StatusCode::OK, explain(&service, &gate))
    } else {
        text(
            StatusCode::PRECONDITION_FAILED,
            format!("{service}: {}: no rollback\n", gate.verdict.as_str()),
        )
    }
}
