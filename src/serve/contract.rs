//! PLACEHOLDER from the `harness` branch so the integration tests compile before `serve` lands:
//! the entry point's contract only. Delete this file (and its two lines in `serve/mod.rs`) when
//! the real `spawn` is merged.

use crate::config::Config;
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running service: the bound HTTP address and the task that ends after `shutdown` fires.
#[derive(Debug)]
pub struct ServeHandle {
    pub addr: SocketAddr,
    pub join: JoinHandle<Result<(), ServeError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("paritygate serve is not implemented yet")]
    NotImplemented,
}

/// Start consuming, evaluating and serving HTTP on `config.http.listen`.
pub async fn spawn(config: Config, shutdown: CancellationToken) -> Result<ServeHandle, ServeError> {
    let _ = (config, shutdown);
    Err(ServeError::NotImplemented)
}
