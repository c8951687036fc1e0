//! Hostile bytes over the real broker and Postgres: records whose key holds NUL or invalid UTF-8,
//! a non-JSON payload with a raw NUL, a JSON string with a NUL escape, a binary header value,
//! interleaved with the fixtures' valid traffic. Before keys and contents were stored as bytes, one
//! such record made every checkpoint of its lane fail forever and froze all services' counts.
//!
//! Every valid record must be counted, every hostile one counted (as an event or under a reason),
//! the fixture services must show exactly what `replay` computes without the hostile records
//! (their counts, keys and gates), nothing may wedge, and the API must show the keys escaped.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Record};
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::http::{in_flight_total, u64_at, Api};
use crate::support::traffic::FixtureRun;
use crate::support::{fixture, wait_until};
use paritygate::core::event::display_bytes;
use std::time::Duration;

/// Three services beside the fixtures' four: `ledger` (Kafka key, a compared header), `stock`
/// (key from a payload field) and `probe` (one hostile key on the baseline only).
const EXTRA: &str = r#"
[[services]]
name = "ledger"
baseline_topics = ["hb.ledger"]
candidate_topics = ["bento.hb.ledger"]
key = { from = "message_key" }
compare_headers = ["h"]

[[services]]
name = "stock"
baseline_topics = ["hb.stock"]
candidate_topics = ["bento.hb.stock"]
key = { from = "fields", pointers = ["/id"] }

[[services]]
name = "probe"
baseline_topics = ["hb.probe"]
candidate_topics = ["bento.hb.probe"]
key = { from = "message_key" }
"#;

const NUL_KEY: &[u8] = &[0x00, 0xff, 0xfe, 0x80, b'b', b'i', b'n'];

fn record(topic: &str, key: Option<&[u8]>, header: Option<&[u8]>, payload: &[u8]) -> Record {
    Record {
        topic: topic.to_owned(),
        partition: 0,
        key: key.map(<[u8]>::to_vec),
        headers: header
            .map(|h| vec![("h".to_owned(), Some(h.to_vec()))])
            .unwrap_or_default(),
        payload: Some(payload.to_vec()),
        timestamp_ms: None,
    }
}

/// The same hostile records on both sides of `ledger` and `stock` (so they match), and one on
/// the baseline of `probe`. Returns (ledger records per side, stock records per side).
fn hostile() -> (Vec<Record>, usize, usize) {
    let ledger = [
        (Some(NUL_KEY), None, &b"{\"v\":1}"[..]),
        (Some(&b"raw"[..]), None, &b"bin\0ary payload"[..]),
        (Some(&b"escaped"[..]), None, &b"{\"v\":\"a\\u0000b\"}"[..]),
        (Some(&[0xff, 0xfe, 0x01][..]), None, &b"{\"v\":4}"[..]),
        (
            Some(&b"header"[..]),
            Some(&[0x00, 0x01, 0xff][..]),
            &b"{\"v\":5}"[..],
        ),
    ];
    let stock = [
        &b"{\"id\":\"a\\u0000b\",\"q\":1}"[..],
        &b"{\"id\":\"\\u0001\\u001f\",\"q\":2}"[..],
        &b"{\"id\":7,\"q\":\"\\u0000\"}"[..],
    ];
    let mut records = Vec::new();
    for topic in ["hb.ledger", "bento.hb.ledger"] {
        for (key, header, payload) in ledger {
            records.push(record(topic, key, header, payload));
        }
    }
    for topic in ["hb.stock", "bento.hb.stock"] {
        for payload in stock {
            records.push(record(topic, None, None, payload));
        }
    }
    records.push(record("hb.probe", Some(NUL_KEY), None, b"{\"v\":0}"));
    (records, ledger.len(), stock.len())
}

