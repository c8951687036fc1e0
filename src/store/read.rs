//! Read-side SQL: the evaluation loop and the HTTP API ask these questions of the state.
//!
//! Every comparison is set-based (one FULL JOIN of the two sides' rows), so any replica answers the
//! same whatever it consumed itself. Values are always bound, never formatted into the SQL; only
//! constant fragments (the macros below) are spliced with `concat!`, at compile time.

use super::{StoreError, BASELINE, CANDIDATE};
use crate::core::compare::MismatchKind;
use crate::core::event::Content;
use crate::core::explain::diff_events;
use crate::core::operation::Operation;
use crate::serve::status::{KeySummary, SideStatus, WindowStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// A database count as `u64`: counts are never negative, and a corrupt row must not panic the API.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn operation_name(raw: i16) -> &'static str {
    // Out-of-range codes (never written) read as the neutral `change` rather than failing the query.
    Operation::from_u8(u8::try_from(raw).unwrap_or(Operation::Change as u8)).as_str()
}

/// The `kind` of a mismatch as spelled in SQL and JSON.
pub fn parse_kind(raw: &str) -> Option<MismatchKind> {
    [
        MismatchKind::MissingInCandidate,
        MismatchKind::ExtraInCandidate,
        MismatchKind::Mismatched,
    ]
    .into_iter()
    .find(|k| k.as_str() == raw)
}

// ---------------------------------------------------------------------------------------------
// Side counts
// ---------------------------------------------------------------------------------------------

/// One side's tallies (the `tallies` table folded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideCounts {
    /// Every record of the side, whatever became of it: events with their duplicates, rejected,
    /// skipped and unparseable records (as `diff` counts them).
    pub records: u64,
    /// Distinct events.
    pub events: u64,
    /// Records that repeated an event already known (records − events of kind `operation`).
    pub duplicates: u64,
    pub unparseable: u64,
    /// Distinct events per operation.
    pub by_operation: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub skipped: BTreeMap<String, u64>,
    /// Remarks on records that still became events (`not_json`: compared as bytes).
    pub flagged: BTreeMap<String, u64>,
    /// Records on the side's error (dead-letter) topics.
    pub errors: u64,
}

impl SideCounts {
    /// Copy the counts into a live side status (watermark, lag and partitions are left alone).
    pub fn fill(self, side: &mut SideStatus) {
        side.records = self.records;
        side.events = self.events;
        side.duplicates = self.duplicates;
        side.unparseable = self.unparseable;
        side.by_operation = self.by_operation;
        side.rejected = self.rejected;
        side.skipped = self.skipped;
        side.flagged = self.flagged;
        side.errors = self.errors;
    }
}

