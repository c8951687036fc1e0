//! Continuous sampled diffs, a library component the service calls every interval.
//!
//! A round reads, in **one query per side**, the rows whose key hash falls in a window of the
//! 32-bit hash space (the *uniform* sample: the same keys are selected on both sides, so a
//! missing row is seen as missing) plus the caller's extra keys (keys the stream comparison
//! flagged, recently changed keys). The window advances every round, so successive rounds
//! cover the whole table. Differences are re-read by key after `settle_delay`; only those that
//! persist count, the others are reported as `in_flight`. Only the uniform part feeds the ratio
//! and its bound: extra keys are chosen *because* they are suspicious and would bias it.

use super::compare::{diff_rows, key_json, Key, Row, RowDiff};
use super::config::TargetsConfig;
use super::conn::Pools;
use super::error::RowDiffError;
use super::phases::rows_by_keys;
use super::report::{tally, ColumnCount};
use super::schema::{self, Plan};
use super::sql::{self, Kind};
use super::stats;
use crate::model::{KindCounts, MismatchKind, Side};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row as _;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A key as the stream comparison knows it: `{"id": 5}` or `{"tenant": "eu", "id": "7"}`.
pub type KeyValues = Map<String, Value>;

const HASH_SPACE: u64 = 1 << 32;

/// One settled difference.
#[derive(Debug, Clone, Serialize)]
pub struct SampledDiff {
    pub key: Map<String, Value>,
    pub kind: MismatchKind,
    pub columns: Vec<String>,
    /// True when the key belongs to the uniform sample (and so to the ratio).
    pub uniform: bool,
}

/// Outcome of one round.
#[derive(Debug, Clone, Serialize)]
pub struct SampleResult {
    /// Keys of the uniform sample (present on either side).
    pub rows_sampled: u64,
    /// Extra keys asked for by the caller, found on at least one side, outside the uniform window.
    pub extra_keys_checked: u64,
    /// Extra keys that could not be used (missing key column, unparsable value).
    pub extra_keys_invalid: u64,
    /// Settled differences among the uniform sample, by kind.
    pub rows: KindCounts,
    pub columns: Vec<ColumnCount>,
    /// Settled differences among the extra keys only (not in the ratio).
    pub extra_rows: KindCounts,
    /// Differences that disappeared after the settle delay (rows in flight through a sink).
    pub in_flight: u64,
    pub diff_ratio: f64,
    /// One-sided 95% Clopper-Pearson upper bound of the diff ratio ([`stats::upper_bound_95`]).
    pub diff_ratio_upper_95: f64,
    pub diffs: Vec<SampledDiff>,
    /// The hash window `[start, end)` of this round.
    pub window: (u64, u64),
    pub duration_ms: u64,
}

/// The sampler of one service.
#[derive(Debug)]
pub struct Sampler {
    cfg: TargetsConfig,
    plan: Plan,
    pools: Pools,
    cursor: u64,
    not_before: Option<Instant>,
}

