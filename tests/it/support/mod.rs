//! Test harness with real parts, shared by the integration tests of `paritygate serve`.
//!
//! - [`broker`]: a real Kafka-protocol broker (`tansu`) on a free loopback port, with an admin
//!   client and a producer; in-memory storage, or S3 storage on a local `moto_server` so the
//!   data survives a broker restart.
//! - [`db`]: a fresh Postgres database per test, dropped on `Drop`.
//! - [`traffic`]: the checked-in fixture captures, read with the crate's own reader, produced to the
//!   same topics and partitions; the expected outcome computed by `paritygate::replay`.
//! - [`app`]: the service under test, in-process (`paritygate::app::spawn`) or as a child
//!   process (`paritygate serve --config FILE`, for kill -9), and the config builder.
//! - [`http`]: a JSON client for the API and [`wait_until`] polling with bounded waits.
//! - [`expect`]: the assertions that `serve` shows what `replay` computes on the same records.
//! - [`gates`]: the API router alone with tokens, waves and hand-set verdicts (gates, sign-offs).
//!
//! Everything listens on 127.0.0.1 only. External programs are found through `PARITYGATE_TANSU`
//! and `PARITYGATE_MOTO_SERVER` (exported by `scripts/test`), falling back to `.tools/venv`.

pub mod app;
pub mod avro;
pub mod broker;
pub mod db;
pub mod debezium;
pub mod expect;
pub mod gates;
pub mod http;
pub mod operator;
pub mod produce;
pub mod promql;
pub mod secure;
pub mod traffic;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root (where `Cargo.toml` and `fixtures/` are).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/…`
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// A program of the tools venv: `$var` if set, else `fallback` under `.tools/venv` (a path in
/// a Python package's directory, or a script in `bin/`).
pub fn program(var: &str, fallback: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return path.into();
    }
    let venv = root().join(".tools/venv");
    // `bin/` first: a script there may share its name with its package's directory.
    let found = std::iter::once(venv.join("bin").join(fallback))
        .chain(
            std::fs::read_dir(venv.join("lib"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|python| python.path().join("site-packages").join(fallback)),
        )
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{var} is not set and {fallback} is not under {venv:?}: run scripts/setup")
    })
}

/// A free loopback port (bound, read, released; the caller binds it again right away), never one
/// this test run handed out before: a broker that is stopped and restarted on its port (an outage
/// test) must not find it taken by another test's broker meanwhile, whose metadata answers would
/// pass for its own (seen: a restarted cluster's records produced into another test's tansu).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(port)
        {
            return port;
        }
    }
}

/// A short random suffix for database, topic and group names.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos:x}_{n}", std::process::id())
}

/// Install a test log subscriber once (`RUST_LOG` selects; default: warnings).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Poll `check` every 100 ms until it returns `Ok(value)`; after `timeout`, panic with `what` and
/// the last `Err` it returned (the state the test was waiting on, for a readable failure).
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting until {what}; last state: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
