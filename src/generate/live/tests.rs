//! The live generator: same seed, same batches; each drift kind changes what it says and nothing
//! else (checked by comparing a drifting run with a clean run of the same seed).

use super::rows::RowChange;
use super::*;
use std::collections::BTreeSet;
use std::path::Path;

fn demo_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/paritygate.toml");
    Config::load(&path).expect("fixtures/demo/paritygate.toml")
}

fn spec(seed: u64, drift: &[(&str, DriftKind)]) -> LiveSpec {
    let mut map: BTreeMap<String, BTreeSet<DriftKind>> = BTreeMap::new();
    for (s, k) in drift {
        map.entry((*s).into()).or_default().insert(*k);
    }
    LiveSpec {
        seed,
        drift: map,
        drift_per_mille: 100,
    }
}

/// `blocks` batches of service `index`.
fn batches(spec: &LiveSpec, index: usize, blocks: usize) -> Vec<Batch> {
    let mut live = Live::new(&demo_config(), spec).unwrap();
    (0..blocks).map(|_| live.next_batch(index)).collect()
}

fn index(name: &str) -> usize {
    demo_config()
        .services
        .iter()
        .position(|s| s.name == name)
        .unwrap()
}

fn candidate(batches: &[Batch]) -> Vec<Record> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .filter(|(s, _)| *s == Side::Candidate)
        .map(|(_, r)| r.clone())
        .collect()
}

fn baseline(batches: &[Batch]) -> Vec<Record> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .filter(|(s, _)| *s == Side::Baseline)
        .map(|(_, r)| r.clone())
        .collect()
}

fn rows(batches: &[Batch], candidate: bool) -> Vec<RowChange> {
    batches
        .iter()
        .flat_map(|b| {
            if candidate {
                b.candidate_rows.clone()
            } else {
                b.baseline_rows.clone()
            }
        })
        .collect()
}

/// The final table a list of changes leaves.
fn table(changes: &[RowChange]) -> BTreeMap<String, Value> {
    let mut t = BTreeMap::new();
    for c in changes {
        match c {
            RowChange::Upsert { key, doc, .. } => {
                t.insert(key.clone(), doc.clone());
            }
            RowChange::Delete { key } => {
                t.remove(key);
            }
        }
    }
    t
}

#[test]
fn same_seed_same_records_other_seed_other_records() {
    for name in ["orders", "payments", "inventory", "refunds"] {
        let i = index(name);
        let a = batches(&spec(7, &[]), i, 4);
        let b = batches(&spec(7, &[]), i, 4);
        let c = batches(&spec(8, &[]), i, 4);
        let records = |x: &[Batch]| x.iter().map(|b| b.records.clone()).collect::<Vec<_>>();
        assert_eq!(records(&a), records(&b), "{name}");
        assert_ne!(records(&a), records(&c), "{name}");
        assert_eq!(rows(&a, true), rows(&b, true), "{name}");
        assert!(a.iter().map(|b| b.baseline_events).sum::<u64>() > 0);
    }
}

#[test]
fn clean_sinks_end_with_equal_tables() {
    for name in ["orders", "payments", "inventory", "refunds"] {
        let b = batches(&spec(3, &[]), index(name), 6);
        let (base, cand) = (table(&rows(&b, false)), table(&rows(&b, true)));
        assert!(!base.is_empty(), "{name}");
        assert_eq!(base, cand, "{name}");
    }
}

#[test]
fn models_are_chosen_by_name_then_shape() {
    let config = demo_config();
    let kinds: Vec<ModelKind> = config.services.iter().map(ModelKind::for_service).collect();
    assert_eq!(
        kinds,
        [
            ModelKind::Orders,
            ModelKind::Payments,
            ModelKind::Inventory,
            ModelKind::Orders
        ]
    );
}

/// A drifting run and a clean run of the same seed, for `refunds` (or `service`).
fn pair(service: &str, kind: DriftKind) -> (Vec<Batch>, Vec<Batch>) {
    let i = index(service);
    (
        batches(&spec(11, &[]), i, 8),
        batches(&spec(11, &[(service, kind)]), i, 8),
    )
}

