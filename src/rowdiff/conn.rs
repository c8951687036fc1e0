//! Connections to the two targets, configured for safe, deterministic reads.
//!
//! Every session is read-only (`default_transaction_read_only`), has the configured
//! `statement_timeout` and a short `lock_timeout` (plain `SELECT`s take only ACCESS SHARE locks;
//! if even that waits behind a DDL lock we give up instead of queueing other sessions behind us),
//! and fixes the output settings the normalization expressions rely on (`DateStyle = ISO`,
//! `IntervalStyle = postgres`, `extra_float_digits = 1`) and turns JIT and
//! parallel workers off. URLs are never printed: errors name
//! the environment variable instead, because URLs carry passwords.

use super::config::{ResolvedUrls, TargetsConfig};
use super::error::RowDiffError;
use crate::model::Side;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// One pool per side. Build it with [`connect`] so the session settings above hold; a pool made
/// elsewhere may produce texts that do not normalize as documented.
#[derive(Debug, Clone)]
pub struct Pools {
    pub baseline: PgPool,
    pub candidate: PgPool,
}

impl Pools {
    pub fn get(&self, side: Side) -> &PgPool {
        match side {
            Side::Baseline => &self.baseline,
            Side::Candidate => &self.candidate,
        }
    }
}

fn options(
    url: &str,
    timeout: Duration,
    side: Side,
    url_env: &str,
) -> Result<PgConnectOptions, RowDiffError> {
    let base = PgConnectOptions::from_str(url).map_err(|e| RowDiffError::Config {
        field: format!("targets.{}.url_env", side.as_str()),
        // The parse error never echoes the URL itself, only what is wrong with it.
        message: format!("`{url_env}` does not hold a valid postgres:// URL: {e}"),
    })?;
    Ok(base
        .application_name("paritygate-rowdiff")
        .extra_float_digits(Some(1))
        .options([
            ("default_transaction_read_only", "on".to_owned()),
            ("statement_timeout", timeout.as_millis().to_string()),
            ("lock_timeout", "2000".to_owned()),
            ("DateStyle", "ISO".to_owned()),
            ("IntervalStyle", "postgres".to_owned()),
            // Our generated queries look expensive to the planner (row estimates of key-range
            // joins are wild) and JIT compilation then costs more than the query itself.
            ("jit", "off".to_owned()),
            // One backend per side: parallel workers would take more of a production server,
            // and measured here the parallel plan of the checksum query is slower anyway.
            ("max_parallel_workers_per_gather", "0".to_owned()),
        ]))
}

async fn open(
    side: Side,
    url: &str,
    url_env: &str,
    timeout: Duration,
    max: u32,
) -> Result<PgPool, RowDiffError> {
    let opts = options(url, timeout, side, url_env)?;
    PgPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(Duration::from_secs(15))
        .connect_with(opts)
        .await
        .map_err(|source| RowDiffError::Connect {
            side: side.as_str(),
            url_env: url_env.to_owned(),
            source,
        })
}

/// Open both pools (`max_connections` each) and check that each answers.
pub async fn connect(
    cfg: &TargetsConfig,
    urls: &ResolvedUrls,
    max_connections: u32,
) -> Result<Pools, RowDiffError> {
    let timeout = cfg.statement_timeout()?;
    let baseline = open(
        Side::Baseline,
        &urls.baseline,
        &cfg.baseline.url_env,
        timeout,
        max_connections,
    )
    .await?;
    let candidate = open(
        Side::Candidate,
        &urls.candidate,
        &cfg.candidate.url_env,
        timeout,
        max_connections,
    )
    .await?;
    Ok(Pools {
        baseline,
        candidate,
    })
}
