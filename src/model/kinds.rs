//! How keys differ, and what records are counted as.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a key differs between the sides (a key present on both with equal events matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    MissingInCandidate,
    ExtraInCandidate,
    Mismatched,
}

impl MismatchKind {
    pub const ALL: [MismatchKind; 3] = [
        Self::MissingInCandidate,
        Self::ExtraInCandidate,
        Self::Mismatched,
    ];

    /// The kind spelled `raw` (as in SQL, JSON and query parameters).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingInCandidate => "missing_in_candidate",
            Self::ExtraInCandidate => "extra_in_candidate",
            Self::Mismatched => "mismatched",
        }
    }
}

/// Keys (or rows) that differ, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KindCounts {
    pub missing_in_candidate: u64,
    pub extra_in_candidate: u64,
    pub mismatched: u64,
}

impl KindCounts {
    pub fn total(&self) -> u64 {
        self.missing_in_candidate + self.extra_in_candidate + self.mismatched
    }

    /// Count one more key of `kind`.
    pub fn add(&mut self, kind: MismatchKind, n: u64) {
        match kind {
            MismatchKind::MissingInCandidate => self.missing_in_candidate += n,
            MismatchKind::ExtraInCandidate => self.extra_in_candidate += n,
            MismatchKind::Mismatched => self.mismatched += n,
        }
    }

    /// These counts less a part of them, kind by kind (never below zero).
    pub fn less(&self, part: &KindCounts) -> KindCounts {
        KindCounts {
            missing_in_candidate: self
                .missing_in_candidate
                .saturating_sub(part.missing_in_candidate),
            extra_in_candidate: self
                .extra_in_candidate
                .saturating_sub(part.extra_in_candidate),
            mismatched: self.mismatched.saturating_sub(part.mismatched),
        }
    }
}

/// What a record was counted as (the `kind` of a tally; its `name` is the operation or reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TallyKind {
    /// A record that became an event (new or a duplicate), by operation.
    Operation,
    /// Rejected by extraction (no key, position or operation), by reason.
    Rejected,
    /// Skipped on purpose (transaction markers), by reason.
    Skipped,
    /// Not compared at all: `too_large`, `unstorable` (the database refused the key's row).
    Unparseable,
    /// A remark on a record counted elsewhere (`not_json`: compared as bytes), not a record.
    Flagged,
    /// A record on a dead-letter topic.
    Errors,
    /// A partition's log went back (not a record).
    LogResets,
}

impl TallyKind {
    pub const ALL: [TallyKind; 7] = [
        Self::Operation,
        Self::Rejected,
        Self::Skipped,
        Self::Unparseable,
        Self::Flagged,
        Self::Errors,
        Self::LogResets,
    ];

    /// As stored in `tallies.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operation => "operation",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
            Self::Unparseable => "unparseable",
            Self::Flagged => "flagged",
            Self::Errors => "errors",
            Self::LogResets => "log_resets",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Whether a tally of this kind counts records (remarks and log resets do not).
    pub fn counts_records(self) -> bool {
        !matches!(self, Self::Flagged | Self::Errors | Self::LogResets)
    }
}

/// A field (JSON pointer) and how many mismatching keys differ in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldCount {
    pub pointer: String,
    pub mismatched_keys: u64,
}
