//! The canonical form: normalization rules applied to a parsed payload, then one byte spelling.
//!
//! Steps, in order (the contract is `docs/canonical-form.md`, versioned by [`CANONICAL_VERSION`]):
//! 1. per-side base64 fields decoded; 2. ignored fields removed; 3. float4 fields rounded to f32;
//! 4. a walk that spells every number canonically, turns decimal strings into numbers (rule
//!    `decimals = "numeric"`), timestamps into UTC instants (`timestamps = "instant"`) and drops
//!    null object members (`null_equals_missing`); 5. compact JSON with object keys sorted.

use super::instant::{canonical_instant, is_canonical_spelling};
use super::number::{canonical_float32, canonical_number, is_decimal_string};
use super::pointer::PointerPattern;
use super::tree::Node;
use base64::Engine as _;
use serde_json::Value;
use std::borrow::Cow;

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

/// Apply every rule to `node` in place; afterwards [`write_node`] gives its one spelling.
pub fn normalize_node(node: &mut Node<'_>, rules: &Rules) {
    for pattern in &rules.base64 {
        pattern.for_each_mut(node, &mut decode_base64);
    }
    for pattern in &rules.ignore {
        pattern.remove_from(node);
    }
    for pattern in &rules.float32 {
        pattern.for_each_mut(node, &mut round_to_f32);
    }
    walk(node, rules);
}

/// [`normalize_node`] for a `serde_json::Value` (row diffs, tests): the value is replaced by its
/// normalized form.
pub fn normalize(value: &mut Value, rules: &Rules) {
    if let Ok(normalized) = serde_json::from_slice(&canonical_bytes(value, rules)) {
        *value = normalized;
    }
}

fn decode_base64(node: &mut Node<'_>) {
    if let Node::String(text) = node {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            // Go's JSON encoder writes invalid UTF-8 as U+FFFD; lossy decoding matches a raw-bytes side.
            *node = Node::String(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

fn round_to_f32(node: &mut Node<'_>) {
    let rounded = match &*node {
        Node::Number(n) => canonical_float32(n),
        Node::String(s) if is_decimal_string(s) => canonical_float32(s),
        _ => return,
    };
    if let Some(number) = rounded.and_then(|t| json_number(&t)) {
        *node = Node::Number(Cow::Owned(number));
    }
}

/// `text` as a JSON number spelled as parsed numbers are (`1.5E+30` is `1.5e+30`, as
/// `serde_json::Number` has it), or `None` when it is not one.
fn json_number(text: &str) -> Option<String> {
    match super::tree::parse(text.as_bytes())? {
        Node::Number(n) => Some(n.into_owned()),
        _ => None,
    }
}

fn walk(node: &mut Node<'_>, rules: &Rules) {
    match node {
        Node::Number(n) => {
            if !is_plainly_canonical(n) {
                if let Some(number) = canonical_number(n)
                    .filter(|c| c != n)
                    .and_then(|c| json_number(&c))
                {
                    *n = Cow::Owned(number);
                }
            }
        }
        Node::String(s) => {
            if rules.timestamps_instant {
                // Already canonical (or no instant at all): nothing to parse or render.
                if is_canonical_spelling(s) {
                    return;
                }
                if let Some(instant) = canonical_instant(s) {
                    *s = Cow::Owned(instant);
                    return;
                }
            }
            if rules.boolean_strings && (s == "true" || s == "false") {
                *node = Node::Bool(s == "true");
                return;
            }
            if rules.decimals_numeric && is_decimal_string(s) {
                if let Some(number) = canonical_number(s).and_then(|t| json_number(&t)) {
                    *node = Node::Number(Cow::Owned(number));
                }
            }
        }
        Node::Array(items) => items.iter_mut().for_each(|item| walk(item, rules)),
        Node::Object(members) => {
            if rules.null_equals_missing {
                members.retain(|(_, v)| !v.is_null());
            }
            members.iter_mut().for_each(|(_, v)| walk(v, rules));
        }
        Node::Null | Node::Bool(_) => {}
    }
}

/// A shortcut for the common case, without allocating: a short number with no exponent, no
/// superfluous zero and no `-0` is already spelled as [`canonical_number`] would spell it
/// (a property test holds the two together).
fn is_plainly_canonical(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let int_ok = match int {
        [b'0'] => frac.is_some() || text.len() == 1,
        [first, ..] => *first != b'0' && int.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    let frac_ok = frac
        .is_none_or(|f| f.last().is_some_and(|&b| b != b'0') && f.iter().all(u8::is_ascii_digit));
    // `0.000…1` with many zeros switches to scientific notation; stay well inside plain range.
    text.len() <= 18
        && int_ok
        && frac_ok
        && !(int == b"0" && frac.is_some_and(|f| f.starts_with(b"0000")))
}

/// Append the canonical bytes of an already normalized tree: compact, object keys sorted by their
/// UTF-8 bytes (the tree keeps them so), strings with JSON's minimal escaping (so `\u003c` and
/// `<` agree).
pub fn write_node(node: &Node<'_>, out: &mut Vec<u8>) {
    match node {
        Node::Null => out.extend_from_slice(b"null"),
        Node::Bool(true) => out.extend_from_slice(b"true"),
        Node::Bool(false) => out.extend_from_slice(b"false"),
        Node::Number(n) => out.extend_from_slice(n.as_bytes()),
        Node::String(s) => write_string(s, out),
        Node::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_node(item, out);
            }
            out.push(b']');
        }
        Node::Object(members) => {
            out.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_node(item, out);
            }
            out.push(b'}');
        }
    }
}

/// The canonical bytes of an already normalized tree, in a vector of their own.
pub fn node_bytes(node: &Node<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_node(node, &mut out);
    out
}

/// [`write_node`] for a normalized `serde_json::Value`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    write_node(&Node::from_value(value), out);
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // Most strings need no escape at all: copy them; otherwise serde_json's minimal escaping.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing a &str into a Vec cannot fail; the fallback keeps the function total anyway.
        out.extend_from_slice(b"\"\"");
    }
}

/// Normalize a copy of `value` and return its canonical bytes (convenience for tests and keys).
pub fn canonical_bytes(value: &Value, rules: &Rules) -> Vec<u8> {
    let mut node = Node::from_value(value);
    normalize_node(&mut node, rules);
    node_bytes(&node)
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
    fn plain_number_shortcut_takes_the_common_spellings_only() {
        for plain in ["0", "7", "-12", "4.99", "0.5", "-0.25", "1787220000734"] {
            assert!(is_plainly_canonical(plain), "{plain}");
        }
        for not in [
            "-0",
            "1.50",
            "1.0",
            "0.0",
            "01",
            "1e5",
            "0.00001",
            "123456789012345678901",
        ] {
            assert!(!is_plainly_canonical(not), "{not}");
        }
    }

    #[test]
    fn exponents_are_spelled_as_parsed_numbers_are() {
        let r = Rules::default();
        assert_eq!(canon(r#"{"n":1E400}"#, &r), canon(r#"{"n":1e+400}"#, &r));
        assert_eq!(canon(r#"[1E400]"#, &r), "[1e+400]");
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
        fn the_plain_number_shortcut_agrees_with_canonical_number(
            text in "-?(0|[1-9][0-9]{0,19})(\\.[0-9]{1,8})?",
        ) {
            if is_plainly_canonical(&text) {
                prop_assert_eq!(canonical_number(&text), Some(text.clone()));
            }
        }

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
