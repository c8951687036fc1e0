//! The evaluation loop: every `evaluation_interval_ms`, settle which services this replica
//! evaluates (`owner`: one replica per service at a time), rebuild each of those services' status
//! from the set-based state in Postgres, settle by watermarks, decide the gate with the stored
//! hysteresis, and store the verdict (`store::served`); then read every stored verdict back into
//! the status cache and the metrics, so every replica publishes and serves the same.

pub mod owner;
pub mod publish;
pub mod verdict;
pub mod watermark;

use crate::config::model::CompareFrom;
use crate::config::Config;
use crate::gate::{DelayEvidence, ErrorEvidence, GateInputs, Hysteresis, RowEvidence};
use crate::metrics::Metrics;
use crate::model::status::{
    ClusterReadiness, EvidenceRange, Fault, IngestionFaults, LaneRef, ServiceStatus, SharedStatus,
    SideStatus,
};
use crate::model::FIRST_EPOCH;
use crate::model::{FieldCount, Side};
use crate::serve::evaluate::publish::publish_metrics;
use crate::serve::evaluate::verdict::{decide, thresholds};
use crate::serve::evaluate::watermark::{auto_start, observed_span, side_watermark, ObservedSpan};
use crate::serve::ingest::cluster::{ClusterHealth, HealthContext};
use crate::serve::progress::backlog::{evaluation_pause, resume_at, Positions};
use crate::serve::progress::EndOffsets;
use crate::serve::progress::Heartbeats;
use crate::store::served::{Recorded, StoredVerdict};
use crate::store::{evidence, read, served, Store, StoreError, BASELINE};
use chrono::Utc;
use rdkafka::consumer::BaseConsumer;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Evaluate one service from the store.
pub async fn evaluate_service(
    config: &Config,
    index: usize,
    store: &Store,
    ends: [&EndOffsets; 2],
    faults: &IngestionFaults,
) -> Result<ServiceStatus, StoreError> {
    let service = &config.services[index];
    let id = store
        .service_id(&service.name)
        .ok_or_else(|| StoreError::UnknownService(service.name.clone()))?;
    let pool = &store.pool;
    let now_ms = Utc::now().timestamp_millis();
    let idle_ms = config.serve.idle_partition_ms as i64;
    let rows = read::partitions(pool, id).await?;
    let (b_rows, c_rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.side == BASELINE);
    let mut s = ServiceStatus {
        service: service.name.clone(),
        wave: service.wave,
        evaluated_at: Some(Utc::now()),
        ..Default::default()
    };
    for (rows, topics, side, ends) in [
        (
            &b_rows,
            &service.baseline_topics,
            &mut s.baseline,
            ends[Side::Baseline.index()],
        ),
        (
            &c_rows,
            &service.candidate_topics,
            &mut s.candidate,
            ends[Side::Candidate.index()],
        ),
    ] {
        let (partitions, watermark) = side_watermark(rows, topics, ends, now_ms, idle_ms);
        // Unknown if any partition's is (or the side has none the broker knows of).
        side.lag = partitions
            .iter()
            .map(|p| p.lag)
            .sum::<Option<i64>>()
            .filter(|_| !partitions.is_empty());
        side.partitions = partitions;
        side.watermark_ms = watermark;
    }
    // Every count, key and window below is the current epoch's (`store::epochs`).
    let compare_from_ms = service.compare_from.start_ms();
    let (mut epoch, mut at) =
        crate::store::epochs::current(pool, id, &service.name, compare_from_ms).await?;
    let undecided = service.compare_from == CompareFrom::Auto && epoch.id == FIRST_EPOCH;
    let mut auto_wait = None;
    if undecided {
        let watermarks = [s.baseline.watermark_ms, s.candidate.watermark_ms];
        match auto_start(watermarks, &b_rows, &c_rows, service.start_margin_ms()) {
            Some(start) if start <= now_ms => {
                (epoch, at) = start_auto_epoch(service, id, store, start, now_ms).await?;
            }
            Some(start) => {
                auto_wait = Some(format!(
                    "compare_from = \"auto\": the comparison starts at {}",
                    crate::core::range::format_instant_ms(start).unwrap_or_else(|| format!("{start} ms"))
                ))
            }
            None => {
                auto_wait = Some(
                    "compare_from = \"auto\": waiting for events on every partition of both sides to decide where the comparison starts".into(),
                )
            }
        }
    }
    let epoch_start_ms = epoch.scope().starts_at_ms;
    s.epoch = Some(epoch);
    let [b_counts, c_counts] = read::side_counts(pool, at).await?;
    s.baseline.counts = b_counts;
    s.candidate.counts = c_counts;
    let grace_ms = (service.grace_seconds as i64).saturating_mul(1000);
    s.settled_until_ms = match (s.baseline.watermark_ms, s.candidate.watermark_ms) {
        (Some(b), Some(c)) => Some(b.min(c).saturating_sub(grace_ms)),
        _ => None,
    };
    // The round's key work: the keys changed since the previous round (`store::parity`).
    crate::store::parity::refresh(pool, at).await?;
    s.keys = crate::store::parity::key_summary(pool, at, s.settled_until_ms).await?;
    let window_ms = service.window_ms();
    let windows = read::window_counts(pool, at, window_ms, s.settled_until_ms).await?;
    s.windows_settled_matched = windows.settled_matched;
    s.windows_settled_unmatched = windows.settled_unmatched;
    s.last_settled_window = windows.last_settled;
    if service.targets.is_some() {
        s.rows = crate::store::rows::latest_summary(pool, id).await?;
    }
    // Records wait where lag is positive or unknown (a broker that cannot be read proves nothing);
    // a side stalls from the last progress of such a partition, or from the earliest fault this
    // process knows of (checkpoints failing, a topic missing, a lane blocked: `IngestionFaults`).
    let side_faults = [
        faults.of_side(index, Side::Baseline, &service.baseline_topics),
        faults.of_side(index, Side::Candidate, &service.candidate_topics),
    ];
    let stalled = |rows: &[read::PartitionRow], side: &SideStatus, fault: &Option<(_, _)>| {
        let waiting = rows
            .iter()
            .zip(&side.partitions)
            .filter(|(_, p)| p.lag.is_none_or(|lag| lag > 0))
            .filter_map(|(r, _)| r.last_record_at.map(|t| now_ms - t.timestamp_millis()))
            .max();
        let faulted = fault
            .as_ref()
            .map(|(since, _): &(chrono::DateTime<Utc>, Vec<String>)| {
                (now_ms - since.timestamp_millis()).max(0)
            });
        waiting.max(faulted)
    };
    let settled_counts = evidence::settled_counts(pool, at, window_ms, s.settled_until_ms).await?;
    // The partitions' event-time bounds span every epoch; this one's starts at its start.
    let observed = observed_span(&b_rows, &c_rows).map(|span| ObservedSpan {
        since_ms: epoch_start_ms.map_or(span.since_ms, |start| span.since_ms.max(start)),
        ..span
    });
    let inputs = GateInputs {
        baseline_events: s.baseline.counts.events,
        candidate_events: s.candidate.counts.events,
        // Event time covered by both sides and settled; never the idle clock (the watermark of a
        // quiet side follows the clock, the events do not).
        observation_ms: s
            .settled_until_ms
            .zip(observed)
            .map(|(settled, span)| (settled.min(span.until_ms) - span.since_ms).max(0)),
        settled_until_ms: s.settled_until_ms,
        settled_counts,
        missing_in_candidate: s.keys.settled.missing_in_candidate,
        extra_in_candidate: s.keys.settled.extra_in_candidate,
        mismatched: s.keys.settled.mismatched,
        unverifiable_events: [&s.baseline, &s.candidate].map(|side| {
            side.counts
                .flagged
                .get(crate::store::batch::BEYOND_HORIZON)
                .copied()
                .unwrap_or(0)
        }),
        rows: s.rows.as_ref().map(|r| RowEvidence {
            rows_sampled: r.rows_sampled,
            diff_ratio_upper_95: r.diff_ratio_upper_95,
            flagged_differing: r.extra_differing.total(),
        }),
        errors: service.error_topics.as_ref().map(|_| ErrorEvidence {
            baseline_errors: s.baseline.counts.errors,
            baseline_records: s.baseline.counts.records,
            candidate_errors: s.candidate.counts.errors,
            candidate_records: s.candidate.counts.records,
        }),
        delay_regression: evidence::delay_regression_p95(pool, id, epoch_start_ms)
            .await?
            .map(|(p95_ms, samples)| DelayEvidence { p95_ms, samples }),
        stalled_for_ms: [
            stalled(&b_rows, &s.baseline, &side_faults[0]),
            stalled(&c_rows, &s.candidate, &side_faults[1]),
        ],
        ingestion_faults: side_faults.map(|f| f.map(|(_, reasons)| reasons).unwrap_or_default()),
    };
    if s.keys.settled.mismatched > 0 {
        s.top_fields = top_fields(pool, at, s.settled_until_ms).await?;
    }
    let waivers = crate::store::audit::active_waivers(pool, &service.name, Utc::now()).await?;
    let mut gate = decide(&inputs, &thresholds(config, index), &waivers);
    if let Some(wait) = auto_wait {
        // Nothing is judged before the start is decided: what was counted so far is history.
        gate.verdict = crate::model::Verdict::Pending;
        gate.reasons.insert(0, wait);
    }
    gate.config_digest = config.digest(index).to_owned();
    gate.evidence = EvidenceRange {
        first_event_ms: observed.map(|span| span.since_ms),
        settled_until_ms: s.settled_until_ms,
        baseline_offsets: offsets(&b_rows),
        candidate_offsets: offsets(&c_rows),
    };
    s.gate = gate;
    Ok(s)
}

