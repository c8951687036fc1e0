//! From one record to one event: key, operation, position and content digest.
//!
//! The digest is BLAKE3 over the canonical payload bytes plus the compared headers (as a sorted set),
//! with a tag that keeps JSON, raw bytes and tombstones apart. It is truncated to 128 bits: enough
//! to make an accidental collision between two different events negligible at any realistic volume.

use super::canonical::{normalize_node, write_node};
use super::operation::{Operation, ParsedOperation};
use super::plan::SidePlan;
use super::position::{parse_composite, parse_position, Position};
use super::record::RecordView;
use super::tree::{parse_payload, Node};
use serde_json::Value;

mod fields;
use fields::{compared_headers, event_time, extract_key, lookup, lookup_bytes};

/// A 128-bit content digest.
pub type Digest = u128;

/// Why a record produced no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    MissingKey,
    MissingPosition,
    MissingOperation,
    UnknownOperation,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::MissingPosition => "missing_position",
            Self::MissingOperation => "missing_operation",
            Self::UnknownOperation => "unknown_operation",
        }
    }
}

/// Records that are deliberately not events (not errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    TransactionMarker,
    UpdateBeforeDropped,
    /// The null value Debezium writes after a delete (`envelope = "debezium"`).
    DebeziumTombstone,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransactionMarker => "transaction_marker",
            Self::UpdateBeforeDropped => "update_before_dropped",
            Self::DebeziumTombstone => "debezium_tombstone",
        }
    }
}

/// The normalized content of an event, kept only when asked for (explanations).
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Json(Value),
    Bytes(String),
    Tombstone,
}

/// How much of an event's content extraction keeps beside its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Key, operation, position and digest only (the first pass of `diff`).
    Digest,
    /// Also the canonical bytes of a JSON payload (`serve` stores a key's final state as them).
    Canonical,
    /// Also the normalized content as a value and the compared headers (explanations).
    Content,
}

/// What the payload was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Json,
    /// Not JSON: compared by its bytes.
    Bytes,
    Tombstone,
}

/// One event extracted from a record.
#[derive(Debug, Clone)]
pub struct Event {
    /// Canonical key bytes; also the key's display text.
    pub key: Vec<u8>,
    pub operation: Operation,
    pub position: Option<Position>,
    pub digest: Digest,
    /// Event time from the configured source, when it has one.
    pub event_time_ms: Option<i64>,
    pub shape: Shape,
    /// With [`Keep::Content`]: normalized payload and compared headers.
    pub content: Option<(Content, Vec<(String, String)>)>,
    /// With [`Keep::Canonical`] or [`Keep::Content`]: the canonical bytes of a JSON payload (what
    /// the digest hashed), so `serve` stores a key's final state without serializing it again.
    pub canonical: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum Outcome {
    Event(Event),
    Skipped(Skip),
    Rejected(Reject),
}

impl Outcome {
    /// One line saying what extraction made of a record: digest, key, operation, position, event
    /// time and the BLAKE3 of the canonical bytes (extract with [`Keep::Canonical`]), or the skip
    /// or rejection reason. The same lines from two builds mean the canonical form did not change
    /// (`examples/extract_dump.rs`, `tests/it/cli/canonical_pinned.rs`).
    pub fn summary_line(&self) -> String {
        match self {
            Outcome::Event(e) => format!(
                "E {:032x} {} {} {:?} {:?} {}",
                e.digest,
                String::from_utf8_lossy(&e.key),
                e.operation.as_str(),
                e.position,
                e.event_time_ms,
                e.canonical
                    .as_deref()
                    .map(|c| blake3::hash(c).to_hex().to_string())
                    .unwrap_or_default()
            ),
            Outcome::Rejected(r) => format!("R {}", r.as_str()),
            Outcome::Skipped(s) => format!("S {}", s.as_str()),
        }
    }
}

/// BLAKE3 of a key, truncated: the engine's in-memory identity of a key.
pub fn key_hash(key: &[u8]) -> u128 {
    truncate(blake3::hash(key))
}

/// The first 128 bits of a BLAKE3 hash, big-endian: how digests, key hashes and record
/// fingerprints are truncated.
pub fn truncate(hash: blake3::Hash) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_be_bytes(first)
}

