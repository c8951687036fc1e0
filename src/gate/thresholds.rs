//! `[services.gate]` thresholds with their documented defaults, and the stricter per-wave overrides.

use serde::{Deserialize, Serialize};

/// Thresholds of one service's gate. Defaults are strict: any settled drift fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateThresholds {
    /// Distinct events per side before any verdict but `pending`.
    pub min_events: u64,
    /// Event time that must have been observed (and settled) before any verdict but `pending`.
    pub min_observation_seconds: u64,
    /// Largest allowed |baseline − candidate| of settled distinct events, per operation.
    pub max_count_drift: u64,
    /// Largest allowed number of settled mismatching keys (all kinds together).
    pub max_mismatched_keys: u64,
    /// Largest allowed 95% upper bound of the sampled row-diff ratio.
    pub max_row_diff_ratio: f64,
    /// Rows sampled before `row_parity` may pass.
    pub min_sampled_rows: u64,
    /// How much the candidate's error rate (errors / records) may exceed the baseline's.
    pub max_error_rate_increase: f64,
    /// Largest allowed p95 of (candidate delivery delay − baseline's), in milliseconds.
    pub max_delay_regression_ms: i64,
    /// Events seen on both sides needed before `latency_guardrail` may pass.
    pub min_delay_samples: u64,
    /// A side whose consumption made no progress for this long while records wait is stalled.
    pub max_stall_seconds: u64,
    /// Passing evaluations in a row before `pass` is served.
    pub consecutive_passes: u32,
}

impl Default for GateThresholds {
    fn default() -> Self {
        Self {
            min_events: 1,
            min_observation_seconds: 0,
            max_count_drift: 0,
            max_mismatched_keys: 0,
            max_row_diff_ratio: 0.01,
            min_sampled_rows: 100,
            max_error_rate_increase: 0.0,
            max_delay_regression_ms: 5_000,
            min_delay_samples: 1,
            max_stall_seconds: 300,
            consecutive_passes: 3,
        }
    }
}

/// `[waves.gate]`: a wave may only tighten its services' thresholds (wave 3 is high-volume).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateThresholdsOverride {
    pub min_events: Option<u64>,
    pub min_observation_seconds: Option<u64>,
    pub max_count_drift: Option<u64>,
    pub max_mismatched_keys: Option<u64>,
    pub max_row_diff_ratio: Option<f64>,
    pub min_sampled_rows: Option<u64>,
    pub max_error_rate_increase: Option<f64>,
    pub max_delay_regression_ms: Option<i64>,
    pub max_stall_seconds: Option<u64>,
    pub consecutive_passes: Option<u32>,
}

impl GateThresholds {
    /// The stricter of the service's thresholds and a wave's overrides, field by field.
    pub fn tightened(&self, o: &GateThresholdsOverride) -> Self {
        let mut t = self.clone();
        t.min_events = at_least(t.min_events, o.min_events);
        t.min_observation_seconds = at_least(t.min_observation_seconds, o.min_observation_seconds);
        t.max_count_drift = at_most(t.max_count_drift, o.max_count_drift);
        t.max_mismatched_keys = at_most(t.max_mismatched_keys, o.max_mismatched_keys);
        t.max_row_diff_ratio = at_most(t.max_row_diff_ratio, o.max_row_diff_ratio);
        t.min_sampled_rows = at_least(t.min_sampled_rows, o.min_sampled_rows);
        t.max_error_rate_increase = at_most(t.max_error_rate_increase, o.max_error_rate_increase);
        t.max_delay_regression_ms = at_most(t.max_delay_regression_ms, o.max_delay_regression_ms);
        t.max_stall_seconds = at_most(t.max_stall_seconds, o.max_stall_seconds);
        t.consecutive_passes = at_least(t.consecutive_passes, o.consecutive_passes);
        t
    }
}

/// The stricter of a floor and its override: the larger.
fn at_least<T: PartialOrd>(base: T, stricter: Option<T>) -> T {
    match stricter {
        Some(o) if o > base => o,
        _ => base,
    }
}

/// The stricter of a ceiling and its override: the smaller.
fn at_most<T: PartialOrd>(base: T, stricter: Option<T>) -> T {
    match stricter {
        Some(o) if o < base => o,
        _ => base,
    }
}
