//! `PARITYGATE_…` environment overrides, and the rule that secrets come only from the environment.
//!
//! | variable | overrides |
//! |---|---|
//! | `PARITYGATE_KAFKA_BROKERS`, `_GROUP_ID`, `_ASSIGNMENT`, `_REPLICA_INDEX`, `_REPLICAS`, `_COMMIT_OFFSETS`, `_MAX_MESSAGE_BYTES` | `[kafka]` |
//! | `PARITYGATE_KAFKA_PROPERTY_<NAME>` | librdkafka property `<name>` (lower case, `_` → `.`), e.g. `…_SASL_PASSWORD` → `sasl.password` |
//! | `PARITYGATE_KAFKA_BASELINE_BROKERS`, `PARITYGATE_KAFKA_CANDIDATE_BROKERS` | `[kafka.baseline]` / `[kafka.candidate]` `brokers` |
//! | `PARITYGATE_KAFKA_BASELINE_PROPERTY_<NAME>`, `PARITYGATE_KAFKA_CANDIDATE_PROPERTY_<NAME>` | that side's librdkafka property (merged over `[kafka.properties]`) |
//! | `PARITYGATE_SCHEMA_REGISTRY_URL`, `_USERNAME`, `_PASSWORD`, `_TOKEN`; `PARITYGATE_SCHEMA_REGISTRY_{BASELINE,CANDIDATE}_…` the same per side | `[schema_registry]` (credentials only here) |
//! | `PARITYGATE_STORE_URL` | `[store] url` (the only place a database password may appear) |
//! | `PARITYGATE_STORE_MAX_CONNECTIONS` | `[store] max_connections` |
//! | `PARITYGATE_HTTP_LISTEN`, `PARITYGATE_HTTP_REQUIRE_TOKEN_FOR_READS` | `[http]` |
//! | `PARITYGATE_SERVE_CHECKPOINT_INTERVAL_MS`, `_CHECKPOINT_MAX_RECORDS`, `_CHECKPOINT_LANES`, `_EVALUATION_INTERVAL_MS`, `_IDLE_PARTITION_MS`, `_REPLICA_NAME` | `[serve]` |

use super::model::{Assignment, FileConfig};

/// Every `PARITYGATE_…` variable paritygate reads, for tools that check a deployment (the compose
/// file's test): the config overrides of [`apply`], then those read elsewhere (tokens, logging, the
/// CLI's `env =` arguments). `PARITYGATE_KAFKA_PROPERTY_<NAME>` is a family: see [`is_known_name`].
pub const ENV_VARS: &[&str] = &[
    "PARITYGATE_KAFKA_BROKERS",
    "PARITYGATE_KAFKA_GROUP_ID",
    "PARITYGATE_KAFKA_ASSIGNMENT",
    "PARITYGATE_KAFKA_REPLICA_INDEX",
    "PARITYGATE_KAFKA_REPLICAS",
    "PARITYGATE_KAFKA_COMMIT_OFFSETS",
    "PARITYGATE_KAFKA_MAX_MESSAGE_BYTES",
    "PARITYGATE_KAFKA_BASELINE_BROKERS",
    "PARITYGATE_KAFKA_CANDIDATE_BROKERS",
    "PARITYGATE_STORE_URL",
    "PARITYGATE_SCHEMA_REGISTRY_URL",
    "PARITYGATE_SCHEMA_REGISTRY_USERNAME",
    "PARITYGATE_SCHEMA_REGISTRY_PASSWORD",
    "PARITYGATE_SCHEMA_REGISTRY_TOKEN",
    "PARITYGATE_SCHEMA_REGISTRY_BASELINE_URL",
    "PARITYGATE_SCHEMA_REGISTRY_BASELINE_USERNAME",
    "PARITYGATE_SCHEMA_REGISTRY_BASELINE_PASSWORD",
    "PARITYGATE_SCHEMA_REGISTRY_BASELINE_TOKEN",
    "PARITYGATE_SCHEMA_REGISTRY_CANDIDATE_URL",
    "PARITYGATE_SCHEMA_REGISTRY_CANDIDATE_USERNAME",
    "PARITYGATE_SCHEMA_REGISTRY_CANDIDATE_PASSWORD",
    "PARITYGATE_SCHEMA_REGISTRY_CANDIDATE_TOKEN",
    "PARITYGATE_STORE_MAX_CONNECTIONS",
    "PARITYGATE_HTTP_LISTEN",
    "PARITYGATE_HTTP_REQUIRE_TOKEN_FOR_READS",
    "PARITYGATE_SERVE_CHECKPOINT_INTERVAL_MS",
    "PARITYGATE_SERVE_CHECKPOINT_MAX_RECORDS",
    "PARITYGATE_SERVE_CHECKPOINT_LANES",
    "PARITYGATE_SERVE_EVALUATION_INTERVAL_MS",
    "PARITYGATE_SERVE_IDLE_PARTITION_MS",
    "PARITYGATE_SERVE_REPLICA_NAME",
    "PARITYGATE_APPROVER_TOKENS",
    "PARITYGATE_READER_TOKENS",
    "PARITYGATE_LOG",
    "PARITYGATE_LOG_FORMAT",
    "PARITYGATE_CONFIG",
    "PARITYGATE_URL",
    "PARITYGATE_TOKEN",
    "PARITYGATE_TARGETS_URL",
];

