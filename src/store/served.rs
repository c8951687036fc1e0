//! Served verdicts: the status each service's evaluator stored (`served_verdicts`), read by every
//! replica's API, and the evaluators' signs of life (`evaluators`) over which evaluation is spread.
//! Writes go through the evaluator's lease session (`lease::LeaseSession::guarded`), so only the
//! holder of a service's lease can write its verdict or its gate history.

use super::lease::LeaseSession;
use super::StoreError;
use crate::model::status::ServiceStatus;
use crate::model::{CriterionStatus, Verdict};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;

/// What gate history last recorded of a service: a new history row is written when this changes.
pub type Recorded = (Verdict, Vec<CriterionStatus>);

/// A service's stored verdict, with the hysteresis state the next evaluation continues from.
#[derive(Debug, Clone)]
pub struct StoredVerdict {
    pub status: ServiceStatus,
    pub passes_in_a_row: u32,
    pub recorded: Option<Recorded>,
    pub evaluated_at: DateTime<Utc>,
    pub evaluated_by: String,
    pub stale_after_ms: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    service_id: i16,
    status: serde_json::Value,
    passes_in_a_row: i32,
    recorded: serde_json::Value,
    evaluated_at: DateTime<Utc>,
    evaluated_by: String,
    stale_after_ms: i64,
}

#[derive(sqlx::FromRow)]
struct NamedRow {
    name: String,
    #[sqlx(flatten)]
    row: Row,
}

const COLUMNS: &str = "v.service_id, v.status, v.passes_in_a_row, v.recorded, v.evaluated_at, v.evaluated_by, v.stale_after_ms";

fn decode(row: Row) -> Result<(i16, StoredVerdict), StoreError> {
    let id = row.service_id;
    let invalid = |what: &str, e: serde_json::Error| {
        StoreError::Invalid(format!("served_verdicts.{what} of service id {id}: {e}"))
    };
    let passes = row.passes_in_a_row;
    Ok((
        id,
        StoredVerdict {
            status: serde_json::from_value(row.status).map_err(|e| invalid("status", e))?,
            passes_in_a_row: u32::try_from(passes)
                .map_err(|_| StoreError::Invalid(format!("passes_in_a_row {passes}")))?,
            recorded: serde_json::from_value(row.recorded).map_err(|e| invalid("recorded", e))?,
            evaluated_at: row.evaluated_at,
            evaluated_by: row.evaluated_by,
            stale_after_ms: row.stale_after_ms,
        },
    ))
}

/// The stored verdict of one service, if it was ever evaluated.
pub async fn one(pool: &PgPool, service_id: i16) -> Result<Option<StoredVerdict>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM served_verdicts v WHERE v.service_id = $1"
    ))
    .bind(service_id)
    .fetch_optional(pool)
    .await?;
    row.map(decode).transpose().map(|r| r.map(|(_, v)| v))
}

/// Every stored verdict, by service id.
pub async fn all(pool: &PgPool) -> Result<HashMap<i16, StoredVerdict>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM served_verdicts v"))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(decode).collect()
}

/// The stored verdicts of the services named `names`, by name (read by name, so a process that
/// has not registered its services yet answers from the store all the same).
pub async fn by_names(
    pool: &PgPool,
    names: &[String],
) -> Result<HashMap<String, StoredVerdict>, StoreError> {
    let rows: Vec<NamedRow> = sqlx::query_as(&format!(
        "SELECT s.name, {COLUMNS} FROM served_verdicts v JOIN services s ON s.id = v.service_id
         WHERE s.name = ANY($1)"
    ))
    .bind(names)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| decode(r.row).map(|(_, v)| (r.name, v)))
        .collect()
}

/// When each service was last evaluated and when that goes stale (the ownership plan reads only
/// this, not the statuses).
pub async fn freshness(pool: &PgPool) -> Result<HashMap<i16, (DateTime<Utc>, i64)>, StoreError> {
    let rows: Vec<(i16, DateTime<Utc>, i64)> =
        sqlx::query_as("SELECT service_id, evaluated_at, stale_after_ms FROM served_verdicts")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at, ms)| (id, (at, ms)))
        .collect())
}

