//! Avro payloads into the canonical form: the Confluent wire format (a 0 byte, a big-endian schema
//! id, Avro binary), a datum decoded with its writer schema, and the decoded value written as JSON
//! text that the rest of extraction (pointers, normalization, canonical bytes) treats like any
//! JSON payload. Pure: the schemas come from the caller (`SchemaLookup`), never from the network.
//!
//! The mapping (documented in `docs/canonical-form.md`, §7) is lossless: a `decimal` is its exact
//! decimal number, timestamps are instants in the canonical spelling, `bytes`/`fixed` are their
//! bytes as text (as the `base64_fields` rule leaves a JSON side's bytes), unions lose their branch
//! wrapper, enums are their symbol. Two schema ids whose decoded records are equal give equal JSON.

use apache_avro::schema::{Name, Namespace, RecordSchema, Schema};
use apache_avro::types::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// A writer schema with its named types resolved (for `Ref`s).
#[derive(Debug)]
pub struct WriterSchema {
    schema: Schema,
    names: HashMap<Name, Schema>,
    /// Logical types the decoder does not know (their values are decoded as the underlying type,
    /// as the Avro specification says, and the record is flagged).
    pub unknown_logical_types: Vec<String>,
}

impl WriterSchema {
    /// Parse a schema's JSON text (`.avsc`, or the registry's `schema` field).
    pub fn parse(text: &str) -> Result<WriterSchema, AvroError> {
        let schema = Schema::parse_str(text).map_err(|e| AvroError::Schema(e.to_string()))?;
        let mut names = HashMap::new();
        collect_names(&schema, &mut names);
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| AvroError::Schema(e.to_string()))?;
        let mut unknown = Vec::new();
        unknown_logical_types(&json, &mut unknown);
        unknown.sort();
        unknown.dedup();
        Ok(WriterSchema {
            schema,
            names,
            unknown_logical_types: unknown,
        })
    }
}

/// Where the schemas of a side's records come from: a registry (`serve`), files (`diff
/// --schemas`), or none.
pub trait SchemaLookup: Send + Sync {
    fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, AvroError>;
}

/// Each side's schema source (`None`: the side has no Avro, or no registry is configured).
#[derive(Clone, Default)]
pub struct Schemas {
    pub baseline: Option<Arc<dyn SchemaLookup>>,
    pub candidate: Option<Arc<dyn SchemaLookup>>,
}

impl Schemas {
    pub fn of(&self, side: crate::model::Side) -> Option<&dyn SchemaLookup> {
        match side {
            crate::model::Side::Baseline => self.baseline.as_deref(),
            crate::model::Side::Candidate => self.candidate.as_deref(),
        }
    }
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("baseline", &self.baseline.is_some())
            .field("candidate", &self.candidate.is_some())
            .finish()
    }
}

/// Why an Avro payload could not be compared; `reason` is the tally name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvroError {
    #[error("schema id {0} is not known")]
    UnknownSchema(u32),
    #[error("the schema registry is unavailable: {0}")]
    RegistryUnavailable(String),
    #[error("not in the Confluent wire format (0 byte and a 4-byte schema id): {0}")]
    NotFramed(String),
    #[error("the record does not decode with its schema: {0}")]
    Undecodable(String),
    #[error("invalid Avro schema: {0}")]
    Schema(String),
}

impl AvroError {
    /// The `unparseable` reason this error is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            AvroError::UnknownSchema(_) => "unknown_schema",
            AvroError::RegistryUnavailable(_) => "registry_unavailable",
            AvroError::NotFramed(_) | AvroError::Undecodable(_) | AvroError::Schema(_) => {
                "undecodable"
            }
        }
    }
}

/// Split the Confluent wire format: (schema id, Avro binary).
pub fn unframe(raw: &[u8]) -> Result<(u32, &[u8]), AvroError> {
    match raw {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [] => Err(AvroError::NotFramed("empty".into())),
        [m, ..] if *m != 0 => Err(AvroError::NotFramed(format!("magic byte {m}"))),
        _ => Err(AvroError::NotFramed(format!("{} bytes", raw.len()))),
    }
}

/// Decode one datum written with `schema` into JSON text; every byte must belong to it.
pub fn decode_to_json(schema: &WriterSchema, mut binary: &[u8]) -> Result<String, AvroError> {
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema.schema)
        .build()
        .map_err(|e| AvroError::Schema(e.to_string()))?;
    let value = reader
        .read_value(&mut binary)
        .map_err(|e| AvroError::Undecodable(e.to_string()))?;
    if !binary.is_empty() {
        return Err(AvroError::Undecodable(format!(
            "{} bytes left after the record",
            binary.len()
        )));
    }
    let mut out = String::new();
    write_json(&value, &schema.schema, &None, schema, &mut out)?;
    Ok(out)
}

