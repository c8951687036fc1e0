//! The serde model of `paritygate.toml`: exactly the keys users may write, nothing else.
//!
//! Every table denies unknown keys so a typo is an error rather than a silently ignored rule.
//! Semantic checks (names, disjoint topics, pointer syntax) live in `config::validate`.

use crate::core::position::PositionFormat;
use serde::Deserialize;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub waves: Vec<WaveConfig>,
    #[serde(default)]
    pub schema_registry: SchemaRegistryConfig,
}

/// `[schema_registry]`: where `serve` fetches the schemas of `payload = "avro"` records by id
/// (the Confluent REST API, `GET /schemas/ids/{id}`); `[schema_registry.baseline]` /
/// `[schema_registry.candidate]` give one side its own. Credentials only from the environment:
/// `PARITYGATE_SCHEMA_REGISTRY[_BASELINE|_CANDIDATE]_USERNAME` / `_PASSWORD` (basic auth) or
/// `_TOKEN` (bearer).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    #[serde(flatten)]
    pub registry: RegistryEndpoint,
    #[serde(default)]
    pub baseline: Option<RegistryEndpoint>,
    #[serde(default)]
    pub candidate: Option<RegistryEndpoint>,
}

/// One registry: its URL, an optional CA bundle (PEM) to verify it with, and credentials from
/// the environment (never the file).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(skip)]
    pub username: Option<String>,
    #[serde(skip)]
    pub password: Option<String>,
    #[serde(skip)]
    pub token: Option<String>,
}

impl SchemaRegistryConfig {
    /// The registry of `side`: its own table's URL (and what it leaves unset) over the shared one.
    pub fn of(&self, side: crate::model::Side) -> RegistryEndpoint {
        let own = match side {
            crate::model::Side::Baseline => self.baseline.as_ref(),
            crate::model::Side::Candidate => self.candidate.as_ref(),
        };
        let shared = &self.registry;
        match own {
            None => shared.clone(),
            Some(o) => RegistryEndpoint {
                url: o.url.clone().or_else(|| shared.url.clone()),
                ca_file: o.ca_file.clone().or_else(|| shared.ca_file.clone()),
                username: o.username.clone().or_else(|| shared.username.clone()),
                password: o.password.clone().or_else(|| shared.password.clone()),
                token: o.token.clone().or_else(|| shared.token.clone()),
            },
        }
    }
}

/// `[[waves]]`: services promoted together, signed off by people in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveConfig {
    pub id: u32,
    pub name: String,
    pub services: Vec<String>,
    /// Distinct approver identities whose sign-offs the wave needs.
    #[serde(default = "one")]
    pub required_approvals: u32,
    /// Stricter thresholds for this wave's services (e.g. a longer observation for wave 3).
    #[serde(default)]
    pub gate: crate::gate::GateThresholdsOverride,
}

/// `[kafka]`: how `serve` consumes. Secrets never come from the file (see `config::env`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    #[serde(default = "default_brokers")]
    pub brokers: String,
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// `group`: the consumer group protocol assigns partitions; `manual`: this replica assigns
    /// itself the partitions `p` with `p % replicas == replica_index` of every topic.
    #[serde(default)]
    pub assignment: Assignment,
    #[serde(default)]
    pub replica_index: u32,
    #[serde(default = "one")]
    pub replicas: u32,
    /// librdkafka properties passed through (e.g. `security.protocol`, `sasl.mechanisms`).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
    /// Larger messages are not compared: counted as `too_large` and sampled.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Commit the stored offsets to Kafka after each checkpoint, for consumer-group lag tools
    /// (`serve::ingest::kafka_offsets`; never read back). Off where the principal may not commit for the
    /// group, so failed commits do not accumulate.
    #[serde(default = "yes")]
    pub commit_offsets: bool,
    /// `[kafka.baseline]`: the baseline's own cluster, when it is not `brokers`.
    #[serde(default)]
    pub baseline: Option<SideKafkaConfig>,
    /// `[kafka.candidate]`: the candidate's own cluster (a migration to another Kafka).
    #[serde(default)]
    pub candidate: Option<SideKafkaConfig>,
}

/// `[kafka.baseline]` / `[kafka.candidate]`: where one side is read from, over `[kafka]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SideKafkaConfig {
    /// This side's bootstrap servers (`[kafka] brokers` when absent).
    #[serde(default)]
    pub brokers: Option<String>,
    /// Merged over `[kafka.properties]` for this side's clients.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: default_brokers(),
            group_id: default_group_id(),
            assignment: Assignment::Group,
            replica_index: 0,
            replicas: 1,
            properties: Default::default(),
            max_message_bytes: default_max_message_bytes(),
            commit_offsets: true,
            baseline: None,
            candidate: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    #[default]
    Group,
    Manual,
}

