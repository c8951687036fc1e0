//! Row diffs against the Postgres targets of both runtimes' sinks (issue 4).
//!
//! Streams can agree while a sink drops deletes or applies updates out of order, so the tables
//! are compared directly: continuously on a sample ([`sampler`], feeds the gate) and exhaustively
//! on demand ([`exhaustive`], `paritygate rowdiff`). Design notes: `docs/rowdiff.md`.
//!
//! - [`config`]: `[services.targets]`; [`conn`]: safe read-only sessions;
//! - [`schema`]: start-up check and the comparison plan; [`sql`]: every SQL text of the module;
//! - [`compare`]: column-by-column comparison reusing the stream comparison's canonical form;
//! - [`report`]: the JSON report; [`stats`]: sample bounds; [`cli_rowdiff`] (here): the CLI entry.

pub mod buckets;
pub mod compare;
pub mod config;
pub mod conn;
pub mod error;
pub mod exhaustive;
pub mod phases;
pub mod report;
pub mod sampler;
pub mod schema;
pub mod sql;
pub mod stats;

pub use config::{ResolvedUrls, TargetsConfig};
pub use error::RowDiffError;
pub use report::RowDiffReport;

/// `paritygate rowdiff`: run the exhaustive diff for one service and print the result.
/// Errors are returned (the caller prints them and exits 2); a finished diff returns 0 or 1.
pub async fn cli_rowdiff(
    targets: &TargetsConfig,
    service: &str,
    json: bool,
    max_examples: usize,
) -> anyhow::Result<i32> {
    let urls = ResolvedUrls::from_env(targets)?;
    let options = exhaustive::Options {
        service: service.to_owned(),
        max_examples,
        ..Default::default()
    };
    let report = exhaustive::run(targets, &urls, &options).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary(max_examples));
    }
    Ok(report.exit_code())
}
