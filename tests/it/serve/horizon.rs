//! The dedupe horizon over the real broker and Postgres (`[serve] dedupe_horizon_seconds = 10`):
//! a replay of events within the horizon behind their partition's newest is recognized exactly
//! (duplicates, not events); a replay from beyond it cannot be told from new events, so it is
//! counted, flagged `beyond_dedupe_horizon` per side and said in the key-parity explanation;
//! with positions, it is recognized by its key's last counted position.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::{count_at, criterion};
use crate::support::produce::keyed_service;
use crate::support::wait_until;
use paritygate::config::Config;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// 2026-08-20T10:00:00Z.
const T: i64 = 1_787_220_000_000;

fn pair(key: &str, at: i64) -> [Record; 2] {
    let value = json!({"qty": 1});
    [
        Record::json("rpcn.h", key, Some(&value), at),
        Record::json("bento.h", key, Some(&value), at),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_within_the_horizon_are_exact_and_beyond_it_are_counted_visibly() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for t in ["rpcn.h", "bento.h"] {
        broker.create_topic(t, 1).await;
    }
    let db = TestDb::create().await;
    let toml = AppConfig::with_services(&keyed_service("h", ""), &broker, &db).toml()
        + "dedupe_horizon_seconds = 10\n";
    let config = Config::parse_with_env(Path::new("horizon.toml"), &toml, Vec::new()).unwrap();
    let app = InProcess::start(config).await;
    // Old keys at T..T+5 s, then newer traffic at T+60..T+65 s.
    let old: Vec<Record> = (0..50)
        .flat_map(|i| pair(&format!("k{i}"), T + i * 100))
        .collect();
    let new: Vec<Record> = (0..50)
        .flat_map(|i| pair(&format!("n{i}"), T + 60_000 + i * 100))
        .collect();
    broker.produce_all(&old, Batching::Fast).await;
    broker.produce_all(&new, Batching::Fast).await;
    wait_until("both sides counted", Duration::from_secs(60), || async {
        let s = app.api.service("h").await?;
        (s["keys"]["matched"] == 100)
            .then_some(())
            .ok_or(s["keys"].to_string())
    })
    .await;

    // The baseline replays ten old records (T..T+0.9 s: beyond the horizon behind T+64.9 s) and
    // the last ten new ones (within it).
    let replayed: Vec<Record> = old
        .iter()
        .filter(|r| r.topic == "rpcn.h")
        .take(10)
        .chain(new.iter().filter(|r| r.topic == "rpcn.h").skip(40))
        .cloned()
        .collect();
    broker.produce_all(&replayed, Batching::Fast).await;
    let s = wait_until("the replay counted", Duration::from_secs(60), || async {
        let s = app.api.service("h").await?;
        let b = &s["baseline"];
        (b["records"] == 120)
            .then_some(s.clone())
            .ok_or(b.to_string())
    })
    .await;
    let b = &s["baseline"];
    assert_eq!(b["duplicates"], 10, "within the horizon: exact: {b}");
    assert_eq!(
        count_at(b, "/flagged/beyond_dedupe_horizon"),
        10,
        "beyond it: flagged: {b}"
    );
    assert_eq!(b["events"], 110, "and counted as events: {b}");
    assert_eq!(count_at(&s, "/candidate/flagged/beyond_dedupe_horizon"), 0);
    let gate = app
        .api
        .gate_when("h", "the explanation names the unverified events", |g| {
            criterion(g, "key_parity")["explanation"]
                .as_str()
                .is_some_and(|e| e.contains("10 events older than the dedupe horizon were counted without a duplicate check (baseline 10, candidate 0)"))
        })
        .await;
    // The ten old keys now have one event more on the baseline: drift the gate shows.
    assert_eq!(
        criterion(&gate, "key_parity")["observed"]["mismatched"],
        10,
        "{gate}"
    );
    let metrics = app.api.text("/metrics").await.unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("beyond_dedupe_horizon")
            && l.contains("service=\"h\"")
            && l.ends_with(" 10")),
        "the metric counts them"
    );
    app.stop().await;
}

