//! Publishing one evaluated service's status as Prometheus metrics: verdicts, counts, watermarks,
//! lag, differing fields (names and help live in `crate::metrics`).

use crate::metrics::Metrics;
use crate::model::status::RowsSummary;
use crate::model::status::{ServiceStatus, SideStatus};
use crate::model::{CriterionName, Verdict};
use std::collections::HashMap;

/// Set every metric of service `s`; `published_fields` remembers which field series exist so the
/// ones that left the top list are removed.
pub fn publish_metrics(
    metrics: &Metrics,
    s: &ServiceStatus,
    published_fields: &mut HashMap<String, Vec<String>>,
) {
    let name = s.service.as_str();
    let delay = s
        .gate
        .criteria
        .iter()
        .find(|c| c.name == CriterionName::LatencyGuardrail)
        .and_then(|c| c.observed.get("p95_ms"))
        .and_then(serde_json::Value::as_f64);
    if let Some(ms) = delay {
        metrics
            .candidate_delay_regression_seconds
            .with_label_values(&[name])
            .set(ms / 1000.0);
    }
    // Fields no longer among the top ones must disappear, not linger with an old value.
    let current: Vec<String> = s.top_fields.iter().map(|f| f.pointer.clone()).collect();
    for old in published_fields
        .get(name)
        .into_iter()
        .flatten()
        .filter(|p| !current.contains(p))
    {
        let _ = metrics
            .field_mismatched_keys
            .remove_label_values(&[name, old.as_str()]);
    }
    for f in &s.top_fields {
        metrics
            .field_mismatched_keys
            .with_label_values(&[name, f.pointer.as_str()])
            .set(f.mismatched_keys as i64);
    }
    published_fields.insert(name.to_owned(), current);
    for (state, counts) in [("settled", s.keys.settled), ("in_flight", s.keys.in_flight)] {
        for (kind, n) in [
            ("missing_in_candidate", counts.missing_in_candidate),
            ("extra_in_candidate", counts.extra_in_candidate),
            ("mismatched", counts.mismatched),
        ] {
            metrics
                .mismatched_keys
                .with_label_values(&[name, kind, state])
                .set(n as i64);
        }
    }
    metrics
        .windows_settled
        .with_label_values(&[name, "matched"])
        .set(s.windows_settled_matched as i64);
    metrics
        .windows_settled
        .with_label_values(&[name, "unmatched"])
        .set(s.windows_settled_unmatched as i64);
    for (side_name, side) in [("baseline", &s.baseline), ("candidate", &s.candidate)] {
        publish_side(metrics, name, side_name, side);
    }
    for verdict in [
        Verdict::Pass,
        Verdict::Warn,
        Verdict::Fail,
        Verdict::Pending,
    ] {
        let label = verdict.as_str();
        metrics
            .gate_verdict
            .with_label_values(&[name, label])
            .set(i64::from(s.gate.verdict == verdict));
    }
    if let Some(r) = &s.rows {
        publish_rows(metrics, name, r);
    }
}

fn publish_side(metrics: &Metrics, service: &str, side_name: &str, side: &SideStatus) {
    for p in &side.partitions {
        let partition = p.partition.to_string();
        let labels = [service, side_name, p.topic.as_str(), partition.as_str()];
        match p.lag {
            Some(lag) => metrics.consumer_lag.with_label_values(&labels).set(lag),
            // Unknown (the broker's end could not be read): the series is absent, never 0.
            None => {
                let _ = metrics.consumer_lag.remove_label_values(&labels);
            }
        }
    }
    if let Some(w) = side.watermark_ms {
        metrics
            .watermark_seconds
            .with_label_values(&[service, side_name])
            .set(w as f64 / 1000.0);
    }
}

/// The latest sampled row diff as metrics; the gate's `row_parity` criterion reads the same
/// summary.
fn publish_rows(metrics: &Metrics, service: &str, r: &RowsSummary) {
    metrics
        .row_diff_ratio
        .with_label_values(&[service])
        .set(r.diff_ratio);
    metrics
        .row_diff_ratio_upper_bound
        .with_label_values(&[service])
        .set(r.diff_ratio_upper_95);
    for (kind, n) in [
        ("missing_in_candidate", r.differing.missing_in_candidate),
        ("extra_in_candidate", r.differing.extra_in_candidate),
        ("mismatched", r.differing.mismatched),
    ] {
        metrics
            .rows_differing
            .with_label_values(&[service, kind])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
