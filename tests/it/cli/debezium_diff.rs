//! A Debezium SQL Server pipeline (Avro envelopes in the Confluent wire format, written by
//! fastavro, two schema ids) against a Bento substitute that polls the CDC table and writes JSON
//! (RPCN's `__$` columns): `envelope = "debezium"` takes content, operation and position from the
//! envelope, the candidate's composite position (`__$start_lsn`, `__$seqval`, `__$command_id`)
//! is the same number. The clean pair matches; a changed decimal, a missing delete and an event
//! dropped inside one transaction are found exactly, field diffs in Avro field names.

use crate::support::avro::fastavro_encode;
use crate::support::debezium::{cdc_row, envelope, envelope_v2, service, CHANGES, ENVELOPE};
use assert_cmd::Command;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;

fn line(topic: &str, offset: usize, value: Option<&str>) -> String {
    let mut l = json!({"topic": topic, "partition": 0, "offset": offset, "timestamp": 1_787_220_000_000i64 + offset as i64});
    if let Some(v) = value {
        l["value"] = json!(v);
    }
    l.to_string()
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Captures of both sides (the baseline's delete followed by its tombstone); `candidate_changes`
/// says which changes the candidate carries and may alter them.
fn run(dir: &Path, candidate_changes: Vec<Value>, code: i32) -> Value {
    let records: Vec<(u32, Value)> = CHANGES
        .iter()
        .enumerate()
        .map(|(i, c)| (if i < 3 { 1 } else { 2 }, envelope(*c)))
        .collect();
    let v2 = envelope_v2();
    let encoded = fastavro_encode(&[(1, ENVELOPE), (2, &v2)], &records);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut baseline: Vec<String> = encoded
        .iter()
        .enumerate()
        .map(|(i, bytes)| line("dbz.shop.dbo.orders", i, Some(&b64(bytes))))
        .collect();
    baseline.push(line("dbz.shop.dbo.orders", encoded.len(), None));
    let candidate: Vec<String> = candidate_changes
        .iter()
        .enumerate()
        .map(|(i, r)| line("bento.shop.dbo.orders", i, Some(&r.to_string())))
        .collect();
    let schemas = dir.join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(schemas.join("1.avsc"), ENVELOPE).unwrap();
    std::fs::write(schemas.join("2.avsc"), &v2).unwrap();
    let (b, c, config) = (
        dir.join("baseline.jsonl"),
        dir.join("candidate.jsonl"),
        dir.join("paritygate.toml"),
    );
    write(&b, &baseline);
    write(&c, &candidate);
    std::fs::write(&config, service("orders", "shop", "")).unwrap();
    let out = Command::cargo_bin("paritygate")
        .unwrap()
        .env_remove("PARITYGATE_CONFIG")
        .args(["diff", "--format", "json", "--config"])
        .arg(&config)
        .arg("--schemas")
        .arg(&schemas)
        .arg(&b)
        .arg(&c)
        .assert()
        .code(code);
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn a_debezium_avro_baseline_matches_its_bento_json_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(dir.path(), CHANGES.iter().map(|c| cdc_row(*c)).collect(), 0);
    let s = &report["services"][0];
    assert_eq!(s["keys"]["matched"], 3, "{s}");
    assert_eq!(s["keys"]["total"], 3, "{s}");
    assert_eq!(s["baseline"]["events"], 5, "{s}");
    assert_eq!(s["baseline"]["skipped"]["debezium_tombstone"], 1, "{s}");
    assert_eq!(
        s["baseline"]["by_operation"],
        json!({"insert": 3, "update": 1, "delete": 1}),
        "{s}"
    );
}

#[test]
fn a_changed_decimal_a_missing_delete_and_an_event_dropped_inside_a_transaction_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<Value> = CHANGES.iter().map(|c| cdc_row(*c)).collect();
    rows[3]["total"] = json!("30.01"); // id 3: another decimal
    rows.remove(4); // id 2: the delete never reached the candidate
    rows.remove(0); // id 1: its insert dropped inside transaction T1 (its update kept)
    let report = run(dir.path(), rows, 1);
    let s = &report["services"][0];
    assert_eq!(s["keys"]["mismatched"], 3, "{s}");
    assert_eq!(s["keys"]["matched"], 0, "{s}");
    let by_key: std::collections::BTreeMap<String, &Value> = s["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap().to_owned(), m))
        .collect();
    assert_eq!(
        by_key.keys().cloned().collect::<Vec<_>>(),
        ["1", "2", "3"],
        "{s}"
    );
    assert_eq!(by_key["3"]["fields"], json!(["/total"]), "{}", by_key["3"]);
    assert_eq!(
        s["candidate"]["by_operation"],
        json!({"insert": 2, "update": 1}),
        "{s}"
    );
}
