//! The maintained parity against the full join it replaces, on a real database: checkpoints from
//! two writers (the two sides of the same keys, as two replicas would write them) race each other
//! and the refreshes; after every round the kept summary and mismatch pages equal the join's.

use super::*;
use crate::core::operation::Operation;
use crate::model::Side;
use crate::store::batch::{Batch, BatchEvent};
use crate::store::test_db::with_store;
use crate::store::{read, Store};

/// A small deterministic generator (xorshift64*): every run replays the same rounds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One side's writer: its topic and the next offset it builds on.
struct Writer {
    side: Side,
    topic: &'static str,
    next: Option<i64>,
    identity: u128,
}

/// An event of key `key` as the generator draws it (digest, operation, event time).
#[derive(Clone, Copy)]
struct Drawn {
    key: u128,
    digest: u128,
    operation: Operation,
    event_ms: i64,
}

impl Drawn {
    /// An insert of `key` whose digest is the key itself.
    fn insert(key: u128, event_ms: i64) -> Self {
        Drawn {
            key,
            digest: key,
            operation: Operation::Insert,
            event_ms,
        }
    }
}

impl Writer {
    fn new(side: Side, topic: &'static str, identity: u128) -> Self {
        Writer {
            side,
            topic,
            next: None,
            identity,
        }
    }

    fn batch(&mut self, events: &[Drawn]) -> Batch {
        let mut b = Batch::default();
        let mut offset = self.next.unwrap_or(0);
        for d in events {
            self.identity += 1;
            let e = BatchEvent {
                service: 0,
                side: self.side,
                key_hash: d.key,
                position: 0,
                sequence: offset as u128,
                operation: d.operation,
                digest: d.digest,
                identity: self.identity,
                arrival: offset,
                event_ms: d.event_ms,
                window_start_ms: 0,
                partition: 0,
                offset,
                record_ms: Some(d.event_ms),
            };
            let content = (d.operation != Operation::Delete)
                .then(|| format!("{{\"v\":{}}}", d.digest).into_bytes());
            b.add_event(e, format!("k{}", d.key).as_bytes(), content);
            b.remember(self.topic, 0, e.identity);
            b.advance(
                (self.topic, 0, offset),
                (0, self.side),
                self.next,
                Some(d.event_ms),
            );
            offset += 1;
        }
        if !events.is_empty() {
            self.next = Some(offset);
        }
        b
    }
}

/// Every page of differing keys, through `page`.
async fn all_pages<F, Fut>(page: F) -> Vec<read::MismatchItem>
where
    F: Fn(Option<Uuid>) -> Fut,
    Fut: std::future::Future<Output = Result<MismatchPage, StoreError>>,
{
    let (mut items, mut cursor) = (Vec::new(), None);
    loop {
        let p = page(cursor).await.unwrap();
        items.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c.parse().unwrap()),
            None => return items,
        }
    }
}

/// The kept parity of `at` answers exactly as the full join does, at several settling bounds.
async fn assert_same_as_join(pool: &PgPool, at: EpochKey, bounds: &[Option<i64>], round: usize) {
    assert!(maintained(pool, at).await.unwrap());
    for &until in bounds {
        let kept = key_summary(pool, at, until).await.unwrap();
        let joined = read::key_summary(pool, at, until).await.unwrap();
        assert_eq!(kept, joined, "round {round}, settled until {until:?}");
        let kept = all_pages(|c| mismatches(pool, at, None, until, 7, c)).await;
        let joined = all_pages(|c| read::mismatches(pool, at, None, until, 7, c)).await;
        assert_eq!(
            kept, joined,
            "round {round}: mismatch pages, until {until:?}"
        );
    }
}

