//! The checked-in fixtures, compared by the core engine under `fixtures/paritygate.toml`, give
//! exactly the outcome recorded in each `expected.json`: the clean pair matches key for key, the
//! drift pair shows every planted drift and nothing else.
//!
//! The capture reader (`src/capture`) is not written yet, so this test parses the two line shapes
//! itself, as plainly as possible.

#![allow(clippy::unwrap_used)] // tests may unwrap (house rule)

use paritygate::config::model::FileConfig;
use paritygate::core::compare::{compare, MismatchKind, SideAccumulator};
use paritygate::core::event::{extract, key_hash, Outcome};
use paritygate::core::plan::ServicePlan;
use paritygate::core::record::RecordView;
use paritygate::generate::Manifest;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

fn read_lines(path: &Path) -> Vec<Value> {
    let raw = std::fs::read(path).unwrap();
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = String::from_utf8(raw).unwrap();
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn bytes(v: &Value) -> Option<Cow<'static, [u8]>> {
    v.as_str().map(|s| Cow::Owned(s.as_bytes().to_vec()))
}

/// A `kcat -C -J` or `rpk topic consume` line as a record.
fn record(line: &Value) -> RecordView<'static> {
    let kcat = line.get("payload").is_some() || line.get("tstype").is_some();
    let headers = match line.get("headers") {
        Some(Value::Array(flat)) if kcat => flat
            .chunks(2)
            .map(|p| (Cow::Owned(p[0].as_str().unwrap().to_owned()), bytes(&p[1])))
            .collect(),
        Some(Value::Array(objs)) => objs
            .iter()
            .map(|h| {
                (
                    Cow::Owned(h["key"].as_str().unwrap().to_owned()),
                    bytes(&h["value"]),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    RecordView {
        topic: Cow::Owned(line["topic"].as_str().unwrap().to_owned()),
        partition: line["partition"].as_i64().unwrap() as i32,
        offset: line["offset"].as_i64().unwrap(),
        timestamp_ms: line
            .get(if kcat { "ts" } else { "timestamp" })
            .and_then(Value::as_i64),
        headers,
        key: line.get("key").and_then(bytes),
        payload: line
            .get(if kcat { "payload" } else { "value" })
            .and_then(bytes),
    }
}

fn check_pair(dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let config: FileConfig =
        toml::from_str(&std::fs::read_to_string(root.join("paritygate.toml")).unwrap()).unwrap();
    let expected: Manifest =
        serde_json::from_slice(&std::fs::read(root.join(dir).join("expected.json")).unwrap())
            .unwrap();
    let baseline: Vec<RecordView> = read_lines(&root.join(dir).join(&expected.baseline_file))
        .iter()
        .map(record)
        .collect();
    let candidate: Vec<RecordView> = read_lines(&root.join(dir).join(&expected.candidate_file))
        .iter()
        .map(record)
        .collect();
    let configured: BTreeSet<&str> = config
        .services
        .iter()
        .flat_map(|s| s.baseline_topics.iter().chain(&s.candidate_topics))
        .map(String::as_str)
        .collect();
    let ignored = baseline
        .iter()
        .chain(&candidate)
        .filter(|r| !configured.contains(r.topic.as_ref()))
        .count() as u64;
    assert_eq!(
        ignored,
        expected.ignored_topics.values().sum::<u64>(),
        "{dir}: unconfigured topic records"
    );

    for service in &config.services {
        let plan = ServicePlan::compile(service).unwrap();
        let want = &expected.services[&service.name];
        let mut names: BTreeMap<u128, String> = BTreeMap::new();
        let mut side = |records: &[RecordView], topics: &[String], side_plan| {
            let mut acc = SideAccumulator::default();
            for (loc, r) in records
                .iter()
                .enumerate()
                .filter(|(_, r)| topics.contains(&r.topic.to_string()))
            {
                match extract(side_plan, r, false) {
                    Outcome::Event(e) => {
                        let k = key_hash(&e.key);
                        names.insert(k, String::from_utf8(e.key.clone()).unwrap());
                        acc.push(&e, r.partition, loc as u64, k);
                    }
                    Outcome::Skipped(s) => {
                        *acc.counters.skipped.entry(s.as_str()).or_default() += 1
                    }
                    Outcome::Rejected(j) => {
                        *acc.counters.rejected.entry(j.as_str()).or_default() += 1
                    }
                }
            }
            acc
        };
        let b = side(&baseline, &service.baseline_topics, &plan.baseline);
        let c = side(&candidate, &service.candidate_topics, &plan.candidate);
        let ctx = format!("{dir}/{}", service.name);
        assert!(
            b.counters.rejected.is_empty() && c.counters.rejected.is_empty(),
            "{ctx}: rejected {:?} {:?}",
            b.counters,
            c.counters
        );
        assert_eq!(
            b.counters
                .skipped
                .get("transaction_marker")
                .copied()
                .unwrap_or(0),
            want.baseline.transaction_markers,
            "{ctx}"
        );
        let (b, c) = (b.finish(plan.has_position), c.finish(plan.has_position));
        assert_eq!(
            (b.duplicates, c.duplicates),
            (want.baseline.duplicates, want.candidate.duplicates),
            "{ctx}: duplicates"
        );
        assert_eq!((b.conflicting, c.conflicting), (0, 0), "{ctx}: conflicting");
        assert_eq!(
            (b.rows.len() as u64, c.rows.len() as u64),
            (want.baseline.events, want.candidate.events),
            "{ctx}: events"
        );
        let result = compare(&b, &c, plan.has_position);
        let got = |kind| -> BTreeSet<String> {
            result
                .mismatches
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| names[&m.key].clone())
                .collect()
        };
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
        assert_eq!(
            got(MismatchKind::MissingInCandidate),
            set(&want.missing_in_candidate),
            "{ctx}: missing"
        );
        assert_eq!(
            got(MismatchKind::ExtraInCandidate),
            set(&want.extra_in_candidate),
            "{ctx}: extra"
        );
        let mismatched: Vec<String> = want.mismatched.iter().map(|m| m.key.clone()).collect();
        assert_eq!(
            got(MismatchKind::Mismatched),
            set(&mismatched),
            "{ctx}: mismatched"
        );
        assert_eq!(result.total_keys, want.keys, "{ctx}: keys");
        assert_eq!(
            result.partition_mismatched_keys, want.partition_differing_keys,
            "{ctx}: partitions"
        );
    }
}

#[test]
fn clean_pair_matches_key_for_key() {
    check_pair("clean");
}

#[test]
fn drift_pair_shows_exactly_the_planted_drift() {
    check_pair("drift");
}
