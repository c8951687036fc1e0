//! The exhaustive diff's report: JSON shape, readable summary, exit codes, CLI entry point.
//!
//! Shape (same spirit as `diff`): `service`, `verdict`, row counts per side, counts by kind,
//! per-column mismatch counts, every differing key (`mismatches`, values only for the first
//! `max_examples`), `schema_differences`, `timings_ms`, `work`. Exit codes: 0 pass, 1 differences,
//! 2 bad usage/config/input (including unreachable databases and schema errors).

use super::compare::{key_json, row_json, RowDiff};
use super::schema::Plan;
use crate::model::{KindCounts, MismatchKind, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct SideRows {
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ColumnCount {
    pub column: String,
    pub mismatched_rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub key: Map<String, Value>,
    pub kind: MismatchKind,
    pub columns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowDiffReport {
    pub service: String,
    pub verdict: Verdict,
    pub baseline: SideRows,
    pub candidate: SideRows,
    pub rows: KindCounts,
    pub columns: Vec<ColumnCount>,
    pub mismatches: Vec<Mismatch>,
    pub schema_differences: Vec<String>,
    /// Keys present more than once on a side (the key columns are not unique there).
    pub duplicate_keys: BTreeMap<String, u64>,
    pub timings_ms: BTreeMap<String, u64>,
    /// What the run did: `buckets`, `range_buckets` (1 when key-range buckets were used),
    /// `differing_buckets`, `suspect_keys` (keys re-read and compared in Rust).
    pub work: BTreeMap<String, u64>,
}

/// Counts by kind and per column for a list of differences.
pub fn tally(diffs: &[RowDiff]) -> (KindCounts, Vec<ColumnCount>) {
    let mut kinds = KindCounts::default();
    let mut cols: BTreeMap<&str, u64> = BTreeMap::new();
    for d in diffs {
        match d.kind {
            MismatchKind::MissingInCandidate => kinds.missing_in_candidate += 1,
            MismatchKind::ExtraInCandidate => kinds.extra_in_candidate += 1,
            MismatchKind::Mismatched => kinds.mismatched += 1,
        }
        for c in &d.columns {
            *cols.entry(c.as_str()).or_default() += 1;
        }
    }
    let mut columns: Vec<ColumnCount> = cols
        .into_iter()
        .map(|(c, n)| ColumnCount {
            column: c.to_owned(),
            mismatched_rows: n,
        })
        .collect();
    columns.sort_by(|a, b| {
        b.mismatched_rows
            .cmp(&a.mismatched_rows)
            .then_with(|| a.column.cmp(&b.column))
    });
    (kinds, columns)
}

/// JSON entries for the differences, with row values for the first `max_examples` only.
pub fn mismatches(plan: &Plan, diffs: &[RowDiff], max_examples: usize) -> Vec<Mismatch> {
    diffs
        .iter()
        .enumerate()
        .map(|(i, d)| Mismatch {
            key: key_json(plan, &d.key),
            kind: d.kind,
            columns: d.columns.clone(),
            baseline: d
                .baseline
                .as_ref()
                .filter(|_| i < max_examples)
                .map(|r| row_json(plan, r)),
            candidate: d
                .candidate
                .as_ref()
                .filter(|_| i < max_examples)
                .map(|r| row_json(plan, r)),
        })
        .collect()
}

impl RowDiffReport {
    pub fn exit_code(&self) -> i32 {
        i32::from(self.verdict.exit_code())
    }

    /// The readable summary printed without `--format json`.
    pub fn summary(&self, max_examples: usize) -> String {
        let mut s = String::new();
        let verdict = match self.verdict {
            Verdict::Pass | Verdict::Warn => "PASS: the tables hold the same rows",
            Verdict::Fail | Verdict::Pending => "DIFFERENCES found",
        };
        let _ = writeln!(s, "rowdiff {}: {verdict}", self.service);
        let _ = writeln!(
            s,
            "  rows: baseline {}, candidate {}",
            self.baseline.rows, self.candidate.rows
        );
        let _ = writeln!(
            s,
            "  missing_in_candidate {}, extra_in_candidate {}, mismatched {}",
            self.rows.missing_in_candidate, self.rows.extra_in_candidate, self.rows.mismatched
        );
        for c in &self.columns {
            let _ = writeln!(
                s,
                "  column {}: {} rows differ",
                c.column, c.mismatched_rows
            );
        }
        for (side, n) in &self.duplicate_keys {
            let _ = writeln!(s, "  {side}: {n} duplicate keys");
        }
        for d in &self.schema_differences {
            let _ = writeln!(s, "  schema: {d}");
        }
        for m in self.mismatches.iter().take(max_examples) {
            let key = serde_json::to_string(&m.key).unwrap_or_default();
            let _ = writeln!(s, "  {:?} {key} {}", m.kind, m.columns.join(","));
            for (label, row) in [("baseline ", &m.baseline), ("candidate", &m.candidate)] {
                if let Some(row) = row {
                    let _ = writeln!(
                        s,
                        "      {label} {}",
                        serde_json::to_string(row).unwrap_or_default()
                    );
                }
            }
        }
        if self.mismatches.len() > max_examples {
            let _ = writeln!(
                s,
                "  … {} more differing keys (use --format json for all)",
                self.mismatches.len() - max_examples
            );
        }
        let timings: Vec<String> = self
            .timings_ms
            .iter()
            .map(|(k, v)| format!("{k} {v} ms"))
            .collect();
        let _ = writeln!(s, "  timings: {}", timings.join(", "));
        let work: Vec<String> = self.work.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  work: {}", work.join(", "));
        s
    }
}
