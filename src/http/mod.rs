//! The HTTP API: health, readiness, Prometheus metrics, per-service status, drill-down into
//! mismatches and windows, and gate verdicts for Argo Rollouts. OpenAPI at `/api/v1/openapi.json`.
//!
//! Handlers are thin: live status comes from [`SharedStatus`] (rebuilt by the evaluation loop),
//! drill-down pages from [`crate::store::read`]. Every error is an [`ApiError`] rendered as JSON.

pub mod error;
pub mod explore;
pub mod health;
pub mod openapi;
pub mod rows;
pub mod services;

pub use error::ApiError;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::serve::status::SharedStatus;
use crate::store::Store;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// Largest accepted request body. Nothing is POSTed yet; sign-offs will be small JSON documents,
/// and the cap keeps a client from making the service buffer arbitrary amounts of memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may need; cheap to clone (all shared handles).
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub status: SharedStatus,
    pub metrics: Metrics,
}

/// Every route of the API, with body limit and request tracing.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/services", get(services::list))
        .route("/api/v1/services/{service}", get(services::detail))
        .route("/api/v1/services/{service}/gate", get(services::gate))
        .route(
            "/api/v1/services/{service}/mismatches",
            get(explore::mismatches),
        )
        .route("/api/v1/services/{service}/windows", get(explore::windows))
        .route("/api/v1/services/{service}/rows", get(rows::rows))
        // Unknown routes answer the same JSON error envelope as everything else.
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
