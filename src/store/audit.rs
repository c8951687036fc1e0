//! The audit side of gates: waivers, served-verdict history and wave sign-offs (SQL only).
//!
//! `wave_signoffs` is append-only in the database (a trigger refuses UPDATE, DELETE and TRUNCATE),
//! so nothing here — or anywhere else — can edit the trail; this file only ever inserts into it.

use super::StoreError;
use crate::model::{CriterionName, Waiver};
use crate::signoff::{SignoffAction, SignoffRecord};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;

/// `waivers` as stored; its criterion is checked when read ([`Waiver`] is typed).
#[derive(Debug, sqlx::FromRow)]
struct WaiverRow {
    id: i64,
    service: String,
    criterion: String,
    reason: String,
    expires_at: DateTime<Utc>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<WaiverRow> for Waiver {
    type Error = StoreError;

    fn try_from(r: WaiverRow) -> Result<Self, StoreError> {
        let criterion = CriterionName::parse(&r.criterion).ok_or_else(|| {
            StoreError::Invalid(format!(
                "waiver {}: unknown criterion `{}`",
                r.id, r.criterion
            ))
        })?;
        Ok(Waiver {
            id: r.id,
            service: r.service,
            criterion,
            reason: r.reason,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }
}

/// A waiver to store (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewWaiver<'a> {
    pub service: &'a str,
    pub criterion: CriterionName,
    pub reason: &'a str,
    pub expires_at: DateTime<Utc>,
    pub created_by: &'a str,
}

const WAIVER_COLUMNS: &str = "id, service, criterion, reason, expires_at, created_by, created_at";

pub async fn insert_waiver(pool: &PgPool, w: &NewWaiver<'_>) -> Result<Waiver, StoreError> {
    let sql = format!(
        "INSERT INTO waivers (service, criterion, reason, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {WAIVER_COLUMNS}"
    );
    let row: WaiverRow = sqlx::query_as(&sql)
        .bind(w.service)
        .bind(w.criterion.as_str())
        .bind(w.reason)
        .bind(w.expires_at)
        .bind(w.created_by)
        .fetch_one(pool)
        .await?;
    row.try_into()
}

/// Waivers of `service` that have not expired at `now`, soonest to expire first: what the API
/// lists and what the evaluator applies (one clock: the caller's).
pub async fn active_waivers(
    pool: &PgPool,
    service: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Waiver>, StoreError> {
    let sql = format!(
        "SELECT {WAIVER_COLUMNS} FROM waivers WHERE service = $1 AND expires_at > $2 \
         ORDER BY expires_at, id"
    );
    let rows: Vec<WaiverRow> = sqlx::query_as(&sql)
        .bind(service)
        .bind(now)
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Waiver::try_from).collect()
}

/// One row of `gate_history`: a served verdict with its full report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct GateHistoryRow {
    pub id: i64,
    pub service: String,
    pub evaluated_at: DateTime<Utc>,
    pub verdict: String,
    pub raw_verdict: String,
    /// The `GateStatus` served at `evaluated_at`.
    #[schema(value_type = Object)]
    pub report: Value,
    pub config_digest: String,
    pub canonical_version: String,
}

/// The newest `limit` history rows of `service`, newest first.
pub async fn gate_history(
    pool: &PgPool,
    service: &str,
    limit: i64,
) -> Result<Vec<GateHistoryRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, service, evaluated_at, verdict, raw_verdict, report, config_digest, canonical_version \
         FROM gate_history WHERE service = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(service)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// `wave_signoffs` as stored; its action is checked when read ([`SignoffRecord`] is typed).
#[derive(Debug, sqlx::FromRow)]
struct SignoffRow {
    id: i64,
    wave_id: i32,
    action: String,
    identity: String,
    comment: String,
    snapshot: Value,
    created_at: DateTime<Utc>,
}

impl TryFrom<SignoffRow> for SignoffRecord {
    type Error = StoreError;

    fn try_from(r: SignoffRow) -> Result<Self, StoreError> {
        let action = SignoffAction::parse(&r.action).ok_or_else(|| {
            StoreError::Invalid(format!("sign-off {}: unknown action `{}`", r.id, r.action))
        })?;
        Ok(SignoffRecord {
            id: r.id,
            wave_id: r.wave_id,
            action,
            identity: r.identity,
            comment: r.comment,
            snapshot: r.snapshot,
            created_at: r.created_at,
        })
    }
}

fn records(rows: Vec<SignoffRow>) -> Result<Vec<SignoffRecord>, StoreError> {
    rows.into_iter().map(SignoffRecord::try_from).collect()
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct NewSignoff<'a> {
    pub wave_id: i32,
    pub action: SignoffAction,
    pub identity: &'a str,
    pub comment: &'a str,
    pub snapshot: &'a Value,
}

const SIGNOFF_COLUMNS: &str = "id, wave_id, action, identity, comment, snapshot, created_at";

/// Every sign-off and revocation, by wave then in order of appending.
pub async fn signoffs(pool: &PgPool) -> Result<Vec<SignoffRecord>, StoreError> {
    let sql = format!("SELECT {SIGNOFF_COLUMNS} FROM wave_signoffs ORDER BY wave_id, id");
    records(sqlx::query_as(&sql).fetch_all(pool).await?)
}

/// Arbitrary constant key of the advisory lock that serializes appends (all replicas share it).
const SIGNOFF_LOCK: i64 = 0x7061_7269_7479_6761;

/// Append a record if `check` allows it, given every record so far. Check and insert run in one
/// transaction under an advisory lock, so two concurrent appends (on any replica) cannot both pass
/// a check that only one of them should (e.g. wave 2 signed while wave 1 is being revoked).
pub async fn append_signoff<E>(
    pool: &PgPool,
    new: &NewSignoff<'_>,
    check: impl FnOnce(&[SignoffRecord]) -> Result<(), E>,
) -> Result<Result<SignoffRecord, E>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SIGNOFF_LOCK)
        .execute(&mut *tx)
        .await?;
    let sql = format!("SELECT {SIGNOFF_COLUMNS} FROM wave_signoffs ORDER BY wave_id, id");
    let existing = records(sqlx::query_as(&sql).fetch_all(&mut *tx).await?)?;
    if let Err(e) = check(&existing) {
        tx.rollback().await?;
        return Ok(Err(e));
    }
    let sql = format!(
        "INSERT INTO wave_signoffs (wave_id, action, identity, comment, snapshot) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {SIGNOFF_COLUMNS}"
    );
    let row: SignoffRow = sqlx::query_as(&sql)
        .bind(new.wave_id)
        .bind(new.action.as_str())
        .bind(new.identity)
        .bind(new.comment)
        .bind(new.snapshot)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok(row.try_into()?))
}
