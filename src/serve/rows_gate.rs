//! What the latest sampled row diff ([`RowsSummary`]) means for the gate and the metrics; called by
//! the evaluation loop, which rebuilds both from the store on every evaluation.

use super::status::{GateVerdict, RowsSummary};
use crate::metrics::Metrics;

/// Settled table drift fails the gate; a passing gate states the sample's upper bound.
pub fn apply(r: &RowsSummary, verdict: &mut GateVerdict, reasons: &mut Vec<String>) {
    let (u, x) = (r.differing, r.extra_differing);
    let bound = format!(
        "diff ratio {:.3}%, at most {:.3}% at 95% confidence",
        r.diff_ratio * 100.0,
        r.diff_ratio_upper_95 * 100.0
    );
    if u.total() + x.total() > 0 {
        // Table drift that survived the settle delay is evidence on its own: it fails the gate
        // even while the stream comparison still waits for events.
        if *verdict != GateVerdict::Fail {
            reasons.clear();
        }
        *verdict = GateVerdict::Fail;
        reasons.push(format!(
            "sink tables differ: {} of {} sampled rows ({} missing_in_candidate, {} extra_in_candidate, {} mismatched; {bound}), and {} of the flagged or recently changed keys",
            u.total(),
            r.rows_sampled,
            u.missing_in_candidate,
            u.extra_in_candidate,
            u.mismatched,
            x.total()
        ));
    } else if *verdict == GateVerdict::Pass {
        reasons.push(format!(
            "sink tables: none of {} sampled rows differ ({bound}; {} in flight)",
            r.rows_sampled, r.in_flight
        ));
    }
}

/// The latest round's gauges (every replica publishes the same: they read the same store).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::status::KindCounts;

    fn summary(mismatched: u64, extra: u64) -> RowsSummary {
        RowsSummary {
            rows_sampled: 1000,
            differing: KindCounts {
                mismatched,
                ..Default::default()
            },
            extra_differing: KindCounts {
                missing_in_candidate: extra,
                ..Default::default()
            },
            diff_ratio: mismatched as f64 / 1000.0,
            diff_ratio_upper_95: crate::rowdiff::stats::upper_bound_95(mismatched, 1000),
            ..Default::default()
        }
    }

    #[test]
    fn settled_table_drift_fails_any_verdict() {
        for start in [GateVerdict::Pass, GateVerdict::Pending, GateVerdict::Fail] {
            for (u, x) in [(2, 0), (0, 1)] {
                let (mut v, mut reasons) = (start, vec!["stream reason".to_owned()]);
                apply(&summary(u, x), &mut v, &mut reasons);
                assert_eq!(v, GateVerdict::Fail);
                assert_eq!(
                    reasons.len(),
                    if start == GateVerdict::Fail { 2 } else { 1 }
                );
                let last = reasons.last().map(String::as_str).unwrap_or_default();
                assert!(last.starts_with("sink tables differ: "), "{last}");
            }
        }
    }

    #[test]
    fn no_drift_keeps_the_verdict_and_a_pass_states_the_bound() {
        let (mut v, mut reasons) = (GateVerdict::Pass, vec![]);
        apply(&summary(0, 0), &mut v, &mut reasons);
        assert_eq!(v, GateVerdict::Pass);
        assert_eq!(
            reasons,
            ["sink tables: none of 1000 sampled rows differ (diff ratio 0.000%, at most 0.299% at 95% confidence; 0 in flight)"]
        );
        let (mut v, mut reasons) = (GateVerdict::Pending, vec!["wait".to_owned()]);
        apply(&summary(0, 0), &mut v, &mut reasons);
        assert_eq!(
            (v, reasons),
            (GateVerdict::Pending, vec!["wait".to_owned()])
        );
    }
}
