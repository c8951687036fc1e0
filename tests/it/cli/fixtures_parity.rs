//! The checked-in fixtures, replayed through the real capture reader and engine (`replay`) under
//! `fixtures/paritygate.toml`, give exactly the outcome recorded in each `expected.json`: the
//! clean pair matches key for key, the drift pair shows every planted drift by kind and nothing else.

use paritygate::config::Config;
use paritygate::core::report::Report;
use paritygate::generate::Manifest;
use paritygate::model::{MismatchKind, Verdict};
use paritygate::replay::{replay, ReplayOptions};
use std::collections::BTreeSet;
use std::path::Path;

fn run(dir: &str) -> (Manifest, Report) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let expected: Manifest =
        serde_json::from_slice(&std::fs::read(root.join(dir).join("expected.json")).unwrap())
            .unwrap();
    let config = Config::load(&root.join("paritygate.toml")).unwrap();
    let files = [
        root.join(dir).join(&expected.baseline_file),
        root.join(dir).join(&expected.candidate_file),
    ];
    let options = ReplayOptions {
        strict: true,
        max_examples: 1000,
        progress: false,
        schemas: Default::default(),
    };
    let report = replay(&config, &files, &options, &mut |e| {
        panic!("malformed fixture line: {e:?}")
    })
    .unwrap();
    (expected, report)
}

fn keys(report: &paritygate::core::report::ServiceReport, kind: MismatchKind) -> BTreeSet<String> {
    report
        .mismatches
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.key.clone())
        .collect()
}

fn check(dir: &str) -> Report {
    let (want, report) = run(dir);
    assert_eq!(
        report.inputs.ignored_records,
        want.ignored_topics.values().sum::<u64>(),
        "{dir}: ignored"
    );
    assert_eq!(report.services.len(), want.services.len());
    for s in &report.services {
        let w = &want.services[&s.service];
        let ctx = format!("{dir}/{}", s.service);
        for (side, got, exp) in [
            ("baseline", &s.baseline, &w.baseline),
            ("candidate", &s.candidate, &w.candidate),
        ] {
            assert_eq!(
                got.records,
                exp.records + exp.transaction_markers,
                "{ctx} {side}: records"
            );
            assert_eq!(got.events, exp.events, "{ctx} {side}: events");
            assert_eq!(got.duplicates, exp.duplicates, "{ctx} {side}: duplicates");
            assert_eq!(
                got.skipped.get("transaction_marker").copied().unwrap_or(0),
                exp.transaction_markers,
                "{ctx} {side}"
            );
            assert!(
                got.rejected.is_empty(),
                "{ctx} {side}: rejected {:?}",
                got.rejected
            );
            assert_eq!(
                (got.unparseable, got.conflicting_duplicates),
                (0, 0),
                "{ctx} {side}"
            );
        }
        assert_eq!(s.keys.total, w.keys, "{ctx}: keys");
        assert_eq!(
            s.partition_mismatched_keys, w.partition_differing_keys,
            "{ctx}: partitions"
        );
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
        assert_eq!(
            keys(s, MismatchKind::MissingInCandidate),
            set(&w.missing_in_candidate),
            "{ctx}"
        );
        assert_eq!(
            keys(s, MismatchKind::ExtraInCandidate),
            set(&w.extra_in_candidate),
            "{ctx}"
        );
        let mismatched: BTreeSet<String> = w.mismatched.iter().map(|m| m.key.clone()).collect();
        assert_eq!(keys(s, MismatchKind::Mismatched), mismatched, "{ctx}");
    }
    report
}

#[test]
fn clean_pair_passes_key_for_key() {
    let report = check("clean");
    assert_eq!(report.verdict, Verdict::Pass);
    assert!(report
        .services
        .iter()
        .all(|s| s.mismatches.is_empty() && s.baseline.duplicates > 0));
}

#[test]
fn drift_pair_reports_exactly_the_planted_keys_by_kind() {
    let report = check("drift");
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(report.services.iter().all(|s| s.verdict == Verdict::Fail));
}
