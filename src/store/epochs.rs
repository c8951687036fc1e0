//! Observation epochs in the store: which epoch each service is judged in, starting a new one, and
//! the event log a new epoch's state is rebuilt from.
//!
//! **State layout.** Every `keys`, `windows` and `tallies` row belongs to one epoch (`epoch`
//! column; 0 is the first). Checkpoints write the current epoch's rows only. Each checkpoint also
//! appends its new events (and re-delivered records) to `event_log`, packed per service side
//! (`batch::LogEntry`), kept for `[store] rewind_minutes` of event time. Starting an epoch at `T` builds
//! the new epoch's rows from the logged events at or after `T` (those already counted), in the
//! same transaction that inserts the epoch, exactly as a checkpoint of those events would: nothing
//! is re-read from Kafka, and the earlier epochs' rows stay readable as they stood when they ended.
//!
//! **Ordering with checkpoints.** A checkpoint takes a shared transaction-level advisory lock per
//! service it writes and reads the current epoch inside its transaction; starting an epoch takes
//! the exclusive lock. So an epoch sees every committed checkpoint, and a checkpoint that commits
//! after it writes the new epoch's rows. A batch a lane filled under the previous epoch is rebased
//! first (`Batch::rebased`): its events before the new start become `before_start`.

use super::batch::{unpack, Batch, BatchEvent};
use super::write::log::{started_scopes, EPOCH_LOCK};
use super::write::{self, ServiceIds};
use super::{side_code, EpochKey, StoreError};
use crate::core::operation::Operation;
use crate::core::range::BEFORE_START;
use crate::model::status::ServiceStatus;
use crate::model::{Epoch, EpochScope, TallyKind, FIRST_EPOCH};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The current epoch of every service that has started one (the others are in their first).
pub async fn current_scopes(pool: &PgPool) -> Result<BTreeMap<i16, EpochScope>, StoreError> {
    started_scopes(pool, None).await
}

#[derive(sqlx::FromRow)]
struct EpochRow {
    id: i64,
    starts_at_ms: i64,
    reason: String,
    created_by: String,
    created_at: DateTime<Utc>,
    previous_status: Option<serde_json::Value>,
}

fn instant(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Invalid(format!("epoch start {ms} ms")))
}

impl EpochRow {
    fn epoch(&self, service: &str) -> Result<Epoch, StoreError> {
        Ok(Epoch {
            id: self.id,
            service: service.to_owned(),
            starts_at: Some(instant(self.starts_at_ms)?),
            reason: self.reason.clone(),
            created_by: self.created_by.clone(),
            created_at: Some(self.created_at),
        })
    }
}

/// The first epoch of a service, which has no row: from its `compare_from` start.
pub fn first_epoch(service: &str, compare_from_ms: Option<i64>) -> Result<Epoch, StoreError> {
    Ok(Epoch {
        id: FIRST_EPOCH,
        service: service.to_owned(),
        starts_at: compare_from_ms.map(instant).transpose()?,
        reason: "the comparison start (compare_from)".into(),
        created_by: "paritygate".into(),
        created_at: None,
    })
}

/// An epoch with the served status it ended with (`None`: the current one, or one that ended
/// before any evaluation).
#[derive(Debug, Clone)]
pub struct EpochEntry {
    pub epoch: Epoch,
    pub ended_with: Option<ServiceStatus>,
}

/// A service's epochs, newest first (the first epoch last).
pub async fn list(
    pool: &PgPool,
    service_id: i16,
    service: &str,
    compare_from_ms: Option<i64>,
) -> Result<Vec<EpochEntry>, StoreError> {
    let rows: Vec<EpochRow> = sqlx::query_as(
        "SELECT id, starts_at_ms, reason, created_by, created_at, previous_status FROM epochs \
         WHERE service_id = $1 ORDER BY id DESC",
    )
    .bind(service_id)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len() + 1);
    let mut ended_with = None;
    for row in &rows {
        out.push(EpochEntry {
            epoch: row.epoch(service)?,
            ended_with: ended_with.take(),
        });
        ended_with = row
            .previous_status
            .clone()
            .map(|v| {
                serde_json::from_value(v).map_err(|e| {
                    StoreError::Invalid(format!("epochs.previous_status of epoch {}: {e}", row.id))
                })
            })
            .transpose()?;
    }
    out.push(EpochEntry {
        epoch: first_epoch(service, compare_from_ms)?,
        ended_with,
    });
    Ok(out)
}

