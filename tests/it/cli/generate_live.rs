//! `paritygate generate` against a real broker (tansu) and Postgres: with drift on two services, the
//! topics hold exactly the records the pure generator computes for the same seed, and the target
//! tables hold its final rows: dropped and extra keys on the stream, deletes lost in the sink.

use crate::support::broker::Broker;
use crate::support::db::TestDb;
use paritygate::config::Config;
use paritygate::generate::live::rows::RowChange;
use paritygate::generate::live::{DriftKind, Live, LiveSpec};
use paritygate::model::Side;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

const COUNT: u64 = 300;
const SEED: u64 = 42;

fn config() -> Config {
    Config::load(&crate::support::fixture("demo/paritygate.toml")).expect("demo config")
}

/// What the generator must have produced: records per topic and each target table's final rows.
fn expected(
    config: &Config,
    spec: &LiveSpec,
) -> (
    BTreeMap<String, u64>,
    BTreeMap<String, BTreeMap<String, Value>>,
) {
    let mut live = Live::new(config, spec).unwrap();
    let mut topics = BTreeMap::new();
    let mut tables = BTreeMap::new();
    for (i, s) in config.services.iter().enumerate() {
        let targets = s.targets.as_ref().unwrap();
        let mut events = 0;
        while events < COUNT {
            let batch = live.next_batch(i);
            events += batch.baseline_events;
            for (side, _) in &batch.records {
                let topic = match side {
                    Side::Baseline => &s.baseline_topics[0],
                    Side::Candidate => &s.candidate_topics[0],
                };
                *topics.entry(topic.clone()).or_default() += 1;
            }
            for (table, changes) in [
                (&targets.baseline.table, &batch.baseline_rows),
                (&targets.candidate.table, &batch.candidate_rows),
            ] {
                let rows: &mut BTreeMap<String, Value> = tables.entry(table.clone()).or_default();
                for c in changes {
                    match c {
                        RowChange::Upsert { key, doc, .. } => {
                            rows.insert(key.clone(), doc.clone());
                        }
                        RowChange::Delete { key } => {
                            rows.remove(key);
                        }
                    }
                }
            }
        }
    }
    (topics, tables)
}

/// Records per topic, read until `want` is reached and nothing more arrives for a second.
fn consume_counts(broker: &Broker, want: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let consumer: BaseConsumer = broker.consumer();
    let mut tpl = TopicPartitionList::new();
    for topic in want.keys() {
        for p in 0..6 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                *got.entry(m.topic().to_owned()).or_default() += 1;
                quiet_since = Instant::now();
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None if &got == want && quiet_since.elapsed() > Duration::from_secs(1) => break,
            None => {}
        }
    }
    got
}

async fn table_rows(db: &TestDb, table: &str) -> BTreeMap<String, Value> {
    let mut conn = db.connect().await;
    let rows: Vec<(String, sqlx::types::Json<Value>)> =
        sqlx::query_as(&format!("SELECT key, doc FROM {table}"))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
    rows.into_iter().map(|(k, d)| (k, d.0)).collect()
}

