//! A service's comparison plan: the config compiled into what extraction needs per side.
//!
//! The config compiles into it once (`config::plan`), so a bad pointer or an impossible
//! combination is reported before a single record is read, naming the field that is wrong.

use super::avro::WriterSchema;
use super::canonical::Rules;
use super::pointer::PointerPattern;
use super::position::PositionFormat;
use std::sync::Arc;

/// Where a value is read from.
#[derive(Debug, Clone)]
pub enum Source {
    Header(String),
    Pointer(PointerPattern),
}

#[derive(Debug, Clone)]
pub enum KeySource {
    MessageKey,
    Fields(Vec<PointerPattern>),
}

/// Everything needed to turn one side's records into events.
#[derive(Debug, Clone)]
pub struct SidePlan {
    pub key: KeySource,
    /// Where the position is read: one source, or several (a composite, ordered field by field:
    /// `core::position::parse_composite`).
    pub position: Option<(Vec<Source>, PositionFormat)>,
    pub operation: Option<Source>,
    /// Sorted, deduplicated header names compared as part of the content.
    pub compare_headers: Vec<String>,
    pub rules: Rules,
    pub snapshot_read_as_insert: bool,
    pub drop_update_before: bool,
    /// Event time (Unix ms or RFC 3339); the adapter falls back to the record timestamp.
    pub event_time: Option<Source>,
    /// How payloads are written (`payload`): JSON, or Avro decoded first (`core::payload`).
    pub payload: WireFormat,
    /// How message keys are written (`key_format`); `String` keys are never parsed as JSON.
    pub key_format: WireFormat,
    /// `envelope = "debezium"`: content, operation and position from a Debezium envelope
    /// (`core::debezium`), taken apart before extraction.
    pub debezium: bool,
}

/// Both sides of one service.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub name: String,
    pub wave: Option<u32>,
    pub baseline: SidePlan,
    pub candidate: SidePlan,
    /// True when events are identified by (key, operation, position); false: by content digest.
    pub has_position: bool,
    /// The event time compared (`compare_from`); events outside it are counted, not compared.
    pub compared: super::range::TimeRange,
}

impl ServicePlan {
    /// The plan of one side.
    pub fn side(&self, side: crate::model::Side) -> &SidePlan {
        match side {
            crate::model::Side::Baseline => &self.baseline,
            crate::model::Side::Candidate => &self.candidate,
        }
    }
}

/// How a side writes its payloads or keys (`payload` / `key_format`).
#[derive(Debug, Clone, Default)]
pub enum WireFormat {
    /// JSON, or anything else compared as bytes (the default).
    #[default]
    Json,
    /// Keys only: the key's bytes are its text (no JSON parsing).
    String,
    /// Avro in the Confluent wire format: schemas by id from the side's [`SchemaLookup`].
    Avro,
    /// Avro binary without framing, all with one schema (`schema_file`).
    AvroRaw(Arc<WriterSchema>),
}

impl WireFormat {
    pub fn is_avro(&self) -> bool {
        matches!(self, WireFormat::Avro | WireFormat::AvroRaw(_))
    }
}
