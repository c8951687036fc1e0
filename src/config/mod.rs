//! `paritygate.toml`: loading, validation and compilation into comparison plans.
//!
//! Every error names the file, the service (when inside one) and the field, so an operator can
//! fix a config without reading code.

pub mod auth;
pub mod cluster;
pub mod env;
pub mod model;
pub mod plan;
mod waves;

use crate::core::plan::ServicePlan;
use crate::model::Side;
use model::{
    FileConfig, HttpConfig, KafkaConfig, ServeConfig, ServiceConfig, StoreConfig, WaveConfig,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A config that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {location}{message}")]
    Syntax {
        path: PathBuf,
        location: String,
        message: String,
    },
    #[error("{path}: service `{service}`: field `{field}`: {message}")]
    Service {
        path: PathBuf,
        service: String,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// A validated config with each service compiled.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub services: Vec<ServiceConfig>,
    /// Per service, in `services`' order (built with it: see [`Config::plan`]).
    plans: Vec<ServicePlan>,
    pub kafka: KafkaConfig,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub serve: ServeConfig,
    pub waves: Vec<WaveConfig>,
    /// Where `serve` fetches Avro schemas by id (`payload = "avro"`).
    pub schema_registry: model::SchemaRegistryConfig,
    /// API tokens (hashes), from `PARITYGATE_APPROVER_TOKENS` / `PARITYGATE_READER_TOKENS`.
    pub tokens: auth::Tokens,
    /// Per service, in `services`' order: BLAKE3 of its config table (see [`Config::digest`]).
    service_digests: Vec<String>,
    /// The sides whose topics [`Config::routes`] names: both, or one cluster's (see
    /// [`Config::on_cluster`]).
    sides: Vec<Side>,
}

impl Config {
    /// The compiled plan of service `index` (an index of `services`).
    pub fn plan(&self, index: usize) -> &ServicePlan {
        &self.plans[index]
    }

    /// Every service's plan, in `services`' order.
    pub fn plans(&self) -> &[ServicePlan] {
        &self.plans
    }

    /// BLAKE3 of service `index`'s `[[services]]` table, so a verdict or a sign-off can tell
    /// whether the rules it was made under have changed since (reformatting changes nothing).
    /// The services' names by index: how a batch's service indexes map to stored services.
    pub fn service_names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    pub fn digest(&self, index: usize) -> &str {
        &self.service_digests[index]
    }

    /// The Kafka clusters to consume (one, or one per side: `config::cluster`).
    pub fn clusters(&self) -> Vec<cluster::Cluster> {
        self.kafka.clusters()
    }

    /// This config as seen by `cluster`'s clients: `[kafka]` holds that cluster's brokers and
    /// properties, and the routes name only the topics of its sides. Everything that consumes
    /// (the consumer, the lanes, the offset copies) takes such a view, so it runs unchanged
    /// whether the sides share a cluster or not.
    pub fn on_cluster(&self, cluster: &cluster::Cluster) -> Config {
        let mut view = self.clone();
        view.kafka.brokers.clone_from(&cluster.brokers);
        view.kafka.properties.clone_from(&cluster.properties);
        view.kafka.baseline = None;
        view.kafka.candidate = None;
        view.sides.clone_from(&cluster.sides);
        view
    }

    /// The sides this config's routes cover.
    pub fn sides(&self) -> &[Side] {
        &self.sides
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        Self::parse_with_env(path, text, std::iter::empty())
    }

    /// Load, then apply `PARITYGATE_…` overrides from the process environment (for `serve`).
    pub fn load_with_env(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_with_env(path, &text, std::env::vars())
    }

    pub fn parse_with_env(
        path: &Path,
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut file: FileConfig =
            toml::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
        let file_error = |message| ConfigError::File {
            path: path.to_owned(),
            message,
        };
        env::check_no_secrets_in_file(&file).map_err(file_error)?;
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        env::apply(&mut file, vars.iter().cloned()).map_err(file_error)?;
        for name in env::unknown_names(vars.iter().map(|(n, _)| n.as_str())) {
            tracing::warn!(variable = %name, "unknown PARITYGATE_ environment variable, ignored (a typo?)");
        }
        let mut tokens = auth::Tokens::default();
        for (name, value) in &vars {
            let role = match name.as_str() {
                "PARITYGATE_APPROVER_TOKENS" => auth::Role::Approver,
                "PARITYGATE_READER_TOKENS" => auth::Role::Reader,
                _ => continue,
            };
            tokens.add(name, value, role).map_err(file_error)?;
        }
        let mut config = validate(path, file)?;
        config.tokens = tokens;
        config.service_digests = waves::service_digests(text, config.services.len());
        Ok(config)
    }

    /// topic → (service index, side), for the sides of this config (all, or one cluster's).
    /// Within one cluster a topic belongs to one service and side (`validate` checks it).
    pub fn routes(&self) -> HashMap<&str, (usize, Side)> {
        self.routes_of(ServiceConfig::topics)
    }

    /// Error (DLQ) topic → (service index, side): records there are counted, not compared.
    pub fn error_routes(&self) -> HashMap<&str, (usize, Side)> {
        self.routes_of(ServiceConfig::error_topics_of)
    }

    /// The side of this config's sides whose topics (compared or error) include `topic`.
    pub fn side_of(&self, topic: &str) -> Option<Side> {
        self.sides.iter().copied().find(|side| {
            self.services.iter().any(|s| {
                s.topics(*side)
                    .iter()
                    .chain(s.error_topics_of(*side))
                    .any(|t| t == topic)
            })
        })
    }

    fn routes_of<'a>(
        &'a self,
        topics: impl Fn(&'a ServiceConfig, Side) -> &'a [String],
    ) -> HashMap<&'a str, (usize, Side)> {
        let mut routes = HashMap::new();
        for (i, s) in self.services.iter().enumerate() {
            for side in self.sides.iter().copied() {
                for t in topics(s, side) {
                    routes.insert(t.as_str(), (i, side));
                }
            }
        }
        routes
    }

    /// Every topic `serve` consumes: the services' topics and their error topics.
    pub fn all_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .routes()
            .keys()
            .chain(self.error_routes().keys())
            .map(|t| (*t).to_owned())
            .collect();
        topics.sort();
        topics
    }
}

