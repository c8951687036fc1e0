//! The checkpoint: one transaction that stores a batch's effects together with the offsets that
//! produced them, so a crash at any moment loses nothing and counts nothing twice.
//!
//! Order inside the transaction: compare-and-set every partition's `next_offset` (a replica that lost
//! a partition cannot write for it), add the new events to `keys`, append the identities of the
//! batch's new events per partition (what `serve::lane::dedupe` reloads after a restart), then windows and
//! tallies, the sampled delivery times and samples of bad messages. Every event in a batch is new:
//! duplicates were recognized in memory by the partition's owner.
//!
//! **A refusal that will not go away is isolated, not retried forever.** When the database refuses
//! a batch for a value it holds (a data error, `StoreError::is_data_error`), retrying the same
//! transaction would fail the same way and stop the lane, and with it every partition and service
//! behind it. So the batch is written once more with each key's row under a savepoint (bisected:
//! a few statements per refused key, not one per key): the keys the database refuses are left out,
//! their events counted as `unparseable`/`unstorable` and sampled, and everything else is stored
//! with the offsets as usual. Other failures (connection, permissions, timeouts) are retried by the
//! checkpointer, which reports them (`/readyz`, the freshness criterion).

use super::{side_code, Store, StoreError};
use crate::core::identity::{fingerprint, is_delivery_sample, pack};
use crate::model::{EpochScope, Side, TallyKind, TopicPartition};
use crate::store::batch::{Batch, BatchEvent, TallyId, SAMPLES_PER_REASON, SAMPLE_BYTES};
use keys::{KeyDelta, KeyId};
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::Connection;
use std::collections::BTreeMap;
use uuid::Uuid;

mod keys;
pub(super) mod log;

/// The reason (under [`TallyKind::Unparseable`]) of events whose key row the database refused.
pub const UNSTORABLE: &str = "unstorable";

/// Counts of what a checkpoint stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub records: usize,
    pub new_events: usize,
    /// New distinct events per (service index, side, operation), for metrics.
    pub new_by_operation: BTreeMap<(usize, Side, &'static str), u64>,
    /// The records per tally as stored: the batch's, with refused keys' events moved to
    /// [`UNSTORABLE`].
    pub tallies: BTreeMap<TallyId, i64>,
    /// Events left out because the database refused their key's row.
    pub unstorable: usize,
    /// The epoch each service (by index) was written in.
    pub scopes: Vec<EpochScope>,
}

const INSERT_IDENTITIES: &str = "INSERT INTO event_ids (topic, partition, ids, side, max_event_ms)
 SELECT * FROM unnest($1::text[], $2::int4[], $3::bytea[], $4::int2[], $5::int8[])";

const INSERT_DELIVERIES: &str =
    "INSERT INTO deliveries (service_id, side, event_id, event_ms, record_ms)
 SELECT * FROM unnest($1::int2[], $2::int2[], $3::uuid[], $4::int8[], $5::int8[])";

const UPSERT_WINDOWS: &str = "INSERT INTO windows AS w (service_id, side, window_start_ms, operation, events, fingerprint_sum, epoch)
 SELECT s, sd, ws, op, n, fp::numeric, ep FROM unnest($1::int2[], $2::int2[], $3::int8[], $4::int2[], $5::int8[], $6::text[], $7::int8[]) AS t(s, sd, ws, op, n, fp, ep)
 ON CONFLICT (service_id, epoch, window_start_ms, side, operation) DO UPDATE SET
   events = w.events + excluded.events, fingerprint_sum = w.fingerprint_sum + excluded.fingerprint_sum";

