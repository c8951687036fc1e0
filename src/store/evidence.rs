//! Evidence for gate decisions: settled counts, observation span, delivery delays, active waivers,
//! and the gate history written on every change of a served verdict.

use super::read::{count, operation_name};
use super::StoreError;
use crate::model::status::GateStatus;
use crate::store::EpochKey;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Settled distinct events per operation, per side (windows of the epoch that ended by
/// `settled_until_ms`).
pub async fn settled_counts(
    pool: &PgPool,
    at: EpochKey,
    window_ms: i64,
    settled_until_ms: Option<i64>,
) -> Result<[BTreeMap<String, u64>; 2], StoreError> {
    let mut out: [BTreeMap<String, u64>; 2] = Default::default();
    let Some(until) = settled_until_ms else {
        return Ok(out);
    };
    let rows: Vec<(i16, i16, i64)> = sqlx::query_as(
        "SELECT side, operation, sum(events)::bigint FROM windows
         WHERE service_id = $1 AND epoch = $4 AND window_start_ms + $2 <= $3 GROUP BY side, operation",
    )
    .bind(at.service_id)
    .bind(window_ms)
    .bind(until)
    .bind(at.epoch)
    .fetch_all(pool)
    .await?;
    for (side, op, n) in rows {
        if let Some(map) = usize::try_from(side).ok().and_then(|i| out.get_mut(i)) {
            *map.entry(operation_name(op)?.to_owned()).or_default() += count(n);
        }
    }
    Ok(out)
}

/// p95 of (candidate delivery − baseline delivery) over the latest sampled candidate events (up to
/// 2,000, within the last hour of event time) that the baseline delivered too, and how many there
/// were, counting only events at or after `since_ms` (the epoch's start). Both sides sample the
/// same events (by identity), so the pairs are complete.
///
/// Two index-driven reads instead of one join: with fresh statistics-less tables the planner chose
/// a plan that took 27 s on 60k sampled rows; these two cannot go wrong that way.
pub async fn delay_regression_p95(
    pool: &PgPool,
    service_id: i16,
    since_ms: Option<i64>,
) -> Result<Option<(i64, u64)>, StoreError> {
    let latest: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT event_id, record_ms FROM deliveries
         WHERE service_id = $1 AND side = 1 AND ($2::bigint IS NULL OR event_ms >= $2::bigint)
           AND event_ms > (SELECT max(event_ms) FROM deliveries WHERE service_id = $1 AND side = 1) - 3600000
         ORDER BY event_ms DESC LIMIT 2000",
    )
    .bind(service_id)
    .bind(since_ms)
    .fetch_all(pool)
    .await?;
    if latest.is_empty() {
        return Ok(None);
    }
    let ids: Vec<Uuid> = latest.iter().map(|(id, _)| *id).collect();
    let baseline: HashMap<Uuid, i64> = sqlx::query_as(
        // One index lookup per sampled event (`deliveries_by_event`), whatever the statistics say:
        // with `event_id = ANY($2)` as a filter the planner walked every retained baseline delivery
        // of the service (`deliveries_recent`), a round growing with history (`bench soak`).
        "SELECT i.id, d.first FROM unnest($2::uuid[]) i(id), LATERAL (
           SELECT min(record_ms) AS first FROM deliveries
           WHERE service_id = $1 AND event_id = i.id AND side = 0) d
         WHERE d.first IS NOT NULL",
    )
    .bind(service_id)
    .bind(&ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut delays: Vec<i64> = latest
        .iter()
        .filter_map(|(id, c)| Some(c - baseline.get(id)?))
        .collect();
    Ok(percentile_cont(&mut delays, 0.95).map(|p| (p.round() as i64, delays.len() as u64)))
}

/// Postgres' `percentile_cont`: the value at fraction `q` of the sorted values, interpolated
/// linearly between neighbours; `None` without values.
pub fn percentile_cont(values: &mut [i64], q: f64) -> Option<f64> {
    values.sort_unstable();
    let last = values.len().checked_sub(1)?;
    let at = q.clamp(0.0, 1.0) * last as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    let (a, b) = (*values.get(lo)? as f64, *values.get(hi)? as f64);
    Some(a + (b - a) * (at - lo as f64))
}

/// Record a served verdict (called when it, or a criterion's status, changes).
pub async fn insert_history(
    executor: impl sqlx::PgExecutor<'_>,
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
    .execute(executor)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile_cont;

    #[test]
    fn percentile_cont_interpolates_like_postgres() {
        assert_eq!(percentile_cont(&mut [], 0.95), None);
        assert_eq!(percentile_cont(&mut [7], 0.95), Some(7.0));
        // SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY v) FROM unnest('{10,0,20,30}'::int[]) v → 28.5
        let close = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1e-9);
        assert!(close(percentile_cont(&mut [10, 0, 20, 30], 0.95), 28.5));
        // SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY v) FROM generate_series(1, 100) v → 95.05
        let mut hundred: Vec<i64> = (1..=100).rev().collect();
        assert!(close(percentile_cont(&mut hundred, 0.95), 95.05));
    }
}
