//! The latest sampled row diff ([`RowsSummary`]) as metrics; the gate's `row_parity` criterion
//! (`crate::gate`) reads the same summary. Called by the evaluation loop on every evaluation.

use super::status::RowsSummary;
use crate::metrics::Metrics;

/// Publish the latest sampled row diff as metrics.
pub fn publish(metrics: &Metrics, service: &str, r: &RowsSummary) {
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
