//! SQL about sampled row diffs: storing sampler rounds, reading them for the status and the API,
//! and the keys the sampler checks besides its uniform sample (flagged and recently changed keys,
//! from the stream comparison's `keys` table).
//!
//! Bounded: the newest [`KEEP_ROUNDS`] rounds per service and, of the latest round only, at most
//! [`MAX_STORED_DIFFS`] differing keys.

use super::StoreError;
use crate::model::status::RowsSummary;
use crate::model::{KindCounts, MismatchKind};
use crate::rowdiff::sampler::SampleResult;
use crate::store::EpochKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;

/// Rounds kept per service (a day at the default 60 s interval).
pub const KEEP_ROUNDS: i64 = 1440;
/// Differing keys stored for a service's latest round; the counts stay exact beyond it.
pub const MAX_STORED_DIFFS: usize = 1000;

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn kind_name(kind: MismatchKind) -> &'static str {
    match kind {
        MismatchKind::MissingInCandidate => "missing_in_candidate",
        MismatchKind::ExtraInCandidate => "extra_in_candidate",
        MismatchKind::Mismatched => "mismatched",
    }
}

/// Rows of one column that differed in the uniform sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowColumn {
    pub column: String,
    pub mismatched_rows: u64,
}

/// One stored sampler round.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RowRound {
    #[serde(flatten)]
    pub summary: RowsSummary,
    pub extra_keys_invalid: u64,
    /// Per-column differences of the uniform sample, most frequent first.
    pub columns: Vec<RowColumn>,
    pub duration_ms: u64,
}

/// A differing key of the latest round.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RowDiffItem {
    /// The key columns and their values, e.g. `{"id": 10}`.
    #[schema(value_type = Object)]
    pub key: Value,
    #[schema(example = "mismatched")]
    pub kind: String,
    /// Differing columns (`mismatched` only).
    pub columns: Vec<String>,
    /// In the uniform sample (counted in the ratio), or one of the flagged/recent keys.
    pub uniform: bool,
}

