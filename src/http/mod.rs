//! The HTTP API: health, readiness, Prometheus metrics, per-service status, drill-down into
//! mismatches and windows, gate verdicts for Argo Rollouts and Flagger, waivers, gate history,
//! observation epochs and wave sign-offs. OpenAPI at `/api/v1/openapi.json`. The operator page (HTML) at `/`: [`page`].
//!
//! Handlers are thin: live status comes from [`SharedStatus`] (rebuilt by the evaluation loop),
//! drill-down pages from [`crate::store::read`], the audit trail from [`crate::store::audit`].
//! Every error is an [`ApiError`] rendered as JSON (Flagger's hooks answer plain text).
//! Authentication: [`auth`].

pub mod auth;
pub mod body;
mod contract;
pub mod epochs;
pub mod error;
pub mod explore;
pub mod flagger;
pub mod health;
pub mod openapi;
pub mod page;
pub mod rows;
pub mod services;
pub mod waivers;
pub mod wave_state;
pub mod waves;

pub use error::ApiError;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::status::SharedStatus;
use crate::store::Store;
use axum::handler::Handler;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// Largest accepted request body (413 above). Waivers, sign-offs and Flagger payloads are small
/// JSON documents; the cap keeps a client from making the service buffer arbitrary amounts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may need; cheap to clone (all shared handles).
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub status: SharedStatus,
    pub metrics: Metrics,
}

/// A POST route of the JSON API: its body must be declared `application/json` (else 415).
fn json_post<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    // `route_layer`, not `layer`: only a matched POST is checked; any other method of the path
    // reaches the method router's fallback and answers 405 (with `layer` it answered 415).
    post(handler).route_layer(axum::middleware::from_fn(contract::json_bodies))
}

/// Every route of the API, with body limit and request tracing.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        // `{verb}`: `signoff` or `revoke` (anything else 404s).
        .route("/ui/waves/{id}/{verb}", post(page::wave_form))
        .route("/ui/services/{service}/epochs", post(page::epoch_form))
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
        .route(
            "/api/v1/services/{service}/waivers",
            get(waivers::list).merge(json_post(waivers::create)),
        )
        .route(
            "/api/v1/services/{service}/epochs",
            get(epochs::list).merge(json_post(epochs::start)),
        )
        .route(
            "/api/v1/services/{service}/gate/history",
            get(waivers::history),
        )
        .route("/api/v1/waves", get(waves::list))
        .route("/api/v1/waves/{id}", get(waves::detail))
        .route("/api/v1/waves/{id}/signoff", json_post(waves::sign_off))
        .route("/api/v1/waves/{id}/revoke", json_post(waves::revoke))
        .route("/api/v1/flagger/gate", json_post(flagger::gate))
        .route("/api/v1/flagger/rollback", json_post(flagger::rollback))
        // Reads need a token only with `require_token_for_reads`; writes check theirs themselves.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::reads,
        ))
        // Unknown routes answer the same JSON error envelope as everything else.
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Outside the body limit: its 413 becomes the JSON envelope too.
        .layer(axum::middleware::from_fn(contract::json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