fn collect_names(schema: &Schema, names: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(r) => {
            names.insert(r.name.clone(), schema.clone());
            for f in &r.fields {
                collect_names(&f.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

const KNOWN_LOGICAL_TYPES: [&str; 14] = [
    "decimal",
    "big-decimal",
    "uuid",
    "date",
    "time-millis",
    "time-micros",
    "timestamp-millis",
    "timestamp-micros",
    "timestamp-nanos",
    "local-timestamp-millis",
    "local-timestamp-micros",
    "local-timestamp-nanos",
    "duration",
    // Not a logical type of the specification, but what some tools write for `string` uuids.
    "uuid-string",
];

fn unknown_logical_types(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Object(o) => {
            if let Some(serde_json::Value::String(t)) = o.get("logicalType") {
                if !KNOWN_LOGICAL_TYPES.contains(&t.as_str()) {
                    out.push(t.clone());
                }
            }
            o.values().for_each(|v| unknown_logical_types(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| unknown_logical_types(v, out)),
        _ => {}
    }
}

fn push_str(out: &mut String, s: &str) {
    // serde_json's escaping of a string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn mismatch(value: &Value, schema: &Schema) -> AvroError {
    AvroError::Undecodable(format!("value {value:?} does not fit schema {schema}"))
}

/// Write `value` (decoded with `schema`) as JSON text.
fn write_json(
    value: &Value,
    schema: &Schema,
    namespace: &Namespace,
    all: &WriterSchema,
    out: &mut String,
) -> Result<(), AvroError> {
    let schema = match schema {
        Schema::Ref { name } => {
            let full = name.fully_qualified_name(namespace.as_deref());
            all.names
                .get(full.as_ref())
                .or_else(|| all.names.get(name))
                .ok_or_else(|| AvroError::Schema(format!("unresolved reference {name}")))?
        }
        other => other,
    };
    match (value, schema) {
        (Value::Null, _) => out.push_str("null"),
        (Value::Boolean(b), _) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Int(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::Long(i), _) => {
            let _ = write!(out, "{i}");
        }
        (Value::Float(f), _) => float(f64::from(*f), &f.to_string(), out),
        (Value::Double(f), _) => float(*f, &f.to_string(), out),
        (Value::Bytes(b), _) | (Value::Fixed(_, b), _) => {
            push_str(out, &String::from_utf8_lossy(b))
        }
        (Value::String(s), _) | (Value::Enum(_, s), _) => push_str(out, s),
        (Value::Union(index, inner), Schema::Union(u)) => {
            let branch = usize::try_from(*index)
                .ok()
                .and_then(|i| u.variants().get(i))
                .ok_or_else(|| mismatch(value, schema))?;
            write_json(inner, branch, namespace, all, out)?;
        }
        (Value::Array(items), Schema::Array(a)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, &a.items, namespace, all, out)?;
            }
            out.push(']');
        }
        (Value::Map(entries), Schema::Map(m)) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, k);
                out.push(':');
                write_json(v, &m.types, namespace, all, out)?;
            }
            out.push('}');
        }
        (Value::Record(fields), Schema::Record(r)) => record(fields, r, all, out)?,
        (Value::Decimal(d), Schema::Decimal(s)) => {
            let bytes =
                Vec::<u8>::try_from(d).map_err(|e| AvroError::Undecodable(e.to_string()))?;
            out.push_str(&decimal_text(&bytes, s.scale));
        }
        (Value::BigDecimal(d), _) => out.push_str(&d.to_plain_string()),
        (Value::Uuid(u), _) => push_str(out, &u.hyphenated().to_string()),
        (Value::Date(days), _) => push_str(out, &date(i64::from(*days))?),
        (Value::TimeMillis(ms), _) => push_str(out, &time_of_day(i64::from(*ms) * 1_000_000)?),
        (Value::TimeMicros(us), _) => push_str(out, &time_of_day(us.saturating_mul(1000))?),
        (Value::TimestampMillis(v), _) => {
            push_str(out, &instant(i128::from(*v) * 1_000_000, true)?)
        }
        (Value::TimestampMicros(v), _) => push_str(out, &instant(i128::from(*v) * 1_000, true)?),
        (Value::TimestampNanos(v), _) => push_str(out, &instant(i128::from(*v), true)?),
        (Value::LocalTimestampMillis(v), _) => {
            push_str(out, &instant(i128::from(*v) * 1_000_000, false)?)
        }
        (Value::LocalTimestampMicros(v), _) => {
            push_str(out, &instant(i128::from(*v) * 1_000, false)?)
        }
        (Value::LocalTimestampNanos(v), _) => push_str(out, &instant(i128::from(*v), false)?),
        (Value::Duration(d), _) => {
            let _ = write!(
                out,
                "{{\"days\":{},\"milliseconds\":{},\"months\":{}}}",
                u32::from(d.days()),
                u32::from(d.millis()),
                u32::from(d.months())
            );
        }
        _ => return Err(mismatch(value, schema)),
    }
    Ok(())
}

