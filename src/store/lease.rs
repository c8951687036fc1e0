//! Leases: one replica at a time does a job that would only be repeated by the others (the row
//! sampler of a service reads the production sink tables; N replicas would read them N times and
//! store N rounds per interval), or that must not be done twice (a service's verdict and its
//! hysteresis). A lease is a Postgres session advisory lock on a connection of its own, outside
//! the pool: it lasts while that session does, so a replica that dies or loses its database
//! connection frees it without anyone having to notice, and another takes it over at its next try.
//!
//! [`LeaseSession`] holds many leases on one session and writes what they guard through that same
//! session: Postgres ends a session (releasing its locks and aborting its open transaction) before
//! anyone else can take them, so whatever the network does, two writers never overlap.

use super::{Store, StoreError};
use sqlx::{Connection, PgConnection};

/// What a lease is for: the first half of the advisory-lock key (the second is the service id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LeaseKind {
    /// `serve::rows`: the row sampler of one service.
    RowSampler = 0x7067_0001,
    /// `serve::evaluate`: evaluating one service (its verdict, hysteresis and gate history).
    Evaluator = 0x7067_0002,
}

/// A held lease; dropping it (or losing its connection) releases it.
#[derive(Debug)]
pub struct Lease {
    connection: PgConnection,
}

impl Lease {
    /// Take the lease `kind` for `id` if no other session holds it. `Ok(None)`: someone does.
    pub async fn try_take(
        store: &Store,
        kind: LeaseKind,
        id: i16,
    ) -> Result<Option<Lease>, StoreError> {
        let options = store.pool.connect_options();
        let mut connection = PgConnection::connect_with(&*options).await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(kind as i32)
            .bind(i32::from(id))
            .fetch_one(&mut connection)
            .await?;
        if taken {
            Ok(Some(Lease { connection }))
        } else {
            // Closing is only politeness: the session holds nothing.
            let _ = connection.close().await;
            Ok(None)
        }
    }

    /// Whether the session holding the lease is still there (if not, the lock went with it).
    pub async fn held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }
}

/// How long the database keeps a session whose replica went silent (network loss, a frozen
/// host): the lease session asks the server for TCP keepalives after 5 s idle, every 2 s, 3 lost
/// probes (and `tcp_user_timeout` for unacknowledged data). A replica killed outright frees its
/// leases at once: its operating system closes the connection.
pub const LEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(11);

/// The upper bound of one lease-session statement: a session that does not answer within it is
/// dropped (its leases are lost; Postgres frees them within [`LEASE_TIMEOUT`]).
const STATEMENT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Many leases of one kind on one session, and the session through which what they guard is
/// written. Lost as a whole: any failed statement drops the session, and with it every lease.
#[derive(Debug)]
pub struct LeaseSession {
    kind: LeaseKind,
    connection: PgConnection,
    held: std::collections::BTreeSet<i16>,
}

impl LeaseSession {
    /// A new session (holding no lease yet).
    pub async fn open(store: &Store, kind: LeaseKind) -> Result<LeaseSession, StoreError> {
        let options = store.pool.connect_options();
        let mut connection = bounded(PgConnection::connect_with(&*options)).await?;
        // Settable per session; ignored on a Unix socket (where a dead peer is seen at once).
        for setting in [
            "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 2",
            "SET tcp_keepalives_count = 3",
            "SET tcp_user_timeout = 10000",
        ] {
            bounded(sqlx::query(setting).execute(&mut connection)).await?;
        }
        Ok(LeaseSession {
            kind,
            connection,
            held: Default::default(),
        })
    }

    /// The ids whose lease this session holds.
    pub fn held(&self) -> &std::collections::BTreeSet<i16> {
        &self.held
    }

    /// Take the lease for `id` unless another session holds it; `true` if this one holds it now.
    pub async fn try_take(&mut self, id: i16) -> Result<bool, StoreError> {
        if self.held.contains(&id) {
            // Session locks stack: taking one twice would need two releases.
            return Ok(true);
        }
        let taken: bool = bounded(
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(self.kind as i32)
                .bind(i32::from(id))
                .fetch_one(&mut self.connection),
        )
        .await?;
        if taken {
            self.held.insert(id);
        }
        Ok(taken)
    }

    /// Give the lease for `id` up (another replica may take it at once).
    pub async fn release(&mut self, id: i16) -> Result<(), StoreError> {
        if self.held.remove(&id) {
            bounded(
                sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                    .bind(self.kind as i32)
                    .bind(i32::from(id))
                    .execute(&mut self.connection),
            )
            .await?;
        }
        Ok(())
    }

    /// A transaction on the session (for what all replicas write, such as their signs of life).
    pub async fn transaction(
        &mut self,
    ) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        bounded(self.connection.begin()).await
    }

    /// A transaction on the session, for writes guarded by lease `id`: refused with
    /// [`StoreError::LeaseLost`] unless the session holds it (checked in the database, not only
    /// here, so a bookkeeping mistake cannot write unguarded).
    pub async fn guarded(
        &mut self,
        id: i16,
    ) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, StoreError> {
        let kind = self.kind as i32;
        let mut tx = bounded(self.connection.begin()).await?;
        let holds: bool = bounded(
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND classid::bigint = ($1::bigint & 4294967295) AND objid::bigint = $2 AND objsubid = 2
                   AND pid = pg_backend_pid())",
            )
            .bind(i64::from(kind))
            .bind(i64::from(id))
            .fetch_one(&mut *tx),
        )
        .await?;
        if !holds {
            return Err(StoreError::LeaseLost(id));
        }
        Ok(tx)
    }
}

/// A lease-session statement, bounded by [`STATEMENT_LIMIT`].
async fn bounded<T>(
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(STATEMENT_LIMIT, statement).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(STATEMENT_LIMIT)),
    }
}
