//! `paritygate diff --schemas DIR` on a Kafka Connect pair: the baseline's values are Avro in the
//! Confluent wire format (written by fastavro, under two schema ids over the run), the
//! candidate's are a Bento-substitute's JSON. The clean pair matches; a changed decimal is found
//! with its Avro field name; an unknown schema id and a truncated record are counted by reason.

use crate::support::avro::{fastavro_encode, ORDER_V1, ORDER_V2};
use assert_cmd::Command;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;

const CONFIG: &str = r#"
[[services]]
name = "orders"
baseline_topics = ["dbz.shop.dbo.orders"]
candidate_topics = ["bento.shop.dbo.orders"]
key = { from = "fields", pointers = ["/id"] }

[services.normalize]
decimals = "numeric"
timestamps = "instant"

[services.baseline]
payload = "avro"
"#;

/// The rows both runtimes carry: (id, total, at, note, status).
fn rows() -> Vec<Value> {
    (1..=6)
        .map(|id| {
            json!({
                "id": id,
                "total": format!("{}.{:02}", 10 + id, id * 7 % 100),
                "at": format!("2026-08-20T10:00:0{id}.123450+00:00"),
                "note": if id % 2 == 0 { Value::Null } else { json!(format!("note {id}")) },
                "status": if id % 3 == 0 { "NEW" } else { "PAID" },
            })
        })
        .collect()
}

/// An rpk capture line.
fn line(topic: &str, offset: usize, value: &str) -> String {
    json!({"topic": topic, "partition": 0, "offset": offset, "timestamp": 1_787_220_000_000i64 + offset as i64, "value": value})
        .to_string()
}

/// The baseline capture: rows 1–3 under schema 1, 4–6 under schema 2, then `extra` raw records
/// (base64 values as `rpk topic consume -f '%v{base64}'` writes them).
fn baseline(dir: &Path, extra: &[Vec<u8>]) -> std::path::PathBuf {
    let records: Vec<(u32, Value)> = rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| (if i < 3 { 1 } else { 2 }, r))
        .collect();
    let encoded = fastavro_encode(&[(1, ORDER_V1), (2, ORDER_V2)], &records);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let lines: Vec<String> = encoded
        .iter()
        .chain(extra)
        .enumerate()
        .map(|(i, bytes)| line("dbz.shop.dbo.orders", i, &b64(bytes)))
        .collect();
    let path = dir.join("baseline.rpk.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// The candidate capture: the same rows as the Bento substitute writes them (decimals as text,
/// timestamps with another offset spelling); `drift` changes row 3's total.
fn candidate(dir: &Path, drift: bool) -> std::path::PathBuf {
    let lines: Vec<String> = rows()
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            if drift && r["id"] == 3 {
                r["total"] = json!("13.22");
            }
            let at = r["at"]
                .as_str()
                .unwrap()
                .replace("10:00", "12:00")
                .replace("+00:00", "+02:00");
            r["at"] = json!(at);
            line("bento.shop.dbo.orders", i, &r.to_string())
        })
        .collect();
    let path = dir.join("candidate.rpk.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn schemas_dir(dir: &Path) -> std::path::PathBuf {
    let schemas = dir.join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(schemas.join("1.avsc"), ORDER_V1).unwrap();
    std::fs::write(schemas.join("2.avsc"), ORDER_V2).unwrap();
    schemas
}

fn diff(dir: &Path, files: &[&Path], code: i32) -> Value {
    let config = dir.join("paritygate.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::cargo_bin("paritygate")
        .unwrap()
        .env_remove("PARITYGATE_CONFIG")
        .args(["diff", "--format", "json", "--config"])
        .arg(&config)
        .arg("--schemas")
        .arg(schemas_dir(dir))
        .args(files)
        .assert()
        .code(code);
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn orders(report: &Value) -> &Value {
    &report["services"][0]
}

#[test]
fn a_clean_avro_baseline_matches_a_json_candidate_across_two_schema_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = (baseline(dir.path(), &[]), candidate(dir.path(), false));
    let report = diff(dir.path(), &[&b, &c], 0);
    let s = orders(&report);
    assert_eq!(s["keys"]["matched"], 6, "{s}");
    assert_eq!(s["keys"]["total"], 6, "{s}");
    assert_eq!(s["baseline"]["events"], 6, "{s}");
    assert_eq!(s["baseline"]["unparseable"], 0, "{s}");
}

#[test]
fn a_changed_decimal_is_found_by_its_avro_field_and_bad_records_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    // An id no schema file has, and a record cut short.
    let unknown = fastavro_encode(&[(99, ORDER_V1)], &[(99, rows()[0].clone())]);
    let mut truncated = fastavro_encode(&[(1, ORDER_V1)], &[(1, rows()[1].clone())]);
    truncated[0].truncate(9);
    let extra = [unknown[0].clone(), truncated[0].clone()];
    let (b, c) = (baseline(dir.path(), &extra), candidate(dir.path(), true));
    let report = diff(dir.path(), &[&b, &c], 1);
    let s = orders(&report);
    assert_eq!(s["keys"]["mismatched"], 1, "{s}");
    assert_eq!(s["keys"]["matched"], 5, "{s}");
    let mismatch = &s["mismatches"][0];
    assert_eq!(mismatch["key"], "3", "{mismatch}");
    assert_eq!(mismatch["fields"], json!(["/total"]), "{mismatch}");
    assert_eq!(s["baseline"]["unparseable"], 2, "{s}");
    assert_eq!(
        s["baseline"]["unparseable_by_reason"],
        json!({"unknown_schema": 1, "undecodable": 1}),
        "{s}"
    );
}