fn record(
    fields: &[(String, Value)],
    schema: &RecordSchema,
    all: &WriterSchema,
    out: &mut String,
) -> Result<(), AvroError> {
    let namespace: Namespace = schema.name.namespace().map(str::to_owned);
    out.push('{');
    for (i, (name, value)) in fields.iter().enumerate() {
        let field = schema
            .fields
            .iter()
            .find(|f| &f.name == name)
            .ok_or_else(|| AvroError::Undecodable(format!("field {name} not in the schema")))?;
        if i > 0 {
            out.push(',');
        }
        push_str(out, name);
        out.push(':');
        write_json(value, &field.schema, &namespace, all, out)?;
    }
    out.push('}');
    Ok(())
}

/// A finite float as its shortest round-trip spelling (a JSON number); NaN and the infinities
/// have none, so they are strings.
fn float(value: f64, shortest: &str, out: &mut String) {
    if value.is_finite() {
        out.push_str(shortest);
    } else {
        push_str(out, shortest);
    }
}

/// An Avro decimal (two's-complement big-endian unscaled integer, `scale` digits after the
/// point) as exact decimal text.
pub fn decimal_text(bytes: &[u8], scale: usize) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude: two's complement negated for negative values.
    let mut magnitude: Vec<u8> = if negative {
        let mut m: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        bytes.to_vec()
    };
    // Repeated division by 10 of the big-endian magnitude.
    let mut digits = Vec::new();
    while magnitude.iter().any(|b| *b != 0) {
        let mut remainder = 0u16;
        for b in magnitude.iter_mut() {
            let acc = (remainder << 8) | u16::from(*b);
            *b = (acc / 10) as u8;
            remainder = acc % 10;
        }
        digits.push(b'0' + remainder as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    while digits.len() <= scale {
        digits.push(b'0');
    }
    digits.reverse();
    let (int, frac) = digits.split_at(digits.len() - scale);
    let mut text = String::with_capacity(digits.len() + 2);
    if negative {
        text.push('-');
    }
    text.push_str(std::str::from_utf8(int).unwrap_or("0"));
    if !frac.is_empty() {
        text.push('.');
        text.push_str(std::str::from_utf8(frac).unwrap_or("0"));
    }
    text
}

fn out_of_range(what: &str) -> AvroError {
    AvroError::Undecodable(format!("{what} out of range"))
}

fn date(days: i64) -> Result<String, AvroError> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| out_of_range("date"))?;
    let day = epoch
        .checked_add_signed(chrono::Duration::days(days))
        .ok_or_else(|| out_of_range("date"))?;
    Ok(day.format("%Y-%m-%d").to_string())
}

/// `.fffffffff` with trailing zeros trimmed, or nothing.
fn fraction(nanos: u32) -> String {
    if nanos == 0 {
        return String::new();
    }
    let text = format!(".{nanos:09}");
    text.trim_end_matches('0').to_owned()
}

fn time_of_day(nanos: i64) -> Result<String, AvroError> {
    let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out_of_range("time"))?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| out_of_range("time"))?;
    let t = chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)
        .ok_or_else(|| out_of_range("time"))?;
    Ok(format!("{}{}", t.format("%H:%M:%S"), fraction(sub)))
}

/// Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS[.f]` plus `Z` for an instant (the canonical
/// spelling, §3); a local timestamp has no offset (which the instant rule reads as UTC).
fn instant(nanos: i128, utc: bool) -> Result<String, AvroError> {
    let secs =
        i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out_of_range("timestamp"))?;
    let sub =
        u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| out_of_range("timestamp"))?;
    let at = chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| out_of_range("timestamp"))?;
    Ok(format!(
        "{}{}{}",
        at.format("%Y-%m-%dT%H:%M:%S"),
        fraction(sub),
        if utc { "Z" } else { "" }
    ))
}

#[cfg(test)]
#[path = "avro_tests.rs"]
mod tests;
