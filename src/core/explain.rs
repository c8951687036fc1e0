//! Field-level explanations: which JSON pointers differ between two normalized event contents.

use super::event::Content;
use super::pointer::escape_segment;
use serde_json::Value;

/// One differing field; `None` means the field is absent on that side.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub pointer: String,
    pub baseline: Option<Value>,
    pub candidate: Option<Value>,
}

/// Prefix of pseudo-pointers naming compared headers (`#headers/operation`): not a JSON pointer,
/// so it can never collide with a payload field.
pub const HEADER_POINTER_PREFIX: &str = "#headers/";

/// Differences between two events' normalized contents and compared headers, in pointer order.
pub fn diff_events(
    baseline: &(Content, Vec<(String, String)>),
    candidate: &(Content, Vec<(String, String)>),
) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    match (&baseline.0, &candidate.0) {
        (Content::Json(b), Content::Json(c)) => {
            diff_values(String::new(), Some(b), Some(c), &mut out)
        }
        (b, c) if b != c => out.push(FieldDiff {
            pointer: String::new(),
            baseline: Some(content_value(b)),
            candidate: Some(content_value(c)),
        }),
        _ => {}
    }
    diff_headers(&baseline.1, &candidate.1, &mut out);
    out
}

/// The whole content as one JSON value (for display of a missing or extra event).
pub fn content_value(content: &Content) -> Value {
    match content {
        Content::Json(v) => v.clone(),
        Content::Bytes(s) => Value::String(s.clone()),
        Content::Tombstone => Value::Null,
    }
}

fn diff_values(pointer: String, b: Option<&Value>, c: Option<&Value>, out: &mut Vec<FieldDiff>) {
    match (b, c) {
        (Some(Value::Object(bm)), Some(Value::Object(cm))) => {
            let mut keys: Vec<&String> = bm.keys().chain(cm.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = format!("{pointer}/{}", escape_segment(key));
                diff_values(child, bm.get(key), cm.get(key), out);
            }
        }
        (Some(Value::Array(ba)), Some(Value::Array(ca))) if ba.len() == ca.len() => {
            for (i, (x, y)) in ba.iter().zip(ca).enumerate() {
                diff_values(format!("{pointer}/{i}"), Some(x), Some(y), out);
            }
        }
        (x, y) if x != y => out.push(FieldDiff {
            pointer,
            baseline: x.cloned(),
            candidate: y.cloned(),
        }),
        _ => {}
    }
}

fn diff_headers(b: &[(String, String)], c: &[(String, String)], out: &mut Vec<FieldDiff>) {
    let mut names: Vec<&String> = b.iter().chain(c).map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    for name in names {
        let values = |side: &[(String, String)]| -> Option<Value> {
            let found: Vec<Value> = side
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| Value::String(v.clone()))
                .collect();
            match found.len() {
                0 => None,
                1 => found.into_iter().next(),
                _ => Some(Value::Array(found)),
            }
        };
        let (x, y) = (values(b), values(c));
        if x != y {
            out.push(FieldDiff {
                pointer: format!("{HEADER_POINTER_PREFIX}{name}"),
                baseline: x,
                candidate: y,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json(v: Value) -> (Content, Vec<(String, String)>) {
        (Content::Json(v), vec![])
    }

    #[test]
    fn nested_fields_and_missing_members() {
        let d = diff_events(
            &json(json!({"a": 1, "m": {"x": "1", "y/z": 2}, "l": [1, 2]})),
            &json(json!({"a": 1, "m": {"x": "2"}, "l": [1, 3], "n": true})),
        );
        let pointers: Vec<_> = d.iter().map(|f| f.pointer.as_str()).collect();
        assert_eq!(pointers, ["/l/1", "/m/x", "/m/y~1z", "/n"]);
        assert_eq!(d[2].candidate, None);
        assert_eq!(d[3].baseline, None);
    }

    #[test]
    fn arrays_of_other_length_differ_as_a_whole_and_headers_as_sets() {
        let b = (
            Content::Json(json!({"l": [1]})),
            vec![("operation".into(), "update".into())],
        );
        let c = (
            Content::Json(json!({"l": [1, 2]})),
            vec![("operation".into(), "delete".into())],
        );
        let d = diff_events(&b, &c);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].pointer, "/l");
        assert_eq!(d[1].pointer, "#headers/operation");
    }

    #[test]
    fn bytes_against_json_is_one_whole_difference() {
        let d = diff_events(
            &(Content::Bytes("x".into()), vec![]),
            &json(json!({"a": 1})),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pointer, "");
        assert!(diff_events(&json(json!({"a": 1})), &json(json!({"a": 1}))).is_empty());
    }
}
