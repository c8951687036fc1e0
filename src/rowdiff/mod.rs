//! Row diffs against the Postgres targets of both runtimes' sinks (issue 4).
//!
//! Streams can agree while a sink drops deletes or applies updates out of order, so the tables
//! are compared directly: continuously on a sample ([`sampler`], feeds the gate) and exhaustively
//! on demand ([`exhaustive`], `paritygate rowdiff`). Design notes: `docs/rowdiff.md`.
//!
//! - [`config`]: `[services.targets]`; [`conn`]: safe read-only sessions;
//! - [`schema`]: start-up check and the comparison plan; [`sql`]: every SQL text of the module;
//! - [`compare`]: column-by-column comparison reusing the stream comparison's canonical form;
//! - [`report`]: the JSON report and the CLI entry [`cli_rowdiff`]; [`stats`]: sample bounds.

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
pub use report::{cli_rowdiff, RowDiffReport};