async fn side(api: &Api, service: &str, side: &str, field: &str) -> Result<u64, String> {
    u64_at(&api.service(service).await?, &format!("/{side}/{field}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_are_counted_and_stop_nothing() {
    let run = FixtureRun::new("clean").await;
    for topic in [
        "hb.ledger",
        "bento.hb.ledger",
        "hb.stock",
        "bento.hb.stock",
        "hb.probe",
        "bento.hb.probe",
    ] {
        run.broker.create_topic(topic, 1).await;
    }
    let services = std::fs::read_to_string(fixture("paritygate.toml")).unwrap() + EXTRA;
    let config = AppConfig::with_services(&services, &run.broker, &run.db).config();
    let (bad, ledger_n, stock_n) = hostile();
    let halves = run.fixture.split(2);
    // Hostile records between the two halves of the valid traffic, and again after it.
    run.broker
        .produce_all(halves[0], Batching::OnePerRecord)
        .await;
    run.broker
        .produce_all(&bad[..bad.len() / 2], Batching::OnePerRecord)
        .await;
    let app = InProcess::start(config).await;
    run.broker
        .produce_all(halves[1], Batching::OnePerRecord)
        .await;
    run.broker
        .produce_all(&bad[bad.len() / 2..], Batching::OnePerRecord)
        .await;

    // The fixture services are exactly what a run without the hostile records gives.
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(60)).await;
    assert_matches_replay(&app.api, &run.expected).await;

    // Every hostile record is counted, on both sides, and they match each other.
    let api = &app.api;
    wait_until(
        "the hostile services are counted and settled",
        Duration::from_secs(30),
        || async {
            for (service, n) in [("ledger", ledger_n), ("stock", stock_n)] {
                for s in ["baseline", "candidate"] {
                    let records = side(api, service, s, "records").await?;
                    if records != n as u64 {
                        return Err(format!("{service}/{s}: {records} of {n} records"));
                    }
                }
                // Identical on both sides: nothing differs (the latency guardrail may still wait
                // for a sampled delivery: a handful of events rarely has one).
                let status = api.service(service).await?;
                let criteria = status["gate"]["criteria"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let failing = criteria.iter().any(|c| c["status"] == "fail");
                let settled = status["settled_until_ms"].is_i64() && in_flight_total(&status)? == 0;
                let parity = ["key_parity", "count_parity"].iter().all(|name| {
                    criteria
                        .iter()
                        .any(|c| c["name"] == *name && c["status"] == "pass")
                });
                if failing || !settled || !parity {
                    return Err(format!("{service}: gate {}", status["gate"]));
                }
            }
            Ok(())
        },
    )
    .await;
    // The ledger's records are all events (the non-JSON one compared as bytes, and flagged).
    assert_eq!(
        side(api, "ledger", "baseline", "events").await.unwrap(),
        ledger_n as u64
    );
    let ledger = api.service("ledger").await.unwrap();
    assert_eq!(u64_at(&ledger, "/baseline/flagged/not_json").unwrap(), 1);
    assert_eq!(u64_at(&ledger, "/keys/matched").unwrap(), ledger_n as u64);
    assert_eq!(u64_at(&ledger, "/baseline/unparseable").unwrap(), 0);
    // `stock` keys by a payload field: NUL and control characters in it make keys like any other.
    assert_eq!(
        u64_at(&api.service("stock").await.unwrap(), "/keys/matched").unwrap(),
        stock_n as u64
    );

    // A key of any bytes is shown escaped (UTF-8 without control characters as is, else hex).
    let missing = wait_until(
        "probe's key is missing in the candidate",
        Duration::from_secs(30),
        || async {
            let items = api.mismatches("probe", "missing_in_candidate").await?;
            if items.is_empty() {
                Err("no mismatch yet".into())
            } else {
                Ok(items)
            }
        },
    )
    .await;
    assert_eq!(missing[0]["key"], display_bytes(NUL_KEY));
    assert_eq!(missing[0]["key"], "0x00FFFE8062696E");

    // Nothing wedged: ready, no fault, and the lag is known and zero.
    assert_eq!(api.status("/readyz").await.unwrap(), 200);
    let (_, ready) = api.get("/readyz").await.unwrap();
    assert_eq!(ready["stalled"], serde_json::json!([]));
    for service in ["orders", "ledger", "stock"] {
        assert_eq!(
            side(api, service, "baseline", "lag").await.unwrap(),
            0,
            "{service}"
        );
    }
    app.stop().await;
}
