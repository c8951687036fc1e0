//! A restart with a large stored state (200,000 keys per side, written as a checkpoint leaves
//! them by `store::preload`): the kept key parity is read, not rebuilt (its rows keep the
//! transaction that built them), the counts come back exact, and the identities of the dedupe
//! horizon are loaded, so a replay right after the restart is recognized.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::criterion;
use crate::support::produce::keyed_service;
use crate::support::wait_until;
use paritygate::config::Config;
use paritygate::store::{preload, Store};
use serde_json::json;
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

/// 2026-08-20T10:00:00Z.
const T: i64 = 1_787_220_000_000;
const STORED: u64 = 200_000;

fn pair(key: &str, at: i64) -> [Record; 2] {
    let value = json!({"qty": 1});
    [
        Record::json("rpcn.big", key, Some(&value), at),
        Record::json("bento.big", key, Some(&value), at),
    ]
}

/// Parity rows per writing transaction: the build's group holds every stored key.
async fn parity_writers(db: &TestDb) -> Vec<(String, i64)> {
    let mut conn = db.connect().await;
    sqlx::query("SELECT xmin::text AS x, count(*) AS n FROM key_parity GROUP BY 1 ORDER BY 2 DESC")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("x"), r.get("n")))
        .collect()
}

async fn wait_matched(app: &InProcess, matched: u64, records: u64) -> serde_json::Value {
    wait_until("counted", Duration::from_secs(120), || async {
        let s = app.api.service("big").await?;
        (s["keys"]["matched"] == matched && s["baseline"]["records"] == records)
            .then_some(s.clone())
            .ok_or(format!("{} {}", s["keys"], s["baseline"]))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_large_stored_state_reads_its_parity_and_remembers_its_horizon() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for t in ["rpcn.big", "bento.big"] {
        broker.create_topic(t, 1).await;
    }
    let db = TestDb::create().await;
    let toml = AppConfig::with_services(&keyed_service("big", ""), &broker, &db).toml()
        + "dedupe_horizon_seconds = 600\n";
    let config = Config::parse_with_env(Path::new("restart.toml"), &toml, Vec::new()).unwrap();
    let store = Store::connect_lazy(&db.url(), 2).unwrap();
    store.migrate().await.unwrap();
    store.register_services(&["big".to_owned()]).await.unwrap();
    let id = store.service_id("big").unwrap();
    preload::matched_keys(&store.pool, id, STORED, T - 3_600_000)
        .await
        .unwrap();

    let app = InProcess::start(config.clone()).await;
    let traffic: Vec<Record> = (0..100)
        .flat_map(|i| pair(&format!("k{i}"), T + i * 100))
        .collect();
    broker.produce_all(&traffic, Batching::Fast).await;
    wait_matched(&app, STORED + 100, STORED + 100).await;
    let built = parity_writers(&db).await;
    assert!(
        built[0].1 >= STORED as i64,
        "one build wrote the stored keys: {built:?}"
    );
    app.stop().await;

    // Restarted: the baseline re-delivers its hundred records (within the horizon) and both
    // sides send ten new keys.
    let app = InProcess::start(config).await;
    let mut more: Vec<Record> = traffic
        .iter()
        .filter(|r| r.topic == "rpcn.big")
        .cloned()
        .collect();
    more.extend((0..10).flat_map(|i| pair(&format!("n{i}"), T + 20_000 + i * 100)));
    broker.produce_all(&more, Batching::Fast).await;
    let s = wait_matched(&app, STORED + 110, STORED + 210).await;
    let b = &s["baseline"];
    assert_eq!(b["duplicates"], 100, "the horizon was loaded: {b}");
    assert_eq!(b["events"], STORED + 110, "{b}");
    assert_eq!(s["keys"]["settled"]["mismatched"], 0, "{}", s["keys"]);
    let after = parity_writers(&db).await;
    assert_eq!(
        after[0], built[0],
        "the stored keys' parity rows were not rewritten by the restart"
    );
    let gate = app
        .api
        .gate_when("big", "key parity passes", |g| {
            criterion(g, "key_parity")["status"] == "pass"
        })
        .await;
    assert_eq!(
        criterion(&gate, "key_parity")["observed"]["total"],
        0,
        "{gate}"
    );
    app.stop().await;
}
