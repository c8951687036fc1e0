//! The live dual-run comparison: Kafka in, Postgres state out, the evaluated status published
//! for HTTP (`crate::app` starts it beside the HTTP server).
//!
//! [`run_pipeline`], once the database is reachable and migrated: the ingest thread, the lanes and
//! their checkpointers, the evaluation loop and the row samplers of services with
//! `[services.targets]`. Shutdown is a `CancellationToken` passed in.

mod checkpoint;
mod evaluate;
mod ingest;
mod lane;
mod pipeline;
mod progress;
mod retention;
mod retry;
mod rows;

use crate::store::StoreError;

pub use pipeline::run_pipeline;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("config: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("a task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    Registry(#[from] crate::schemas::RegistryError),
}
