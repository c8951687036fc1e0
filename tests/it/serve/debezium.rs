//! `serve` on Kafka Connect pairs over the real broker: the baselines are Debezium SQL Server
//! envelopes in Avro (fastavro, two schema ids, fetched from the harness's Schema Registry), a
//! tombstone after the delete; the candidates are Bento JSON rows of the change table. The clean
//! pair matches key for key and its key parity passes; on the drift pair a changed decimal, a
//! missing delete and an event dropped inside one SQL Server transaction are found exactly, the
//! field diff named by its Avro field — the same outcome `diff` gives (`cli::debezium_diff`).

use crate::support::app::{AppConfig, InProcess};
use crate::support::avro::{fastavro_encode, TestRegistry};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::debezium::{
    cdc_row, envelope, envelope_v2, service, Change, CHANGES, ENVELOPE,
};
use crate::support::http::criterion;
use crate::support::wait_until;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// A later change (key 9) on both sides, so the watermarks pass the others' grace and they settle.
const TICK: Change = (
    "0000002b:00000f00:0001",
    "0000002b:00000ef0:0002",
    "c",
    9,
    "90.00",
    "new",
);
const BASE_MS: i64 = 1_787_220_000_000;

fn services(registry: &str) -> String {
    let service = |name: &str| service(name, name, "window_seconds = 1\ngrace_seconds = 2\n");
    format!(
        "{}{}\n[schema_registry]\nurl = \"{registry}\"\n",
        service("clean"),
        service("drift")
    )
}

fn record(topic: String, i: usize, key: i64, payload: Option<Vec<u8>>, at: i64) -> Record {
    Record {
        topic,
        partition: 0,
        key: Some(key.to_string().into_bytes()),
        headers: Vec::new(),
        payload,
        timestamp_ms: Some(at + i as i64),
    }
}

/// The baseline of `service`: the changes (the first three under schema `v1`, the rest `v2`), a
/// tombstone after the delete, then the tick.
fn baseline(service: &str, (v1, v2): (u32, u32), v2_text: &str) -> Vec<Record> {
    let topic = format!("dbz.{service}.dbo.orders");
    let changes: Vec<Change> = CHANGES.iter().copied().chain([TICK]).collect();
    let data: Vec<(u32, Value)> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (if i < 3 { v1 } else { v2 }, envelope(*c)))
        .collect();
    let encoded = fastavro_encode(&[(v1, ENVELOPE), (v2, v2_text)], &data);
    let mut out = Vec::new();
    for (i, (bytes, change)) in encoded.into_iter().zip(&changes).enumerate() {
        let at = if change.3 == TICK.3 {
            BASE_MS + 60_000
        } else {
            BASE_MS
        };
        out.push(record(topic.clone(), i * 100, change.3, Some(bytes), at));
        if change.2 == "d" {
            out.push(record(topic.clone(), i * 100 + 1, change.3, None, at));
        }
    }
    out
}

/// The candidate of `service`: the change-table rows `rows`, then the tick.
fn candidate(service: &str, rows: Vec<Value>) -> Vec<Record> {
    let topic = format!("bento.{service}.dbo.orders");
    rows.into_iter()
        .chain([cdc_row(TICK)])
        .enumerate()
        .map(|(i, row)| {
            let id = row["id"].as_i64().unwrap();
            let at = if id == TICK.3 {
                BASE_MS + 61_000
            } else {
                BASE_MS + 1_000
            };
            record(
                topic.clone(),
                i * 100,
                id,
                Some(row.to_string().into_bytes()),
                at,
            )
        })
        .collect()
}

