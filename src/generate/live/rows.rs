//! What a sink does with the records of one side: each data record, read with the service's own
//! side plan (key, operation, canonical content), becomes an upsert or a delete of a target row.
//!
//! The row is the record's canonical content (normalization applied) as `jsonb`: a real sink writes
//! typed columns, where the runtimes' spelling noise (decimal padding, time-zone offsets, key order)
//! vanishes the same way. What the candidate got wrong on the stream reaches its table too.

use super::super::capture::{HeaderValue, Record};
use crate::core::event::{extract, Content, Keep, Outcome};
use crate::core::operation::Operation;
use crate::core::plan::SidePlan;
use crate::core::record::RecordView;
use serde_json::Value;
use std::borrow::Cow;

/// One change of a target table, keyed by the event's canonical key text.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    Upsert {
        key: String,
        doc: Value,
        /// An update of an existing row (not its first write).
        update: bool,
    },
    Delete {
        key: String,
    },
}

impl RowChange {
    pub fn key(&self) -> &str {
        match self {
            Self::Upsert { key, .. } | Self::Delete { key } => key,
        }
    }
}

/// The consumer's view of a generated record.
pub fn view(record: &Record) -> RecordView<'_> {
    RecordView {
        topic: Cow::Borrowed(record.topic),
        partition: record.partition,
        offset: 0,
        timestamp_ms: Some(record.timestamp_ms),
        headers: record
            .headers
            .iter()
            .map(|(name, value)| {
                let bytes: &[u8] = match value {
                    HeaderValue::Text(s) => s.as_bytes(),
                    HeaderValue::Binary(b) => b,
                };
                (Cow::Borrowed(*name), Some(Cow::Borrowed(bytes)))
            })
            .collect(),
        key: record.key.as_deref().map(|k| Cow::Borrowed(k.as_bytes())),
        payload: record
            .payload
            .as_deref()
            .map(|p| Cow::Borrowed(p.as_bytes())),
    }
}

/// `record` read as a consumer of its side reads it: a Debezium envelope taken apart first (an
/// Avro record's `payload` is already the JSON its datum decodes to); a tombstone is no event.
fn extracted(plan: &SidePlan, record: &Record, keep: Keep) -> Outcome {
    use crate::core::payload::{take_envelope, Prepared, Remarks};
    match take_envelope(plan, view(record), Remarks::default()) {
        Ok(Prepared::Record(r, _)) => extract(plan, &r, keep),
        Ok(Prepared::Tombstone) => Outcome::Skipped(crate::core::event::Skip::DebeziumTombstone),
        // Not an envelope (no `op`): nothing a sink would apply.
        Err(_) => Outcome::Rejected(crate::core::event::Reject::MissingOperation),
    }
}

/// The canonical key bytes of a data record (`None` for markers and rejected records).
pub fn event_key(plan: &SidePlan, record: &Record) -> Option<Vec<u8>> {
    match extracted(plan, record, Keep::Digest) {
        Outcome::Event(e) => Some(e.key),
        _ => None,
    }
}

/// The row change a sink makes for `record`, if any (markers and `update_before` images: none).
pub fn row_change(plan: &SidePlan, record: &Record) -> Option<RowChange> {
    let Outcome::Event(event) = extracted(plan, record, Keep::Content) else {
        return None;
    };
    let key = String::from_utf8_lossy(&event.key).into_owned();
    match event.operation {
        Operation::UpdateBefore => None,
        Operation::Delete => Some(RowChange::Delete { key }),
        op => {
            let doc = match event.content.map(|(c, _)| c) {
                Some(Content::Json(v)) => v,
                Some(Content::Bytes(s)) => Value::String(s),
                Some(Content::Tombstone) | None => return Some(RowChange::Delete { key }),
            };
            let update = matches!(
                op,
                Operation::Update | Operation::UpdateAfter | Operation::Change
            );
            Some(RowChange::Upsert { key, doc, update })
        }
    }
}
