//! The evaluation loop: every `evaluation_interval_ms`, rebuild each service's status from the
//! set-based state in Postgres (so every replica answers the same), settle by watermarks, decide
//! the gate, and publish status and metrics.

use super::ingest::EndOffsets;
use super::status::{
    EvidenceRange, GateStatus, GateVerdict, PartitionStatus, ServiceStatus, SharedStatus,
    SideStatus,
};
use crate::config::Config;
use crate::core::canonical::CANONICAL_VERSION;
use crate::core::report::FieldCount;
use crate::gate::{
    apply_waivers, evaluate_criteria, raw_verdict, CriterionStatus, GateInputs, GateThresholds,
    Hysteresis, Waiver,
};
use crate::metrics::Metrics;
use crate::store::{evidence, read, Store, StoreError, BASELINE};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A side's partitions as status rows, and its event-time watermark.
///
/// The watermark is the minimum event time reached by the side's active partitions. A partition
/// that is caught up and has been quiet for `idle_ms` is idle and does not hold it back; when every
/// partition is idle, the watermark moves on with the clock (`now - idle_ms`), so a finished or
/// paused side never stalls settling forever.
pub fn side_watermark(
    rows: &[read::PartitionRow],
    topics: &[String],
    ends: &EndOffsets,
    now_ms: i64,
    idle_ms: i64,
) -> (Vec<PartitionStatus>, Option<i64>) {
    let ends = ends.lock().map(|m| m.clone()).unwrap_or_default();
    let mut out = Vec::with_capacity(rows.len());
    let (mut active_min, mut any_max): (Option<i64>, Option<i64>) = (None, None);
    // Progress we cannot vouch for holds the watermark back entirely: an active partition without
    // an event time yet, or one with records that nobody has consumed at all. Otherwise a key whose
    // other side sits there would settle as "missing" and fail the gate falsely.
    let mut blocked = false;
    let mut watermark_partitions = 0usize;
    for r in rows {
        let end = ends
            .get(&(r.topic.clone(), r.partition))
            .copied()
            .or(r.end_offset);
        let caught_up = end.is_none_or(|e| r.next_offset >= e);
        let quiet = r
            .last_record_at
            .is_none_or(|t| now_ms - t.timestamp_millis() >= idle_ms);
        let idle = caught_up && quiet;
        // Error (dead-letter) topics carry no event times: they never hold the watermark.
        if topics.contains(&r.topic) {
            watermark_partitions += 1;
            if !idle {
                match (active_min, r.max_event_ms) {
                    (_, None) => blocked = true,
                    (Some(a), Some(b)) => active_min = Some(a.min(b)),
                    (None, Some(b)) => active_min = Some(b),
                }
            }
            any_max = any_max.max(r.max_event_ms);
        }
        out.push(PartitionStatus {
            topic: r.topic.clone(),
            partition: r.partition,
            next_offset: r.next_offset,
            end_offset: end,
            lag: end.map(|e| (e - r.next_offset).max(0)),
            max_event_ms: r.max_event_ms,
            idle,
        });
    }
    for ((topic, partition), end) in &ends {
        let seen = rows
            .iter()
            .any(|r| &r.topic == topic && r.partition == *partition);
        if *end > 0 && !seen && topics.contains(topic) {
            blocked = true;
            out.push(PartitionStatus {
                topic: topic.clone(),
                partition: *partition,
                next_offset: 0,
                end_offset: Some(*end),
                lag: Some(*end),
                max_event_ms: None,
                idle: false,
            });
        }
    }
    let watermark = if blocked || watermark_partitions == 0 {
        None
    } else if out
        .iter()
        .filter(|p| topics.contains(&p.topic))
        .all(|p| p.idle)
    {
        Some(any_max.unwrap_or(i64::MIN).max(now_ms - idle_ms))
    } else {
        active_min
    };
    (out, watermark)
}

/// The thresholds of a service: its own, tightened by its wave's overrides.
pub fn thresholds(config: &Config, index: usize) -> GateThresholds {
    let service = &config.services[index];
    let wave = config
        .waves
        .iter()
        .find(|w| w.services.iter().any(|s| s == &service.name));
    match wave {
        Some(w) => service.gate.tightened(&w.gate),
        None => service.gate.clone(),
    }
}

