//! Starting the service (zero2prod's "startup"): the HTTP server first, so `/healthz` and
//! `/readyz` answer while dependencies are still away, then the pipeline (`crate::serve`) once
//! the database is reachable and migrated. Shutdown is a [`CancellationToken`] passed in, so tests
//! control it; SIGTERM cancels it in the binary. The one module that knows both halves.

use crate::config::Config;
use crate::http::{router, AppState};
use crate::metrics::Metrics;
use crate::model::status::SharedStatus;
use crate::serve::ServeError;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running service: where it listens and how it ends.
#[derive(Debug)]
pub struct ServeHandle {
    pub addr: SocketAddr,
    pub status: SharedStatus,
    pub join: JoinHandle<Result<(), ServeError>>,
}

/// Start the service; it runs until `cancel` is cancelled (or a fatal error cancels it).
pub async fn spawn(config: Config, cancel: CancellationToken) -> Result<ServeHandle, ServeError> {
    let url = config
        .store
        .url
        .clone()
        .ok_or_else(|| ServeError::Config("set [store] url or PARITYGATE_STORE_URL".into()))?;
    let store = Store::connect_lazy(&url, config.store.max_connections)?;
    let config = Arc::new(config);
    let status = SharedStatus::default();
    let metrics = Metrics::new()?;
    metrics.init_services(config.services.iter().map(|s| s.name.as_str()));
    for wave in &config.waves {
        for service in &wave.services {
            metrics
                .service_info
                .with_label_values(&[service.as_str(), wave.id.to_string().as_str()])
                .set(1);
        }
    }
    let listen = config.http.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let state = AppState {
        config: config.clone(),
        store: store.clone(),
        status: status.clone(),
        metrics: metrics.clone(),
    };
    // Wave sign-off metrics and stale alerts; stops with the service.
    tokio::spawn(crate::http::wave_state::watch(
        state.clone(),
        cancel.clone(),
    ));
    let app = router(state);
    let http_cancel = cancel.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(http_cancel.cancelled_owned())
            .await
    });
    let shared = status.clone();
    let join = tokio::spawn(async move {
        let result =
            crate::serve::run_pipeline(config, store, status, metrics, cancel.clone()).await;
        cancel.cancel();
        match http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "http server failed"),
            Err(e) => tracing::error!(error = %e, "http task failed"),
        }
        result
    });
    Ok(ServeHandle {
        addr,
        status: shared,
        join,
    })
}

/// The binary's entry: serve until SIGTERM/SIGINT, then drain, checkpoint and exit.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let cancel = CancellationToken::new();
    let handle = spawn(config, cancel.clone()).await?;
    println!("listening on http://{}", handle.addr);
    let signals = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            () = signals.cancelled() => return,
        }
        tracing::info!("shutting down: draining and checkpointing");
        signals.cancel();
    });
    handle.join.await?
}