/// A keyed record carrying its source position in the payload (`/pos`).
fn positioned(topic: &str, key: &str, qty: i64, pos: i64, at: i64) -> Record {
    Record::json(topic, key, Some(&json!({"qty": qty, "pos": pos})), at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_positions_a_replay_beyond_the_horizon_is_recognized_by_the_key_s_last_position() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for t in ["rpcn.hp", "bento.hp"] {
        broker.create_topic(t, 1).await;
    }
    let db = TestDb::create().await;
    let service = keyed_service(
        "hp",
        r#"position = { pointer = "/pos", format = "integer" }"#,
    );
    let toml =
        AppConfig::with_services(&service, &broker, &db).toml() + "dedupe_horizon_seconds = 10\n";
    let config = Config::parse_with_env(Path::new("horizon.toml"), &toml, Vec::new()).unwrap();
    let app = InProcess::start(config).await;
    // Old keys at T..T+5 s (positions 1..50), then newer keys at T+60..T+65 s (101..150).
    let both = |key: &str, pos: i64, at: i64| {
        ["rpcn.hp", "bento.hp"].map(|t| positioned(t, key, 1, pos, at))
    };
    let old: Vec<Record> = (0..50)
        .flat_map(|i| both(&format!("k{i}"), i + 1, T + i * 100))
        .collect();
    let new: Vec<Record> = (0..50)
        .flat_map(|i| both(&format!("n{i}"), 101 + i, T + 60_000 + i * 100))
        .collect();
    broker.produce_all(&old, Batching::Fast).await;
    broker.produce_all(&new, Batching::Fast).await;
    wait_until("both sides counted", Duration::from_secs(60), || async {
        let s = app.api.service("hp").await?;
        (s["keys"]["matched"] == 100)
            .then_some(())
            .ok_or(s["keys"].to_string())
    })
    .await;

    // From beyond the horizon, on the baseline: ten old records again (replays: at their keys'
    // last positions); k0 at a later position 1000 (new: after everything counted for it); k1
    // at its last position with other content (no order tells: counted and flagged).
    let mut late: Vec<Record> = old
        .iter()
        .filter(|r| r.topic == "rpcn.hp")
        .take(10)
        .cloned()
        .collect();
    late.push(positioned("rpcn.hp", "k0", 2, 1000, T + 500));
    late.push(positioned("rpcn.hp", "k1", 3, 2, T + 600));
    // The candidate applies k0's later change too.
    late.push(positioned("bento.hp", "k0", 2, 1000, T + 500));
    broker.produce_all(&late, Batching::Fast).await;
    let s = wait_until(
        "the late records counted",
        Duration::from_secs(60),
        || async {
            let s = app.api.service("hp").await?;
            (s["baseline"]["records"] == 112 && s["candidate"]["records"] == 101)
                .then_some(s.clone())
                .ok_or(s.to_string())
        },
    )
    .await;
    let b = &s["baseline"];
    assert_eq!(b["duplicates"], 10, "the replays are re-deliveries: {b}");
    assert_eq!(
        count_at(b, "/flagged/replay_recognized_by_position"),
        10,
        "and said so: {b}"
    );
    assert_eq!(
        count_at(b, "/flagged/beyond_dedupe_horizon"),
        1,
        "only k1's same-position change is unverifiable: {b}"
    );
    assert_eq!(b["events"], 102, "k0's later change and k1's counted: {b}");
    assert_eq!(s["candidate"]["events"], 101);
    let gate = app
        .api
        .gate_when("hp", "the explanation names the unverified event", |g| {
            criterion(g, "key_parity")["explanation"]
                .as_str()
                .is_some_and(|e| e.contains("1 events older than the dedupe horizon were counted without a duplicate check (baseline 1, candidate 0)"))
        })
        .await;
    // Only k1 differs: the replays did not add events to their keys, k0 changed on both sides.
    assert_eq!(
        criterion(&gate, "key_parity")["observed"]["mismatched"],
        1,
        "{gate}"
    );
    app.stop().await;
}
