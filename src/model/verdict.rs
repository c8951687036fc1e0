//! Verdicts and the gate's criteria: what `diff`, `rowdiff`, the gates and the sign-offs all
//! answer in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A service's (or a wave's) verdict.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    #[default]
    Pending,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Pending => "pending",
            Self::Fail => "fail",
        }
    }

    /// Passing for promotion purposes (Flagger's confirm hooks, wave sign-off).
    pub fn is_go(self) -> bool {
        matches!(self, Self::Pass | Self::Warn)
    }
}

/// The seven criteria, in the order a gate lists them. Serialized as their snake_case names
/// (`key_parity`), which waivers, reasons and the page use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CriterionName {
    Evidence,
    CountParity,
    KeyParity,
    RowParity,
    ErrorParity,
    LatencyGuardrail,
    Freshness,
}

impl CriterionName {
    pub const ALL: [CriterionName; 7] = [
        Self::Evidence,
        Self::CountParity,
        Self::KeyParity,
        Self::RowParity,
        Self::ErrorParity,
        Self::LatencyGuardrail,
        Self::Freshness,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evidence => "evidence",
            Self::CountParity => "count_parity",
            Self::KeyParity => "key_parity",
            Self::RowParity => "row_parity",
            Self::ErrorParity => "error_parity",
            Self::LatencyGuardrail => "latency_guardrail",
            Self::Freshness => "freshness",
        }
    }

    /// The criterion of this name, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for CriterionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One criterion's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CriterionStatus {
    Pass,
    /// Passing, but within 20% of its threshold.
    Warn,
    Pending,
    Fail,
    /// Failing or pending, but waived by an approver until the waiver expires.
    Waived,
    /// Not configured for this service (e.g. no error topics): neither evidence for nor against.
    NotApplicable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Criterion {
    pub name: CriterionName,
    pub status: CriterionStatus,
    /// What was observed; `null` when nothing is (a criterion that does not apply, or has no
    /// evidence yet).
    #[schema(value_type = Option<Object>)]
    pub observed: serde_json::Value,
    #[schema(value_type = Object)]
    pub threshold: serde_json::Value,
    pub explanation: String,
}

impl Verdict {
    /// Exit status of `diff` and `rowdiff`: 0 pass (or warn), 1 fail, 3 pending (2 is bad usage
    /// or input).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Pass | Self::Warn => 0,
            Self::Fail => 1,
            Self::Pending => 3,
        }
    }

    /// The overall verdict of several: any fail fails, then pending, then warn (the worst wins).
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        verdicts.into_iter().max().unwrap_or(Verdict::Pending)
    }
}

/// A stored waiver: a failing or pending criterion of a service counts as passed (shown as
/// `waived`) until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Waiver {
    pub id: i64,
    pub service: String,
    pub criterion: CriterionName,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    /// The approver identity of the token that created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}
