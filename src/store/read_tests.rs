//! The read-side SQL against a real, fresh Postgres database (one per test, dropped afterwards).

use super::*;
use crate::model::MismatchKind;
use crate::store::test_db::with_db;
use crate::store::EpochKey;
use crate::store::{BASELINE, CANDIDATE};
use serde_json::json;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

async fn service(pool: &PgPool, name: &str) -> i16 {
    sqlx::query_scalar("INSERT INTO services (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// One `keys` row as the checkpoint writer would leave it.
struct Key<'a> {
    hash: u128,
    side: i16,
    events: i64,
    fingerprint: &'a str,
    operation: Operation,
    digest: Option<u128>,
    content: Option<Value>,
    last_event_ms: i64,
}

impl Key<'_> {
    fn new(hash: u128, side: i16, last_event_ms: i64) -> Self {
        Key {
            hash,
            side,
            events: 1,
            fingerprint: "100",
            operation: Operation::Update,
            digest: Some(hash),
            content: Some(json!({"id": 1})),
            last_event_ms,
        }
    }

    async fn insert(self, pool: &PgPool, service_id: i16) {
        sqlx::query(
            "INSERT INTO keys (service_id, key_hash, side, key_bytes, events, fingerprint_sum, \
             final_position, final_operation, final_arrival, final_digest, final_content, \
             last_event_ms, partition) \
             VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, 0, $9, $10, $11, 0)",
        )
        .bind(service_id)
        .bind(Uuid::from_u128(self.hash))
        .bind(self.side)
        .bind(format!("k{:02}", self.hash).into_bytes())
        .bind(self.events)
        .bind(self.fingerprint)
        .bind(Uuid::nil())
        .bind(self.operation as i16)
        .bind(self.digest.map(Uuid::from_u128))
        .bind(self.content.map(|c| c.to_string().into_bytes()))
        .bind(self.last_event_ms)
        .execute(pool)
        .await
        .unwrap();
    }

    fn deleted(mut self) -> Self {
        self.operation = Operation::Delete;
        self.digest = None;
        self.content = None;
        self
    }
}

/// Keys k01…k07 of one service; with `settled_until_ms = 5000`:
/// k01 matched; k02 missing, settled; k03 extra, in flight; k04 mismatched content, settled;
/// k05 deleted vs updated, in flight; k06 matched (both deleted); k07 mismatched event count,
/// settled exactly at the bound.
async fn seed_keys(pool: &PgPool, id: i16) {
    let same = |side| Key {
        digest: Some(1),
        events: 2,
        ..Key::new(1, side, 1000 + i64::from(side) * 100)
    };
    same(BASELINE).insert(pool, id).await;
    same(CANDIDATE).insert(pool, id).await;
    Key::new(2, BASELINE, 1000).insert(pool, id).await;
    Key::new(3, CANDIDATE, 9000).insert(pool, id).await;
    Key {
        content: Some(json!({"a": 1, "b": "x"})),
        ..Key::new(4, BASELINE, 2000)
    }
    .insert(pool, id)
    .await;
    let other_content = Key {
        content: Some(json!({"a": 2.50})),
        fingerprint: "7",
        digest: Some(40),
        ..Key::new(4, CANDIDATE, 3000)
    };
    other_content.insert(pool, id).await;
    Key::new(5, BASELINE, 4000).deleted().insert(pool, id).await;
    Key::new(5, CANDIDATE, 6000).insert(pool, id).await;
    Key::new(6, BASELINE, 10).deleted().insert(pool, id).await;
    Key::new(6, CANDIDATE, 20).deleted().insert(pool, id).await;
    Key {
        events: 2,
        ..Key::new(7, BASELINE, 5000)
    }
    .insert(pool, id)
    .await;
    Key {
        events: 3,
        ..Key::new(7, CANDIDATE, 5000)
    }
    .insert(pool, id)
    .await;
}