/// toml reports a byte span; turn it into "line L, column C: service `x`: " so the message says
/// which service's table holds the mistake.
fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let mut location = String::new();
    if let Some(span) = error.span() {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        location = format!("line {line}, column {column}: ");
        if let Some(block) = before.rfind("[[services]]") {
            let name = text[block..]
                .lines()
                .find_map(|l| l.trim().strip_prefix("name").map(str::trim))
                .and_then(|l| l.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned());
            if let Some(name) = name {
                location.push_str(&format!("service `{name}`: "));
            }
        }
    }
    ConfigError::Syntax {
        path: path.to_owned(),
        location,
        message: error.message().trim().to_owned(),
    }
}

fn validate(path: &Path, file: FileConfig) -> Result<Config, ConfigError> {
    let err = |service: &str, field: &str, message: String| ConfigError::Service {
        path: path.to_owned(),
        service: service.to_owned(),
        field: field.to_owned(),
        message,
    };
    if file.services.is_empty() {
        return Err(ConfigError::File {
            path: path.to_owned(),
            message: "no [[services]] configured".into(),
        });
    }
    let mut names = HashMap::new();
    // A topic belongs to one service and side per cluster; on two clusters the sides may use the
    // same names (a topic published to both the old and the new cluster).
    let split = file.kafka.split();
    let mut topics: HashMap<(Option<Side>, &str), &str> = HashMap::new();
    let mut plans = Vec::with_capacity(file.services.len());
    for (index, s) in file.services.iter().enumerate() {
        let valid_name = !s.name.is_empty()
            && s.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            let shown = if s.name.is_empty() {
                format!("#{}", index + 1)
            } else {
                s.name.clone()
            };
            return Err(err(&shown, "name", "must match [a-z0-9_-]+".into()));
        }
        if names.insert(s.name.as_str(), index).is_some() {
            return Err(err(&s.name, "name", "is used by another service".into()));
        }
        let errors = s.error_topics.as_ref();
        for (field, side, list) in [
            ("baseline_topics", Side::Baseline, &s.baseline_topics[..]),
            ("candidate_topics", Side::Candidate, &s.candidate_topics[..]),
            (
                "error_topics.baseline",
                Side::Baseline,
                errors.map_or(&[][..], |e| &e.baseline[..]),
            ),
            (
                "error_topics.candidate",
                Side::Candidate,
                errors.map_or(&[][..], |e| &e.candidate[..]),
            ),
        ] {
            let cluster = split.then_some(side);
            if list.is_empty() && !field.starts_with("error_topics") {
                return Err(err(&s.name, field, "must name at least one topic".into()));
            }
            for topic in list {
                if topic.is_empty() {
                    return Err(err(&s.name, field, "a topic name is empty".into()));
                }
                if let Some(other) = topics.insert((cluster, topic), &s.name) {
                    let message = if other == s.name {
                        format!("topic `{topic}` appears twice (baseline and candidate topics must be disjoint)")
                    } else {
                        format!("topic `{topic}` is already used by service `{other}`")
                    };
                    return Err(err(&s.name, field, message));
                }
            }
        }
        if s.window_seconds == 0 {
            return Err(err(&s.name, "window_seconds", "must be at least 1".into()));
        }
        if let Some(targets) = &s.targets {
            // Checked before any connection is made: a typo is reported with its field here,
            // not as an SQL error from `serve` or `rowdiff` later.
            targets.validate().map_err(|e| match e {
                crate::rowdiff::RowDiffError::Config { field, message } => {
                    err(&s.name, &field, message)
                }
                other => err(&s.name, "targets", other.to_string()),
            })?;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let plan = plan::compile(s, base).map_err(|e| err(&s.name, &e.field, e.message))?;
        plans.push(plan);
    }
    if file.kafka.replicas == 0 || file.kafka.replica_index >= file.kafka.replicas {
        return Err(ConfigError::File {
            path: path.to_owned(),
            message: "[kafka] replica_index must be below replicas (and replicas at least 1)"
                .into(),
        });
    }
    waves::validate_waves(path, &file)?;
    Ok(Config {
        path: path.to_owned(),
        services: file.services,
        plans,
        kafka: file.kafka,
        store: file.store,
        http: file.http,
        serve: file.serve,
        waves: file.waves,
        schema_registry: file.schema_registry,
        tokens: auth::Tokens::default(),
        service_digests: Vec::new(),
        sides: vec![Side::Baseline, Side::Candidate],
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
