//! Where an event's parts come from besides its payload's digest: the key (message key or payload
//! fields, canonicalized as scalars), header or pointer lookups (operation, position), the
//! compared headers as a sorted set, and the event time.

use crate::core::canonical::{node_bytes, normalize_node, Rules};
use crate::core::payload::WireFormat;
use crate::core::plan::{KeySource, SidePlan, Source};
use crate::core::record::RecordView;
use crate::core::tree::{parse_payload, Node};
use std::borrow::Cow;

pub(super) fn lookup(
    source: &Source,
    record: &RecordView<'_>,
    payload: Option<&Node<'_>>,
) -> Option<String> {
    match source {
        Source::Header(name) => record
            .header(name)
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        Source::Pointer(p) => match p.get(payload?)? {
            Node::String(s) => Some(s.clone().into_owned()),
            Node::Null => None,
            Node::Number(n) => Some(n.clone().into_owned()),
            other => Some(compact(other)),
        },
    }
}

/// The compact spelling of a tree as parsed (what `Value::to_string` gives).
fn compact(node: &Node<'_>) -> String {
    String::from_utf8_lossy(&node_bytes(node)).into_owned()
}

pub(super) fn lookup_bytes(
    source: &Source,
    record: &RecordView<'_>,
    payload: Option<&Node<'_>>,
) -> Option<Vec<u8>> {
    match source {
        Source::Header(name) => record.header(name).map(<[u8]>::to_vec),
        Source::Pointer(_) => lookup(source, record, payload).map(String::into_bytes),
    }
}

/// Rules that only canonicalize scalars (numbers, decimal strings, instants) for key values.
fn key_rules(rules: &Rules) -> Rules {
    Rules {
        decimals_numeric: rules.decimals_numeric,
        timestamps_instant: rules.timestamps_instant,
        boolean_strings: rules.boolean_strings,
        ..Rules::default()
    }
}

pub(super) fn extract_key(
    plan: &SidePlan,
    record: &RecordView<'_>,
    payload: Option<&Node<'_>>,
) -> Option<Vec<u8>> {
    match &plan.key {
        KeySource::MessageKey => {
            let raw = record
                .key
                .as_deref()
                .filter(|k| !k.is_empty() && *k != b"null")?;
            // A JSON object or array key is canonicalized; anything else is its bytes.
            let text_only = matches!(plan.key_format, WireFormat::String);
            if !text_only && matches!(raw.first(), Some(b'{' | b'[')) {
                if let Some(mut value) = parse_payload(raw) {
                    normalize_node(&mut value, &key_rules(&plan.rules));
                    return Some(node_bytes(&value));
                }
            }
            Some(raw.to_vec())
        }
        KeySource::Fields(pointers) => {
            let payload = payload?;
            let rules = key_rules(&plan.rules);
            let mut parts = Vec::with_capacity(pointers.len());
            for pointer in pointers {
                let mut value = pointer.get(payload).filter(|v| !v.is_null())?.clone();
                normalize_node(&mut value, &rules);
                parts.push(value);
            }
            match parts.as_slice() {
                [Node::String(s)] => Some(s.as_bytes().to_vec()),
                [single] => Some(node_bytes(single)),
                _ => Some(node_bytes(&Node::Array(parts))),
            }
        }
    }
}

pub(super) fn compared_headers(
    plan: &SidePlan,
    record: &RecordView<'_>,
) -> Vec<(String, Option<Vec<u8>>)> {
    let mut found: Vec<(String, Option<Vec<u8>>)> = record
        .headers
        .iter()
        .filter(|(name, _)| {
            plan.compare_headers
                .binary_search_by(|h| h.as_str().cmp(name))
                .is_ok()
        })
        .map(|(name, value)| (name.to_string(), value.as_deref().map(<[u8]>::to_vec)))
        .collect();
    // Header order is random (Go map iteration): compare them as a set.
    found.sort();
    found.dedup();
    found
}

/// Event time in Unix ms from a header or pointer: an integer (ms) or an RFC 3339 string, read
/// from the normalized payload.
pub(super) fn event_time(
    source: &Source,
    record: &RecordView<'_>,
    payload: Option<&Node<'_>>,
) -> Option<i64> {
    let text: Cow<'_, str> = match source {
        Source::Header(name) => String::from_utf8_lossy(record.header(name)?),
        Source::Pointer(p) => match p.get(payload?)? {
            Node::String(s) | Node::Number(s) => Cow::Borrowed(s.as_ref()),
            _ => return None,
        },
    };
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    crate::core::instant::canonical_instant(text)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.timestamp_millis())
}
