//! paritygate's own Postgres state. `store` owns every SQL statement about it: `write` (the
//! checkpoint transaction), `read` (evaluation and API queries), `rows` (sampled row diffs) and
//! `audit` (waivers, gate history, wave sign-offs). Schema: `migrations/`.

/// How a key's two sides compare, over rows `b` (baseline) and `c` (candidate) of `keys`, either
/// absent: `matched` or a mismatch kind (`MismatchKind::as_str`). The one definition, for the
/// full join (`read::keys`) and the incremental refresh (`parity`) alike.
macro_rules! key_kind_sql {
    () => {
        "CASE WHEN b.key_hash IS NULL THEN 'extra_in_candidate' \
              WHEN c.key_hash IS NULL THEN 'missing_in_candidate' \
              WHEN b.events = c.events AND b.fingerprint_sum = c.fingerprint_sum \
                   AND b.final_digest IS NOT DISTINCT FROM c.final_digest THEN 'matched' \
              ELSE 'mismatched' END"
    };
}

/// The two sides' key rows joined, with `kind` (`matched` or a mismatch kind) and `settled`.
/// Binds: `$1` service id, `$2` epoch, `$3` settled_until_ms, `$4` cursor (key hashes strictly
/// after it).
/// The cursor is applied to each side before the join so the primary key index serves it.
macro_rules! joined_keys_sql {
    () => {
        concat!(
            "WITH b AS (SELECT * FROM keys WHERE service_id = $1 AND epoch = $2 AND side = 0 \
                    AND ($4::uuid IS NULL OR key_hash > $4::uuid)), \
              c AS (SELECT * FROM keys WHERE service_id = $1 AND epoch = $2 AND side = 1 \
                    AND ($4::uuid IS NULL OR key_hash > $4::uuid)), \
              j AS ( \
           SELECT coalesce(b.key_hash, c.key_hash) AS key_hash, \
                  coalesce(b.key_bytes, c.key_bytes) AS key_bytes, \
                  ",
            key_kind_sql!(),
            " AS kind, \
                  coalesce(greatest(b.last_event_ms, c.last_event_ms) <= $3::bigint, false) \
                    AS settled, \
                  b.events AS b_events, b.final_operation AS b_operation, \
                  b.last_event_ms AS b_last_event_ms, b.final_content AS b_content, \
                  c.events AS c_events, c.final_operation AS c_operation, \
                  c.last_event_ms AS c_last_event_ms, c.final_content AS c_content \
           FROM b FULL JOIN c ON b.key_hash = c.key_hash) "
        )
    };
}

pub mod audit;
pub mod batch;
pub mod epochs;
pub mod evidence;
pub mod lease;
pub mod parity;
pub mod preload;
pub mod read;
pub mod retention;
pub mod rows;
pub mod served;
#[cfg(test)]
pub(crate) mod test_db;
pub mod write;

use crate::model::{EpochScope, Side, TopicPartition};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The schema, embedded at compile time from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why the store failed. Messages never contain the connection URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("partition {topic}/{partition} was advanced by another replica (expected offset {expected})")]
    OwnershipLost {
        topic: String,
        partition: i32,
        expected: i64,
    },
    /// A stored value this version does not understand (written by hand, or by another version).
    #[error("invalid stored value: {0}")]
    Invalid(String),
    /// A configured service without a database id (never registered): nothing is written for it.
    #[error("service `{0}` has no id in the store (not registered)")]
    UnknownService(String),
    /// A write guarded by a lease this session does not hold (`lease::LeaseSession::guarded`).
    #[error("the lease for service id {0} is not held by this session")]
    LeaseLost(i16),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

impl StoreError {
    /// A value the database refuses (SQLSTATE classes 22 data exception, 23 integrity constraint
    /// violation, 54 program limit exceeded), or one the driver cannot encode: the same statement
    /// would fail the same way again, so retrying it cannot help. Everything else (connections,
    /// timeouts, serialization conflicts, permissions) may go away and is retried.
    pub fn is_data_error(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54"))),
            StoreError::Database(sqlx::Error::Encode(_)) => true,
            _ => false,
        }
    }
}

/// Side encoding in the database.
pub const BASELINE: i16 = 0;
pub const CANDIDATE: i16 = 1;

/// `side`'s code in the database.
pub(crate) fn side_code(side: Side) -> i16 {
    match side {
        Side::Baseline => BASELINE,
        Side::Candidate => CANDIDATE,
    }
}

/// The side a stored code names; `None` for a code no version writes.
pub(crate) fn side_of(code: i16) -> Option<Side> {
    match code {
        BASELINE => Some(Side::Baseline),
        CANDIDATE => Some(Side::Candidate),
        _ => None,
    }
}

/// What a partition's dedupe memory is loaded from: its newest counted event time and the packed
/// identity rows within the horizon (each with its newest event time, when recorded).
#[derive(Debug, Clone, Default)]
pub struct PartitionMemory {
    pub newest_ms: Option<i64>,
    pub rows: Vec<(Vec<u8>, Option<i64>)>,
}

/// One service's epoch as the state is keyed (`keys`, `windows`, `tallies`): what every read of
/// counts, keys and windows is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochKey {
    pub service_id: i16,
    pub epoch: i64,
}

impl EpochKey {
    /// The first epoch of a service (from its comparison start).
    pub fn first(service_id: i16) -> Self {
        Self {
            service_id,
            epoch: crate::model::FIRST_EPOCH,
        }
    }
}

