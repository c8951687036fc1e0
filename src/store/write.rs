//! The checkpoint: one transaction that stores a batch's effects together with the offsets that
//! produced them, so a crash at any moment loses nothing and counts nothing twice.
//!
//! Order inside the transaction: compare-and-set every partition's `next_offset` (a replica that lost
//! a partition cannot write for it), append the identities of the batch's new events per partition
//! (what `serve::dedupe` reloads after a restart), then add the new events to keys, windows and
//! tallies, keep the sampled delivery times and samples of bad messages. Every event in a batch is
//! new: duplicates were recognized in memory by the partition's owner.

use super::{Store, StoreError, BASELINE, CANDIDATE};
use crate::config::Side;
use crate::serve::batch::Batch;
use crate::serve::dedupe::{identity_parts, is_delivery_sample, pack};
use keys::{KeyDelta, KeyId};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use uuid::Uuid;

mod keys;

fn side_code(side: Side) -> i16 {
    match side {
        Side::Baseline => BASELINE,
        Side::Candidate => CANDIDATE,
    }
}

/// 64 bits of BLAKE3 over an event's identity and digest: summed (not XORed) into key and window
/// fingerprints, so duplicates could never cancel out.
pub fn fingerprint(key_hash: u128, position: u128, operation: u8, digest: u128) -> i64 {
    let input = identity_parts(key_hash, position, operation, digest);
    let mut first = [0u8; 8];
    first.copy_from_slice(&blake3::hash(&input).as_bytes()[..8]);
    i64::from_be_bytes(first)
}

/// Counts of what a checkpoint stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub records: usize,
    pub new_events: usize,
    /// New distinct events per (service index, side, operation), for metrics.
    pub new_by_operation: BTreeMap<(usize, Side, &'static str), u64>,
}

const INSERT_IDENTITIES: &str = "INSERT INTO event_ids (topic, partition, ids)
 SELECT * FROM unnest($1::text[], $2::int4[], $3::bytea[])";

const INSERT_DELIVERIES: &str =
    "INSERT INTO deliveries (service_id, side, event_id, event_ms, record_ms)
 SELECT * FROM unnest($1::int2[], $2::int2[], $3::uuid[], $4::int8[], $5::int8[])";

const UPSERT_WINDOWS: &str = "INSERT INTO windows AS w (service_id, side, window_start_ms, operation, events, fingerprint_sum)
 SELECT s, sd, ws, op, n, fp::numeric FROM unnest($1::int2[], $2::int2[], $3::int8[], $4::int2[], $5::int8[], $6::text[]) AS t(s, sd, ws, op, n, fp)
 ON CONFLICT (service_id, window_start_ms, side, operation) DO UPDATE SET
   events = w.events + excluded.events, fingerprint_sum = w.fingerprint_sum + excluded.fingerprint_sum";

const UPSERT_TALLIES: &str =
    "INSERT INTO tallies AS t (service_id, side, kind, name, records, events)
 SELECT * FROM unnest($1::int2[], $2::int2[], $3::text[], $4::text[], $5::int8[], $6::int8[])
 ON CONFLICT (service_id, side, kind, name) DO UPDATE SET
   records = t.records + excluded.records, events = t.events + excluded.events";

/// The database id of a batch's service index (resolved once per checkpoint, see `checkpoint`).
fn id(ids: &[i16], service: usize) -> i16 {
    ids.get(service).copied().unwrap_or(0)
}

