//! The audit side of gates: waivers, served-verdict history and wave sign-offs (SQL only).
//!
//! `wave_signoffs` is append-only in the database (a trigger refuses UPDATE, DELETE and TRUNCATE),
//! so nothing here — or anywhere else — can edit the trail; this file only ever inserts into it.

use super::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;

/// A stored waiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct WaiverRow {
    pub id: i64,
    pub service: String,
    pub criterion: String,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    /// The approver identity of the token that created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A waiver to store (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewWaiver<'a> {
    pub service: &'a str,
    pub criterion: &'a str,
    pub reason: &'a str,
    pub expires_at: DateTime<Utc>,
    pub created_by: &'a str,
}

const WAIVER_COLUMNS: &str = "id, service, criterion, reason, expires_at, created_by, created_at";

pub async fn insert_waiver(pool: &PgPool, w: &NewWaiver<'_>) -> Result<WaiverRow, StoreError> {
    let sql = format!(
        "INSERT INTO waivers (service, criterion, reason, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {WAIVER_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(w.service)
        .bind(w.criterion)
        .bind(w.reason)
        .bind(w.expires_at)
        .bind(w.created_by)
        .fetch_one(pool)
        .await?)
}

/// Waivers of `service` that have not expired at `now`, soonest to expire first.
pub async fn active_waivers(
    pool: &PgPool,
    service: &str,
    now: DateTime<Utc>,
) -> Result<Vec<WaiverRow>, StoreError> {
    let sql = format!(
        "SELECT {WAIVER_COLUMNS} FROM waivers WHERE service = $1 AND expires_at > $2 \
         ORDER BY expires_at, id"
    );
    Ok(sqlx::query_as(&sql)
        .bind(service)
        .bind(now)
        .fetch_all(pool)
        .await?)
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

/// A sign-off or a revocation, as stored (immutable).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, sqlx::FromRow)]
pub struct SignoffRow {
    pub id: i64,
    pub wave_id: i32,
    /// `signoff` or `revocation`.
    pub action: String,
    /// The identity bound to the approver token that made it.
    pub identity: String,
    /// The sign-off's comment, or the revocation's reason.
    pub comment: String,
    /// Every service of the wave at that moment: its served `GateStatus` and config digest.
    #[schema(value_type = Object)]
    pub snapshot: Value,
    pub created_at: DateTime<Utc>,
}

pub const ACTION_SIGNOFF: &str = "signoff";
pub const ACTION_REVOCATION: &str = "revocation";

/// A record to append.
#[derive(Debug, Clone)]
pub struct NewSignoff<'a> {
    pub wave_id: i32,
    pub action: &'static str,
    pub identity: &'a str,
    pub comment: &'a str,
    pub snapshot: &'a Value,
}

const SIGNOFF_COLUMNS: &str = "id, wave_id, action, identity, comment, snapshot, created_at";

/// Every sign-off and revocation, by wave then in order of appending.
pub async fn signoffs(pool: &PgPool) -> Result<Vec<SignoffRow>, StoreError> {
    let sql = format!("SELECT {SIGNOFF_COLUMNS} FROM wave_signoffs ORDER BY wave_id, id");
    Ok(sqlx::query_as(&sql).fetch_all(pool).await?)
}

/// Arbitrary constant key of the advisory lock that serializes appends (all replicas share it).
const SIGNOFF_LOCK: i64 = 0x7061_7269_7479_6761;

/// Append a record if `check` allows it, given every record so far. Check and insert run in one
/// transaction under an advisory lock, so two concurrent appends (on any replica) cannot both pass
/// a check that only one of them should (e.g. wave 2 signed while wave 1 is being revoked).
pub async fn append_signoff<E>(
    pool: &PgPool,
    new: &NewSignoff<'_>,
    check: impl FnOnce(&[SignoffRow]) -> Result<(), E>,
) -> Result<Result<SignoffRow, E>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SIGNOFF_LOCK)
        .execute(&mut *tx)
        .await?;
    let sql = format!("SELECT {SIGNOFF_COLUMNS} FROM wave_signoffs ORDER BY wave_id, id");
    let existing: Vec<SignoffRow> = sqlx::query_as(&sql).fetch_all(&mut *tx).await?;
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
        .bind(new.action)
        .bind(new.identity)
        .bind(new.comment)
        .bind(new.snapshot)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok(row))
}