/// `[store]`: paritygate's own Postgres database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A URL without a password; a password comes only from `PARITYGATE_STORE_URL`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_pool_size")]
    pub max_connections: u32,
    /// Windows and delivery samples older than this many days of event time (behind a service's
    /// newest window), and bad-message samples older than it, are pruned.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// How far behind a service's newest event an observation epoch may be backdated: the event
    /// log keeps that many minutes of event time of counted events (`store::epochs`).
    #[serde(default = "default_rewind_minutes")]
    pub rewind_minutes: u32,
}

impl Default for StoreConfig {
    // Without a `[store]` table serde uses this, not the field defaults: keep them the same.
    fn default() -> Self {
        Self {
            url: None,
            max_connections: default_pool_size(),
            retention_days: default_retention_days(),
            rewind_minutes: default_rewind_minutes(),
        }
    }
}

fn default_retention_days() -> u32 {
    30
}

fn default_rewind_minutes() -> u32 {
    60
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Reads are open unless this is set; writes always need an approver token.
    #[serde(default)]
    pub require_token_for_reads: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            require_token_for_reads: false,
        }
    }
}

/// `[serve]`: timing of the live comparison.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Upper bound between two checkpoints (state + offsets, one transaction).
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_interval_ms: u64,
    /// A checkpoint is also taken once this many records are buffered.
    #[serde(default = "default_checkpoint_records")]
    pub checkpoint_max_records: usize,
    /// Checkpoint transactions in flight at once: partitions are split into this many lanes
    /// (partition number modulo lanes), each with its own batch and transaction, so Postgres
    /// works on several cores. A partition always stays in one lane (offsets advance in order).
    #[serde(default = "default_checkpoint_lanes")]
    pub checkpoint_lanes: usize,
    /// How often verdicts, watermarks and lag are re-evaluated.
    #[serde(default = "default_evaluation_ms")]
    pub evaluation_interval_ms: u64,
    /// A partition with no new record for this long, and nothing left to read, no longer holds
    /// its side's watermark back.
    #[serde(default = "default_idle_ms")]
    pub idle_partition_ms: u64,
    /// How far behind a partition's newest event (event time) re-deliveries and replays are
    /// recognized exactly; older events are counted and flagged `beyond_dedupe_horizon`. Memory
    /// and restart time grow with the events of one horizon (`serve::lane::dedupe`).
    #[serde(default = "default_dedupe_horizon_seconds")]
    pub dedupe_horizon_seconds: u64,
    /// This replica's name in `evaluated_by` and in the `evaluated_services` metric; default:
    /// `$HOSTNAME` (or `/etc/hostname`), the process id and a random suffix.
    #[serde(default)]
    pub replica_name: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval_ms: default_checkpoint_ms(),
            checkpoint_max_records: default_checkpoint_records(),
            checkpoint_lanes: default_checkpoint_lanes(),
            evaluation_interval_ms: default_evaluation_ms(),
            idle_partition_ms: default_idle_ms(),
            dedupe_horizon_seconds: default_dedupe_horizon_seconds(),
            replica_name: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_group_id() -> String {
    "paritygate".into()
}
fn one() -> u32 {
    1
}
fn default_max_message_bytes() -> usize {
    1 << 20
}
fn default_pool_size() -> u32 {
    8
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_checkpoint_ms() -> u64 {
    1000
}
fn default_checkpoint_records() -> usize {
    50_000
}
fn default_checkpoint_lanes() -> usize {
    2
}
fn default_evaluation_ms() -> u64 {
    2000
}
fn default_idle_ms() -> u64 {
    10_000
}
fn default_dedupe_horizon_seconds() -> u64 {
    3_600
}

impl ServeConfig {
    /// `dedupe_horizon_seconds` in ms.
    pub fn dedupe_horizon_ms(&self) -> i64 {
        seconds_ms(self.dedupe_horizon_seconds)
    }
}

fn default_window_seconds() -> u64 {
    60
}
fn default_grace_seconds() -> u64 {
    30
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
    /// How payloads are written: `json` (default), `avro` (Confluent wire format, schemas from
    /// `[schema_registry]` or `diff --schemas`), `avro-raw` (one schema, `schema_file`).
    #[serde(default)]
    pub payload: Option<WireFormatName>,
    /// The `.avsc` of `payload = "avro-raw"` (relative to the config file).
    #[serde(default)]
    pub schema_file: Option<std::path::PathBuf>,
    /// How message keys are written: `json` (default: a JSON object key is canonicalized, anything
    /// else is its bytes), `string` (its bytes, never parsed), `avro`, `avro-raw`.
    #[serde(default)]
    pub key_format: Option<WireFormatName>,
    /// The `.avsc` of `key_format = "avro-raw"`.
    #[serde(default)]
    pub key_schema_file: Option<std::path::PathBuf>,
    /// `"debezium"`: records are Debezium envelopes (content `after`/`before`, operation `op`,
    /// position from `source`); per side in `[services.baseline]` / `[services.candidate]`.
    #[serde(default)]
    pub envelope: Option<EnvelopeName>,
    /// Event time for windows and settling: a header (Unix ms, e.g. `commit_ts_ms`) or a pointer
    /// (Unix ms or an RFC 3339 string); falls back to the record timestamp.
    #[serde(default)]
    pub event_time: Option<FieldSource>,
    /// Where the comparison starts in event time: `"beginning"` (the default: every event),
    /// `"auto"` (the later side's first event plus `start_margin_seconds`, decided once every
    /// partition has data) or an RFC 3339 instant (when the candidate was switched on); earlier
    /// events are counted per side as `before_start` and compared nowhere.
    #[serde(default)]
    pub compare_from: CompareFrom,
    /// With `compare_from = "auto"`: how far after the later side's first event the comparison
    /// starts, so a window the later side joined halfway is not judged. Default: `window_seconds`.
    #[serde(default)]
    pub start_margin_seconds: Option<u64>,
    /// Tumbling window length (event time).
    #[serde(default = "default_window_seconds")]
    pub window_seconds: u64,
    /// How far both sides' watermarks must be past a change before it counts (settled).
    #[serde(default = "default_grace_seconds")]
    pub grace_seconds: u64,
    #[serde(default)]
    pub gate: crate::gate::GateThresholds,
    /// Dead-letter / error topics per runtime: their volumes are a parity signal (`error_parity`).
    #[serde(default)]
    pub error_topics: Option<ErrorTopics>,
    /// `[services.targets]`: the two sink tables for row diffs (`docs/rowdiff.md`); optional.
    #[serde(default)]
    pub targets: Option<crate::rowdiff::TargetsConfig>,
}

/// Seconds of the config as milliseconds of event time (saturating: no value wraps negative).
fn seconds_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl ServiceConfig {
    /// `window_seconds` in ms.
    pub fn window_ms(&self) -> i64 {
        seconds_ms(self.window_seconds)
    }

    /// `start_margin_seconds` in ms (default: the window).
    pub fn start_margin_ms(&self) -> i64 {
        seconds_ms(self.start_margin_seconds.unwrap_or(self.window_seconds))
    }

    /// This service's topics on `side`.
    pub fn topics(&self, side: crate::model::Side) -> &[String] {
        match side {
            crate::model::Side::Baseline => &self.baseline_topics,
            crate::model::Side::Candidate => &self.candidate_topics,
        }
    }

    /// This service's error (DLQ) topics on `side`.
    pub fn error_topics_of(&self, side: crate::model::Side) -> &[String] {
        self.error_topics.as_ref().map_or(&[], |e| match side {
            crate::model::Side::Baseline => &e.baseline,
            crate::model::Side::Candidate => &e.candidate,
        })
    }
}

/// `error_topics = { baseline = [...], candidate = [...] }`: each runtime's DLQ / error outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorTopics {
    #[serde(default)]
    pub baseline: Vec<String>,
    #[serde(default)]
    pub candidate: Vec<String>,
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
    /// Only for positions: a composite position from several headers or pointers, ordered field
    /// by field (`["__$start_lsn", "__$seqval", "__$command_id"]`).
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub pointers: Vec<String>,
    /// Only for positions: how to read the value; `auto` tries LSN, SQL Server LSN, `0x` hex,
    /// integer, then binary.
    #[serde(default)]
    pub format: Option<PositionFormat>,
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
    /// This side's `payload`, `schema_file`, `key_format`, `key_schema_file` (a Debezium-Avro
    /// baseline against a Bento candidate that writes JSON).
    #[serde(default)]
    pub payload: Option<WireFormatName>,
    #[serde(default)]
    pub schema_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub key_format: Option<WireFormatName>,
    #[serde(default)]
    pub key_schema_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub envelope: Option<EnvelopeName>,
}