#[tokio::test]
async fn key_summary_classifies_kinds_and_settling() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        let other = service(&pool, "payments").await;
        seed_keys(&pool, id).await;
        // Another service's rows must never leak into this one's answers.
        Key::new(2, CANDIDATE, 1).insert(&pool, other).await;
        Key::new(8, BASELINE, 1).insert(&pool, other).await;

        let s = key_summary(&pool, EpochKey::first(id), Some(5000))
            .await
            .unwrap();
        assert_eq!((s.total, s.matched), (7, 2));
        assert_eq!(
            (
                s.settled.missing_in_candidate,
                s.settled.extra_in_candidate,
                s.settled.mismatched
            ),
            (1, 0, 2)
        );
        assert_eq!(
            (
                s.in_flight.missing_in_candidate,
                s.in_flight.extra_in_candidate,
                s.in_flight.mismatched
            ),
            (0, 1, 1)
        );

        // Nothing settled yet: every difference is in flight.
        let s = key_summary(&pool, EpochKey::first(id), None).await.unwrap();
        assert_eq!(s.settled.total(), 0);
        assert_eq!(
            (
                s.in_flight.missing_in_candidate,
                s.in_flight.extra_in_candidate,
                s.in_flight.mismatched
            ),
            (1, 1, 3)
        );

        let s = key_summary(&pool, EpochKey::first(other), Some(5000))
            .await
            .unwrap();
        assert_eq!(
            (
                s.total,
                s.matched,
                s.settled.missing_in_candidate,
                s.settled.extra_in_candidate
            ),
            (2, 0, 1, 1)
        );
    })
    .await;
}

#[tokio::test]
async fn mismatches_page_by_key_hash_with_fields_and_states() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        seed_keys(&pool, id).await;

        let page = mismatches(&pool, EpochKey::first(id), None, Some(5000), 2, None)
            .await
            .unwrap();
        let keys: Vec<_> = page.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["k02", "k03"]);
        assert_eq!(page.items[0].kind, MismatchKind::MissingInCandidate);
        assert_eq!(page.items[0].state, MismatchState::Settled);
        assert!(page.items[0].candidate.is_none());
        assert_eq!(page.items[1].kind, MismatchKind::ExtraInCandidate);
        assert_eq!(page.items[1].state, MismatchState::InFlight);
        assert!(page.items[1].baseline.is_none());
        let cursor: Uuid = page.next_cursor.unwrap().parse().unwrap();
        assert_eq!(cursor, Uuid::from_u128(3));

        let page = mismatches(
            &pool,
            EpochKey::first(id),
            None,
            Some(5000),
            2,
            Some(cursor),
        )
        .await
        .unwrap();
        let [k04, k05] = &page.items[..] else {
            panic!("{page:?}")
        };
        assert_eq!(
            (k04.key.as_str(), k04.kind, k04.state),
            ("k04", MismatchKind::Mismatched, MismatchState::Settled)
        );
        assert_eq!(
            k04.fields,
            [
                MismatchField {
                    pointer: "/a".into(),
                    baseline: Some(json!(1)),
                    candidate: Some(json!(2.50))
                },
                MismatchField {
                    pointer: "/b".into(),
                    baseline: Some(json!("x")),
                    candidate: None
                },
            ]
        );
        assert_eq!(k05.state, MismatchState::InFlight);
        let b = k05.baseline.as_ref().unwrap();
        assert_eq!(
            (
                b.deleted,
                b.final_operation.as_str(),
                b.last_event_ms,
                b.events
            ),
            (true, "delete", 4000, 1)
        );
        assert!(!k05.candidate.as_ref().unwrap().deleted);
        // One side deleted: no content to diff, the sides above say why.
        assert!(k05.fields.is_empty());

        let cursor = page.next_cursor.unwrap().parse().unwrap();
        let page = mismatches(
            &pool,
            EpochKey::first(id),
            None,
            Some(5000),
            2,
            Some(cursor),
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].key, "k07");
        assert!(
            page.items[0].fields.is_empty(),
            "same content, other event count"
        );
        assert_eq!(page.next_cursor, None);
    })
    .await;
}