/// `compare_from = "auto"` decided: the first compared epoch starts at `start`, rebuilt from the
/// events already counted (everything before it becomes `before_start`).
async fn start_auto_epoch(
    service: &crate::config::model::ServiceConfig,
    id: i16,
    store: &Store,
    start: i64,
    now_ms: i64,
) -> Result<(crate::model::Epoch, crate::store::EpochKey), StoreError> {
    let reason = format!(
        "compare_from = \"auto\": the later side's first event plus start_margin_seconds ({} s)",
        service.start_margin_ms() / 1000
    );
    let new = crate::store::epochs::NewEpoch {
        service_id: id,
        service: &service.name,
        starts_at_ms: start,
        reason: &reason,
        created_by: "paritygate",
        compare_from_ms: None,
        window_ms: service.window_ms(),
        now_ms,
    };
    let epoch = crate::store::epochs::start(&store.pool, &new)
        .await
        .map_err(|e| match e {
            crate::store::epochs::StartRefused::Store(e) => e,
            refused => StoreError::Invalid(format!("compare_from = \"auto\" start: {refused}")),
        })?;
    tracing::info!(service = %service.name, epoch = epoch.id, starts_at = ?epoch.starts_at,
        "compare_from = \"auto\" decided: the comparison starts at the later side's first event plus the margin");
    store.remember_scopes([(id, epoch.scope())]);
    let key = crate::store::EpochKey {
        service_id: id,
        epoch: epoch.id,
    };
    Ok((epoch, key))
}

