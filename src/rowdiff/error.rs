//! Errors of the row-diff module. Every variant says which side, table, column or field is at
//! fault, because the person reading it is fixing a config file or a sink, not this code.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RowDiffError {
    #[error("config: {field}: {message}")]
    Config { field: String, message: String },
    #[error("{side}: cannot connect ({url_env}): {source}")]
    Connect {
        side: &'static str,
        url_env: String,
        source: sqlx::Error,
    },
    #[error("{side}: table {table} does not exist (or is not visible to this user)")]
    MissingTable { side: &'static str, table: String },
    #[error("{side}: table {table} has no column `{column}` (named in targets.{field})")]
    MissingColumn {
        side: &'static str,
        table: String,
        column: String,
        field: &'static str,
    },
    #[error("schema differences (set targets.on_schema_difference = \"report\" to compare the common columns):\n  {}", .0.join("\n  "))]
    Schema(Vec<String>),
    #[error("{side}: query failed ({what}): {source}")]
    Query {
        side: &'static str,
        what: &'static str,
        source: sqlx::Error,
    },
}

impl RowDiffError {
    pub(crate) fn query(
        side: &'static str,
        what: &'static str,
    ) -> impl FnOnce(sqlx::Error) -> RowDiffError {
        move |source| RowDiffError::Query { side, what, source }
    }
}
