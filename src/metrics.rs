//! Every Prometheus metric paritygate exports: names, help, units and labels live here and only here.
//!
//! Labels are bounded: `service` and `side` come from the config, `operation` from a fixed
//! vocabulary, `reason`, `kind` and `stage` from fixed enums, `topic`/`partition` from the consumed
//! topics, `wave` from the configured wave ids.
//! Never a key, an offset or free text.

use crate::core::event::Reject;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// All metrics, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Records consumed and routed, per service/side/operation (duplicates included).
    pub records: IntCounterVec,
    /// Distinct events after deduplication.
    pub events: IntCounterVec,
    /// At-least-once duplicates (records that were already known events).
    pub duplicates: IntCounterVec,
    /// Messages that could not be compared, per reason.
    pub unparseable: IntCounterVec,
    /// Records skipped on purpose, by reason (`transaction_marker`, `update_before_dropped`,
    /// `debezium_tombstone`, `before_start`: before the service's `compare_from`).
    pub skipped: IntCounterVec,
    /// Rows deleted by retention (`[store] retention_days`), by table.
    pub pruned_rows: IntCounterVec,
    /// Times a partition's log went back (topic recreated or truncated), per service and side.
    pub log_resets: IntCounterVec,
    /// Mismatching keys by kind and state (settled drift vs in flight).
    pub mismatched_keys: IntGaugeVec,
    /// Settled windows whose counts and fingerprints match, or not.
    pub windows_settled: IntGaugeVec,
    /// Consumer lag per side, topic and partition (messages); absent when unknown.
    pub consumer_lag: IntGaugeVec,
    /// 1 while a side of a service is not being counted (checkpoints failing, a lane blocked, a
    /// topic missing: `model::status::IngestionFaults`).
    pub ingestion_stalled: IntGaugeVec,
    /// Event-time watermark per side (Unix seconds).
    pub watermark_seconds: GaugeVec,
    /// Gate verdict per service, one series per verdict set to 1 for the current one.
    pub gate_verdict: IntGaugeVec,
    /// Services this replica evaluates (holds the evaluator lease of), labelled with its name.
    pub evaluated_services: IntGaugeVec,
    /// 1 while a service's served verdict is stale (no evaluation came when one was due).
    pub gate_stale: IntGaugeVec,
    /// 1 while a wave's non-revoked sign-offs meet its `required_approvals`.
    pub wave_signed_off: IntGaugeVec,
    /// 1 while a counted sign-off of a wave was given on evidence that no longer holds.
    pub wave_signoff_stale: IntGaugeVec,
    /// 1 per configured service, labelled with its wave (joins services to wave metrics).
    pub service_info: IntGaugeVec,
    /// p95 of (candidate delivery − baseline delivery) over events seen on both sides.
    pub candidate_delay_regression_seconds: GaugeVec,
    /// Settled mismatching keys per differing field, for the top 20 fields of a service.
    pub field_mismatched_keys: IntGaugeVec,
    /// Changes of a service's served gate verdict, by the verdict changed to.
    pub gate_transitions: IntCounterVec,
    /// Duration of checkpoint transactions.
    pub checkpoint_seconds: Histogram,
    /// Duration of one service's evaluation (state read, parity refreshed, gate decided), by
    /// service: what `bench soak` reads its round percentiles from.
    pub evaluation_seconds: HistogramVec,
    /// Checkpoints that failed (and were retried).
    pub checkpoint_failures: IntCounterVec,
    /// Time from receiving a record to its checkpoint commit.
    pub processing_latency_seconds: Histogram,
    /// 1 when the dependency is reachable.
    pub up: IntGaugeVec,
    /// Always 1, labelled with the build's version and canonical-form version.
    pub build_info: IntGaugeVec,
    /// Diff ratio of the latest sampled row diff of the sink tables (uniform sample).
    pub row_diff_ratio: GaugeVec,
    /// Its one-sided 95% upper confidence bound.
    pub row_diff_ratio_upper_bound: GaugeVec,
    /// Rows of the uniform samples compared so far.
    pub rows_sampled: IntCounterVec,
    /// Differing rows of the latest round's uniform sample, by kind.
    pub rows_differing: IntGaugeVec,
    /// Sampler rounds that failed (and were retried next interval), by stage.
    pub row_sample_failures: IntCounterVec,
    /// Kafka partitions this replica consumes now (its share under the group protocol).
    pub assigned_partitions: IntGauge,
    /// Offset commits to Kafka that failed: the copy of the stored offsets that consumer-group lag
    /// tools read (`serve::ingest::kafka_offsets`); never a position, so a failure costs no correctness.
    pub kafka_commit_failures: IntCounter,
}

