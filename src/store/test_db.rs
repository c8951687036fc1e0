//! Fresh, migrated Postgres databases for the crate's own tests (one per test, dropped afterwards
//! even when the test panics). Needs the local server the README's set-up starts.

use super::{Store, MIGRATOR};
use sqlx::PgPool;
use std::future::Future;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// Run `body` on a migrated fresh database, then drop it.
pub async fn with_db<F, Fut>(body: F)
where
    F: FnOnce(PgPool) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_url(|url| async move {
        let pool = PgPool::connect(&url).await.unwrap();
        body(pool.clone()).await;
        pool.close().await;
    })
    .await;
}

/// Run `body` with a [`Store`] on a migrated fresh database whose services are `services`.
pub async fn with_store<F, Fut>(services: &'static [&'static str], body: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_url(|url| async move {
        let store = Store::connect_lazy(&url, 4).unwrap();
        let names: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        store.register_services(&names).await.unwrap();
        body(store.clone()).await;
        store.pool.close().await;
    })
    .await;
}

async fn with_url<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = PgPool::connect(&format!("{SERVER}/postgres"))
        .await
        .unwrap();
    let name: String = sqlx::query_scalar(
        "SELECT 'paritygate_test_' || substr(md5(random()::text || clock_timestamp()::text), 1, 16)",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    // Identifiers cannot be bound; the name is generated above from hex digits only.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{SERVER}/{name}");
    let migrated = PgPool::connect(&url).await.unwrap();
    MIGRATOR.run(&migrated).await.unwrap();
    migrated.close().await;
    let outcome = tokio::spawn(body(url)).await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
