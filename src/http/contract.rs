//! What every route answers the same way, whatever the handler: error bodies in the JSON envelope
//! (also for the answers axum and tower-http produce themselves: 405 for a known path with another
//! method, 413 for a body over the limit) and `application/json` required for request bodies (415).
//!
//! Flagger's hooks are the one exception by design: Flagger copies a hook's body into its events,
//! so they answer plain text (`super::flagger`), their errors included.

use super::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Paths whose answers are plain text on purpose.
fn plain_text(path: &str) -> bool {
    path.starts_with("/api/v1/flagger/")
}

/// Whether a response already carries a JSON body.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_type)
}

/// `application/json`, with parameters (`; charset=utf-8`) or as a `+json` suffix type.
pub fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Refuse a JSON API write whose body is not declared as JSON (415), before its handler reads it.
/// Layered on the API's POST routes only ([`super::json_post`]): other methods of a path still
/// answer 405, and the operator page's forms (`/ui/…`) post `application/x-www-form-urlencoded`.
pub async fn json_bodies(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    {
        let declared = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !declared.is_some_and(is_json_type) {
            let e = ApiError::UnsupportedMediaType(format!(
                "a request body must be `application/json`, not {}",
                declared.map_or_else(|| "missing".to_owned(), |d| format!("`{d}`"))
            ));
            return if plain_text(path) {
                (e.status_code(), format!("{}\n", e.public_message())).into_response()
            } else {
                e.into_response()
            };
        }
    }
    next.run(request).await
}

/// Rewrite the error answers produced outside the handlers (axum's 405, tower-http's 413) into
/// the JSON envelope, keeping their status and headers (`Allow` on a 405).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(response.headers())
        || plain_text(&path)
        // The page's own error pages are HTML.
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"))
    {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(format!("`{path}` does not answer this method"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(super::MAX_BODY_BYTES),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("a request body must be `application/json`".into())
        }
        StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
        other => ApiError::Status(other),
    };
    let (parts, _) = response.into_parts();
    let mut json = error.into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            json.headers_mut().insert(name, v.clone());
        }
    }
    *json.status_mut() = status;
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_types_are_recognized_with_parameters_and_suffixes() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("Application/JSON; charset=utf-8"));
        assert!(is_json_type("application/merge-patch+json"));
        assert!(!is_json_type("text/plain"));
        assert!(!is_json_type("application/x-www-form-urlencoded"));
        assert!(!is_json_type(""));
    }
}
