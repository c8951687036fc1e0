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

use super::compare::{diff_rows, Key, Row};
use super::config::{ResolvedUrls, TargetsConfig};
use super::conn::{self, Pools, Side};
use super::error::RowDiffError;
use super::report::{mismatches, tally, RowDiffReport, SideRows, Verdict};
use super::schema::{self, Plan};
use super::sql;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Keys per lookup query in phase 3 (keeps statements and arrays modest).
const LOOKUP_CHUNK: usize = 10_000;

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

/// How rows are put in buckets. Range buckets are used for a single integer key declared NOT
/// NULL on both sides: computing them costs no hash, consecutive rows of a table loaded in key
/// order hit the same aggregate group (cache-friendly), and phase 2 reads only the differing key
/// ranges through the index instead of scanning the table again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucketing {
    Hash { mask: i64 },
    Range { min: i64, width: i64 },
}

impl Bucketing {
    /// (`$1`, `$2`) of the checksum query.
    fn params(self) -> (i64, i64) {
        match self {
            Bucketing::Hash { mask } => (mask, 0),
            Bucketing::Range { min, width } => (width, min),
        }
    }
}

/// Range bucketing when possible and sensible: a key span far larger than the row count (sparse
/// or skewed keys) would leave most buckets empty and a few huge, so hash buckets are used then.
fn choose_bucketing(n: u64, rows: u64, range: Option<(i64, i64)>) -> Bucketing {
    let hash = Bucketing::Hash {
        mask: (n - 1) as i64,
    };
    let Some((min, max)) = range else { return hash };
    let span = i128::from(max) - i128::from(min) + 1;
    if span <= 0 || span > i128::from(i64::MAX) || span > i128::from(rows.max(1)) * 64 {
        return hash;
    }
    let width = (span + i128::from(n) - 1) / i128::from(n);
    Bucketing::Range {
        min,
        width: width.max(1) as i64,
    }
}

fn bucket_count(plan: &Plan, opts: &Options) -> u64 {
    let wanted = opts.buckets.unwrap_or_else(|| {
        let rows = plan
            .baseline_rows_estimate
            .max(plan.candidate_rows_estimate)
            .max(0.0) as u64;
        (rows / 64).clamp(256, 16_384)
    });
    wanted.max(1).next_power_of_two()
}

/// Per-side results of phase 1 and 2.
#[derive(Debug, Default)]
struct Checksums {
    rows: u64,
    buckets: HashMap<i64, (i64, String)>,
}

async fn begin_snapshot(conn: &mut PgConnection, side: Side) -> Result<(), RowDiffError> {
    // One snapshot for all phases: rows committed between phases must not look like drift.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(RowDiffError::query(side.name(), "begin"))?;
    Ok(())
}

/// The range key column of this side, when range bucketing applies to the plan.
fn range_key(plan: &Plan) -> Option<String> {
    let [key] = plan.keys() else { return None };
    let ints = key.kind == sql::Kind::Int && key.baseline.not_null && key.candidate.not_null;
    ints.then(|| sql::quote_ident(&key.name))
}

async fn key_range(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    col: &str,
) -> Result<Option<(i64, i64)>, RowDiffError> {
    let (min, max): (Option<i64>, Option<i64>) =
        sqlx::query_as(&sql::key_range(plan.table(side), col))
            .fetch_one(&mut *conn)
            .await
            .map_err(RowDiffError::query(side.name(), "key range"))?;
    Ok(min.zip(max))
}

async fn checksums(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    bucketing: Bucketing,
) -> Result<Checksums, RowDiffError> {
    let bucket = match (bucketing, range_key(plan)) {
        (Bucketing::Range { .. }, Some(col)) => sql::range_bucket(&col),
        _ => sql::hash_bucket(&plan.key_hash(side)),
    };
    let q = sql::bucket_checksums(plan.table(side), &bucket, &plan.row_hash(side));
    let (p1, p2) = bucketing.params();
    let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(&q)
        .bind(p1)
        .bind(p2)
        .fetch_all(&mut *conn)
        .await
        .map_err(RowDiffError::query(side.name(), "bucket checksums"))?;
    let mut out = Checksums::default();
    for (bucket, count, sum) in rows {
        out.rows += count.max(0) as u64;
        out.buckets.insert(bucket, (count, sum.unwrap_or_default()));
    }
    Ok(out)
}

fn read_texts(row: &PgRow, n: usize) -> Result<Vec<Option<String>>, sqlx::Error> {
    (0..n)
        .map(|i| row.try_get::<Option<String>, _>(i))
        .collect()
}

