//! State as if a service had consumed many keys: the rows a checkpoint leaves after one insert
//! per key on each side, both sides equal (`keys`, and the `tallies` that count them). Used by
//! `bench soak` and the restart test to stand for weeks of history in seconds; the evaluation,
//! the parity refresh, a restart and the pruner read these rows exactly as they read consumed
//! ones. What consuming them would also have left is bounded by the dedupe horizon and the
//! rewind (identities, the event log: keys older than both are past them) or pruned by retention
//! (windows, deliveries), so leaving it out changes none of those readers.

use super::StoreError;

/// Keys per insert statement: a 5 M-key preload is not one giant transaction.
const SLICE: i64 = 500_000;

/// Store `keys` distinct keys per side for service `service_id` (epoch 0), each inserted once at
/// `at_ms`, matching on both sides; named `pre1`, `pre2`…
pub async fn matched_keys(
    pool: &sqlx::PgPool,
    service_id: i16,
    keys: u64,
    at_ms: i64,
) -> Result<(), StoreError> {
    let keys = i64::try_from(keys).map_err(|_| StoreError::Invalid(format!("{keys} keys")))?;
    let mut from = 1i64;
    while from <= keys {
        let to = (from + SLICE - 1).min(keys);
        sqlx::query(
            "INSERT INTO keys (service_id, key_hash, side, key_bytes, events, fingerprint_sum, \
               final_position, final_operation, final_arrival, final_digest, final_content, \
               last_event_ms, partition, epoch) \
             SELECT $1, md5('pre' || g)::uuid, s.side, convert_to('pre' || g, 'UTF8'), 1, \
               (g * 7919)::numeric, '00000000-0000-0000-0000-000000000000', 3, g, \
               md5('digest' || g)::uuid, convert_to('{\"id\":' || g || '}', 'UTF8'), $2, \
               (g % 3)::int, 0 \
             FROM generate_series($3::bigint, $4::bigint) g, (VALUES (0::int2), (1::int2)) s(side)",
        )
        .bind(service_id)
        .bind(at_ms)
        .bind(from)
        .bind(to)
        .execute(pool)
        .await?;
        from = to + 1;
    }
    sqlx::query(
        "INSERT INTO tallies (service_id, side, kind, name, records, events, epoch) \
         SELECT $1, s, 'operation', 'insert', $2, $2, 0 FROM (VALUES (0::int2), (1::int2)) v(s)",
    )
    .bind(service_id)
    .bind(keys)
    .execute(pool)
    .await?;
    Ok(())
}
