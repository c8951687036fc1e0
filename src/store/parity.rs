//! Key-level parity kept up to date (`key_parity`, `parity_state`): each key of a service's epoch
//! classified as the full join of its two sides classifies it (`key_kind_sql!`), with the keys per
//! kind counted alongside. The owning evaluator refreshes it at the start of every round from the
//! keys the event log names as changed since its cursor, so a round costs what changed since the
//! previous one, not every key; summaries, in-flight counts and mismatch pages then read the
//! differing keys alone (partial indexes). `key_parity.last_event_ms` is current for differing
//! keys; a matched key keeps the one it had when it last changed class (settling never asks).
//!
//! Why it stays exact across replicas: a refresh reclassifies a key from both sides' committed
//! `keys` rows, whichever replica wrote them, so the two sides of one key checkpointed by two
//! replicas meet here as they meet in the join. The cursor is the oldest transaction still running
//! when the refresh read the log (`pg_snapshot_xmin`): every change it could not see was written by
//! a transaction at or after it, with log rows there too, and is read by the next refresh. Refreshes
//! of one service run one at a time (an advisory lock), since they adjust shared counts.

use crate::model::status::KeySummary;
use crate::model::{KindCounts, MismatchKind};
use crate::store::batch::counted_keys;
use crate::store::read::{self, MismatchPage};
use crate::store::{EpochKey, StoreError};
use rustc_hash::FxHashSet;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The advisory-lock kind serializing one service's parity refreshes.
const PARITY_LOCK: i32 = 0x7067_0004;
/// Event-log rows read per refresh step (one checkpoint writes at most two per service, one per
/// side): a step's transaction stays short however far the cursor is behind.
const LOG_ROWS_PER_STEP: i64 = 256;

/// What one refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// The epoch had no parity yet: every key was classified (once per epoch).
    pub built: bool,
    /// Distinct changed keys reclassified.
    pub reclassified: u64,
    /// Event-log rows read.
    pub log_rows: u64,
}

/// Keys per class: `[matched, missing_in_candidate, extra_in_candidate, mismatched]`.
type Classes = [i64; 4];

fn class_of(kind: &str) -> Result<usize, StoreError> {
    if kind == "matched" {
        return Ok(0);
    }
    MismatchKind::ALL
        .iter()
        .position(|k| k.as_str() == kind)
        .map(|i| i + 1)
        .ok_or_else(|| StoreError::Invalid(format!("key parity kind `{kind}`")))
}

