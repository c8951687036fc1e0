//! Tumbling event-time windows read from `windows`: per window, whether both sides' events per
//! operation and fingerprint sums agree, and whether it is settled.

use super::{count, operation_name};
use crate::model::status::WindowStatus;
use crate::store::EpochKey;
use crate::store::{StoreError, BASELINE, CANDIDATE};
use sqlx::PgPool;

/// Per window: `matched` (same events per operation and same total fingerprint sum on both sides)
/// and `settled`. Binds: `$1` service id, `$2` window_ms, `$3` settled_until_ms, `$4` epoch.
macro_rules! window_verdicts_sql {
    () => {
        "WITH per_op AS ( \
           SELECT window_start_ms, operation, \
                  coalesce(sum(events) FILTER (WHERE side = 0), 0) AS b_events, \
                  coalesce(sum(events) FILTER (WHERE side = 1), 0) AS c_events, \
                  coalesce(sum(fingerprint_sum) FILTER (WHERE side = 0), 0) AS b_fp, \
                  coalesce(sum(fingerprint_sum) FILTER (WHERE side = 1), 0) AS c_fp \
           FROM windows WHERE service_id = $1 AND epoch = $4 GROUP BY window_start_ms, operation), \
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
    at: EpochKey,
    window_ms: i64,
    settled_until_ms: Option<i64>,
    limit: i64,
) -> Result<Vec<WindowStatus>, StoreError> {
    window_page(pool, at, window_ms, settled_until_ms, false, limit).await
}

async fn window_page(
    pool: &PgPool,
    at: EpochKey,
    window_ms: i64,
    settled_until_ms: Option<i64>,
    settled_only: bool,
    limit: i64,
) -> Result<Vec<WindowStatus>, StoreError> {
    let rows: Vec<WindowRow> = sqlx::query_as(concat!(
        window_verdicts_sql!(),
        ", page AS (SELECT * FROM w WHERE settled OR NOT $5::bool \
                    ORDER BY window_start_ms DESC LIMIT $6) \
         SELECT p.window_start_ms, p.matched, p.settled, p.b_fingerprint, p.c_fingerprint, \
                x.side, x.operation, x.events \
         FROM page p JOIN windows x \
           ON x.service_id = $1 AND x.epoch = $4 AND x.window_start_ms = p.window_start_ms \
         ORDER BY p.window_start_ms DESC, x.side, x.operation"
    ))
    .bind(at.service_id)
    .bind(window_ms)
    .bind(settled_until_ms)
    .bind(at.epoch)
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
            .entry(operation_name(row.operation)?.to_owned())
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
    at: EpochKey,
    window_ms: i64,
    settled_until_ms: Option<i64>,
) -> Result<WindowCounts, StoreError> {
    let (matched, unmatched): (i64, i64) = sqlx::query_as(concat!(
        window_verdicts_sql!(),
        "SELECT count(*) FILTER (WHERE settled AND matched), \
                count(*) FILTER (WHERE settled AND NOT matched) FROM w"
    ))
    .bind(at.service_id)
    .bind(window_ms)
    .bind(settled_until_ms)
    .bind(at.epoch)
    .fetch_one(pool)
    .await?;
    let last_settled = window_page(pool, at, window_ms, settled_until_ms, true, 1)
        .await?
        .into_iter()
        .next();
    Ok(WindowCounts {
        settled_matched: count(matched),
        settled_unmatched: count(unmatched),
        last_settled,
    })
}
