//! A `[[services]]` table compiled into the core's extraction plan (`core::plan::ServicePlan`):
//! pointers parsed, sources chosen per side, impossible combinations refused, each error naming
//! the field inside the service.

use super::model::{
    DecimalRule, EnvelopeName, FieldSource, KeySpec, ServiceConfig, SideOverrides, TimestampRule,
    WireFormatName,
};
use crate::core::avro::WriterSchema;
use crate::core::canonical::Rules;
use crate::core::payload::WireFormat;
use crate::core::plan::{KeySource, ServicePlan, SidePlan, Source};
use crate::core::pointer::PointerPattern;
use crate::core::position::PositionFormat;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A config value that cannot be compiled; `field` is the dotted path inside the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

fn pointers(field: &str, raw: &[String]) -> Result<Vec<PointerPattern>, PlanError> {
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            PointerPattern::parse(p).map_err(|e| invalid(format!("{field}[{i}]"), e.to_string()))
        })
        .collect()
}

fn exact_pointer(field: &str, raw: &str) -> Result<PointerPattern, PlanError> {
    let p = PointerPattern::parse(raw).map_err(|e| invalid(field, e.to_string()))?;
    if p.has_wildcard() {
        return Err(invalid(
            field,
            format!("`{raw}` must name one value; `*` is only for ignore_fields"),
        ));
    }
    Ok(p)
}

fn source(field: &str, raw: &FieldSource) -> Result<Source, PlanError> {
    if !raw.headers.is_empty() || !raw.pointers.is_empty() {
        return Err(invalid(
            field,
            "`headers` and `pointers` (several sources) are for positions only",
        ));
    }
    match (&raw.header, &raw.pointer) {
        (Some(h), None) if !h.is_empty() => Ok(Source::Header(h.clone())),
        (None, Some(p)) => Ok(Source::Pointer(exact_pointer(
            &format!("{field}.pointer"),
            p,
        )?)),
        _ => Err(invalid(field, "set exactly one of `header` or `pointer`")),
    }
}

/// A position's sources: one (`header` or `pointer`) or a composite (`headers` or `pointers`).
fn position_sources(field: &str, raw: &FieldSource) -> Result<Vec<Source>, PlanError> {
    match (raw.headers.as_slice(), raw.pointers.as_slice()) {
        ([], []) => {
            let single = FieldSource {
                headers: Vec::new(),
                pointers: Vec::new(),
                ..raw.clone()
            };
            source(field, &single).map(|s| vec![s])
        }
        (headers, []) if raw.header.is_none() && raw.pointer.is_none() => {
            Ok(headers.iter().map(|h| Source::Header(h.clone())).collect())
        }
        ([], pointers) if raw.header.is_none() && raw.pointer.is_none() => pointers
            .iter()
            .enumerate()
            .map(|(i, p)| exact_pointer(&format!("{field}.pointers[{i}]"), p).map(Source::Pointer))
            .collect(),
        _ => Err(invalid(
            field,
            "set exactly one of `header`, `pointer`, `headers` or `pointers`",
        )),
    }
}

fn key_source(field: &str, raw: &KeySpec) -> Result<KeySource, PlanError> {
    match raw {
        KeySpec::MessageKey => Ok(KeySource::MessageKey),
        KeySpec::Fields { pointers: ps } if ps.is_empty() => Err(invalid(
            format!("{field}.pointers"),
            "must name at least one pointer",
        )),
        KeySpec::Fields { pointers: ps } => ps
            .iter()
            .enumerate()
            .map(|(i, p)| exact_pointer(&format!("{field}.pointers[{i}]"), p))
            .collect::<Result<_, _>>()
            .map(KeySource::Fields),
    }
}

/// A side's wire format for payloads (`prefix` "") or keys (`prefix` "key_"): the side's
/// setting, else the service's; an `avro-raw` schema file read and parsed now (relative to `base`).
fn wire_format(
    base: &Path,
    (side_name, prefix): (&str, &str),
    (side_format, side_file): (Option<WireFormatName>, Option<&PathBuf>),
    (service_format, service_file): (Option<WireFormatName>, Option<&PathBuf>),
) -> Result<WireFormat, PlanError> {
    let name = if prefix.is_empty() {
        "payload"
    } else {
        "key_format"
    };
    let (field, format, file) = match side_format {
        Some(f) => (format!("{side_name}.{name}"), Some(f), side_file),
        None => (name.to_owned(), service_format, side_file.or(service_file)),
    };
    let schema_field = if prefix.is_empty() {
        "schema_file"
    } else {
        "key_schema_file"
    };
    match (format.unwrap_or(WireFormatName::Json), file) {
        (WireFormatName::String, _) if prefix.is_empty() => Err(invalid(
            field,
            "`string` is a key format; a payload is `json`, `avro` or `avro-raw`",
        )),
        (WireFormatName::Json, _) => Ok(WireFormat::Json),
        (WireFormatName::String, _) => Ok(WireFormat::String),
        (WireFormatName::Avro, _) => Ok(WireFormat::Avro),
        (WireFormatName::AvroRaw, None) => Err(invalid(
            field,
            format!("`avro-raw` needs `{schema_field}` (the writer schema, an .avsc file)"),
        )),
        (WireFormatName::AvroRaw, Some(path)) => {
            let path = base.join(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(schema_field.to_owned(), format!("{}: {e}", path.display()))
            })?;
            WriterSchema::parse(&text)
                .map(|s| WireFormat::AvroRaw(Arc::new(s)))
                .map_err(|e| invalid(schema_field.to_owned(), format!("{}: {e}", path.display())))
        }
    }
}

