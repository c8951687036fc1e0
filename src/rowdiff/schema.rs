//! Start-up schema check: both tables exist, key and ignore columns are real, every common column
//! pair is comparable. The result is a [`Plan`]: the ordered list of compared columns (keys first)
//! with their per-side SQL expressions, used by the exhaustive diff and the sampler alike.

use super::config::{OnSchemaDifference, TableName, TargetsConfig};
use super::conn::Pools;
use super::error::RowDiffError;
use super::sql::{self, Kind, SqlType};
use crate::model::Side;

/// Seeds for the per-column hashes: keys and columns get disjoint ranges so the key hash (the
/// bucket) is independent of the row hash (the checksum).
const KEY_SEED: i64 = 7_000;
const ROW_SEED: i64 = 1;

/// One compared column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub baseline: SqlType,
    pub candidate: SqlType,
}

impl Column {
    pub fn ty(&self, side: Side) -> &SqlType {
        match side {
            Side::Baseline => &self.baseline,
            Side::Candidate => &self.candidate,
        }
    }
}

/// What to compare and how; built by [`plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub baseline_table: String,
    pub candidate_table: String,
    /// Keys first (in `key_columns` order), then the other compared columns by baseline position.
    pub columns: Vec<Column>,
    pub n_keys: usize,
    pub schema_differences: Vec<String>,
    pub baseline_rows_estimate: f64,
    pub candidate_rows_estimate: f64,
}

impl Plan {
    pub fn table(&self, side: Side) -> &str {
        match side {
            Side::Baseline => &self.baseline_table,
            Side::Candidate => &self.candidate_table,
        }
    }

    pub fn keys(&self) -> &[Column] {
        &self.columns[..self.n_keys]
    }

    /// Normalized text of every compared column, keys first.
    pub fn texts(&self, side: Side) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| sql::text_expr(&sql::quote_ident(&c.name), c.ty(side), c.kind))
            .collect()
    }

    pub fn key_texts(&self, side: Side) -> Vec<String> {
        let mut texts = self.texts(side);
        texts.truncate(self.n_keys);
        texts
    }

    fn hash_of(&self, cols: &[Column], side: Side, seed: i64) -> String {
        let parts: Vec<(String, i64)> = cols
            .iter()
            .zip(seed..)
            .map(|(c, s)| {
                (
                    sql::hash_expr(&sql::quote_ident(&c.name), c.ty(side), c.kind, s),
                    s,
                )
            })
            .collect();
        sql::combined_hash(&parts)
    }

    pub fn key_hash(&self, side: Side) -> String {
        self.hash_of(self.keys(), side, KEY_SEED)
    }

    pub fn row_hash(&self, side: Side) -> String {
        self.hash_of(&self.columns, side, ROW_SEED)
    }

    /// `(keys) IN (unnest($first_param…))` for this side.
    pub fn keys_in(&self, side: Side, first_param: usize) -> String {
        let cols: Vec<String> = self
            .keys()
            .iter()
            .map(|c| sql::quote_ident(&c.name))
            .collect();
        let casts: Vec<String> = self
            .keys()
            .iter()
            .enumerate()
            .map(|(i, c)| sql::key_from_text(&format!("u.c{i}"), c.ty(side), c.kind))
            .collect();
        sql::keys_in(&cols, &casts, first_param)
    }
}

type Catalog = Vec<(String, SqlType)>;

async fn introspect(
    pools: &Pools,
    side: Side,
    table: &TableName,
) -> Result<(Catalog, f64), RowDiffError> {
    let pool = pools.get(side);
    let estimate: Option<f64> = sqlx::query_scalar(sql::CATALOG_TABLE)
        .bind(&table.schema)
        .bind(&table.name)
        .fetch_optional(pool)
        .await
        .map_err(RowDiffError::query(side.as_str(), "catalog lookup"))?;
    let Some(estimate) = estimate else {
        return Err(RowDiffError::MissingTable {
            side: side.as_str(),
            table: table.to_string(),
        });
    };
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(sql::CATALOG_COLUMNS)
        .bind(&table.schema)
        .bind(&table.name)
        .fetch_all(pool)
        .await
        .map_err(RowDiffError::query(side.as_str(), "catalog columns"))?;
    let cols = rows
        .into_iter()
        .map(|(name, typname, cast, not_null)| {
            (
                name,
                SqlType {
                    typname,
                    cast,
                    not_null,
                },
            )
        })
        .collect();
    Ok((cols, estimate))
}