/// The `PARITYGATE_…` variables among `vars` that paritygate does not read: a typo such as
/// `PARITYGATE_KAFKA_BROKER` must not be silent (`Config::parse_with_env` logs each).
pub fn unknown_names<'a>(vars: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    vars.into_iter()
        .filter(|n| n.starts_with("PARITYGATE_") && !is_known_name(n))
        .map(str::to_owned)
        .collect()
}

/// The prefixes of the property families: `[kafka.properties]` and each side's.
const PROPERTY_PREFIXES: [&str; 3] = [
    "PARITYGATE_KAFKA_PROPERTY_",
    "PARITYGATE_KAFKA_BASELINE_PROPERTY_",
    "PARITYGATE_KAFKA_CANDIDATE_PROPERTY_",
];

/// Whether paritygate reads a variable of this name.
pub fn is_known_name(name: &str) -> bool {
    ENV_VARS.contains(&name)
        || PROPERTY_PREFIXES
            .iter()
            .any(|prefix| name.strip_prefix(prefix).is_some_and(|p| !p.is_empty()))
}

/// `SASL_PASSWORD` → `sasl.password`.
fn property_name(variable_suffix: &str) -> String {
    variable_suffix.to_ascii_lowercase().replace('_', ".")
}

/// Property names whose values are secrets: never accepted from the file, never logged.
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "sasl.jaas", "ssl.key.pem", "token"]
        .iter()
        .any(|s| n.contains(s))
}

/// Refuse secrets written into the file: they belong in the environment.
pub fn check_no_secrets_in_file(file: &FileConfig) -> Result<(), String> {
    let k = &file.kafka;
    for (table, variable, properties) in [
        ("kafka", "KAFKA", Some(&k.properties)),
        (
            "kafka.baseline",
            "KAFKA_BASELINE",
            k.baseline.as_ref().map(|b| &b.properties),
        ),
        (
            "kafka.candidate",
            "KAFKA_CANDIDATE",
            k.candidate.as_ref().map(|c| &c.properties),
        ),
    ] {
        if let Some(name) = properties
            .into_iter()
            .flat_map(|p| p.keys())
            .find(|k| is_secret_property(k))
        {
            return Err(format!(
                "[{table}.properties] `{name}` is a secret: set it with PARITYGATE_{variable}_PROPERTY_{} instead",
                name.to_ascii_uppercase().replace('.', "_")
            ));
        }
    }
    if let Some(url) = &file.store.url {
        let authority = url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        if authority
            .split('@')
            .next()
            .is_some_and(|creds| authority.contains('@') && creds.contains(':'))
        {
            return Err(
                "[store] `url` contains a password: set PARITYGATE_STORE_URL instead".into(),
            );
        }
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("environment variable {name}: cannot parse `{value}`"))
}