/// Store a round, replace the service's stored differing keys with this round's, prune history.
pub async fn record_round(
    pool: &PgPool,
    service_id: i16,
    r: &SampleResult,
) -> Result<i64, StoreError> {
    let columns: Vec<RowColumn> = r
        .columns
        .iter()
        .map(|c| RowColumn {
            column: c.column.clone(),
            mismatched_rows: c.mismatched_rows,
        })
        .collect();
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO row_samples (service_id, rows_sampled, missing_in_candidate, \
           extra_in_candidate, mismatched, extra_keys_checked, extra_keys_invalid, \
           extra_missing_in_candidate, extra_extra_in_candidate, extra_mismatched, in_flight, \
           diff_ratio, diff_ratio_upper_95, columns, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(service_id)
    .bind(db(r.rows_sampled))
    .bind(db(r.rows.missing_in_candidate))
    .bind(db(r.rows.extra_in_candidate))
    .bind(db(r.rows.mismatched))
    .bind(db(r.extra_keys_checked))
    .bind(db(r.extra_keys_invalid))
    .bind(db(r.extra_rows.missing_in_candidate))
    .bind(db(r.extra_rows.extra_in_candidate))
    .bind(db(r.extra_rows.mismatched))
    .bind(db(r.in_flight))
    .bind(r.diff_ratio)
    .bind(r.diff_ratio_upper_95)
    .bind(sqlx::types::Json(&columns))
    .bind(db(r.duration_ms))
    .fetch_one(&mut *tx)
    .await?;
    // Only the latest round's keys are kept: older ones are history the counts already carry.
    sqlx::query("DELETE FROM row_sample_diffs WHERE service_id = $1")
        .bind(service_id)
        .execute(&mut *tx)
        .await?;
    let diffs = &r.diffs[..r.diffs.len().min(MAX_STORED_DIFFS)];
    if !diffs.is_empty() {
        let ordinals: Vec<i32> = (0..diffs.len() as i32).collect();
        let keys: Vec<Value> = diffs.iter().map(|d| Value::Object(d.key.clone())).collect();
        let kinds: Vec<&str> = diffs.iter().map(|d| kind_name(d.kind)).collect();
        let cols: Vec<Value> = diffs
            .iter()
            .map(|d| Value::from(d.columns.clone()))
            .collect();
        let uniform: Vec<bool> = diffs.iter().map(|d| d.uniform).collect();
        sqlx::query(
            "INSERT INTO row_sample_diffs (round_id, ordinal, service_id, key, kind, columns, uniform) \
             SELECT $1, o, $2, k, t, c, u FROM unnest($3::int4[], $4::jsonb[], $5::text[], \
                    $6::jsonb[], $7::bool[]) AS x(o, k, t, c, u)",
        )
        .bind(id)
        .bind(service_id)
        .bind(ordinals)
        .bind(keys)
        .bind(kinds)
        .bind(cols)
        .bind(uniform)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "DELETE FROM row_samples WHERE service_id = $1 AND id <= \
           (SELECT id FROM row_samples WHERE service_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
    )
    .bind(service_id)
    .bind(KEEP_ROUNDS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

#[derive(Debug, sqlx::FromRow)]
struct RoundRow {
    evaluated_at: DateTime<Utc>,
    rows_sampled: i64,
    missing_in_candidate: i64,
    extra_in_candidate: i64,
    mismatched: i64,
    extra_keys_checked: i64,
    extra_keys_invalid: i64,
    extra_missing_in_candidate: i64,
    extra_extra_in_candidate: i64,
    extra_mismatched: i64,
    in_flight: i64,
    diff_ratio: f64,
    diff_ratio_upper_95: f64,
    columns: sqlx::types::Json<Vec<RowColumn>>,
    duration_ms: i64,
}

impl From<RoundRow> for RowRound {
    fn from(r: RoundRow) -> RowRound {
        RowRound {
            summary: RowsSummary {
                evaluated_at: r.evaluated_at,
                rows_sampled: count(r.rows_sampled),
                differing: KindCounts {
                    missing_in_candidate: count(r.missing_in_candidate),
                    extra_in_candidate: count(r.extra_in_candidate),
                    mismatched: count(r.mismatched),
                },
                extra_differing: KindCounts {
                    missing_in_candidate: count(r.extra_missing_in_candidate),
                    extra_in_candidate: count(r.extra_extra_in_candidate),
                    mismatched: count(r.extra_mismatched),
                },
                extra_keys_checked: count(r.extra_keys_checked),
                in_flight: count(r.in_flight),
                diff_ratio: r.diff_ratio,
                diff_ratio_upper_95: r.diff_ratio_upper_95,
            },
            extra_keys_invalid: count(r.extra_keys_invalid),
            columns: r.columns.0,
            duration_ms: count(r.duration_ms),
        }
    }
}

/// The newest `limit` rounds of a service, newest first.
pub async fn latest_rounds(
    pool: &PgPool,
    service_id: i16,
    limit: i64,
) -> Result<Vec<RowRound>, StoreError> {
    let rows: Vec<RoundRow> = sqlx::query_as(
        "SELECT evaluated_at, rows_sampled, missing_in_candidate, extra_in_candidate, mismatched, \
                extra_keys_checked, extra_keys_invalid, extra_missing_in_candidate, \
                extra_extra_in_candidate, extra_mismatched, in_flight, diff_ratio, \
                diff_ratio_upper_95, columns, duration_ms \
         FROM row_samples WHERE service_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(service_id)
    .bind(limit.max(1))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(RowRound::from).collect())
}

/// The status summary: the latest round, if any.
pub async fn latest_summary(
    pool: &PgPool,
    service_id: i16,
) -> Result<Option<RowsSummary>, StoreError> {
    Ok(latest_rounds(pool, service_id, 1)
        .await?
        .into_iter()
        .next()
        .map(|r| r.summary))
}

/// The differing keys of the latest round (uniform ones first), at most `limit`.
pub async fn latest_diffs(
    pool: &PgPool,
    service_id: i16,
    limit: i64,
) -> Result<Vec<RowDiffItem>, StoreError> {
    let rows: Vec<(Value, String, sqlx::types::Json<Vec<String>>, bool)> = sqlx::query_as(
        "SELECT key, kind, columns, uniform FROM row_sample_diffs \
         WHERE service_id = $1 ORDER BY ordinal LIMIT $2",
    )
    .bind(service_id)
    .bind(limit.max(1))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, kind, columns, uniform)| RowDiffItem {
            key,
            kind,
            columns: columns.0,
            uniform,
        })
        .collect())
}

