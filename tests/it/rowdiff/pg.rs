//! Row diffs against a real Postgres (127.0.0.1:5432, trust auth, or `PARITYGATE_TEST_PG`).
//! Every test creates its own databases with random names and drops them at the end.

// Helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests;
// this whole file is test code, where a panic is the failure report.
use paritygate::rowdiff::config::{OnSchemaDifference, SampleConfig, SideTarget};
use paritygate::rowdiff::conn;
use paritygate::rowdiff::exhaustive::{self, Options};
use paritygate::rowdiff::sampler::Sampler;
use paritygate::rowdiff::{ResolvedUrls, RowDiffError, RowDiffReport, TargetsConfig};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// A throwaway database (the harness' [`crate::support::db::TestDb`], dropped on `Drop` even when
/// the test panics) holding the test's tables, with a pool on it.
struct TestDb {
    url: String,
    pool: PgPool,
    _db: crate::support::db::TestDb,
}

impl TestDb {
    async fn new(setup: &str) -> TestDb {
        let db = crate::support::db::TestDb::create().await;
        let url = db.url();
        let pool = PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(setup).execute(&pool).await.unwrap();
        TestDb { url, pool, _db: db }
    }

    /// Close the pool, then drop the database.
    async fn drop_db(self) {
        self.pool.close().await;
    }
}

fn targets(baseline: &str, candidate: &str, keys: &[&str], ignore: &[&str]) -> TargetsConfig {
    TargetsConfig {
        baseline: SideTarget {
            url_env: "PG_BASELINE_URL_UNUSED".into(),
            table: baseline.into(),
        },
        candidate: SideTarget {
            url_env: "PG_CANDIDATE_URL_UNUSED".into(),
            table: candidate.into(),
        },
        key_columns: keys.iter().map(|s| s.to_string()).collect(),
        ignore_columns: ignore.iter().map(|s| s.to_string()).collect(),
        on_schema_difference: OnSchemaDifference::Error,
        statement_timeout_secs: 30.0,
        sample: SampleConfig {
            sample_size: 100_000,
            settle_delay_secs: 0.0,
            max_rows_per_second: 1e9,
            ..Default::default()
        },
    }
}

fn urls(b: &TestDb, c: &TestDb) -> ResolvedUrls {
    ResolvedUrls {
        baseline: b.url.clone(),
        candidate: c.url.clone(),
    }
}

/// Two schemas of one database; the candidate's types differ but mean the same, and the
/// bookkeeping columns differ per side. Rows 1..=200 agree by meaning before the injections.
const ORDERS: &str = r#"
CREATE SCHEMA bento_shadow;
CREATE TABLE public.orders (id int4 PRIMARY KEY, name text, amount numeric(12,2), at timestamptz,
  doc jsonb, note varchar(20), qty int4, __sync_timestamp timestamptz DEFAULT now());
CREATE TABLE bento_shadow.orders (id int8 PRIMARY KEY, name varchar(50), amount numeric, at timestamp,
  doc json, note text, qty int8, __source text DEFAULT 'bento');
INSERT INTO public.orders (id, name, amount, at, doc, note, qty)
  SELECT g, 'name ' || g, g * 1.5, timestamptz '2026-08-20 12:15:30.12+02' + g * interval '1 minute',
         jsonb_build_object('a', g, 'tags', jsonb_build_array('x', g % 3)),
         CASE WHEN g % 4 = 0 THEN NULL ELSE 'n' || g END, g % 7
  FROM generate_series(1, 200) g;
-- Same meaning, other spellings: scale, naive UTC timestamps, json text with other key order.
INSERT INTO bento_shadow.orders (id, name, amount, at, doc, note, qty)
  SELECT id, name, amount::numeric(14,4), (at AT TIME ZONE 'UTC'),
         ('{ "tags": ["x", ' || (id % 3) || '.0], "a": ' || id || ' }')::json, note, qty
  FROM public.orders;
DELETE FROM bento_shadow.orders WHERE id IN (5, 77);
INSERT INTO bento_shadow.orders (id, name, amount, at, doc, note, qty) VALUES
  (201, 'extra', 1, '2026-01-01', '{}', NULL, 1), (202, 'extra', 2, NULL, NULL, NULL, NULL);
UPDATE bento_shadow.orders SET amount = amount + 0.01 WHERE id = 10;
UPDATE bento_shadow.orders SET at = at + interval '1 microsecond' WHERE id = 20;
UPDATE bento_shadow.orders SET doc = '{"a": 30, "tags": ["x", 1]}' WHERE id = 30;  -- 30 % 3 = 0
UPDATE bento_shadow.orders SET note = '' WHERE id = 40;                             -- NULL vs ''
UPDATE bento_shadow.orders SET name = 'NAME 50', qty = 99 WHERE id = 50;
UPDATE bento_shadow.orders SET note = NULL WHERE id = 61;
"#;

