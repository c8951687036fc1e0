//! A fresh Postgres database per test on 127.0.0.1:5432 (trust auth, user `postgres`; override the
//! server with `PARITYGATE_TEST_PG`, a URL without a database path), dropped on `Drop`.

use sqlx::{Connection, PgConnection};

/// The local server's certificate (`ssl = on` in Debian's default cluster).
pub const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The server URL (no database path).
pub fn server_url() -> String {
    std::env::var("PARITYGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database created for one test.
#[derive(Debug)]
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// Create a database with a random name.
    pub async fn create() -> TestDb {
        let name = super::unique("paritygate_test");
        let mut admin = admin().await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        let _ = admin.close().await;
        TestDb { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `postgres://postgres@127.0.0.1:5432/NAME`
    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// This database through `localhost` with TLS (`sslmode=MODE`), verified against Debian's
    /// self-signed certificate the local server presents (CN and SAN `localhost`).
    pub fn tls_url(&self, mode: &str) -> String {
        format!(
            "{}?sslmode={mode}&sslrootcert={SNAKEOIL}",
            self.url().replace("@127.0.0.1:", "@localhost:")
        )
    }

    /// A connection to this database (for assertions on the stored state).
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }

    /// Whether a database of this name exists on the server.
    pub async fn exists(name: &str) -> bool {
        let mut admin = admin().await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .expect("query pg_database");
        n > 0
    }
}

async fn admin() -> PgConnection {
    let url = format!("{}/postgres", server_url());
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url} (is PostgreSQL running? scripts/setup): {e}"))
}

async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url())).await?;
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(name)
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop may run inside or outside a runtime: use a runtime of our own on its own thread.
        let name = self.name.clone();
        let result = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(drop_database(&name))
                .map_err(|e| e.to_string())
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Store `status` as its service's served verdict, standing in for the evaluator that would hold
/// the service's lease (tests of the API alone have none). Never stale: no `stale_after_seconds`.
pub async fn store_verdict(
    store: &paritygate::store::Store,
    status: &paritygate::model::status::ServiceStatus,
) {
    let id = store
        .service_id(&status.service)
        .unwrap_or_else(|| panic!("service {} is not registered", status.service));
    let at = status.gate.evaluated_at.unwrap_or_else(chrono::Utc::now);
    sqlx::query(
        "INSERT INTO served_verdicts (service_id, status, verdict, passes_in_a_row, recorded, evaluated_at, evaluated_by, stale_after_ms)
         VALUES ($1, $2, $3, 0, 'null', $4, 'test', 86400000)
         ON CONFLICT (service_id) DO UPDATE SET status = EXCLUDED.status, verdict = EXCLUDED.verdict,
           evaluated_at = EXCLUDED.evaluated_at",
    )
    .bind(id)
    .bind(serde_json::to_value(status).expect("status as JSON"))
    .bind(status.gate.verdict.as_str())
    .bind(at)
    .execute(&store.pool)
    .await
    .expect("store the verdict");
}
