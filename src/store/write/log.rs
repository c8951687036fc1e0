//! The checkpoint's part in observation epochs: the shared epoch lock and the current epochs read
//! inside its transaction, and the append to the event log (`store::epochs` starts epochs).

use super::ServiceIds;
use crate::model::{EpochScope, Side};
use crate::store::batch::{pack, Batch, BatchEvent, LogEntry};
use crate::store::{side_code, StoreError};
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// The advisory-lock kind ordering checkpoints (shared) and epoch starts (exclusive) per service.
pub(crate) const EPOCH_LOCK: i32 = 0x7067_0003;

/// Take the shared epoch lock of every service a checkpoint writes (in id order: no deadlock with
/// another checkpoint or an epoch start) and read their current epochs.
pub(in crate::store) async fn enter(
    tx: &mut PgConnection,
    service_ids: &[i16],
) -> Result<BTreeMap<i16, EpochScope>, StoreError> {
    let mut ids = service_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
            .bind(EPOCH_LOCK)
            .bind(i32::from(*id))
            .execute(&mut *tx)
            .await?;
    }
    let mut out = started_scopes(&mut *tx, Some(&ids)).await?;
    for id in &ids {
        // A service without a started epoch is in its first.
        out.entry(*id).or_default();
    }
    Ok(out)
}

/// The newest started epoch of each service of `ids` (every service: `None`) that has one; a
/// service not in the answer is in its first epoch.
pub(in crate::store) async fn started_scopes<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    ids: Option<&[i16]>,
) -> Result<BTreeMap<i16, EpochScope>, StoreError> {
    let rows: Vec<(i16, i64, i64)> = sqlx::query_as(
        "SELECT DISTINCT ON (service_id) service_id, id, starts_at_ms FROM epochs \
         WHERE $1::int2[] IS NULL OR service_id = ANY($1) ORDER BY service_id, id DESC",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(service, id, starts_at_ms)| {
            let scope = EpochScope {
                id,
                starts_at_ms: Some(starts_at_ms),
            };
            (service, scope)
        })
        .collect())
}

/// Append the batch's counted events and re-delivered records to the log, one row per service
/// side.
pub(in crate::store) async fn append_log(
    tx: &mut PgConnection,
    ids: &ServiceIds,
    batch: &Batch,
    kept: &(dyn Fn(&BatchEvent) -> bool + Sync),
) -> Result<(), StoreError> {
    let mut per_side: BTreeMap<(usize, Side), Vec<LogEntry>> = BTreeMap::new();
    for e in batch.events.iter().filter(|e| kept(e)) {
        per_side
            .entry((e.service, e.side))
            .or_default()
            .push(LogEntry::of(e));
    }
    for d in &batch.duplicates {
        per_side
            .entry((d.service, d.side))
            .or_default()
            .push(d.entry);
    }
    let (mut services, mut sides, mut mins, mut maxes, mut packed) =
        (vec![], vec![], vec![], vec![], vec![]);
    for ((service, side), entries) in per_side {
        services.push(ids.get(service)?);
        sides.push(side_code(side));
        mins.push(entries.iter().map(|e| e.event_ms).min().unwrap_or(0));
        maxes.push(entries.iter().map(|e| e.event_ms).max().unwrap_or(0));
        packed.push(pack(&entries));
    }
    if services.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO event_log (service_id, side, min_event_ms, max_event_ms, entries) \
         SELECT * FROM unnest($1::int2[], $2::int2[], $3::int8[], $4::int8[], $5::bytea[])",
    )
    .bind(services)
    .bind(sides)
    .bind(mins)
    .bind(maxes)
    .bind(packed)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
