//! Boundaries of every criterion, waivers and hysteresis.

use super::*;
use crate::model::CriterionName;
use chrono::Duration;

fn passing() -> GateInputs {
    let counts: BTreeMap<String, u64> =
        [("insert".to_owned(), 10), ("update".to_owned(), 5)].into();
    GateInputs {
        baseline_events: 15,
        candidate_events: 15,
        observation_ms: Some(600_000),
        settled_until_ms: Some(1_000_000),
        settled_counts: [counts.clone(), counts],
        rows: Some(RowEvidence {
            rows_sampled: 1000,
            diff_ratio_upper_95: 0.002,
            flagged_differing: 0,
        }),
        errors: Some(ErrorEvidence {
            baseline_errors: 1,
            baseline_records: 100,
            candidate_errors: 1,
            candidate_records: 100,
        }),
        delay_regression: Some(DelayEvidence {
            p95_ms: 100,
            samples: 50,
        }),
        ..GateInputs::default()
    }
}

fn status(i: &GateInputs, t: &GateThresholds, name: &str) -> CriterionStatus {
    let c = evaluate_criteria(i, t);
    c.iter()
        .find(|c| c.name.as_str() == name)
        .map(|c| c.status)
        .unwrap()
}

use CriterionStatus::*;

#[test]
fn a_clean_service_passes_every_criterion() {
    let c = evaluate_criteria(&passing(), &GateThresholds::default());
    assert!(c.iter().all(|c| c.status == Pass), "{c:#?}");
    assert_eq!(raw_verdict(&c), Verdict::Pass);
}

#[test]
fn evidence_boundaries() {
    let t = GateThresholds {
        min_events: 15,
        min_observation_seconds: 600,
        ..GateThresholds::default()
    };
    assert_eq!(status(&passing(), &t, "evidence"), Pass);
    assert_eq!(
        status(
            &GateInputs {
                candidate_events: 14,
                ..passing()
            },
            &t,
            "evidence"
        ),
        Pending
    );
    assert_eq!(
        status(
            &GateInputs {
                observation_ms: Some(599_999),
                ..passing()
            },
            &t,
            "evidence"
        ),
        Pending
    );
    assert_eq!(
        status(
            &GateInputs {
                settled_until_ms: None,
                ..passing()
            },
            &t,
            "evidence"
        ),
        Pending
    );
}

#[test]
fn count_parity_boundaries() {
    let t = GateThresholds {
        max_count_drift: 5,
        ..GateThresholds::default()
    };
    let with_candidate_inserts = |n: u64| {
        let mut i = passing();
        i.settled_counts[1].insert("insert".into(), n);
        i
    };
    assert_eq!(
        status(&with_candidate_inserts(10), &t, "count_parity"),
        Pass
    );
    assert_eq!(
        status(&with_candidate_inserts(14), &t, "count_parity"),
        Pass
    ); // drift 4 = 80%: not above
    assert_eq!(
        status(&with_candidate_inserts(15), &t, "count_parity"),
        Warn
    ); // drift 5: at the bound
    assert_eq!(
        status(&with_candidate_inserts(16), &t, "count_parity"),
        Fail
    );
    assert_eq!(
        status(
            &with_candidate_inserts(11),
            &GateThresholds::default(),
            "count_parity"
        ),
        Fail
    );
    assert_eq!(
        status(
            &GateInputs {
                settled_until_ms: None,
                ..passing()
            },
            &t,
            "count_parity"
        ),
        Pending
    );
}

#[test]
fn key_parity_boundaries_and_explanation() {
    let i = GateInputs {
        missing_in_candidate: 1,
        mismatched: 2,
        ..passing()
    };
    assert_eq!(status(&i, &GateThresholds::default(), "key_parity"), Fail);
    assert_eq!(
        status(
            &i,
            &GateThresholds {
                max_mismatched_keys: 3,
                ..GateThresholds::default()
            },
            "key_parity"
        ),
        Warn
    );
    assert_eq!(
        status(
            &i,
            &GateThresholds {
                max_mismatched_keys: 4,
                ..GateThresholds::default()
            },
            "key_parity"
        ),
        Pass
    );
    let c = evaluate_criteria(&i, &GateThresholds::default());
    let key = c
        .iter()
        .find(|c| c.name == CriterionName::KeyParity)
        .unwrap();
    assert_eq!(key.explanation, "3 settled keys differ (1 missing_in_candidate, 0 extra_in_candidate, 2 mismatched); allowed 0");

    // Events counted without a duplicate check (beyond the dedupe horizon) are said, not judged.
    let unverified = GateInputs {
        unverifiable_events: [2, 1],
        ..passing()
    };
    let c = evaluate_criteria(&unverified, &GateThresholds::default());
    let key = c
        .iter()
        .find(|c| c.name == CriterionName::KeyParity)
        .unwrap();
    assert_eq!(key.status, Pass);
    assert!(
        key.explanation.ends_with("; 3 events older than the dedupe horizon were counted without a duplicate check (baseline 2, candidate 1)"),
        "{}",
        key.explanation
    );
    assert_eq!(key.observed["unverifiable_events"]["baseline"], 2);
}

