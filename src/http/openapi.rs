//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations so it cannot
//! drift from the code (a test requests every documented path against the router).

use super::{epochs, error, explore, flagger, health, rows, services, waivers, waves};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Declares the `bearer` scheme the write endpoints name in `security(...)`.
#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Documents the answers every operation with a request body can give before its handler runs:
/// 413 (over [`super::MAX_BODY_BYTES`]) and 415 (not `application/json`), in the JSON envelope, or
/// as plain text for Flagger's hooks (`super::contract`).
#[derive(Debug)]
struct BodyErrors;

impl Modify for BodyErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let plain = path.starts_with("/api/v1/flagger/");
            let Some(op) = item.post.as_mut().filter(|op| op.request_body.is_some()) else {
                continue;
            };
            for (code, why) in [
                ("413", "Body over 64 KiB"),
                ("415", "Body not declared as `application/json`"),
            ] {
                let content = if plain {
                    (
                        "text/plain",
                        ContentBuilder::new()
                            .schema(Some(String::schema_ref()))
                            .build(),
                    )
                } else {
                    (
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                };
                op.responses.responses.insert(
                    code.into(),
                    ResponseBuilder::new()
                        .description(why)
                        .content(content.0, content.1)
                        .build()
                        .into(),
                );
            }
        }
    }
}

/// `String`'s schema as a reference-or-inline value.
trait SchemaRef {
    fn schema_ref() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>;
}

impl SchemaRef for String {
    fn schema_ref() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .into()
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "paritygate", description = "Dual-run parity referee: live status, drill-down, gate verdicts, waivers, observation epochs and wave sign-offs. Writes need `Authorization: Bearer <approver token>`; reads need a token only with `[http] require_token_for_reads`."),
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
        waivers::create,
        waivers::list,
        waivers::history,
        epochs::list,
        epochs::start,
        waves::list,
        waves::detail,
        waves::sign_off,
        waves::revoke,
        flagger::gate,
        flagger::rollback,
    ),
    components(schemas(error::ErrorBody, crate::model::MismatchKind)),
    modifiers(&BearerAuth, &BodyErrors),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "services", description = "Per-service status and drill-down"),
        (name = "gates", description = "Gate verdicts (Argo Rollouts), history and waivers"),
        (name = "waves", description = "Waves and their append-only sign-offs"),
        (name = "flagger", description = "Flagger webhooks (plain-text answers)"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