/// The keys `sql` selects (`$1` the service, `$2` the limit, `$3` the epoch) as texts for the row sampler, which
/// maps them to key columns: a key that is not UTF-8 cannot be written in a table's key columns as
/// text, and is left out (it stays in the stream comparison).
async fn key_texts(
    pool: &PgPool,
    sql: &'static str,
    at: EpochKey,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let keys: Vec<Vec<u8>> = sqlx::query_scalar(sql)
        .bind(at.service_id)
        .bind(limit.max(1))
        .bind(at.epoch)
        .fetch_all(pool)
        .await?;
    Ok(keys
        .into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .collect())
}

/// Key texts the stream comparison finds different (any kind, settled or not), most recently
/// changed first: exactly the keys whose tables are most worth a look.
pub async fn flagged_keys(
    pool: &PgPool,
    at: EpochKey,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    const FLAGGED: &str = "SELECT coalesce(b.key_bytes, c.key_bytes) FROM \
           (SELECT * FROM keys WHERE service_id = $1 AND epoch = $3 AND side = 0) b \
           FULL JOIN (SELECT * FROM keys WHERE service_id = $1 AND epoch = $3 AND side = 1) c \
             ON b.key_hash = c.key_hash \
         WHERE b.key_hash IS NULL OR c.key_hash IS NULL OR b.events <> c.events \
            OR b.fingerprint_sum <> c.fingerprint_sum \
            OR b.final_digest IS DISTINCT FROM c.final_digest \
         ORDER BY greatest(b.last_event_ms, c.last_event_ms) DESC LIMIT $2";
    // The maintained parity reads the differences alone; the join stands in before its first
    // refresh.
    let sql = if crate::store::parity::maintained(pool, at).await? {
        crate::store::parity::FLAGGED
    } else {
        FLAGGED
    };
    key_texts(pool, sql, at, limit).await
}

/// A uniform sample of the key texts the epoch's events touched (either side): `limit`
/// consecutive key hashes from a random point of the hash space, wrapping, as the table sampler's
/// window is (`scope = "changed"`). Served by the primary key's order.
pub async fn changed_keys(
    pool: &PgPool,
    at: EpochKey,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    const CHANGED: &str = "WITH p AS (SELECT gen_random_uuid() AS start), \
         a AS (SELECT DISTINCT ON (key_hash) 0 AS part, key_hash, key_bytes FROM keys, p \
               WHERE service_id = $1 AND epoch = $3 AND key_hash >= p.start \
               ORDER BY key_hash LIMIT $2), \
         b AS (SELECT DISTINCT ON (key_hash) 1 AS part, key_hash, key_bytes FROM keys, p \
               WHERE service_id = $1 AND epoch = $3 AND key_hash < p.start \
               ORDER BY key_hash LIMIT $2) \
         SELECT key_bytes FROM (SELECT * FROM a UNION ALL SELECT * FROM b) x \
         ORDER BY part, key_hash LIMIT $2";
    key_texts(pool, CHANGED, at, limit).await
}

/// The most recently changed key texts (either side), newest first. No index on `last_event_ms`
/// on purpose: it would slow every checkpoint upsert, and this runs once per sampler interval.
pub async fn recent_keys(
    pool: &PgPool,
    at: EpochKey,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    const RECENT: &str = "SELECT key_bytes FROM keys WHERE service_id = $1 AND epoch = $3 \
         GROUP BY key_bytes ORDER BY max(last_event_ms) DESC LIMIT $2";
    key_texts(pool, RECENT, at, limit).await
}
