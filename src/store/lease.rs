//! Leases: one replica at a time does a job that would only be repeated by the others (the row
//! sampler of a service reads the production sink tables; N replicas would read them N times and
//! store N rounds per interval). A lease is a Postgres session advisory lock on a connection of
//! its own, outside the pool: it lasts while that session does, so a replica that dies or loses
//! its database connection frees it without anyone having to notice, and another takes it over
//! at its next try.

use super::{Store, StoreError};
use sqlx::{Connection, PgConnection};

/// What a lease is for: the first half of the advisory-lock key (the second is the service id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LeaseKind {
    /// `serve::rows`: the row sampler of one service.
    RowSampler = 0x7067_0001,
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
