//! The read model: the live status the evaluation loop publishes and the HTTP handlers, the page
//! and the metrics read, and the faults ingestion reports.
//!
//! A service's status is evaluated by one replica at a time and stored in Postgres
//! (`store::served`); every replica answers from there. The in-memory copy behind the lock holds
//! readiness, this process's faults and the verdicts last read (the fallback without a database).

use super::KindCounts;
use super::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;

/// Whether the dependencies are reachable and ingestion makes progress (`/readyz`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Readiness {
    /// Every side's Kafka cluster answered the last metadata request.
    pub broker: bool,
    /// Per side (`baseline`, `candidate`): its cluster as last seen, with librdkafka's cause when
    /// it does not answer (authentication, TLS verification, a plaintext client on a TLS port).
    pub kafka: BTreeMap<String, ClusterReadiness>,
    pub database: bool,
    pub migrations: bool,
    /// Why ingestion makes no progress, one sentence each (checkpoints failing, a lane stuck, a
    /// configured topic missing); empty while it does. Any entry makes `/readyz` answer 503.
    pub stalled: Vec<String>,
    /// The last dependency error, for operators (no secrets: URLs are never included).
    pub last_error: Option<String>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.broker && self.database && self.migrations && self.stalled.is_empty()
    }
}

/// A side's Kafka cluster in `/readyz`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClusterReadiness {
    /// `bootstrap.servers` as configured (never credentials: those are properties).
    pub brokers: String,
    pub reachable: bool,
    /// Why not, as the client reported it.
    pub error: Option<String>,
}

/// One way this process knows its own ingestion is stuck, and since when. Known only here: the
/// store does not show a checkpoint that never committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub since: DateTime<Utc>,
    pub detail: String,
}

/// Faults of this process's ingestion, kept current by the checkpointers, the lanes' heartbeats
/// and the evaluator; read by `/readyz` (through [`Readiness::stalled`]) and by the freshness
/// criterion, so a stalled side can never pass a gate.
#[derive(Debug, Clone, Default)]
pub struct IngestionFaults {
    /// (service index, side) → checkpoints holding its records fail (since, last error).
    pub checkpoints: BTreeMap<(usize, super::Side), Fault>,
    /// Configured topics (of a side: on two clusters the sides may share a name) the broker does
    /// not know.
    pub missing_topics: BTreeMap<(super::Side, String), Fault>,
    /// Lanes that made no progress (their worker is blocked).
    pub stuck_lanes: BTreeMap<LaneRef, Fault>,
}

/// A lane of the consumer of one cluster: `sides` are the sides that cluster holds (both, with
/// one `[kafka]`), whose every partition a blocked lane holds up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LaneRef {
    pub sides: Vec<super::Side>,
    pub index: usize,
}

impl std::fmt::Display for LaneRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sides[..] {
            [side] => write!(f, "lane {} of the {side} cluster", self.index),
            _ => write!(f, "lane {}", self.index),
        }
    }
}

impl IngestionFaults {
    /// One sentence per fault, for `/readyz` and logs.
    pub fn describe(&self, names: &[String]) -> Vec<String> {
        let at = |f: &Fault| f.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut out: Vec<String> = Vec::new();
        for ((service, side), f) in &self.checkpoints {
            let name = names.get(*service).map_or("?", String::as_str);
            out.push(format!(
                "checkpoints of {name}/{} fail since {}: {}",
                side.as_str(),
                at(f),
                f.detail
            ));
        }
        for ((side, topic), f) in &self.missing_topics {
            out.push(format!(
                "{side} topic `{topic}` is missing since {}: {}",
                at(f),
                f.detail
            ));
        }
        for (lane, f) in &self.stuck_lanes {
            out.push(format!(
                "{lane} made no progress since {}: {}",
                at(f),
                f.detail
            ));
        }
        out
    }

