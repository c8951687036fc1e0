//! The serde model of `paritygate.toml`: exactly the keys users may write, nothing else.
//!
//! Every table denies unknown keys so a typo is an error rather than a silently ignored rule.
//! Semantic checks (names, disjoint topics, pointer syntax) live in `config::validate`.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
}

/// One migrated service: its topics on both runtimes and how to read and compare its events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    #[serde(default)]
    pub wave: Option<u32>,
    pub baseline_topics: Vec<String>,
    pub candidate_topics: Vec<String>,
    #[serde(default)]
    pub key: KeySpec,
    #[serde(default)]
    pub position: Option<FieldSource>,
    #[serde(default)]
    pub operation: Option<FieldSource>,
    /// Headers that are part of an event's content, compared as a set of (name, value).
    #[serde(default)]
    pub compare_headers: Vec<String>,
    #[serde(default)]
    pub normalize: NormalizeConfig,
    /// Per-side overrides for runtimes whose output shape differs (e.g. a Bento substitute that
    /// carries the operation in the payload while Redpanda Connect carries it in a header).
    #[serde(default)]
    pub baseline: SideOverrides,
    #[serde(default)]
    pub candidate: SideOverrides,
}

/// Where an event's key comes from.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySpec {
    #[default]
    /// The Kafka message key (a JSON key is canonicalized, so `{"id": 1}` and `{ "id":1 }` agree).
    MessageKey,
    /// Values at these JSON pointers of the payload; several pointers form a composite key.
    Fields { pointers: Vec<String> },
}

/// A value read from a record header or from a JSON pointer into the payload.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldSource {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub pointer: Option<String>,
    /// Only for positions: how to read the value; `auto` tries LSN, `0x` hex, integer, then binary.
    #[serde(default)]
    pub format: Option<PositionFormat>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PositionFormat {
    Auto,
    Lsn,
    Hex,
    Integer,
    Binary,
}

/// Overrides of the service-level sources for one side.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideOverrides {
    #[serde(default)]
    pub key: Option<KeySpec>,
    #[serde(default)]
    pub position: Option<FieldSource>,
    #[serde(default)]
    pub operation: Option<FieldSource>,
    /// Pointers whose string values this side emits base64-encoded; they are decoded before comparing.
    #[serde(default)]
    pub base64_fields: Vec<String>,
}

/// Normalization rules; each is a documented step of the canonical form (`docs/canonical-form.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// JSON pointers removed before comparing; `*` matches any one segment.
    #[serde(default)]
    pub ignore_fields: Vec<String>,
    #[serde(default)]
    pub decimals: DecimalRule,
    #[serde(default)]
    pub timestamps: TimestampRule,
    #[serde(default)]
    pub null_equals_missing: bool,
    /// `"true"`/`"false"` strings equal booleans (SQL Server `bit` is a string in RPCN snapshots,
    /// a boolean when streaming).
    #[serde(default)]
    pub boolean_strings: bool,
    /// Pointers holding float4 values: both sides are rounded to 32-bit precision.
    #[serde(default)]
    pub float32_fields: Vec<String>,
    /// Treat a snapshot `read` like a streamed `insert` (a re-snapshot on one side is not drift).
    #[serde(default)]
    pub snapshot_read_as_insert: bool,
    /// Drop SQL Server `update_before` images and treat `update_after` as `update`, for a side pair
    /// where one runtime emits two messages per update and the other one.
    #[serde(default)]
    pub drop_update_before: bool,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DecimalRule {
    /// Numbers compare by exact value; strings compare as strings.
    #[default]
    Exact,
    /// Decimal-looking strings (`"1050.00"`) are numbers too, compared by exact value.
    Numeric,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimestampRule {
    #[default]
    Exact,
    /// RFC 3339 / ISO 8601 strings compare by the instant they denote.
    Instant,
}
