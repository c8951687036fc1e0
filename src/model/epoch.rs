//! Observation epochs: the stretch of event time a service's gate judges. The first epoch begins at
//! the comparison start (`compare_from`); an approver begins a new one after a fix, and from then on
//! every count, key and window covers events at or after its start only (`store::epochs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The id of a service's first epoch (the one that begins at the comparison start): it has no row
/// of its own, its state rows carry this id.
pub const FIRST_EPOCH: i64 = 0;

/// Which epoch a piece of state belongs to, and where it starts in event time: what a lane filters
/// by and what every read of keys, windows and tallies is scoped to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EpochScope {
    pub id: i64,
    /// Unix ms; `None`: the first epoch of a service compared from the beginning.
    pub starts_at_ms: Option<i64>,
}

impl EpochScope {
    /// Whether an event at `event_ms` belongs to this epoch (at or after its start).
    pub fn admits(&self, event_ms: i64) -> bool {
        self.starts_at_ms.is_none_or(|start| event_ms >= start)
    }
}

/// An epoch as the API and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Epoch {
    /// 0 for the first epoch (from the comparison start); started epochs count up from 1.
    pub id: i64,
    pub service: String,
    /// Events at or after this event time are judged; absent: from the beginning.
    pub starts_at: Option<DateTime<Utc>>,
    pub reason: String,
    /// The approver who started it (`paritygate` for the first one and for `compare_from = "auto"`).
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
}

impl Epoch {
    pub fn scope(&self) -> EpochScope {
        EpochScope {
            id: self.id,
            starts_at_ms: self.starts_at.map(|t| t.timestamp_millis()),
        }
    }
}