/// A pool plus the ids of the configured services.
#[derive(Debug, Clone)]
pub struct Store {
    pub pool: PgPool,
    /// Shared by every clone: filled once the database is reachable (the HTTP side may be built first).
    service_ids: Arc<RwLock<HashMap<String, i16>>>,
    /// The epoch each service was last seen in (by id; absent: its first): what lanes fill their
    /// next batch under. Only a hint: every checkpoint reads the epoch inside its transaction.
    scopes: Arc<RwLock<HashMap<i16, EpochScope>>>,
}

/// A partition's stored `next_offset`, and the fingerprint of the record before it when known
/// (`serve::ingest::verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredOffset {
    pub next: i64,
    pub last_record: Option<u128>,
}

impl Store {
    /// A lazily connecting pool: the service starts (and reports not-ready) while the database is down.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.application_name("paritygate"));
        Ok(Self {
            pool,
            service_ids: Arc::default(),
            scopes: Arc::default(),
        })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Whether the server vacuums on its own (`SHOW autovacuum`). The state tables are rewritten
    /// by every checkpoint and round; without autovacuum their dead rows pile up and every probe
    /// walks them (migration 0014 tunes the thresholds, which only matter when it is on).
    pub async fn autovacuum_on(&self) -> Result<bool, StoreError> {
        let setting: String = sqlx::query_scalar("SHOW autovacuum")
            .fetch_one(&self.pool)
            .await?;
        Ok(setting == "on")
    }

    /// Whether every embedded migration is applied.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied as usize >= MIGRATOR.iter().count())
    }

    /// Make sure every configured service has an id, and remember them.
    pub async fn register_services(&self, names: &[String]) -> Result<(), StoreError> {
        for name in names {
            sqlx::query("INSERT INTO services (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .execute(&self.pool)
                .await?;
            let id: i16 = sqlx::query_scalar("SELECT id FROM services WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
            self.service_ids
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_owned(), id);
        }
        let current = epochs::current_scopes(&self.pool).await?;
        self.remember_scopes(current);
        Ok(())
    }

    /// Remember the epochs services were seen in (by a checkpoint, or an epoch just started).
    pub fn remember_scopes(&self, scopes: impl IntoIterator<Item = (i16, EpochScope)>) {
        let mut known = self
            .scopes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, scope) in scopes {
            // Epochs only move forward: a checkpoint that read an older one commits no later.
            let slot = known.entry(id).or_default();
            if scope.id >= slot.id {
                *slot = scope;
            }
        }
    }

    /// The epoch each of these services (a batch's service indexes) was last seen in.
    pub fn scopes_of(&self, names: &[String]) -> Vec<EpochScope> {
        let known = self
            .scopes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        names
            .iter()
            .map(|n| {
                self.service_id(n)
                    .and_then(|id| known.get(&id).copied())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn service_id(&self, name: &str) -> Option<i16> {
        self.service_ids
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .copied()
    }

    /// The id of service `name`: known since this process registered its services, or else read
    /// from the store (another process, or this one's previous run, registered it); `None` when
    /// no process ever did. Ids never change, so a found one is kept.
    pub async fn resolve_service_id(&self, name: &str) -> Result<Option<i16>, StoreError> {
        if let Some(id) = self.service_id(name) {
            return Ok(Some(id));
        }
        let id: Option<i16> = sqlx::query_scalar("SELECT id FROM services WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(id) = id {
            self.service_ids
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_owned(), id);
        }
        Ok(id)
    }

    /// Stored progress of these topics' partitions on `sides` (one cluster's: within a cluster a
    /// topic has one side), by (topic, partition).
    pub async fn stored_offsets(
        &self,
        sides: &[Side],
        topics: &[String],
    ) -> Result<std::collections::HashMap<TopicPartition, StoredOffset>, StoreError> {
        let rows: Vec<(String, i32, i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT topic, partition, next_offset, last_record FROM partitions \
             WHERE topic = ANY($1) AND side = ANY($2)",
        )
        .bind(topics)
        .bind(sides.iter().map(|s| side_code(*s)).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(t, p, next, last)| {
                // A malformed fingerprint is treated as unknown: nothing is checked against it.
                let last_record = last
                    .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
                    .map(u128::from_be_bytes);
                (
                    TopicPartition {
                        topic: t,
                        partition: p,
                    },
                    StoredOffset { next, last_record },
                )
            })
            .collect())
    }

    /// A partition's stored `next_offset` and `arrival_base` (`None`: no row yet).
    pub async fn stored_partition(
        &self,
        side: Side,
        topic: &str,
        partition: i32,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT next_offset, arrival_base FROM partitions \
             WHERE side = $1 AND topic = $2 AND partition = $3",
        )
        .bind(side_code(side))
        .bind(topic)
        .bind(partition)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The stored identities of a partition's events within `horizon_ms` of event time behind its
    /// newest counted event, as packed rows with their newest event time (see
    /// `serve::lane::dedupe`); what is older is not read, so the load is bounded by the horizon.
    pub async fn partition_identities(
        &self,
        side: Side,
        topic: &str,
        partition: i32,
        horizon_ms: i64,
    ) -> Result<PartitionMemory, StoreError> {
        let newest_ms: Option<i64> = sqlx::query_scalar(
            "SELECT max(max_event_ms) FROM partitions WHERE side = $1 AND topic = $2 AND partition = $3",
        )
        .bind(side_code(side))
        .bind(topic)
        .bind(partition)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query_as(
            "SELECT ids, max_event_ms FROM event_ids WHERE side = $1 AND topic = $2 AND partition = $3 \
             AND ($4::bigint IS NULL OR max_event_ms IS NULL OR max_event_ms >= $4::bigint)",
        )
        .bind(side_code(side))
        .bind(topic)
        .bind(partition)
        .bind(newest_ms.map(|n| n.saturating_sub(horizon_ms)))
        .fetch_all(&self.pool)
        .await?;
        Ok(PartitionMemory { newest_ms, rows })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