const UPSERT_TALLIES: &str =
    "INSERT INTO tallies AS t (service_id, side, kind, name, records, events, epoch)
 SELECT * FROM unnest($1::int2[], $2::int2[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[])
 ON CONFLICT (service_id, epoch, side, kind, name) DO UPDATE SET
   records = t.records + excluded.records, events = t.events + excluded.events";

const INSERT_SAMPLE: &str = "INSERT INTO bad_messages (service_id, side, reason, topic, partition, kafka_offset, key_bytes, sample)
 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Database ids of a batch's service indexes, resolved once per checkpoint (the lookups run for
/// every event), and the epoch each service's rows are written in (read inside the checkpoint's
/// transaction, `log::enter`). A name without an id is an error: writing under a made-up id
/// would mix services.
#[derive(Debug)]
pub(super) struct ServiceIds {
    ids: Vec<i16>,
    epochs: Vec<i64>,
}

impl ServiceIds {
    /// One service (index 0) written in `epoch`.
    pub(super) fn one(id: i16, epoch: i64) -> Self {
        Self {
            ids: vec![id],
            epochs: vec![epoch],
        }
    }

    pub(super) fn get(&self, service: usize) -> Result<i16, StoreError> {
        self.ids
            .get(service)
            .copied()
            .ok_or(StoreError::UnknownService(format!("#{service}")))
    }

    pub(super) fn epoch(&self, service: usize) -> Result<i64, StoreError> {
        self.epochs
            .get(service)
            .copied()
            .ok_or(StoreError::UnknownService(format!("#{service}")))
    }
}

/// Whether a checkpoint writes each key row under a savepoint to find the ones refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    Off,
    On,
}

impl Store {
    /// Store a batch. `names` maps the batch's service indexes to configured names.
    pub async fn checkpoint(&self, names: &[String], batch: &Batch) -> Result<Stored, StoreError> {
        let ids: Vec<i16> = names
            .iter()
            .map(|n| {
                self.service_id(n)
                    .ok_or_else(|| StoreError::UnknownService(n.clone()))
            })
            .collect::<Result<_, _>>()?;
        let stored = match self.write_batch(&ids, batch, Isolation::Off).await {
            Err(e) if e.is_data_error() => {
                tracing::warn!(error = %e, "the database refused a value of this checkpoint; storing its keys one by one to leave out the refused ones");
                self.write_batch(&ids, batch, Isolation::On).await
            }
            other => other,
        }?;
        self.remember_scopes(ids.iter().copied().zip(stored.scopes.iter().copied()));
        Ok(stored)
    }

    async fn write_batch(
        &self,
        ids: &[i16],
        batch: &Batch,
        isolation: Isolation,
    ) -> Result<Stored, StoreError> {
        let mut tx = self.pool.begin().await?;
        advance_partitions(&mut tx, ids, batch).await?;
        let current = log::enter(&mut tx, ids).await?;
        let scopes: Vec<EpochScope> = ids
            .iter()
            .map(|id| current.get(id).copied().unwrap_or_default())
            .collect();
        // Services whose epoch changed since the lane filled this batch.
        let changed: BTreeMap<usize, EpochScope> = scopes
            .iter()
            .enumerate()
            .filter(|(i, scope)| batch.scope(*i).id != scope.id)
            .map(|(i, scope)| (i, *scope))
            .collect();
        let rebased;
        let batch = if changed.is_empty() {
            batch
        } else {
            tracing::info!(services = changed.len(), "an epoch started while this batch was filled: its earlier events are counted as before_start");
            rebased = batch.rebased(&changed);
            &rebased
        };
        let ids = ServiceIds {
            ids: ids.to_vec(),
            epochs: scopes.iter().map(|s| s.id).collect(),
        };
        // Events from beyond the dedupe horizon meet their keys' stored final positions here,
        // in the transaction, so every earlier checkpoint of their partitions is seen.
        let resolved;
        let batch = if batch.unverified.is_empty() {
            batch
        } else {
            let finals = keys::finals(&mut tx, &ids, &batch.unverified_keys()).await?;
            resolved = batch.resolved(&finals);
            &resolved
        };
        let (mut stored, refused) = count(&mut tx, &ids, batch, isolation).await?;
        stored.scopes = scopes;
        let kept = |e: &BatchEvent| !refused.contains(&(e.service, e.side, e.key_hash));
        append_identities(&mut tx, batch, &refused).await?;
        log::append_log(&mut tx, &ids, batch, &kept).await?;
        insert_deliveries(&mut tx, &ids, batch, &kept).await?;
        insert_samples(&mut tx, &ids, batch, &refused, isolation).await?;
        tx.commit().await?;
        Ok(stored)
    }
}

