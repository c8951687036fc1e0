//! A record's bytes into what extraction reads: JSON payloads as they are, Avro payloads (and
//! keys) decoded into JSON text first (`core::avro`), Debezium envelopes taken apart
//! (`core::debezium`), so pointers, normalization and the canonical form apply unchanged whatever
//! the wire format was.

use super::avro::{decode_to_json, unframe, AvroError, SchemaLookup};
pub use super::plan::WireFormat;
use super::record::RecordView;
use std::borrow::Cow;

/// What decoding noticed about a record that still became comparable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remarks {
    /// A schema used a logical type the decoder does not know (decoded as the underlying type).
    pub unknown_logical_type: bool,
}

/// Why a record could not be decoded, and which part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    pub part: &'static str,
    pub error: AvroError,
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.error)
    }
}

fn decode(
    format: &WireFormat,
    raw: &[u8],
    lookup: Option<&dyn SchemaLookup>,
    remarks: &mut Remarks,
) -> Result<Option<Vec<u8>>, AvroError> {
    let (schema, binary) = match format {
        WireFormat::Json | WireFormat::String => return Ok(None),
        WireFormat::AvroRaw(schema) => (schema.clone(), raw),
        WireFormat::Avro => {
            let (id, binary) = unframe(raw)?;
            let lookup = lookup.ok_or(AvroError::UnknownSchema(id))?;
            (lookup.schema(id)?, binary)
        }
    };
    remarks.unknown_logical_type |= !schema.unknown_logical_types.is_empty();
    decode_to_json(&schema, binary).map(|json| Some(json.into_bytes()))
}

/// A capture line's text of an Avro value or key: base64 of the record's bytes (JSON captures
/// cannot hold binary; `rpk topic consume -f` with `%v{base64}` / `%k{base64}` writes this).
pub fn from_capture<'a>(
    record: &RecordView<'a>,
    payload: &WireFormat,
    key: &WireFormat,
) -> Result<RecordView<'a>, DecodeFailure> {
    use base64::Engine as _;
    let decode = |part: &'static str, text: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Cow::Owned)
            .map_err(|e| DecodeFailure {
                part,
                error: AvroError::NotFramed(format!("a capture holds Avro as base64: {e}")),
            })
    };
    let mut out = record.clone();
    if payload.is_avro() {
        if let Some(raw) = record.payload.as_deref() {
            out.payload = Some(decode("payload", raw)?);
        }
    }
    if key.is_avro() {
        if let Some(raw) = record.key.as_deref() {
            out.key = Some(decode("key", raw)?);
        }
    }
    Ok(out)
}

/// A JSON string literal's text; any other JSON as it is.
fn unquoted(json: Vec<u8>) -> Vec<u8> {
    if json.first() == Some(&b'"') {
        if let Ok(text) = serde_json::from_slice::<String>(&json) {
            return text.into_bytes();
        }
    }
    json
}

/// What a record is once prepared for extraction.
#[derive(Debug)]
pub enum Prepared<'a> {
    Record(RecordView<'a>, Remarks),
    /// A Debezium tombstone: skipped, not an event.
    Tombstone,
}

/// `record` as extraction reads it (`plan`): Avro payload and key decoded into JSON text, then a
/// Debezium envelope taken apart; a plain JSON side's record unchanged.
pub fn prepare_for<'a>(
    plan: &super::plan::SidePlan,
    record: &RecordView<'a>,
    lookup: Option<&dyn SchemaLookup>,
) -> Result<Prepared<'a>, DecodeFailure> {
    let (decoded, remarks) = if plan.payload.is_avro() || plan.key_format.is_avro() {
        prepare(record, &plan.payload, &plan.key_format, lookup)?
    } else {
        (record.clone(), Remarks::default())
    };
    take_envelope(plan, decoded, remarks)
}

/// `record`, whose payload is JSON text (decoded already if it was Avro), with a Debezium
/// envelope taken apart when the side has one (`plan.debezium`); unchanged otherwise.
pub fn take_envelope<'a>(
    plan: &super::plan::SidePlan,
    record: RecordView<'a>,
    remarks: Remarks,
) -> Result<Prepared<'a>, DecodeFailure> {
    if !plan.debezium {
        return Ok(Prepared::Record(record, remarks));
    }
    match super::debezium::unwrap(&record) {
        Ok(super::debezium::Unwrapped::Change(r)) => Ok(Prepared::Record(r, remarks)),
        Ok(super::debezium::Unwrapped::Tombstone) => Ok(Prepared::Tombstone),
        Err(e) => Err(DecodeFailure {
            part: "payload",
            error: AvroError::Undecodable(format!("not a Debezium envelope: {e}")),
        }),
    }
}

/// `record` with its Avro payload and key (per `payload` / `key`) replaced by JSON text; JSON
/// sides borrow the record unchanged. A tombstone stays a tombstone.
pub fn prepare<'a>(
    record: &RecordView<'a>,
    payload: &WireFormat,
    key: &WireFormat,
    lookup: Option<&dyn SchemaLookup>,
) -> Result<(RecordView<'a>, Remarks), DecodeFailure> {
    let mut remarks = Remarks::default();
    let mut out = record.clone();
    if let Some(raw) = record.payload.as_deref() {
        match decode(payload, raw, lookup, &mut remarks) {
            Ok(Some(json)) => out.payload = Some(Cow::Owned(json)),
            Ok(None) => {}
            Err(error) => {
                return Err(DecodeFailure {
                    part: "payload",
                    error,
                })
            }
        }
    }
    if let Some(raw) = record.key.as_deref() {
        match decode(key, raw, lookup, &mut remarks) {
            // A key that decodes to a string is that string's text, as a JSON side's text key.
            Ok(Some(json)) => out.key = Some(Cow::Owned(unquoted(json))),
            Ok(None) => {}
            Err(error) => return Err(DecodeFailure { part: "key", error }),
        }
    }
    Ok((out, remarks))
}