/// A service's current epoch (the newest started one, else the first) and the state key of its rows.
pub async fn current(
    pool: &PgPool,
    service_id: i16,
    service: &str,
    compare_from_ms: Option<i64>,
) -> Result<(Epoch, EpochKey), StoreError> {
    // Only the newest row, and not its predecessor's status: every evaluation round asks this.
    let newest: Option<EpochRow> = sqlx::query_as(
        "SELECT id, starts_at_ms, reason, created_by, created_at, NULL::jsonb AS previous_status \
         FROM epochs WHERE service_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(service_id)
    .fetch_optional(pool)
    .await?;
    let epoch = match newest {
        Some(row) => row.epoch(service)?,
        None => first_epoch(service, compare_from_ms)?,
    };
    let key = EpochKey {
        service_id,
        epoch: epoch.id,
    };
    Ok((epoch, key))
}

/// An epoch to start.
#[derive(Debug, Clone)]
pub struct NewEpoch<'a> {
    pub service_id: i16,
    pub service: &'a str,
    pub starts_at_ms: i64,
    pub reason: &'a str,
    pub created_by: &'a str,
    /// The first epoch's start (`compare_from`), the earliest any epoch may start at.
    pub compare_from_ms: Option<i64>,
    pub window_ms: i64,
    pub now_ms: i64,
}

