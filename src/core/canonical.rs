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
#[path = "canonical_tests.rs"]
mod tests;