/// Bring the parity of `at` up to date, and first finish any earlier epoch of the service that
/// was not (its last changes were checkpointed before this epoch started, so they are all in).
pub async fn refresh(pool: &PgPool, at: EpochKey) -> Result<Refreshed, StoreError> {
    let earlier: Vec<i64> = sqlx::query_scalar(
        "SELECT epoch FROM parity_state WHERE service_id = $1 AND epoch < $2 AND NOT final \
         ORDER BY epoch",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .fetch_all(pool)
    .await?;
    for epoch in earlier {
        let old = EpochKey { epoch, ..at };
        while step(pool, old).await?.1 {}
        sqlx::query("UPDATE parity_state SET final = true WHERE service_id = $1 AND epoch = $2")
            .bind(at.service_id)
            .bind(epoch)
            .execute(pool)
            .await?;
    }
    let mut total = Refreshed::default();
    loop {
        let (done, more) = step(pool, at).await?;
        total.built |= done.built;
        total.reclassified += done.reclassified;
        total.log_rows += done.log_rows;
        if !more {
            return Ok(total);
        }
    }
}

/// One transaction of a refresh; `true`: more of the log is waiting.
async fn step(pool: &PgPool, at: EpochKey) -> Result<(Refreshed, bool), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(PARITY_LOCK)
        .bind(i32::from(at.service_id))
        .execute(&mut *tx)
        .await?;
    // Read after the lock: a refresh that held it has committed its cursor.
    let cursor: Option<i64> = sqlx::query_scalar(
        "SELECT cursor_xid FROM parity_state WHERE service_id = $1 AND epoch = $2",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(cursor) = cursor else {
        build(&mut tx, at).await?;
        tx.commit().await?;
        let built = Refreshed {
            built: true,
            ..Refreshed::default()
        };
        return Ok((built, false));
    };
    // One statement, one snapshot: the rows it returns and the oldest transaction it could not see.
    let (xmin, rows): (i64, Vec<(i64, Vec<u8>)>) = {
        let found: Vec<(i64, Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT x.xmin, l.xid, l.entries \
             FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) x \
             LEFT JOIN (SELECT xid::text::bigint AS xid, entries FROM event_log \
                        WHERE service_id = $1 AND xid >= $2::bigint::text::xid8 \
                        ORDER BY xid LIMIT $3) l ON true",
        )
        .bind(at.service_id)
        .bind(cursor)
        .bind(LOG_ROWS_PER_STEP)
        .fetch_all(&mut *tx)
        .await?;
        let xmin = snapshot_xmin(found.first().map(|r| r.0))?;
        let rows = found
            .into_iter()
            .filter_map(|(_, xid, entries)| Some((xid?, entries?)))
            .collect();
        (xmin, rows)
    };
    let more = rows.len() as i64 == LOG_ROWS_PER_STEP;
    // A full step stops at its last row's transaction (read again next step: its rows are few);
    // otherwise every transaction the snapshot saw is read.
    let next = match rows.last() {
        Some((last, _)) if more => (*last).min(xmin),
        _ => xmin,
    };
    let changed: FxHashSet<u128> = rows.iter().flat_map(|(_, e)| counted_keys(e)).collect();
    // Sorted: the lookups walk the primary keys in order.
    let mut changed: Vec<Uuid> = changed.into_iter().map(Uuid::from_u128).collect();
    changed.sort_unstable();
    let delta = if changed.is_empty() {
        Classes::default()
    } else {
        // A plan for this array: the generic plan of a prepared statement, made for a service
        // of unknown size, hashed every key of a 5 M-key service (temporary files, seconds per
        // round in `bench soak`) instead of looking the changed ones up.
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
            .execute(&mut *tx)
            .await?;
        reclassify(&mut tx, at, &changed).await?
    };
    sqlx::query(
        "UPDATE parity_state SET cursor_xid = $3, matched = matched + $4, \
           missing_in_candidate = missing_in_candidate + $5, \
           extra_in_candidate = extra_in_candidate + $6, mismatched = mismatched + $7, \
           refreshed_at = now() \
         WHERE service_id = $1 AND epoch = $2",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .bind(next.max(cursor))
    .bind(delta[0])
    .bind(delta[1])
    .bind(delta[2])
    .bind(delta[3])
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let done = Refreshed {
        built: false,
        reclassified: changed.len() as u64,
        log_rows: rows.len() as u64,
    };
    Ok((done, more))
}

/// The snapshot's xmin a refresh query returns on its first row (every such query returns one).
fn snapshot_xmin(first: Option<i64>) -> Result<i64, StoreError> {
    first.ok_or_else(|| StoreError::Invalid("the snapshot query returned no row".into()))
}

/// Classify every key of the epoch (its first refresh), recording the cursor of the snapshot the
/// classification saw.
async fn build(tx: &mut PgConnection, at: EpochKey) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM key_parity WHERE service_id = $1 AND epoch = $2")
        .bind(at.service_id)
        .bind(at.epoch)
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(i64, Option<String>, Option<i64>)> = sqlx::query_as(concat!(
        joined_keys_sql!(),
        ", ins AS (INSERT INTO key_parity (service_id, epoch, key_hash, kind, last_event_ms) \
             SELECT $1, $2, key_hash, kind, greatest(b_last_event_ms, c_last_event_ms) FROM j \
             RETURNING kind) \
         SELECT x.xmin, g.kind, g.n \
         FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) x \
         LEFT JOIN (SELECT kind, count(*) AS n FROM ins GROUP BY kind) g ON true"
    ))
    .bind(at.service_id)
    .bind(at.epoch)
    .bind(None::<i64>)
    .bind(None::<Uuid>)
    .fetch_all(&mut *tx)
    .await?;
    let xmin = snapshot_xmin(rows.first().map(|r| r.0))?;
    let mut classes = Classes::default();
    for (_, kind, n) in rows {
        if let (Some(kind), Some(n)) = (kind, n) {
            classes[class_of(&kind)?] += n;
        }
    }
    sqlx::query(
        "INSERT INTO parity_state (service_id, epoch, cursor_xid, matched, missing_in_candidate, \
           extra_in_candidate, mismatched) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .bind(xmin)
    .bind(classes[0])
    .bind(classes[1])
    .bind(classes[2])
    .bind(classes[3])
    .execute(&mut *tx)
    .await?;
    // The planner's statistics must know the rows just written: with those of an empty table it
    // read every parity row of a 5 M-key service to find a round's changed keys (2-4 s a round in
    // `bench soak`, against ~0.1 s looking them up).
    sqlx::query("ANALYZE key_parity").execute(&mut *tx).await?;
    Ok(())
}

/// Classify `changed` again from both sides' rows; returns the change of keys per class. A key
/// that matched and still matches is not rewritten: its latest change only matters to settling,
/// which concerns differences (rewriting it left ~800 k dead rows in 6 minutes of `bench soak`
/// and rounds slowing with them until autovacuum came).
///
/// Each changed key is looked up on its own (a nested loop over the array: three primary-key
/// probes, both sides and its parity row), whatever the statistics say: joins of `= ANY` scans
/// were planned from estimates and once became a 1,000 × 1,000 nested loop. A parity row is
/// rewritten, inserted or deleted by the row address that lookup found, not looked up again
/// through `ON CONFLICT` (this refresh holds the service's parity lock: no other writer).
/// Measured on the 5 M-key soak state, 1,000 changed keys: 30 ms against 50 ms.
async fn reclassify(
    tx: &mut PgConnection,
    at: EpochKey,
    changed: &[Uuid],
) -> Result<Classes, StoreError> {
    let moves: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(concat!(
        "WITH d AS MATERIALIZED (SELECT ch.key_hash, o.at, o.kind AS old_kind, \
              o.last_event_ms AS old_ms, \
              CASE WHEN b.key_hash IS NULL AND c.key_hash IS NULL THEN NULL ELSE ",
        key_kind_sql!(),
        " END AS kind, greatest(b.last_event_ms, c.last_event_ms) AS last_event_ms \
            FROM unnest($3::uuid[]) AS ch(key_hash) \
            LEFT JOIN LATERAL (SELECT key_hash, events, fingerprint_sum, final_digest, last_event_ms \
                FROM keys WHERE service_id = $1 AND epoch = $2 AND key_hash = ch.key_hash \
                AND side = 0) b ON true \
            LEFT JOIN LATERAL (SELECT key_hash, events, fingerprint_sum, final_digest, last_event_ms \
                FROM keys WHERE service_id = $1 AND epoch = $2 AND key_hash = ch.key_hash \
                AND side = 1) c ON true \
            LEFT JOIN LATERAL (SELECT ctid AS at, kind, last_event_ms FROM key_parity \
                WHERE service_id = $1 AND epoch = $2 AND key_hash = ch.key_hash) o ON true), \
           upd AS (UPDATE key_parity p SET kind = d.kind, last_event_ms = d.last_event_ms FROM d \
                   WHERE p.ctid = d.at AND d.kind IS NOT NULL \
                     AND (d.old_kind IS DISTINCT FROM d.kind \
                          OR (d.kind <> 'matched' AND d.old_ms IS DISTINCT FROM d.last_event_ms)) \
                   RETURNING 1), \
           ins AS (INSERT INTO key_parity (service_id, epoch, key_hash, kind, last_event_ms) \
                   SELECT $1, $2, key_hash, kind, last_event_ms FROM d \
                   WHERE at IS NULL AND kind IS NOT NULL ORDER BY key_hash RETURNING 1), \
           gone AS (DELETE FROM key_parity p USING d WHERE p.ctid = d.at AND d.kind IS NULL \
                    RETURNING 1) \
         SELECT old_kind, kind, count(*) FROM d WHERE old_kind IS DISTINCT FROM kind GROUP BY 1, 2"
    ))
    .bind(at.service_id)
    .bind(at.epoch)
    .bind(changed)
    .fetch_all(&mut *tx)
    .await?;
    let mut delta = Classes::default();
    for (was, now, n) in moves {
        if let Some(was) = was {
            delta[class_of(&was)?] -= n;
        }
        if let Some(now) = now {
            delta[class_of(&now)?] += n;
        }
    }
    Ok(delta)
}

/// Whether `at` has a maintained parity (refreshed at least once).
pub async fn maintained(pool: &PgPool, at: EpochKey) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<_, i32>(
        "SELECT 1 FROM parity_state WHERE service_id = $1 AND epoch = $2",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .fetch_optional(pool)
    .await?
    .is_some())
}