/// Extract an event from a record, keeping as much of its content as `keep` asks for.
pub fn extract(plan: &SidePlan, record: &RecordView<'_>, keep: Keep) -> Outcome {
    let mut parsed: Option<Node<'_>> = record.payload.as_deref().and_then(parse_payload);
    let operation = match &plan.operation {
        None if record.payload.is_none() => Operation::Delete,
        None => Operation::Change,
        Some(source) => match lookup(source, record, parsed.as_ref()) {
            None if record.payload.is_none() => Operation::Delete,
            None => return Outcome::Rejected(Reject::MissingOperation),
            Some(raw) => match Operation::parse(&raw) {
                Some(ParsedOperation::Change(op)) => op,
                Some(ParsedOperation::Marker) => return Outcome::Skipped(Skip::TransactionMarker),
                None => return Outcome::Rejected(Reject::UnknownOperation),
            },
        },
    };
    let operation = match operation {
        Operation::Read if plan.snapshot_read_as_insert => Operation::Insert,
        Operation::UpdateBefore if plan.drop_update_before => {
            return Outcome::Skipped(Skip::UpdateBeforeDropped)
        }
        Operation::UpdateAfter if plan.drop_update_before => Operation::Update,
        op => op,
    };
    let Some(key) = extract_key(plan, record, parsed.as_ref()) else {
        return Outcome::Rejected(Reject::MissingKey);
    };
    let position = match &plan.position {
        None => None,
        Some((sources, format)) => {
            let parts: Option<Vec<Vec<u8>>> = sources
                .iter()
                .map(|source| lookup_bytes(source, record, parsed.as_ref()))
                .collect();
            let parsed_position = match (parts.as_deref(), sources.len()) {
                (Some([one]), 1) => parse_position(one, *format),
                (Some(parts), _) => parse_composite(parts, *format),
                (None, _) => None,
            };
            match parsed_position {
                Some(p) => Some(p),
                None => return Outcome::Rejected(Reject::MissingPosition),
            }
        }
    };

    let mut hasher = blake3::Hasher::new();
    let mut canonical = None;
    let shape = match (parsed.as_mut(), record.payload.as_deref()) {
        (Some(node), _) => {
            normalize_node(node, &plan.rules);
            let mut bytes = Vec::with_capacity(record.payload.as_ref().map_or(0, |p| p.len()));
            write_node(node, &mut bytes);
            hasher.update(b"J");
            hasher.update(&bytes);
            canonical = Some(bytes);
            Shape::Json
        }
        (None, Some(raw)) => {
            hasher.update(b"B");
            hasher.update(raw);
            Shape::Bytes
        }
        (None, None) => {
            hasher.update(b"T");
            Shape::Tombstone
        }
    };
    let headers = compared_headers(plan, record);
    for (name, value) in &headers {
        hasher.update(b"\0H");
        hasher.update(&(name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        match value {
            Some(v) => {
                hasher.update(&(v.len() as u64).to_be_bytes());
                hasher.update(v);
            }
            None => {
                hasher.update(&u64::MAX.to_be_bytes());
            }
        }
    }
    let event_time_ms = plan
        .event_time
        .as_ref()
        .and_then(|s| event_time(s, record, parsed.as_ref()));
    let content = (keep == Keep::Content).then(|| {
        let content = match (shape, &canonical, record.payload.as_deref()) {
            (Shape::Json, Some(bytes), _) => serde_json::from_slice(bytes).map_or_else(
                |_| Content::Bytes(String::from_utf8_lossy(bytes).into_owned()),
                Content::Json,
            ),
            (Shape::Bytes, _, Some(raw)) => {
                Content::Bytes(String::from_utf8_lossy(raw).into_owned())
            }
            _ => Content::Tombstone,
        };
        let shown = headers
            .into_iter()
            .map(|(n, v)| {
                (
                    n,
                    v.map_or_else(|| "null".to_owned(), |b| display_bytes(&b)),
                )
            })
            .collect();
        (content, shown)
    });
    Outcome::Event(Event {
        key,
        operation,
        position,
        digest: truncate(hasher.finalize()),
        event_time_ms,
        shape,
        content,
        canonical: canonical.filter(|_| keep != Keep::Digest),
    })
}

/// Text for display: UTF-8 as is, anything else as `0x…` hex (binary LSN headers).
pub fn display_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => format!(
            "0x{}",
            bytes.iter().map(|b| format!("{b:02X}")).collect::<String>()
        ),
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
