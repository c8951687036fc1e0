//! The lanes' heartbeats: how `/readyz` and the evaluator tell a blocked lane worker.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Each lane worker's last sign of life (ms since the epoch), written on every turn of its loop,
/// at least every 50 ms while idle: a value that stops moving means the worker is blocked (in a
/// checkpoint that does not commit, on a store that does not answer, or on a bug).
#[derive(Debug, Clone, Default)]
pub struct Heartbeats(Arc<Vec<AtomicI64>>);

impl Heartbeats {
    pub fn new(lanes: usize) -> Self {
        let now = Utc::now().timestamp_millis();
        Self(Arc::new((0..lanes).map(|_| AtomicI64::new(now)).collect()))
    }

    pub fn beat(&self, lane: usize) {
        if let Some(h) = self.0.get(lane) {
            h.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
    }

    /// Lanes silent for longer than `after`, with their last sign of life.
    pub fn stale(
        &self,
        now: DateTime<Utc>,
        after: std::time::Duration,
    ) -> Vec<(usize, DateTime<Utc>)> {
        let limit = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.0
            .iter()
            .enumerate()
            .filter_map(|(lane, h)| {
                let last = h.load(Ordering::Relaxed);
                (now.timestamp_millis() - last > limit)
                    .then(|| DateTime::from_timestamp_millis(last).map(|t| (lane, t)))
                    .flatten()
            })
            .collect()
    }
}