/// Apply overrides from `vars` (the process environment in production, a list in tests).
pub fn apply(
    file: &mut FileConfig,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), String> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("PARITYGATE_") else {
            continue;
        };
        match rest {
            "KAFKA_BROKERS" => file.kafka.brokers = value,
            "KAFKA_GROUP_ID" => file.kafka.group_id = value,
            "KAFKA_ASSIGNMENT" => {
                file.kafka.assignment = match value.as_str() {
                    "group" => Assignment::Group,
                    "manual" => Assignment::Manual,
                    _ => {
                        return Err(format!(
                            "environment variable {name}: `group` or `manual`, not `{value}`"
                        ))
                    }
                }
            }
            "KAFKA_REPLICA_INDEX" => file.kafka.replica_index = parse(&name, &value)?,
            "KAFKA_REPLICAS" => file.kafka.replicas = parse(&name, &value)?,
            "KAFKA_COMMIT_OFFSETS" => file.kafka.commit_offsets = parse(&name, &value)?,
            "KAFKA_MAX_MESSAGE_BYTES" => file.kafka.max_message_bytes = parse(&name, &value)?,
            "KAFKA_BASELINE_BROKERS" => {
                file.kafka.baseline.get_or_insert_default().brokers = Some(value)
            }
            "KAFKA_CANDIDATE_BROKERS" => {
                file.kafka.candidate.get_or_insert_default().brokers = Some(value)
            }
            "STORE_URL" => file.store.url = Some(value),
            registry if registry.starts_with("SCHEMA_REGISTRY_") => {
                let rest = &registry["SCHEMA_REGISTRY_".len()..];
                let r = &mut file.schema_registry;
                let (endpoint, field) = if let Some(f) = rest.strip_prefix("BASELINE_") {
                    (r.baseline.get_or_insert_default(), f)
                } else if let Some(f) = rest.strip_prefix("CANDIDATE_") {
                    (r.candidate.get_or_insert_default(), f)
                } else {
                    (&mut r.registry, rest)
                };
                match field {
                    "URL" => endpoint.url = Some(value),
                    "USERNAME" => endpoint.username = Some(value),
                    "PASSWORD" => endpoint.password = Some(value),
                    "TOKEN" => endpoint.token = Some(value),
                    _ => {}
                }
            }
            "STORE_MAX_CONNECTIONS" => file.store.max_connections = parse(&name, &value)?,
            "HTTP_LISTEN" => file.http.listen = value,
            "HTTP_REQUIRE_TOKEN_FOR_READS" => {
                file.http.require_token_for_reads = parse(&name, &value)?
            }
            "SERVE_CHECKPOINT_INTERVAL_MS" => {
                file.serve.checkpoint_interval_ms = parse(&name, &value)?
            }
            "SERVE_CHECKPOINT_MAX_RECORDS" => {
                file.serve.checkpoint_max_records = parse(&name, &value)?
            }
            "SERVE_CHECKPOINT_LANES" => file.serve.checkpoint_lanes = parse(&name, &value)?,
            "SERVE_EVALUATION_INTERVAL_MS" => {
                file.serve.evaluation_interval_ms = parse(&name, &value)?
            }
            "SERVE_IDLE_PARTITION_MS" => file.serve.idle_partition_ms = parse(&name, &value)?,
            "SERVE_REPLICA_NAME" => file.serve.replica_name = Some(value),
            other => {
                let k = &mut file.kafka;
                if let Some(property) = other.strip_prefix("KAFKA_PROPERTY_") {
                    k.properties.insert(property_name(property), value);
                } else if let Some(property) = other.strip_prefix("KAFKA_BASELINE_PROPERTY_") {
                    let side = k.baseline.get_or_insert_default();
                    side.properties.insert(property_name(property), value);
                } else if let Some(property) = other.strip_prefix("KAFKA_CANDIDATE_PROPERTY_") {
                    let side = k.candidate.get_or_insert_default();
                    side.properties.insert(property_name(property), value);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn environment_overrides_file_values() {
        let mut f = file("[kafka]\nbrokers = \"a:1\"\n[http]\nlisten = \"0.0.0.0:1\"\n");
        let vars = [
            ("PARITYGATE_KAFKA_BROKERS", "b:2"),
            ("PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD", "hunter2"),
            ("PARITYGATE_SERVE_CHECKPOINT_INTERVAL_MS", "250"),
            ("PARITYGATE_KAFKA_ASSIGNMENT", "manual"),
            ("PARITYGATE_KAFKA_COMMIT_OFFSETS", "false"),
            ("HOME", "/root"),
        ];
        apply(
            &mut f,
            vars.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
        .unwrap();
        assert_eq!(f.kafka.brokers, "b:2");
        assert_eq!(f.kafka.properties["sasl.password"], "hunter2");
        assert_eq!(f.serve.checkpoint_interval_ms, 250);
        assert_eq!(f.kafka.assignment, Assignment::Manual);
        assert!(!f.kafka.commit_offsets);
        assert!(
            file("").kafka.commit_offsets,
            "committed to Kafka by default"
        );
        assert_eq!(f.http.listen, "0.0.0.0:1");
    }

    #[test]
    fn each_side_s_cluster_comes_from_the_environment_and_keeps_its_secrets_there() {
        let mut f = file("[kafka]\nbrokers = \"a:1\"\n");
        let vars = [
            ("PARITYGATE_KAFKA_CANDIDATE_BROKERS", "msk:9096"),
            (
                "PARITYGATE_KAFKA_CANDIDATE_PROPERTY_SASL_PASSWORD",
                "s3cret",
            ),
            ("PARITYGATE_KAFKA_BASELINE_PROPERTY_SASL_USERNAME", "rp"),
        ];
        apply(
            &mut f,
            vars.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
        .unwrap();
        let candidate = f.kafka.candidate.clone().unwrap();
        assert_eq!(candidate.brokers.as_deref(), Some("msk:9096"));
        assert_eq!(candidate.properties["sasl.password"], "s3cret");
        assert!(
            f.kafka.properties.is_empty(),
            "not merged into the shared table"
        );
        assert_eq!(f.kafka.baseline.unwrap().properties["sasl.username"], "rp");
        assert!(vars.iter().all(|(n, _)| is_known_name(n)));
        assert_eq!(
            unknown_names(["PARITYGATE_KAFKA_CANDIDATE_BROKER"]),
            ["PARITYGATE_KAFKA_CANDIDATE_BROKER"]
        );
        let secret = file("[kafka.candidate.properties]\n\"sasl.password\" = \"x\"\n");
        let refused = check_no_secrets_in_file(&secret).unwrap_err();
        assert!(
            refused.contains("[kafka.candidate.properties]")
                && refused.contains("PARITYGATE_KAFKA_CANDIDATE_PROPERTY_SASL_PASSWORD"),
            "{refused}"
        );
    }

    #[test]
    fn every_override_is_listed() {
        // Each listed config override changes the file; an unlisted name would be ignored.
        for name in ENV_VARS.iter().filter(|n| {
            ![
                "APPROVER_TOKENS",
                "READER_TOKENS",
                "LOG",
                "LOG_FORMAT",
                "CONFIG",
                "URL",
                "TOKEN",
                "TARGETS_URL",
            ]
            .iter()
            .any(|o| **n == format!("PARITYGATE_{o}"))
        }) {
            let mut f = file("");
            let value = if name.ends_with("ASSIGNMENT") {
                "manual"
            } else if name.ends_with("REQUIRE_TOKEN_FOR_READS") {
                "true" // the default is false
            } else if name.ends_with("COMMIT_OFFSETS") {
                "false" // the default is true
            } else {
                "7"
            };
            apply(&mut f, [(name.to_string(), value.to_string())]).unwrap();
            let before = format!("{:?}", file(""));
            assert_ne!(format!("{f:?}"), before, "{name} changes nothing");
        }
        assert!(is_known_name("PARITYGATE_KAFKA_PROPERTY_SASL_USERNAME"));
        assert!(!is_known_name("PARITYGATE_KAFKA_PROPERTY_"));
        assert!(!is_known_name("PARITYGATE_BROKERS"));
    }

    #[test]
    fn unknown_variables_are_named() {
        let vars = [
            "PARITYGATE_KAFKA_BROKER",
            "PARITYGATE_KAFKA_BROKERS",
            "PARITYGATE_KAFKA_PROPERTY_SASL_USERNAME",
            "PATH",
        ];
        assert_eq!(unknown_names(vars), ["PARITYGATE_KAFKA_BROKER"]);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut f = file("");
        let err = apply(&mut f, [("PARITYGATE_KAFKA_REPLICAS".into(), "two".into())]).unwrap_err();
        assert_eq!(
            err,
            "environment variable PARITYGATE_KAFKA_REPLICAS: cannot parse `two`"
        );
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        let f = file("[kafka.properties]\n\"sasl.password\" = \"x\"\n");
        assert!(check_no_secrets_in_file(&f)
            .unwrap_err()
            .contains("PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD"));
        let f = file("[store]\nurl = \"postgres://u:pw@db/x\"\n");
        assert!(check_no_secrets_in_file(&f)
            .unwrap_err()
            .contains("PARITYGATE_STORE_URL"));
        let f = file("[store]\nurl = \"postgres://u@db/x\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n");
        assert!(check_no_secrets_in_file(&f).is_ok());
    }
}