/// Criteria and raw verdict for one evaluation, waivers applied (hysteresis comes after).
pub fn decide(inputs: &GateInputs, thresholds: &GateThresholds, waivers: &[Waiver]) -> GateStatus {
    let now = Utc::now();
    let mut criteria = evaluate_criteria(inputs, thresholds);
    apply_waivers(&mut criteria, waivers, now);
    let raw = raw_verdict(&criteria);
    let wanted = |status: CriterionStatus| criteria.iter().filter(move |c| c.status == status);
    let reasons: Vec<String> = match raw {
        GateVerdict::Fail => wanted(CriterionStatus::Fail)
            .map(|c| format!("{}: {}", c.name, c.explanation))
            .collect(),
        GateVerdict::Pending => wanted(CriterionStatus::Pending)
            .map(|c| format!("{}: {}", c.name, c.explanation))
            .collect(),
        GateVerdict::Warn => wanted(CriterionStatus::Warn)
            .chain(wanted(CriterionStatus::Waived))
            .map(|c| format!("{}: {}", c.name, c.explanation))
            .collect(),
        GateVerdict::Pass => vec!["every criterion passes".to_owned()],
    };
    GateStatus {
        verdict: raw,
        raw_verdict: raw,
        reasons,
        criteria,
        evaluated_at: Some(now),
        canonical_version: CANONICAL_VERSION.to_owned(),
        thresholds: serde_json::to_value(thresholds).unwrap_or_default(),
        ..GateStatus::default()
    }
}

/// Evaluate one service from the store.
pub async fn evaluate_service(
    config: &Config,
    index: usize,
    store: &Store,
    ends: &EndOffsets,
) -> Result<ServiceStatus, StoreError> {
    let service = &config.services[index];
    let id = store.service_id(&service.name).unwrap_or(0);
    let pool = &store.pool;
    let now_ms = Utc::now().timestamp_millis();
    let idle_ms = config.serve.idle_partition_ms as i64;
    let [b_counts, c_counts] = read::side_counts(pool, id).await?;
    let rows = read::partitions(pool, id).await?;
    let (b_rows, c_rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.side == BASELINE);
    let mut s = ServiceStatus {
        service: service.name.clone(),
        wave: service.wave,
        evaluated_at: Some(Utc::now()),
        ..Default::default()
    };
    for (counts, rows, topics, side) in [
        (b_counts, &b_rows, &service.baseline_topics, &mut s.baseline),
        (
            c_counts,
            &c_rows,
            &service.candidate_topics,
            &mut s.candidate,
        ),
    ] {
        counts.fill(side);
        let (partitions, watermark) = side_watermark(rows, topics, ends, now_ms, idle_ms);
        side.lag = partitions.iter().filter_map(|p| p.lag).sum();
        side.partitions = partitions;
        side.watermark_ms = watermark;
    }
    let grace_ms = (service.grace_seconds as i64).saturating_mul(1000);
    s.settled_until_ms = match (s.baseline.watermark_ms, s.candidate.watermark_ms) {
        (Some(b), Some(c)) => Some(b.min(c).saturating_sub(grace_ms)),
        _ => None,
    };
    s.keys = read::key_summary(pool, id, s.settled_until_ms).await?;
    let window_ms = (service.window_seconds as i64).saturating_mul(1000);
    let windows = read::window_counts(pool, id, window_ms, s.settled_until_ms).await?;
    s.windows_settled_matched = windows.settled_matched;
    s.windows_settled_unmatched = windows.settled_unmatched;
    s.last_settled_window = windows.last_settled;
    if service.targets.is_some() {
        s.rows = crate::store::rows::latest_summary(pool, id).await?;
    }
    let stalled = |rows: &[read::PartitionRow], side: &SideStatus| {
        rows.iter()
            .zip(&side.partitions)
            .filter(|(_, p)| p.lag.unwrap_or(0) > 0)
            .filter_map(|(r, _)| r.last_record_at.map(|t| now_ms - t.timestamp_millis()))
            .max()
    };
    let settled_counts = evidence::settled_counts(pool, id, window_ms, s.settled_until_ms).await?;
    let observed_since = evidence::observed_since_ms(pool, id).await?;
    let inputs = GateInputs {
        baseline_events: s.baseline.events,
        candidate_events: s.candidate.events,
        observation_ms: s
            .settled_until_ms
            .zip(observed_since)
            .map(|(u, f)| (u - f).max(0)),
        settled_until_ms: s.settled_until_ms,
        settled_counts,
        missing_in_candidate: s.keys.settled.missing_in_candidate,
        extra_in_candidate: s.keys.settled.extra_in_candidate,
        mismatched: s.keys.settled.mismatched,
        rows: s.rows.as_ref().map(|r| {
            (
                r.rows_sampled,
                r.diff_ratio_upper_95,
                r.extra_differing.total(),
            )
        }),
        errors: service.error_topics.as_ref().map(|_| {
            (
                s.baseline.errors,
                s.baseline.records,
                s.candidate.errors,
                s.candidate.records,
            )
        }),
        delay_regression_p95_ms: evidence::delay_regression_p95(pool, id).await?,
        stalled_for_ms: [
            stalled(&b_rows, &s.baseline),
            stalled(&c_rows, &s.candidate),
        ],
    };
    if s.keys.settled.mismatched > 0 {
        s.top_fields = top_fields(pool, id, s.settled_until_ms).await?;
    }
    let waivers = evidence::active_waivers(pool, &service.name).await?;
    let mut gate = decide(&inputs, &thresholds(config, index), &waivers);
    gate.config_digest = config
        .service_digests
        .get(index)
        .cloned()
        .unwrap_or_default();
    gate.evidence = EvidenceRange {
        first_event_ms: observed_since,
        settled_until_ms: s.settled_until_ms,
        baseline_offsets: offsets(&b_rows),
        candidate_offsets: offsets(&c_rows),
    };
    s.gate = gate;
    Ok(s)
}

