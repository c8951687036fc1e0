//! Unit tests of the generator: determinism, the two capture line shapes, Go escaping, formats and
//! manifest consistency.

use super::capture::{write_line, Format, HeaderValue, Record};
use super::json::{
    decimal_padded, decimal_unpadded, go_float, timestamp, write_str, Style, DATETIME2,
    RFC3339_NANO,
};
use super::*;
use serde_json::Value;

fn read(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
        out
    } else {
        raw
    }
}

fn small(drift: bool) -> PairSpec {
    PairSpec {
        gzip_candidate: drift,
        ..PairSpec::new(7, 120, drift)
    }
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let spec = small(true);
    let ma = write_pair(a.path(), &spec).unwrap();
    let mb = write_pair(b.path(), &spec).unwrap();
    write_pair(
        c.path(),
        &PairSpec {
            seed: 8,
            ..spec.clone()
        },
    )
    .unwrap();
    assert_eq!(ma, mb);
    for name in [
        "baseline.kcat.jsonl",
        "candidate.rpk.jsonl.gz",
        "expected.json",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
            "{name}"
        );
    }
    assert_ne!(
        read(&a.path().join("baseline.kcat.jsonl")),
        read(&c.path().join("baseline.kcat.jsonl"))
    );
}

fn lines(path: &Path) -> Vec<serde_json::Map<String, Value>> {
    String::from_utf8(read(path))
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

#[test]
fn kcat_lines_have_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &small(false)).unwrap();
    let all = lines(&dir.path().join("baseline.kcat.jsonl"));
    assert!(all.len() > 300);
    let (mut markers, mut binary_lsn) = (0, 0);
    for m in &all {
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        for required in [
            "topic",
            "partition",
            "offset",
            "tstype",
            "ts",
            "broker",
            "key",
            "payload",
        ] {
            assert!(names.contains(&required), "{required} missing in {m:?}");
        }
        assert!(m["key"].is_string() || m["key"].is_null());
        assert!(m["payload"].is_string() || m["payload"].is_null());
        match m.get("headers") {
            // A flat [name, value, …] array, present only when there are headers.
            Some(Value::Array(h)) => {
                assert!(!h.is_empty() && h.len() % 2 == 0 && h.iter().all(Value::is_string))
            }
            Some(other) => panic!("headers not an array: {other}"),
            None => assert_eq!(m["topic"], "dev.acme.public.inventory"),
        }
        if m["payload"].is_null() {
            markers += 1;
        }
        if let Some(Value::Array(h)) = m.get("headers") {
            if let Some(i) = h.iter().position(|v| v == "lsn") {
                let v = h[i + 1].as_str().unwrap();
                if m["topic"] == "dev.acme.dbo.payments" {
                    // Ten raw bytes, one char each, round-tripping to the candidate's hex spelling.
                    assert_eq!(v.chars().count(), 10);
                    assert!(v.chars().all(|c| (c as u32) < 0x100));
                    binary_lsn += 1;
                } else {
                    assert!(v.len() == 17 && v.as_bytes()[8] == b'/', "padded lsn {v}");
                }
            }
        }
    }
    assert!(markers > 0 && binary_lsn > 0);
}

#[test]
fn rpk_lines_have_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path(), &small(true)).unwrap();
    let all = lines(&dir.path().join("candidate.rpk.jsonl.gz"));
    let mut keyless = 0;
    for m in &all {
        for required in ["topic", "timestamp", "partition", "offset"] {
            assert!(m.contains_key(required), "{required} missing in {m:?}");
        }
        assert!(!m.contains_key("payload") && !m.contains_key("ts"));
        match m.get("key") {
            None => keyless += 1,
            Some(k) => assert!(k.as_str().is_some_and(|k| !k.is_empty())),
        }
        for h in m.get("headers").and_then(Value::as_array).unwrap() {
            let h = h.as_object().unwrap();
            assert_eq!(h.keys().collect::<Vec<_>>(), ["key", "value"]);
        }
        assert!(m["topic"].as_str().unwrap().starts_with("bento."));
    }
    assert!(keyless > 0, "inventory has nil keys on the candidate");
}

