//! The checkpoint's `keys` upsert: per (service, key, side), the new events' count and
//! fingerprint sum are added, and the key's final state replaced when a new event orders after it
//! (position, operation, arrival), so batches stored in any order leave the same row.

use super::ServiceIds;
use crate::core::operation::Operation;
use crate::model::Side;
use crate::store::batch::{Batch, StoredFinal};
use crate::store::side_code;
use crate::store::StoreError;
use rustc_hash::FxHashMap;
use sqlx::Connection;
use uuid::Uuid;

/// (service index, side, key hash).
pub(super) type KeyId = (usize, Side, u128);
/// New events of a key in one checkpoint: count and fingerprint sum.
pub(super) type KeyDelta = (i64, i128);

/// A key's row as written to `keys`: its new events' count and fingerprint sum and its final
/// state (bytes borrowed from the batch: no copy per key).
pub(super) struct KeyRow<'a> {
    pub id: KeyId,
    service_id: i16,
    epoch: i64,
    delta: KeyDelta,
    key: &'a [u8],
    order: (u128, Operation, i64),
    digest: Option<u128>,
    content: Option<&'a [u8]>,
    last_event_ms: i64,
    partition: i32,
}

/// The arrays are unnested in the select list, not as `FROM unnest($1, …, $13)`: in `FROM`, each
/// array's elements are first stored in a tuplestore of their own and then zipped; in the select
/// list they are read in lockstep (equal lengths, so no padding). Measured on 27 checkpoints of
/// 10,000 new rows each: 1.57-1.84 s against 1.98-2.28 s, the upsert ~18 % cheaper.
const UPSERT_KEYS: &str = "INSERT INTO keys AS k (service_id, key_hash, side, key_bytes, events, fingerprint_sum, final_position, final_operation, final_arrival, final_digest, final_content, last_event_ms, partition, epoch)
 SELECT unnest($1::int2[]), unnest($2::uuid[]), unnest($3::int2[]), unnest($4::bytea[]), unnest($5::int8[]), unnest($6::text[])::numeric, unnest($7::uuid[]), unnest($8::int2[]), unnest($9::int8[]), unnest($10::uuid[]), unnest($11::bytea[]), unnest($12::int8[]), unnest($13::int4[]), unnest($14::int8[])
 ON CONFLICT (service_id, epoch, key_hash, side) DO UPDATE SET
   events = k.events + excluded.events,
   fingerprint_sum = k.fingerprint_sum + excluded.fingerprint_sum,
   last_event_ms = greatest(k.last_event_ms, excluded.last_event_ms),
   final_position = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_position ELSE k.final_position END,
   final_operation = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_operation ELSE k.final_operation END,
   final_digest = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_digest ELSE k.final_digest END,
   final_content = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_content ELSE k.final_content END,
   partition = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.partition ELSE k.partition END,
   final_arrival = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_arrival ELSE k.final_arrival END";

/// The rows of the batch's keys, sorted so concurrent replicas lock rows in one order (no
/// deadlocks). The final state of each key is chosen among its new events only.
pub(super) fn rows<'a>(
    ids: &ServiceIds,
    batch: &'a Batch,
    per_key: &FxHashMap<KeyId, KeyDelta>,
) -> Result<Vec<KeyRow<'a>>, StoreError> {
    let mut rows = Vec::with_capacity(per_key.len());
    for (k, delta) in per_key {
        let Some(key) = batch.keys.get(k) else {
            continue;
        };
        let Some(f) = key.final_state() else {
            continue;
        };
        rows.push(KeyRow {
            id: *k,
            service_id: ids.get(k.0)?,
            epoch: ids.epoch(k.0)?,
            delta: *delta,
            key: &key.key,
            order: f.order,
            digest: (f.order.1 != Operation::Delete).then_some(f.digest),
            content: f.content.as_deref(),
            last_event_ms: key.last_event_ms,
            partition: key.partition,
        });
    }
    rows.sort_by_key(|r| (r.id.0, r.epoch, r.id.2, r.id.1));
    Ok(rows)
}

/// The stored final events of `keys` (sorted, from `Batch::unverified_keys`) in their services'
/// epochs of `ids`: one primary-key lookup each.
pub(super) async fn finals(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    keys: &[KeyId],
) -> Result<FxHashMap<KeyId, StoredFinal>, StoreError> {
    let (mut services, mut epochs, mut hashes, mut sides) = (vec![], vec![], vec![], vec![]);
    for k in keys {
        services.push(ids.get(k.0)?);
        epochs.push(ids.epoch(k.0)?);
        hashes.push(Uuid::from_u128(k.2));
        sides.push(side_code(k.1));
    }
    type Row = (i64, Uuid, i16, Option<Uuid>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT u.n, k.final_position, k.final_operation, k.final_digest \
         FROM unnest($1::int2[], $2::int8[], $3::uuid[], $4::int2[]) WITH ORDINALITY AS u(service_id, epoch, key_hash, side, n) \
         JOIN keys k ON (k.service_id, k.epoch, k.key_hash, k.side) = (u.service_id, u.epoch, u.key_hash, u.side)",
    )
    .bind(&services)
    .bind(&epochs)
    .bind(&hashes)
    .bind(&sides)
    .fetch_all(&mut *tx)
    .await?;
    let mut finals = FxHashMap::default();
    for (n, position, operation, digest) in rows {
        let key = usize::try_from(n - 1)
            .ok()
            .and_then(|i| keys.get(i))
            .ok_or_else(|| {
                StoreError::Invalid(format!("stored final #{n} matches no key asked for"))
            })?;
        let operation = Operation::from_code(operation)
            .ok_or_else(|| StoreError::Invalid(format!("operation code {operation} in keys")))?;
        finals.insert(
            *key,
            StoredFinal {
                position: position.as_u128(),
                operation,
                digest: digest.map(|d| d.as_u128()),
            },
        );
    }
    Ok(finals)
}

/// Upsert the rows in one statement.
pub(super) async fn upsert(
    tx: &mut sqlx::PgConnection,
    rows: &[KeyRow<'_>],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(UPSERT_KEYS)
        .bind(rows.iter().map(|r| r.service_id).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| Uuid::from_u128(r.id.2))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| side_code(r.id.1)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.key).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.delta.0).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.delta.1.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| Uuid::from_u128(r.order.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| i16::from(r.order.1 as u8))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.order.2).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.digest.map(Uuid::from_u128))
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.content).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.last_event_ms).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.partition).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.epoch).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Upsert the rows under savepoints, halving a refused range until the refused rows are alone:
/// returns the keys the database refused for their data (every other row is written). About
/// 2 × log2(n) statements per refused row; a failure that is not a data error ends it.
pub(super) async fn upsert_isolating(
    tx: &mut sqlx::PgConnection,
    rows: &[KeyRow<'_>],
) -> Result<Vec<KeyId>, StoreError> {
    let mut refused = Vec::new();
    let mut ranges = vec![rows];
    while let Some(range) = ranges.pop() {
        if range.is_empty() {
            continue;
        }
        let mut savepoint = tx.begin().await?;
        match upsert(&mut savepoint, range).await {
            Ok(()) => savepoint.commit().await?,
            Err(e) if e.is_data_error() => {
                savepoint.rollback().await?;
                if let [row] = range {
                    tracing::warn!(error = %e, key = %crate::core::event::display_bytes(row.key), "the database refused a key's row; its events are counted as unstorable");
                    refused.push(row.id);
                } else {
                    let (low, high) = range.split_at(range.len() / 2);
                    ranges.push(high);
                    ranges.push(low);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(refused)
}
