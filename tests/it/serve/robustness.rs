//! Bad input and a broker outage don't stop `serve`: malformed records are counted by reason and
//! never block their partition; while the broker is down `/readyz` says 503, and after it is back
//! (with its data: persistent storage) readiness returns and ingestion resumes where it stopped.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::{count_at, in_flight_total, u64_at, Api};
use crate::support::wait_until;
use paritygate::core::event::{extract, Keep, Outcome};
use paritygate::core::record::RecordView;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

const SERVICES: &str = r#"
[[services]]
name = "stock"
baseline_topics = ["rb.stock.baseline"]
candidate_topics = ["rb.stock.candidate"]
key = { from = "fields", pointers = ["/sku"] }
"#;
const MAX_BYTES: usize = 2048;

async fn setup(broker: &Broker, partitions: i32) {
    crate::support::init_tracing();
    broker.create_topic("rb.stock.baseline", partitions).await;
    broker.create_topic("rb.stock.candidate", partitions).await;
}

fn good(sku: &str, qty: u32) -> Vec<u8> {
    format!("{{\"sku\":\"{sku}\",\"qty\":{qty}}}").into_bytes()
}

/// Wait until both sides have `records` records and `events` events stored and nothing is in flight.
async fn wait_stored(api: &Api, records: u64, events: u64, timeout: Duration) -> Value {
    wait_until(
        &format!("{records} records and {events} events per side, none in flight"),
        timeout,
        || async {
            let s = api.service("stock").await?;
            for side in ["baseline", "candidate"] {
                let (r, e) = (
                    u64_at(&s, &format!("/{side}/records"))?,
                    u64_at(&s, &format!("/{side}/events"))?,
                );
                if (r, e) != (records, events) {
                    return Err(format!("{side}: {r} records, {e} events"));
                }
            }
            match in_flight_total(&s)? {
                0 if s["settled_until_ms"].is_i64() => Ok(s),
                n => Err(format!(
                    "{n} keys in flight, settled_until_ms {}",
                    s["settled_until_ms"]
                )),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_counted_by_reason_and_do_not_block_the_partition() {
    let broker = Broker::start().await;
    setup(&broker, 1).await;
    let db = TestDb::create().await;
    let config = AppConfig::with_services(SERVICES, &broker, &db)
        .max_message_bytes(MAX_BYTES)
        .config();

    // Baseline partition 0: good, not JSON, no key field, oversized, good (in that order).
    let oversized = format!("{{\"sku\":\"big\",\"pad\":\"{}\"}}", "x".repeat(MAX_BYTES));
    let baseline: Vec<Vec<u8>> = vec![
        good("a", 1),
        b"not json {".to_vec(),
        b"{\"qty\":3}".to_vec(),
        oversized.into_bytes(),
        good("b", 2),
    ];
    // What the core makes of the malformed ones that fit (the oversized one is not compared).
    let plan = &config.plan(0).baseline;
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    for payload in &baseline[1..3] {
        let view = RecordView {
            topic: Cow::Borrowed("rb.stock.baseline"),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
            headers: vec![],
            key: None,
            payload: Some(Cow::Borrowed(payload.as_slice())),
        };
        match extract(plan, &view, Keep::Digest) {
            Outcome::Rejected(r) => *rejected.entry(r.as_str().to_owned()).or_default() += 1,
            _ => panic!(
                "{:?} is not rejected by the core",
                String::from_utf8_lossy(payload)
            ),
        }
    }
    // The oversized record is never parsed: it is `unparseable` (reason too_large), not rejected.

    let app = InProcess::start(config).await;
    for payload in &baseline {
        broker
            .produce("rb.stock.baseline", 0, None, &[], Some(payload))
            .await;
    }
    for payload in [good("a", 1), good("b", 2)] {
        broker
            .produce("rb.stock.candidate", 0, None, &[], Some(&payload))
            .await;
    }

    // The good record behind the bad ones is an event: the partition went on.
    let status = wait_until(
        "baseline has 5 records, 2 events",
        Duration::from_secs(30),
        || async {
            let s = app.api.service("stock").await?;
            let got = (
                u64_at(&s, "/baseline/records")?,
                u64_at(&s, "/baseline/events")?,
                u64_at(&s, "/candidate/events")?,
            );
            if got == (5, 2, 2) && in_flight_total(&s)? == 0 && s["settled_until_ms"].is_i64() {
                Ok(s)
            } else {
                Err(format!(
                    "(records, events, candidate events) {got:?}, keys {}",
                    s["keys"]
                ))
            }
        },
    )
    .await;
    for (reason, n) in &rejected {
        assert_eq!(
            count_at(&status, &format!("/baseline/rejected/{reason}")),
            *n,
            "rejected {reason}: {}",
            status["baseline"]
        );
    }
    assert_eq!(
        u64_at(&status, "/baseline/unparseable").unwrap(),
        1,
        "the oversized record: {}",
        status["baseline"]
    );
    let counted: u64 = status["baseline"]["rejected"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum::<u64>()
        + u64_at(&status, "/baseline/unparseable").unwrap();
    assert_eq!(
        counted, 3,
        "each bad record counted once: {}",
        status["baseline"]
    );
    let partition = &status["baseline"]["partitions"][0];
    assert_eq!(
        partition["next_offset"], 5,
        "partition consumed to its end: {partition}"
    );
    assert_eq!(u64_at(&status, "/baseline/lag").unwrap(), 0);
    assert_eq!(
        u64_at(&status, "/keys/matched").unwrap(),
        2,
        "keys: {}",
        status["keys"]
    );
    // `pass` is served after `consecutive_passes` passing evaluations in a row (hysteresis).
    wait_until("gate of stock passes", Duration::from_secs(30), || async {
        let gate = app.api.gate("stock").await?;
        if gate["verdict"] == "pass" {
            Ok(())
        } else {
            Err(format!("gate {gate}"))
        }
    })
    .await;
    app.stop().await;
}

/// Good records `sku-FROM..sku-TO` on both sides, spread over partitions 0 and 1.
async fn produce_stock(broker: &Broker, from: u32, to: u32) {
    let records: Vec<Record> = (from..to)
        .flat_map(|i| {
            ["rb.stock.baseline", "rb.stock.candidate"].map(|topic| Record {
                topic: topic.into(),
                partition: (i % 2) as i32,
                key: None,
                headers: vec![],
                payload: Some(good(&format!("sku-{i}"), i)),
                timestamp_ms: None,
            })
        })
        .collect();
    broker.produce_all(&records, Batching::OnePerRecord).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_flips_readiness_and_ingestion_resumes() {
    // Persistent storage (S3 on moto): the restarted broker still has the topics and offsets.
    let mut broker = Broker::start_persistent().await;
    setup(&broker, 2).await;
    let db = TestDb::create().await;
    let app = InProcess::start(AppConfig::with_services(SERVICES, &broker, &db).config()).await;
    produce_stock(&broker, 0, 10).await;
    wait_stored(&app.api, 10, 10, Duration::from_secs(30)).await;
    let ready = |want: u16| {
        let api = app.api.clone();
        async move {
            match api.status("/readyz").await? {
                s if s == want => Ok(()),
                s => Err(format!("readyz {s}")),
            }
        }
    };
    wait_until(
        "readyz 200 before the outage",
        Duration::from_secs(10),
        || ready(200),
    )
    .await;

    broker.stop();
    wait_until(
        "readyz 503 while the broker is down",
        Duration::from_secs(30),
        || ready(503),
    )
    .await;
    assert_eq!(
        app.api.status("/healthz").await.unwrap(),
        200,
        "alive while not ready"
    );
    broker.restart().await;
    wait_until(
        "readyz 200 after the broker is back",
        Duration::from_secs(30),
        || ready(200),
    )
    .await;

    produce_stock(&broker, 10, 20).await;
    let status = wait_stored(&app.api, 20, 20, Duration::from_secs(45)).await;
    assert_eq!(
        u64_at(&status, "/keys/matched").unwrap(),
        20,
        "keys: {}",
        status["keys"]
    );
    assert_eq!(
        u64_at(&status, "/baseline/duplicates").unwrap(),
        0,
        "nothing re-read after the restart"
    );
    // `pass` is served after `consecutive_passes` passing evaluations in a row (hysteresis).
    wait_until("gate of stock passes", Duration::from_secs(30), || async {
        let gate = app.api.gate("stock").await?;
        if gate["verdict"] == "pass" {
            Ok(())
        } else {
            Err(format!("gate {gate}"))
        }
    })
    .await;
    app.stop().await;
}
