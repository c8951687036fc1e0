//! Gate verdicts with evidence: the decision plan made executable. Pure (no IO, no clock): the
//! evaluation loop gathers [`GateInputs`] from the store, this module turns them into criteria and a
//! verdict, and [`Hysteresis`] keeps a service from flapping into `pass`.
//!
//! Criteria: `evidence`, `count_parity`, `key_parity`, `row_parity`, `error_parity`,
//! `latency_guardrail`, `freshness`. Each carries a status, the observed value, the threshold and
//! one sentence of explanation. A waived criterion counts as passed and shows as `waived`.

mod criteria;
mod stale;
mod thresholds;

pub use criteria::evaluate_criteria;
pub use stale::mark_stale;
pub use thresholds::{GateThresholds, GateThresholdsOverride};

use crate::model::{Criterion, CriterionStatus, Verdict, Waiver};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The latest sampled row diff of the sink tables, as the gate reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowEvidence {
    /// Keys in the uniform sample.
    pub rows_sampled: u64,
    /// One-sided 95% upper bound of the sample's diff ratio.
    pub diff_ratio_upper_95: f64,
    /// Differing rows among the stream-flagged and recently changed keys (not in the ratio).
    pub flagged_differing: u64,
}

/// Records on each side's error (dead-letter) topics, and all its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorEvidence {
    pub baseline_errors: u64,
    pub baseline_records: u64,
    pub candidate_errors: u64,
    pub candidate_records: u64,
}

/// The candidate's delivery delay minus the baseline's, over events seen on both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DelayEvidence {
    pub p95_ms: i64,
    pub samples: u64,
}

/// Everything a gate decision is made from, gathered by the evaluation loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateInputs {
    pub baseline_events: u64,
    pub candidate_events: u64,
    /// Event-time span observed on both sides (ms): from the earliest event to the settled bound.
    pub observation_ms: Option<i64>,
    pub settled_until_ms: Option<i64>,
    /// Settled distinct events per operation, per side.
    pub settled_counts: [BTreeMap<String, u64>; 2],
    /// Settled mismatching keys by kind.
    pub missing_in_candidate: u64,
    pub extra_in_candidate: u64,
    pub mismatched: u64,
    /// Per side: events older than their partition's dedupe horizon that were not remembered,
    /// counted as new without a duplicate check (`flagged.beyond_dedupe_horizon`).
    pub unverifiable_events: [u64; 2],
    /// Latest sampled row diff; `None`: no targets.
    pub rows: Option<RowEvidence>,
    /// Records on the error topics; `None`: none configured.
    pub errors: Option<ErrorEvidence>,
    /// Candidate delivery delay minus baseline's, p95 over events seen on both sides.
    pub delay_regression: Option<DelayEvidence>,
    /// Per side: milliseconds since consumption last made progress while records were waiting
    /// (lag positive or unknown), or since the earliest known fault (`None`: caught up, or
    /// nothing to consume).
    pub stalled_for_ms: [Option<i64>; 2],
    /// Per side: what this replica knows stops the side from being counted (checkpoints
    /// failing, a topic missing, a lane blocked); empty when nothing does.
    pub ingestion_faults: [Vec<String>; 2],
}

/// The verdict of a set of criteria (before hysteresis).
pub fn raw_verdict(criteria: &[Criterion]) -> Verdict {
    let has = |s: CriterionStatus| criteria.iter().any(|c| c.status == s);
    if has(CriterionStatus::Fail) {
        Verdict::Fail
    } else if has(CriterionStatus::Pending) {
        Verdict::Pending
    } else if has(CriterionStatus::Warn) || has(CriterionStatus::Waived) {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

/// Apply active waivers: a failing or pending criterion with a waiver becomes `waived`.
pub fn apply_waivers(criteria: &mut [Criterion], waivers: &[Waiver], now: DateTime<Utc>) {
    for c in criteria.iter_mut() {
        let active = waivers
            .iter()
            .find(|w| w.criterion == c.name && w.expires_at > now);
        if let (Some(w), CriterionStatus::Fail | CriterionStatus::Pending) = (active, c.status) {
            c.explanation = format!(
                "waived by {} until {}: {} (was: {})",
                w.created_by,
                w.expires_at.to_rfc3339(),
                w.reason,
                c.explanation
            );
            c.status = CriterionStatus::Waived;
        }
    }
}

/// Keeps a service from flapping: `pass`/`warn` only after `needed` passing evaluations in a row;
/// `fail` at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hysteresis {
    passes_in_a_row: u32,
    current: Verdict,
}

impl Hysteresis {
    /// Continue from a stored state: `current` was served after `passes_in_a_row` passes.
    pub fn resume(passes_in_a_row: u32, current: Verdict) -> Hysteresis {
        Hysteresis {
            passes_in_a_row,
            current,
        }
    }

    /// Passing evaluations in a row so far (stored with the verdict).
    pub fn passes_in_a_row(&self) -> u32 {
        self.passes_in_a_row
    }

    /// Feed one raw verdict; returns the served verdict and, while waiting, why it is held back.
    pub fn observe(&mut self, raw: Verdict, needed: u32) -> (Verdict, Option<String>) {
        if raw.is_go() {
            self.passes_in_a_row = self.passes_in_a_row.saturating_add(1);
            if self.passes_in_a_row >= needed.max(1) {
                self.current = raw;
                return (raw, None);
            }
            let held = if self.current == Verdict::Fail {
                Verdict::Fail
            } else {
                Verdict::Pending
            };
            self.current = held;
            let why = format!(
                "passing {}/{} consecutive evaluations before `{}`",
                self.passes_in_a_row,
                needed,
                raw.as_str()
            );
            return (held, Some(why));
        }
        self.passes_in_a_row = 0;
        self.current = raw;
        (raw, None)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
