//! How the exhaustive diff puts rows in buckets (see `docs/rowdiff.md`): key ranges for a dense
//! single integer key, key hashes otherwise, and how many buckets.

use super::schema::Plan;
use super::sql;

/// How rows are put in buckets. Range buckets are used for a single integer key declared NOT
/// NULL on both sides: computing them costs no hash, consecutive rows of a table loaded in key
/// order hit the same aggregate group (cache-friendly), and phase 2 reads only the differing key
/// ranges through the index instead of scanning the table again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucketing {
    Hash { mask: i64 },
    Range { min: i64, width: i64 },
}

impl Bucketing {
    /// (`$1`, `$2`) of the checksum query.
    pub(crate) fn params(self) -> (i64, i64) {
        match self {
            Bucketing::Hash { mask } => (mask, 0),
            Bucketing::Range { min, width } => (width, min),
        }
    }
}

/// Widest key range per bucket: with unique keys a bucket never holds more rows than this, so
/// phase 2 stays bounded even when the row estimate is stale or missing (table never analyzed).
const MAX_RANGE_WIDTH: i128 = 4096;

/// Range bucketing when possible and sensible: a key span far larger than `n` buckets of
/// [`MAX_RANGE_WIDTH`] (sparse or skewed keys) could put huge counts in a few buckets, so hash
/// buckets are used then.
pub(crate) fn choose_bucketing(n: u64, range: Option<(i64, i64)>) -> Bucketing {
    let hash = Bucketing::Hash {
        mask: (n - 1) as i64,
    };
    let Some((min, max)) = range else { return hash };
    let span = i128::from(max) - i128::from(min) + 1;
    let width = (span + i128::from(n) - 1) / i128::from(n);
    if span <= 0 || span > i128::from(i64::MAX) || width > MAX_RANGE_WIDTH {
        return hash;
    }
    Bucketing::Range {
        min,
        width: width.max(1) as i64,
    }
}

pub(crate) fn bucket_count(plan: &Plan, wanted: Option<u64>) -> u64 {
    let wanted = wanted.unwrap_or_else(|| {
        let rows = plan
            .baseline_rows_estimate
            .max(plan.candidate_rows_estimate)
            .max(0.0) as u64;
        (rows / 64).clamp(256, 16_384)
    });
    wanted.max(1).next_power_of_two()
}

/// The range key column of this side, when range bucketing applies to the plan.
pub(crate) fn range_key(plan: &Plan) -> Option<String> {
    let [key] = plan.keys() else { return None };
    let ints = key.kind == sql::Kind::Int && key.baseline.not_null && key.candidate.not_null;
    ints.then(|| sql::quote_ident(&key.name))
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
        assert_eq!(bucket_count(&plan(-1.0), None), 256);
        assert_eq!(bucket_count(&plan(1_000_000.0), None), 16_384);
        assert_eq!(bucket_count(&plan(100_000.0), None), 2048);
        assert_eq!(bucket_count(&plan(0.0), Some(1000)), 1024);
    }

    #[test]
    fn range_buckets_only_for_dense_spans() {
        let range = |min, width| Bucketing::Range { min, width };
        assert_eq!(choose_bucketing(16, Some((1, 1000))), range(1, 63));
        assert_eq!(choose_bucketing(16, Some((5, 5))), range(5, 1));
        assert_eq!(choose_bucketing(16, Some((1, 16 * 4096))), range(1, 4096));
        assert_eq!(choose_bucketing(16, None), Bucketing::Hash { mask: 15 });
        let sparse = choose_bucketing(16, Some((1, 16 * 4096 + 1)));
        assert_eq!(sparse, Bucketing::Hash { mask: 15 });
        let huge = choose_bucketing(16, Some((i64::MIN, i64::MAX)));
        assert_eq!(huge, Bucketing::Hash { mask: 15 });
    }
}
