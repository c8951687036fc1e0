//! The exhaustive diff: every differing row of the two tables, in three phases per side, both
//! sides running concurrently, each side inside one read-only REPEATABLE READ transaction so all
//! phases see one snapshot of its table.
//!
//! 1. **Checksums** (one scan per table): rows are put in `2^k` buckets by a hash of the key;
//!    per bucket the database returns `count(*)` and the exact `sum` of a 64-bit row hash.
//! 2. **Members** of the buckets whose count or sum differ (one filtered scan): key texts and
//!    row hashes. Keys on one side only, or with different row hashes, are the suspects.
//! 3. **Rows** of the suspects, looked up by key: compared column by column in Rust
//!    ([`super::compare`]), which has the final word (a hash difference that is equal by meaning,
//!    such as jsonb `1.50` vs `1.5`, is not reported).
//!
//! See `docs/rowdiff.md` for why sums of typed hashes rather than md5 of row text.

use super::buckets::{bucket_count, choose_bucketing, range_key, Bucketing};
use super::compare::{diff_rows, Key};
use super::config::{ResolvedUrls, TargetsConfig};
use super::conn::{self, Pools};
use super::error::RowDiffError;
use super::phases::{begin_snapshot, checksums, key_range, members, rows_by_keys, Checksums};
use super::report::{mismatches, tally, RowDiffReport, SideRows};
use super::schema::{self, Plan};
use crate::model::{Side, Verdict};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct Options {
    pub service: String,
    /// Differences that carry row values in the report (all differing keys are listed anyway).
    pub max_examples: usize,
    /// Number of buckets (rounded up to a power of two); `None` sizes it from the table estimate
    /// (about 64 rows per bucket, 256 to 16,384 buckets).
    pub buckets: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            service: String::new(),
            max_examples: 20,
            buckets: None,
        }
    }
}

/// Connect, check the schema and run the diff.
pub async fn run(
    cfg: &TargetsConfig,
    urls: &ResolvedUrls,
    opts: &Options,
) -> Result<RowDiffReport, RowDiffError> {
    let start = Instant::now();
    let pools = conn::connect(cfg, urls, 1).await?;
    let plan = schema::plan(cfg, &pools).await?;
    let setup_ms = start.elapsed().as_millis() as u64;
    let mut report = run_with(&plan, &pools, opts).await?;
    report
        .timings_ms
        .insert("connect_and_schema".into(), setup_ms);
    report
        .timings_ms
        .insert("total".into(), start.elapsed().as_millis() as u64);
    Ok(report)
}

struct SideResult {
    sums: Checksums,
    phase1_ms: u64,
}

async fn snapshot_and_range(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
) -> Result<Option<(i64, i64)>, RowDiffError> {
    begin_snapshot(conn, side).await?;
    match range_key(plan) {
        Some(col) => key_range(conn, plan, side, &col).await,
        None => Ok(None),
    }
}

async fn phase1(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    bucketing: Bucketing,
) -> Result<SideResult, RowDiffError> {
    let t = Instant::now();
    let sums = checksums(conn, plan, side, bucketing).await?;
    Ok(SideResult {
        sums,
        phase1_ms: t.elapsed().as_millis() as u64,
    })
}

/// Run the three phases on already checked tables.
pub async fn run_with(
    plan: &Plan,
    pools: &Pools,
    opts: &Options,
) -> Result<RowDiffReport, RowDiffError> {
    let n = bucket_count(plan, opts.buckets);
    let mut bconn = pools
        .baseline
        .acquire()
        .await
        .map_err(RowDiffError::query("baseline", "acquire"))?;
    let mut cconn = pools
        .candidate
        .acquire()
        .await
        .map_err(RowDiffError::query("candidate", "acquire"))?;
    let mut timings = BTreeMap::new();
    let mut work = BTreeMap::new();

    let t = Instant::now();
    let (br, cr) = tokio::try_join!(
        snapshot_and_range(&mut bconn, plan, Side::Baseline),
        snapshot_and_range(&mut cconn, plan, Side::Candidate)
    )?;
    let range = match (br, cr) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (one, other) => one.or(other),
    };
    let bucketing = choose_bucketing(n, range);
    let (b, c) = tokio::try_join!(
        phase1(&mut bconn, plan, Side::Baseline, bucketing),
        phase1(&mut cconn, plan, Side::Candidate, bucketing)
    )?;
    timings.insert("checksums".to_owned(), t.elapsed().as_millis() as u64);
    timings.insert("checksums_baseline".to_owned(), b.phase1_ms);
    timings.insert("checksums_candidate".to_owned(), c.phase1_ms);

    let all: HashSet<i64> = b
        .sums
        .buckets
        .keys()
        .chain(c.sums.buckets.keys())
        .copied()
        .collect();
    let mut dirty: Vec<i64> = all
        .into_iter()
        .filter(|k| b.sums.buckets.get(k) != c.sums.buckets.get(k))
        .collect();
    dirty.sort_unstable();
    work.insert("differing_buckets".to_owned(), dirty.len() as u64);
    work.insert("buckets".to_owned(), n);
    work.insert(
        "range_buckets".to_owned(),
        u64::from(matches!(bucketing, Bucketing::Range { .. })),
    );

    let mut diffs = Vec::new();
    let mut duplicate_keys = BTreeMap::new();
    if !dirty.is_empty() {
        let t = Instant::now();
        let ((bm, bdup), (cm, cdup)) = tokio::try_join!(
            members(&mut bconn, plan, Side::Baseline, bucketing, &dirty),
            members(&mut cconn, plan, Side::Candidate, bucketing, &dirty)
        )?;
        timings.insert("members".to_owned(), t.elapsed().as_millis() as u64);
        for (side, n) in [("baseline", bdup), ("candidate", cdup)] {
            if n > 0 {
                duplicate_keys.insert(side.to_owned(), n);
            }
        }
        let mut suspects: Vec<Key> = bm
            .iter()
            .filter(|(k, h)| cm.get(*k) != Some(h))
            .map(|(k, _)| k.clone())
            .collect();
        suspects.extend(cm.keys().filter(|k| !bm.contains_key(*k)).cloned());
        work.insert("suspect_keys".to_owned(), suspects.len() as u64);

        let t = Instant::now();
        let (brows, crows) = tokio::try_join!(
            rows_by_keys(&mut bconn, plan, Side::Baseline, &suspects),
            rows_by_keys(&mut cconn, plan, Side::Candidate, &suspects)
        )?;
        timings.insert("rows".to_owned(), t.elapsed().as_millis() as u64);
        let t = Instant::now();
        diffs = diff_rows(plan, &brows, &crows);
        timings.insert("compare".to_owned(), t.elapsed().as_millis() as u64);
    }
    // The transactions only read; ending them explicitly returns clean connections to the pool.
    for (conn, side) in [(&mut bconn, "baseline"), (&mut cconn, "candidate")] {
        sqlx::query("COMMIT")
            .execute(&mut **conn)
            .await
            .map_err(RowDiffError::query(side, "commit"))?;
    }

    let (rows, columns) = tally(&diffs);
    let verdict = if diffs.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Ok(RowDiffReport {
        service: opts.service.clone(),
        verdict,
        baseline: SideRows { rows: b.sums.rows },
        candidate: SideRows { rows: c.sums.rows },
        rows,
        columns,
        mismatches: mismatches(plan, &diffs, opts.max_examples),
        schema_differences: plan.schema_differences.clone(),
        duplicate_keys,
        timings_ms: timings,
        work,
    })
}
