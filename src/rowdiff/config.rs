//! `[services.targets]`: where the two sink tables live and how they are compared.
//!
//! The struct is embedded by the service config as `targets: Option<TargetsConfig>`. Validation
//! ([`TargetsConfig::validate`]) runs before any connection is made, so a typo in the TOML is
//! reported with the field name instead of surfacing later as an SQL error.

use super::error::RowDiffError;
use serde::Deserialize;
use std::time::Duration;

/// One side's table: the URL comes from an environment variable so secrets stay out of the file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SideTarget {
    /// Name of the environment variable holding the `postgres://` URL.
    pub url_env: String,
    /// `schema.table` or `table` (schema `public`). Double quotes keep dots and case:
    /// `"My Schema"."Orders"`.
    pub table: String,
}

/// What a column present on one side only, or a type pair that cannot be compared, means.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaDifference {
    /// Refuse to start: the safe default, a silently excluded column would hide drift.
    #[default]
    Error,
    /// Compare the common, comparable columns and list the differences in the report.
    Report,
}

/// Which rows a sampler round draws its uniform sample from (`docs/rowdiff.md`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SampleScope {
    /// Every row of the tables: a window of the key-hash space over both tables.
    #[default]
    Table,
    /// Rows whose key had an event in the current observation epoch: a uniform sample of those
    /// keys, drawn from paritygate's state. A row no event of the epoch touched (history a
    /// candidate table that started empty lacks) is out of scope.
    Changed,
}

/// Sampler settings (continuous diffs in `serve`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    /// Rows per round drawn uniformly by key hash (default 1000).
    pub sample_size: u64,
    /// Seconds between rounds (default 60). The service's loop owns the timer.
    pub interval_secs: f64,
    /// Seconds a difference must persist before it counts (default 30): rows still in flight
    /// through a sink are re-read after this delay and only still-differing rows are drift.
    pub settle_delay_secs: f64,
    /// Upper bound on rows the sampler *reads* per second per side, averaged over rounds
    /// (default 20000). A round scans the key columns of the whole table, so rounds are
    /// spaced to `table_rows / max_rows_per_second` seconds at least.
    pub max_rows_per_second: f64,
    /// The rows the uniform sample is drawn from (default `table`).
    pub scope: SampleScope,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            sample_size: 1000,
            interval_secs: 60.0,
            settle_delay_secs: 30.0,
            max_rows_per_second: 20_000.0,
            scope: SampleScope::Table,
        }
    }
}

/// The `[services.targets]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetsConfig {
    pub baseline: SideTarget,
    pub candidate: SideTarget,
    /// Primary-key columns identifying a row on both sides; composite keys are supported.
    pub key_columns: Vec<String>,
    /// Columns never compared (sink bookkeeping such as `__sync_timestamp`). Default: none.
    #[serde(default)]
    pub ignore_columns: Vec<String>,
    #[serde(default)]
    pub on_schema_difference: OnSchemaDifference,
    /// Per-statement timeout in seconds for every query paritygate sends (default 300). The
    /// exhaustive diff reads whole tables; the sampler's queries are far shorter.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: f64,
    #[serde(default)]
    pub sample: SampleConfig,
}

fn default_statement_timeout() -> f64 {
    300.0
}