/// The 20 fields that differ in most settled mismatching keys (among the first 1,000 such keys).
async fn top_fields(
    pool: &sqlx::PgPool,
    at: crate::store::EpochKey,
    settled_until_ms: Option<i64>,
) -> Result<Vec<FieldCount>, StoreError> {
    let page = crate::store::parity::mismatches(
        pool,
        at,
        Some(crate::model::MismatchKind::Mismatched),
        settled_until_ms,
        1000,
        None,
    )
    .await?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for item in page
        .items
        .iter()
        .filter(|i| i.state == read::MismatchState::Settled)
    {
        for f in &item.fields {
            *counts.entry(f.pointer.clone()).or_default() += 1;
        }
    }
    let mut fields: Vec<FieldCount> = counts
        .into_iter()
        .map(|(pointer, mismatched_keys)| FieldCount {
            pointer,
            mismatched_keys,
        })
        .collect();
    fields.sort_by(|a, b| {
        b.mismatched_keys
            .cmp(&a.mismatched_keys)
            .then_with(|| a.pointer.cmp(&b.pointer))
    });
    fields.truncate(20);
    Ok(fields)
}

fn offsets(rows: &[read::PartitionRow]) -> std::collections::BTreeMap<String, i64> {
    rows.iter()
        .map(|r| (format!("{}/{}", r.topic, r.partition), r.next_offset))
        .collect()
}