impl Store {
    /// Store a batch. `names` maps the batch's service indexes to configured names.
    pub async fn checkpoint(&self, names: &[String], batch: &Batch) -> Result<Stored, StoreError> {
        // Name → id once per checkpoint, not per event: the lookups below run for every event
        // (and O(n log n) times in the sort), and each would take the ids' lock and hash a name.
        let ids: Vec<i16> = names
            .iter()
            .map(|n| self.service_id(n).unwrap_or(0))
            .collect();
        let ids = ids.as_slice();
        let mut tx = self.pool.begin().await?;
        for ((topic, partition), p) in &batch.partitions {
            let advanced = match p.expected {
                Some(expected) => sqlx::query(
                    "UPDATE partitions SET next_offset = $3, max_event_ms = greatest(max_event_ms, $4),
                       end_offset = coalesce($5, end_offset), last_record_at = now(), updated_at = now(),
                       min_event_ms = least(min_event_ms, $7), arrival_base = coalesce($8, arrival_base),
                       last_record = $9
                     WHERE topic = $1 AND partition = $2 AND next_offset = $6",
                )
                .bind(topic).bind(partition).bind(p.next_offset).bind(p.max_event_ms).bind(p.end_offset).bind(expected).bind(p.min_event_ms).bind(p.arrival_base)
                .bind(p.last_record.map(|f| f.to_be_bytes().to_vec()))
                .execute(&mut *tx).await?.rows_affected(),
                None => sqlx::query(
                    "INSERT INTO partitions (topic, partition, service_id, side, next_offset, max_event_ms, end_offset, last_record_at, min_event_ms, arrival_base, last_record)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, coalesce($9, 0), $10) ON CONFLICT DO NOTHING",
                )
                .bind(topic).bind(partition).bind(id(ids, p.service)).bind(side_code(p.side))
                .bind(p.next_offset).bind(p.max_event_ms).bind(p.end_offset).bind(p.min_event_ms).bind(p.arrival_base)
                .bind(p.last_record.map(|f| f.to_be_bytes().to_vec()))
                .execute(&mut *tx).await?.rows_affected(),
            };
            if advanced != 1 {
                return Err(StoreError::OwnershipLost {
                    topic: topic.clone(),
                    partition: *partition,
                    expected: p.expected.unwrap_or(-1),
                });
            }
        }

        self.append_identities(&mut tx, batch).await?;
        self.insert_deliveries(&mut tx, ids, batch).await?;

        // Aggregate the new events per key and per window.
        let mut per_key: FxHashMap<KeyId, KeyDelta> =
            FxHashMap::with_capacity_and_hasher(batch.keys.len(), Default::default());
        let mut per_window: BTreeMap<(usize, Side, i64, u8), (i64, i128)> = BTreeMap::new();
        let mut stored = Stored {
            records: batch.records,
            ..Stored::default()
        };
        for x in &batch.events {
            let fp = i128::from(fingerprint(
                x.key_hash,
                x.position,
                x.operation as u8,
                x.digest,
            ));
            let k = per_key.entry((x.service, x.side, x.key_hash)).or_default();
            k.0 += 1;
            k.1 += fp;
            let w = per_window
                .entry((x.service, x.side, x.window_start_ms, x.operation as u8))
                .or_default();
            w.0 += 1;
            w.1 += fp;
            *stored
                .new_by_operation
                .entry((x.service, x.side, x.operation.as_str()))
                .or_default() += 1;
            stored.new_events += 1;
        }
        self.upsert_keys(&mut tx, ids, batch, &per_key).await?;
        self.upsert_windows(&mut tx, ids, &per_window).await?;
        self.upsert_tallies(&mut tx, ids, batch, &stored).await?;
        for s in &batch.samples {
            sqlx::query("INSERT INTO bad_messages (service_id, side, reason, topic, partition, kafka_offset, sample) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(id(ids, s.service)).bind(side_code(s.side)).bind(s.reason).bind(&s.topic).bind(s.partition).bind(s.offset).bind(&s.sample)
                .execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// One packed row per partition: the identities `serve::dedupe` reloads after a restart.
    async fn append_identities(
        &self,
        tx: &mut sqlx::PgConnection,
        batch: &Batch,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = batch
            .identities
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(INSERT_IDENTITIES)
            .bind(
                rows.iter()
                    .map(|((t, _), _)| t.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|((_, p), _)| *p).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, ids)| pack(ids)).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The sampled events' delivery times (latency evidence, see `serve::dedupe::is_delivery_sample`).
    async fn insert_deliveries(
        &self,
        tx: &mut sqlx::PgConnection,
        ids: &[i16],
        batch: &Batch,
    ) -> Result<(), StoreError> {
        let sampled: Vec<(&crate::serve::batch::BatchEvent, i64)> = batch
            .events
            .iter()
            .filter(|e| is_delivery_sample(e.identity))
            .filter_map(|e| Some((e, e.record_ms?)))
            .collect();
        if sampled.is_empty() {
            return Ok(());
        }
        sqlx::query(INSERT_DELIVERIES)
            .bind(
                sampled
                    .iter()
                    .map(|(e, _)| id(ids, e.service))
                    .collect::<Vec<_>>(),
            )
            .bind(
                sampled
                    .iter()
                    .map(|(e, _)| side_code(e.side))
                    .collect::<Vec<_>>(),
            )
            .bind(
                sampled
                    .iter()
                    .map(|(e, _)| Uuid::from_u128(e.identity))
                    .collect::<Vec<_>>(),
            )
            .bind(sampled.iter().map(|(e, _)| e.event_ms).collect::<Vec<_>>())
            .bind(sampled.iter().map(|(_, r)| *r).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn upsert_windows(
        &self,
        tx: &mut sqlx::PgConnection,
        ids: &[i16],
        per_window: &BTreeMap<(usize, Side, i64, u8), (i64, i128)>,
    ) -> Result<(), StoreError> {
        let w: Vec<_> = per_window.iter().collect();
        sqlx::query(UPSERT_WINDOWS)
            .bind(
                w.iter()
                    .map(|((s, _, _, _), _)| id(ids, *s))
                    .collect::<Vec<_>>(),
            )
            .bind(
                w.iter()
                    .map(|((_, side, _, _), _)| side_code(*side))
                    .collect::<Vec<_>>(),
            )
            .bind(
                w.iter()
                    .map(|((_, _, start, _), _)| *start)
                    .collect::<Vec<_>>(),
            )
            .bind(
                w.iter()
                    .map(|((_, _, _, op), _)| i16::from(*op))
                    .collect::<Vec<_>>(),
            )
            .bind(w.iter().map(|(_, (n, _))| *n).collect::<Vec<_>>())
            .bind(
                w.iter()
                    .map(|(_, (_, fp))| fp.to_string())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn upsert_tallies(
        &self,
        tx: &mut sqlx::PgConnection,
        ids: &[i16],
        batch: &Batch,
        stored: &Stored,
    ) -> Result<(), StoreError> {
        let rows: Vec<_> = batch
            .tallies
            .iter()
            .map(|((s, side, kind, name), records)| {
                let events = if *kind == "operation" {
                    stored
                        .new_by_operation
                        .iter()
                        .find(|((ss, sd, op), _)| ss == s && sd == side && op == name)
                        .map_or(0, |(_, n)| *n as i64)
                } else {
                    0
                };
                (
                    id(ids, *s),
                    side_code(*side),
                    *kind,
                    *name,
                    *records,
                    events,
                )
            })
            .collect();
        sqlx::query(UPSERT_TALLIES)
            .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.3).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.4).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.5).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}
