//! A lane worker against a real store, without Kafka: records are handed to it as the consumer
//! thread would, and its batches are stored as the checkpointer would.

use super::*;
use crate::capture::format::parse_line;
use crate::serve::record::OwnedRecord;
use crate::store::read::side_counts;
use crate::store::test_db::with_store;
use crate::store::CANDIDATE;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::ClientConfig;
use std::path::Path;

const TOPIC: &str = "bento.dev.acme.public.orders";

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

        let consumer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create_with_context(LaneContext::new(Vec::new()))
            .unwrap();
        let (inbox, records) = sync_channel(4);
        let (batches, mut stored) = mpsc::channel(1);
        let worker = Worker {
            consumer: Arc::new(consumer),
            config: Arc::new(config),
            store: store.clone(),
            runtime: Handle::current(),
            records,
            batches,
            end_offsets: EndOffsets::default(),
            starts,
            cancel: CancellationToken::new(),
        };
        let thread = std::thread::spawn(move || worker.run());
        inbox.send(Input::Records(fixture_records(3, 0))).unwrap();
        inbox.send(Input::Stop).unwrap();
        let batch = stored.recv().await.unwrap();
        store.checkpoint(&names, &batch).await.unwrap();
        if let Some(committed) = &batch.committed {
            committed.send(()).unwrap();
        }
        thread.join().unwrap();

        // All three records were counted (none skipped as below the stored 500), the reset is
        // counted, and the partition now stands at the new log's offset 3.
        let id = store.service_id("orders").unwrap();
        let [_, candidate] = side_counts(&store.pool, id).await.unwrap();
        assert_eq!(
            (candidate.records, candidate.events, candidate.log_resets),
            (3, 3, 1)
        );
        let next: i64 = sqlx::query_scalar(
            "SELECT next_offset FROM partitions WHERE topic = $1 AND partition = 0 AND side = $2",
        )
        .bind(TOPIC)
        .bind(CANDIDATE)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(next, 3);
    })
    .await;
}