/// Register an unlabelled metric (one value per process) and hand it back.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> prometheus::Result<M> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn float_gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<GaugeVec> {
    let metric = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> prometheus::Result<Histogram> {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new_custom(Some("paritygate".into()), None)?;
        let seconds = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let watermark = GaugeVec::new(
            Opts::new(
                "watermark_timestamp_seconds",
                "Event-time watermark of a side (Unix timestamp, seconds)",
            ),
            &["service", "side"],
        )?;
        r.register(Box::new(watermark.clone()))?;
        Ok(Self {
            records: counter(
                &r,
                "records_total",
                "Records consumed per service, side and operation",
                &["service", "side", "operation"],
            )?,
            events: counter(
                &r,
                "events_total",
                "Distinct events after deduplication",
                &["service", "side", "operation"],
            )?,
            duplicates: counter(
                &r,
                "duplicates_total",
                "Records that repeated an event already seen",
                &["service", "side", "operation"],
            )?,
            unparseable: counter(
                &r,
                "unparseable_total",
                "Messages that could not be compared, by reason",
                &["service", "side", "reason"],
            )?,
            pruned_rows: counter(
                &r,
                "pruned_rows_total",
                "State rows deleted by retention ([store] retention_days), by table",
                &["table"],
            )?,
            skipped: counter(
                &r,
                "skipped_total",
                "Records not compared on purpose, by reason (before_start: before compare_from)",
                &["service", "side", "reason"],
            )?,
            log_resets: counter(
                &r,
                "log_resets_total",
                "Times a consumed partition's log went back (topic recreated or truncated)",
                &["service", "side"],
            )?,
            mismatched_keys: gauge(
                &r,
                "mismatched_keys",
                "Keys that differ between the sides, by kind and state",
                &["service", "kind", "state"],
            )?,
            windows_settled: gauge(
                &r,
                "windows_settled",
                "Settled event-time windows, matched or not",
                &["service", "result"],
            )?,
            consumer_lag: gauge(
                &r,
                "consumer_lag_messages",
                "Messages not yet consumed per partition (absent while the broker's end is unknown)",
                &["service", "side", "topic", "partition"],
            )?,
            ingestion_stalled: gauge(
                &r,
                "ingestion_stalled",
                "1 while a side of a service is not being counted (checkpoints failing, a lane blocked, a topic missing)",
                &["service", "side"],
            )?,
            watermark_seconds: watermark,
            evaluated_services: gauge(
                &r,
                "evaluated_services",
                "Services this replica evaluates (one replica evaluates a service at a time)",
                &["replica"],
            )?,
            gate_stale: gauge(
                &r,
                "gate_stale",
                "1 while a service's served verdict is stale (no evaluation came when one was due)",
                &["service"],
            )?,
            gate_verdict: gauge(
                &r,
                "gate_verdict",
                "1 for the current gate verdict of a service",
                &["service", "verdict"],
            )?,
            wave_signed_off: gauge(
                &r,
                "wave_signed_off",
                "1 while a wave's non-revoked sign-offs meet its required approvals",
                &["wave"],
            )?,
            wave_signoff_stale: gauge(
                &r,
                "wave_signoff_stale",
                "1 while a wave's sign-off rests on evidence that no longer holds",
                &["wave"],
            )?,
            service_info: gauge(
                &r,
                "service_info",
                "1 per configured service, labelled with its wave",
                &["service", "wave"],
            )?,
            candidate_delay_regression_seconds: {
                let g = GaugeVec::new(
                    Opts::new(
                        "candidate_delay_regression_seconds",
                        "p95 of the candidate's delivery delay minus the baseline's, over events seen on both sides",
                    ),
                    &["service"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            field_mismatched_keys: gauge(
                &r,
                "field_mismatched_keys",
                "Settled mismatching keys per differing field (top 20 fields per service)",
                &["service", "pointer"],
            )?,
            gate_transitions: counter(
                &r,
                "gate_transitions_total",
                "Changes of a service's served gate verdict",
                &["service", "verdict"],
            )?,
            checkpoint_seconds: histogram(
                &r,
                "checkpoint_duration_seconds",
                "Duration of checkpoint transactions",
                seconds.clone(),
            )?,
            evaluation_seconds: registered(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "evaluation_duration_seconds",
                        "Duration of one service's evaluation round",
                    )
                    .buckets(vec![
                        0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0,
                        60.0,
                    ]),
                    &["service"],
                ),
            )?,
            assigned_partitions: registered(
                &r,
                IntGauge::new(
                    "assigned_partitions",
                    "Kafka partitions this replica consumes now",
                ),
            )?,
            kafka_commit_failures: registered(
                &r,
                IntCounter::new(
                    "kafka_commit_failures_total",
                    "Offset commits to Kafka (the copy lag tools read) that failed",
                ),
            )?,
            checkpoint_failures: counter(
                &r,
                "checkpoint_failures_total",
                "Checkpoint transactions that failed and were retried",
                &["reason"],
            )?,
            processing_latency_seconds: histogram(
                &r,
                "processing_latency_seconds",
                "From receiving a record to its checkpoint commit",
                seconds,
            )?,
            up: gauge(
                &r,
                "dependency_up",
                "1 when a dependency (broker, database) is reachable",
                &["dependency"],
            )?,
            build_info: {
                let g = gauge(
                    &r,
                    "build_info",
                    "1, labelled with paritygate's version and the canonical form's version",
                    &["version", "canonical_version"],
                )?;
                g.with_label_values(&[
                    env!("CARGO_PKG_VERSION"),
                    crate::core::canonical::CANONICAL_VERSION,
                ])
                .set(1);
                g
            },
            row_diff_ratio: float_gauge(
                &r,
                "row_diff_ratio",
                "Differing rows / sampled rows in the latest sampled row diff of the sink tables",
                &["service"],
            )?,
            row_diff_ratio_upper_bound: float_gauge(
                &r,
                "row_diff_ratio_upper_bound",
                "One-sided 95% upper confidence bound of the row diff ratio",
                &["service"],
            )?,
            rows_sampled: counter(
                &r,
                "rows_sampled_total",
                "Rows of the uniform row samples compared",
                &["service"],
            )?,
            rows_differing: gauge(
                &r,
                "rows_differing",
                "Rows of the latest uniform row sample that differ after the settle delay, by kind",
                &["service", "kind"],
            )?,
            row_sample_failures: counter(
                &r,
                "row_sample_failures_total",
                "Row sampler rounds that failed, by stage (start, keys, sample, store)",
                &["service", "stage"],
            )?,
            registry: r,
        })
    }

    /// Create at 0 the series of the counters that alerts watch with `increase()`: unparseable
    /// messages for every configured service, side and reason, log resets, and checkpoint failures. A series
    /// born at its first increment hides that increment from `increase()`/`rate()`, so a single
    /// burst of bad messages would never alert.
    pub fn init_services<'a>(&self, services: impl IntoIterator<Item = &'a str>) {
        let reasons = [
            "too_large",
            "not_json",
            "unstorable",
            Reject::MissingKey.as_str(),
            Reject::MissingPosition.as_str(),
            Reject::MissingOperation.as_str(),
            Reject::UnknownOperation.as_str(),
            // Avro records that did not decode (`core::avro::AvroError::reason`).
            "unknown_schema",
            "registry_unavailable",
            "undecodable",
        ];
        for service in services {
            for side in ["baseline", "candidate"] {
                for reason in reasons {
                    self.unparseable.with_label_values(&[service, side, reason]);
                }
                self.log_resets.with_label_values(&[service, side]);
                self.ingestion_stalled.with_label_values(&[service, side]);
            }
        }
        self.checkpoint_failures.with_label_values(&["database"]);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The sum of every sample of the metric `name` (full name, labels ignored) in a text exposition
/// such as [`Metrics::render`] gives: what a reader of `/metrics` (the benchmark, tests) needs to
/// total a counter or gauge over its label sets. 0 when it has no sample.
pub fn sample_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sums_add_every_label_set_of_exactly_that_metric() {
        let metrics = Metrics::new().unwrap_or_else(|e| panic!("{e}"));
        metrics
            .records
            .with_label_values(&["a", "baseline", "insert"])
            .inc_by(3);
        metrics
            .records
            .with_label_values(&["b", "candidate", "delete"])
            .inc_by(4);
        metrics.assigned_partitions.set(6);
        metrics.checkpoint_seconds.observe(0.5);
        let text = metrics.render();
        assert_eq!(sample_sum(&text, "paritygate_records_total"), 7.0);
        assert_eq!(sample_sum(&text, "paritygate_assigned_partitions"), 6.0);
        assert_eq!(
            sample_sum(&text, "paritygate_checkpoint_duration_seconds_count"),
            1.0
        );
        assert_eq!(
            sample_sum(&text, "paritygate_checkpoint_duration_seconds_sum"),
            0.5
        );
        // A name that is only a prefix of others has no samples of its own.
        assert_eq!(sample_sum(&text, "paritygate_records"), 0.0);
    }
}