#[test]
fn dropped_removes_whole_keys_from_the_candidate_only() {
    let (clean, drifted) = pair("refunds", DriftKind::Dropped);
    assert_eq!(baseline(&clean), baseline(&drifted));
    let keys = |r: &[Record]| {
        r.iter()
            .filter_map(|r| r.key.clone())
            .collect::<BTreeSet<_>>()
    };
    let missing: Vec<_> = keys(&candidate(&clean))
        .difference(&keys(&candidate(&drifted)))
        .cloned()
        .collect();
    assert!(!missing.is_empty());
    assert!(keys(&candidate(&drifted)).is_subset(&keys(&candidate(&clean))));
    let cand = table(&rows(&drifted, true));
    assert!(missing.iter().all(|k| !cand.contains_key(k)));
}

#[test]
fn extra_adds_keys_the_source_never_had() {
    for service in ["refunds", "inventory"] {
        let (clean, drifted) = pair(service, DriftKind::Extra);
        assert_eq!(baseline(&clean), baseline(&drifted));
        assert!(candidate(&drifted).len() > candidate(&clean).len());
        let (base, cand) = (table(&rows(&drifted, false)), table(&rows(&drifted, true)));
        let extra: Vec<_> = cand.keys().filter(|k| !base.contains_key(*k)).collect();
        assert!(!extra.is_empty(), "{service}");
        assert!(
            extra.iter().all(|k| k.contains("extra-")),
            "{service}: {extra:?}"
        );
    }
}

#[test]
fn altered_changes_one_column_of_chosen_keys() {
    let (clean, drifted) = pair("payments", DriftKind::Altered);
    let (c, d) = (candidate(&clean), candidate(&drifted));
    assert_eq!(c.len(), d.len());
    let changed: Vec<_> = c.iter().zip(&d).filter(|(a, b)| a != b).collect();
    assert!(!changed.is_empty());
    for (_, b) in changed {
        assert!(b.payload.as_deref().is_some_and(|p| p.contains("~altered")));
    }
    let (base, cand) = (table(&rows(&drifted, false)), table(&rows(&drifted, true)));
    assert_eq!(base.len(), cand.len());
    assert!(base.iter().any(|(k, v)| cand.get(k) != Some(v)));
}

#[test]
fn sink_drift_leaves_the_streams_alone() {
    for kind in [DriftKind::SinkDropsDeletes, DriftKind::StaleUpdate] {
        let (clean, drifted) = pair("orders", kind);
        assert_eq!(candidate(&clean), candidate(&drifted), "{kind:?}");
        let (base, cand) = (table(&rows(&drifted, false)), table(&rows(&drifted, true)));
        assert_ne!(base, cand, "{kind:?}");
        if kind == DriftKind::SinkDropsDeletes {
            // Rows survive on the candidate only.
            assert!(cand.len() > base.len());
            assert!(base.iter().all(|(k, v)| cand.get(k) == Some(v)));
        } else {
            assert_eq!(
                base.keys().collect::<Vec<_>>(),
                cand.keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn slow_candidate_only_delays_delivery() {
    let (clean, drifted) = pair("orders", DriftKind::SlowCandidate);
    let (c, d) = (candidate(&clean), candidate(&drifted));
    assert_eq!(c.len(), d.len());
    for (a, b) in c.iter().zip(&d) {
        assert_eq!(b.timestamp_ms - a.timestamp_ms, SLOW_CANDIDATE_MS);
        assert_eq!(a.payload, b.payload);
    }
}

#[test]
fn drift_arguments_parse_and_errors_name_the_problem() {
    assert_eq!(
        parse_drift_arg("refunds=dropped, altered").unwrap(),
        (
            "refunds".into(),
            vec![DriftKind::Dropped, DriftKind::Altered]
        )
    );
    assert!(parse_drift_arg("refunds")
        .unwrap_err()
        .to_string()
        .contains("SERVICE=KIND"));
    assert!(parse_drift_arg("refunds=late")
        .unwrap_err()
        .to_string()
        .contains("`late`"));
    let err = Live::new(&demo_config(), &spec(1, &[("nope", DriftKind::Extra)])).unwrap_err();
    assert!(err.to_string().contains("`nope`"));
}