async fn checkpoint(store: Store, batch: Batch) {
    store.checkpoint(&["s".into()], &batch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_parity_equals_the_full_join_with_two_writers_racing_the_refresh() {
    with_store(&["s"], |store| async move {
        let at = EpochKey::first(store.service_id("s").unwrap());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut baseline = Writer::new(Side::Baseline, "b", 0);
        let mut candidate = Writer::new(Side::Candidate, "c", 1 << 64);
        // Before anything is written: the first refresh builds an empty parity.
        assert!(refresh(&store.pool, at).await.unwrap().built);
        for round in 0..24usize {
            let base_ms = 1_000 * round as i64;
            let mut b_events = Vec::new();
            let mut c_events = Vec::new();
            for _ in 0..rng.below(12) + 1 {
                let key = u128::from(rng.below(40)) + 1;
                let operation = [Operation::Insert, Operation::Update, Operation::Delete]
                    [rng.below(3) as usize];
                let d = Drawn {
                    key,
                    digest: key * 7 + u128::from(rng.below(2)),
                    operation,
                    event_ms: base_ms + rng.below(1_000) as i64,
                };
                b_events.push(d);
                // The candidate mostly follows, sometimes late (next round), differently or not
                // at all; now and then it has an event of its own.
                if rng.chance(80) {
                    let mut c = d;
                    if rng.chance(10) {
                        c.digest += 100;
                    }
                    c_events.push(c);
                }
                if rng.chance(5) {
                    c_events.push(Drawn {
                        key: u128::from(rng.below(40)) + 100,
                        ..d
                    });
                }
            }
            let (bb, cb) = (baseline.batch(&b_events), candidate.batch(&c_events));
            // The two sides' checkpoints and a refresh, all at once.
            let (a, b) = (store.clone(), store.clone());
            let pool = store.pool.clone();
            let (ra, rb, rr) = tokio::join!(
                tokio::spawn(checkpoint(a, bb)),
                tokio::spawn(checkpoint(b, cb)),
                tokio::spawn(async move { refresh(&pool, at).await.unwrap() }),
            );
            ra.unwrap();
            rb.unwrap();
            rr.unwrap();
            let done = refresh(&store.pool, at).await.unwrap();
            assert!(!done.built, "round {round}: built once, then kept");
            let bounds = [
                None,
                Some(base_ms - 1_500),
                Some(base_ms + 500),
                Some(i64::MAX),
            ];
            assert_same_as_join(&store.pool, at, &bounds, round).await;
        }
        let s = key_summary(&store.pool, at, Some(i64::MAX)).await.unwrap();
        // The rounds exercised every class (else the comparison proves little).
        assert!(s.matched > 0, "{s:?}");
        assert!(s.settled.missing_in_candidate > 0, "{s:?}");
        assert!(s.settled.extra_in_candidate > 0, "{s:?}");
        assert!(s.settled.mismatched > 0, "{s:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reads_only_what_changed_since_the_previous_one() {
    with_store(&["s"], |store| async move {
        let at = EpochKey::first(store.service_id("s").unwrap());
        let mut w = Writer::new(Side::Baseline, "b", 0);
        let events = |keys: std::ops::Range<u128>, ms: i64| -> Vec<Drawn> {
            keys.map(|key| Drawn::insert(key, ms)).collect()
        };
        checkpoint(store.clone(), w.batch(&events(1..1_001, 10))).await;
        let built = refresh(&store.pool, at).await.unwrap();
        assert!(built.built);
        let s = key_summary(&store.pool, at, None).await.unwrap();
        assert_eq!((s.total, s.in_flight.missing_in_candidate), (1_000, 1_000));
        // Nothing new: nothing read.
        assert_eq!(
            refresh(&store.pool, at).await.unwrap(),
            Refreshed::default()
        );
        // Three keys change (two of them again in a second checkpoint): one log row each,
        // three keys reclassified, not a thousand.
        checkpoint(store.clone(), w.batch(&events(5..8, 20))).await;
        checkpoint(store.clone(), w.batch(&events(5..7, 30))).await;
        let done = refresh(&store.pool, at).await.unwrap();
        assert_eq!(
            (done.built, done.reclassified, done.log_rows),
            (false, 3, 2)
        );
        let s = key_summary(&store.pool, at, Some(25)).await.unwrap();
        assert_eq!(
            s,
            read::key_summary(&store.pool, at, Some(25)).await.unwrap()
        );
        // Keys 5 and 6 changed at 30, after the bound: in flight; the rest settled.
        assert_eq!(
            (
                s.in_flight.missing_in_candidate,
                s.settled.missing_in_candidate
            ),
            (2, 998)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pruner_keeps_what_the_refresh_has_not_read() {
    with_store(&["s"], |store| async move {
        let at = EpochKey::first(store.service_id("s").unwrap());
        let mut w = Writer::new(Side::Baseline, "b", 0);
        let one = Drawn::insert;
        checkpoint(store.clone(), w.batch(&[one(1, 10)])).await;
        refresh(&store.pool, at).await.unwrap();
        checkpoint(store.clone(), w.batch(&[one(2, 20)])).await;
        checkpoint(store.clone(), w.batch(&[one(3, 1_000_000)])).await;
        let logged = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM event_log")
                .fetch_one(&store.pool)
                .await
                .unwrap()
        };
        // Both older rows lie beyond a rewind of 1 s; only the one the refresh read may go.
        let pruned = crate::store::retention::prune_log(&store.pool, at.service_id, 1_000, 10)
            .await
            .unwrap();
        assert_eq!((pruned, logged().await), (1, 2));
        let done = refresh(&store.pool, at).await.unwrap();
        assert_eq!(done.reclassified, 2);
        let pruned = crate::store::retention::prune_log(&store.pool, at.service_id, 1_000, 10)
            .await
            .unwrap();
        assert_eq!((pruned, logged().await), (1, 1));
        let s = key_summary(&store.pool, at, None).await.unwrap();
        assert_eq!(s.total, 3);
    })
    .await;
}