#[test]
fn rpk_omits_empty_key_value_and_headers() {
    let r = Record {
        topic: "t",
        partition: 1,
        timestamp_ms: 5,
        headers: vec![],
        key: None,
        payload: None,
        service: None,
        avro: None,
    };
    let mut out = String::new();
    write_line(&mut out, &r, 9, Format::Rpk);
    assert_eq!(
        out,
        "{\"topic\":\"t\",\"timestamp\":5,\"partition\":1,\"offset\":9}\n"
    );
    out.clear();
    write_line(&mut out, &r, 9, Format::Kcat);
    assert_eq!(out, "{\"topic\":\"t\",\"partition\":1,\"offset\":9,\"tstype\":\"create\",\"ts\":5,\"broker\":2,\"key\":null,\"payload\":null}\n");
    let bin = Record {
        headers: vec![("lsn", HeaderValue::Binary(vec![0, 0x2A, 0xF0]))],
        ..r
    };
    out.clear();
    write_line(&mut out, &bin, 1, Format::Kcat);
    assert!(
        out.contains("\"headers\":[\"lsn\",\"\\u0000*\u{f0}\"]"),
        "{out}"
    );
}

#[test]
fn go_escaping_and_number_formats() {
    let mut go = String::new();
    write_str(&mut go, "<b>a & b</b>\n\u{2028}é", Style::Go);
    assert_eq!(go, r#""\u003cb\u003ea \u0026 b\u003c/b\u003e\n\u2028é""#);
    let mut bento = String::new();
    write_str(&mut bento, "<b>a & b</b>", Style::Bento);
    assert_eq!(bento, r#""<b>a & b</b>""#);
    assert_eq!(go_float("12345678901234567891"), "12345678901234567000");
    assert_eq!(go_float("19.50"), "19.5");
    assert_eq!(go_float("1e21"), "1e+21");
    assert_eq!(go_float("0.0000001"), "1e-07");
    assert_eq!(decimal_padded(105_000, 2), "1050.00");
    assert_eq!(decimal_unpadded(105_000, 2), "1050");
    assert_eq!(decimal_unpadded(105_050, 2), "1050.5");
    assert_eq!(decimal_padded(-5, 2), "-0.05");
    let t = 1_787_221_730_120_000_000; // 2026-08-20T10:28:50.12Z
    assert_eq!(timestamp(t, RFC3339_NANO), "2026-08-20T10:28:50.12Z");
    assert_eq!(timestamp(t, DATETIME2), "2026-08-20T10:28:50.1200000");
}

#[test]
fn partitioners_mostly_agree() {
    // Kafka's murmur2 reference values (from the Java client's tests).
    assert_eq!(murmur2(b"21") as i32, -973_932_308);
    assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
    assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    let keys: Vec<String> = (1000..3000).map(|i| i.to_string()).collect();
    let differ = keys
        .iter()
        .filter(|k| baseline_partition(k) != candidate_partition(k))
        .count();
    assert!(differ > 0 && differ < keys.len() / 10, "{differ}");
}

#[test]
fn manifest_is_consistent_with_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_pair(dir.path(), &small(true)).unwrap();
    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(dir.path().join("expected.json")).unwrap()).unwrap();
    assert_eq!(on_disk, m);
    let base = lines(&dir.path().join("baseline.kcat.jsonl"));
    let cand = lines(&dir.path().join("candidate.rpk.jsonl.gz"));
    let count = |all: &[serde_json::Map<String, Value>], topic: &str, data: bool| {
        all.iter()
            .filter(|l| {
                l["topic"] == topic && (!data || l.get("payload").is_none_or(|p| !p.is_null()))
            })
            .count() as u64
    };
    for (name, s) in &m.services {
        assert_eq!(
            s.baseline.events + s.baseline.duplicates,
            s.baseline.records,
            "{name}"
        );
        assert_eq!(
            count(&base, &s.baseline_topic, true),
            s.baseline.records,
            "{name}"
        );
        assert_eq!(
            count(&base, &s.baseline_topic, false),
            s.baseline.records + s.baseline.transaction_markers,
            "{name}"
        );
        assert_eq!(
            count(&cand, &s.candidate_topic, false),
            s.candidate.records,
            "{name}"
        );
        assert!(s.baseline.events >= 120, "{name}");
    }
    let reasons: Vec<&str> = m
        .services
        .values()
        .flat_map(|s| s.mismatched.iter().map(|k| k.reason.as_str()))
        .collect();
    for want in [
        "dropped_update",
        "extra_event",
        "operation_changed",
        "decimal_differs",
        "jsonb_big_integer_precision",
        "timestamp_instant",
        "delete_dropped",
        "amount_altered",
        "out_of_order_final_state",
    ] {
        assert!(reasons.contains(&want), "{want}");
    }
    assert!(m
        .services
        .values()
        .all(|s| s.missing_in_candidate.len() == 1 && s.extra_in_candidate.len() == 1));
    assert_eq!(
        m.ignored_topics.values().sum::<u64>(),
        count(&base, "dev.acme.public.audit_log", false) * 2
    );
    let clean = write_pair(dir.path(), &small(false)).unwrap();
    assert_eq!(clean.drift_keys(), 0);
}