/// `compare_from`, parsed once: every event, those at or after an instant (Unix ms), or from a
/// start decided on the data (`auto`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompareFrom {
    #[default]
    Beginning,
    /// Decided once both sides have events: the evaluator starts the first epoch there
    /// (`serve::evaluate`), `diff` computes it from the capture (`replay`).
    Auto,
    At(i64),
}

impl CompareFrom {
    /// The configured start in Unix ms (`None`: every event, or `auto` before it is decided).
    pub fn start_ms(self) -> Option<i64> {
        match self {
            Self::Beginning | Self::Auto => None,
            Self::At(ms) => Some(ms),
        }
    }
}

impl<'de> Deserialize<'de> for CompareFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "beginning" => Ok(Self::Beginning),
            "auto" => Ok(Self::Auto),
            other => crate::core::range::parse_instant_ms(other)
                .map(Self::At)
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "compare_from `{other}` is neither \"beginning\", \"auto\" nor an RFC 3339 instant (e.g. {}): {e}",
                        crate::core::range::INSTANT_EXAMPLE
                    ))
                }),
        }
    }
}

/// An envelope's name in the config (`none`: the payload is the content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeName {
    None,
    Debezium,
}

/// A wire format's name in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WireFormatName {
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "string")]
    String,
    #[serde(rename = "avro")]
    Avro,
    #[serde(rename = "avro-raw")]
    AvroRaw,
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
