//! Retention (`[store] retention_days`): windows and sampled delivery times older than the
//! retention in **event time** (behind the service's newest window), and bad-message samples
//! older than it in wall-clock time, deleted in small batches, each its own short transaction, so
//! a checkpoint never waits behind a long delete. Event time, not the clock, for what the gate
//! reads: a replayed or backfilled run (event times days in the past) keeps its evidence.
//!
//! The event log (`store::epochs`) is kept `[store] rewind_minutes` of event time behind the
//! service's newest logged event ([`prune_log`]): the service's `log_complete_from_ms` is raised to
//! the cutoff in the same transaction that deletes rows wholly behind it, so an epoch start the log
//! can no longer honour is refused, never built from a partial log.
//!
//! Identity rows (`event_ids`) behind the dedupe horizon go too ([`prune_identities`]).
//!
//! Not pruned here: `keys` (a key's parity spans its epoch), `gate_history`, waivers, epochs and
//! sign-offs (audit).

use super::StoreError;
use sqlx::PgPool;

/// Rows deleted by one [`prune_batch`] call, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub windows: u64,
    pub deliveries: u64,
    pub bad_messages: u64,
    /// Event-log rows behind `[store] rewind_minutes` ([`prune_log`]).
    pub event_log: u64,
    /// Identity rows behind `[serve] dedupe_horizon_seconds` ([`prune_identities`]).
    pub event_ids: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.windows + self.deliveries + self.bad_messages + self.event_log + self.event_ids
    }
}

/// Delete at most `limit` rows of each table for `service_id` that are older than `retention_ms`:
/// windows and deliveries behind the service's newest window start, bad messages behind now.
/// Call it until it returns nothing (each call is a few indexed statements).
pub async fn prune_batch(
    pool: &PgPool,
    service_id: i16,
    retention_ms: i64,
    limit: i64,
) -> Result<Pruned, StoreError> {
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT max(window_start_ms) FROM windows WHERE service_id = $1")
            .bind(service_id)
            .fetch_one(pool)
            .await?;
    let mut pruned = Pruned::default();
    if let Some(newest) = newest {
        let cutoff = newest.saturating_sub(retention_ms);
        // The two tables in event time: (table, its event-time column); names are constants.
        for (table, column, slot) in [
            ("windows", "window_start_ms", &mut pruned.windows),
            ("deliveries", "event_ms", &mut pruned.deliveries),
        ] {
            *slot = sqlx::query(&format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                   SELECT ctid FROM {table} WHERE service_id = $1 AND {column} < $2 LIMIT $3))"
            ))
            .bind(service_id)
            .bind(cutoff)
            .bind(limit)
            .execute(pool)
            .await?
            .rows_affected();
        }
    }
    pruned.bad_messages = sqlx::query(
        "DELETE FROM bad_messages WHERE id = ANY(ARRAY(
           SELECT id FROM bad_messages WHERE service_id = $1
             AND recorded_at < now() - make_interval(secs => $2::double precision / 1000)
           LIMIT $3))",
    )
    .bind(service_id)
    .bind(retention_ms as f64)
    .bind(limit)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(pruned)
}

/// Delete at most `limit` identity rows (`event_ids`) of `service_id`'s partitions whose newest
/// event lies more than `horizon_ms` behind their partition's newest: the dedupe horizon no longer
/// needs them (a restart does not load them either). Rows without a recorded time stay.
pub async fn prune_identities(
    pool: &PgPool,
    service_id: i16,
    horizon_ms: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM event_ids WHERE ctid = ANY(ARRAY(
           SELECT e.ctid FROM event_ids e JOIN partitions p
             ON p.side = e.side AND p.topic = e.topic AND p.partition = e.partition
           WHERE p.service_id = $1 AND e.max_event_ms < p.max_event_ms - $2 LIMIT $3))",
    )
    .bind(service_id)
    .bind(horizon_ms)
    .bind(limit)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Delete at most `limit` event-log rows of `service_id` whose events all lie more than
