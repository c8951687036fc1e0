//! paritygate: decides, with evidence, whether a data pipeline may be cut over from one runtime
//! (the *baseline*, Redpanda Connect) to another (the *candidate*, Bento).
//!
//! Module map (see `docs/architecture.md`):
//! - [`core`]: the pure comparison engine: canonical form, digests, deduplication, key-level parity.
//! - [`config`]: the TOML contract users write, validated with errors that name file, service, field.
//! - [`capture`]: readers for `kcat -J` / `rpk topic consume` JSON Lines dumps (plain or gzip).
//! - [`replay`]: `paritygate diff`, the capture-replay adapter around the core.
//! - [`cli`]: the command line.

pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod core;
pub mod gate;
pub mod generate;
pub mod http;
pub mod kafka_tools;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod rowdiff;
pub mod serve;
pub mod signoff;
pub mod store;