/// A lane whose worker showed no sign of life for this long is blocked (its heartbeat moves at
/// least every 50 ms while idle; a checkpoint of a full batch takes about a second).
fn lane_stall_after(config: &Config) -> Duration {
    Duration::from_millis(config.serve.checkpoint_interval_ms.saturating_mul(5))
        .max(Duration::from_secs(10))
}

/// Record which lanes are blocked, publish every fault as a readiness reason, and which sides
/// are not being counted as a metric.
fn note_stuck_lanes(
    config: &Config,
    status: &SharedStatus,
    clusters: &[ClusterWatch],
    metrics: &Metrics,
) {
    let now = Utc::now();
    let after = lane_stall_after(config);
    let stale: Vec<(LaneRef, _)> = clusters
        .iter()
        .flat_map(|c| {
            c.heartbeats
                .stale(now, after)
                .into_iter()
                .map(|(index, last)| {
                    let lane = LaneRef {
                        sides: c.config.sides().to_vec(),
                        index,
                    };
                    (lane, last)
                })
        })
        .collect();
    let names: Vec<String> = config.service_names();
    status.write(|s| {
        s.faults.stuck_lanes.retain(|lane, _| stale.iter().any(|(l, _)| l == lane));
        for (lane, last) in stale {
            s.faults.stuck_lanes.entry(lane).or_insert_with(|| Fault {
                since: last,
                detail: format!(
                    "its worker has been blocked for over {} s (a checkpoint that does not commit, or the store unreachable)",
                    after.as_secs()
                ),
            });
        }
        s.readiness.stalled = s.faults.describe(&names);
    });
    let faults = status.read(|s| s.faults.clone());
    for (index, service) in config.services.iter().enumerate() {
        for (side, topics) in [
            (Side::Baseline, &service.baseline_topics),
            (Side::Candidate, &service.candidate_topics),
        ] {
            let stalled = faults.of_side(index, side, topics).is_some();
            metrics
                .ingestion_stalled
                .with_label_values(&[service.name.as_str(), side.as_str()])
                .set(i64::from(stalled));
        }
    }
    for line in status.read(|s| s.readiness.stalled.clone()) {
        tracing::warn!(fault = %line, "ingestion is stalled");
    }
}

/// Each side's cluster in readiness (with one `[kafka]` both sides name the same cluster), and
/// `paritygate_dependency_up{dependency="broker"}`: 1 while every cluster answers.
fn note_clusters(
    status: &SharedStatus,
    metrics: &Metrics,
    answers: &[(&ClusterWatch, Option<String>)],
) {
    let up = answers.iter().all(|(_, error)| error.is_none());
    status.write(|s| {
        for (cluster, error) in answers {
            if let Some(e) = error {
                tracing::warn!(cluster = cluster.name(), error = %e, "kafka is not reachable");
                s.readiness.last_error = Some(format!("kafka ({}): {e}", cluster.name()));
            }
            for side in cluster.config.sides() {
                s.readiness.kafka.insert(
                    side.as_str().to_owned(),
                    ClusterReadiness {
                        brokers: cluster.config.kafka.brokers.clone(),
                        reachable: error.is_none(),
                        error: error.clone(),
                    },
                );
            }
        }
        s.readiness.broker = up;
    });
    metrics.up.with_label_values(&["broker"]).set(i64::from(up));
}

/// Record the configured topics the brokers do not know (and forget those that came back).
/// `missing`: (side, topic, error) from every cluster that answered; a cluster that did not answer
/// keeps what it last said.
fn note_missing_topics(
    status: &SharedStatus,
    answered: &[Side],
    missing: Vec<(Side, String, String)>,
) {
    let now = Utc::now();
    status.write(|s| {
        s.faults.missing_topics.retain(|(side, topic), _| {
            !answered.contains(side) || missing.iter().any(|(sd, t, _)| sd == side && t == topic)
        });
        for (side, topic, error) in missing {
            let fault = s
                .faults
                .missing_topics
                .entry((side, topic))
                .or_insert(Fault {
                    since: now,
                    detail: String::new(),
                });
            fault.detail = error;
        }
    });
}

