//! The broker's end offsets as the evaluator last fetched them: shared with the lanes (stored with
//! each checkpoint), the backlog and the watermarks.

use crate::model::TopicPartition;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The broker's end offset of every configured partition, as last fetched by the evaluator
/// (`fetch_end_offsets`), shared with the lanes (stored with each checkpoint) and the backlog.
#[derive(Debug, Clone, Default)]
pub struct EndOffsets(Arc<Mutex<Ends>>);

/// What the last fetch of end offsets found.
#[derive(Debug, Clone, Default)]
pub struct Ends {
    /// The latest known end per (topic, partition). Kept when a fetch fails (watermarks and the
    /// backlog still use them); replaced by each successful fetch, so a deleted topic's partitions
    /// disappear.
    pub offsets: HashMap<TopicPartition, i64>,
    /// Whether the last fetch succeeded: lag is reported only from fresh ends, unknown otherwise
    /// (a broker that cannot be read must never show a lag of 0).
    pub fresh: bool,
}

impl EndOffsets {
    /// A copy of the current ends.
    pub fn snapshot(&self) -> Ends {
        self.0
            .lock()
            .map(|e| e.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// A successful fetch: these are the ends now.
    pub fn replace(&self, offsets: HashMap<TopicPartition, i64>) {
        let mut ends = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *ends = Ends {
            offsets,
            fresh: true,
        };
    }

    /// A failed fetch: the known ends are kept, but no longer current.
    pub fn mark_stale(&self) {
        let mut ends = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ends.fresh = false;
    }

    #[cfg(test)]
    pub fn with(known: &[(&str, i32, i64)]) -> Self {
        let ends = Self::default();
        ends.replace(
            known
                .iter()
                .map(|(t, p, e)| (TopicPartition::new(*t, *p), *e))
                .collect(),
        );
        ends
    }
}
