//! A `[[services]]` table compiled into the core's extraction plan (`core::plan::ServicePlan`):
//! pointers parsed, sources chosen per side, impossible combinations refused, each error naming
//! the field inside the service.

use super::model::{
    DecimalRule, FieldSource, KeySpec, ServiceConfig, SideOverrides, TimestampRule,
};
use crate::core::canonical::Rules;
use crate::core::plan::{KeySource, ServicePlan, SidePlan, Source};
use crate::core::pointer::PointerPattern;
use crate::core::position::PositionFormat;

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
    match (&raw.header, &raw.pointer) {
        (Some(h), None) if !h.is_empty() => Ok(Source::Header(h.clone())),
        (None, Some(p)) => Ok(Source::Pointer(exact_pointer(
            &format!("{field}.pointer"),
            p,
        )?)),
        _ => Err(invalid(field, "set exactly one of `header` or `pointer`")),
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

fn side_plan(
    service: &ServiceConfig,
    side: &SideOverrides,
    side_name: &str,
) -> Result<SidePlan, PlanError> {
    let n = &service.normalize;
    let key = match &side.key {
        Some(k) => key_source(&format!("{side_name}.key"), k)?,
        None => key_source("key", &service.key)?,
    };
    let position = match (&side.position, &service.position) {
        (Some(p), _) => Some((source(&format!("{side_name}.position"), p)?, p.format)),
        (None, Some(p)) => Some((source("position", p)?, p.format)),
        (None, None) => None,
    }
    .map(|(s, f)| (s, f.unwrap_or(PositionFormat::Auto)));
    let operation = match (&side.operation, &service.operation) {
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
    })
}

/// Compile one `[[services]]` table.
pub fn compile(service: &ServiceConfig) -> Result<ServicePlan, PlanError> {
    let baseline = side_plan(service, &service.baseline, "baseline")?;
    let candidate = side_plan(service, &service.candidate, "candidate")?;
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
        baseline,
        candidate,
    })
}