/// Convert a caller's key to normalized-ish key texts; `None` when unusable. The database casts
/// the text back to the column type, so a value that would make the cast fail is refused here:
/// one bad flagged key must not fail the whole round.
fn key_texts(plan: &Plan, key: &KeyValues) -> Option<Key> {
    plan.keys()
        .iter()
        .map(|col| {
            let text = match key.get(&col.name)? {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            let ok = match col.kind {
                Kind::Int => text.parse::<i64>().is_ok(),
                Kind::Numeric => crate::core::number::canonical_number(&text).is_some(),
                _ => true,
            };
            ok.then_some(Some(text))
        })
        .collect()
}

impl Sampler {
    /// Check the schema and build the sampler. `pools` should come from [`super::conn::connect`].
    pub async fn new(cfg: &TargetsConfig, pools: Pools) -> Result<Sampler, RowDiffError> {
        let plan = schema::plan(cfg, &pools).await?;
        Ok(Sampler {
            cfg: cfg.clone(),
            plan,
            pools,
            cursor: 0,
            not_before: None,
        })
    }

    pub fn schema_differences(&self) -> &[String] {
        &self.plan.schema_differences
    }

    /// Earliest start of the next round allowed by `max_rows_per_second`.
    pub fn next_round_not_before(&self) -> Option<Instant> {
        self.not_before
    }

    async fn estimate_rows(&self) -> Result<f64, RowDiffError> {
        let (b, c) = self.cfg.validate()?;
        let mut rows: f64 = 0.0;
        for (side, t) in [(Side::Baseline, b), (Side::Candidate, c)] {
            let est: Option<f64> = sqlx::query_scalar(sql::CATALOG_TABLE)
                .bind(&t.schema)
                .bind(&t.name)
                .fetch_optional(self.pools.get(side))
                .await
                .map_err(RowDiffError::query(side.as_str(), "row estimate"))?;
            let mut est = est.unwrap_or(0.0);
            if est < 1.0 {
                // Never analyzed (or empty): without a count the window would span the whole
                // hash space and read a possibly large table in one round.
                let q = sql::count_rows(self.plan.table(side));
                let n: i64 = sqlx::query_scalar(&q)
                    .fetch_one(self.pools.get(side))
                    .await
                    .map_err(RowDiffError::query(side.as_str(), "row count"))?;
                est = n as f64;
            }
            rows = rows.max(est);
        }
        Ok(rows)
    }

    async fn fetch(
        &self,
        side: Side,
        window: (u64, u64),
        extra: &[Key],
    ) -> Result<(HashMap<Key, Row>, HashSet<Key>), RowDiffError> {
        let q = sql::sample_window(
            self.plan.table(side),
            &self.plan.texts(side),
            &self.plan.key_hash(side),
            &self.plan.keys_in(side, 3),
        );
        let mut query = sqlx::query(&q).bind(window.0 as i64).bind(window.1 as i64);
        for i in 0..self.plan.n_keys {
            let column: Vec<Option<String>> =
                extra.iter().map(|k| k.get(i).cloned().flatten()).collect();
            query = query.bind(column);
        }
        let rows = query
            .fetch_all(self.pools.get(side))
            .await
            .map_err(RowDiffError::query(side.as_str(), "sample"))?;
        let n = self.plan.columns.len();
        let (mut out, mut uniform) = (HashMap::new(), HashSet::new());
        for row in rows {
            let texts: Row = (0..n)
                .map(|i| row.try_get::<Option<String>, _>(i))
                .collect::<Result<_, _>>()
                .map_err(RowDiffError::query(side.as_str(), "sample"))?;
            let hash: i64 = row
                .try_get(n)
                .map_err(RowDiffError::query(side.as_str(), "sample"))?;
            let key = texts[..self.plan.n_keys].to_vec();
            if (window.0..window.1).contains(&(hash as u64)) {
                uniform.insert(key.clone());
            }
            out.insert(key, texts);
        }
        Ok((out, uniform))
    }

    async fn recheck(&self, keys: &[Key]) -> Result<Vec<RowDiff>, RowDiffError> {
        let mut b = self
            .pools
            .baseline
            .acquire()
            .await
            .map_err(RowDiffError::query("baseline", "acquire"))?;
        let mut c = self
            .pools
            .candidate
            .acquire()
            .await
            .map_err(RowDiffError::query("candidate", "acquire"))?;
        let (bm, cm) = tokio::try_join!(
            rows_by_keys(&mut b, &self.plan, Side::Baseline, keys),
            rows_by_keys(&mut c, &self.plan, Side::Candidate, keys)
        )?;
        Ok(diff_rows(&self.plan, &bm, &cm))
    }

    /// One round over the whole tables (`scope = "table"`): a window of the key-hash space.
    pub async fn sample_round(
        &mut self,
        extra_keys: &[KeyValues],
    ) -> Result<SampleResult, RowDiffError> {
        self.round(None, extra_keys).await
    }

    /// One round whose uniform sample is `in_scope` (`scope = "changed"`: a uniform sample of the
    /// keys the epoch's events touched, drawn by the caller); the statistics cover those of them
    /// that either table has.
    pub async fn sample_keys(
        &mut self,
        in_scope: &[KeyValues],
        extra_keys: &[KeyValues],
    ) -> Result<SampleResult, RowDiffError> {
        self.round(Some(in_scope), extra_keys).await
    }

    /// One round: sample, compare, wait `settle_delay`, re-check, count. Waits first if the
    /// previous round's reads would otherwise exceed `max_rows_per_second`.
    async fn round(
        &mut self,
        in_scope: Option<&[KeyValues]>,
        extra_keys: &[KeyValues],
    ) -> Result<SampleResult, RowDiffError> {
        if let Some(t) = self.not_before {
            tokio::time::sleep_until(t.into()).await;
        }
        let start = Instant::now();
        let sample = &self.cfg.sample;
        let est = self.estimate_rows().await?;
        // Window width: sample_size / rows of the hash space (the whole space for tiny tables).
        let width = ((sample.sample_size as f64 / est.max(1.0)) * HASH_SPACE as f64)
            .ceil()
            .clamp(1.0, HASH_SPACE as f64) as u64;
        // With keys in scope, no window of the tables: the sample is those keys (an empty window).
        let window = match in_scope {
            None => (self.cursor, (self.cursor + width).min(HASH_SPACE)),
            Some(_) => (self.cursor, self.cursor),
        };
        let scoped: Vec<Key> = in_scope
            .unwrap_or_default()
            .iter()
            .filter_map(|k| key_texts(&self.plan, k))
            .collect();
        let mut extra: Vec<Key> = extra_keys
            .iter()
            .filter_map(|k| key_texts(&self.plan, k))
            .collect();
        let invalid = (extra_keys.len() - extra.len()) as u64
            + (in_scope.map_or(0, <[KeyValues]>::len) - scoped.len()) as u64;
        extra.extend(scoped.iter().cloned());

        let ((bm, bu), (cm, cu)) = tokio::try_join!(
            self.fetch(Side::Baseline, window, &extra),
            self.fetch(Side::Candidate, window, &extra)
        )?;
        let uniform: HashSet<Key> = match in_scope {
            None => bu.union(&cu).cloned().collect(),
            Some(_) => scoped
                .into_iter()
                .filter(|k| bm.contains_key(k) || cm.contains_key(k))
                .collect(),
        };
        let first = diff_rows(&self.plan, &bm, &cm);
        let settled = if first.is_empty() {
            first.clone()
        } else {
            tokio::time::sleep(Duration::from_secs_f64(sample.settle_delay_secs)).await;
            let keys: Vec<Key> = first.iter().map(|d| d.key.clone()).collect();
            self.recheck(&keys).await?
        };
        let (uni, ext): (Vec<RowDiff>, Vec<RowDiff>) =
            settled.into_iter().partition(|d| uniform.contains(&d.key));
        let (rows, columns) = tally(&uni);
        let (extra_rows, _) = tally(&ext);
        let k = uni.len() as u64;
        let n = uniform.len() as u64;
        let extra_found: HashSet<&Key> = bm
            .keys()
            .chain(cm.keys())
            .filter(|k| !uniform.contains(*k))
            .collect();
        let mut diffs: Vec<SampledDiff> = uni
            .iter()
            .map(|d| (d, true))
            .chain(ext.iter().map(|d| (d, false)))
            .map(|(d, uniform)| SampledDiff {
                key: key_json(&self.plan, &d.key),
                kind: d.kind,
                columns: d.columns.clone(),
                uniform,
            })
            .collect();
        diffs.sort_by_key(|d| std::cmp::Reverse(d.uniform));

        // Advance the window (wrapping) and space rounds so each side reads at most
        // max_rows_per_second on average: every round scans the key columns of the whole table.
        self.cursor = window.1 % HASH_SPACE;
        self.not_before =
            Some(start + Duration::from_secs_f64(est.max(n as f64) / sample.max_rows_per_second));
        Ok(SampleResult {
            rows_sampled: n,
            extra_keys_checked: extra_found.len() as u64,
            extra_keys_invalid: invalid,
            rows,
            columns,
            extra_rows,
            in_flight: (first.len() - (uni.len() + ext.len())) as u64,
            diff_ratio: stats::ratio(k, n),
            diff_ratio_upper_95: stats::upper_bound_95(k, n),
            diffs,
            window,
            duration_ms: start.elapsed().as_millis() as u64,
        })
    }
}
