//! paritygate's integration tests: one binary, one module per area, one shared harness.
//!
//! One binary instead of one per file: every file used to be its own crate that recompiled and
//! linked `support` and the whole dependency tree again (30 links of rdkafka, sqlx, axum), which
//! once filled a CI disk and cost link time on every run. Tests of all areas share the process:
//! names that must be unique (databases, topics, groups, environment variables) come from
//! [`support::unique`].
//!
//! - [`api`]: the HTTP API and the operator page on a real Postgres (gates, waivers, sign-offs, the
//!   browser test).
//! - [`cli`]: `diff`, `gate`, `generate`, the demo, the fixtures and the pinned canonical form.
//! - [`rowdiff`]: row diffs against real Postgres tables.
//! - [`ops`]: dashboards, alerts and recording rules with Prometheus/promtool, the compose file.
//! - [`serve`]: the live service over a real broker (tansu) and Postgres: end to end, crashes,
//!   replicas, groups, offsets, log resets, robustness, row sampling, two clusters, TLS and SASL.
//! - [`shape`]: the module graph is a ladder without cycles.

#![allow(clippy::unwrap_used)] // tests may unwrap (house rule)

mod api;
mod cli;
mod ops;
mod rowdiff;
mod serve;
mod shape;
mod support;