fn keys_of(report: &RowDiffReport, kind: &str) -> Vec<Value> {
    let v = serde_json::to_value(report).unwrap();
    v["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| m["key"].clone())
        .collect()
}

fn columns_of(report: &RowDiffReport, key: Value) -> Vec<String> {
    let v = serde_json::to_value(report).unwrap();
    let m = v["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == key)
        .unwrap()
        .clone();
    serde_json::from_value(m["columns"].clone()).unwrap()
}

fn assert_orders_report(report: &RowDiffReport) {
    let ids = |kind| {
        keys_of(report, kind)
            .into_iter()
            .map(|k| k["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("missing_in_candidate"), vec![5, 77]);
    assert_eq!(ids("extra_in_candidate"), vec![201, 202]);
    assert_eq!(ids("mismatched"), vec![10, 20, 30, 40, 50, 61]);
    assert_eq!(columns_of(report, json!({"id": 10})), vec!["amount"]);
    assert_eq!(columns_of(report, json!({"id": 20})), vec!["at"]);
    assert_eq!(columns_of(report, json!({"id": 30})), vec!["doc"]);
    assert_eq!(columns_of(report, json!({"id": 40})), vec!["note"]);
    assert_eq!(columns_of(report, json!({"id": 50})), vec!["name", "qty"]);
    assert_eq!(report.baseline.rows, 200);
    assert_eq!(report.candidate.rows, 200);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn exhaustive_finds_exactly_the_injected_differences_across_types() {
    let db = TestDb::new(ORDERS).await;
    let cfg = targets(
        "public.orders",
        "bento_shadow.orders",
        &["id"],
        &["__sync_timestamp", "__source"],
    );
    for buckets in [None, Some(1), Some(8), Some(1 << 14)] {
        let opts = Options {
            service: "orders".into(),
            max_examples: 3,
            buckets,
        };
        let report = exhaustive::run(&cfg, &urls(&db, &db), &opts).await.unwrap();
        assert_orders_report(&report);
        assert_eq!(
            report.work["range_buckets"], 1,
            "int key: key-range buckets"
        );
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["verdict"], "fail");
        assert_eq!(
            v["rows"],
            json!({"missing_in_candidate": 2, "extra_in_candidate": 2, "mismatched": 6})
        );
        // Values only for the first max_examples entries, canonical spellings.
        assert_eq!(
            v["mismatches"][0]["baseline"]["at"],
            "2026-08-20T10:20:30.12Z"
        );
        assert!(v["mismatches"][3].get("baseline").is_none());
    }
    // The report for equal tables passes.
    let cfg = targets("public.orders", "public.orders", &["id"], &[]);
    let report = exhaustive::run(&cfg, &urls(&db, &db), &Options::default())
        .await
        .unwrap();
    assert_eq!(
        (
            report.exit_code(),
            report.mismatches.len(),
            report.baseline.rows
        ),
        (0, 0, 200)
    );
    db.drop_db().await;
}

const COMPOSITE: &str = r#"
CREATE TABLE t (tenant text, id int4, v numeric(10,3), seen timestamptz, PRIMARY KEY (tenant, id));
INSERT INTO t SELECT r, g, g / 8.0, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 50) g, unnest(ARRAY['eu', 'us']) r;
"#;

#[tokio::test]
async fn composite_keys_across_two_databases() {
    let b = TestDb::new(COMPOSITE).await;
    let c = TestDb::new(&format!(
        "{COMPOSITE}\nDELETE FROM t WHERE (tenant, id) = ('eu', 1);\n\
         INSERT INTO t VALUES ('us', 51, 0, NULL);\n\
         UPDATE t SET v = v + 0.001 WHERE (tenant, id) = ('eu', 2);\n\
         UPDATE t SET seen = NULL WHERE (tenant, id) = ('us', 3);\n\
         UPDATE t SET v = v::numeric(12,5) WHERE tenant = 'us';"
    ))
    .await;
    let cfg = targets("t", "public.t", &["tenant", "id"], &[]);
    let report = exhaustive::run(&cfg, &urls(&b, &c), &Options::default())
        .await
        .unwrap();
    assert_eq!(
        keys_of(&report, "missing_in_candidate"),
        vec![json!({"tenant": "eu", "id": 1})]
    );
    assert_eq!(
        keys_of(&report, "extra_in_candidate"),
        vec![json!({"tenant": "us", "id": 51})]
    );
    assert_eq!(
        keys_of(&report, "mismatched"),
        vec![
            json!({"tenant": "eu", "id": 2}),
            json!({"tenant": "us", "id": 3})
        ]
    );
    assert_eq!(
        columns_of(&report, json!({"tenant": "us", "id": 3})),
        vec!["seen"]
    );
    assert_eq!((report.baseline.rows, report.candidate.rows), (100, 100));
    assert_eq!(
        report.work["range_buckets"], 0,
        "composite key: hash buckets"
    );
    let summary = report.summary(2);
    assert!(
        summary.contains("missing_in_candidate 1, extra_in_candidate 1, mismatched 2"),
        "{summary}"
    );
    b.drop_db().await;
    c.drop_db().await;
}

#[tokio::test]
async fn bad_schemas_and_configs_give_clear_errors() {
    let db = TestDb::new(&format!(
        "{ORDERS}\nCREATE TABLE public.other (id int4 PRIMARY KEY, amount float8, only_here int4);\n\
         CREATE TABLE public.\"We\"\"ird\" (id int4 PRIMARY KEY, amount numeric);"
    ))
    .await;
    let u = urls(&db, &db);
    let run = |cfg: TargetsConfig| {
        let u = u.clone();
        async move { exhaustive::run(&cfg, &u, &Options::default()).await }
    };
    let ignore = ["__sync_timestamp", "__source"];
    let err = run(targets(
        "public.orders",
        "bento_shadow.nope",
        &["id"],
        &ignore,
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            RowDiffError::MissingTable {
                side: "candidate",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("bento_shadow.nope"), "{err}");

    let err = run(targets(
        "public.orders",
        "bento_shadow.orders",
        &["order_id"],
        &ignore,
    ))
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("no column `order_id`") && err.to_string().contains("key_columns"),
        "{err}"
    );

    // Bookkeeping columns not ignored: present on one side only.
    let err = run(targets(
        "public.orders",
        "bento_shadow.orders",
        &["id"],
        &[],
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`__sync_timestamp` only in baseline")
            && text.contains("`__source` only in candidate"),
        "{text}"
    );

    // numeric vs float8 cannot be compared by meaning; in report mode the column is left out.
    let err = run(targets(
        "public.\"We\"\"ird\"",
        "public.other",
        &["id"],
        &["only_here"],
    ))
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`amount`: baseline numeric vs candidate double precision"),
        "{err}"
    );
    let mut cfg = targets("public.\"We\"\"ird\"", "public.other", &["id"], &[]);
    cfg.on_schema_difference = OnSchemaDifference::Report;
    let report = run(cfg).await.unwrap();
    assert_eq!(
        report.schema_differences.len(),
        2,
        "{:?}",
        report.schema_differences
    );
    assert_eq!(report.mismatches.len(), 0, "empty table vs empty table");

    let err = run(targets(
        "public.orders",
        "bento_shadow.orders",
        &["id"],
        &["__sync_timestamp", "__source", "__typo"],
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`__typo`"), "{err}");

    let err = run(targets(
        "public.orders",
        "bento_shadow.orders",
        &["doc"],
        &ignore,
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot be used as a key"), "{err}");

    // Injection attempts in names are quoted, so they are just missing tables/columns.
    let err = run(targets(
        "public.orders",
        "orders; drop table orders",
        &["id"],
        &ignore,
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, RowDiffError::Config { .. }), "{err}");
    let err = run(targets(
        "public.orders",
        "bento_shadow.orders",
        &["id\"; --"],
        &ignore,
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, RowDiffError::MissingColumn { .. }), "{err}");

    // The CLI entry reports unset URL variables by name.
    let mut cfg = targets("public.orders", "bento_shadow.orders", &["id"], &ignore);
    cfg.baseline.url_env = "PARITYGATE_TEST_SURELY_UNSET_URL".into();
    let err = paritygate::rowdiff::cli_rowdiff(&cfg, "orders", true, 5)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("PARITYGATE_TEST_SURELY_UNSET_URL"),
        "{err}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn sessions_are_read_only() {
    let db = TestDb::new(ORDERS).await;
    let cfg = targets(
        "public.orders",
        "bento_shadow.orders",
        &["id"],
        &["__sync_timestamp", "__source"],
    );
    let pools = conn::connect(&cfg, &urls(&db, &db), 1).await.unwrap();
    let err = sqlx::query("DELETE FROM public.orders")
        .execute(&pools.baseline)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pools.candidate)
        .await
        .unwrap();
    assert_eq!(timeout, "30s");
    db.drop_db().await;
}

const SAMPLED: &str = r#"
CREATE SCHEMA cand;
CREATE TABLE public.s (id int8 PRIMARY KEY, amount numeric(12,2), note text);
INSERT INTO public.s SELECT g, g * 0.25, 'n' || g FROM generate_series(1, 300) g;
CREATE TABLE cand.s (id int8 PRIMARY KEY, amount numeric, note text);
INSERT INTO cand.s SELECT * FROM public.s;
ANALYZE public.s; ANALYZE cand.s;
"#;

fn sample_cfg(sample_size: u64, settle: f64) -> TargetsConfig {
    let mut cfg = targets("public.s", "cand.s", &["id"], &[]);
    cfg.sample = SampleConfig {
        sample_size,
        settle_delay_secs: settle,
        max_rows_per_second: 1e9,
        ..Default::default()
    };
    cfg
}

#[tokio::test]
async fn sampler_counts_settled_differences_and_skips_rows_in_flight() {
    let db = TestDb::new(SAMPLED).await;
    // Persistent drift: one row changed, one missing, one extra. In flight: 7 and 8 differ at
    // sampling time and are repaired during the settle delay.
    sqlx::raw_sql(
        "UPDATE cand.s SET amount = 99 WHERE id = 3; DELETE FROM cand.s WHERE id = 4;
         INSERT INTO cand.s VALUES (301, 1, 'x'); UPDATE cand.s SET note = 'stale' WHERE id = 7;
         DELETE FROM cand.s WHERE id = 8;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let cfg = sample_cfg(100_000, 1.5);
    let pools = conn::connect(&cfg, &urls(&db, &db), 2).await.unwrap();
    let mut sampler = Sampler::new(&cfg, pools).await.unwrap();
    let repair = {
        let pool = db.pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            sqlx::raw_sql("UPDATE cand.s SET note = 'n7' WHERE id = 7; INSERT INTO cand.s VALUES (8, 2.00, 'n8');")
                .execute(&pool)
                .await
                .unwrap();
        })
    };
    let extra = [json!({"id": 3}), json!({"id": "abc"}), json!({"other": 1})];
    let extra: Vec<_> = extra
        .iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
    let r = sampler.sample_round(&extra).await.unwrap();
    repair.await.unwrap();
    assert_eq!(
        r.rows_sampled, 301,
        "the window covers the whole small table"
    );
    assert_eq!(
        (
            r.rows.missing_in_candidate,
            r.rows.extra_in_candidate,
            r.rows.mismatched
        ),
        (1, 1, 1)
    );
    assert_eq!(r.in_flight, 2);
    assert_eq!(r.extra_keys_invalid, 2);
    assert_eq!(r.columns.len(), 1);
    assert_eq!(
        (r.columns[0].column.as_str(), r.columns[0].mismatched_rows),
        ("amount", 1)
    );
    let keys: Vec<_> = r
        .diffs
        .iter()
        .map(|d| d.key["id"].as_i64().unwrap())
        .collect();
    assert_eq!(keys, vec![3, 4, 301]);
    assert!((r.diff_ratio - 3.0 / 301.0).abs() < 1e-12);
    assert!(
        r.diff_ratio_upper_95 > r.diff_ratio && r.diff_ratio_upper_95 < 0.03,
        "{}",
        r.diff_ratio_upper_95
    );

    // A clean table: 0 diffs is reported as a bound of about 3/n, not as 0%.
    let cfg = targets("public.s", "public.s", &["id"], &[]);
    let pools = conn::connect(&cfg, &urls(&db, &db), 2).await.unwrap();
    let r = Sampler::new(&cfg, pools)
        .await
        .unwrap()
        .sample_round(&[])
        .await
        .unwrap();
    assert_eq!((r.rows_sampled, r.diffs.len(), r.diff_ratio), (300, 0, 0.0));
    assert!((r.diff_ratio_upper_95 - (1.0 - 0.05f64.powf(1.0 / 300.0))).abs() < 1e-12);
    db.drop_db().await;
}

#[tokio::test]
async fn sampler_windows_cover_the_table_and_flagged_keys_stay_out_of_the_ratio() {
    let db = TestDb::new(SAMPLED).await;
    sqlx::raw_sql("UPDATE cand.s SET note = 'drift' WHERE id = 250;")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE public.fresh AS SELECT * FROM public.s; CREATE TABLE cand.fresh AS SELECT * FROM cand.s;")
        .execute(&db.pool)
        .await
        .unwrap();
    let reltuples: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'fresh' LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        reltuples < 0.0,
        "precondition: no statistics yet ({reltuples})"
    );
    let mut fresh = sample_cfg(40, 0.0);
    fresh.baseline.table = "public.fresh".into();
    fresh.candidate.table = "cand.fresh".into();
    let pools = conn::connect(&fresh, &urls(&db, &db), 2).await.unwrap();
    let r = Sampler::new(&fresh, pools)
        .await
        .unwrap()
        .sample_round(&[])
        .await
        .unwrap();
    assert!(
        r.rows_sampled < 120,
        "never-analyzed table: window sized by a count, got {}",
        r.rows_sampled
    );

    let cfg = sample_cfg(40, 0.0);
    let pools = conn::connect(&cfg, &urls(&db, &db), 2).await.unwrap();
    let mut sampler = Sampler::new(&cfg, pools).await.unwrap();
    let flagged = json!({"id": 250}).as_object().unwrap().clone();
    let (mut covered, mut rounds, mut uniform_hits, mut flagged_hits) = (0, 0, 0, 0);
    loop {
        let r = sampler
            .sample_round(std::slice::from_ref(&flagged))
            .await
            .unwrap();
        covered += r.rows_sampled;
        rounds += 1;
        assert!(
            r.rows_sampled < 120,
            "a window holds about sample_size rows, got {}",
            r.rows_sampled
        );
        assert_eq!(
            r.rows.mismatched + r.extra_rows.mismatched,
            1,
            "the flagged key is always checked"
        );
        uniform_hits += r.rows.mismatched;
        flagged_hits += r.extra_rows.mismatched;
        assert_eq!(r.diffs[0].uniform, r.rows.mismatched == 1);
        if r.window.1 == 1 << 32 {
            break;
        }
    }
    // Disjoint windows spanning the hash space: every row exactly once.
    assert_eq!(covered, 300);
    assert_eq!((uniform_hits, flagged_hits), (1, rounds - 1));
    assert!(rounds >= 4, "{rounds}");
    db.drop_db().await;
}

#[tokio::test]
async fn sampler_rate_limit_spaces_rounds() {
    let db = TestDb::new(SAMPLED).await;
    let mut cfg = sample_cfg(100_000, 0.0);
    cfg.sample.max_rows_per_second = 1000.0; // 300 rows per round → at least 0.3 s apart
    let pools = conn::connect(&cfg, &urls(&db, &db), 2).await.unwrap();
    let mut sampler = Sampler::new(&cfg, pools).await.unwrap();
    let t = Instant::now();
    sampler.sample_round(&[]).await.unwrap();
    let not_before = sampler.next_round_not_before().unwrap();
    assert!(not_before >= t + Duration::from_millis(290));
    sampler.sample_round(&[]).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
    db.drop_db().await;
}

/// `scope = "changed"`: a candidate table that started empty at the epoch's start lacks the
/// history rows. Over the whole table that is drift; over the keys the epoch's events touched
/// (the caller's uniform sample) only a real difference among them counts.
#[tokio::test]
async fn a_changed_scope_samples_only_the_keys_the_epoch_touched() {
    let db = TestDb::new(SAMPLED).await;
    // History 1..=250 only on the baseline; the epoch touched 251..=300, and 260 differs.
    sqlx::raw_sql(
        "DELETE FROM cand.s WHERE id <= 250; UPDATE cand.s SET note = 'drift' WHERE id = 260;
         ANALYZE cand.s;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let cfg = sample_cfg(100_000, 0.0);
    let pools = conn::connect(&cfg, &urls(&db, &db), 2).await.unwrap();
    let mut sampler = Sampler::new(&cfg, pools).await.unwrap();
    let table = sampler.sample_round(&[]).await.unwrap();
    assert_eq!(
        (
            table.rows_sampled,
            table.rows.missing_in_candidate,
            table.rows.mismatched
        ),
        (300, 250, 1),
        "the whole table: history counts as missing"
    );
    let touched: Vec<_> = (251..=300)
        .chain([9_999]) // deleted on both sides within the epoch: no row, not sampled
        .map(|id| json!({ "id": id }).as_object().unwrap().clone())
        .collect();
    let changed = sampler.sample_keys(&touched, &[]).await.unwrap();
    assert_eq!(
        (
            changed.rows_sampled,
            changed.rows.missing_in_candidate,
            changed.rows.mismatched
        ),
        (50, 0, 1),
        "the epoch's keys only"
    );
    assert_eq!(changed.diffs.len(), 1);
    assert_eq!(changed.diffs[0].key["id"], 260);
    assert!(changed.diffs[0].uniform, "counted in the ratio");
    assert!((changed.diff_ratio - 1.0 / 50.0).abs() < 1e-12);
    db.drop_db().await;
}
