//! The API's one error type and its JSON body: `{"error": {"code": "not_found", "message": "…"}}`.
//!
//! Client errors (4xx) say exactly what to fix. Server errors (5xx) answer a generic message and log
//! the detail instead: a database error can reveal schema or host names that callers need not see.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// No bearer token, or one that matches no configured token.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// A valid token whose role may not do this (a reader's token on a write).
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The request is well-formed but the state does not allow it (e.g. a sign-off out of order).
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds [`super::MAX_BODY_BYTES`].
    #[error("request body too large: at most {0} bytes")]
    PayloadTooLarge(usize),
    /// The path exists, but not with this method.
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    /// A request body that is not declared as `application/json`.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Any other error status produced outside the handlers, kept as it is.
    #[error("{0}")]
    Status(StatusCode),
    /// A dependency (the database) cannot answer right now; retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// The store failed: unavailable (503) when the database is down or saturated, internal
    /// (500) otherwise; the error is kept as the source for the log.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The error envelope every non-2xx JSON response uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `not_found`, `bad_request`, `unauthorized`, `forbidden`,
    /// `conflict`, `payload_too_large`, `method_not_allowed`, `unsupported_media_type`,
    /// `unavailable`, `internal`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Status(s) => *s,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Store(e) if store_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Status(s) if s.is_server_error() => "internal",
            Self::Status(_) => "bad_request",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Store(e) if store_unavailable(e) => "unavailable",
            Self::Store(_) => "internal",
        }
    }

    /// What the caller sees: the detail for client errors, a fixed sentence for server errors.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(_) => "service unavailable".into(),
            Self::Store(e) if store_unavailable(e) => "service unavailable".into(),
            Self::Internal(_) | Self::Store(_) => "internal error".into(),
            Self::Status(s) if s.is_server_error() => "internal error".into(),
            other => other.to_string(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().into(),
                message: self.public_message(),
            },
        }
    }
}

/// The database is down or saturated: a retryable condition, not a bug.
fn store_unavailable(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Database(
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        )
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: tell the client which scheme to use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A query string as `T`, or a 400 naming what was wrong with it.
pub(crate) fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(t)| t)
        .map_err(|e| ApiError::BadRequest(format!("query string: {}", e.body_text())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use serde_json::{json, Value};

    async fn render(e: ApiError) -> (StatusCode, Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn client_errors_carry_their_message() {
        let (status, body) = render(ApiError::NotFound("unknown service `x`".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": {"code": "not_found", "message": "unknown service `x`"}})
        );
        let (status, body) = render(ApiError::BadRequest("parameter `limit`: …".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(
            render(ApiError::Unauthorized).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            render(ApiError::Forbidden("reader token".into())).await.1["error"]["code"],
            "forbidden"
        );
    }

    #[tokio::test]
    async fn server_errors_hide_their_detail() {
        let (status, body) = render(ApiError::Internal(
            "relation \"keys\" at db.internal".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"error": {"code": "internal", "message": "internal error"}})
        );
        let (status, body) = render(ApiError::Unavailable("pool timed out".into())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["message"], "service unavailable");
    }

    #[test]
    fn store_errors_split_into_retryable_and_internal() {
        let down = ApiError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(down.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let bug = ApiError::from(StoreError::Database(sqlx::Error::RowNotFound));
        assert_eq!(bug.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