/// How often a pause checks whether the backlog is gone or a later checkpoint moved its end.
const WAKE_POLL: Duration = Duration::from_millis(100);

/// The evaluation loop and what it reads: the store, the end offsets it fetches for everyone,
/// what the checkpointers stored (pacing) and the lanes' heartbeats (a blocked lane).
#[derive(Debug)]
pub struct Evaluator {
    pub config: Arc<Config>,
    pub store: Store,
    pub status: SharedStatus,
    pub metrics: Metrics,
    /// One per consumed cluster (`Config::clusters`).
    pub clusters: Vec<ClusterWatch>,
    /// This replica's name (`evaluated_by`).
    pub replica: String,
}

/// What the evaluator watches of one cluster's consumption.
#[derive(Debug, Clone)]
pub struct ClusterWatch {
    /// The config as this cluster's clients see it (`Config::on_cluster`).
    pub config: Arc<Config>,
    /// Every topic read from this cluster (`Config::all_topics` of the view), whose end offsets
    /// the evaluator fetches each round.
    pub topics: Arc<[String]>,
    /// End offsets the evaluator fetches from this cluster.
    pub ends: EndOffsets,
    /// What this cluster's checkpointers stored (pacing).
    pub positions: Positions,
    /// This cluster's lanes' signs of life.
    pub heartbeats: Heartbeats,
    /// Where this cluster's Kafka clients record their errors (`/readyz` names the cause).
    pub health: ClusterHealth,
}

impl ClusterWatch {
    fn name(&self) -> &'static str {
        crate::config::cluster::name_of(self.config.sides())
    }
}

/// The end offsets of each side: those of the cluster that holds it.
fn ends_by_side(clusters: &[ClusterWatch]) -> Option<[&EndOffsets; 2]> {
    let of = |side: Side| {
        clusters
            .iter()
            .find(|c| c.config.sides().contains(&side))
            .map(|c| &c.ends)
    };
    Some([of(Side::Baseline)?, of(Side::Candidate)?])
}

/// Records the brokers hold that no checkpoint has stored yet, over every cluster.
fn backlog(clusters: &[ClusterWatch]) -> i64 {
    clusters.iter().map(|c| c.positions.backlog(&c.ends)).sum()
}

/// Fetch each cluster's end offsets (and missing topics) and note what they answered.
async fn watch_clusters(
    clusters: &[ClusterWatch],
    clients: &[Option<Arc<BaseConsumer<HealthContext>>>],
    status: &SharedStatus,
    metrics: &Metrics,
) {
    let mut answers = Vec::with_capacity(clusters.len());
    let (mut answered, mut missing) = (Vec::new(), Vec::new());
    for (cluster, client) in clusters.iter().zip(clients) {
        let Some(client) = client.clone() else {
            cluster.ends.mark_stale();
            continue;
        };
        let topics = cluster.topics.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let fetched = crate::serve::ingest::fetch_end_offsets(&client, &topics);
            if fetched.is_err() {
                // The cause arrives as an error event: serve the client's queue for it.
                let _ = client.poll(Duration::from_millis(200));
            }
            fetched
        })
        .await;
        let cause = cluster.health.take();
        let error = match fetched {
            Ok(Ok(fresh)) => {
                cluster.ends.replace(fresh.ends);
                for (topic, error) in fresh.missing {
                    if let Some(side) = cluster.config.side_of(&topic) {
                        missing.push((side, topic, error));
                    }
                }
                answered.extend_from_slice(cluster.config.sides());
                None
            }
            Ok(Err(e)) => {
                cluster.ends.mark_stale();
                Some(cause.unwrap_or_else(|| crate::serve::ingest::cluster::explain(&e)))
            }
            Err(e) => {
                cluster.ends.mark_stale();
                tracing::warn!(error = %e, "end-offset task failed");
                Some(e.to_string())
            }
        };
        answers.push((cluster, error));
    }
    note_missing_topics(status, &answered, missing);
    note_clusters(status, metrics, &answers);
}

