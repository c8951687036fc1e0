//! The canonical form: normalization rules applied to a parsed payload, then one byte spelling.
//!
//! Steps, in order (the contract is `docs/canonical-form.md`, versioned by [`CANONICAL_VERSION`]):
//! 1. per-side base64 fields decoded; 2. ignored fields removed; 3. float4 fields rounded to f32;
//! 4. a walk that spells every number canonically, turns decimal strings into numbers (rule
//!    `decimals = "numeric"`), timestamps into UTC instants (`timestamps = "instant"`) and drops
//!    null object members (`null_equals_missing`); 5. compact JSON with object keys sorted.

use super::instant::canonical_instant;
use super::number::{canonical_float32, canonical_number, is_decimal_string};
use super::pointer::PointerPattern;
use base64::Engine as _;
use serde_json::{Number, Value};
use std::str::FromStr;

/// Version of the canonical form. Every report and verdict carries it; change it whenever a
/// change here could turn an equal pair unequal or the reverse.
pub const CANONICAL_VERSION: &str = "paritygate-canonical/1";

/// Normalization rules of one side of one service, compiled from the config.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub ignore: Vec<PointerPattern>,
    pub decimals_numeric: bool,
    pub timestamps_instant: bool,
    pub null_equals_missing: bool,
    pub boolean_strings: bool,
    pub float32: Vec<PointerPattern>,
    pub base64: Vec<PointerPattern>,
}

/// Apply every rule to `value` in place; afterwards [`write_canonical`] gives its one spelling.
pub fn normalize(value: &mut Value, rules: &Rules) {
    for pattern in &rules.base64 {
        pattern.for_each_mut(value, &mut decode_base64);
    }
    for pattern in &rules.ignore {
        pattern.remove_from(value);
    }
    for pattern in &rules.float32 {
        pattern.for_each_mut(value, &mut round_to_f32);
    }
    walk(value, rules);
}

fn decode_base64(value: &mut Value) {
    if let Value::String(text) = value {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            // Go's JSON encoder writes invalid UTF-8 as U+FFFD; lossy decoding matches a raw-bytes side.
            *value = Value::String(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}

fn round_to_f32(value: &mut Value) {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) if is_decimal_string(s) => s.clone(),
        _ => return,
    };
    if let Some(number) = canonical_float32(&text).and_then(|t| Number::from_str(&t).ok()) {
        *value = Value::Number(number);
    }
}