/// Check both tables and build the comparison plan.
pub async fn plan(cfg: &TargetsConfig, pools: &Pools) -> Result<Plan, RowDiffError> {
    let (bt, ct) = cfg.validate()?;
    let (bcols, best) = introspect(pools, Side::Baseline, &bt).await?;
    let (ccols, cest) = introspect(pools, Side::Candidate, &ct).await?;
    let find =
        |cols: &Catalog, name: &str| cols.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());

    let mut columns = Vec::new();
    let mut problems = Vec::new();
    for key in &cfg.key_columns {
        let mut types = Vec::new();
        for (side, cols, table) in [
            (Side::Baseline, &bcols, &bt),
            (Side::Candidate, &ccols, &ct),
        ] {
            let ty = find(cols, key).ok_or_else(|| RowDiffError::MissingColumn {
                side: side.as_str(),
                table: table.to_string(),
                column: key.clone(),
                field: "key_columns",
            })?;
            types.push(ty);
        }
        let (b, c) = (types[0].clone(), types[1].clone());
        // A key pair must be comparable whatever the switch says: without keys nothing matches.
        let kind = sql::pair_kind(&b, &c).ok_or_else(|| {
            RowDiffError::Schema(vec![format!(
                "key column `{key}`: {} vs {} cannot be compared",
                b.cast, c.cast
            )])
        })?;
        if matches!(kind, Kind::Json | Kind::Float4 | Kind::Float8) {
            // json has no equality operator and floats no exact text round trip: keys are
            // looked up by value, which needs both.
            return Err(RowDiffError::Schema(vec![format!(
                "key column `{key}`: {} cannot be used as a key for row lookups",
                b.cast
            )]));
        }
        columns.push(Column {
            name: key.clone(),
            kind,
            baseline: b,
            candidate: c,
        });
    }
    for ignored in &cfg.ignore_columns {
        if find(&bcols, ignored).is_none() && find(&ccols, ignored).is_none() {
            problems.push(format!(
                "ignore_columns names `{ignored}`, which neither table has (a typo?)"
            ));
        }
    }
    let skip = |name: &str| {
        cfg.key_columns.iter().any(|k| k == name) || cfg.ignore_columns.iter().any(|k| k == name)
    };
    for (name, b) in bcols.iter().filter(|(n, _)| !skip(n)) {
        match find(&ccols, name) {
            None => problems.push(format!("column `{name}` only in baseline {bt}")),
            Some(c) => match sql::pair_kind(b, &c) {
                Some(kind) => columns.push(Column {
                    name: name.clone(),
                    kind,
                    baseline: b.clone(),
                    candidate: c,
                }),
                None => problems.push(format!(
                    "column `{name}`: baseline {} vs candidate {} cannot be compared",
                    b.cast, c.cast
                )),
            },
        }
    }
    for (name, _) in ccols.iter().filter(|(n, _)| !skip(n)) {
        if find(&bcols, name).is_none() {
            problems.push(format!("column `{name}` only in candidate {ct}"));
        }
    }
    if !problems.is_empty() && cfg.on_schema_difference == OnSchemaDifference::Error {
        return Err(RowDiffError::Schema(problems));
    }
    Ok(Plan {
        baseline_table: sql::qualified(&bt.schema, &bt.name),
        candidate_table: sql::qualified(&ct.schema, &ct.name),
        n_keys: cfg.key_columns.len(),
        columns,
        schema_differences: problems,
        baseline_rows_estimate: best,
        candidate_rows_estimate: cest,
    })
}