#[test]
fn row_parity_boundaries() {
    let t = GateThresholds {
        max_row_diff_ratio: 0.01,
        min_sampled_rows: 100,
        ..GateThresholds::default()
    };
    assert_eq!(
        status(
            &GateInputs {
                rows: Some(RowEvidence {
                    rows_sampled: 99,
                    diff_ratio_upper_95: 0.0,
                    flagged_differing: 0
                }),
                ..passing()
            },
            &t,
            "row_parity"
        ),
        Pending
    );
    assert_eq!(
        status(
            &GateInputs {
                rows: Some(RowEvidence {
                    rows_sampled: 100,
                    diff_ratio_upper_95: 0.008,
                    flagged_differing: 0
                }),
                ..passing()
            },
            &t,
            "row_parity"
        ),
        Pass
    );
    assert_eq!(
        status(
            &GateInputs {
                rows: Some(RowEvidence {
                    rows_sampled: 100,
                    diff_ratio_upper_95: 0.009,
                    flagged_differing: 0
                }),
                ..passing()
            },
            &t,
            "row_parity"
        ),
        Warn
    );
    assert_eq!(
        status(
            &GateInputs {
                rows: Some(RowEvidence {
                    rows_sampled: 100,
                    diff_ratio_upper_95: 0.011,
                    flagged_differing: 0
                }),
                ..passing()
            },
            &t,
            "row_parity"
        ),
        Fail
    );
    assert_eq!(
        status(
            &GateInputs {
                rows: None,
                ..passing()
            },
            &t,
            "row_parity"
        ),
        NotApplicable
    );
}

#[test]
fn error_parity_boundaries() {
    let t = GateThresholds {
        max_error_rate_increase: 0.01,
        ..GateThresholds::default()
    };
    assert_eq!(
        status(
            &GateInputs {
                errors: Some(ErrorEvidence {
                    baseline_errors: 1,
                    baseline_records: 100,
                    candidate_errors: 2,
                    candidate_records: 100
                }),
                ..passing()
            },
            &t,
            "error_parity"
        ),
        Warn
    );
    assert_eq!(
        status(
            &GateInputs {
                errors: Some(ErrorEvidence {
                    baseline_errors: 1,
                    baseline_records: 100,
                    candidate_errors: 3,
                    candidate_records: 100
                }),
                ..passing()
            },
            &t,
            "error_parity"
        ),
        Fail
    );
    assert_eq!(
        status(
            &GateInputs {
                errors: Some(ErrorEvidence {
                    baseline_errors: 5,
                    baseline_records: 100,
                    candidate_errors: 0,
                    candidate_records: 100
                }),
                ..passing()
            },
            &t,
            "error_parity"
        ),
        Pass
    );
    assert_eq!(
        status(
            &GateInputs {
                errors: None,
                ..passing()
            },
            &t,
            "error_parity"
        ),
        NotApplicable
    );
}