/// Store an evaluation of `service_id` (and, when `history` says so, its gate-history row) in one
/// transaction on the lease session, refused unless the session holds the service's lease.
pub async fn store_verdict(
    session: &mut LeaseSession,
    service_id: i16,
    verdict: &StoredVerdict,
    history: bool,
) -> Result<(), StoreError> {
    let status = serde_json::to_value(&verdict.status)
        .map_err(|e| StoreError::Invalid(format!("status of service id {service_id}: {e}")))?;
    let recorded = serde_json::to_value(&verdict.recorded)
        .map_err(|e| StoreError::Invalid(format!("recorded of service id {service_id}: {e}")))?;
    let passes = i32::try_from(verdict.passes_in_a_row).unwrap_or(i32::MAX);
    let mut tx = session.guarded(service_id).await?;
    sqlx::query(
        "INSERT INTO served_verdicts (service_id, status, verdict, passes_in_a_row, recorded, evaluated_at, evaluated_by, stale_after_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (service_id) DO UPDATE SET status = EXCLUDED.status, verdict = EXCLUDED.verdict,
           passes_in_a_row = EXCLUDED.passes_in_a_row, recorded = EXCLUDED.recorded,
           evaluated_at = EXCLUDED.evaluated_at, evaluated_by = EXCLUDED.evaluated_by,
           stale_after_ms = EXCLUDED.stale_after_ms",
    )
    .bind(service_id)
    .bind(status)
    .bind(verdict.status.gate.verdict.as_str())
    .bind(passes)
    .bind(recorded)
    .bind(verdict.evaluated_at)
    .bind(&verdict.evaluated_by)
    .bind(verdict.stale_after_ms)
    .execute(&mut *tx)
    .await?;
    if history {
        super::evidence::insert_history(&mut *tx, &verdict.status.service, &verdict.status.gate)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// This replica's sign of life; returns the database's clock and the replicas seen within
/// `live_for` (itself included) with when, and forgets those not seen for a day.
pub async fn heartbeat(
    session: &mut LeaseSession,
    replica: &str,
    live_for: std::time::Duration,
) -> Result<(DateTime<Utc>, Vec<(String, DateTime<Utc>)>), StoreError> {
    let live_ms = i64::try_from(live_for.as_millis()).unwrap_or(i64::MAX);
    let mut tx = session.transaction().await?;
    let now: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO evaluators (replica, seen_at) VALUES ($1, now())
         ON CONFLICT (replica) DO UPDATE SET seen_at = EXCLUDED.seen_at RETURNING seen_at",
    )
    .bind(replica)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM evaluators WHERE seen_at < now() - interval '1 day'")
        .execute(&mut *tx)
        .await?;
    let live: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT replica, seen_at FROM evaluators
         WHERE seen_at >= now() - make_interval(secs => $1::double precision / 1000) ORDER BY replica",
    )
    .bind(live_ms)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((now, live))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Verdict;
    use crate::store::lease::{LeaseKind, LeaseSession};
    use crate::store::test_db::with_store;

    fn verdict(by: &str, v: Verdict) -> StoredVerdict {
        let mut status = ServiceStatus {
            service: "orders".into(),
            ..Default::default()
        };
        status.gate.verdict = v;
        StoredVerdict {
            status,
            passes_in_a_row: 2,
            recorded: Some((v, vec![])),
            evaluated_at: Utc::now(),
            evaluated_by: by.into(),
            stale_after_ms: 5_000,
        }
    }

    #[tokio::test]
    async fn only_the_lease_holder_writes_and_a_closed_session_frees_the_lease() {
        with_store(&["orders"], |store| async move {
            let id = store.service_id("orders").unwrap();
            let mut a = LeaseSession::open(&store, LeaseKind::Evaluator)
                .await
                .unwrap();
            let mut b = LeaseSession::open(&store, LeaseKind::Evaluator)
                .await
                .unwrap();
            assert!(a.try_take(id).await.unwrap());
            assert!(
                a.try_take(id).await.unwrap(),
                "taking a held lease again is a no-op"
            );
            assert!(!b.try_take(id).await.unwrap(), "held by a");
            // b cannot write what a's lease guards, even by mistake.
            let refused = store_verdict(&mut b, id, &verdict("b", Verdict::Fail), true).await;
            assert!(
                matches!(refused, Err(StoreError::LeaseLost(i)) if i == id),
                "{refused:?}"
            );
            store_verdict(&mut a, id, &verdict("a", Verdict::Pass), true)
                .await
                .unwrap();
            let stored = one(&store.pool, id).await.unwrap().unwrap();
            assert_eq!(
                (stored.evaluated_by.as_str(), stored.passes_in_a_row),
                ("a", 2)
            );
            assert_eq!(stored.recorded, Some((Verdict::Pass, vec![])));
            let named = by_names(&store.pool, &["orders".into(), "other".into()])
                .await
                .unwrap();
            assert_eq!(named.len(), 1);
            let history: i64 = sqlx::query_scalar("SELECT count(*) FROM gate_history")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(history, 1, "the refused write left no history row");
            // Released, or the session gone: b takes it.
            a.release(id).await.unwrap();
            assert!(b.try_take(id).await.unwrap());
            drop(b);
            let mut c = LeaseSession::open(&store, LeaseKind::Evaluator)
                .await
                .unwrap();
            // The server ends a closed session a moment after the client does.
            let mut free = false;
            for _ in 0..50 {
                free = c.try_take(id).await.unwrap();
                if free {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(free, "a closed session's lease is free");
        })
        .await;
    }

    #[tokio::test]
    async fn heartbeats_list_the_live_replicas() {
        with_store(&["orders"], |store| async move {
            let mut a = LeaseSession::open(&store, LeaseKind::Evaluator)
                .await
                .unwrap();
            let mut b = LeaseSession::open(&store, LeaseKind::Evaluator)
                .await
                .unwrap();
            let live = std::time::Duration::from_secs(10);
            heartbeat(&mut a, "a", live).await.unwrap();
            let (now, seen) = heartbeat(&mut b, "b", live).await.unwrap();
            let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["a", "b"]);
            assert!(seen.iter().all(|(_, at)| *at <= now));
            sqlx::query(
                "UPDATE evaluators SET seen_at = now() - interval '1 minute' WHERE replica = 'a'",
            )
            .execute(&store.pool)
            .await
            .unwrap();
            let (_, seen) = heartbeat(&mut b, "b", live).await.unwrap();
            assert_eq!(seen.len(), 1, "a is no longer live: {seen:?}");
        })
        .await;
    }
}