/// How much later than twice its cadence an evaluation may come before its verdict is stale: a
/// round's length varies with ingestion's load (a test run saw a 0.4 s cadence stretch to 1.9 s
/// on a loaded 2-core machine), and a verdict marked stale by a slow round would be a false alarm.
const STALE_SLACK: Duration = Duration::from_secs(5);

/// Evaluate service `index` (id `id`, whose lease this replica holds), continue its stored
/// hysteresis, and store the verdict with its history row when it changed (one transaction on
/// the lease session).
#[allow(clippy::too_many_arguments)]
async fn evaluate_owned(
    config: &Config,
    index: usize,
    id: i16,
    store: &Store,
    ends: [&EndOffsets; 2],
    faults: &IngestionFaults,
    ownership: &mut owner::Ownership,
    stale_after: Duration,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    let timer = metrics
        .evaluation_seconds
        .with_label_values(&[config.services[index].name.as_str()])
        .start_timer();
    let mut s = evaluate_service(config, index, store, ends, faults).await?;
    timer.observe_duration();
    // The last writer may have been another replica: its state is the one to continue.
    let stored = served::one(&store.pool, id).await?;
    let needed = thresholds(config, index).consecutive_passes;
    let mut hysteresis = stored
        .as_ref()
        .map(|v| Hysteresis::resume(v.passes_in_a_row, v.status.gate.verdict))
        .unwrap_or_default();
    let (verdict, held) = hysteresis.observe(s.gate.raw_verdict, needed);
    s.gate.verdict = verdict;
    if let Some(why) = held {
        s.gate.reasons.insert(0, why);
    }
    let evaluated_at = s.gate.evaluated_at.unwrap_or_else(Utc::now);
    s.evaluated_at = Some(evaluated_at);
    s.gate.evaluated_by = Some(ownership.replica.clone());
    s.gate.stale_after_seconds = Some(stale_after.as_secs_f64());
    let state: Recorded = (
        verdict,
        s.gate.criteria.iter().map(|c| c.status).collect::<Vec<_>>(),
    );
    let previous = stored.and_then(|v| v.recorded);
    let history = previous.as_ref() != Some(&state);
    let changed_from = previous.map(|p| p.0).filter(|p| *p != verdict);
    let service = s.service.clone();
    let reasons = s.gate.reasons.clone();
    let record = StoredVerdict {
        status: s,
        passes_in_a_row: hysteresis.passes_in_a_row(),
        recorded: Some(state),
        evaluated_at,
        evaluated_by: ownership.replica.clone(),
        stale_after_ms: i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX),
    };
    let Some(session) = ownership.session() else {
        return Ok(());
    };
    if let Err(e) = served::store_verdict(session, id, &record, history).await {
        ownership.lose();
        return Err(e);
    }
    if let Some(from) = changed_from {
        tracing::info!(service = %service, from = from.as_str(), to = verdict.as_str(), reasons = ?reasons, "gate verdict changed");
        metrics
            .gate_transitions
            .with_label_values(&[service.as_str(), verdict.as_str()])
            .inc();
    }
    Ok(())
}

/// Every stored verdict into the status cache (what the API falls back to without the database)
/// and the metrics, marked stale as of now: every replica publishes the same.
async fn refresh(
    config: &Config,
    store: &Store,
    status: &SharedStatus,
    metrics: &Metrics,
    published_fields: &mut HashMap<String, Vec<String>>,
) -> Result<(), StoreError> {
    let mut stored = served::all(&store.pool).await?;
    let now = Utc::now();
    for service in &config.services {
        let Some(mut verdict) = store
            .service_id(&service.name)
            .and_then(|id| stored.remove(&id))
        else {
            continue;
        };
        crate::gate::mark_stale(&mut verdict.status.gate, now);
        let s = verdict.status;
        metrics
            .gate_stale
            .with_label_values(&[s.service.as_str()])
            .set(i64::from(s.gate.stale));
        publish_metrics(metrics, &s, published_fields);
        status.write(|st| st.services.insert(s.service.clone(), s));
    }
    Ok(())
}

