//! The seven criteria, each a pure function of the inputs and thresholds.
//!
//! "Within 20% of its threshold" (a `warn`) means: for an upper bound T > 0, an observed value above
//! 0.8 × T that still passes.

use super::{DelayEvidence, ErrorEvidence, GateInputs, GateThresholds, RowEvidence};
use crate::model::{Criterion, CriterionName, CriterionStatus};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn criterion(
    name: CriterionName,
    status: CriterionStatus,
    observed: Value,
    threshold: Value,
    explanation: String,
) -> Criterion {
    Criterion {
        name,
        status,
        observed,
        threshold,
        explanation,
    }
}

/// Pass, warn (near the bound) or fail for "observed ≤ bound".
fn upper_bound<T: Into<f64> + Copy>(observed: T, bound: T) -> CriterionStatus {
    let (o, b) = (observed.into(), bound.into());
    if o > b {
        CriterionStatus::Fail
    } else if b > 0.0 && o > 0.8 * b {
        CriterionStatus::Warn
    } else {
        CriterionStatus::Pass
    }
}

fn evidence(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let observed = json!({"baseline_events": i.baseline_events, "candidate_events": i.candidate_events,
        "observation_seconds": i.observation_ms.map(|ms| ms / 1000)});
    let threshold =
        json!({"min_events": t.min_events, "min_observation_seconds": t.min_observation_seconds});
    let min_obs_ms = i64::try_from(t.min_observation_seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let (status, why) = if i.baseline_events < t.min_events || i.candidate_events < t.min_events {
        (
            CriterionStatus::Pending,
            format!(
                "{} baseline and {} candidate events; at least {} per side are needed",
                i.baseline_events, i.candidate_events, t.min_events
            ),
        )
    } else if i.settled_until_ms.is_none() {
        (
            CriterionStatus::Pending,
            "nothing has settled yet: both watermarks must pass the grace period".into(),
        )
    } else if i.observation_ms.unwrap_or(0) < min_obs_ms {
        (
            CriterionStatus::Pending,
            format!(
                "{} s of event time observed; {} s are needed",
                i.observation_ms.unwrap_or(0) / 1000,
                t.min_observation_seconds
            ),
        )
    } else {
        (
            CriterionStatus::Pass,
            format!(
                "{} baseline and {} candidate events observed",
                i.baseline_events, i.candidate_events
            ),
        )
    };
    criterion(CriterionName::Evidence, status, observed, threshold, why)
}

fn count_parity(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let [b, c] = &i.settled_counts;
    let ops: BTreeSet<&String> = b.keys().chain(c.keys()).collect();
    let mut worst: (u64, String) = (0, String::new());
    for op in ops {
        let (x, y) = (
            b.get(op).copied().unwrap_or(0),
            c.get(op).copied().unwrap_or(0),
        );
        if x.abs_diff(y) > worst.0 || worst.1.is_empty() {
            worst = (x.abs_diff(y), format!("{op}: baseline {x}, candidate {y}"));
        }
    }
    let status = if i.settled_until_ms.is_none() {
        CriterionStatus::Pending
    } else {
        upper_bound(worst.0 as f64, t.max_count_drift as f64)
    };
    let why = match status {
        CriterionStatus::Pending => "no settled windows yet".to_owned(),
        _ if worst.1.is_empty() => "no settled events yet on either side".to_owned(),
        _ => format!(
            "largest settled count drift {} ({}); allowed {}",
            worst.0, worst.1, t.max_count_drift
        ),
    };
    criterion(
        CriterionName::CountParity,
        status,
        json!({"max_drift": worst.0, "baseline": b, "candidate": c}),
        json!({"max_count_drift": t.max_count_drift}),
        why,
    )
}

fn key_parity(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let total = i.missing_in_candidate + i.extra_in_candidate + i.mismatched;
    let status = if i.settled_until_ms.is_none() {
        CriterionStatus::Pending
    } else {
        upper_bound(total as f64, t.max_mismatched_keys as f64)
    };
    let mut why = format!(
        "{total} settled keys differ ({} missing_in_candidate, {} extra_in_candidate, {} mismatched); allowed {}",
        i.missing_in_candidate, i.extra_in_candidate, i.mismatched, t.max_mismatched_keys
    );
    let [b, c] = i.unverifiable_events;
    if b + c > 0 {
        // Said, not judged: such an event is new or a replay from long ago, and nothing tells.
        why.push_str(&format!(
            "; {} events older than the dedupe horizon were counted without a duplicate check (baseline {b}, candidate {c})",
            b + c
        ));
    }
    let observed = json!({"total": total, "missing_in_candidate": i.missing_in_candidate,
        "extra_in_candidate": i.extra_in_candidate, "mismatched": i.mismatched,
        "unverifiable_events": {"baseline": b, "candidate": c}});
    criterion(
        CriterionName::KeyParity,
        status,
        observed,
        json!({"max_mismatched_keys": t.max_mismatched_keys}),
        why,
    )
}

fn row_parity(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let threshold =
        json!({"max_row_diff_ratio": t.max_row_diff_ratio, "min_sampled_rows": t.min_sampled_rows});
    let Some(RowEvidence {
        rows_sampled: sampled,
        diff_ratio_upper_95: upper,
        flagged_differing: flagged,
    }) = i.rows
    else {
        return criterion(
            CriterionName::RowParity,
            CriterionStatus::NotApplicable,
            Value::Null,
            threshold,
            "no [services.targets] configured: the sink tables are not compared".into(),
        );
    };
    let observed = json!({"rows_sampled": sampled, "diff_ratio_upper_bound": upper, "flagged_keys_differing": flagged});
    let (status, why) = if flagged > 0 {
        // Keys chosen because the stream flagged them or they just changed are outside the ratio,
        // but a settled difference there is table drift all the same.
        (CriterionStatus::Fail, format!("{flagged} flagged or recently changed keys differ in the sink tables after the settle delay"))
    } else if sampled < t.min_sampled_rows {
        (
            CriterionStatus::Pending,
            format!("{sampled} rows sampled; {} needed", t.min_sampled_rows),
        )
    } else {
        (
            upper_bound(upper, t.max_row_diff_ratio),
            format!(
                "row-diff ratio ≤ {upper:.5} (95% upper bound over {sampled} rows); allowed {}",
                t.max_row_diff_ratio
            ),
        )
    };
    criterion(CriterionName::RowParity, status, observed, threshold, why)
}

fn error_parity(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let threshold = json!({"max_error_rate_increase": t.max_error_rate_increase});
    let Some(ErrorEvidence {
        baseline_errors: be,
        baseline_records: br,
        candidate_errors: ce,
        candidate_records: cr,
    }) = i.errors
    else {
        return criterion(
            CriterionName::ErrorParity,
            CriterionStatus::NotApplicable,
            Value::Null,
            threshold,
            "no error topics configured".into(),
        );
    };
    let rate = |e: u64, r: u64| if r == 0 { 0.0 } else { e as f64 / r as f64 };
    let (b, c) = (rate(be, br), rate(ce, cr));
    let increase = (c - b).max(0.0);
    let status = upper_bound(increase, t.max_error_rate_increase);
    let why = format!("candidate error rate {c:.5} ({ce}/{cr}) vs baseline {b:.5} ({be}/{br}); allowed increase {}", t.max_error_rate_increase);
    criterion(
        CriterionName::ErrorParity,
        status,
        json!({"baseline_rate": b, "candidate_rate": c, "increase": increase}),
        threshold,
        why,
    )
}

fn latency_guardrail(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let threshold = json!({"max_delay_regression_ms": t.max_delay_regression_ms, "min_delay_samples": t.min_delay_samples});
    let (status, observed, why) = match i.delay_regression {
        Some(DelayEvidence { p95_ms: p95, samples: n }) if n >= t.min_delay_samples => (
            upper_bound(p95.max(0) as f64, t.max_delay_regression_ms as f64),
            json!({"p95_ms": p95, "samples": n}),
            format!("candidate delivers p95 {p95} ms later than the baseline over {n} events; allowed {} ms", t.max_delay_regression_ms),
        ),
        Some(DelayEvidence { samples: n, .. }) => (CriterionStatus::Pending, json!({"samples": n}), format!("{n} events seen on both sides; {} needed", t.min_delay_samples)),
        None => (CriterionStatus::Pending, Value::Null, "no event seen on both sides yet".into()),
    };
    criterion(
        CriterionName::LatencyGuardrail,
        status,
        observed,
        threshold,
        why,
    )
}

fn freshness(i: &GateInputs, t: &GateThresholds) -> Criterion {
    let limit = i64::try_from(t.max_stall_seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let [b, c] = i.stalled_for_ms;
    let sides = [
        ("baseline", b, &i.ingestion_faults[0]),
        ("candidate", c, &i.ingestion_faults[1]),
    ];
    let stalled: Vec<String> = sides
        .iter()
        .filter_map(|(side, s, _)| {
            s.filter(|ms| *ms > limit)
                .map(|ms| format!("{side} stalled for {} s", ms / 1000))
        })
        .collect();
    let faulted: Vec<String> = sides
        .iter()
        .filter(|(_, _, faults)| !faults.is_empty())
        .map(|(side, s, faults)| {
            format!(
                "{side} is not being counted ({}) for {} s",
                faults.join("; "),
                s.unwrap_or(0) / 1000
            )
        })
        .collect();
    let observed = json!({"baseline_stalled_seconds": b.map(|x| x / 1000), "candidate_stalled_seconds": c.map(|x| x / 1000),
        "baseline_faults": i.ingestion_faults[0], "candidate_faults": i.ingestion_faults[1]});
    let (status, why) = if !stalled.is_empty() {
        let mut reasons = stalled;
        reasons.extend(faulted);
        (
            CriterionStatus::Fail,
            format!(
                "{}: a stalled consumer is not evidence of parity",
                reasons.join(", ")
            ),
        )
    } else if !faulted.is_empty() {
        // Counting has stopped: whatever the evidence says now, it is not current. Pending until
        // the fault clears, failing once it outlasts `max_stall_seconds`.
        (
            CriterionStatus::Pending,
            format!(
                "{}; fails after {} s",
                faulted.join(", "),
                t.max_stall_seconds
            ),
        )
    } else {
        (
            CriterionStatus::Pass,
            "both sides are consuming (or caught up)".to_owned(),
        )
    };
    criterion(
        CriterionName::Freshness,
        status,
        observed,
        json!({"max_stall_seconds": t.max_stall_seconds}),
        why,
    )
}

/// Every criterion, in a fixed order.
pub fn evaluate_criteria(i: &GateInputs, t: &GateThresholds) -> Vec<Criterion> {
    vec![
        evidence(i, t),
        count_parity(i, t),
        key_parity(i, t),
        row_parity(i, t),
        error_parity(i, t),
        latency_guardrail(i, t),
        freshness(i, t),
    ]
}