/// The 20 fields that differ in most settled mismatching keys (among the first 1,000 such keys).
async fn top_fields(
    pool: &sqlx::PgPool,
    id: i16,
    settled_until_ms: Option<i64>,
) -> Result<Vec<FieldCount>, StoreError> {
    let page = read::mismatches(
        pool,
        id,
        Some(crate::core::compare::MismatchKind::Mismatched),
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

fn publish_metrics(
    metrics: &Metrics,
    s: &ServiceStatus,
    published_fields: &mut HashMap<String, Vec<String>>,
) {
    let name = s.service.as_str();
    let delay = s
        .gate
        .criteria
        .iter()
        .find(|c| c.name == "latency_guardrail")
        .and_then(|c| c.observed.get("p95_ms"))
        .and_then(serde_json::Value::as_f64);
    if let Some(ms) = delay {
        metrics
            .candidate_delay_regression_seconds
            .with_label_values(&[name])
            .set(ms / 1000.0);
    }
    // Fields no longer among the top ones must disappear, not linger with an old value.
    let current: Vec<String> = s.top_fields.iter().map(|f| f.pointer.clone()).collect();
    for old in published_fields
        .get(name)
        .into_iter()
        .flatten()
        .filter(|p| !current.contains(p))
    {
        let _ = metrics
            .field_mismatched_keys
            .remove_label_values(&[name, old.as_str()]);
    }
    for f in &s.top_fields {
        metrics
            .field_mismatched_keys
            .with_label_values(&[name, f.pointer.as_str()])
            .set(f.mismatched_keys as i64);
    }
    published_fields.insert(name.to_owned(), current);
    for (state, counts) in [("settled", s.keys.settled), ("in_flight", s.keys.in_flight)] {
        for (kind, n) in [
            ("missing_in_candidate", counts.missing_in_candidate),
            ("extra_in_candidate", counts.extra_in_candidate),
            ("mismatched", counts.mismatched),
        ] {
            metrics
                .mismatched_keys
                .with_label_values(&[name, kind, state])
                .set(n as i64);
        }
    }
    metrics
        .windows_settled
        .with_label_values(&[name, "matched"])
        .set(s.windows_settled_matched as i64);
    metrics
        .windows_settled
        .with_label_values(&[name, "unmatched"])
        .set(s.windows_settled_unmatched as i64);
    for (side_name, side) in [("baseline", &s.baseline), ("candidate", &s.candidate)] {
        publish_side(metrics, name, side_name, side);
    }
    for verdict in [
        GateVerdict::Pass,
        GateVerdict::Warn,
        GateVerdict::Fail,
        GateVerdict::Pending,
    ] {
        let label = verdict.as_str();
        metrics
            .gate_verdict
            .with_label_values(&[name, label])
            .set(i64::from(s.gate.verdict == verdict));
    }
    if let Some(r) = &s.rows {
        super::rows_gate::publish(metrics, name, r);
    }
}

fn publish_side(metrics: &Metrics, service: &str, side_name: &str, side: &SideStatus) {
    for p in &side.partitions {
        let partition = p.partition.to_string();
        metrics
            .consumer_lag
            .with_label_values(&[service, side_name, p.topic.as_str(), partition.as_str()])
            .set(p.lag.unwrap_or(0));
    }
    if let Some(w) = side.watermark_ms {
        metrics
            .watermark_seconds
            .with_label_values(&[service, side_name])
            .set(w as f64 / 1000.0);
    }
}

/// Evaluation rounds take at most one part in this many of the wall clock (see `run`).
const EVALUATION_SHARE: u32 = 4;

/// Run until cancelled.
pub async fn run(
    config: Arc<Config>,
    store: Store,
    status: SharedStatus,
    metrics: Metrics,
    ends: EndOffsets,
    cancel: CancellationToken,
) {
    let interval = Duration::from_millis(config.serve.evaluation_interval_ms.max(50));
    let topics: Vec<String> = config.all_topics();
    let client = match super::ingest::consumer(&config) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::error!(error = %e, "cannot create the metadata client; lag will not be reported");
            None
        }
    };
    let mut hysteresis: HashMap<String, Hysteresis> = HashMap::new();
    let mut published_fields: HashMap<String, Vec<String>> = HashMap::new();
    let mut last_recorded: HashMap<String, (GateVerdict, Vec<CriterionStatus>)> = HashMap::new();
    loop {
        if let Some(client) = client.clone() {
            let topics = topics.clone();
            let fetched = tokio::task::spawn_blocking(move || {
                super::ingest::fetch_end_offsets(&client, &topics)
            })
            .await;
            let up = matches!(fetched, Ok(Ok(_)));
            match fetched {
                Ok(Ok(fresh)) => {
                    if let Ok(mut shared) = ends.lock() {
                        shared.extend(fresh);
                    }
                }
                Ok(Err(e)) => {
                    status.write(|s| s.readiness.last_error = Some(format!("kafka: {e}")))
                }
                Err(e) => tracing::warn!(error = %e, "end-offset task failed"),
            }
            status.write(|s| s.readiness.broker = up);
        }
        let round = std::time::Instant::now();
        let database = store.ping().await;
        metrics
            .up
            .with_label_values(&["database"])
            .set(i64::from(database.is_ok()));
        let broker = status.read(|s| s.readiness.broker);
        metrics
            .up
            .with_label_values(&["broker"])
            .set(i64::from(broker));
        status.write(|s| {
            s.readiness.database = database.is_ok();
            if let Err(e) = &database {
                s.readiness.last_error = Some(e.to_string());
            }
        });
        if database.is_ok() {
            for index in 0..config.services.len() {
                match evaluate_service(&config, index, &store, &ends).await {
                    Ok(mut s) => {
                        let needed = thresholds(&config, index).consecutive_passes;
                        let h = hysteresis.entry(s.service.clone()).or_default();
                        let (served, held) = h.observe(s.gate.raw_verdict, needed);
                        s.gate.verdict = served;
                        if let Some(why) = held {
                            s.gate.reasons.insert(0, why);
                        }
                        let state = (
                            served,
                            s.gate.criteria.iter().map(|c| c.status).collect::<Vec<_>>(),
                        );
                        if last_recorded.get(&s.service) != Some(&state) {
                            let previous = last_recorded.get(&s.service).map(|p| p.0);
                            if previous.is_some_and(|p| p != served) {
                                tracing::info!(service = %s.service, from = previous.map_or("none", |p| p.as_str()), to = served.as_str(), reasons = ?s.gate.reasons, "gate verdict changed");
                                metrics
                                    .gate_transitions
                                    .with_label_values(&[s.service.as_str(), served.as_str()])
                                    .inc();
                            }
                            match evidence::insert_history(&store.pool, &s.service, &s.gate).await {
                                Ok(()) => {
                                    last_recorded.insert(s.service.clone(), state);
                                }
                                Err(e) => {
                                    tracing::warn!(service = %s.service, error = %e, "cannot record gate history")
                                }
                            }
                        }
                        publish_metrics(&metrics, &s, &mut published_fields);
                        status.write(|st| st.services.insert(s.service.clone(), s));
                    }
                    Err(e) => {
                        tracing::warn!(service = %config.services[index].name, error = %e, "evaluation failed")
                    }
                }
            }
        }
        // Evaluation is set-based over the whole state and runs on the cores that also ingest and
        // checkpoint: pace it so that it takes at most 1/EVALUATION_SHARE of the time, however big
        // the state grows (a verdict is then at most a few rounds old).
        let pause = interval.max(round.elapsed() * (EVALUATION_SHARE - 1));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(
        topic: &str,
        partition: i32,
        next: i64,
        max_event_ms: Option<i64>,
        last_ms: Option<i64>,
    ) -> read::PartitionRow {
        read::PartitionRow {
            topic: topic.into(),
            partition,
            side: BASELINE,
            next_offset: next,
            end_offset: None,
            max_event_ms,
            last_record_at: last_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        }
    }

    fn ends(entries: &[(&str, i32, i64)]) -> EndOffsets {
        let map = entries
            .iter()
            .map(|(t, p, e)| (((*t).to_owned(), *p), *e))
            .collect();
        Arc::new(std::sync::Mutex::new(map))
    }

    const NOW: i64 = 1_000_000;
    const IDLE: i64 = 1_000;

    #[test]
    fn the_slowest_active_partition_sets_the_watermark() {
        let topics = vec!["t".to_owned()];
        let rows = [
            row("t", 0, 5, Some(500), Some(NOW)),
            row("t", 1, 3, Some(300), Some(NOW)),
        ];
        let (_, w) = side_watermark(
            &rows,
            &topics,
            &ends(&[("t", 0, 9), ("t", 1, 9)]),
            NOW,
            IDLE,
        );
        assert_eq!(w, Some(300));
    }

    #[test]
    fn unconsumed_partitions_and_unknown_event_times_hold_it_back() {
        let topics = vec!["t".to_owned()];
        let rows = [row("t", 0, 5, Some(500), Some(NOW))];
        // Partition 1 has records nobody consumed yet.
        let (parts, w) = side_watermark(
            &rows,
            &topics,
            &ends(&[("t", 0, 5), ("t", 1, 4)]),
            NOW,
            IDLE,
        );
        assert_eq!(w, None);
        assert_eq!(parts.len(), 2);
        // An active partition that has no event time yet.
        let rows = [
            row("t", 0, 5, Some(500), Some(NOW)),
            row("t", 1, 2, None, Some(NOW)),
        ];
        let (_, w) = side_watermark(
            &rows,
            &topics,
            &ends(&[("t", 0, 9), ("t", 1, 9)]),
            NOW,
            IDLE,
        );
        assert_eq!(w, None);
    }

    #[test]
    fn idle_partitions_and_error_topics_do_not_stall_it() {
        let topics = vec!["t".to_owned()];
        let rows = [
            row("t", 0, 5, Some(500), Some(NOW - 5 * IDLE)),
            row("t", 1, 9, Some(800), Some(NOW)),
            row("t.dlq", 0, 1, None, Some(NOW)),
        ];
        let (_, w) = side_watermark(
            &rows,
            &topics,
            &ends(&[("t", 0, 5), ("t", 1, 20), ("t.dlq", 0, 7)]),
            NOW,
            IDLE,
        );
        assert_eq!(w, Some(800));
        // Everything caught up and quiet: the watermark moves on with the clock.
        let rows = [row("t", 0, 5, Some(500), Some(NOW - 5 * IDLE))];
        let (_, w) = side_watermark(&rows, &topics, &ends(&[("t", 0, 5)]), NOW, IDLE);
        assert_eq!(w, Some(NOW - IDLE));
    }
}
