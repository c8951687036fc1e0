//! Epochs against a real database: a started epoch's rows equal a fresh state that only ever saw
//! the events at or after its start (also for a batch filled under the previous epoch and
//! checkpointed after the start), refused starts name the bound, and epochs are append-only.

use super::*;
use crate::core::range::BEFORE_START;
use crate::model::Side;
use crate::store::batch::{Batch, BatchEvent};
use crate::store::retention::prune_log;
use crate::store::test_db::with_store;
use crate::store::Store;

const WINDOW_MS: i64 = 1_000;
/// The new epoch's start: events on both sides of it, keys that straddle it.
const T: i64 = 11_000;
const NOW: i64 = 1_000_000;

/// A deterministic mix of inserts, updates and deletes of 30 keys on both sides, event times
/// 1 000..21 000 ms in no particular order (so every batch straddles `T`), arrival order = index.
fn events() -> Vec<(BatchEvent, bool)> {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    (0..240i64)
        .map(|i| {
            let key = u128::from(next(30) as u8) + 1;
            let event_ms = 1_000 + next(20_000) as i64;
            let operation = match next(6) {
                0 => Operation::Delete,
                1 | 2 => Operation::Insert,
                _ => Operation::Update,
            };
            let side = if next(2) == 0 {
                Side::Baseline
            } else {
                Side::Candidate
            };
            let event = BatchEvent {
                service: 0,
                side,
                key_hash: key,
                position: 0,
                sequence: i as u128,
                operation,
                digest: (key << 64) ^ (i as u128 * 0x9e37_79b9),
                identity: 1_000_000 + i as u128,
                arrival: i,
                event_ms,
                window_start_ms: event_ms - event_ms % WINDOW_MS,
                partition: 0,
                offset: i,
                record_ms: Some(event_ms),
            };
            // One record in eight is delivered twice.
            (event, next(8) == 0)
        })
        .collect()
}

/// Fill a batch with `events`; with `from`, events before it are counted as `before_start` (as
/// intake does under an epoch that starts there).
fn batch(events: &[(BatchEvent, bool)], from: Option<i64>) -> Batch {
    let mut b = Batch::default();
    for (e, twice) in events {
        for delivery in 0..(1 + usize::from(*twice)) {
            if from.is_some_and(|f| e.event_ms < f) {
                b.without_event()
                    .tally(0, e.side, TallyKind::Skipped, BEFORE_START);
            } else if delivery == 0 {
                let key = format!("k{}", e.key_hash);
                let content = format!("{{\"v\":{}}}", e.arrival).into_bytes();
                b.add_event(*e, key.as_bytes(), Some(content));
            } else {
                b.add_duplicate(e);
            }
        }
    }
    b
}

/// The rows of one epoch, each as text, in a stable order (final content aside: a rebuilt key's
/// content is only known when its final event is the one the epoch before stored).
async fn rows(store: &Store, epoch: i64) -> [Vec<String>; 3] {
    let q = |sql: &'static str| async move {
        sqlx::query_scalar::<_, String>(sql)
            .bind(epoch)
            .fetch_all(&store.pool)
            .await
            .unwrap()
    };
    [
        q(
            "SELECT row(key_hash, side, key_bytes, events, fingerprint_sum, final_position, \
                  final_operation, final_arrival, final_digest, last_event_ms)::text \
           FROM keys WHERE epoch = $1 ORDER BY 1",
        )
        .await,
        q(
            "SELECT row(window_start_ms, side, operation, events, fingerprint_sum)::text \
           FROM windows WHERE epoch = $1 ORDER BY 1",
        )
        .await,
        q(
            "SELECT row(side, kind, name, records, events)::text FROM tallies \
           WHERE epoch = $1 ORDER BY 1",
        )
        .await,
    ]
}

