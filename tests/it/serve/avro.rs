//! `serve` on a Kafka Connect pair over the real broker: the baseline's values are Avro in the
//! Confluent wire format (fastavro, two schema ids), its schemas fetched from a Schema Registry
//! (the harness's, registered through its POST endpoint as producers do); the candidate writes
//! JSON. Records that cannot be decoded (registry down, an unknown id, a truncated record) are
//! counted by reason and never block the partition; a registry that comes back is used again.

use crate::support::app::{AppConfig, InProcess};
use crate::support::avro::{fastavro_encode, TestRegistry, ORDER_V1, ORDER_V2};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::Api;
use crate::support::wait_until;
use serde_json::{json, Value};
use std::time::Duration;

const BASELINE: &str = "dbz.shop.dbo.orders";
const CANDIDATE: &str = "bento.shop.dbo.orders";

fn services(registry: &str) -> String {
    format!(
        r#"
[[services]]
name = "orders"
baseline_topics = ["{BASELINE}"]
candidate_topics = ["{CANDIDATE}"]
key = {{ from = "fields", pointers = ["/id"] }}

[services.normalize]
decimals = "numeric"
timestamps = "instant"

[services.baseline]
payload = "avro"

[schema_registry]
url = "{registry}"
"#
    )
}

fn row(id: i64) -> Value {
    json!({
        "id": id,
        "total": format!("{}.{:02}", 10 + id, id * 7 % 100),
        "at": format!("2026-08-20T10:{:02}:{:02}.123450+00:00", id / 60, id % 60),
        "note": if id % 2 == 0 { Value::Null } else { json!(format!("note {id}")) },
        "status": if id % 3 == 0 { "NEW" } else { "PAID" },
    })
}

fn record(topic: &str, offset_hint: i64, payload: Vec<u8>) -> Record {
    Record {
        topic: topic.to_owned(),
        partition: 0,
        key: Some(offset_hint.to_string().into_bytes()),
        headers: Vec::new(),
        payload: Some(payload),
        timestamp_ms: Some(1_787_220_000_000 + offset_hint),
    }
}

/// The candidate's JSON for rows `ids`.
fn candidate(ids: std::ops::RangeInclusive<i64>) -> Vec<Record> {
    ids.map(|id| record(CANDIDATE, id, row(id).to_string().into_bytes()))
        .collect()
}

/// Wait (`limit` at most) until the status of `orders` is `done`; the status.
async fn wait_status(
    api: &Api,
    (what, limit): (&str, Duration),
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_until(what, limit, || async {
        let status = api.service("orders").await?;
        if done(&status) {
            Ok(status)
        } else {
            Err(format!(
                "{}",
                json!({"keys": status["keys"], "baseline": status["baseline"]})
            ))
        }
    })
    .await
}

async fn baseline_counts(api: &Api) -> Result<Value, String> {
    Ok(api.service("orders").await?["baseline"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avro_baseline_is_compared_with_a_json_candidate_through_a_schema_registry() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    broker.create_topic(BASELINE, 1).await;
    broker.create_topic(CANDIDATE, 1).await;
    let registry = TestRegistry::start().await;
    let subject = format!("{BASELINE}-value");
    let (v1, v2) = (
        registry.register(&subject, ORDER_V1).await,
        registry.register(&subject, ORDER_V2).await,
    );
    // A third registration, fetched only while the registry is down.
    let v3_text = ORDER_V1.replace(r#""name": "Value","#, r#""name": "Value", "doc": "v3","#);
    let v3 = registry.register(&subject, &v3_text).await;
    let schemas = [(v1, ORDER_V1), (v2, ORDER_V2), (v3, v3_text.as_str())];
    let db = TestDb::create().await;
    let app = InProcess::start(
        AppConfig::with_services(&services(&registry.url()), &broker, &db).config(),
    )
    .await;

    // Rows 1–6: three per schema id, and the candidate's JSON of the same rows.
    let first: Vec<(u32, Value)> = (1..=6)
        .map(|id| (if id <= 3 { v1 } else { v2 }, row(id)))
        .collect();
    let mut records: Vec<Record> = fastavro_encode(&schemas, &first)
        .into_iter()
        .zip(1..)
        .map(|(bytes, id)| record(BASELINE, id, bytes))
        .collect();
    // An id the registry does not know, and a record cut short.
    let unknown = fastavro_encode(&[(77, ORDER_V1)], &[(77, row(90))]);
    let mut cut = fastavro_encode(&schemas, &[(v1, row(91))]);
    cut[0].truncate(8);
    records.push(record(BASELINE, 90, unknown[0].clone()));
    records.push(record(BASELINE, 91, cut[0].clone()));
    records.extend(candidate(1..=6));
    broker.produce_all(&records, Batching::OnePerRecord).await;
    let matched = wait_status(
        &app.api,
        ("rows 1–6 compared", Duration::from_secs(60)),
        |s| s["keys"]["matched"] == 6 && s["baseline"]["unparseable"] == 2,
    )
    .await;
    assert_eq!(matched["keys"]["total"], 6, "{matched}");
    assert_eq!(
        matched["baseline"]["unparseable_by_reason"],
        json!({"unknown_schema": 1, "undecodable": 1})
    );

    // The registry goes down: rows 7–8 (schema v3, never fetched) cannot be decoded. They are
    // counted, and the partition goes on: row 9's JSON on the candidate is still read.
    registry.set_down(true);
    let outage: Vec<Record> = fastavro_encode(&schemas, &[(v3, row(7)), (v3, row(8))])
        .into_iter()
        .zip(7..)
        .map(|(bytes, id)| record(BASELINE, id, bytes))
        .collect();
    broker.produce_all(&outage, Batching::OnePerRecord).await;
    wait_until(
        "the outage's records are counted",
        Duration::from_secs(30),
        || async {
            let b = baseline_counts(&app.api).await?;
            if b["unparseable_by_reason"]["registry_unavailable"] == 2 {
                Ok(())
            } else {
                Err(format!("{b}"))
            }
        },
    )
    .await;

    // Back: the next records of schema v3 are decoded.
    registry.set_down(false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after: Vec<Record> = fastavro_encode(&schemas, &[(v3, row(9)), (v3, row(10))])
        .into_iter()
        .zip(9..)
        .map(|(bytes, id)| record(BASELINE, id, bytes))
        .chain(candidate(9..=10))
        .collect();
    broker.produce_all(&after, Batching::OnePerRecord).await;
    let recovered = wait_status(
        &app.api,
        (
            "rows 9–10 decoded after the outage",
            Duration::from_secs(30),
        ),
        |s| s["keys"]["matched"] == 8,
    )
    .await;
    assert_eq!(recovered["baseline"]["events"], 8, "{recovered}");
    assert_eq!(
        recovered["baseline"]["unparseable_by_reason"],
        json!({"registry_unavailable": 2, "unknown_schema": 1, "undecodable": 1}),
        "{recovered}"
    );
    // And counted in the metrics by reason, like other unparseable records.
    let metrics = app.api.text("/metrics").await.unwrap();
    let counted = metrics.lines().any(|l| {
        l.starts_with("paritygate_unparseable_total{")
            && l.contains(r#"reason="registry_unavailable""#)
            && l.contains(r#"side="baseline""#)
            && l.ends_with(" 2")
    });
    assert!(
        counted,
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("unparseable_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    app.stop().await;
}