fn walk(value: &mut Value, rules: &Rules) {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            if let Some(number) = canonical_number(&text).filter(|c| *c != text) {
                if let Ok(parsed) = Number::from_str(&number) {
                    *n = parsed;
                }
            }
        }
        Value::String(s) => {
            if rules.timestamps_instant {
                if let Some(instant) = canonical_instant(s) {
                    *s = instant;
                    return;
                }
            }
            if rules.boolean_strings && (s == "true" || s == "false") {
                *value = Value::Bool(s == "true");
                return;
            }
            if rules.decimals_numeric && is_decimal_string(s) {
                if let Some(number) = canonical_number(s).and_then(|t| Number::from_str(&t).ok()) {
                    *value = Value::Number(number);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| walk(item, rules)),
        Value::Object(map) => {
            if rules.null_equals_missing {
                map.retain(|_, v| !v.is_null());
            }
            map.values_mut().for_each(|v| walk(v, rules));
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Append the canonical bytes of an already normalized value: compact, object keys sorted by
/// their UTF-8 bytes, strings with JSON's minimal escaping (so `\u003c` and `<` agree).
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's map is a BTreeMap (sorted) unless a dependency turns on `preserve_order`;
            // sorting here keeps the form independent of that feature flag.
            let mut entries: Vec<_> = map.iter().collect();
            if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            }
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Writing a &str into a Vec cannot fail; the fallback keeps the function total anyway.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// Normalize a copy of `value` and return its canonical bytes (convenience for tests and keys).
pub fn canonical_bytes(value: &Value, rules: &Rules) -> Vec<u8> {
    let mut copy = value.clone();
    normalize(&mut copy, rules);
    let mut out = Vec::new();
    write_canonical(&copy, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(text: &str, rules: &Rules) -> String {
        let value: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(canonical_bytes(&value, rules)).unwrap()
    }

    fn rules() -> Rules {
        Rules {
            ignore: vec![PointerPattern::parse("/__sync_timestamp").unwrap()],
            decimals_numeric: true,
            timestamps_instant: true,
            null_equals_missing: true,
            boolean_strings: true,
            float32: vec![PointerPattern::parse("/weight").unwrap()],
            base64: vec![],
        }
    }

    #[test]
    fn key_order_whitespace_and_escaping_do_not_matter() {
        let a = canon(r#"{"b":"<x>","a":1}"#, &Rules::default());
        let b = canon(
            "{ \"a\" : 1 ,\n \"b\" : \"\\u003cx\\u003e\" }",
            &Rules::default(),
        );
        assert_eq!(a, r#"{"a":1,"b":"<x>"}"#);
        assert_eq!(a, b);
    }

    #[test]
    fn exact_big_numbers() {
        let r = Rules::default();
        assert_ne!(
            canon(r#"{"n":12345678901234567891}"#, &r),
            canon(r#"{"n":12345678901234567000}"#, &r)
        );
        assert_eq!(
            canon(r#"{"n":12345678901234567891}"#, &r),
            r#"{"n":12345678901234567891}"#
        );
        assert_eq!(canon(r#"{"n":1.50}"#, &r), canon(r#"{"n":1.5e0}"#, &r));
    }

    #[test]
    fn decimal_strings_only_under_the_numeric_rule() {
        assert_ne!(
            canon(r#"{"a":"1050.00"}"#, &Rules::default()),
            canon(r#"{"a":1050}"#, &Rules::default())
        );
        assert_eq!(
            canon(r#"{"a":"1050.00"}"#, &rules()),
            canon(r#"{"a":1050}"#, &rules())
        );
        assert_eq!(canon(r#"{"zip":"007"}"#, &rules()), r#"{"zip":"007"}"#);
    }

    #[test]
    fn rules_apply_ignore_nulls_instants_float32() {
        let got = canon(
            r#"{"__sync_timestamp":"x","gone":null,"at":"2026-08-20T12:15:30.120+02:00","weight":1.100000023841858}"#,
            &rules(),
        );
        assert_eq!(got, r#"{"at":"2026-08-20T10:15:30.12Z","weight":1.1}"#);
    }

    #[test]
    fn boolean_strings_only_under_their_rule() {
        assert_eq!(canon(r#"{"bit":"false"}"#, &rules()), r#"{"bit":false}"#);
        assert_eq!(
            canon(r#"{"bit":"false"}"#, &Rules::default()),
            r#"{"bit":"false"}"#
        );
        assert_eq!(canon(r#"{"bit":"False"}"#, &rules()), r#"{"bit":"False"}"#);
    }

    #[test]
    fn base64_fields_decode() {
        let r = Rules {
            base64: vec![PointerPattern::parse("/blob").unwrap()],
            ..Rules::default()
        };
        assert_eq!(canon(r#"{"blob":"aGVsbG8="}"#, &r), r#"{"blob":"hello"}"#);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            "[a-z<>&\"\\\\é\u{1F600} ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Re-serialize with keys reversed, pretty whitespace and HTML-style escapes.
    fn noisy(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                out.push_str("{\n ");
                for (i, (k, v)) in map.iter().rev().enumerate() {
                    if i > 0 {
                        out.push_str(" ,\n ");
                    }
                    out.push_str(&escape_html(k));
                    out.push_str(" : ");
                    noisy(v, out);
                }
                out.push_str(" }");
            }
            Value::Array(items) => {
                out.push_str("[ ");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" , ");
                    }
                    noisy(v, out);
                }
                out.push_str(" ]");
            }
            Value::String(s) => out.push_str(&escape_html(s)),
            other => out.push_str(&other.to_string()),
        }
    }

    fn escape_html(s: &str) -> String {
        serde_json::to_string(s)
            .unwrap()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }

    proptest! {
        #[test]
        fn canonical_form_ignores_key_order_whitespace_and_escaping(v in arb_json()) {
            let compact = serde_json::to_string(&v).unwrap();
            let mut loud = String::new();
            noisy(&v, &mut loud);
            prop_assert_eq!(canon(&compact, &Rules::default()), canon(&loud, &Rules::default()));
        }

        #[test]
        fn canonical_form_is_a_fixed_point(v in arb_json()) {
            let once = canon(&serde_json::to_string(&v).unwrap(), &rules());
            prop_assert_eq!(canon(&once, &rules()), once.clone());
        }
    }
}