/// The `shipments` drift key that loses an update loses one that shares its SQL Server
/// transaction (its `commit_lsn`) with another change: the case a one-field position cannot tell.
#[test]
fn shipments_drops_an_update_inside_a_shared_transaction() {
    use super::model::ServiceModel;
    let mut model = super::shipments::Shipments::new(0);
    let mut rng = rng::Rng::new(20_260_823);
    // Ordinal 21 (the dropped update) is in the second block of 16 keys.
    let _ = model.next_block(&mut rng, true);
    let block = model.next_block(&mut rng, true);
    let key = block
        .keys
        .iter()
        .find(|k| k.drift == Some(model::Drift::DroppedUpdate))
        .expect("the drift key")
        .key
        .clone();
    let json =
        |r: &Record| -> Value { serde_json::from_str(r.payload.as_deref().unwrap()).unwrap() };
    let id_of = |v: &Value| v["after"]["shipment_id"].clone();
    let baseline: Vec<Value> = block
        .baseline
        .iter()
        .filter(|r| r.avro.is_some())
        .map(json)
        .collect();
    let candidate_lsns: Vec<String> = block
        .candidate
        .iter()
        .map(json)
        .filter(|v| v["shipment_id"] == key.parse::<i64>().unwrap())
        .map(|v| {
            v["__$start_lsn"]
                .as_str()
                .unwrap()
                .replace("0x", "")
                .to_lowercase()
        })
        .collect();
    let lost: Vec<&Value> = baseline
        .iter()
        .filter(|v| id_of(v) == key.parse::<i64>().unwrap() && v["op"] == "u")
        .filter(|v| {
            let lsn = v["source"]["commit_lsn"].as_str().unwrap().replace(':', "");
            !candidate_lsns.contains(&lsn)
        })
        .collect();
    assert_eq!(lost.len(), 1, "one update of {key} lost: {lost:?}");
    let commit = &lost[0]["source"]["commit_lsn"];
    let shared = baseline
        .iter()
        .filter(|v| &v["source"]["commit_lsn"] == commit)
        .count();
    assert!(
        shared > 1,
        "the lost update's transaction {commit} holds {shared} change(s)"
    );
    // Its Avro datum carries the same record as its JSON form, by schema 1 or 2.
    assert!(block
        .baseline
        .iter()
        .all(|r| r.avro.as_ref().is_none_or(|a| a.schema < 2)));
}
