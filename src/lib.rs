//! paritygate: decides, with evidence, whether a data pipeline may be cut over from one runtime
//! (the *baseline*, Redpanda Connect) to another (the *candidate*, Bento).
//!
//! Module map, a ladder bottom to top (each rung uses only those below it; `docs/architecture.md`
//! draws it and `tests/it/shape.rs` keeps it so):
//! - [`model`]: the shared vocabulary: sides, topic-partitions, verdicts, criteria, tally kinds,
//!   the status read model.
//! - [`core`]: the pure comparison engine (no IO, no async, no clock): canonical form, digests,
//!   identities, key-level parity, positions.
//! - [`capture`] (dump readers), `gate` (criteria and hysteresis), `signoff` (wave rules),
//!   [`rowdiff`] (row diffs against Postgres targets), [`metrics`] (every metric name).
//! - [`config`]: the TOML contract users write, validated with errors that name file, service,
//!   field; which cluster each side is read from. [`kafka_tools`]: tansu and fast producing for
//!   benchmarks.
//! - [`replay`] (`paritygate diff`), [`store`] (the one owner of SQL), [`generate`] (live traffic).
//! - [`serve`]: the live dual run: consumers, lanes, checkpoints, evaluation.
//! - [`http`]: the API and the operator page. [`app`]: `serve` and HTTP wired together.
//! - [`cli`]: the command line.

pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod core;
mod gate;
pub mod generate;
pub mod http;
pub mod kafka_tools;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod rowdiff;
pub mod schemas;
pub mod serve;
mod signoff;
pub mod store;
