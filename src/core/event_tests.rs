//! Extraction: keys, operations, positions, digests, rejections.

use super::*;
use crate::config::model::ServiceConfig;
use crate::core::plan::ServicePlan;
use std::borrow::Cow;

fn plan(extra: &str) -> ServicePlan {
    let text = format!(
        r#"name = "orders"
baseline_topics = ["b"]
candidate_topics = ["c"]
{extra}"#
    );
    let cfg: ServiceConfig = toml::from_str(&text).unwrap();
    crate::config::plan::compile(&cfg, std::path::Path::new(".")).unwrap()
}

fn record<'a>(
    key: Option<&'a str>,
    payload: Option<&'a str>,
    headers: &[(&'a str, &'a str)],
) -> RecordView<'a> {
    RecordView {
        topic: Cow::Borrowed("b"),
        key: key.map(|k| Cow::Borrowed(k.as_bytes())),
        payload: payload.map(|p| Cow::Borrowed(p.as_bytes())),
        headers: headers
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Some(Cow::Borrowed(v.as_bytes()))))
            .collect(),
        ..RecordView::default()
    }
}

fn event(plan: &SidePlan, r: &RecordView<'_>) -> Event {
    match extract(plan, r, Keep::Content) {
        Outcome::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

const PG: &str = r#"position = { header = "lsn" }
operation = { header = "operation" }
compare_headers = ["operation"]
[normalize]
decimals = "numeric"
timestamps = "instant"
null_equals_missing = true
ignore_fields = ["/__sync_timestamp"]"#;

#[test]
fn benign_noise_gives_one_digest() {
    let p = plan(PG);
    let a = record(
        Some("42"),
        Some(
            r#"{"amount":"1050.00","at":"2026-08-20T10:15:30.12Z","note":"\u003cb\u003e","x":null}"#,
        ),
        &[
            ("operation", "update"),
            ("lsn", "00000001/6B374D48"),
            ("kafka_key", "42"),
        ],
    );
    let b = record(
        Some("42"),
        Some(
            r#"{ "note": "<b>", "at": "2026-08-20T12:15:30.1200+02:00", "amount": 1050, "__sync_timestamp": 5 }"#,
        ),
        &[
            ("kafka_topic", "x"),
            ("lsn", "1/6B374D48"),
            ("operation", "update"),
        ],
    );
    let (ea, eb) = (event(&p.baseline, &a), event(&p.candidate, &b));
    assert_eq!(ea.digest, eb.digest);
    assert_eq!(ea.position, Some(0x1_6B37_4D48));
    assert_eq!(ea.operation, Operation::Update);
    assert_eq!(ea.key, b"42");
}

#[test]
fn real_differences_change_the_digest() {
    let p = plan(PG);
    let base = event(
        &p.baseline,
        &record(
            Some("1"),
            Some(r#"{"a":"1050.00"}"#),
            &[("operation", "update"), ("lsn", "0/1")],
        ),
    );
    for (payload, op) in [
        (r#"{"a":"1050.01"}"#, "update"),
        (r#"{"a":"1050.00","b":1}"#, "update"),
        (r#"{"a":"1050.00"}"#, "delete"),
    ] {
        let other = event(
            &p.baseline,
            &record(
                Some("1"),
                Some(payload),
                &[("operation", op), ("lsn", "0/1")],
            ),
        );
        assert_ne!(base.digest, other.digest, "{payload} {op}");
    }
}

#[test]
fn rejections_and_skips() {
    let p = plan(PG);
    let cases = [
        (
            record(None, Some("{}"), &[("operation", "insert"), ("lsn", "0/1")]),
            "missing_key",
        ),
        (
            record(
                Some("null"),
                Some("{}"),
                &[("operation", "insert"), ("lsn", "0/1")],
            ),
            "missing_key",
        ),
        (
            record(Some("1"), Some("{}"), &[("operation", "insert")]),
            "missing_position",
        ),
        (
            record(Some("1"), Some("{}"), &[("lsn", "0/1")]),
            "missing_operation",
        ),
        (
            record(
                Some("1"),
                Some("{}"),
                &[("operation", "merge"), ("lsn", "0/1")],
            ),
            "unknown_operation",
        ),
    ];
    for (r, want) in cases {
        match extract(&p.baseline, &r, Keep::Digest) {
            Outcome::Rejected(reason) => assert_eq!(reason.as_str(), want),
            other => panic!("{want}: got {other:?}"),
        }
    }
    let marker = record(Some("1"), None, &[("operation", "commit")]);
    assert!(matches!(
        extract(&p.baseline, &marker, Keep::Digest),
        Outcome::Skipped(Skip::TransactionMarker)
    ));
}

#[test]
fn composite_field_keys_and_json_message_keys() {
    let p = plan(r#"key = { from = "fields", pointers = ["/tenant", "/sku"] }"#);
    let e = event(
        &p.baseline,
        &record(None, Some(r#"{"tenant":"acme","sku":7}"#), &[]),
    );
    assert_eq!(e.key, br#"["acme",7]"#);
    assert_eq!(e.operation, Operation::Change);
    let p = plan("");
    let a = event(
        &p.baseline,
        &record(Some(r#"{"id": 42, "t":"x"}"#), Some("{}"), &[]),
    );
    let b = event(
        &p.baseline,
        &record(Some(r#"{"t":"x","id":42.0}"#), Some("{}"), &[]),
    );
    assert_eq!(a.key, b.key);
}

#[test]
fn tombstones_and_raw_bytes() {
    let p = plan("");
    let t = event(&p.baseline, &record(Some("1"), None, &[]));
    assert_eq!(t.operation, Operation::Delete);
    assert_eq!(t.content.map(|c| c.0), Some(Content::Tombstone));
    let raw = event(&p.baseline, &record(Some("1"), Some("not json"), &[]));
    let raw2 = event(&p.baseline, &record(Some("1"), Some("not json "), &[]));
    assert_ne!(raw.digest, raw2.digest);
}

#[test]
fn sql_server_sides_meet() {
    let p = plan(
        r#"key = { from = "fields", pointers = ["/id"] }
position = { header = "lsn" }
operation = { header = "operation" }
[normalize]
ignore_fields = ["/__$operation", "/__$start_lsn"]
snapshot_read_as_insert = true
[candidate]
position = { pointer = "/__$start_lsn" }
operation = { pointer = "/__$operation" }"#,
    );
    let lsn: String = [0u8, 0, 0, 0x2A, 0, 0, 1, 0xF0, 0, 3]
        .iter()
        .map(|&b| char::from(b))
        .collect();
    let b = event(
        &p.baseline,
        &record(
            None,
            Some(r#"{"id":5,"v":"x"}"#),
            &[("operation", "update_after"), ("lsn", &lsn)],
        ),
    );
    let c = event(
        &p.candidate,
        &record(
            None,
            Some(r#"{"__$operation":4,"__$start_lsn":"0x0000002A000001F00003","id":5,"v":"x"}"#),
            &[],
        ),
    );
    assert_eq!(
        (b.key.clone(), b.operation, b.position, b.digest),
        (c.key, c.operation, c.position, c.digest)
    );
    let read = event(
        &p.baseline,
        &record(
            None,
            Some(r#"{"id":5}"#),
            &[("operation", "read"), ("lsn", "0x1")],
        ),
    );
    assert_eq!(read.operation, Operation::Insert);
}

#[test]
fn a_composite_position_tells_the_changes_of_one_transaction_apart() {
    // RPCN's SQL Server CDC columns: the transaction's commit LSN, the change's sequence, the
    // command id. One position field (the commit LSN) would give both changes one position.
    let p = plan(
        r#"key = { from = "fields", pointers = ["/id"] }
position = { pointers = ["/__$start_lsn", "/__$seqval", "/__$command_id"] }"#,
    );
    let change = |seqval: &str, total: u32| {
        format!(
            r#"{{"id": 1, "total": {total}, "__$start_lsn": "0x0000002B00000B280002", "__$seqval": "{seqval}", "__$command_id": 1}}"#
        )
    };
    let (first, second) = (
        change("0x0000002B00000A000001", 10),
        change("0x0000002B00000A100003", 11),
    );
    let a = event(&p.baseline, &record(None, Some(&first), &[]));
    let b = event(&p.baseline, &record(None, Some(&second), &[]));
    assert!(a.position < b.position, "{:?} {:?}", a.position, b.position);
    // A part missing: the record has no usable position.
    let missing = r#"{"id": 1, "__$start_lsn": "0x0000002B00000B280002", "__$command_id": 1}"#;
    assert!(matches!(
        extract(&p.baseline, &record(None, Some(missing), &[]), Keep::Digest),
        Outcome::Rejected(Reject::MissingPosition)
    ));
    // `header` with `headers`: refused, naming the field.
    let text = r#"name = "o"
baseline_topics = ["b"]
candidate_topics = ["c"]
position = { header = "lsn", headers = ["a", "b"] }"#;
    let cfg: ServiceConfig = toml::from_str(text).unwrap();
    let err = crate::config::plan::compile(&cfg, std::path::Path::new(".")).unwrap_err();
    assert_eq!(err.field, "position", "{err}");
}