/// The batch's keys, windows and tallies (each service's in its epoch of `ids`); returns what was
/// stored and the keys the database refused (left out, their events counted as unstorable).
async fn count(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    batch: &Batch,
    isolation: Isolation,
) -> Result<(Stored, FxHashSet<KeyId>), StoreError> {
    let mut per_key: FxHashMap<KeyId, KeyDelta> =
        FxHashMap::with_capacity_and_hasher(batch.keys.len(), Default::default());
    for x in &batch.events {
        let k = per_key.entry((x.service, x.side, x.key_hash)).or_default();
        k.0 += 1;
        k.1 += i128::from(event_fingerprint(x));
    }
    let refused: FxHashSet<KeyId> = match isolation {
        Isolation::Off => {
            keys::upsert(&mut *tx, &keys::rows(ids, batch, &per_key)?).await?;
            FxHashSet::default()
        }
        Isolation::On => keys::upsert_isolating(&mut *tx, &keys::rows(ids, batch, &per_key)?)
            .await?
            .into_iter()
            .collect(),
    };
    let kept = |e: &BatchEvent| !refused.contains(&(e.service, e.side, e.key_hash));
    let mut per_window: BTreeMap<(usize, Side, i64, u8), (i64, i128)> = BTreeMap::new();
    let mut stored = Stored {
        records: batch.records,
        tallies: batch.tallies.clone(),
        ..Stored::default()
    };
    for x in &batch.events {
        if !kept(x) {
            // The record was tallied under its operation when it was admitted: it is
            // counted once, under the reason it was not compared.
            move_tally(
                &mut stored.tallies,
                TallyId {
                    service: x.service,
                    side: x.side,
                    kind: TallyKind::Operation,
                    name: x.operation.as_str(),
                },
                TallyId {
                    service: x.service,
                    side: x.side,
                    kind: TallyKind::Unparseable,
                    name: UNSTORABLE,
                },
            );
            stored.unstorable += 1;
            continue;
        }
        let w = per_window
            .entry((x.service, x.side, x.window_start_ms, x.operation as u8))
            .or_default();
        w.0 += 1;
        w.1 += i128::from(event_fingerprint(x));
        *stored
            .new_by_operation
            .entry((x.service, x.side, x.operation.as_str()))
            .or_default() += 1;
        stored.new_events += 1;
    }
    upsert_windows(&mut *tx, ids, &per_window).await?;
    upsert_tallies(&mut *tx, ids, &stored).await?;
    Ok((stored, refused))
}

/// A new epoch's rows from its rebuilt batch (`epochs::rebuild`): keys, windows and the
/// operation tallies, as a checkpoint of those events would write them.
pub(super) async fn count_rebuilt(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    batch: &Batch,
) -> Result<(), StoreError> {
    count(tx, ids, batch, Isolation::Off).await.map(|_| ())
}

fn event_fingerprint(x: &BatchEvent) -> i64 {
    fingerprint(x.key_hash, x.position, x.operation as u8, x.digest)
}

fn move_tally(tallies: &mut BTreeMap<TallyId, i64>, from: TallyId, to: TallyId) {
    if let Some(n) = tallies.get_mut(&from) {
        *n -= 1;
        if *n == 0 {
            tallies.remove(&from);
        }
    }
    *tallies.entry(to).or_default() += 1;
}