fn new_epoch(service_id: i16, starts_at_ms: i64) -> NewEpoch<'static> {
    NewEpoch {
        service_id,
        service: "s",
        starts_at_ms,
        reason: "the fix went out",
        created_by: "alice",
        compare_from_ms: None,
        window_ms: WINDOW_MS,
        now_ms: NOW,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_epoch_equals_a_state_that_saw_only_its_events() {
    let all = events();
    let (first, rest) = all.split_at(90);
    let (second, third) = rest.split_at(70);
    let names = ["s".to_owned()];
    // The oracle: a fresh state whose lanes compared from T all along.
    let expected = {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let oracle = all.clone();
        with_store(&["s"], move |store| async move {
            for part in oracle.chunks(80) {
                store
                    .checkpoint(&["s".into()], &batch(part, Some(T)))
                    .await
                    .unwrap();
            }
            tx.send(rows(&store, FIRST_EPOCH).await).unwrap();
        })
        .await;
        rx.await.unwrap()
    };
    assert!(
        expected[0].len() > 20 && expected[1].len() > 20,
        "a mix worth comparing"
    );
    let (first, second, third) = (first.to_vec(), second.to_vec(), third.to_vec());
    let all = all.clone();
    with_store(&["s"], move |store| async move {
        let id = store.service_id("s").unwrap();
        store
            .checkpoint(&names, &batch(&first, None))
            .await
            .unwrap();
        // Filled before the epoch starts, checkpointed after it: rebased at the checkpoint.
        let late = batch(&third, None);
        store
            .checkpoint(&names, &batch(&second, None))
            .await
            .unwrap();
        let before = rows(&store, FIRST_EPOCH).await;
        let epoch = start(&store.pool, &new_epoch(id, T)).await.unwrap();
        assert_eq!(
            (epoch.id > FIRST_EPOCH, epoch.created_by.as_str()),
            (true, "alice")
        );
        assert_eq!(epoch.scope().starts_at_ms, Some(T));
        store.checkpoint(&names, &late).await.unwrap();
        assert_eq!(
            rows(&store, epoch.id).await,
            expected,
            "keys, windows and tallies of the new epoch"
        );
        assert_eq!(
            rows(&store, FIRST_EPOCH).await,
            before,
            "the first epoch stays as it ended"
        );
        // The row sampler's `scope = "changed"` draws from exactly the new epoch's keys.
        let at = EpochKey {
            service_id: id,
            epoch: epoch.id,
        };
        let mut touched: Vec<String> = all
            .iter()
            .filter(|(e, _)| e.event_ms >= T)
            .map(|(e, _)| format!("k{}", e.key_hash))
            .collect();
        touched.sort();
        touched.dedup();
        let mut drawn = crate::store::rows::changed_keys(&store.pool, at, 1_000)
            .await
            .unwrap();
        drawn.sort();
        assert_eq!(drawn, touched);
        let few = crate::store::rows::changed_keys(&store.pool, at, 5)
            .await
            .unwrap();
        assert_eq!(few.len(), 5);
        assert!(few.iter().all(|k| touched.contains(k)), "{few:?}");
        let list = list(&store.pool, id, "s", None).await.unwrap();
        assert_eq!(
            list.iter().map(|e| e.epoch.id).collect::<Vec<_>>(),
            vec![epoch.id, FIRST_EPOCH],
            "newest first"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_starts_name_their_bound_and_epochs_are_append_only() {
    with_store(&["s"], |store| async move {
        let id = store.service_id("s").unwrap();
        let names = ["s".to_owned()];
        store
            .checkpoint(&names, &batch(&events(), None))
            .await
            .unwrap();
        let refused = |r: Result<Epoch, StartRefused>| match r {
            Err(
                e @ (StartRefused::Future { .. }
                | StartRefused::BeforeCurrent { .. }
                | StartRefused::BeyondRewind { .. }),
            ) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let future = refused(start(&store.pool, &new_epoch(id, NOW + 1)).await);
        assert!(future.starts_with("must not lie in the future"), "{future}");
        let mut bounded = new_epoch(id, 4_000);
        bounded.compare_from_ms = Some(5_000);
        let early = refused(start(&store.pool, &bounded).await);
        assert!(
            early.starts_with("must not lie before the current epoch's start"),
            "{early}"
        );
        let second = start(&store.pool, &new_epoch(id, 8_000)).await.unwrap();
        let before = refused(start(&store.pool, &new_epoch(id, 7_999)).await);
        assert!(
            before.contains("00:00:08"),
            "names the current start: {before}"
        );
        // The log kept 5 s behind the newest event (~21 s): an epoch at 9 s can no longer be built.
        while prune_log(&store.pool, id, 5_000, 2).await.unwrap() > 0 {}
        let pruned = refused(start(&store.pool, &new_epoch(id, 9_000)).await);
        assert!(pruned.contains("rewind_minutes"), "{pruned}");
        let third = start(&store.pool, &new_epoch(id, 17_000)).await.unwrap();
        assert!(third.id > second.id);
        for sql in [
            "UPDATE epochs SET reason = 'rewritten'",
            "DELETE FROM epochs",
            "TRUNCATE epochs",
        ] {
            let e = sqlx::query(sql).execute(&store.pool).await.unwrap_err();
            assert!(
                e.to_string().contains("epochs is append-only"),
                "{sql}: {e}"
            );
        }
    })
    .await;
}
