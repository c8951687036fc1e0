//! The row sampler task of one service with `[services.targets]`: every `interval_secs`, a
//! sampled row diff of the two sink tables ([`crate::rowdiff::sampler`]) with the stream
//! comparison's flagged keys and the recently changed keys as extra keys; each round is stored
//! (`store::rows`) for the status, the API, the metrics and the gate.
//!
//! With several replicas, only the one holding the service's sampler lease (`store::lease`)
//! samples; the others try to take it each interval, so sampling moves on when the holder dies.
//!
//! A failure (target database down, schema changed, store unreachable) never stops `serve`: it is
//! logged and counted (`row_sample_failures_total{stage}`), and the sampler is rebuilt (connect
//! and schema check again) at the next interval.
//!
//! **Key texts to key columns.** `keys.key_text` is the Kafka key, or the canonical JSON of the
//! configured key fields (a single string field: the string itself; several fields: a JSON
//! array). It is mapped to `key_columns` by [`key_values`]:
//! 1. a JSON object: the values of the key column names (inside `payload` if the top level lacks
//!    them, as in Debezium keys with schemas), e.g. `{"id":5}` → `id = 5`;
//! 2. a JSON array with one element per key column: by position, e.g. `["eu",7]` →
//!    `tenant = 'eu', id = 7`;
//! 3. otherwise, with a single key column: the text itself (a JSON string is unquoted);
//! 4. otherwise the key is skipped and counted in `extra_keys_invalid`.

use crate::config::model::ServiceConfig;
use crate::metrics::Metrics;
use crate::rowdiff::config::SampleScope;
use crate::rowdiff::sampler::{KeyValues, Sampler};
use crate::rowdiff::{conn, ResolvedUrls, RowDiffError, TargetsConfig};
use crate::store::lease::{Lease, LeaseKind};
use crate::store::{epochs, rows, EpochKey, Store, StoreError};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Connections per side: the round's two queries run one per side; the re-check needs one more.
const POOL_SIZE: u32 = 2;

/// Map a stream key text to the key columns (rules in the module docs); `None` when impossible.
pub fn key_values(key_text: &str, key_columns: &[String]) -> Option<KeyValues> {
    let parsed = serde_json::from_str::<Value>(key_text).ok();
    match parsed {
        Some(Value::Object(mut object)) => {
            if !key_columns.iter().all(|c| object.contains_key(c)) {
                if let Some(Value::Object(payload)) = object.remove("payload") {
                    object = payload;
                }
            }
            key_columns
                .iter()
                .map(|c| Some((c.clone(), object.get(c)?.clone())))
                .collect()
        }
        Some(Value::Array(items)) if items.len() == key_columns.len() => {
            Some(key_columns.iter().cloned().zip(items).collect())
        }
        _ => match key_columns {
            // The raw text, not a parsed number: `1.50` must stay `1.50` for a text column.
            [column] => {
                let value = match parsed {
                    Some(Value::String(s)) => s,
                    _ => key_text.to_owned(),
                };
                Some(KeyValues::from_iter([(
                    column.clone(),
                    Value::String(value),
                )]))
            }
            _ => None,
        },
    }
}

/// Why a round failed: the stage is a bounded metric label.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("start (connect and schema check): {0}")]
    Start(RowDiffError),
    #[error("reading flagged and recent keys: {0}")]
    Keys(StoreError),
    #[error("sampling: {0}")]
    Sample(RowDiffError),
    #[error("storing the round: {0}")]
    Store(StoreError),
}

impl RoundError {
    fn stage(&self) -> &'static str {
        match self {
            RoundError::Start(_) => "start",
            RoundError::Keys(_) => "keys",
            RoundError::Sample(_) => "sample",
            RoundError::Store(_) => "store",
        }
    }
}

async fn start(service: &str, targets: &TargetsConfig) -> Result<Sampler, RoundError> {
    let urls = ResolvedUrls::from_env(targets).map_err(RoundError::Start)?;
    let pools = conn::connect(targets, &urls, POOL_SIZE)
        .await
        .map_err(RoundError::Start)?;
    let sampler = Sampler::new(targets, pools)
        .await
        .map_err(RoundError::Start)?;
    for difference in sampler.schema_differences() {
        tracing::warn!(service, %difference, "row sampler: schema difference (column not compared)");
    }
    tracing::info!(service, "row sampler started");
    Ok(sampler)
}

/// The extra keys of a round: the previous round's differing keys first, then the keys the stream
/// flags (most telling), then recently changed ones; texts deduplicated.
///
/// The previous round's differences come back every round until they no longer differ: the
/// uniform window moves on each round and the gate reads the latest round only, so a difference
/// the window found once would otherwise vanish from the verdict while it is still there.
async fn extra_keys(
    store: &Store,
    at: EpochKey,
    targets: &TargetsConfig,
) -> Result<(Vec<KeyValues>, u64), StoreError> {
    let limit = i64::try_from(targets.sample.sample_size).unwrap_or(i64::MAX);
    let previous = rows::latest_diffs(&store.pool, at.service_id, limit).await?;
    let flagged = rows::flagged_keys(&store.pool, at, limit).await?;
    let recent = rows::recent_keys(&store.pool, at, limit).await?;
    let mut keys: Vec<KeyValues> = previous
        .into_iter()
        .filter_map(|d| match d.key {
            Value::Object(key) => Some(key),
            _ => None,
        })
        .collect();
    let (mapped, unmapped) = mapped(flagged.iter().chain(&recent), targets);
    keys.extend(mapped);
    Ok((keys, unmapped))
}

