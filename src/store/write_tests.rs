//! The checkpoint against a real database that refuses some of what it is given: a refusal for a
//! value (a data error) leaves out exactly the refused keys and stores the rest; any other
//! refusal stores nothing and is returned, to be retried.

use super::UNSTORABLE;
use crate::core::operation::Operation;
use crate::model::{Side, TallyKind};
use crate::store::batch::TallyId;
use crate::store::batch::{Batch, BatchEvent};
use crate::store::test_db::with_store;
use crate::store::Store;

fn event(key_hash: u128, offset: i64) -> BatchEvent {
    BatchEvent {
        service: 0,
        side: Side::Baseline,
        key_hash,
        position: 0,
        sequence: offset as u128,
        operation: Operation::Insert,
        digest: key_hash * 7,
        identity: key_hash * 1_000 + offset as u128,
        arrival: offset,
        event_ms: 1_000 + offset,
        window_start_ms: 0,
        partition: 0,
        offset,
        record_ms: Some(1_000 + offset),
    }
}

/// Keys `a`, `evil`, `b` on partition t/0, one insert each (offsets 0, 1, 2).
fn batch() -> Batch {
    let mut b = Batch::default();
    for (offset, key) in [(0, "a"), (1, "evil"), (2, "b")] {
        let e = event(offset as u128 + 1, offset);
        b.add_event(
            e,
            key.as_bytes(),
            Some(format!("{{\"k\":\"{key}\"}}").into_bytes()),
        );
        b.remember("t", 0, e.identity);
        b.advance(
            ("t", 0, offset),
            (0, Side::Baseline),
            None,
            Some(e.event_ms),
        );
    }
    b
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_database_refuses_is_left_out_and_everything_else_stored() {
    with_store(&["s"], |store| async move {
        sqlx::query(
            "ALTER TABLE keys ADD CONSTRAINT refuses_evil CHECK (key_bytes <> 'evil'::bytea)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let stored = store.checkpoint(&["s".into()], &batch()).await.unwrap();
        assert_eq!(
            (stored.records, stored.new_events, stored.unstorable),
            (3, 2, 1)
        );
        assert_eq!(
            stored.tallies[&TallyId::of(0, Side::Baseline, TallyKind::Unparseable, UNSTORABLE)],
            1
        );
        assert_eq!(
            stored.tallies[&TallyId::of(0, Side::Baseline, TallyKind::Operation, "insert")],
            2
        );
        assert_eq!(scalar(&store, "SELECT count(*) FROM keys").await, 2);
        assert_eq!(
            scalar(&store, "SELECT next_offset FROM partitions").await,
            3
        );
        // Every record once: two events, one unstorable.
        assert_eq!(
            scalar(&store, "SELECT sum(records)::int8 FROM tallies").await,
            3
        );
        assert_eq!(
            scalar(
                &store,
                "SELECT sum(events)::int8 FROM tallies WHERE kind = 'operation'"
            )
            .await,
            2
        );
        assert_eq!(
            scalar(&store, "SELECT sum(events)::int8 FROM windows").await,
            2
        );
        // The refused event's identity is not stored: only the two counted ones are.
        assert_eq!(
            scalar(&store, "SELECT sum(length(ids))::int8 FROM event_ids").await,
            32
        );
        let (reason, key, offset): (String, Vec<u8>, i64) =
            sqlx::query_as("SELECT reason, key_bytes, kafka_offset FROM bad_messages")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(
            (reason.as_str(), key.as_slice(), offset),
            ("unstorable", &b"evil"[..], 1)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_is_not_about_data_stores_nothing_and_is_returned() {
    with_store(&["s"], |store| async move {
        sqlx::raw_sql(
            "CREATE FUNCTION deny() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'permission denied for table keys' USING ERRCODE = '42501'; END $$;
             CREATE TRIGGER deny BEFORE INSERT ON keys FOR EACH ROW EXECUTE FUNCTION deny();",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let e = store.checkpoint(&["s".into()], &batch()).await.unwrap_err();
        assert!(!e.is_data_error(), "{e}");
        assert!(e.to_string().contains("permission denied"), "{e}");
        assert_eq!(scalar(&store, "SELECT count(*) FROM partitions").await, 0);
        assert_eq!(scalar(&store, "SELECT count(*) FROM tallies").await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_contents_of_any_bytes_are_stored_as_they_are() {
    with_store(&["s"], |store| async move {
        let mut b = Batch::default();
        let key = [0x00, 0xff, 0xfe, 0x80, b'b', b'i', b'n'];
        let e = event(9, 0);
        b.add_event(e, &key, Some(vec![b'x', 0, b'y']));
        b.remember("t", 0, e.identity);
        b.advance(("t", 0, 0), (0, Side::Baseline), None, Some(e.event_ms));
        store.checkpoint(&["s".into()], &b).await.unwrap();
        let (stored_key, content): (Vec<u8>, Vec<u8>) =
            sqlx::query_as("SELECT key_bytes, final_content FROM keys")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(
            (stored_key.as_slice(), content.as_slice()),
            (&key[..], &b"x\0y"[..])
        );
    })
    .await;
}

#[test]
fn data_errors_are_told_from_the_rest_by_sqlstate_class() {
    use crate::store::StoreError;
    assert!(!StoreError::Database(sqlx::Error::PoolTimedOut).is_data_error());
    assert!(!StoreError::UnknownService("x".into()).is_data_error());
}

/// The dedupe horizon in the store: each identity row carries its batch's newest event time, a
/// restart loads only the rows within the horizon behind the partition's newest event, and
/// retention prunes the rows behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_are_loaded_and_pruned_by_the_horizon() {
    with_store(&["s"], |store| async move {
        let names = ["s".to_owned()];
        // Two checkpoints of partition t/0: events at ~1 s, then at ~100 s of event time.
        for (offset, event_ms) in [(0, 1_000), (1, 100_000)] {
            let mut b = Batch::default();
            let e = BatchEvent {
                event_ms,
                ..event(offset as u128 + 1, offset)
            };
            b.add_event(e, b"k", None);
            b.remember("t", 0, e.identity);
            // The second builds on the first's stored offset.
            let expected = (offset > 0).then_some(offset);
            b.advance(
                ("t", 0, offset),
                (0, Side::Baseline),
                expected,
                Some(event_ms),
            );
            store.checkpoint(&names, &b).await.unwrap();
        }
        let load = |horizon_ms| {
            let store = store.clone();
            async move {
                store
                    .partition_identities(Side::Baseline, "t", 0, horizon_ms)
                    .await
                    .unwrap()
            }
        };
        let all = load(1_000_000).await;
        assert_eq!(all.newest_ms, Some(100_000));
        assert_eq!(all.rows.len(), 2, "both rows within a long horizon");
        let recent = load(10_000).await;
        assert_eq!(
            recent.rows.iter().map(|(_, at)| *at).collect::<Vec<_>>(),
            vec![Some(100_000)],
            "only the row within the horizon is read"
        );
        let id = store.service_id("s").unwrap();
        let pruned = crate::store::retention::prune_identities(&store.pool, id, 10_000, 100)
            .await
            .unwrap();
        assert_eq!(pruned, 1);
        assert_eq!(scalar(&store, "SELECT count(*) FROM event_ids").await, 1);
        assert_eq!(
            load(1_000_000).await.rows.len(),
            1,
            "what the horizon no longer needs is gone"
        );
    })
    .await;
}
