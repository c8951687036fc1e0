//! The two sides of a dual run, and the parts of a topic that identify where a record came from.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which side of a service a topic feeds: the authoritative runtime or the one under test.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The runtime that stays authoritative (Redpanda Connect, say).
    Baseline,
    /// The runtime under test (Bento, say).
    Candidate,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Baseline, Side::Candidate];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Candidate => "candidate",
        }
    }

    /// 0 for the baseline, 1 for the candidate: the index of `[T; 2]` per-side arrays and the
    /// code the store writes.
    pub fn index(self) -> usize {
        match self {
            Side::Baseline => 0,
            Side::Candidate => 1,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of one service: what a record is routed to, and what counts are kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceSide {
    pub service: usize,
    pub side: Side,
}

/// A Kafka partition of a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    /// `topic/partition`, as the API's offset maps spell it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}