/// Key texts (deduplicated) as key-column values, and how many could not be mapped.
fn mapped<'a>(
    texts: impl IntoIterator<Item = &'a String>,
    targets: &TargetsConfig,
) -> (Vec<KeyValues>, u64) {
    let mut seen = HashSet::new();
    let (mut keys, mut unmapped) = (Vec::new(), 0);
    for text in texts {
        if !seen.insert(text.as_str()) {
            continue;
        }
        match key_values(text, &targets.key_columns) {
            Some(k) => keys.push(k),
            None => unmapped += 1,
        }
    }
    (keys, unmapped)
}

/// The store's id of `service` (registered at bootstrap, before any sampler starts).
fn registered(store: &Store, service: &str) -> Result<i16, StoreError> {
    store
        .service_id(service)
        .ok_or_else(|| StoreError::UnknownService(service.to_owned()))
}

/// One round: extra keys, sample (with its settle delay and rate-limit waits), store.
async fn round(
    sampler: &mut Sampler,
    service: &ServiceConfig,
    targets: &TargetsConfig,
    store: &Store,
    metrics: &Metrics,
) -> Result<(), RoundError> {
    let id = registered(store, &service.name).map_err(RoundError::Keys)?;
    // The keys of the epoch the gate judges: the stream's flagged and recent keys are its own.
    let (_, at) = epochs::current(
        &store.pool,
        id,
        &service.name,
        service.compare_from.start_ms(),
    )
    .await
    .map_err(RoundError::Keys)?;
    let (keys, unmapped) = extra_keys(store, at, targets)
        .await
        .map_err(RoundError::Keys)?;
    let mut result = match targets.sample.scope {
        SampleScope::Table => sampler.sample_round(&keys).await,
        SampleScope::Changed => {
            // The uniform sample: keys the epoch's events touched, not every row of the tables.
            let limit = i64::try_from(targets.sample.sample_size).unwrap_or(i64::MAX);
            let changed = rows::changed_keys(&store.pool, at, limit)
                .await
                .map_err(RoundError::Keys)?;
            let (in_scope, unmapped_scope) = mapped(&changed, targets);
            let mut result = sampler.sample_keys(&in_scope, &keys).await;
            if let Ok(r) = &mut result {
                r.extra_keys_invalid += unmapped_scope;
            }
            result
        }
    }
    .map_err(RoundError::Sample)?;
    result.extra_keys_invalid += unmapped;
    rows::record_round(&store.pool, id, &result)
        .await
        .map_err(RoundError::Store)?;
    metrics
        .rows_sampled
        .with_label_values(&[service.name.as_str()])
        .inc_by(result.rows_sampled);
    tracing::debug!(service = %service.name, sampled = result.rows_sampled,
        differing = result.diffs.len(), in_flight = result.in_flight, "row sample round");
    Ok(())
}

/// Start the sampler if there is none (connect and schema check), then run a round.
async fn attempt(
    sampler: &mut Option<Sampler>,
    service: &ServiceConfig,
    targets: &TargetsConfig,
    store: &Store,
    metrics: &Metrics,
) -> Result<(), RoundError> {
    let s = match sampler {
        Some(s) => s,
        None => sampler.insert(start(&service.name, targets).await?),
    };
    let outcome = round(s, service, targets, store, metrics).await;
    // A query failure may mean a changed schema or a moved server: start over (connect and
    // schema check) next time rather than repeat a plan that may no longer hold.
    if matches!(outcome, Err(RoundError::Sample(_))) {
        *sampler = None;
    }
    outcome
}

/// Whether this replica samples the service: it holds (or now takes) the service's sampler lease.
/// One replica at a time does, so several replicas read the sink tables no more than one would.
async fn lead(lease: &mut Option<Lease>, service: &str, store: &Store) -> bool {
    if let Some(held) = lease {
        if held.held().await {
            return true;
        }
        tracing::warn!(service, "row sampler lease lost with its database session");
        *lease = None;
    }
    let id = match registered(store, service) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(service, error = %e, "cannot take the row sampler lease");
            return false;
        }
    };
    match Lease::try_take(store, LeaseKind::RowSampler, id).await {
        Ok(Some(taken)) => {
            tracing::info!(service, "this replica samples the service's rows");
            *lease = Some(taken);
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(service, error = %e, "cannot take the row sampler lease");
            false
        }
    }
}

/// Sample `service` every `interval_secs` until cancelled, while this replica holds its sampler
/// lease (see [`lead`]). Only called for services with targets.
pub async fn run(
    service: ServiceConfig,
    store: Store,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let Some(targets) = service.targets.clone() else {
        return;
    };
    let interval = Duration::from_secs_f64(targets.sample.interval_secs);
    let mut sampler: Option<Sampler> = None;
    let mut lease: Option<Lease> = None;
    loop {
        // Connecting, the settle delay and the rate limit all wait: shutdown must not.
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            o = async {
                if !lead(&mut lease, &service.name, &store).await {
                    // Another replica samples this service (or the store is away).
                    sampler = None;
                    return Ok(());
                }
                attempt(&mut sampler, &service, &targets, &store, &metrics).await
            } => o,
        };
        if let Err(e) = outcome {
            tracing::warn!(service = %service.name, error = %e, "row sampler round failed; retrying next interval");
            metrics
                .row_sample_failures
                .with_label_values(&[service.name.as_str(), e.stage()])
                .inc();
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
