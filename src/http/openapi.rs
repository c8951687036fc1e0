//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations so it cannot
//! drift from the code (a test requests every documented path against the router).

use super::{error, explore, health, rows, services};
use axum::Json;
use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "paritygate", description = "Dual-run parity referee: live status, drill-down and gate verdicts."),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
        services::list,
        services::detail,
        services::gate,
        explore::mismatches,
        explore::windows,
        rows::rows,
    ),
    components(schemas(error::ErrorBody, explore::MismatchKindDoc)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "services", description = "Per-service status, drill-down and gate verdicts"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