/// Baseline and candidate counts of a service, indexed by `BASELINE`/`CANDIDATE`.
pub async fn side_counts(pool: &PgPool, service_id: i16) -> Result<[SideCounts; 2], StoreError> {
    // Few rows per service (bounded names), so folding them here is cheaper than pivoting in SQL.
    let rows: Vec<(i16, String, String, i64, i64)> = sqlx::query_as(
        "SELECT side, kind, name, records, events FROM tallies WHERE service_id = $1",
    )
    .bind(service_id)
    .fetch_all(pool)
    .await?;
    let mut out: [SideCounts; 2] = Default::default();
    for (side, kind, name, records, events) in rows {
        let Some(counts) = usize::try_from(side).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        let (records, events) = (count(records), count(events));
        // `flagged` remarks concern records already counted as events (e.g. a non-JSON payload,
        // still compared as bytes): not records of their own.
        if kind != "flagged" && kind != "errors" {
            counts.records += records;
        }
        match kind.as_str() {
            "operation" => {
                counts.events += events;
                counts.duplicates += records.saturating_sub(events);
                *counts.by_operation.entry(name).or_default() += events;
            }
            "rejected" => *counts.rejected.entry(name).or_default() += records,
            "skipped" => *counts.skipped.entry(name).or_default() += records,
            "unparseable" => counts.unparseable += records,
            "flagged" => *counts.flagged.entry(name).or_default() += records,
            "errors" => counts.errors += records,
            _ => {}
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
    pub last_record_at: Option<DateTime<Utc>>,
}

pub async fn partitions(pool: &PgPool, service_id: i16) -> Result<Vec<PartitionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT topic, partition, side, next_offset, end_offset, max_event_ms, last_record_at \
         FROM partitions WHERE service_id = $1 ORDER BY side, topic, partition",
    )
    .bind(service_id)
    .fetch_all(pool)
    .await?)
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The two sides' key rows joined, with `kind` (`matched` or a mismatch kind) and `settled`.
/// Binds: `$1` service id, `$2` settled_until_ms, `$3` cursor (key hashes strictly after it).
/// The cursor is applied to each side before the join so the primary key index serves it.
macro_rules! joined_keys_sql {
    () => {
        "WITH b AS (SELECT * FROM keys WHERE service_id = $1 AND side = 0 \
                    AND ($3::uuid IS NULL OR key_hash > $3::uuid)), \
              c AS (SELECT * FROM keys WHERE service_id = $1 AND side = 1 \
                    AND ($3::uuid IS NULL OR key_hash > $3::uuid)), \
              j AS ( \
           SELECT coalesce(b.key_hash, c.key_hash) AS key_hash, \
                  coalesce(b.key_text, c.key_text) AS key_text, \
                  CASE WHEN b.key_hash IS NULL THEN 'extra_in_candidate' \
                       WHEN c.key_hash IS NULL THEN 'missing_in_candidate' \
                       WHEN b.events = c.events AND b.fingerprint_sum = c.fingerprint_sum \
                            AND b.final_digest IS NOT DISTINCT FROM c.final_digest THEN 'matched' \
                       ELSE 'mismatched' END AS kind, \
                  coalesce(greatest(b.last_event_ms, c.last_event_ms) <= $2::bigint, false) \
                    AS settled, \
                  b.events AS b_events, b.final_operation AS b_operation, \
                  b.last_event_ms AS b_last_event_ms, b.final_content AS b_content, \
                  c.events AS c_events, c.final_operation AS c_operation, \
                  c.last_event_ms AS c_last_event_ms, c.final_content AS c_content \
           FROM b FULL JOIN c ON b.key_hash = c.key_hash) "
    };
}

/// Key-level parity of a service in one query. `settled_until_ms = None`: nothing is settled.
pub async fn key_summary(
    pool: &PgPool,
    service_id: i16,
    settled_until_ms: Option<i64>,
) -> Result<KeySummary, StoreError> {
    let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(concat!(
        joined_keys_sql!(),
        "SELECT count(*), \
                count(*) FILTER (WHERE kind = 'matched'), \
                count(*) FILTER (WHERE kind = 'missing_in_candidate' AND settled), \
                count(*) FILTER (WHERE kind = 'extra_in_candidate' AND settled), \
                count(*) FILTER (WHERE kind = 'mismatched' AND settled), \
                count(*) FILTER (WHERE kind = 'missing_in_candidate' AND NOT settled), \
                count(*) FILTER (WHERE kind = 'extra_in_candidate' AND NOT settled), \
                count(*) FILTER (WHERE kind = 'mismatched' AND NOT settled) \
         FROM j"
    ))
    .bind(service_id)
    .bind(settled_until_ms)
    .bind(None::<Uuid>)
    .fetch_one(pool)
    .await?;
    let mut s = KeySummary {
        total: count(row.0),
        matched: count(row.1),
        ..Default::default()
    };
    s.settled.missing_in_candidate = count(row.2);
    s.settled.extra_in_candidate = count(row.3);
    s.settled.mismatched = count(row.4);
    s.in_flight.missing_in_candidate = count(row.5);
    s.in_flight.extra_in_candidate = count(row.6);
    s.in_flight.mismatched = count(row.7);
    Ok(s)
}

/// Whether a difference may still resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MismatchState {
    Settled,
    InFlight,
}

/// One side of a differing key (absent when the side has no row for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MismatchSide {
    pub events: u64,
    pub final_operation: String,
    pub last_event_ms: i64,
    /// The key's final event is a delete (it has no final content).
    pub deleted: bool,
}

