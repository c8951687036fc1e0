//! The checked-in fixtures, replayed through the real capture reader and engine (`replay`) under
//! `fixtures/paritygate.toml` (the Kafka Connect pairs under `fixtures/debezium/paritygate.toml`,
//! with their `schemas/`), give exactly the outcome recorded in each `expected.json`: the clean
//! pairs match key for key, the drift pairs show every planted drift by kind and nothing else.

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
    // A pair's own config one directory up (fixtures/debezium/), else the fixtures' config.
    let pair = root.join(dir);
    let own = pair.parent().unwrap().join("paritygate.toml");
    let config_path = if own.exists() {
        own
    } else {
        root.join("paritygate.toml")
    };
    let config = Config::load(&config_path).unwrap();
    let files = [
        pair.join(&expected.baseline_file),
        pair.join(&expected.candidate_file),
    ];
    let mut schemas = paritygate::core::avro::Schemas::default();
    if pair.join("schemas").exists() {
        let dir = paritygate::schemas::SchemaDir::read(&pair.join("schemas")).unwrap();
        schemas.baseline = Some(std::sync::Arc::new(dir));
    }
    let options = ReplayOptions {
        strict: true,
        max_examples: 1000,
        progress: false,
        schemas,
        range: Default::default(),
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
                exp.records + exp.transaction_markers + exp.tombstones,
                "{ctx} {side}: records"
            );
            assert_eq!(
                got.skipped.get("debezium_tombstone").copied().unwrap_or(0),
                exp.tombstones,
                "{ctx} {side}: tombstones"
            );
            // Dropped update_before rows (drop_update_before) are neither events nor duplicates.
            let before = got.skipped.get("update_before_dropped").copied();
            match before {
                None => {
                    assert_eq!(got.events, exp.events, "{ctx} {side}: events");
                    assert_eq!(got.duplicates, exp.duplicates, "{ctx} {side}: duplicates");
                }
                Some(dropped) => assert_eq!(
                    got.events + got.duplicates + dropped,
                    exp.records,
                    "{ctx} {side}: events, duplicates and dropped update_before rows"
                ),
            }
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

/// Debezium SQL Server in Avro (two schema ids) against Bento JSON: clean, and with a changed
/// decimal, a dropped delete, an update dropped inside a transaction and a missing key.
#[test]
fn kafka_connect_pairs_match_and_show_exactly_their_planted_drift() {
    let clean = check("debezium/clean");
    assert_eq!(clean.verdict, Verdict::Pass);
    let s = &clean.services[0];
    assert!(s.mismatches.is_empty() && s.baseline.duplicates > 0);
    assert_eq!(s.baseline.unparseable, 0);
    let drift = check("debezium/drift");
    assert_eq!(drift.verdict, Verdict::Fail);
    let decimal = drift.services[0]
        .mismatches
        .iter()
        .find(|m| m.kind == MismatchKind::Mismatched && !m.fields.is_empty())
        .expect("the changed decimal");
    assert_eq!(decimal.fields, ["/weight_kg"], "in the Avro field's name");
}