/// Run `paritygate generate` as `command` says; it must succeed. Its stdout.
fn generate(command: &mut Command) -> String {
    let out = command.output().expect("run paritygate generate");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_with_drift_fills_topics_and_target_tables() {
    let broker = Broker::start().await;
    let db = TestDb::create().await;
    let config = config();
    let stdout = generate(
        Command::new(env!("CARGO_BIN_EXE_paritygate"))
            .args(["generate", "--config"])
            .arg(crate::support::fixture("demo/paritygate.toml"))
            .args(["--brokers", &broker.addr(), "--database-url", &db.url()])
            .args(["--seed", &SEED.to_string(), "--count", &COUNT.to_string()])
            .args(["--rate", "5000", "--drift-per-mille", "100"])
            .args([
                "--drift",
                "refunds=dropped,extra",
                "--drift",
                "orders=sink-drops-deletes",
            ])
            .env_remove("PARITYGATE_DEMO_TARGETS_URL"),
    );
    assert_eq!(stdout.lines().count(), 4, "{stdout}");

    let mut drift: BTreeMap<String, BTreeSet<DriftKind>> = BTreeMap::new();
    drift.insert(
        "refunds".into(),
        [DriftKind::Dropped, DriftKind::Extra].into(),
    );
    drift.insert("orders".into(), [DriftKind::SinkDropsDeletes].into());
    let spec = LiveSpec {
        seed: SEED,
        drift,
        drift_per_mille: 100,
    };
    let (topics, tables) = expected(&config, &spec);
    assert_eq!(consume_counts(&broker, &topics), topics);

    for (table, rows) in &tables {
        assert_eq!(&table_rows(&db, table).await, rows, "{table}");
    }
    // The drift is visible where it should be, and only there.
    let keys = |t: &str| tables[t].keys().cloned().collect::<BTreeSet<_>>();
    let (rb, rc) = (keys("rpcn_sink.refunds"), keys("bento_sink.refunds"));
    assert!(rb.difference(&rc).count() > 0, "dropped keys");
    assert!(rc.iter().any(|k| k.starts_with("extra-")), "extra keys");
    let (ob, oc) = (keys("rpcn_sink.orders"), keys("bento_sink.orders"));
    assert!(ob.is_subset(&oc) && oc.len() > ob.len(), "deletes dropped");
    for clean in ["payments", "inventory"] {
        assert_eq!(
            tables[&format!("rpcn_sink.{clean}")],
            tables[&format!("bento_sink.{clean}")],
            "{clean}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_writes_each_side_to_its_own_cluster() {
    let (baseline, candidate) = (Broker::start().await, Broker::start().await);
    let db = TestDb::create().await;
    let config = config();
    generate(
        Command::new(env!("CARGO_BIN_EXE_paritygate"))
            .args(["generate", "--config"])
            .arg(crate::support::fixture("demo/paritygate.toml"))
            .args(["--brokers", &baseline.addr(), "--database-url", &db.url()])
            .args(["--seed", &SEED.to_string(), "--count", &COUNT.to_string()])
            .args(["--rate", "5000"])
            .env("PARITYGATE_KAFKA_CANDIDATE_BROKERS", candidate.addr())
            .env_remove("PARITYGATE_DEMO_TARGETS_URL"),
    );
    let spec = LiveSpec {
        seed: SEED,
        drift: BTreeMap::new(),
        drift_per_mille: 0,
    };
    let (topics, _) = expected(&config, &spec);
    let routes = config.routes();
    let of_side = |side: Side| -> BTreeMap<String, u64> {
        topics
            .iter()
            .filter(|(t, _)| routes[t.as_str()].1 == side)
            .map(|(t, n)| (t.clone(), *n))
            .collect()
    };
    let (want_b, want_c) = (of_side(Side::Baseline), of_side(Side::Candidate));
    assert!(!want_b.is_empty() && !want_c.is_empty());
    assert_eq!(consume_counts(&baseline, &want_b), want_b);
    assert_eq!(consume_counts(&candidate, &want_c), want_c);
    // Nothing of the other side: its topics were never created on this cluster.
    let listed = |broker: &Broker| -> BTreeSet<String> {
        let metadata = broker
            .consumer()
            .fetch_metadata(None, Duration::from_secs(5))
            .expect("metadata");
        metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .collect()
    };
    assert!(listed(&baseline).is_disjoint(&want_c.keys().cloned().collect()));
    assert!(listed(&candidate).is_disjoint(&want_b.keys().cloned().collect()));
}

/// The Kafka Connect model (`fixtures/debezium/paritygate.toml`'s `shipments`): `generate`
/// registers its two Avro schemas with the registry, writes Debezium envelopes in the Confluent
/// wire format and the Bento candidate's JSON; `serve`, fetching the schemas by id, decodes every
/// record and finds exactly the keys the generator dropped from the candidate.
#[tokio::test(flavor = "multi_thread")]
async fn generate_writes_a_debezium_avro_pipeline_that_serve_decodes() {
    use crate::support::app::{AppConfig, InProcess};
    use crate::support::avro::TestRegistry;
    let broker = Broker::start().await;
    let registry = TestRegistry::start().await;
    let db = TestDb::create().await;
    let fixture = std::fs::read_to_string(crate::support::fixture("debezium/paritygate.toml"))
        .expect("the Kafka Connect fixture config");
    let services = format!(
        "{fixture}\n[schema_registry]\nurl = \"{}\"\n",
        registry.url()
    );
    let app_config = AppConfig::with_services(&services, &broker, &db);
    let dir = tempfile::tempdir().unwrap();
    let path = app_config.write(dir.path());
    generate(
        Command::new(env!("CARGO_BIN_EXE_paritygate"))
            .args(["generate", "--config"])
            .arg(&path)
            .args(["--brokers", &broker.addr(), "--seed", "7", "--count", "200"])
            .args(["--rate", "5000", "--drift-per-mille", "100"])
            .args(["--drift", "shipments=dropped"]),
    );
    assert_eq!(registry.registered(), 2, "the connector's two schemas");

    // The keys the pure generator drops from the candidate for the same seed.
    let config = app_config.config();
    let mut drift = BTreeMap::new();
    drift.insert("shipments".to_owned(), BTreeSet::from([DriftKind::Dropped]));
    let spec = LiveSpec {
        seed: 7,
        drift,
        drift_per_mille: 100,
    };
    let mut live = Live::new(&config, &spec).unwrap();
    let plan = config.plan(0);
    let (mut baseline, mut candidate, mut events) = (BTreeSet::new(), BTreeSet::new(), 0);
    let mut tombstones = 0u64;
    while events < 200 {
        let batch = live.next_batch(0);
        events += batch.baseline_events;
        for (side, r) in &batch.records {
            tombstones += u64::from(*side == Side::Baseline && r.payload.is_none());
            let key = paritygate::generate::live::rows::event_key(plan.side(*side), r);
            if let Some(k) = key {
                let k = String::from_utf8(k).unwrap();
                match side {
                    Side::Baseline => baseline.insert(k),
                    Side::Candidate => candidate.insert(k),
                };
            }
        }
    }
    let dropped: BTreeSet<String> = baseline.difference(&candidate).cloned().collect();
    assert!(!dropped.is_empty(), "the drift drops some keys");

    let app = InProcess::start(config.clone()).await;
    let status = crate::support::wait_until(
        "every generated key compared",
        Duration::from_secs(60),
        || async {
            let s = app.api.service("shipments").await?;
            // Tombstones too: the last ones may reach the status a checkpoint after the keys.
            if s["keys"]["total"].as_u64() == Some(baseline.len() as u64)
                && s["keys"]["matched"].as_u64() == Some((baseline.len() - dropped.len()) as u64)
                && s["baseline"]["skipped"]["debezium_tombstone"].as_u64() == Some(tombstones)
            {
                Ok(s)
            } else {
                Err(json_keys(&s))
            }
        },
    )
    .await;
    assert_eq!(status["baseline"]["unparseable"], 0, "{status}");
    assert!(tombstones > 0, "the run deletes some shipments");
    let missing: BTreeSet<String> = app
        .api
        .mismatches("shipments", "missing_in_candidate")
        .await
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_owned())
        .collect();
    // Settled ones are listed; the rest are in flight (the run is short) and counted as such.
    assert!(missing.is_subset(&dropped), "{missing:?} vs {dropped:?}");
    let counted = |state: &str| {
        status["keys"][state]["missing_in_candidate"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        counted("settled") + counted("in_flight"),
        dropped.len() as u64,
        "{status}"
    );
    app.stop().await;
}

fn json_keys(s: &Value) -> String {
    format!("keys {} baseline {}", s["keys"], s["baseline"])
}