/// Phase 2: key → row hash for the rows of the given buckets, plus the number of duplicate keys.
async fn members(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    bucketing: Bucketing,
    buckets: &[i64],
) -> Result<(HashMap<Key, i64>, u64), RowDiffError> {
    let (texts, row_hash) = (plan.key_texts(side), plan.row_hash(side));
    let fetched = match (bucketing, range_key(plan)) {
        (Bucketing::Range { min, width }, Some(col)) => {
            let q = sql::range_members(plan.table(side), &texts, &col, &row_hash);
            // Bucket b holds [min + b·width, min + (b+1)·width); saturate rather than overflow.
            let lo: Vec<i64> = buckets
                .iter()
                .map(|b| min.saturating_add(b.saturating_mul(width)))
                .collect();
            let hi: Vec<i64> = lo.iter().map(|l| l.saturating_add(width)).collect();
            sqlx::query(&q)
                .bind(lo)
                .bind(hi)
                .fetch_all(&mut *conn)
                .await
        }
        _ => {
            // Same parameter as the checksum query's `$1` (see `checksums`).
            let (mask, _) = bucketing.params();
            let q = sql::bucket_members(plan.table(side), &texts, &plan.key_hash(side), &row_hash);
            sqlx::query(&q)
                .bind(mask)
                .bind(buckets)
                .fetch_all(&mut *conn)
                .await
        }
    };
    let rows = fetched.map_err(RowDiffError::query(side.name(), "bucket members"))?;
    let mut out = HashMap::with_capacity(rows.len());
    let mut duplicates = 0;
    for row in rows {
        let key = read_texts(&row, plan.n_keys)
            .map_err(RowDiffError::query(side.name(), "bucket members"))?;
        let hash: i64 = row
            .try_get(plan.n_keys)
            .map_err(RowDiffError::query(side.name(), "bucket members"))?;
        if out.insert(key, hash).is_some() {
            duplicates += 1;
        }
    }
    Ok((out, duplicates))
}

/// Phase 3 (also used by the sampler's re-check): full normalized rows for `keys`.
pub(crate) async fn rows_by_keys(
    conn: &mut PgConnection,
    plan: &Plan,
    side: Side,
    keys: &[Key],
) -> Result<HashMap<Key, Row>, RowDiffError> {
    let q = sql::rows_by_keys(plan.table(side), &plan.texts(side), &plan.keys_in(side, 1));
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let mut query = sqlx::query(&q);
        for i in 0..plan.n_keys {
            let column: Vec<Option<String>> =
                chunk.iter().map(|k| k.get(i).cloned().flatten()).collect();
            query = query.bind(column);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(RowDiffError::query(side.name(), "rows by key"))?;
        for row in rows {
            let texts = read_texts(&row, plan.columns.len())
                .map_err(RowDiffError::query(side.name(), "rows by key"))?;
            out.insert(texts[..plan.n_keys].to_vec(), texts);
        }
    }
    Ok(out)
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
    let n = bucket_count(plan, opts);
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

    let t = Instant::now();
    let (br, cr) = tokio::try_join!(
        snapshot_and_range(&mut bconn, plan, Side::Baseline),
        snapshot_and_range(&mut cconn, plan, Side::Candidate)
    )?;
    let range = match (br, cr) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (one, other) => one.or(other),
    };
    let rows_estimate = plan
        .baseline_rows_estimate
        .max(plan.candidate_rows_estimate)
        .max(0.0) as u64;
    let bucketing = choose_bucketing(n, rows_estimate, range);
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
    timings.insert("differing_buckets".to_owned(), dirty.len() as u64);
    timings.insert("buckets".to_owned(), n);
    timings.insert(
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
        timings.insert("suspect_keys".to_owned(), suspects.len() as u64);

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
        Verdict::Differences
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_count_is_a_power_of_two_sized_from_rows() {
        let plan = |rows: f64| Plan {
            baseline_table: String::new(),
            candidate_table: String::new(),
            columns: vec![],
            n_keys: 0,
            schema_differences: vec![],
            baseline_rows_estimate: rows,
            candidate_rows_estimate: 0.0,
        };
        let o = Options::default();
        assert_eq!(bucket_count(&plan(-1.0), &o), 256);
        assert_eq!(bucket_count(&plan(1_000_000.0), &o), 16_384);
        assert_eq!(bucket_count(&plan(100_000.0), &o), 2048);
        assert_eq!(
            bucket_count(
                &plan(0.0),
                &Options {
                    buckets: Some(1000),
                    ..o
                }
            ),
            1024
        );
    }

    #[test]
    fn range_buckets_only_for_dense_spans() {
        let range = |min, width| Bucketing::Range { min, width };
        assert_eq!(choose_bucketing(16, 1000, Some((1, 1000))), range(1, 63));
        assert_eq!(choose_bucketing(16, 10, Some((5, 5))), range(5, 1));
        assert_eq!(
            choose_bucketing(16, 1000, None),
            Bucketing::Hash { mask: 15 }
        );
        let sparse = choose_bucketing(16, 1000, Some((1, 10_000_000)));
        assert_eq!(sparse, Bucketing::Hash { mask: 15 });
        let huge = choose_bucketing(16, u64::MAX, Some((i64::MIN, i64::MAX)));
        assert_eq!(huge, Bucketing::Hash { mask: 15 });
    }
}
