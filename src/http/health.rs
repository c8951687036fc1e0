//! Liveness, readiness and the Prometheus exposition.

use super::AppState;
use crate::model::status::Readiness;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process serves requests.
    pub status: &'static str,
}

/// Liveness: the process is up. Never checks dependencies, so a database outage does not get the
/// pod restarted (that is what readiness is for).
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: broker, database and migrations as last checked, and ingestion making progress
/// (`stalled` names what stops it: checkpoints failing, a lane blocked, a topic missing).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Every dependency is reachable", body = Readiness),
        (status = 503, description = "A dependency is not reachable, or ingestion is stalled", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    // Faults are described now, not at the last evaluation: a checkpoint that started failing a
    // second ago already makes this 503.
    let names: Vec<String> = state
        .config
        .services
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let readiness = state.status.read(|s| Readiness {
        stalled: s.faults.describe(&names),
        ..s.readiness.clone()
    });
    let code = if readiness.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(readiness))
}

/// Every paritygate metric in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition",
        content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}
