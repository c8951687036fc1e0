//! Read-side SQL: the evaluation loop and the HTTP API ask these questions of the state.
//!
//! Every comparison is set-based (one FULL JOIN of the two sides' rows), so any replica answers the
//! same whatever it consumed itself. Values are always bound, never formatted into the SQL; only
//! constant fragments (the macros below) are spliced with `concat!`, at compile time.

use super::StoreError;
use crate::core::operation::Operation;
use crate::model::status::SideCounts;
use crate::model::TallyKind;
use crate::store::EpochKey;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

mod keys;
mod windows;
pub use keys::*;
pub use windows::*;

/// A database count as `u64`: counts are never negative, and a corrupt row must not panic the API.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The name of a stored operation code; a code no version writes is an error, not a guess.
pub(crate) fn operation_name(raw: i16) -> Result<&'static str, StoreError> {
    Operation::from_code(raw)
        .map(Operation::as_str)
        .ok_or_else(|| StoreError::Invalid(format!("operation code {raw}")))
}

// ---------------------------------------------------------------------------------------------
// Side counts
// ---------------------------------------------------------------------------------------------

/// Baseline and candidate counts of a service in one epoch, indexed by `BASELINE`/`CANDIDATE`.
pub async fn side_counts(pool: &PgPool, at: EpochKey) -> Result<[SideCounts; 2], StoreError> {
    // Few rows per service (bounded names), so folding them here is cheaper than pivoting in SQL.
    let rows: Vec<(i16, String, String, i64, i64)> = sqlx::query_as(
        "SELECT side, kind, name, records, events FROM tallies WHERE service_id = $1 AND epoch = $2",
    )
    .bind(at.service_id)
    .bind(at.epoch)
    .fetch_all(pool)
    .await?;
    let mut out: [SideCounts; 2] = Default::default();
    for (side, kind, name, records, events) in rows {
        let Some(counts) = usize::try_from(side).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        let (records, events) = (count(records), count(events));
        let kind = TallyKind::parse(&kind)
            .ok_or_else(|| StoreError::Invalid(format!("tally kind `{kind}`")))?;
        // `flagged` remarks concern records already counted as events (e.g. a non-JSON payload,
        // still compared as bytes), `log_resets` partitions: not records of their own.
        if kind.counts_records() {
            counts.records += records;
        }
        match kind {
            TallyKind::Operation => {
                counts.events += events;
                counts.duplicates += records.saturating_sub(events);
                *counts.by_operation.entry(name).or_default() += events;
            }
            TallyKind::Rejected => *counts.rejected.entry(name).or_default() += records,
            TallyKind::Skipped => *counts.skipped.entry(name).or_default() += records,
            TallyKind::Unparseable => {
                counts.unparseable += records;
                *counts.unparseable_by_reason.entry(name).or_default() += records;
            }
            TallyKind::Flagged => *counts.flagged.entry(name).or_default() += records,
            TallyKind::Errors => counts.errors += records,
            TallyKind::LogResets => counts.log_resets += records,
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Partitions
// ---------------------------------------------------------------------------------------------

/// One consumed partition's progress.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PartitionRow {
    pub topic: String,
    pub partition: i32,
    pub side: i16,
    pub next_offset: i64,
    pub end_offset: Option<i64>,
    pub max_event_ms: Option<i64>,
    /// The earliest event time the partition holds (where observation can start).
    pub min_event_ms: Option<i64>,
    pub last_record_at: Option<DateTime<Utc>>,
}

pub async fn partitions(pool: &PgPool, service_id: i16) -> Result<Vec<PartitionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT topic, partition, side, next_offset, end_offset, max_event_ms, min_event_ms, \
         last_record_at FROM partitions WHERE service_id = $1 ORDER BY side, topic, partition",
    )
    .bind(service_id)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