/// A table name split into schema and relation, unquoted (the catalog spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    /// Parse `schema.table`, `table`, or double-quoted parts (`""` escapes a quote). Unquoted
    /// parts fold to lower case as Postgres does, so `public.Orders` means `public.orders`.
    pub fn parse(text: &str) -> Option<TableName> {
        let mut parts = Vec::new();
        let mut chars = text.trim().chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        '"' => break,
                        c => part.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '"' || c.is_whitespace() {
                        return None;
                    }
                    part.extend(c.to_lowercase());
                    chars.next();
                }
            }
            if part.is_empty() {
                return None;
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return None,
            }
        }
        match parts.len() {
            1 => Some(TableName {
                schema: "public".into(),
                name: parts.remove(0),
            }),
            2 => {
                let name = parts.remove(1);
                Some(TableName {
                    schema: parts.remove(0),
                    name,
                })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

fn bad(field: &str, message: impl Into<String>) -> RowDiffError {
    RowDiffError::Config {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn positive(field: &str, value: f64) -> Result<Duration, RowDiffError> {
    if value.is_finite() && value > 0.0 && value < 1e9 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(bad(
            field,
            format!("must be a positive number of seconds, got {value}"),
        ))
    }
}

impl TargetsConfig {
    /// Check everything that can be checked without a database; returns the parsed table names.
    pub fn validate(&self) -> Result<(TableName, TableName), RowDiffError> {
        let mut tables = Vec::new();
        for (side, target) in [("baseline", &self.baseline), ("candidate", &self.candidate)] {
            if target.url_env.trim().is_empty() {
                return Err(bad(
                    &format!("targets.{side}.url_env"),
                    "must name an environment variable",
                ));
            }
            let table = TableName::parse(&target.table).ok_or_else(|| {
                bad(
                    &format!("targets.{side}.table"),
                    format!(
                        "`{}` is not `schema.table` or `table` (quote unusual names with \")",
                        target.table
                    ),
                )
            })?;
            tables.push(table);
        }
        if self.key_columns.is_empty() {
            return Err(bad("targets.key_columns", "must list at least one column"));
        }
        for (field, list) in [
            ("targets.key_columns", &self.key_columns),
            ("targets.ignore_columns", &self.ignore_columns),
        ] {
            if let Some(empty) = list.iter().find(|c| c.is_empty()) {
                return Err(bad(
                    field,
                    format!("contains an empty column name `{empty}`"),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = list.iter().find(|c| !seen.insert(c.as_str())) {
                return Err(bad(field, format!("lists `{dup}` twice")));
            }
        }
        if let Some(both) = self
            .key_columns
            .iter()
            .find(|k| self.ignore_columns.contains(k))
        {
            return Err(bad(
                "targets.ignore_columns",
                format!("`{both}` is a key column and cannot be ignored"),
            ));
        }
        self.statement_timeout()?;
        positive("targets.sample.interval_secs", self.sample.interval_secs)?;
        // A zero settle delay is legal (tests, quiescent tables): only negative values are wrong.
        if !(self.sample.settle_delay_secs.is_finite() && self.sample.settle_delay_secs >= 0.0) {
            return Err(bad(
                "targets.sample.settle_delay_secs",
                "must be zero or a positive number of seconds",
            ));
        }
        if !(self.sample.max_rows_per_second.is_finite() && self.sample.max_rows_per_second > 0.0) {
            return Err(bad(
                "targets.sample.max_rows_per_second",
                "must be a positive number",
            ));
        }
        if self.sample.sample_size == 0 {
            return Err(bad("targets.sample.sample_size", "must be at least 1"));
        }
        let candidate = tables
            .pop()
            .ok_or_else(|| bad("targets", "internal: no candidate table"))?;
        let baseline = tables
            .pop()
            .ok_or_else(|| bad("targets", "internal: no baseline table"))?;
        Ok((baseline, candidate))
    }

    pub fn statement_timeout(&self) -> Result<Duration, RowDiffError> {
        positive(
            "targets.statement_timeout_secs",
            self.statement_timeout_secs,
        )
    }
}

/// The two connection URLs, read from the environment variables the config names.
#[derive(Debug, Clone)]
pub struct ResolvedUrls {
    pub baseline: String,
    pub candidate: String,
}

impl ResolvedUrls {
    pub fn from_env(cfg: &TargetsConfig) -> Result<ResolvedUrls, RowDiffError> {
        let get = |side: &str, var: &str| {
            std::env::var(var).map_err(|_| {
                bad(
                    &format!("targets.{side}.url_env"),
                    format!("environment variable `{var}` is not set"),
                )
            })
        };
        Ok(ResolvedUrls {
            baseline: get("baseline", &cfg.baseline.url_env)?,
            candidate: get("candidate", &cfg.candidate.url_env)?,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