/// Why an epoch cannot start at the asked instant; each names the earliest or latest allowed.
#[derive(Debug, thiserror::Error)]
pub enum StartRefused {
    #[error("must not lie in the future (now is {now})")]
    Future { now: DateTime<Utc> },
    #[error("must not lie before the current epoch's start ({current})")]
    BeforeCurrent { current: DateTime<Utc> },
    #[error("must not lie before {earliest}: the event log keeps events one by one only [store] rewind_minutes behind the newest, and the earlier ones were pruned")]
    BeyondRewind { earliest: DateTime<Utc> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Start an epoch: insert it (with the status the current one ends with) and build its keys,
/// windows and tallies from the logged events at or after its start, in one transaction.
pub async fn start(pool: &PgPool, new: &NewEpoch<'_>) -> Result<Epoch, StartRefused> {
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(EPOCH_LOCK)
        .bind(i32::from(new.service_id))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    if new.starts_at_ms > new.now_ms {
        return Err(StartRefused::Future {
            now: instant(new.now_ms)?,
        });
    }
    let current = enter_current(&mut tx, new.service_id).await?;
    let current_start = current.starts_at_ms.or(new.compare_from_ms);
    if let Some(start) = current_start.filter(|s| new.starts_at_ms < *s) {
        return Err(StartRefused::BeforeCurrent {
            current: instant(start)?,
        });
    }
    // The log holds every counted event at or after `log_complete_from_ms` (the pruner raises it
    // before it drops rows wholly behind it, `super::retention`), so an epoch may start there.
    let complete_from: Option<i64> =
        sqlx::query_scalar("SELECT log_complete_from_ms FROM services WHERE id = $1")
            .bind(new.service_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    if let Some(reach) = complete_from.filter(|reach| new.starts_at_ms < *reach) {
        return Err(StartRefused::BeyondRewind {
            earliest: instant(reach)?,
        });
    }
    let previous: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT status FROM served_verdicts WHERE service_id = $1")
            .bind(new.service_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    let row: EpochRow = sqlx::query_as(
        "INSERT INTO epochs (service_id, starts_at_ms, reason, created_by, previous_id, previous_status) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, starts_at_ms, reason, created_by, created_at, previous_status",
    )
    .bind(new.service_id)
    .bind(new.starts_at_ms)
    .bind(new.reason)
    .bind(new.created_by)
    .bind(current.id)
    .bind(previous)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    rebuild(&mut tx, new, current, row.id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(row.epoch(new.service)?)
}

async fn enter_current(tx: &mut PgConnection, service_id: i16) -> Result<EpochScope, StoreError> {
    let mut started = started_scopes(&mut *tx, Some(&[service_id])).await?;
    // No started epoch: the service is in its first.
    Ok(started.remove(&service_id).unwrap_or_default())
}

/// The new epoch's rows: the logged events at or after its start counted as one checkpoint would,
/// each key's bytes and final content taken from its current-epoch row (the final event's content
/// when it is the same event; otherwise unknown until the key changes again: its digest still
/// decides the comparison, only the field diff waits). Tallies that carry no event time
/// (rejected, unparseable, flagged…) are carried over; what the current epoch counted before the
/// new start becomes `before_start`.
async fn rebuild(
    tx: &mut PgConnection,
    new: &NewEpoch<'_>,
    current: EpochScope,
    epoch: i64,
) -> Result<(), StoreError> {
    let rows: Vec<(i16, Vec<u8>)> = sqlx::query_as(
        "SELECT side, entries FROM event_log WHERE service_id = $1 AND max_event_ms >= $2",
    )
    .bind(new.service_id)
    .bind(new.starts_at_ms)
    .fetch_all(&mut *tx)
    .await?;
    let window_ms = new.window_ms.max(1);
    let mut batch = Batch::default();
    for (side, entries) in rows {
        let side = super::side_of(side)
            .ok_or_else(|| StoreError::Invalid(format!("event_log side {side}")))?;
        for e in unpack(&entries)?
            .into_iter()
            .filter(|e| e.event_ms >= new.starts_at_ms)
        {
            if e.duplicate {
                batch.count_duplicate(0, side, e.operation);
                continue;
            }
            let event = BatchEvent {
                service: 0,
                side,
                key_hash: e.key_hash,
                position: e.position,
                sequence: e.sequence,
                operation: e.operation,
                digest: e.digest,
                identity: 0,
                arrival: e.arrival,
                event_ms: e.event_ms,
                window_start_ms: e.event_ms.div_euclid(window_ms) * window_ms,
                partition: e.partition,
                offset: -1,
                record_ms: None,
            };
            batch.add_event(event, &[], None);
        }
    }
    adopt_current_rows(tx, new.service_id, current.id, &mut batch).await?;
    carry_tallies(tx, new.service_id, current.id, epoch, &batch).await?;
    let ids = ServiceIds::one(new.service_id, epoch);
    write::count_rebuilt(tx, &ids, &batch).await
}

/// Key bytes and final contents from the current epoch's rows of the rebuilt keys.
async fn adopt_current_rows(
    tx: &mut PgConnection,
    service_id: i16,
    current: i64,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    let hashes: Vec<Uuid> = batch.keys.keys().map(|k| Uuid::from_u128(k.2)).collect();
    type Row = (i16, Uuid, Vec<u8>, Uuid, i16, i64, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT side, key_hash, key_bytes, final_position, final_operation, final_arrival, final_content \
         FROM keys WHERE service_id = $1 AND epoch = $2 AND key_hash = ANY($3)",
    )
    .bind(service_id)
    .bind(current)
    .bind(&hashes)
    .fetch_all(&mut *tx)
    .await?;
    for (side, hash, key, position, operation, arrival, content) in rows {
        let Some(side) = super::side_of(side) else {
            continue;
        };
        if let Some(k) = batch.keys.get_mut(&(0, side, hash.as_u128())) {
            let order = Operation::from_code(operation).map(|op| (position.as_u128(), op, arrival));
            k.adopt(key, order, content);
        }
    }
    Ok(())
}

/// The new epoch's untimed tallies (copied) and `before_start` (what the current epoch counted
/// before the new start, plus what it had already left out).
async fn carry_tallies(
    tx: &mut PgConnection,
    service_id: i16,
    current: i64,
    epoch: i64,
    rebuilt: &Batch,
) -> Result<(), StoreError> {
    let rows: Vec<(i16, String, String, i64, i64)> = sqlx::query_as(
        "SELECT side, kind, name, records, events FROM tallies WHERE service_id = $1 AND epoch = $2",
    )
    .bind(service_id)
    .bind(current)
    .fetch_all(&mut *tx)
    .await?;
    let operation = TallyKind::Operation.as_str();
    let skipped = TallyKind::Skipped.as_str();
    let mut before_start: BTreeMap<i16, i64> = BTreeMap::new();
    let (mut sides, mut kinds, mut names, mut records, mut events) =
        (vec![], vec![], vec![], vec![], vec![]);
    // What the current epoch counted (its operations) and what it had already left out: the new
    // epoch's `before_start`, less what it counts again. Every other tally is carried as it is.
    let before_the_start =
        |kind: &str, name: &str| kind == operation || (kind == skipped && name == BEFORE_START);
    for (side, kind, name, r, _) in &rows {
        if before_the_start(kind, name) {
            *before_start.entry(*side).or_default() += r;
        }
    }
    for (id, n) in &rebuilt.tallies {
        if id.kind == TallyKind::Operation {
            *before_start.entry(side_code(id.side)).or_default() -= n;
        }
    }
    for (side, kind, name, r, e) in rows {
        if before_the_start(&kind, &name) {
            continue;
        }
        sides.push(side);
        kinds.push(kind);
        names.push(name);
        records.push(r);
        events.push(e);
    }
    for (side, n) in before_start.into_iter().filter(|(_, n)| *n > 0) {
        sides.push(side);
        kinds.push(skipped.to_owned());
        names.push(BEFORE_START.to_owned());
        records.push(n);
        events.push(0);
    }
    sqlx::query(
        "INSERT INTO tallies (service_id, epoch, side, kind, name, records, events) \
         SELECT $1, $2, * FROM unnest($3::int2[], $4::text[], $5::text[], $6::int8[], $7::int8[])",
    )
    .bind(service_id)
    .bind(epoch)
    .bind(sides)
    .bind(kinds)
    .bind(names)
    .bind(records)
    .bind(events)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
#[path = "epochs_tests.rs"]
mod tests;
