//! Evidence for gate decisions: settled counts, observation span, delivery delays, active waivers,
//! and the gate history written on every change of a served verdict.

use super::read::{count, operation_name};
use super::{StoreError, BASELINE, CANDIDATE};
use crate::gate::Waiver;
use crate::serve::status::GateStatus;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// Settled distinct events per operation, per side (windows that ended by `settled_until_ms`).
pub async fn settled_counts(
    pool: &PgPool,
    service_id: i16,
    window_ms: i64,
    settled_until_ms: Option<i64>,
) -> Result<[BTreeMap<String, u64>; 2], StoreError> {
    let mut out: [BTreeMap<String, u64>; 2] = Default::default();
    let Some(until) = settled_until_ms else {
        return Ok(out);
    };
    let rows: Vec<(i16, i16, i64)> = sqlx::query_as(
        "SELECT side, operation, sum(events)::bigint FROM windows
         WHERE service_id = $1 AND window_start_ms + $2 <= $3 GROUP BY side, operation",
    )
    .bind(service_id)
    .bind(window_ms)
    .bind(until)
    .fetch_all(pool)
    .await?;
    for (side, op, n) in rows {
        if let Some(map) = usize::try_from(side).ok().and_then(|i| out.get_mut(i)) {
            *map.entry(operation_name(op).to_owned()).or_default() += count(n);
        }
    }
    Ok(out)
}

/// The event time from which both sides have been observed: the later of the two sides' earliest events.
pub async fn observed_since_ms(pool: &PgPool, service_id: i16) -> Result<Option<i64>, StoreError> {
    let first = |side: i16| {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT min(event_ms) FROM events WHERE service_id = $1 AND side = $2",
        )
        .bind(service_id)
        .bind(side)
        .fetch_one(pool)
    };
    let (b, c) = (first(BASELINE).await?, first(CANDIDATE).await?);
    Ok(b.zip(c).map(|(b, c)| b.max(c)))
}

/// p95 of (candidate delivery − baseline delivery) over the latest candidate events (up to 2,000,
/// within the last hour of event time) that the baseline delivered too, and how many there were.
pub async fn delay_regression_p95(
    pool: &PgPool,
    service_id: i16,
) -> Result<Option<(i64, u64)>, StoreError> {
    let row: (Option<f64>, i64) = sqlx::query_as(
        "WITH latest AS (SELECT max(event_ms) AS t FROM events WHERE service_id = $1 AND side = 1),
              c AS (SELECT e.key_hash, e.position, e.operation, e.digest, e.record_ms FROM events e, latest
                    WHERE e.service_id = $1 AND e.side = 1 AND e.event_ms > latest.t - 3600000
                      AND e.record_ms IS NOT NULL
                    ORDER BY e.event_ms DESC LIMIT 2000)
         SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY (c.record_ms - b.record_ms)), count(*)
         FROM c JOIN events b ON b.service_id = $1 AND b.side = 0 AND b.key_hash = c.key_hash
           AND b.position = c.position AND b.operation = c.operation AND b.digest = c.digest
         WHERE b.record_ms IS NOT NULL",
    )
    .bind(service_id)
    .fetch_one(pool)
    .await?;
    Ok(row.0.map(|p95| (p95.round() as i64, count(row.1))))
}

/// Waivers of a service that have not expired.
pub async fn active_waivers(pool: &PgPool, service: &str) -> Result<Vec<Waiver>, StoreError> {
    let rows: Vec<(String, String, chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(
        "SELECT criterion, reason, expires_at, created_by FROM waivers WHERE service = $1 AND expires_at > now()",
    )
    .bind(service)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(criterion, reason, expires_at, created_by)| Waiver {
            criterion,
            reason,
            expires_at,
            created_by,
        })
        .collect())
}

/// Record a served verdict (called when it, or a criterion's status, changes).
pub async fn insert_history(
    pool: &PgPool,
    service: &str,
    gate: &GateStatus,
) -> Result<(), StoreError> {
    let report = serde_json::to_value(gate).unwrap_or_default();
    sqlx::query(
        "INSERT INTO gate_history (service, evaluated_at, verdict, raw_verdict, report, config_digest, canonical_version)
         VALUES ($1, coalesce($2, now()), $3, $4, $5, $6, $7)",
    )
    .bind(service)
    .bind(gate.evaluated_at)
    .bind(gate.verdict.as_str())
    .bind(gate.raw_verdict.as_str())
    .bind(report)
    .bind(&gate.config_digest)
    .bind(&gate.canonical_version)
    .execute(pool)
    .await?;
    Ok(())
}