#[test]
fn latency_and_freshness_boundaries() {
    let t = GateThresholds {
        max_delay_regression_ms: 1000,
        min_delay_samples: 10,
        max_stall_seconds: 60,
        ..GateThresholds::default()
    };
    assert_eq!(
        status(
            &GateInputs {
                delay_regression: Some(DelayEvidence {
                    p95_ms: 1001,
                    samples: 10
                }),
                ..passing()
            },
            &t,
            "latency_guardrail"
        ),
        Fail
    );
    assert_eq!(
        status(
            &GateInputs {
                delay_regression: Some(DelayEvidence {
                    p95_ms: 1000,
                    samples: 10
                }),
                ..passing()
            },
            &t,
            "latency_guardrail"
        ),
        Warn
    );
    assert_eq!(
        status(
            &GateInputs {
                delay_regression: Some(DelayEvidence {
                    p95_ms: -50,
                    samples: 10
                }),
                ..passing()
            },
            &t,
            "latency_guardrail"
        ),
        Pass
    );
    assert_eq!(
        status(
            &GateInputs {
                delay_regression: Some(DelayEvidence {
                    p95_ms: 0,
                    samples: 9
                }),
                ..passing()
            },
            &t,
            "latency_guardrail"
        ),
        Pending
    );
    assert_eq!(
        status(
            &GateInputs {
                stalled_for_ms: [None, Some(60_001)],
                ..passing()
            },
            &t,
            "freshness"
        ),
        Fail
    );
    assert_eq!(
        status(
            &GateInputs {
                stalled_for_ms: [Some(60_000), None],
                ..passing()
            },
            &t,
            "freshness"
        ),
        Pass
    );
    // A known fault (checkpoints failing, a topic gone) stops counting: never a pass, pending
    // until it outlasts the limit, then a fail.
    let faulted = |ms| GateInputs {
        stalled_for_ms: [Some(ms), None],
        ingestion_faults: [
            vec!["checkpoints failing: permission denied".into()],
            vec![],
        ],
        ..passing()
    };
    assert_eq!(status(&faulted(1_000), &t, "freshness"), Pending);
    assert_eq!(status(&faulted(60_001), &t, "freshness"), Fail);
    let c = evaluate_criteria(&faulted(1_000), &t);
    let freshness = c
        .iter()
        .find(|c| c.name == CriterionName::Freshness)
        .unwrap();
    assert!(
        freshness
            .explanation
            .contains("baseline is not being counted (checkpoints failing: permission denied)"),
        "{}",
        freshness.explanation
    );
    assert_eq!(raw_verdict(&c), Verdict::Pending);
}

#[test]
fn waivers_count_as_passed_until_they_expire() {
    let now = Utc::now();
    let mut c = evaluate_criteria(
        &GateInputs {
            mismatched: 1,
            ..passing()
        },
        &GateThresholds::default(),
    );
    let waiver = Waiver {
        id: 1,
        service: "orders".into(),
        criterion: CriterionName::KeyParity,
        reason: "known sink bug".into(),
        expires_at: now + Duration::hours(1),
        created_by: "alice".into(),
        created_at: now,
    };
    let mut expired = c.clone();
    apply_waivers(&mut c, std::slice::from_ref(&waiver), now);
    assert_eq!(raw_verdict(&c), Verdict::Warn);
    assert!(c
        .iter()
        .any(|c| c.status == Waived && c.explanation.starts_with("waived by alice until")));
    apply_waivers(&mut expired, &[waiver], now + Duration::hours(2));
    assert_eq!(raw_verdict(&expired), Verdict::Fail);
}

#[test]
fn hysteresis_passes_late_and_fails_at_once() {
    let mut h = Hysteresis::default();
    assert_eq!(h.observe(Verdict::Pass, 3).0, Verdict::Pending);
    assert_eq!(
        h.observe(Verdict::Pass, 3),
        (
            Verdict::Pending,
            Some("passing 2/3 consecutive evaluations before `pass`".into())
        )
    );
    assert_eq!(h.observe(Verdict::Pass, 3).0, Verdict::Pass);
    assert_eq!(h.observe(Verdict::Fail, 3).0, Verdict::Fail);
    // After a failure, passing again needs the full run; meanwhile it stays failed.
    assert_eq!(h.observe(Verdict::Warn, 3).0, Verdict::Fail);
    assert_eq!(h.observe(Verdict::Pending, 3).0, Verdict::Pending);
    assert_eq!(h.observe(Verdict::Warn, 3).0, Verdict::Pending);
}

#[test]
fn wave_overrides_only_tighten() {
    let base = GateThresholds {
        max_mismatched_keys: 5,
        min_observation_seconds: 60,
        ..GateThresholds::default()
    };
    let o = GateThresholdsOverride {
        max_mismatched_keys: Some(10),
        min_observation_seconds: Some(3600),
        ..Default::default()
    };
    let t = base.tightened(&o);
    assert_eq!(
        (t.max_mismatched_keys, t.min_observation_seconds),
        (5, 3600)
    );
}