fn side_plan(
    service: &ServiceConfig,
    side: &SideOverrides,
    side_name: &str,
    base: &Path,
) -> Result<SidePlan, PlanError> {
    let payload = wire_format(
        base,
        (side_name, ""),
        (side.payload, side.schema_file.as_ref()),
        (service.payload, service.schema_file.as_ref()),
    )?;
    let key_format = wire_format(
        base,
        (side_name, "key_"),
        (side.key_format, side.key_schema_file.as_ref()),
        (service.key_format, service.key_schema_file.as_ref()),
    )?;
    let n = &service.normalize;
    let key = match &side.key {
        Some(k) => key_source(&format!("{side_name}.key"), k)?,
        None => key_source("key", &service.key)?,
    };
    let debezium = side.envelope.or(service.envelope) == Some(EnvelopeName::Debezium);
    if debezium {
        // The envelope says both; a second source for either would be silently ignored.
        for (name, set) in [
            ("operation", side.operation.is_some()),
            ("position", side.position.is_some()),
        ] {
            if set {
                return Err(invalid(
                    format!("{side_name}.{name}"),
                    format!("with `envelope = \"debezium\"` the {name} comes from the envelope"),
                ));
            }
        }
    }
    let position = match (&side.position, &service.position) {
        _ if debezium => Some((
            vec![Source::Header(
                crate::core::debezium::POSITION_HEADER.to_owned(),
            )],
            Some(PositionFormat::Integer),
        )),
        (Some(p), _) => Some((
            position_sources(&format!("{side_name}.position"), p)?,
            p.format,
        )),
        (None, Some(p)) => Some((position_sources("position", p)?, p.format)),
        (None, None) => None,
    }
    .map(|(s, f)| (s, f.unwrap_or(PositionFormat::Auto)));
    let operation = match (&side.operation, &service.operation) {
        _ if debezium => Some(Source::Header(crate::core::debezium::OP_HEADER.to_owned())),
        (Some(o), _) => Some(source(&format!("{side_name}.operation"), o)?),
        (None, Some(o)) => Some(source("operation", o)?),
        (None, None) => None,
    };
    let mut compare_headers = service.compare_headers.clone();
    compare_headers.sort();
    compare_headers.dedup();
    let rules = Rules {
        ignore: pointers("normalize.ignore_fields", &n.ignore_fields)?,
        decimals_numeric: n.decimals == DecimalRule::Numeric,
        timestamps_instant: n.timestamps == TimestampRule::Instant,
        null_equals_missing: n.null_equals_missing,
        boolean_strings: n.boolean_strings,
        float32: pointers("normalize.float32_fields", &n.float32_fields)?,
        base64: pointers(&format!("{side_name}.base64_fields"), &side.base64_fields)?,
    };
    let event_time = service
        .event_time
        .as_ref()
        .map(|s| source("event_time", s))
        .transpose()?;
    Ok(SidePlan {
        event_time,
        key,
        position,
        operation,
        compare_headers,
        rules,
        snapshot_read_as_insert: n.snapshot_read_as_insert,
        drop_update_before: n.drop_update_before,
        payload,
        key_format,
        debezium,
    })
}

/// Compile one `[[services]]` table.
/// `base`: the config file's directory (schema files are relative to it).
pub fn compile(service: &ServiceConfig, base: &Path) -> Result<ServicePlan, PlanError> {
    let baseline = side_plan(service, &service.baseline, "baseline", base)?;
    let candidate = side_plan(service, &service.candidate, "candidate", base)?;
    if baseline.position.is_some() != candidate.position.is_some() {
        return Err(invalid(
            "position",
            "configure a position for both sides or for neither: events are identified the same way on both",
        ));
    }
    Ok(ServicePlan {
        name: service.name.clone(),
        wave: service.wave,
        has_position: baseline.position.is_some(),
        compared: crate::core::range::TimeRange {
            from_ms: service.compare_from.start_ms(),
            until_ms: None,
        },
        baseline,
        candidate,
    })
}