/// Compare-and-set of every partition's offset (or its first row).
async fn advance_partitions(
    tx: &mut sqlx::PgConnection,
    ids: &[i16],
    batch: &Batch,
) -> Result<(), StoreError> {
    for (TopicPartition { topic, partition }, p) in &batch.partitions {
        let last_record = p.last_record.map(|f| f.to_be_bytes().to_vec());
        let advanced = match p.expected {
            Some(expected) => sqlx::query(
                "UPDATE partitions SET next_offset = $3, max_event_ms = greatest(max_event_ms, $4),
                   end_offset = coalesce($5, end_offset), last_record_at = now(), updated_at = now(),
                   min_event_ms = least(min_event_ms, $7), arrival_base = coalesce($8, arrival_base),
                   last_record = $9
                 WHERE topic = $1 AND partition = $2 AND next_offset = $6 AND side = $10",
            )
            .bind(topic).bind(partition).bind(p.next_offset).bind(p.max_event_ms).bind(p.end_offset).bind(expected).bind(p.min_event_ms).bind(p.arrival_base)
            .bind(last_record).bind(side_code(p.side))
            .execute(&mut *tx).await?.rows_affected(),
            None => sqlx::query(
                "INSERT INTO partitions (topic, partition, service_id, side, next_offset, max_event_ms, end_offset, last_record_at, min_event_ms, arrival_base, last_record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, coalesce($9, 0), $10) ON CONFLICT DO NOTHING",
            )
            .bind(topic).bind(partition)
            .bind(*ids.get(p.service).ok_or(StoreError::UnknownService(format!("#{}", p.service)))?)
            .bind(side_code(p.side))
            .bind(p.next_offset).bind(p.max_event_ms).bind(p.end_offset).bind(p.min_event_ms).bind(p.arrival_base)
            .bind(last_record)
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
    Ok(())
}

/// One packed row per partition: the identities `serve::lane::dedupe` reloads after a restart. The
/// identities of refused keys' events are left out with them.
async fn append_identities(
    tx: &mut sqlx::PgConnection,
    batch: &Batch,
    refused: &FxHashSet<KeyId>,
) -> Result<(), StoreError> {
    let refused_ids: FxHashSet<u128> = batch
        .events
        .iter()
        .filter(|e| refused.contains(&(e.service, e.side, e.key_hash)))
        .map(|e| e.identity)
        .collect();
    /// One partition's packed identities with its side and newest event time.
    struct Row<'a> {
        tp: &'a TopicPartition,
        side: Side,
        max_event_ms: Option<i64>,
        packed: Vec<u8>,
    }
    let rows: Vec<Row> = batch
        .identities
        .iter()
        .map(|(tp, ids)| {
            // A partition's identities travel with its progress (`Batch::identities`), whose
            // newest event time bounds theirs (what the dedupe horizon loads and prunes by).
            let progress = batch.partitions.get(tp).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "identities of {tp} without its progress in the batch"
                ))
            })?;
            let packed = if refused_ids.is_empty() {
                pack(ids)
            } else {
                let kept: Vec<u128> = ids
                    .iter()
                    .copied()
                    .filter(|i| !refused_ids.contains(i))
                    .collect();
                pack(&kept)
            };
            Ok(Row {
                tp,
                side: progress.side,
                max_event_ms: progress.max_event_ms,
                packed,
            })
        })
        .filter(|row| row.as_ref().map_or(true, |r| !r.packed.is_empty()))
        .collect::<Result<_, StoreError>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_IDENTITIES)
        .bind(rows.iter().map(|r| r.tp.topic.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.tp.partition).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.packed.as_slice()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| side_code(r.side)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.max_event_ms).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The sampled events' delivery times (latency evidence, see `core::identity::is_delivery_sample`).