/// One differing field of the two final contents; `None`: absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MismatchField {
    pub pointer: String,
    #[schema(value_type = Option<Object>)]
    pub baseline: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub candidate: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MismatchItem {
    pub key: String,
    #[schema(value_type = String, example = "mismatched")]
    pub kind: MismatchKind,
    pub state: MismatchState,
    pub baseline: Option<MismatchSide>,
    pub candidate: Option<MismatchSide>,
    /// Differing fields of the final contents, when both sides have one.
    pub fields: Vec<MismatchField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MismatchPage {
    pub items: Vec<MismatchItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct MismatchRow {
    key_hash: Uuid,
    key_text: String,
    kind: String,
    settled: bool,
    b_events: Option<i64>,
    b_operation: Option<i16>,
    b_last_event_ms: Option<i64>,
    /// Canonical JSON text (`keys.final_content`).
    b_content: Option<String>,
    c_events: Option<i64>,
    c_operation: Option<i16>,
    c_last_event_ms: Option<i64>,
    c_content: Option<String>,
}

fn mismatch_side(events: Option<i64>, op: Option<i16>, last: Option<i64>) -> Option<MismatchSide> {
    let (events, op, last) = (events?, op?, last?);
    let final_operation = operation_name(op);
    Some(MismatchSide {
        events: count(events),
        deleted: final_operation == Operation::Delete.as_str(),
        final_operation: final_operation.to_owned(),
        last_event_ms: last,
    })
}

impl MismatchRow {
    fn into_item(self) -> Option<MismatchItem> {
        let kind = parse_kind(&self.kind)?;
        let parse = |text: Option<String>| -> Option<Value> { serde_json::from_str(&text?).ok() };
        let fields = match (parse(self.b_content), parse(self.c_content)) {
            (Some(b), Some(c)) => {
                diff_events(&(Content::Json(b), vec![]), &(Content::Json(c), vec![]))
                    .into_iter()
                    .map(|d| MismatchField {
                        pointer: d.pointer,
                        baseline: d.baseline,
                        candidate: d.candidate,
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Some(MismatchItem {
            key: self.key_text,
            kind,
            state: if self.settled {
                MismatchState::Settled
            } else {
                MismatchState::InFlight
            },
            baseline: mismatch_side(self.b_events, self.b_operation, self.b_last_event_ms),
            candidate: mismatch_side(self.c_events, self.c_operation, self.c_last_event_ms),
            fields,
        })
    }
}

/// Differing keys (settled and in flight), ordered by key hash and keyset-paged: `cursor` is the
/// previous page's `next_cursor`. `limit` must be positive.
pub async fn mismatches(
    pool: &PgPool,
    service_id: i16,
    kind: Option<MismatchKind>,
    settled_until_ms: Option<i64>,
    limit: i64,
    cursor: Option<Uuid>,
) -> Result<MismatchPage, StoreError> {
    let limit = limit.max(1);
    // One extra row tells whether there is a next page without a count.
    let mut rows: Vec<MismatchRow> = sqlx::query_as(concat!(
        joined_keys_sql!(),
        "SELECT * FROM j WHERE kind <> 'matched' AND ($4::text IS NULL OR kind = $4::text) \
         ORDER BY key_hash LIMIT $5"
    ))
    .bind(service_id)
    .bind(settled_until_ms)
    .bind(cursor)
    .bind(kind.map(MismatchKind::as_str))
    .bind(limit.saturating_add(1))
    .fetch_all(pool)
    .await?;
    let more = rows.len() as u64 > count(limit);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last().map(|r| r.key_hash.to_string())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .filter_map(MismatchRow::into_item)
        .collect();
    Ok(MismatchPage { items, next_cursor })
}

// ---------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------

/// Per window: `matched` (same events per operation and same total fingerprint sum on both sides)
/// and `settled`. Binds: `$1` service id, `$2` window_ms, `$3` settled_until_ms.
macro_rules! window_verdicts_sql {
    () => {
        "WITH per_op AS ( \
           SELECT window_start_ms, operation, \
                  coalesce(sum(events) FILTER (WHERE side = 0), 0) AS b_events, \
                  coalesce(sum(events) FILTER (WHERE side = 1), 0) AS c_events, \
                  coalesce(sum(fingerprint_sum) FILTER (WHERE side = 0), 0) AS b_fp, \
                  coalesce(sum(fingerprint_sum) FILTER (WHERE side = 1), 0) AS c_fp \
           FROM windows WHERE service_id = $1 GROUP BY window_start_ms, operation), \
         w AS ( \
           SELECT window_start_ms, \
                  bool_and(b_events = c_events) AND sum(b_fp) = sum(c_fp) AS matched, \
                  sum(b_fp)::text AS b_fingerprint, sum(c_fp)::text AS c_fingerprint, \
                  coalesce(window_start_ms + $2::bigint <= $3::bigint, false) AS settled \
           FROM per_op GROUP BY window_start_ms) "
    };
}

#[derive(Debug, sqlx::FromRow)]
struct WindowRow {
    window_start_ms: i64,
    matched: bool,
    settled: bool,
    b_fingerprint: String,
    c_fingerprint: String,
    side: i16,
    operation: i16,
    events: i64,
}

/// The newest `limit` windows (settled or not), newest first.
pub async fn windows(
    pool: &PgPool,
    service_id: i16,
    window_ms: i64,
    settled_until_ms: Option<i64>,
    limit: i64,
) -> Result<Vec<WindowStatus>, StoreError> {
    window_page(pool, service_id, window_ms, settled_until_ms, false, limit).await
}

async fn window_page(
    pool: &PgPool,
    service_id: i16,
    window_ms: i64,
    settled_until_ms: Option<i64>,
    settled_only: bool,
    limit: i64,
) -> Result<Vec<WindowStatus>, StoreError> {
    let rows: Vec<WindowRow> = sqlx::query_as(concat!(
        window_verdicts_sql!(),
        ", page AS (SELECT * FROM w WHERE settled OR NOT $4::bool \
                    ORDER BY window_start_ms DESC LIMIT $5) \
         SELECT p.window_start_ms, p.matched, p.settled, p.b_fingerprint, p.c_fingerprint, \
                x.side, x.operation, x.events \
         FROM page p JOIN windows x \
           ON x.service_id = $1 AND x.window_start_ms = p.window_start_ms \
         ORDER BY p.window_start_ms DESC, x.side, x.operation"
    ))
    .bind(service_id)
    .bind(window_ms)
    .bind(settled_until_ms)
    .bind(settled_only)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;

    let mut out: Vec<WindowStatus> = Vec::new();
    for row in rows {
        if out.last().is_none_or(|w| w.start_ms != row.window_start_ms) {
            let mut window = WindowStatus {
                start_ms: row.window_start_ms,
                end_ms: row.window_start_ms.saturating_add(window_ms),
                settled: row.settled,
                matched: row.matched,
                ..Default::default()
            };
            window.baseline.fingerprint = row.b_fingerprint;
            window.candidate.fingerprint = row.c_fingerprint;
            out.push(window);
        }
        let Some(window) = out.last_mut() else {
            continue;
        };
        let side = match row.side {
            BASELINE => &mut window.baseline,
            CANDIDATE => &mut window.candidate,
            _ => continue,
        };
        let events = count(row.events);
        side.events += events;
        *side
            .by_operation
            .entry(operation_name(row.operation).to_owned())
            .or_default() += events;
    }
    Ok(out)
}

/// Settled-window totals of a service and its newest settled window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowCounts {
    pub settled_matched: u64,
    pub settled_unmatched: u64,
    pub last_settled: Option<WindowStatus>,
}

pub async fn window_counts(
    pool: &PgPool,
    service_id: i16,
    window_ms: i64,
    settled_until_ms: Option<i64>,
) -> Result<WindowCounts, StoreError> {
    let (matched, unmatched): (i64, i64) = sqlx::query_as(concat!(
        window_verdicts_sql!(),
        "SELECT count(*) FILTER (WHERE settled AND matched), \
                count(*) FILTER (WHERE settled AND NOT matched) FROM w"
    ))
    .bind(service_id)
    .bind(window_ms)
    .bind(settled_until_ms)
    .fetch_one(pool)
    .await?;
    let last_settled = window_page(pool, service_id, window_ms, settled_until_ms, true, 1)
        .await?
        .into_iter()
        .next();
    Ok(WindowCounts {
        settled_matched: count(matched),
        settled_unmatched: count(unmatched),
        last_settled,
    })
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
