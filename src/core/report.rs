//! The parity report: the JSON contract of `paritygate diff --format json`, and how a service's
//! comparison becomes a verdict with its evidence.

use super::compare::{Comparison, EventRow, KeyMismatch, SideEvents};
use super::event::Content;
use super::explain::{content_value, diff_events, FieldDiff};
use super::plan::ServicePlan;
use super::position::display_position;
use crate::model::{FieldCount, MismatchKind, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub canonical_version: &'static str,
    pub verdict: Verdict,
    pub services: Vec<ServiceReport>,
    pub inputs: InputSummary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    pub files: Vec<String>,
    /// The compared event-time range (`diff --from/--until`, RFC 3339), when bounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    pub lines: u64,
    pub ignored_records: u64,
    /// Malformed lines whose topic could not be read, so they belong to no side.
    pub unattributed_unparseable: u64,
    /// The first malformed lines, with where and why.
    pub errors: Vec<LineError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<u32>,
    pub verdict: Verdict,
    pub baseline: SideReport,
    pub candidate: SideReport,
    pub keys: KeyCounts,
    /// Keys whose baseline and candidate partitions differ: not drift, but per-key order is then
    /// not guaranteed across the runtimes.
    pub partition_mismatched_keys: u64,
    pub fields: Vec<FieldCount>,
    pub mismatches: Vec<MismatchReport>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SideReport {
    pub records: u64,
    pub events: u64,
    pub duplicates: u64,
    pub unparseable: u64,
    /// Of `unparseable`, the Avro records that did not decode, by reason (absent when none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub unparseable_by_reason: BTreeMap<&'static str, u64>,
    pub by_operation: BTreeMap<&'static str, u64>,
    pub conflicting_duplicates: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    pub skipped: BTreeMap<&'static str, u64>,
    /// With a time range (`diff --from/--until`): events before its start, at or after its end,
    /// and without an event time, none of them compared. Absent without a range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_start: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untimed: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCounts {
    pub total: u64,
    pub matched: u64,
    pub missing_in_candidate: u64,
    pub extra_in_candidate: u64,
    pub mismatched: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MismatchReport {
    pub key: String,
    pub kind: MismatchKind,
    pub reason: String,
    pub fields: Vec<String>,
    /// The first differing event on each side: operation, position and the differing values
    /// (`values`), or its whole normalized `content` when the other side has no such event.
    pub baseline: Map<String, Value>,
    pub candidate: Map<String, Value>,
    pub events_missing_in_candidate: u64,
    pub events_extra_in_candidate: u64,
    pub events_differing: u64,
    pub final_state_equal: bool,
}

/// What the adapter re-read for a row location: the key text and the normalized content.
pub type Resolved = HashMap<u64, (String, (Content, Vec<(String, String)>))>;

impl SideReport {
    pub fn from_side(side: &SideEvents) -> Self {
        Self {
            before_start: None,
            after_until: None,
            untimed: None,
            records: side.counters.records,
            events: side.rows.len() as u64,
            duplicates: side.duplicates,
            unparseable: side.counters.unparseable,
            unparseable_by_reason: side.counters.unparseable_by_reason.clone(),
            by_operation: side
                .by_operation
                .iter()
                .map(|(op, n)| (op.as_str(), *n))
                .collect(),
            conflicting_duplicates: side.conflicting,
            rejected: side.counters.rejected.clone(),
            skipped: side.counters.skipped.clone(),
        }
    }

    /// Show what the compared time range `range` left out, when it is bounded.
    pub fn show_excluded(&mut self, side: &SideEvents, range: &super::range::TimeRange) {
        if !range.is_bounded() {
            return;
        }
        let excluded = side.counters.excluded;
        self.before_start = Some(excluded.before_start);
        self.after_until = range.until_ms.map(|_| excluded.after_until);
        self.untimed = Some(excluded.untimed);
    }
}

fn reason(m: &KeyMismatch) -> String {
    match m.kind {
        MismatchKind::MissingInCandidate => {
            format!(
                "key absent from the candidate ({} baseline events)",
                m.events_missing_in_candidate
            )
        }
        MismatchKind::ExtraInCandidate => {
            format!(
                "key absent from the baseline ({} candidate events)",
                m.events_extra_in_candidate
            )
        }
        MismatchKind::Mismatched => {
            let mut parts = Vec::new();
            for (n, what) in [
                (m.events_differing, "with other content"),
                (m.events_missing_in_candidate, "missing in the candidate"),
                (m.events_extra_in_candidate, "extra in the candidate"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} event{} {what}", if n == 1 { "" } else { "s" }));
                }
            }
            if parts.is_empty() {
                parts.push("same events applied in another order".to_owned());
            }
            let state = if m.final_state_equal {
                "final state equal"
            } else {
                "final state differs"
            };
            format!("{}; {state}", parts.join(", "))
        }
    }
}

fn event_side(
    row: Option<&EventRow>,
    has_position: bool,
    values: Option<Map<String, Value>>,
    content: Option<&Content>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(row) = row else { return out };
    out.insert(
        "operation".into(),
        Value::String(row.operation.as_str().into()),
    );
    // Without a configured position the row holds an arrival number: not worth showing.
    if has_position {
        out.insert(
            "position".into(),
            Value::String(display_position(row.position)),
        );
    }
    match (values, content) {
        (Some(values), _) => {
            out.insert("values".into(), Value::Object(values));
        }
        (None, Some(content)) => {
            out.insert("content".into(), content_value(content));
        }
        (None, None) => {}
    }
    out
}

/// Turn one service's comparison into its report. `resolved` maps row locations to what the
/// adapter re-read; `max_examples` bounds how many mismatches carry values.
pub fn service_report(
    plan: &ServicePlan,
    baseline: &SideEvents,
    candidate: &SideEvents,
    comparison: &Comparison,
    resolved: &Resolved,
    max_examples: usize,
) -> ServiceReport {
    let lookup = |row: Option<EventRow>| row.and_then(|r| resolved.get(&r.loc));
    type Entry<'a> = (
        &'a KeyMismatch,
        MismatchReport,
        Vec<FieldDiff>,
        Option<&'a Content>,
        Option<&'a Content>,
    );
    let mut entries: Vec<Entry<'_>> = comparison
        .mismatches
        .iter()
        .map(|m| {
            let (b, c) = (lookup(m.baseline), lookup(m.candidate));
            let key = b
                .or(c)
                .map_or_else(|| format!("#{:032x}", m.key), |(k, _)| k.clone());
            let diffs = match (b, c) {
                (Some((_, bc)), Some((_, cc))) => diff_events(bc, cc),
                _ => Vec::new(),
            };
            let report = MismatchReport {
                key,
                kind: m.kind,
                reason: reason(m),
                fields: diffs.iter().map(|d| d.pointer.clone()).collect(),
                baseline: Map::new(),
                candidate: Map::new(),
                events_missing_in_candidate: m.events_missing_in_candidate,
                events_extra_in_candidate: m.events_extra_in_candidate,
                events_differing: m.events_differing,
                final_state_equal: m.final_state_equal,
            };
            (m, report, diffs, b.map(|x| &x.1 .0), c.map(|x| &x.1 .0))
        })
        .collect();
    entries.sort_by(|a, b| (a.1.kind, &a.1.key).cmp(&(b.1.kind, &b.1.key)));

    let mut field_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, report, _, _, _) in &entries {
        for field in &report.fields {
            *field_counts.entry(field.as_str()).or_default() += 1;
        }
    }
    let mut fields: Vec<FieldCount> = field_counts
        .into_iter()
        .map(|(pointer, n)| FieldCount {
            pointer: pointer.to_owned(),
            mismatched_keys: n,
        })
        .collect();
    fields.sort_by(|a, b| {
        b.mismatched_keys
            .cmp(&a.mismatched_keys)
            .then_with(|| a.pointer.cmp(&b.pointer))
    });

    let mismatches = entries
        .into_iter()
        .enumerate()
        .map(|(i, (m, mut report, diffs, b, c))| {
            if i < max_examples {
                let values =
                    |pick: fn(&FieldDiff) -> &Option<Value>| -> Option<Map<String, Value>> {
                        (!diffs.is_empty()).then(|| {
                            diffs
                                .iter()
                                .filter_map(|d| pick(d).clone().map(|v| (d.pointer.clone(), v)))
                                .collect()
                        })
                    };
                let position = plan.has_position;
                report.baseline =
                    event_side(m.baseline.as_ref(), position, values(|d| &d.baseline), b);
                report.candidate =
                    event_side(m.candidate.as_ref(), position, values(|d| &d.candidate), c);
            }
            report
        })
        .collect();

    let keys = KeyCounts {
        total: comparison.total_keys,
        matched: comparison.matched,
        missing_in_candidate: comparison.count(MismatchKind::MissingInCandidate),
        extra_in_candidate: comparison.count(MismatchKind::ExtraInCandidate),
        mismatched: comparison.count(MismatchKind::Mismatched),
    };
    let (b, c) = (
        SideReport::from_side(baseline),
        SideReport::from_side(candidate),
    );
    let verdict = if b.events == 0 || c.events == 0 {
        Verdict::Pending
    } else if comparison.mismatches.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    ServiceReport {
        service: plan.name.clone(),
        wave: plan.wave,
        verdict,
        baseline: b,
        candidate: c,
        keys,
        partition_mismatched_keys: comparison.partition_mismatched_keys,
        fields,
        mismatches,
    }
}
