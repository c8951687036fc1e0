//! JSON request bodies, read field by field so that a 400 names the field at fault (serde's own
//! messages often do not, e.g. "invalid type: integer, expected a string at line 1 column 9").
//!
//! Bodies are taken as `Bytes`: the router's body limit applies while they are read, and an
//! oversized chunked body (no `Content-Length` to refuse up front) becomes a 413 here.

use super::{ApiError, MAX_BODY_BYTES};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// A JSON object body whose fields are taken one by one; unknown fields are refused.
#[derive(Debug)]
pub struct Fields {
    object: Map<String, Value>,
}

/// The raw body, or 413 when it went over the limit while being read.
pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(MAX_BODY_BYTES)
        } else {
            ApiError::BadRequest(format!("body: {}", e.body_text()))
        }
    })
}

impl Fields {
    /// Parse a JSON object allowing only `allowed` keys.
    pub fn parse(
        body: Result<Bytes, BytesRejection>,
        allowed: &[&str],
    ) -> Result<Fields, ApiError> {
        let raw = bytes(body)?;
        let value: Value = serde_json::from_slice(&raw)
            .map_err(|e| ApiError::BadRequest(format!("body: not valid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(ApiError::BadRequest("body: must be a JSON object".into()));
        };
        Self::allowing(object, allowed)
    }

    /// HTML form fields (`application/x-www-form-urlencoded`, already decoded) allowing only
    /// `allowed` names; a repeated name keeps its last value. Read with the same rules as JSON.
    pub fn from_form(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Fields, ApiError> {
        let object = pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        Self::allowing(object, allowed)
    }

    fn allowing(object: Map<String, Value>, allowed: &[&str]) -> Result<Fields, ApiError> {
        if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "field `{unknown}`: unknown; expected {}",
                allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Fields { object })
    }

    /// A required string that is not blank, trimmed, at most `max_chars` long, without NUL.
    ///
    /// NUL (`\u0000`) is refused rather than stored: Postgres `text` cannot hold it, and a
    /// sign-off comment or a waiver reason has no use for it (every other character is kept).
    pub fn text(&self, name: &str, max_chars: usize) -> Result<String, ApiError> {
        let bad = |why: &str| ApiError::BadRequest(format!("field `{name}`: {why}"));
        match self.object.get(name) {
            None | Some(Value::Null) => Err(bad("is required")),
            Some(Value::String(s)) if s.contains('\0') => {
                Err(bad("must not contain NUL (\\u0000)"))
            }
            Some(Value::String(s)) if s.trim().is_empty() => Err(bad("must not be empty")),
            Some(Value::String(s)) if s.chars().count() > max_chars => {
                Err(bad(&format!("at most {max_chars} characters")))
            }
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(_) => Err(bad("must be a string")),
        }
    }

    /// An optional string: absent or `null` is `None`, anything else is read as [`Self::text`].
    pub fn optional_text(&self, name: &str, max_chars: usize) -> Result<Option<String>, ApiError> {
        match self.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.text(name, max_chars).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Fields, ApiError> {
        Fields::parse(Ok(Bytes::from(raw.to_owned())), &["reason", "comment"])
    }

    fn message(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(m) => m,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn fields_are_named_in_errors() {
        assert!(message(parse("nope").unwrap_err()).starts_with("body: not valid JSON"));
        assert_eq!(
            message(parse("[1]").unwrap_err()),
            "body: must be a JSON object"
        );
        assert!(message(parse(r#"{"who": "me"}"#).unwrap_err())
            .starts_with("field `who`: unknown; expected `reason`, `comment`"));
        let f = parse(r#"{"reason": "  ", "comment": 3}"#).unwrap();
        assert_eq!(
            message(f.text("reason", 10).unwrap_err()),
            "field `reason`: must not be empty"
        );
        assert_eq!(
            message(f.text("comment", 10).unwrap_err()),
            "field `comment`: must be a string"
        );
        let f = parse(r#"{"reason": "a\u0000b"}"#).unwrap();
        assert_eq!(
            message(f.text("reason", 10).unwrap_err()),
            "field `reason`: must not contain NUL (\\u0000)"
        );
        let f = parse(r#"{"reason": " ok "}"#).unwrap();
        assert_eq!(f.text("reason", 10).unwrap(), "ok");
        assert_eq!(
            message(f.text("comment", 10).unwrap_err()),
            "field `comment`: is required"
        );
        assert!(message(f.text("reason", 1).unwrap_err()).contains("at most 1 characters"));
    }
}