#[tokio::test]
async fn mismatches_filter_by_kind_and_end_exactly_on_the_last_item() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        seed_keys(&pool, id).await;
        let page = mismatches(
            &pool,
            EpochKey::first(id),
            Some(MismatchKind::Mismatched),
            None,
            3,
            None,
        )
        .await
        .unwrap();
        let keys: Vec<_> = page.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["k04", "k05", "k07"]);
        assert!(page
            .items
            .iter()
            .all(|i| i.state == MismatchState::InFlight));
        assert_eq!(page.next_cursor, None, "a full last page has no next page");

        let page = mismatches(
            &pool,
            EpochKey::first(id),
            Some(MismatchKind::ExtraInCandidate),
            Some(5000),
            10,
            None,
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].key, "k03");
    })
    .await;
}

async fn tally(
    pool: &PgPool,
    id: i16,
    side: i16,
    kind: &str,
    name: &str,
    records: i64,
    events: i64,
) {
    sqlx::query("INSERT INTO tallies VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(side)
        .bind(kind)
        .bind(name)
        .bind(records)
        .bind(events)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn side_counts_fold_tallies() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        tally(&pool, id, BASELINE, "operation", "insert", 5, 4).await;
        tally(&pool, id, BASELINE, "operation", "update", 3, 3).await;
        tally(&pool, id, BASELINE, "rejected", "missing_key", 2, 0).await;
        tally(&pool, id, BASELINE, "skipped", "transaction_marker", 1, 0).await;
        tally(&pool, id, BASELINE, "unparseable", "invalid_json", 2, 0).await;
        tally(&pool, id, CANDIDATE, "operation", "insert", 4, 4).await;
        // A partition's log went back twice: remarks, not records.
        tally(&pool, id, CANDIDATE, "log_resets", "log_reset", 2, 0).await;

        let [b, c] = side_counts(&pool, EpochKey::first(id)).await.unwrap();
        assert_eq!(
            (b.records, b.events, b.duplicates, b.unparseable),
            (13, 7, 1, 2)
        );
        assert_eq!(
            b.by_operation,
            BTreeMap::from([("insert".into(), 4), ("update".into(), 3)])
        );
        assert_eq!(b.rejected, BTreeMap::from([("missing_key".into(), 2)]));
        assert_eq!(
            b.skipped,
            BTreeMap::from([("transaction_marker".into(), 1)])
        );
        assert_eq!(
            (
                c.records,
                c.events,
                c.duplicates,
                c.log_resets,
                b.log_resets
            ),
            (4, 4, 0, 2, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn partitions_list_progress() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        sqlx::query(
            "INSERT INTO partitions (topic, partition, service_id, side, next_offset, max_event_ms, end_offset) \
             VALUES ('bento.orders', 0, $1, 1, 10, NULL, 12), ('orders', 1, $1, 0, 7, 5000, NULL)",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
        let rows = partitions(&pool, id).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].topic.as_str(), rows[0].side, rows[0].max_event_ms), ("orders", BASELINE, Some(5000)));
        assert_eq!((rows[1].next_offset, rows[1].end_offset, rows[1].last_record_at), (10, Some(12), None));
    })
    .await;
}

async fn window(
    pool: &PgPool,
    id: i16,
    side: i16,
    start: i64,
    op: Operation,
    events: i64,
    fp: &str,
) {
    sqlx::query("INSERT INTO windows VALUES ($1, $2, $3, $4, $5, $6::numeric)")
        .bind(id)
        .bind(side)
        .bind(start)
        .bind(op as i16)
        .bind(events)
        .bind(fp)
        .execute(pool)
        .await
        .unwrap();
}

const MAX64: &str = "18446744073709551615";