    /// The faults that stop a side of a service from being counted: (earliest since, reasons).
    pub fn of_side(
        &self,
        service: usize,
        side: super::Side,
        topics: &[String],
    ) -> Option<(DateTime<Utc>, Vec<String>)> {
        let mut faults: Vec<(DateTime<Utc>, String)> = Vec::new();
        if let Some(f) = self.checkpoints.get(&(service, side)) {
            faults.push((f.since, format!("checkpoints failing: {}", f.detail)));
        }
        for t in topics {
            if let Some(f) = self.missing_topics.get(&(side, t.clone())) {
                faults.push((f.since, format!("topic `{t}` missing: {}", f.detail)));
            }
        }
        // A blocked lane blocks its cluster's consumer thread, and with it every partition there.
        for (lane, f) in self
            .stuck_lanes
            .iter()
            .filter(|(l, _)| l.sides.contains(&side))
        {
            faults.push((f.since, format!("{lane} blocked: {}", f.detail)));
        }
        let since = faults.iter().map(|(s, _)| *s).min()?;
        Some((since, faults.into_iter().map(|(_, r)| r).collect()))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// Next offset to consume (everything before it is in the state).
    pub next_offset: i64,
    /// The broker's end offset when last asked.
    pub end_offset: Option<i64>,
    pub lag: Option<i64>,
    pub max_event_ms: Option<i64>,
    /// Idle: caught up and quiet for `idle_partition_ms`; it no longer holds the watermark back.
    pub idle: bool,
}

/// One side's counts: the `tallies` table folded (`store::read::side_counts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SideCounts {
    /// Every record of the side, whatever became of it: events with their duplicates, rejected,
    /// skipped and unparseable records (as `diff` counts them).
    pub records: u64,
    /// Distinct events.
    pub events: u64,
    /// Records that repeated an event already known (records − events of kind `operation`).
    pub duplicates: u64,
    pub unparseable: u64,
    /// `unparseable` by reason: `unparseable`, `too_large`, `unstorable` (the database refused
    /// the key's row, see `store::write`).
    pub unparseable_by_reason: BTreeMap<String, u64>,
    /// Distinct events per operation.
    pub by_operation: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub skipped: BTreeMap<String, u64>,
    /// Remarks on records that still became events (`not_json`: compared as bytes).
    pub flagged: BTreeMap<String, u64>,
    /// Records on the side's error (dead-letter) topics.
    pub errors: u64,
    /// Times one of the side's partitions' log went back (topic deleted and recreated, or
    /// truncated): its new records were read from the new log's start (see the warning logged).
    pub log_resets: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SideStatus {
    /// Flattened: the JSON keeps `records`, `events`, … beside the live fields.
    #[serde(flatten)]
    pub counts: SideCounts,
    /// Event-time watermark: every partition of this side has passed it (idle ones excepted).
    pub watermark_ms: Option<i64>,
    /// Records the broker holds beyond what is stored, over the side's partitions; absent when
    /// the broker's end of any partition cannot be read (unknown is never shown as 0).
    pub lag: Option<i64>,
    pub partitions: Vec<PartitionStatus>,
}

/// Key-level parity; only `settled` differences are drift, `in_flight` ones may still resolve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeySummary {
    pub total: u64,
    pub matched: u64,
    pub settled: KindCounts,
    pub in_flight: KindCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WindowSide {
    pub events: u64,
    pub by_operation: BTreeMap<String, u64>,
    /// Order-independent multiset fingerprint of the window's distinct events (sum, not XOR).
    pub fingerprint: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WindowStatus {
    pub start_ms: i64,
    pub end_ms: i64,
    pub settled: bool,
    pub matched: bool,
    pub baseline: WindowSide,
    pub candidate: WindowSide,
}

/// Where a verdict's evidence comes from: event time and offsets per side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct EvidenceRange {
    pub first_event_ms: Option<i64>,
    pub settled_until_ms: Option<i64>,
    /// Next offset per `topic/partition`, per side: everything before it is in the evidence.
    pub baseline_offsets: BTreeMap<String, i64>,
    pub candidate_offsets: BTreeMap<String, i64>,
}

/// A service's gate: the served verdict, every criterion with its evidence, and what it was
/// decided under (canonical form version, config digest, thresholds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct GateStatus {
    pub verdict: Verdict,
    /// The verdict of this evaluation alone, before hysteresis.
    pub raw_verdict: Verdict,
    /// One sentence per reason the verdict is what it is.
    pub reasons: Vec<String>,
    pub criteria: Vec<super::Criterion>,
    pub evaluated_at: Option<DateTime<Utc>>,
    /// The replica that evaluated (`[serve] replica_name`); one replica evaluates a service at a
    /// time and every replica serves what it stored.
    #[serde(default)]
    pub evaluated_by: Option<String>,
    /// No newer evaluation came when one was due: `verdict` is then never `pass` or `warn`
    /// (`last_evaluated_verdict` keeps what the evaluation said), and the first reason says why.
    #[serde(default)]
    pub stale: bool,
    /// With `stale`: seconds since `evaluated_at`, when answered.
    #[serde(default)]
    pub age_seconds: Option<f64>,
    /// A newer evaluation is due within this many seconds of `evaluated_at` (twice the
    /// evaluator's cadence, plus one second); past it the verdict is `stale`.
    #[serde(default)]
    pub stale_after_seconds: Option<f64>,
    /// With `stale`: the verdict the last evaluation served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated_verdict: Option<Verdict>,
    pub evidence: EvidenceRange,
    pub canonical_version: String,
    pub config_digest: String,
    #[schema(value_type = Object)]
    pub thresholds: serde_json::Value,
}