fn settled(status: &Value) -> u64 {
    ["missing_in_candidate", "extra_in_candidate", "mismatched"]
        .iter()
        .map(|k| status["keys"]["settled"][k].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_avro_baseline_is_refereed_against_bento_json() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for service in ["clean", "drift"] {
        broker
            .create_topic(&format!("dbz.{service}.dbo.orders"), 1)
            .await;
        broker
            .create_topic(&format!("bento.{service}.dbo.orders"), 1)
            .await;
    }
    let registry = TestRegistry::start().await;
    let v2_text = envelope_v2();
    let mut ids = Vec::new();
    for service in ["clean", "drift"] {
        let subject = format!("dbz.{service}.dbo.orders-value");
        ids.push((
            registry.register(&subject, ENVELOPE).await,
            registry.register(&subject, &v2_text).await,
        ));
    }
    assert_ne!(ids[0].0, ids[0].1, "two schema ids over the run");
    let db = TestDb::create().await;
    let app = InProcess::start(
        AppConfig::with_services(&services(&registry.url()), &broker, &db).config(),
    )
    .await;

    let mut drifted: Vec<Value> = CHANGES.iter().map(|c| cdc_row(*c)).collect();
    drifted[3]["total"] = json!("30.01"); // id 3: another decimal
    drifted.remove(4); // id 2: the delete never reached the candidate
    drifted.remove(0); // id 1: its insert dropped inside transaction T1 (its update kept)
    let mut records = baseline("clean", ids[0], &v2_text);
    records.extend(baseline("drift", ids[1], &v2_text));
    records.extend(candidate(
        "clean",
        CHANGES.iter().map(|c| cdc_row(*c)).collect(),
    ));
    records.extend(candidate("drift", drifted));
    broker.produce_all(&records, Batching::OnePerRecord).await;

    let (clean, drift) = wait_until(
        "both services compared and settled",
        Duration::from_secs(60),
        || async {
            let clean = app.api.service("clean").await?;
            let drift = app.api.service("drift").await?;
            if clean["keys"]["matched"] == 4 && settled(&drift) == 3 {
                Ok((clean, drift))
            } else {
                Err(json!({"clean": clean["keys"], "drift": drift["keys"]}).to_string())
            }
        },
    )
    .await;
    for s in [&clean, &drift] {
        assert_eq!(s["baseline"]["unparseable"], 0, "{s}");
        assert_eq!(s["baseline"]["events"], 6, "five changes and the tick: {s}");
    }
    assert_eq!(clean["keys"]["total"], 4, "{clean}");
    assert_eq!(settled(&clean), 0, "{clean}");

    // Exactly the planted keys, the decimal's diff in the Avro field's name.
    let mismatched = app.api.mismatches("drift", "mismatched").await.unwrap();
    let keys: BTreeSet<&str> = mismatched
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, BTreeSet::from(["1", "2", "3"]), "{mismatched:?}");
    let three = mismatched.iter().find(|m| m["key"] == "3").unwrap();
    assert_eq!(
        three["fields"],
        // Canonical values (`decimals = "numeric"`): the Avro decimal and the JSON string alike.
        json!([{"pointer": "/total", "baseline": 30, "candidate": 30.01}]),
        "{three}"
    );
    let two = mismatched.iter().find(|m| m["key"] == "2").unwrap();
    assert_eq!(two["baseline"]["deleted"], true, "{two}");
    assert_eq!(two["candidate"]["deleted"], false, "{two}");
    for kind in ["missing_in_candidate", "extra_in_candidate"] {
        assert_eq!(
            app.api.mismatches("drift", kind).await.unwrap(),
            Vec::<Value>::new()
        );
    }

    // The drift fails its key parity; the clean pair's key parity holds.
    let gate = app
        .api
        .gate_when("drift", "the drift gate fails", |g| g["verdict"] == "fail")
        .await;
    assert_eq!(criterion(&gate, "key_parity")["status"], "fail", "{gate}");
    let clean_gate = app.api.gate("clean").await.unwrap();
    assert_eq!(
        criterion(&clean_gate, "key_parity")["status"],
        "pass",
        "{clean_gate}"
    );
    assert_ne!(clean_gate["verdict"], "fail", "{clean_gate}");
    app.stop().await;
}
