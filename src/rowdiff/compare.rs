//! Rust-side comparison of fetched rows, shared by the exhaustive diff and the sampler.
//!
//! Rows arrive as the normalized texts of [`super::sql`]. Each value is turned into JSON by its
//! [`Kind`] and normalized with [`crate::core::canonical::normalize`], so "equal" means what it
//! means in the stream comparison: numbers by exact decimal value, timestamps as UTC instants,
//! JSON documents by value. Identical texts are equal without that work (the common case).

use super::schema::{Column, Plan};
use super::sql::Kind;
use crate::core::canonical::{normalize, write_canonical, Rules};
use crate::core::instant::canonical_instant;
use crate::model::MismatchKind;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::str::FromStr;

/// Normalized texts of one row, compared columns in plan order (keys first); `None` is NULL.
pub type Row = Vec<Option<String>>;
/// Normalized texts of the key columns.
pub type Key = Vec<Option<String>>;

/// One differing key.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDiff {
    pub key: Key,
    pub kind: MismatchKind,
    /// Names of the differing non-key columns (empty unless `Mismatched`).
    pub columns: Vec<String>,
    pub baseline: Option<Row>,
    pub candidate: Option<Row>,
}

/// The JSON value of a normalized text, in canonical form.
pub fn to_json(kind: Kind, text: Option<&str>) -> Value {
    let Some(text) = text else { return Value::Null };
    let mut value = match kind {
        Kind::Int | Kind::Numeric | Kind::Float4 | Kind::Float8 => {
            // NaN and ±Infinity are not JSON numbers; they stay strings.
            Number::from_str(text)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(text.to_owned()))
        }
        Kind::Timestamp => {
            Value::String(canonical_instant(text).unwrap_or_else(|| text.to_owned()))
        }
        Kind::Json => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::String(other.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    };
    // Default rules: canonical number spelling everywhere, nothing else (a text column holding
    // "1.50" must not equal one holding "1.5").
    normalize(&mut value, &Rules::default());
    value
}

fn canonical(kind: Kind, text: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(&to_json(kind, text), &mut out);
    out
}

/// Equal by meaning.
pub fn values_equal(col: &Column, a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) if x == y => true,
        (Some(_), Some(_)) => canonical(col.kind, a) == canonical(col.kind, b),
        _ => false,
    }
}

/// Names of the non-key columns whose values differ.
pub fn differing_columns(plan: &Plan, a: &Row, b: &Row) -> Vec<String> {
    plan.columns
        .iter()
        .enumerate()
        .skip(plan.n_keys)
        .filter(|(i, col)| {
            let x = a.get(*i).and_then(|v| v.as_deref());
            let y = b.get(*i).and_then(|v| v.as_deref());
            !values_equal(col, x, y)
        })
        .map(|(_, col)| col.name.clone())
        .collect()
}

/// Classify every key present in either map, sorted by key.
pub fn diff_rows(
    plan: &Plan,
    baseline: &HashMap<Key, Row>,
    candidate: &HashMap<Key, Row>,
) -> Vec<RowDiff> {
    let mut out = Vec::new();
    for (key, b) in baseline {
        match candidate.get(key) {
            None => out.push(RowDiff {
                key: key.clone(),
                kind: MismatchKind::MissingInCandidate,
                columns: vec![],
                baseline: Some(b.clone()),
                candidate: None,
            }),
            Some(c) => {
                let columns = differing_columns(plan, b, c);
                if !columns.is_empty() {
                    out.push(RowDiff {
                        key: key.clone(),
                        kind: MismatchKind::Mismatched,
                        columns,
                        baseline: Some(b.clone()),
                        candidate: Some(c.clone()),
                    });
                }
            }
        }
    }
    for (key, c) in candidate {
        if !baseline.contains_key(key) {
            out.push(RowDiff {
                key: key.clone(),
                kind: MismatchKind::ExtraInCandidate,
                columns: vec![],
                baseline: None,
                candidate: Some(c.clone()),
            });
        }
    }
    sort_by_key(plan, &mut out);
    out
}

/// Order keys naturally: numerically for numeric key columns, by text otherwise.
pub fn sort_by_key(plan: &Plan, diffs: &mut [RowDiff]) {
    let kinds: Vec<Kind> = plan.keys().iter().map(|c| c.kind).collect();
    diffs.sort_by(|a, b| {
        for (i, kind) in kinds.iter().enumerate() {
            let (x, y) = (
                a.key.get(i).cloned().flatten(),
                b.key.get(i).cloned().flatten(),
            );
            let ord = match (
                kind,
                x.as_deref().map(f64::from_str),
                y.as_deref().map(f64::from_str),
            ) {
                (Kind::Int | Kind::Numeric, Some(Ok(p)), Some(Ok(q))) => {
                    p.total_cmp(&q).then_with(|| x.cmp(&y))
                }
                _ => x.cmp(&y),
            };
            if ord.is_ne() {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
}

/// `{"id": 5, "region": "eu"}` for a key.
pub fn key_json(plan: &Plan, key: &Key) -> Map<String, Value> {
    plan.keys()
        .iter()
        .zip(key)
        .map(|(c, v)| (c.name.clone(), to_json(c.kind, v.as_deref())))
        .collect()
}

/// Every compared column of a row as canonical JSON.
pub fn row_json(plan: &Plan, row: &Row) -> Map<String, Value> {
    plan.columns
        .iter()
        .zip(row)
        .map(|(c, v)| (c.name.clone(), to_json(c.kind, v.as_deref())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_meaning_per_kind() {
        let j = |k, t: &str| to_json(k, Some(t));
        assert_eq!(j(Kind::Numeric, "1050"), j(Kind::Numeric, "1050.00"));
        assert_ne!(
            j(Kind::Numeric, "12345678901234567891"),
            j(Kind::Numeric, "12345678901234567000")
        );
        assert_eq!(
            j(Kind::Timestamp, "2026-08-20 10:15:30.12"),
            Value::String("2026-08-20T10:15:30.12Z".into())
        );
        assert_eq!(
            j(Kind::Json, r#"{"b": 1.50, "a": [1]}"#),
            j(Kind::Json, r#"{"a":[1],"b":1.5}"#)
        );
        assert_ne!(j(Kind::Text, "1.50"), j(Kind::Text, "1.5"));
        assert_eq!(j(Kind::Bool, "true"), Value::Bool(true));
        assert_eq!(j(Kind::Numeric, "NaN"), Value::String("NaN".into()));
        assert_eq!(to_json(Kind::Int, None), Value::Null);
    }
}
