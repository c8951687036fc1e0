//! The two sinks' target tables: created when missing (`key text PRIMARY KEY, doc jsonb`), then
//! each batch's row changes applied in order, one transaction per side and batch.
//!
//! Tables and URLs come from each service's `[services.targets]`; a `--database-url` given to
//! `generate` replaces every `url_env` (the demo's one local database).

use super::rows::RowChange;
use crate::config::Config;
use crate::rowdiff::config::TableName;
use crate::rowdiff::sql::quote_ident;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::collections::BTreeMap;

/// A target table could not be reached, created or written.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("service `{service}`: environment variable {var} (targets.{side}.url_env) is not set; set it or pass --database-url")]
    MissingUrl {
        service: String,
        side: &'static str,
        var: String,
    },
    #[error("service `{service}`: targets.{side}.table `{table}`: {message}")]
    BadTable {
        service: String,
        side: &'static str,
        table: String,
        message: String,
    },
    #[error("service `{service}`, {side} table {table}: {source}")]
    Sql {
        service: String,
        side: &'static str,
        table: String,
        source: sqlx::Error,
    },
}

/// One side's table of one service.
#[derive(Debug, Clone)]
struct Table {
    pool: PgPool,
    /// Quoted `"schema"."table"`.
    qualified: String,
    schema: String,
    label: String,
}

/// The target tables of every service that configures them, by service index.
#[derive(Debug, Default)]
pub struct Targets {
    tables: BTreeMap<usize, [Table; 2]>,
}

impl Targets {
    /// Connect (one small pool per distinct URL) and create missing schemas and tables.
    pub async fn open(config: &Config, database_url: Option<&str>) -> Result<Self, TargetError> {
        let mut pools: BTreeMap<String, PgPool> = BTreeMap::new();
        let mut tables = BTreeMap::new();
        for (i, service) in config.services.iter().enumerate() {
            let Some(targets) = &service.targets else {
                continue;
            };
            let mut sides = Vec::with_capacity(2);
            for (side, t) in [
                ("baseline", &targets.baseline),
                ("candidate", &targets.candidate),
            ] {
                let url = match database_url {
                    Some(u) => u.to_owned(),
                    None => std::env::var(&t.url_env).map_err(|_| TargetError::MissingUrl {
                        service: service.name.clone(),
                        side,
                        var: t.url_env.clone(),
                    })?,
                };
                let sql = |source| TargetError::Sql {
                    service: service.name.clone(),
                    side,
                    table: t.table.clone(),
                    source,
                };
                let pool = match pools.get(&url) {
                    Some(p) => p.clone(),
                    None => {
                        let p = PgPoolOptions::new()
                            .max_connections(2)
                            .connect(&url)
                            .await
                            .map_err(sql)?;
                        pools.insert(url, p.clone());
                        p
                    }
                };
                let name = TableName::parse(&t.table).ok_or_else(|| TargetError::BadTable {
                    service: service.name.clone(),
                    side,
                    table: t.table.clone(),
                    message: "not a table name".into(),
                })?;
                let table = Table {
                    pool,
                    qualified: format!("{}.{}", quote_ident(&name.schema), quote_ident(&name.name)),
                    schema: quote_ident(&name.schema),
                    label: t.table.clone(),
                };
                table.create().await.map_err(sql)?;
                sides.push(table);
            }
            if let Ok(pair) = <[Table; 2]>::try_from(sides) {
                tables.insert(i, pair);
            }
        }
        Ok(Self { tables })
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Apply one batch's changes to both sides of `service` (a no-op without targets).
    pub async fn apply(
        &self,
        config: &Config,
        service: usize,
        baseline: &[RowChange],
        candidate: &[RowChange],
    ) -> Result<(), TargetError> {
        let Some([b, c]) = self.tables.get(&service) else {
            return Ok(());
        };
        for (side, table, changes) in [("baseline", b, baseline), ("candidate", c, candidate)] {
            table
                .apply(changes)
                .await
                .map_err(|source| TargetError::Sql {
                    service: config.services[service].name.clone(),
                    side,
                    table: table.label.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

impl Table {
    async fn create(&self) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", self.schema))
            .execute(&self.pool)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, doc jsonb NOT NULL)",
            self.qualified
        ))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn apply(&self, changes: &[RowChange]) -> Result<(), sqlx::Error> {
        if changes.is_empty() {
            return Ok(());
        }
        let upsert = format!(
            "INSERT INTO {} (key, doc) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc",
            self.qualified
        );
        let delete = format!("DELETE FROM {} WHERE key = $1", self.qualified);
        let mut tx = self.pool.begin().await?;
        for change in changes {
            match change {
                RowChange::Upsert { key, doc, .. } => {
                    sqlx::query(&upsert)
                        .bind(key)
                        .bind(sqlx::types::Json(doc))
                        .execute(&mut *tx)
                        .await?
                }
                RowChange::Delete { key } => {
                    sqlx::query(&delete).bind(key).execute(&mut *tx).await?
                }
            };
        }
        tx.commit().await
    }
}
