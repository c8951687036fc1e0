//! The record path under arbitrary bytes (issue: one record must never stop the service): keys,
//! payloads and header values of any bytes (NUL, invalid UTF-8, control characters) go through
//! extraction, the batch and a real checkpoint into Postgres. Every record must be counted exactly
//! once under some reason, and every partition's stored offset must move past all of them.

use super::admit;
use crate::config::Config;
use crate::core::record::RecordView;
use crate::model::{Side, TallyKind};
use crate::serve::lane::dedupe::Seen;
use crate::store::batch::Batch;
use crate::store::test_db::with_store;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as Cases, TestRunner};
use std::borrow::Cow;
use std::path::Path;

/// Two services: one keyed by the Kafka key, one by a payload field, both comparing a header.
fn config() -> Config {
    let toml = r#"
[kafka]
max_message_bytes = 48

[[services]]
name = "by_key"
baseline_topics = ["k"]
candidate_topics = ["bento.k"]
key = { from = "message_key" }
compare_headers = ["h"]

[[services]]
name = "by_field"
baseline_topics = ["f"]
candidate_topics = ["bento.f"]
key = { from = "fields", pointers = ["/id"] }
compare_headers = ["h"]
"#;
    Config::parse(Path::new("any_bytes.toml"), toml).unwrap()
}

/// Bytes that stress every layer: NUL, invalid UTF-8, control characters, JSON with a NUL escape.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        Just(vec![0x00, 0xff, 0xfe, 0x80, b'b', b'i', b'n']),
        Just(b"{\"id\":\"a\\u0000b\",\"v\":1}".to_vec()),
        Just(b"{\"id\":\"\x00raw\",\"v\":2}".to_vec()),
        (0u8..32).prop_map(|c| format!("{{\"id\":{c},\"v\":\"x\"}}").into_bytes()),
    ]
}

type Raw = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

fn records() -> impl Strategy<Value = Vec<Raw>> {
    proptest::collection::vec(
        (
            proptest::option::of(hostile_bytes()),
            proptest::option::of(hostile_bytes()),
            proptest::option::of(hostile_bytes()),
        ),
        1..30,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_bytes_are_counted_once_and_the_offset_moves_past_them() {
    with_store(&["by_key", "by_field"], |store| async move {
        let config = config();
        let names: Vec<String> = config.service_names();
        let mut runner = TestRunner::new(Cases {
            cases: 24,
            ..Cases::default()
        });
        let (mut case, mut expected_total) = (0i32, 0i64);
        let cases: Vec<Vec<Raw>> = (0..24)
            .map(|_| records().new_tree(&mut runner).unwrap().current())
            .collect();
        for raw in cases {
            case += 1;
            let mut batch = Batch::default();
            let mut seen = Seen::default();
            let n = raw.len() as i64;
            for (offset, (key, payload, header)) in raw.iter().enumerate() {
                let offset = offset as i64;
                let (service, side, topic) = match offset % 4 {
                    0 => (0, Side::Baseline, "k"),
                    1 => (0, Side::Candidate, "bento.k"),
                    2 => (1, Side::Baseline, "f"),
                    _ => (1, Side::Candidate, "bento.f"),
                };
                let record = RecordView {
                    topic: Cow::Borrowed(topic),
                    partition: case,
                    offset,
                    timestamp_ms: Some(1_000 + offset),
                    headers: vec![(Cow::Borrowed("h"), header.as_deref().map(Cow::Borrowed))],
                    key: key.as_deref().map(Cow::Borrowed),
                    payload: payload.as_deref().map(Cow::Borrowed),
                };
                let event_ms = admit(
                    (&config, &crate::core::avro::Schemas::default()),
                    (&mut batch, &mut seen),
                    (service, side),
                    &record,
                    offset,
                );
                batch.advance((topic, case, offset), (service, side), None, event_ms);
            }
            let stored = store
                .checkpoint(&names, &batch)
                .await
                .unwrap_or_else(|e| panic!("case {case}: the checkpoint failed: {e}\n{raw:?}"));
            assert_eq!(stored.records as i64, n, "case {case}");
            // Every record under exactly one (kind, reason), remarks (`flagged`) aside.
            let counted: i64 = stored
                .tallies
                .iter()
                .filter(|(t, _)| t.kind != TallyKind::Flagged)
                .map(|(_, n)| *n)
                .sum();
            assert_eq!(counted, n, "case {case}: {:?}", stored.tallies);
            for topic in ["k", "bento.k", "f", "bento.f"] {
                let next: Option<i64> = sqlx::query_scalar(
                    "SELECT next_offset FROM partitions WHERE topic = $1 AND partition = $2",
                )
                .bind(topic)
                .bind(case)
                .fetch_optional(&store.pool)
                .await
                .unwrap();
                let last = (0..n).filter(|o| topic_of(*o) == topic).max();
                assert_eq!(next, last.map(|o| o + 1), "case {case}, topic {topic}");
            }
            expected_total += n;
            // What the store holds now: every record of every case so far, exactly once.
            let total: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(records), 0)::int8 FROM tallies WHERE kind <> 'flagged'",
            )
            .fetch_one(&store.pool)
            .await
            .unwrap();
            assert_eq!(total, expected_total, "case {case}");
        }
    })
    .await;
}

fn topic_of(offset: i64) -> &'static str {
    match offset % 4 {
        0 => "k",
        1 => "bento.k",
        2 => "f",
        _ => "bento.f",
    }
}