/// `rewind_ms` behind its newest logged event; returns how many went. A row the parity refresh
/// has not read yet (at or after an open epoch's cursor) stays whatever its age: it names keys
/// whose classification is not up to date.
pub async fn prune_log(
    pool: &PgPool,
    service_id: i16,
    rewind_ms: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT max(max_event_ms) FROM event_log WHERE service_id = $1")
            .bind(service_id)
            .fetch_one(&mut *tx)
            .await?;
    let Some(cutoff) = newest.map(|n| n.saturating_sub(rewind_ms)) else {
        return Ok(0);
    };
    sqlx::query(
        "UPDATE services SET log_complete_from_ms = greatest(log_complete_from_ms, $2) \
         WHERE id = $1 AND log_complete_from_ms IS DISTINCT FROM greatest(log_complete_from_ms, $2)",
    )
    .bind(service_id)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query(
        "DELETE FROM event_log WHERE ctid = ANY(ARRAY(
           SELECT l.ctid FROM event_log l WHERE l.service_id = $1 AND l.max_event_ms < $2 \
             AND NOT EXISTS (SELECT 1 FROM parity_state p WHERE p.service_id = $1 \
                             AND NOT p.final AND l.xid >= p.cursor_xid::text::xid8) \
           LIMIT $3))",
    )
    .bind(service_id)
    .bind(cutoff)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::with_store;

    const DAY: i64 = 86_400_000;
    const T: i64 = 1_787_220_000_000;

    async fn count(pool: &PgPool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_rows_go_in_small_batches_and_recent_ones_stay() {
        with_store(&["s", "other"], |store| async move {
            let pool = &store.pool;
            let (s, other) = (
                store.service_id("s").unwrap(),
                store.service_id("other").unwrap(),
            );
            // Windows at T and at T - 40 days (three operations each), in event time.
            for (service, start) in [(s, T), (s, T - 40 * DAY), (other, T - 40 * DAY)] {
                for op in 0..3i16 {
                    sqlx::query("INSERT INTO windows VALUES ($1, 0, $2, $3, 1, 1)")
                        .bind(service)
                        .bind(start)
                        .bind(op)
                        .execute(pool)
                        .await
                        .unwrap();
                }
                sqlx::query("INSERT INTO deliveries VALUES ($1, 0, gen_random_uuid(), $2, $2)")
                    .bind(service)
                    .bind(start)
                    .execute(pool)
                    .await
                    .unwrap();
            }
            for age in ["40 days", "1 hour"] {
                sqlx::query(&format!(
                    "INSERT INTO bad_messages (service_id, side, reason, topic, partition, kafka_offset, sample, recorded_at)
                     VALUES ($1, 0, 'undecodable', 't', 0, 1, 'x', now() - interval '{age}')"
                ))
                .bind(s)
                .execute(pool)
                .await
                .unwrap();
            }
            let retention = 30 * DAY;
            let first = prune_batch(pool, s, retention, 2).await.unwrap();
            assert_eq!(
                first,
                Pruned {
                    windows: 2,
                    deliveries: 1,
                    bad_messages: 1,
                    event_log: 0,
                    event_ids: 0,
                },
                "at most `limit` rows of each table per call"
            );
            let second = prune_batch(pool, s, retention, 2).await.unwrap();
            assert_eq!(second.windows, 1);
            assert_eq!(prune_batch(pool, s, retention, 2).await.unwrap().total(), 0);
            // Kept: s's recent window and delivery, the recent sample, and all of `other`'s
            // (its newest window is its old one: nothing of it is behind its own newest).
            assert_eq!(count(pool, "windows").await, 3 + 3);
            assert_eq!(count(pool, "deliveries").await, 2);
            assert_eq!(count(pool, "bad_messages").await, 1);
            assert_eq!(
                prune_batch(pool, other, retention, 100).await.unwrap(),
                Pruned::default()
            );
        })
        .await;
    }
}
