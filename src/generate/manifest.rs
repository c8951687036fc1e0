//! The expected outcome of a generated pair (`expected.json`): per service, which keys carry which
//! drift and how many records, duplicates and markers each side holds.
//!
//! It states what a correct comparison under `fixtures/paritygate.toml` must report, so tests and
//! benchmarks can check the engine against ground truth instead of against itself.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts of one side of one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideCounts {
    /// Data records, replays included (markers excluded).
    pub records: u64,
    /// Records that are exact replays of an earlier record of the same side.
    pub duplicates: u64,
    /// Distinct events: `records - duplicates`.
    pub events: u64,
    /// `begin`/`commit` markers (baseline `orders` only), replayed ones included.
    pub transaction_markers: u64,
    /// Debezium tombstones after deletes (baseline `shipments` only), replayed ones included.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tombstones: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A key that both sides have but that must not match, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MismatchedKey {
    pub key: String,
    pub reason: String,
}

/// Ground truth for one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceManifest {
    pub baseline_topic: String,
    pub candidate_topic: String,
    /// Distinct keys over both sides.
    pub keys: u64,
    pub baseline: SideCounts,
    pub candidate: SideCounts,
    /// Keys present on both sides whose partition differs: a warning to count, not drift.
    pub partition_differing_keys: u64,
    pub missing_in_candidate: Vec<String>,
    pub extra_in_candidate: Vec<String>,
    pub mismatched: Vec<MismatchedKey>,
}

/// Ground truth for a generated pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bumped whenever the generator's output changes shape.
    pub generator: String,
    pub seed: u64,
    pub drift: bool,
    pub baseline_file: String,
    pub candidate_file: String,
    pub services: BTreeMap<String, ServiceManifest>,
    /// Records of topics no service configures; a comparison must ignore them.
    pub ignored_topics: BTreeMap<String, u64>,
}

impl Manifest {
    /// Every key that must not match, over all services.
    pub fn drift_keys(&self) -> usize {
        self.services
            .values()
            .map(|s| s.missing_in_candidate.len() + s.extra_in_candidate.len() + s.mismatched.len())
            .sum()
    }
}
