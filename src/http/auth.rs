//! Bearer tokens on the API (`Authorization: Bearer <token>`), checked against the hashed tokens
//! of [`crate::config::auth`].
//!
//! - Writes (waivers, sign-offs, revocations) take an [`Approver`] extractor: 401 without a token
//!   or with an unknown one, 403 with a reader's. Being an extractor, a write handler cannot exist
//!   without it: it is also where the identity recorded as "who" comes from (never the body).
//! - Reads (GET, and Flagger's webhooks, which Flagger calls without our tokens) are open unless
//!   `[http] require_token_for_reads`; then any valid token will do ([`reads`]). Probes, metrics
//!   and the OpenAPI document stay open: kubelets and scrapers carry no API token.

use super::{ApiError, AppState};
use crate::config::auth::Role;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

/// The identity of a caller holding an approver token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver(pub String);

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Who presents the request's token, or 401.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(String, Role), ApiError> {
    bearer(headers)
        .and_then(|t| state.config.tokens.authenticate(t))
        .ok_or(ApiError::Unauthorized)
}

/// The approver presenting `token`: 401 without one or with an unknown one, 403 with a reader's.
/// The API takes the token from the `Authorization` header, the operator page's forms from a
/// form field; both are checked here.
pub fn approver(state: &AppState, token: Option<&str>) -> Result<Approver, ApiError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    match token.and_then(|t| state.config.tokens.authenticate(t)) {
        None => Err(ApiError::Unauthorized),
        Some((identity, Role::Approver)) => Ok(Approver(identity)),
        Some((_, Role::Reader)) => Err(ApiError::Forbidden(
            "this needs an approver token; a reader token was sent".into(),
        )),
    }
}

impl FromRequestParts<AppState> for Approver {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        approver(state, bearer(&parts.headers))
    }
}

/// Paths that never need a token.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json"
    )
}

/// Middleware: with `require_token_for_reads`, reads need a valid token (reader or approver).
pub async fn reads(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let read = matches!(*request.method(), Method::GET | Method::HEAD)
        || path.starts_with("/api/v1/flagger/");
    if state.config.http.require_token_for_reads && read && !public(path) {
        if let Err(e) = authenticate(&state, request.headers()) {
            return axum::response::IntoResponse::into_response(e);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
