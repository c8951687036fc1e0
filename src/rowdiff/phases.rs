//! The per-side database work of the exhaustive diff: checksums per bucket (phase 1), members
//! of differing buckets (phase 2), rows by key (phase 3, also the sampler's re-check).

use super::buckets::{range_key, Bucketing};
use super::compare::{Key, Row};
use super::error::RowDiffError;
use super::schema::Plan;
use super::sql;
use crate::model::Side;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};
use std::collections::HashMap;

/// Keys per lookup query in phase 3 (keeps statements and arrays modest).
const LOOKUP_CHUNK: usize = 10_000;

/// Per-side results of phase 1 and 2.
#[derive(Debug, Default)]
pub(crate) struct Checksums {
    pub(crate) rows: u64,
    pub(crate) buckets: HashMap<i64, (i64, String)>,
}

pub(crate) async fn begin_snapshot(
    conn: &mut PgConnection,
    side: Side,
) -> Result<(), RowDiffError> {
    // One snapshot for all phases: rows committed between phases must not look like drift.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(RowDiffError::query(side.as_str(), "begin"))?;
    Ok(())
}

pub(crate) async fn key_range(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    col: &str,
) -> Result<Option<(i64, i64)>, RowDiffError> {
    let (min, max): (Option<i64>, Option<i64>) =
        sqlx::query_as(&sql::key_range(plan.table(side), col))
            .fetch_one(&mut *conn)
            .await
            .map_err(RowDiffError::query(side.as_str(), "key range"))?;
    Ok(min.zip(max))
}

pub(crate) async fn checksums(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    bucketing: Bucketing,
) -> Result<Checksums, RowDiffError> {
    let bucket = match (bucketing, range_key(plan)) {
        (Bucketing::Range { .. }, Some(col)) => sql::range_bucket(&col),
        _ => sql::hash_bucket(&plan.key_hash(side)),
    };
    let q = sql::bucket_checksums(plan.table(side), &bucket, &plan.row_hash(side));
    let (p1, p2) = bucketing.params();
    let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(&q)
        .bind(p1)
        .bind(p2)
        .fetch_all(&mut *conn)
        .await
        .map_err(RowDiffError::query(side.as_str(), "bucket checksums"))?;
    let mut out = Checksums::default();
    for (bucket, count, sum) in rows {
        out.rows += count.max(0) as u64;
        out.buckets.insert(bucket, (count, sum.unwrap_or_default()));
    }
    Ok(out)
}

pub(crate) fn read_texts(row: &PgRow, n: usize) -> Result<Vec<Option<String>>, sqlx::Error> {
    (0..n)
        .map(|i| row.try_get::<Option<String>, _>(i))
        .collect()
}

/// Phase 2: key → row hash for the rows of the given buckets, plus the number of duplicate keys.
pub(crate) async fn members(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    bucketing: Bucketing,
    buckets: &[i64],
) -> Result<(HashMap<Key, i64>, u64), RowDiffError> {
    let (texts, row_hash) = (plan.key_texts(side), plan.row_hash(side));
    let fetched = match (bucketing, range_key(plan)) {
        (Bucketing::Range { min, width }, Some(col)) => {
            let q = sql::range_members(plan.table(side), &texts, &col, &row_hash);
            // Bucket b holds [min + b·width, min + (b+1)·width); saturate rather than overflow.
            let lo: Vec<i64> = buckets
                .iter()
                .map(|b| min.saturating_add(b.saturating_mul(width)))
                .collect();
            let hi: Vec<i64> = lo.iter().map(|l| l.saturating_add(width)).collect();
            sqlx::query(&q)
                .bind(lo)
                .bind(hi)
                .fetch_all(&mut *conn)
                .await
        }
        _ => {
            // Same parameter as the checksum query's `$1` (see `checksums`).
            let (mask, _) = bucketing.params();
            let q = sql::bucket_members(plan.table(side), &texts, &plan.key_hash(side), &row_hash);
            sqlx::query(&q)
                .bind(mask)
                .bind(buckets)
                .fetch_all(&mut *conn)
                .await
        }
    };
    let rows = fetched.map_err(RowDiffError::query(side.as_str(), "bucket members"))?;
    let mut out = HashMap::with_capacity(rows.len());
    let mut duplicates = 0;
    for row in rows {
        let key = read_texts(&row, plan.n_keys)
            .map_err(RowDiffError::query(side.as_str(), "bucket members"))?;
        let hash: i64 = row
            .try_get(plan.n_keys)
            .map_err(RowDiffError::query(side.as_str(), "bucket members"))?;
        if out.insert(key, hash).is_some() {
            duplicates += 1;
        }
    }
    Ok((out, duplicates))
}

/// Phase 3 (also used by the sampler's re-check): full normalized rows for `keys`.
pub(crate) async fn rows_by_keys(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    keys: &[Key],
) -> Result<HashMap<Key, Row>, RowDiffError> {
    let q = sql::rows_by_keys(plan.table(side), &plan.texts(side), &plan.keys_in(side, 1));
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let mut query = sqlx::query(&q);
        for i in 0..plan.n_keys {
            let column: Vec<Option<String>> =
                chunk.iter().map(|k| k.get(i).cloned().flatten()).collect();
            query = query.bind(column);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(RowDiffError::query(side.as_str(), "rows by key"))?;
        for row in rows {
            let texts = read_texts(&row, plan.columns.len())
                .map_err(RowDiffError::query(side.as_str(), "rows by key"))?;
            out.insert(texts[..plan.n_keys].to_vec(), texts);
        }
    }
    Ok(out)
}
