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
        t.min_events = t.min_events.max(o.min_events.unwrap_or(0));
        t.min_observation_seconds = t
            .min_observation_seconds
            .max(o.min_observation_seconds.unwrap_or(0));
        t.max_count_drift = t.max_count_drift.min(o.max_count_drift.unwrap_or(u64::MAX));
        t.max_mismatched_keys = t
            .max_mismatched_keys
            .min(o.max_mismatched_keys.unwrap_or(u64::MAX));
        t.max_row_diff_ratio = t
            .max_row_diff_ratio
            .min(o.max_row_diff_ratio.unwrap_or(f64::INFINITY));
        t.min_sampled_rows = t.min_sampled_rows.max(o.min_sampled_rows.unwrap_or(0));
        t.max_error_rate_increase = t
            .max_error_rate_increase
            .min(o.max_error_rate_increase.unwrap_or(f64::INFINITY));
        t.max_delay_regression_ms = t
            .max_delay_regression_ms
            .min(o.max_delay_regression_ms.unwrap_or(i64::MAX));
        t.max_stall_seconds = t
            .max_stall_seconds
            .min(o.max_stall_seconds.unwrap_or(u64::MAX));
        t.consecutive_passes = t.consecutive_passes.max(o.consecutive_passes.unwrap_or(0));
        t
    }
}
