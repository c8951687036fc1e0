//! The pipeline behind `serve`'s HTTP server, once the database answers: migrations and service
//! registration (retried with backoff), then per lane a worker thread and a checkpointer, the one
//! consumer thread, the row samplers and the evaluation loop; and the order they stop in.

use super::ingest::{kafka_offsets, rebalance, verify};
use super::lane::{cursor, worker};
use super::progress::backlog;
use super::{checkpoint, evaluate, ingest, retention, rows, ServeError};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::status;
use crate::store::Store;
use status::SharedStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Migrate and register services, retrying with backoff while the database is away.
async fn bootstrap(
    config: &Config,
    store: &Store,
    status: &SharedStatus,
    cancel: &CancellationToken,
) -> bool {
    let mut delays = super::retry::delays(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let attempt = async {
            store.migrate().await?;
            let names: Vec<String> = config.service_names();
            store.register_services(&names).await
        };
        match attempt.await {
            Ok(()) => {
                if let Ok(false) = store.autovacuum_on().await {
                    tracing::warn!("autovacuum is off on the database server: the state tables' dead rows will pile up and checkpoints and evaluation rounds slow down over days; turn it on (paritygate's tables carry their own thresholds)");
                }
                status.write(|s| {
                    s.readiness.database = true;
                    s.readiness.migrations = true;
                });
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "database not ready; retrying");
                status.write(|s| {
                    s.readiness.database = false;
                    s.readiness.last_error = Some(e.to_string());
                });
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(10))) => {}
        }
    }
}

/// Chunks of records queued per worker before the consumer thread waits for it. Deep enough that
/// one lane momentarily behind (a checkpoint, a burst) does not starve the other: with 8 the
/// consumer thread spent over half its time blocked and the machine sat 20-30 % idle.
const WORKER_CHUNKS_QUEUED: usize = 64;

/// A named thread of the pipeline.
fn spawn(
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(body)
        .map_err(ServeError::Thread)
}

/// One cluster's consumption: its consumer thread, lane workers and checkpointers, and what the
/// evaluator watches of it.
struct ClusterRun {
    threads: Vec<std::thread::JoinHandle<()>>,
    checkpointers: Vec<tokio::task::JoinHandle<Result<(), crate::store::StoreError>>>,
    watch: evaluate::ClusterWatch,
}

/// Start consuming the cluster `config` is a view of (`Config::on_cluster`).
fn start_cluster(
    (config, schemas): (Arc<Config>, &crate::core::avro::Schemas),
    store: &Store,
    status: &SharedStatus,
    metrics: &Metrics,
    cancel: &CancellationToken,
) -> Result<ClusterRun, ServeError> {
    // Per lane: a worker thread (extraction, deduplication, batching) fed by the consumer thread,
    // and a checkpointer. Batch channels have capacity 1: a worker builds the next batch while one
    // is stored, and waits (backpressure) beyond that.
    let lanes = config.serve.checkpoint_lanes.max(1);
    let (batches, received): (Vec<_>, Vec<_>) =
        (0..lanes).map(|_| tokio::sync::mpsc::channel(1)).unzip();
    let ends = super::progress::EndOffsets::default();
    let starts = cursor::Starts::default();
    let check = verify::LogCheck::new(config.clone());
    let positions =
        backlog::Positions::new(Duration::from_millis(config.serve.checkpoint_interval_ms));
    let mut inboxes = Vec::with_capacity(lanes);
    let mut records = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        let (inbox, receiver) = std::sync::mpsc::sync_channel(WORKER_CHUNKS_QUEUED);
        inboxes.push(inbox);
        records.push(receiver);
    }
    let health = crate::serve::ingest::cluster::ClusterHealth::default();
    let context = rebalance::LaneContext::new(inboxes)
        .reporting_to(health.clone())
        .with_store_positions(
            kafka_offsets::StoredPositions::from_store(store, config.sides())
                .noting_starts_in(starts.clone())
                .checking_logs(check.clone()),
            metrics.kafka_commit_failures.clone(),
        );
    let consumer = Arc::new(ingest::lane_consumer(&config, context)?);
    let weak_consumer = Arc::downgrade(&consumer);
    let mut threads = Vec::with_capacity(lanes + 1);
    let heartbeats = crate::serve::progress::Heartbeats::new(lanes);
    // `paritygate-lane-0` with one cluster, `paritygate-lane-candidate-0` with one per side.
    let name = match config.sides() {
        [side] => format!("-{side}"),
        _ => String::new(),
    };
    for (lane, (batches, records)) in batches.into_iter().zip(records).enumerate() {
        let worker = worker::Worker {
            seek: consumer.clone(),
            config: config.clone(),
            schemas: schemas.clone(),
            store: store.clone(),
            runtime: tokio::runtime::Handle::current(),
            records,
            batches,
            end_offsets: ends.clone(),
            starts: starts.clone(),
            heartbeats: heartbeats.clone(),
            lane,
            cancel: cancel.clone(),
        };
        threads.push(spawn(format!("paritygate-lane{name}-{lane}"), move || {
            worker.run()
        })?);
    }
    let ingest = ingest::Ingest {
        consumer,
        assigned: metrics.assigned_partitions.clone(),
        config: config.clone(),
        store: store.clone(),
        runtime: tokio::runtime::Handle::current(),
        status: status.clone(),
        starts,
        check,
        cancel: cancel.clone(),
    };
    threads.push(spawn(format!("paritygate-ingest{name}"), move || {
        ingest.run()
    })?);
    let names: Vec<String> = config.service_names();
    let checkpointers = received
        .into_iter()
        .map(|received| {
            let checkpointer = checkpoint::Checkpointer {
                store: store.clone(),
                names: names.clone(),
                status: status.clone(),
                metrics: metrics.clone(),
                positions: positions.clone(),
                kafka: config
                    .kafka
                    .commit_offsets
                    .then(|| kafka_offsets::KafkaCommits::new(weak_consumer.clone())),
                cancel: cancel.clone(),
            };
            tokio::spawn(checkpointer.run(received))
        })
        .collect();
    Ok(ClusterRun {
        threads,
        checkpointers,
        watch: evaluate::ClusterWatch {
            topics: config.all_topics().into(),
            config,
            ends,
            positions,
            heartbeats,
            health,
        },
    })
}

