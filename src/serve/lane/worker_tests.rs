//! A lane worker against a real store, without Kafka: records are handed to it as the consumer
//! thread would, and its batches are stored as the checkpointer would.

use super::*;
use crate::capture::format::parse_line;
use crate::model::Side;
use crate::serve::lane::record::OwnedRecord;
use crate::store::read::{key_summary, side_counts};
use crate::store::test_db::with_store;
use crate::store::EpochKey;
use crate::store::CANDIDATE;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::Offset;
use std::path::Path;

const TOPIC: &str = "bento.dev.acme.public.orders";

/// No consumer here: nothing is far enough behind to seek.
struct NoSeek;

impl Seek for NoSeek {
    fn seek(&self, _: &str, _: i32, _: i64) {}
}

/// The first `n` records of the candidate fixture on `TOPIC`, renumbered from offset `first`.
fn fixture_records(n: usize, first: i64) -> Vec<Routed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/clean/candidate.rpk.jsonl");
    let text = std::fs::read(&path).unwrap();
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let (_, view) = parse_line(line).unwrap();
        if view.topic != TOPIC || out.len() == n {
            continue;
        }
        let mut headers = OwnedHeaders::new();
        for (name, value) in &view.headers {
            headers = headers.insert(Header {
                key: name.as_ref(),
                value: value.as_deref(),
            });
        }
        let message = OwnedMessage::new(
            view.payload.as_deref().map(<[u8]>::to_vec),
            view.key.as_deref().map(<[u8]>::to_vec),
            TOPIC.to_owned(),
            view.timestamp_ms
                .map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
            0,
            first + out.len() as i64,
            Some(headers),
        );
        out.push(Routed {
            record: OwnedRecord::copy_from(&message, Arc::from(TOPIC)),
            service: 0,
            side: Side::Candidate,
            is_error: false,
        });
    }
    out
}

/// Hand `records` to a lane worker, stop it, and return the batch it handed to its checkpointer
/// (confirmed as committed: the caller stores it).
async fn run_worker(store: &Store, config: Config, starts: Starts, records: Vec<Routed>) -> Batch {
    let (inbox, inputs) = sync_channel(4);
    let (batches, mut handed) = mpsc::channel(1);
    let worker = Worker {
        seek: Arc::new(NoSeek),
        config: Arc::new(config),
        schemas: Default::default(),
        store: store.clone(),
        runtime: Handle::current(),
        records: inputs,
        batches,
        end_offsets: EndOffsets::default(),
        starts,
        heartbeats: crate::serve::progress::Heartbeats::new(1),
        lane: 0,
        cancel: CancellationToken::new(),
    };
    let thread = std::thread::spawn(move || worker.run());
    inbox.send(Input::Records(records)).unwrap();
    inbox.send(Input::Stop).unwrap();
    let mut batch = handed.recv().await.unwrap();
    if let Some(committed) = batch.committed.take() {
        committed.send(()).unwrap();
    }
    thread.join().unwrap();
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_went_back_is_read_and_stored_from_its_new_start() {
    with_store(&["orders"], |store| async move {
        let config =
            Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/paritygate.toml"))
                .unwrap();
        assert_eq!(config.services[0].name, "orders");
        let names = vec!["orders".to_owned()];
        // Earlier, offsets 0..500 of the partition were counted and stored.
        let mut earlier = Batch::default();
        earlier.advance((TOPIC, 0, 499), (0, Side::Candidate), None, None);
        store.checkpoint(&names, &earlier).await.unwrap();
        // The assignment started the partition there; the recreated topic's log starts at 0.
        let starts = Starts::default();
        starts.record(&[(TOPIC.to_owned(), 0, Offset::Offset(500))]);

        let batch = run_worker(&store, config, starts, fixture_records(3, 0)).await;
        store.checkpoint(&names, &batch).await.unwrap();

        // All three records were counted (none skipped as below the stored 500), the reset is
        // counted, and the partition now stands at the new log's offset 3.
        let id = store.service_id("orders").unwrap();
        let [_, candidate] = side_counts(&store.pool, EpochKey::first(id)).await.unwrap();
        assert_eq!(
            (candidate.records, candidate.events, candidate.log_resets),
            (3, 3, 1)
        );
        // Its arrivals continue above the old log's (500 + 1 + offset): the new log's changes
        // order after the old log's for keys without positions.
        let stored: (i64, i64) = sqlx::query_as(
            "SELECT next_offset, arrival_base FROM partitions \
             WHERE topic = $1 AND partition = 0 AND side = $2",
        )
        .bind(TOPIC)
        .bind(CANDIDATE)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(stored, (3, 501));
        let arrivals: Vec<i64> =
            sqlx::query_scalar("SELECT final_arrival FROM keys ORDER BY final_arrival")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert!(arrivals.iter().all(|a| *a >= 501), "{arrivals:?}");
    })
    .await;
}

/// A record of the position-less `stock` service: key `1`, operation header, offset `offset`.
fn stock_record(side: Side, operation: &str, offset: i64) -> Routed {
    let topic = if side == Side::Baseline {
        "stock"
    } else {
        "bento.stock"
    };
    let payload = if operation == "delete" {
        br#"{"id":1}"#.to_vec()
    } else {
        br#"{"id":1,"qty":2}"#.to_vec()
    };
    let message = OwnedMessage::new(
        Some(payload),
        Some(b"1".to_vec()),
        topic.to_owned(),
        Timestamp::CreateTime(1_787_220_001_000 + offset),
        0,
        offset,
        Some(OwnedHeaders::new().insert(Header {
            key: "operation",
            value: Some(operation.as_bytes()),
        })),
    );
    Routed {
        record: OwnedRecord::copy_from(&message, Arc::from(topic)),
        service: 0,
        side,
        is_error: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_positions_the_same_events_in_another_order_are_a_mismatch() {
    with_store(&["stock"], |store| async move {
        let toml = r#"
[[services]]
name = "stock"
baseline_topics = ["stock"]
candidate_topics = ["bento.stock"]
key = { from = "message_key" }
operation = { header = "operation" }
"#;
        let config = Config::parse(Path::new("stock.toml"), toml).unwrap();
        // The baseline deleted the row and inserted it again; the candidate applied the same two
        // events the other way round, so its sink ends without the row. `diff` orders events by
        // arrival without positions and calls that a mismatch; the operation must not decide.
        let records = vec![
            stock_record(Side::Baseline, "delete", 0),
            stock_record(Side::Baseline, "insert", 1),
            stock_record(Side::Candidate, "insert", 0),
            stock_record(Side::Candidate, "delete", 1),
        ];
        let batch = run_worker(&store, config, Starts::default(), records).await;
        store
            .checkpoint(&["stock".to_owned()], &batch)
            .await
            .unwrap();
        let id = store.service_id("stock").unwrap();
        let summary = key_summary(&store.pool, EpochKey::first(id), Some(i64::MAX))
            .await
            .unwrap();
        assert_eq!(
            (summary.total, summary.matched, summary.settled.mismatched),
            (1, 0, 1)
        );
    })
    .await;
}
