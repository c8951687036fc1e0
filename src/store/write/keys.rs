//! The checkpoint's `keys` upsert: per (service, key, side), the new events' count and
//! fingerprint sum are added, and the key's final state replaced when a new event orders after it
//! (position, operation, arrival), so batches stored in any order leave the same row.

use super::{id, side_code};
use crate::config::Side;
use crate::core::operation::Operation;
use crate::serve::batch::Batch;
use crate::store::{Store, StoreError};
use rustc_hash::FxHashMap;
use uuid::Uuid;

/// (service index, side, key hash).
pub(super) type KeyId = (usize, Side, u128);
/// New events of a key in one checkpoint: count and fingerprint sum.
pub(super) type KeyDelta = (i64, i128);

/// A key's final state as written to `keys` (texts borrowed from the batch: no copy per key).
struct KeyFinal<'a> {
    key_text: &'a str,
    order: (u128, Operation, i64),
    digest: Option<u128>,
    content: Option<&'a str>,
    last_event_ms: i64,
    partition: i32,
}

/// The arrays are unnested in the select list, not as `FROM unnest($1, …, $13)`: in `FROM`, each
/// array's elements are first stored in a tuplestore of their own and then zipped; in the select
/// list they are read in lockstep (equal lengths, so no padding). Measured on 27 checkpoints of
/// 10,000 new rows each: 1.57-1.84 s against 1.98-2.28 s, the upsert ~18 % cheaper.
const UPSERT_KEYS: &str = "INSERT INTO keys AS k (service_id, key_hash, side, key_text, events, fingerprint_sum, final_position, final_operation, final_arrival, final_digest, final_content, last_event_ms, partition)
 SELECT unnest($1::int2[]), unnest($2::uuid[]), unnest($3::int2[]), unnest($4::text[]), unnest($5::int8[]), unnest($6::text[])::numeric, unnest($7::uuid[]), unnest($8::int2[]), unnest($9::int8[]), unnest($10::uuid[]), unnest($11::text[]), unnest($12::int8[]), unnest($13::int4[])
 ON CONFLICT (service_id, key_hash, side) DO UPDATE SET
   events = k.events + excluded.events,
   fingerprint_sum = k.fingerprint_sum + excluded.fingerprint_sum,
   last_event_ms = greatest(k.last_event_ms, excluded.last_event_ms),
   final_position = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_position ELSE k.final_position END,
   final_operation = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_operation ELSE k.final_operation END,
   final_digest = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_digest ELSE k.final_digest END,
   final_content = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_content ELSE k.final_content END,
   partition = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.partition ELSE k.partition END,
   final_arrival = CASE WHEN (excluded.final_position, excluded.final_operation, excluded.final_arrival) > (k.final_position, k.final_operation, k.final_arrival) THEN excluded.final_arrival ELSE k.final_arrival END";

impl Store {
    pub(super) async fn upsert_keys(
        &self,
        tx: &mut sqlx::PgConnection,
        ids: &[i16],
        batch: &Batch,
        per_key: &FxHashMap<KeyId, KeyDelta>,
    ) -> Result<(), StoreError> {
        // The final state of each key among its new events only; sorted, so concurrent replicas
        // lock rows in one order (no deadlocks).
        let mut keys: Vec<_> = per_key
            .iter()
            .filter_map(|(k, (n, fp))| {
                let key = batch.keys.get(k)?;
                let f = key.final_state()?;
                let final_state = KeyFinal {
                    key_text: key.key_text.as_str(),
                    order: f.order,
                    digest: (f.order.1 != Operation::Delete).then_some(f.digest),
                    content: f.content.as_deref(),
                    last_event_ms: key.last_event_ms,
                    partition: key.partition,
                };
                Some((k, (*n, *fp), final_state))
            })
            .collect();
        keys.sort_by_key(|((s, side, h), _, _)| (*s, *h, *side));
        sqlx::query(UPSERT_KEYS)
            .bind(
                keys.iter()
                    .map(|((s, _, _), _, _)| id(ids, *s))
                    .collect::<Vec<_>>(),
            )
            .bind(
                keys.iter()
                    .map(|((_, _, h), _, _)| Uuid::from_u128(*h))
                    .collect::<Vec<_>>(),
            )
            .bind(
                keys.iter()
                    .map(|((_, side, _), _, _)| side_code(*side))
                    .collect::<Vec<_>>(),
            )
            .bind(keys.iter().map(|(_, _, f)| f.key_text).collect::<Vec<_>>())
            .bind(keys.iter().map(|(_, (n, _), _)| *n).collect::<Vec<_>>())
            .bind(
                keys.iter()
                    .map(|(_, (_, fp), _)| fp.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                keys.iter()
                    .map(|(_, _, f)| Uuid::from_u128(f.order.0))
                    .collect::<Vec<_>>(),
            )
            .bind(
                keys.iter()
                    .map(|(_, _, f)| i16::from(f.order.1 as u8))
                    .collect::<Vec<_>>(),
            )
            .bind(keys.iter().map(|(_, _, f)| f.order.2).collect::<Vec<_>>())
            .bind(
                keys.iter()
                    .map(|(_, _, f)| f.digest.map(Uuid::from_u128))
                    .collect::<Vec<_>>(),
            )
            .bind(keys.iter().map(|(_, _, f)| f.content).collect::<Vec<_>>())
            .bind(
                keys.iter()
                    .map(|(_, _, f)| f.last_event_ms)
                    .collect::<Vec<_>>(),
            )
            .bind(keys.iter().map(|(_, _, f)| f.partition).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