/// Run until cancelled.
pub async fn run(evaluator: Evaluator, cancel: CancellationToken) {
    let Evaluator {
        config,
        store,
        status,
        metrics,
        clusters,
        replica,
    } = evaluator;
    let Some(ends) = ends_by_side(&clusters) else {
        tracing::error!("no cluster holds one of the sides: nothing to evaluate");
        return;
    };
    let backlog_records = config.serve.checkpoint_max_records as i64;
    let interval = Duration::from_millis(config.serve.evaluation_interval_ms.max(50));
    let idle = Duration::from_millis(config.serve.idle_partition_ms);
    let clients: Vec<_> = clusters
        .iter()
        .map(|c| {
            let context = HealthContext {
                health: c.health.clone(),
            };
            match crate::serve::ingest::health_consumer(&c.config, context) {
                Ok(client) => Some(Arc::new(client)),
                Err(e) => {
                    tracing::error!(cluster = c.name(), error = %e, "cannot create the metadata client; lag will not be reported");
                    None
                }
            }
        })
        .collect();
    let mut ownership = owner::Ownership::new(replica, interval);
    let mut published_fields: HashMap<String, Vec<String>> = HashMap::new();
    // Start to start of this replica's rounds; until one is measured, a generous guess (a round
    // over a large state may take seconds, and a verdict marked stale on its first write would
    // send other replicas after a lease that is held).
    let mut cadence = interval.max(Duration::from_secs(5));
    let mut previous_round: Option<std::time::Instant> = None;
    loop {
        watch_clusters(&clusters, &clients, &status, &metrics).await;
        note_stuck_lanes(&config, &status, &clusters, &metrics);
        let round = std::time::Instant::now();
        if let Some(before) = previous_round.replace(round) {
            cadence = interval.max(round.duration_since(before));
        }
        let database = store.ping().await;
        metrics
            .up
            .with_label_values(&["database"])
            .set(i64::from(database.is_ok()));
        status.write(|s| {
            s.readiness.database = database.is_ok();
            if let Err(e) = &database {
                s.readiness.last_error = Some(e.to_string());
            }
        });
        if database.is_ok() {
            let services: Vec<(usize, i16, &str)> = config
                .services
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, store.service_id(&s.name)?, s.name.as_str())))
                .collect();
            let ids: Vec<(i16, &str)> = services.iter().map(|(_, id, n)| (*id, *n)).collect();
            let owned = match ownership.settle(&store, &ids).await {
                Ok(owned) => owned,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot settle which services this replica evaluates");
                    Default::default()
                }
            };
            metrics
                .evaluated_services
                .with_label_values(&[ownership.replica.as_str()])
                .set(owned.len() as i64);
            let faults = status.read(|s| s.faults.clone());
            let stale_after = cadence * 2 + STALE_SLACK;
            for (index, id, name) in services.iter().filter(|(_, id, _)| owned.contains(id)) {
                let evaluated = evaluate_owned(
                    &config,
                    *index,
                    *id,
                    &store,
                    ends,
                    &faults,
                    &mut ownership,
                    stale_after,
                    &metrics,
                )
                .await;
                if let Err(e) = evaluated {
                    tracing::warn!(service = %name, error = %e, "evaluation failed");
                }
            }
            if let Err(e) = refresh(&config, &store, &status, &metrics, &mut published_fields).await
            {
                tracing::warn!(error = %e, "cannot read the stored verdicts");
            }
        }
        let behind = backlog(&clusters) > backlog_records;
        let ended = std::time::Instant::now();
        let took = ended.duration_since(round);
        let paced = ended + evaluation_pause(interval, took, behind);
        // Never sooner than the interval or the round's own length (evaluation stays under half
        // the wall clock whatever the wake-ups below).
        let earliest = ended + interval.max(took);
        tracing::debug!(
            round_ms = took.as_millis() as u64,
            behind,
            pause_ms = paced.duration_since(ended).as_millis() as u64,
            "evaluation round"
        );
        loop {
            let stored = clusters
                .iter()
                .filter_map(|c| c.positions.last_stored_since(round))
                .max();
            let resume = resume_at(paced, earliest, stored, idle);
            let now = std::time::Instant::now();
            if now >= resume
                // Caught up: evaluate now, so a verdict follows the end of a backlog promptly.
                || (behind && backlog(&clusters) <= backlog_records)
            {
                break;
            }
            let step = resume.duration_since(now).min(WAKE_POLL);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(step) => {}
            }
        }
    }
}