/// Windows of one minute: 0 matched (fingerprints beyond 64 bits), 60000 unmatched (counts),
/// 120000 unmatched (an operation only on one side), 180000 matched (equal totals).
async fn seed_windows(pool: &PgPool, id: i16) {
    use Operation::{Insert, Update};
    for side in [BASELINE, CANDIDATE] {
        window(pool, id, side, 0, Insert, 3, MAX64).await;
        window(pool, id, side, 0, Update, 1, MAX64).await;
        window(pool, id, side, 120_000, Update, 1, "10").await;
    }
    window(pool, id, BASELINE, 60_000, Insert, 2, "200").await;
    window(pool, id, CANDIDATE, 60_000, Insert, 1, "100").await;
    window(pool, id, BASELINE, 120_000, Insert, 1, "5").await;
    window(pool, id, BASELINE, 180_000, Insert, 1, "7").await;
    window(pool, id, BASELINE, 180_000, Update, 1, "3").await;
    window(pool, id, CANDIDATE, 180_000, Insert, 1, "3").await;
    window(pool, id, CANDIDATE, 180_000, Update, 1, "7").await;
}

#[tokio::test]
async fn windows_newest_first_with_verdicts() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        seed_windows(&pool, id).await;

        let page = windows(&pool, EpochKey::first(id), 60_000, Some(120_000), 3)
            .await
            .unwrap();
        let starts: Vec<_> = page
            .iter()
            .map(|w| (w.start_ms, w.end_ms, w.settled, w.matched))
            .collect();
        assert_eq!(
            starts,
            [
                (180_000, 240_000, false, true),
                (120_000, 180_000, false, false),
                (60_000, 120_000, true, false)
            ]
        );
        let w = &page[1];
        assert_eq!(
            w.baseline.by_operation,
            BTreeMap::from([("insert".into(), 1), ("update".into(), 1)])
        );
        assert_eq!((w.baseline.events, w.candidate.events), (2, 1));
        assert_eq!(
            (
                w.baseline.fingerprint.as_str(),
                w.candidate.fingerprint.as_str()
            ),
            ("15", "10")
        );

        let all = windows(&pool, EpochKey::first(id), 60_000, Some(120_000), 10)
            .await
            .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[3].baseline.fingerprint, "36893488147419103230",
            "exact numeric, no u64 wrap"
        );
        assert!(all[3].matched && all[3].settled);
    })
    .await;
}

#[tokio::test]
async fn window_counts_cover_settled_windows_only() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        seed_windows(&pool, id).await;
        let c = window_counts(&pool, EpochKey::first(id), 60_000, Some(120_000))
            .await
            .unwrap();
        assert_eq!((c.settled_matched, c.settled_unmatched), (1, 1));
        assert_eq!(
            c.last_settled.map(|w| (w.start_ms, w.matched)),
            Some((60_000, false))
        );

        let c = window_counts(&pool, EpochKey::first(id), 60_000, None)
            .await
            .unwrap();
        assert_eq!(c, WindowCounts::default());
    })
    .await;
}

#[test]
fn kinds_parse_from_their_wire_names() {
    assert_eq!(
        MismatchKind::parse("extra_in_candidate"),
        Some(MismatchKind::ExtraInCandidate)
    );
    assert_eq!(MismatchKind::parse("Mismatched"), None);
}

#[tokio::test]
async fn partitions_carry_the_event_time_they_cover() {
    with_db(|pool| async move {
        let id = service(&pool, "orders").await;
        sqlx::query(
            "INSERT INTO partitions (topic, partition, service_id, side, next_offset, min_event_ms, max_event_ms) \
             VALUES ('orders', 0, $1, 0, 10, 1000, 50000)",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
        let rows = partitions(&pool, id).await.unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.min_event_ms, r.max_event_ms))
                .collect::<Vec<_>>(),
            [(Some(1000), Some(50000))]
        );
    })
    .await;
}