/// Key-level parity of `at` as of its last refresh (the full join where it has none): the kept
/// counts, and the differences still in flight as a range on their latest change.
/// `settled_until_ms = None`: nothing is settled.
pub async fn key_summary(
    pool: &PgPool,
    at: EpochKey,
    settled_until_ms: Option<i64>,
) -> Result<KeySummary, StoreError> {
    let kept: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT matched, missing_in_candidate, extra_in_candidate, mismatched FROM parity_state \
         WHERE service_id = $1 AND epoch = $2",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .fetch_optional(pool)
    .await?;
    let Some((matched, missing, extra, mismatched)) = kept else {
        return read::key_summary(pool, at, settled_until_ms).await;
    };
    let differing = KindCounts {
        missing_in_candidate: read::count(missing),
        extra_in_candidate: read::count(extra),
        mismatched: read::count(mismatched),
    };
    let in_flight = match settled_until_ms {
        None => differing,
        Some(until) => {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT kind, count(*) FROM key_parity WHERE service_id = $1 AND epoch = $2 \
                 AND kind <> 'matched' AND last_event_ms > $3 GROUP BY kind",
            )
            .bind(at.service_id)
            .bind(at.epoch)
            .bind(until)
            .fetch_all(pool)
            .await?;
            let mut c = KindCounts::default();
            for (kind, n) in rows {
                let kind = MismatchKind::parse(&kind)
                    .ok_or_else(|| StoreError::Invalid(format!("key parity kind `{kind}`")))?;
                c.add(kind, read::count(n));
            }
            c
        }
    };
    let settled = differing.less(&in_flight);
    let matched = read::count(matched);
    Ok(KeySummary {
        total: matched + differing.total(),
        matched,
        settled,
        in_flight,
    })
}

