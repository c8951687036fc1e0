//! Staleness of a served verdict: an evaluation nobody renewed in time (its evaluator died or
//! lost the database) is served marked `stale`, with its age, and never as a `pass`.

use crate::model::status::GateStatus;
use crate::model::Verdict;
use chrono::{DateTime, Utc};

/// A served gate as of `now`: past `stale_after_seconds` since its evaluation, marked stale with
/// its age, a stale `pass` or `warn` served as `pending` (a deploy tool must never promote on an
/// evaluation nobody renews) and a stale `fail` still `fail`. A fresh gate is left as stored, so
/// that every replica, and a sign-off's snapshot, hold the same answer.
pub fn mark_stale(gate: &mut GateStatus, now: DateTime<Utc>) {
    let Some(at) = gate.evaluated_at else {
        return;
    };
    let age_ms = (now - at).num_milliseconds().max(0);
    let Some(stale_after_ms) = gate
        .stale_after_seconds
        .map(|s| (s * 1000.0).round() as i64)
    else {
        return;
    };
    if age_ms <= stale_after_ms || gate.stale {
        return;
    }
    gate.stale = true;
    gate.age_seconds = Some(age_ms as f64 / 1000.0);
    let evaluated = gate.verdict;
    gate.last_evaluated_verdict = Some(evaluated);
    if evaluated.is_go() {
        gate.verdict = Verdict::Pending;
    }
    gate.reasons.insert(
        0,
        format!(
            "stale: the last evaluation (`{}`, by {} at {}) is {:.1} s old and one was due within {:.1} s; the replica evaluating this service may be down or cut off from the database (another takes it over)",
            evaluated.as_str(),
            gate.evaluated_by.as_deref().unwrap_or("?"),
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            age_ms as f64 / 1000.0,
            stale_after_ms as f64 / 1000.0,
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(verdict: Verdict, at: DateTime<Utc>) -> GateStatus {
        GateStatus {
            verdict,
            raw_verdict: verdict,
            reasons: vec!["every criterion passes".into()],
            evaluated_at: Some(at),
            evaluated_by: Some("replica-a".into()),
            stale_after_seconds: Some(1.4),
            ..GateStatus::default()
        }
    }

    #[test]
    fn a_fresh_verdict_is_left_as_stored() {
        let at = Utc::now();
        let mut g = gate(Verdict::Pass, at);
        let stored = g.clone();
        mark_stale(&mut g, at + chrono::Duration::milliseconds(1400));
        assert_eq!(g, stored);
    }

    #[test]
    fn a_stale_go_is_served_pending_and_a_stale_fail_stays_fail() {
        let at = Utc::now();
        let later = at + chrono::Duration::milliseconds(1401);
        for (evaluated, served) in [
            (Verdict::Pass, Verdict::Pending),
            (Verdict::Warn, Verdict::Pending),
            (Verdict::Fail, Verdict::Fail),
            (Verdict::Pending, Verdict::Pending),
        ] {
            let mut g = gate(evaluated, at);
            mark_stale(&mut g, later);
            let reasons = g.reasons.len();
            mark_stale(&mut g, later);
            assert_eq!(g.reasons.len(), reasons, "marked once");
            assert_eq!(g.verdict, served, "{evaluated:?}");
            assert!(g.stale);
            assert_eq!(g.age_seconds, Some(1.401));
            assert_eq!(g.evaluated_verdict(), evaluated);
            assert!(
                g.reasons[0].starts_with("stale: the last evaluation"),
                "{:?}",
                g.reasons
            );
            assert!(g.reasons[0].contains("replica-a"), "{:?}", g.reasons);
        }
    }

    #[test]
    fn never_evaluated_is_left_alone() {
        let mut g = GateStatus::default();
        mark_stale(&mut g, Utc::now());
        assert!(!g.stale);
        assert_eq!(g.age_seconds, None);
    }
}
