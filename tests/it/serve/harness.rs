//! The harness itself works: the broker starts and round-trips records (keys, headers, payloads,
//! tombstones) to a plain consumer, fixture traffic lands on the captured topics and partitions,
//! the persistent broker keeps data across a restart, and test databases are created and dropped.

use crate::support::app::AppConfig;
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::traffic::{create_topics, fixture_config, Fixture, FIXTURE_PARTITIONS};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Read `n` messages of `topic`/`partition` from the beginning (manual assignment, no group).
fn consume(broker: &Broker, topic: &str, partition: i32, n: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = broker.consumer();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: {} of {n} messages after 20 s",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => panic!("consume {topic}/{partition}: {e}"),
            None => {}
        }
    }
    out
}

fn as_record(m: &OwnedMessage) -> Record {
    let headers = m.headers().map_or_else(Vec::new, |h| {
        h.iter()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect()
    });
    Record {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        key: m.key().map(<[u8]>::to_vec),
        headers,
        payload: m.payload().map(<[u8]>::to_vec),
        timestamp_ms: m.timestamp().to_millis(),
    }
}

fn high_watermark(broker: &Broker, topic: &str, partition: i32) -> i64 {
    broker
        .consumer()
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_round_trips_keys_headers_and_payloads() {
    let broker = Broker::start().await;
    broker.create_topic("selftest.a", 3).await;
    let binary: &[u8] = &[0, 0, 0, 42, 0xf0, 0xff, 0, 3];
    let o0 = broker
        .produce(
            "selftest.a",
            1,
            Some(b"k1"),
            &[
                ("op", Some(b"insert")),
                ("nil", None),
                ("lsn", Some(binary)),
            ],
            Some(b"{\"a\":1}"),
        )
        .await;
    let o1 = broker
        .produce("selftest.a", 1, None, &[], Some(b"not json"))
        .await;
    let o2 = broker
        .produce(
            "selftest.a",
            1,
            Some(b"k1"),
            &[("op", Some(b"delete"))],
            None,
        )
        .await;
    assert_eq!((o0, o1, o2), (0, 1, 2), "offsets of one-record batches");
    // One record per batch: tansu's high watermark is exact.
    assert_eq!(high_watermark(&broker, "selftest.a", 1), 3);

    let got = consume(&broker, "selftest.a", 1, 3);
    let records: Vec<Record> = got.iter().map(as_record).collect();
    assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(
        records[0].headers,
        vec![
            ("op".to_owned(), Some(b"insert".to_vec())),
            ("nil".to_owned(), None),
            ("lsn".to_owned(), Some(binary.to_vec()))
        ]
    );
    assert_eq!(records[0].payload.as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(records[1].key, None, "a record without key");
    assert_eq!(records[1].payload.as_deref(), Some(&b"not json"[..]));
    assert_eq!(records[2].payload, None, "a tombstone");

    // The fast path keeps order and content too, including the given timestamps.
    let many: Vec<Record> = (0..500)
        .map(|i| Record {
            topic: "selftest.a".into(),
            partition: i % 3,
            key: Some(format!("key-{i}").into_bytes()),
            headers: vec![("n".into(), Some(i.to_string().into_bytes()))],
            payload: Some(format!("{{\"i\":{i}}}").into_bytes()),
            timestamp_ms: Some(1_787_220_000_000 + i64::from(i)),
        })
        .collect();
    broker.produce_all(&many, Batching::Fast).await;
    let want: Vec<Record> = many.iter().filter(|r| r.partition == 2).cloned().collect();
    let back: Vec<Record> = consume(&broker, "selftest.a", 2, want.len())
        .iter()
        .map(as_record)
        .collect();
    assert_eq!(back, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_traffic_lands_on_the_captured_topics_and_partitions() {
    let broker = Broker::start().await;
    let config = fixture_config();
    create_topics(&broker, &config, FIXTURE_PARTITIONS).await;
    let fixture = Fixture::load("clean");
    let report = fixture.expected();
    let routed: u64 = report
        .services
        .iter()
        .map(|s| s.baseline.records + s.candidate.records)
        .sum();
    assert_eq!(
        fixture.records.len() as u64,
        routed,
        "every routed capture record is produced once"
    );
    let halves = fixture.split(2);
    assert_eq!(halves.len(), 2);
    assert_eq!(halves[0].len() + halves[1].len(), fixture.records.len());
    for half in &halves {
        broker.produce_all(half, Batching::OnePerRecord).await;
    }
    let mut per_partition: BTreeMap<(String, i32), Vec<&Record>> = BTreeMap::new();
    for r in &fixture.records {
        per_partition
            .entry((r.topic.clone(), r.partition))
            .or_default()
            .push(r);
    }
    for ((topic, partition), want) in &per_partition {
        assert_eq!(
            high_watermark(&broker, topic, *partition),
            want.len() as i64,
            "{topic}/{partition}"
        );
    }
    // One partition read back in full: same records in capture order.
    let ((topic, partition), want) = per_partition.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let back: Vec<Record> = consume(&broker, topic, *partition, want.len())
        .iter()
        .map(as_record)
        .collect();
    let want: Vec<Record> = want.iter().map(|r| (*r).clone()).collect();
    assert_eq!(back, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_broker_keeps_records_across_a_restart() {
    let mut broker = Broker::start_persistent().await;
    broker.create_topic("selftest.keep", 2).await;
    for i in 0..5u8 {
        broker
            .produce("selftest.keep", 1, Some(&[i]), &[], Some(&[i, i]))
            .await;
    }
    broker.stop();
    assert!(
        broker
            .consumer()
            .fetch_metadata(None, Duration::from_millis(500))
            .is_err(),
        "stopped broker answers"
    );
    broker.restart().await;
    let back: Vec<Option<Vec<u8>>> = consume(&broker, "selftest.keep", 1, 5)
        .iter()
        .map(|m| m.payload().map(<[u8]>::to_vec))
        .collect();
    assert_eq!(back, (0..5u8).map(|i| Some(vec![i, i])).collect::<Vec<_>>());
    assert_eq!(
        broker
            .produce("selftest.keep", 1, None, &[], Some(b"after"))
            .await,
        5,
        "offsets continue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_database_is_created_and_dropped() {
    let db = TestDb::create().await;
    let name = db.name().to_owned();
    assert!(TestDb::exists(&name).await);
    let mut conn = db.connect().await;
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    // Dropped even with a connection still open.
    drop(db);
    assert!(
        !TestDb::exists(&name).await,
        "database {name} still exists after drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_config_points_at_the_test_parts() {
    let broker = Broker::start().await;
    let db = TestDb::create().await;
    let config = AppConfig::fixtures(&broker, &db)
        .replica(1, 2)
        .max_message_bytes(4096)
        .config();
    assert_eq!(config.kafka.brokers, broker.addr());
    assert_eq!(
        config.kafka.assignment,
        paritygate::config::model::Assignment::Manual
    );
    assert_eq!(
        (
            config.kafka.replicas,
            config.kafka.replica_index,
            config.kafka.max_message_bytes
        ),
        (2, 1, 4096)
    );
    assert_eq!(config.store.url.as_deref(), Some(db.url().as_str()));
    assert_eq!(config.http.listen, "127.0.0.1:0");
    assert_eq!(config.serve.idle_partition_ms, 1000);
    assert_eq!(config.services.len(), fixture_config().services.len());
}

#[tokio::test]
#[should_panic(
    expected = "timed out after 300ms waiting until the impossible; last state: still 1"
)]
async fn wait_until_fails_with_the_last_state() {
    crate::support::wait_until("the impossible", Duration::from_millis(300), || async {
        Err::<(), _>("still 1".to_owned())
    })
    .await;
}