/// Differing keys of `at` as of its last refresh (the full join where it has none), ordered by
/// key hash and keyset-paged like `read::mismatches`, whose contract this keeps.
pub async fn mismatches(
    pool: &PgPool,
    at: EpochKey,
    kind: Option<MismatchKind>,
    settled_until_ms: Option<i64>,
    limit: i64,
    cursor: Option<Uuid>,
) -> Result<MismatchPage, StoreError> {
    if !maintained(pool, at).await? {
        return read::mismatches(pool, at, kind, settled_until_ms, limit, cursor).await;
    }
    // The differing keys alone, off the partial index, with both sides' rows.
    const PAGE: &str =
        "SELECT p.key_hash, coalesce(b.key_bytes, c.key_bytes, ''::bytea) AS key_bytes, p.kind, \
           coalesce(p.last_event_ms <= $3::bigint, false) AS settled, \
           b.events AS b_events, b.final_operation AS b_operation, \
           b.last_event_ms AS b_last_event_ms, b.final_content AS b_content, \
           c.events AS c_events, c.final_operation AS c_operation, \
           c.last_event_ms AS c_last_event_ms, c.final_content AS c_content \
         FROM key_parity p \
         LEFT JOIN keys b ON b.service_id = p.service_id AND b.epoch = p.epoch \
           AND b.key_hash = p.key_hash AND b.side = 0 \
         LEFT JOIN keys c ON c.service_id = p.service_id AND c.epoch = p.epoch \
           AND c.key_hash = p.key_hash AND c.side = 1 \
         WHERE p.service_id = $1 AND p.epoch = $2 AND p.kind <> 'matched' \
           AND ($4::uuid IS NULL OR p.key_hash > $4::uuid) \
           AND ($5::text IS NULL OR p.kind = $5::text) \
         ORDER BY p.key_hash LIMIT $6";
    read::page(pool, PAGE, at, kind, settled_until_ms, limit, cursor).await
}

/// `rows::flagged_keys` over a maintained parity (binds: `$1` service, `$2` limit, `$3` epoch):
/// the differing keys' bytes, most recently changed first, read off the partial index.
pub(in crate::store) const FLAGGED: &str =
    "SELECT coalesce((SELECT k.key_bytes FROM keys k WHERE k.service_id = p.service_id \
            AND k.epoch = p.epoch AND k.key_hash = p.key_hash LIMIT 1), ''::bytea) \
     FROM key_parity p WHERE p.service_id = $1 AND p.epoch = $3 AND p.kind <> 'matched' \
     ORDER BY p.last_event_ms DESC LIMIT $2";

#[cfg(test)]
#[path = "parity_tests.rs"]
mod tests;