impl GateStatus {
    /// What the last evaluation served (`verdict`, unless staleness replaced it).
    pub fn evaluated_verdict(&self) -> Verdict {
        self.last_evaluated_verdict.unwrap_or(self.verdict)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    pub service: String,
    pub wave: Option<u32>,
    pub evaluated_at: Option<DateTime<Utc>>,
    pub baseline: SideStatus,
    pub candidate: SideStatus,
    pub keys: KeySummary,
    /// Changes at or before this event time are settled on both sides.
    pub settled_until_ms: Option<i64>,
    pub windows_settled_matched: u64,
    pub windows_settled_unmatched: u64,
    pub last_settled_window: Option<WindowStatus>,
    /// Fields that differ most among settled mismatching keys (up to 20; from the first 1,000 keys).
    pub top_fields: Vec<super::FieldCount>,
    /// The latest sampled row diff of the sink tables; absent without `[services.targets]` or
    /// before the first round.
    pub rows: Option<RowsSummary>,
    /// The observation epoch this status judges (absent in statuses stored before epochs existed).
    pub epoch: Option<super::Epoch>,
    pub gate: GateStatus,
}

/// One sampler round of the sink tables (`GET /api/v1/services/{service}/rows` has the history).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RowsSummary {
    pub evaluated_at: DateTime<Utc>,
    /// Keys in the uniform sample (the ratio's denominator).
    pub rows_sampled: u64,
    /// Differences of the uniform sample that persisted after the settle delay.
    pub differing: KindCounts,
    /// Differences among the flagged and recently changed keys (not in the ratio: chosen because
    /// they are suspicious).
    pub extra_differing: KindCounts,
    pub extra_keys_checked: u64,
    /// Differences that vanished after the settle delay (rows still in flight through a sink).
    pub in_flight: u64,
    pub diff_ratio: f64,
    /// One-sided 95% upper bound of the diff ratio (0 differences in n rows is ≈ 3/n, not 0).
    pub diff_ratio_upper_95: f64,
}

#[derive(Debug, Default)]
pub struct Status {
    pub readiness: Readiness,
    pub faults: IngestionFaults,
    pub services: BTreeMap<String, ServiceStatus>,
}

/// Shared handle to the live status.
#[derive(Debug, Clone, Default)]
pub struct SharedStatus(pub Arc<RwLock<Status>>);

impl SharedStatus {
    pub fn read<T>(&self, f: impl FnOnce(&Status) -> T) -> T {
        // A panic while holding the lock must not take the API down with it.
        let guard = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    pub fn write<T>(&self, f: impl FnOnce(&mut Status) -> T) -> T {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}