async fn insert_deliveries(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    batch: &Batch,
    kept: &impl Fn(&BatchEvent) -> bool,
) -> Result<(), StoreError> {
    #[derive(Default)]
    struct Columns {
        service: Vec<i16>,
        side: Vec<i16>,
        event: Vec<Uuid>,
        event_ms: Vec<i64>,
        record_ms: Vec<i64>,
    }
    let mut c = Columns::default();
    for e in batch.events.iter().filter(|e| kept(e)) {
        let Some(record_ms) = e.record_ms.filter(|_| is_delivery_sample(e.identity)) else {
            continue;
        };
        c.service.push(ids.get(e.service)?);
        c.side.push(side_code(e.side));
        c.event.push(Uuid::from_u128(e.identity));
        c.event_ms.push(e.event_ms);
        c.record_ms.push(record_ms);
    }
    if c.service.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_DELIVERIES)
        .bind(c.service)
        .bind(c.side)
        .bind(c.event)
        .bind(c.event_ms)
        .bind(c.record_ms)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn upsert_windows(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    per_window: &BTreeMap<(usize, Side, i64, u8), (i64, i128)>,
) -> Result<(), StoreError> {
    if per_window.is_empty() {
        return Ok(());
    }
    #[derive(Default)]
    struct Columns {
        service: Vec<i16>,
        side: Vec<i16>,
        start: Vec<i64>,
        operation: Vec<i16>,
        events: Vec<i64>,
        fingerprint: Vec<String>,
        epoch: Vec<i64>,
    }
    let mut c = Columns::default();
    for ((service, side, start, op), (n, fp)) in per_window {
        c.epoch.push(ids.epoch(*service)?);
        c.service.push(ids.get(*service)?);
        c.side.push(side_code(*side));
        c.start.push(*start);
        c.operation.push(i16::from(*op));
        c.events.push(*n);
        c.fingerprint.push(fp.to_string());
    }
    sqlx::query(UPSERT_WINDOWS)
        .bind(c.service)
        .bind(c.side)
        .bind(c.start)
        .bind(c.operation)
        .bind(c.events)
        .bind(c.fingerprint)
        .bind(c.epoch)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn upsert_tallies(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    stored: &Stored,
) -> Result<(), StoreError> {
    if stored.tallies.is_empty() {
        return Ok(());
    }
    #[derive(Default)]
    struct Columns<'a> {
        service: Vec<i16>,
        side: Vec<i16>,
        kind: Vec<&'a str>,
        name: Vec<&'a str>,
        records: Vec<i64>,
        events: Vec<i64>,
        epoch: Vec<i64>,
    }
    let mut c = Columns::default();
    for (t, records) in &stored.tallies {
        let events = if t.kind == TallyKind::Operation {
            stored
                .new_by_operation
                .get(&(t.service, t.side, t.name))
                .map_or(0, |n| *n as i64)
        } else {
            0
        };
        c.epoch.push(ids.epoch(t.service)?);
        c.service.push(ids.get(t.service)?);
        c.side.push(side_code(t.side));
        c.kind.push(t.kind.as_str());
        c.name.push(t.name);
        c.records.push(*records);
        c.events.push(events);
    }
    sqlx::query(UPSERT_TALLIES)
        .bind(c.service)
        .bind(c.side)
        .bind(c.kind)
        .bind(c.name)
        .bind(c.records)
        .bind(c.events)
        .bind(c.epoch)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Samples of bad messages, then one sample per refused key (its key and final content). With
/// isolation each goes under a savepoint: a sample the database refuses is dropped, not the batch.
async fn insert_samples(
    tx: &mut sqlx::PgConnection,
    ids: &ServiceIds,
    batch: &Batch,
    refused: &FxHashSet<KeyId>,
    isolation: Isolation,
) -> Result<(), StoreError> {
    let mut refused: Vec<&KeyId> = refused.iter().collect();
    refused.sort();
    let mut per_side: BTreeMap<(usize, Side), usize> = BTreeMap::new();
    let refused_samples = refused.into_iter().filter_map(|id| {
        let taken = per_side.entry((id.0, id.1)).or_default();
        *taken += 1;
        if *taken > SAMPLES_PER_REASON {
            return None;
        }
        let key = batch.keys.get(id)?;
        // The first of the key's events names the record (topic, partition, offset).
        let first = batch
            .events
            .iter()
            .find(|e| (e.service, e.side, e.key_hash) == *id)?;
        let topic = batch
            .identities
            .iter()
            .find(|(TopicPartition { partition: p, .. }, ids)| {
                *p == first.partition && ids.contains(&first.identity)
            })
            .map(|(TopicPartition { topic: t, .. }, _)| t.as_str())?;
        let content = key.final_state().and_then(|f| f.content.as_deref());
        let sample = content.unwrap_or_default();
        Some(Sample {
            service: id.0,
            side: id.1,
            reason: UNSTORABLE,
            topic,
            partition: first.partition,
            offset: first.offset,
            key: Some(&key.key),
            sample: &sample[..sample.len().min(SAMPLE_BYTES)],
        })
    });
    let samples: Vec<Sample<'_>> = batch
        .samples
        .iter()
        .map(|s| Sample {
            service: s.service,
            side: s.side,
            reason: s.reason,
            topic: &s.topic,
            partition: s.partition,
            offset: s.offset,
            key: s.key.as_deref(),
            sample: &s.sample,
        })
        .chain(refused_samples)
        .collect();
    for s in samples {
        let query = sqlx::query(INSERT_SAMPLE)
            .bind(ids.get(s.service)?)
            .bind(side_code(s.side))
            .bind(s.reason)
            .bind(s.topic)
            .bind(s.partition)
            .bind(s.offset)
            .bind(s.key)
            .bind(s.sample);
        match isolation {
            Isolation::Off => {
                query.execute(&mut *tx).await?;
            }
            Isolation::On => {
                let mut savepoint = tx.begin().await?;
                match query
                    .execute(&mut *savepoint)
                    .await
                    .map_err(StoreError::from)
                {
                    Ok(_) => savepoint.commit().await?,
                    Err(e) if e.is_data_error() => {
                        savepoint.rollback().await?;
                        tracing::warn!(topic = s.topic, partition = s.partition, offset = s.offset, reason = s.reason, "the database refused a bad-message sample; it is not kept (the record is counted)");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// A bad-message sample as written (borrowed from the batch).
struct Sample<'a> {
    service: usize,
    side: Side,
    reason: &'static str,
    topic: &'a str,
    partition: i32,
    offset: i64,
    key: Option<&'a [u8]>,
    sample: &'a [u8],
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