/// Migrate, then run ingestion (one consumer per cluster), checkpoints, evaluation and the row
/// samplers until `cancel`.
pub async fn run_pipeline(
    config: Arc<Config>,
    store: Store,
    status: SharedStatus,
    metrics: Metrics,
    cancel: CancellationToken,
) -> Result<(), ServeError> {
    if !bootstrap(&config, &store, &status, &cancel).await {
        return Ok(());
    }
    let (mut threads, mut checkpointers, mut watches) = (Vec::new(), Vec::new(), Vec::new());
    // Each side's Schema Registry (sides with `avro` payloads or keys): refused here, before any
    // record is read, when a side needs one and none is configured.
    let schemas = crate::schemas::registries(&config, tokio::runtime::Handle::current())?;
    for cluster in config.clusters() {
        let view = Arc::new(config.on_cluster(&cluster));
        let run = start_cluster((view, &schemas), &store, &status, &metrics, &cancel)?;
        threads.extend(run.threads);
        checkpointers.extend(run.checkpointers);
        watches.push(run.watch);
    }
    // Row samplers read the sink tables, not Kafka: independent of ingest, one per service.
    let samplers: Vec<_> = config
        .services
        .iter()
        .filter(|s| s.targets.is_some())
        .map(|s| {
            tokio::spawn(rows::run(
                s.clone(),
                store.clone(),
                metrics.clone(),
                cancel.clone(),
            ))
        })
        .collect();
    let pruner = tokio::spawn(retention::run(
        config.clone(),
        store.clone(),
        metrics.clone(),
        cancel.clone(),
    ));
    let replica = config
        .serve
        .replica_name
        .clone()
        .unwrap_or_else(evaluate::owner::default_replica_name);
    tracing::info!(replica = %replica, "this replica's name (evaluated_by)");
    let evaluator = tokio::spawn(evaluate::run(
        evaluate::Evaluator {
            config,
            store,
            status,
            metrics,
            clusters: watches,
            replica,
        },
        cancel.clone(),
    ));
    // Checkpointers end when the workers, told by the cancelled consumer thread, have handed over
    // their last batches.
    let mut stored = Ok(());
    for checkpointer in checkpointers {
        let result = checkpointer.await?;
        if stored.is_ok() {
            stored = result;
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await;
    cancel.cancel();
    let _ = evaluator.await;
    let _ = pruner.await;
    for sampler in samplers {
        let _ = sampler.await;
    }
    Ok(stored?)
}
