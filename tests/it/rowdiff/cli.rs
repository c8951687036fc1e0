//! The `paritygate rowdiff` binary against two small tables in a fresh database: the exact JSON
//! report by kind, the text summary, and the exit codes (0 equal, 1 differences, 2 bad usage,
//! config or environment).

use crate::support::db::TestDb;
use assert_cmd::Command;
use serde_json::{json, Value};
use sqlx::Connection;

/// Baseline `public.base` and candidate `shadow.cand` (other but equivalent types), with two
/// missing, two extra and two mismatched rows; `public.same` is an exact copy of the baseline.
const TABLES: &str = r#"
CREATE SCHEMA shadow;
CREATE TABLE public.base (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz);
CREATE TABLE shadow.cand (id int4 PRIMARY KEY, name varchar(40), amount numeric, at timestamp);
INSERT INTO public.base
  SELECT g, 'n' || g, g * 1.5, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 50) g;
INSERT INTO shadow.cand SELECT id, name, amount, at AT TIME ZONE 'UTC' FROM public.base;
CREATE TABLE public.same AS SELECT * FROM public.base;
ALTER TABLE public.same ADD PRIMARY KEY (id);
DELETE FROM shadow.cand WHERE id IN (3, 4);
INSERT INTO shadow.cand VALUES (51, 'x', 1, NULL), (52, 'y', 2, NULL);
UPDATE shadow.cand SET amount = amount + 0.01 WHERE id = 10;
UPDATE shadow.cand SET name = 'changed' WHERE id = 11;
"#;

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let service = |name: &str, targets: &str| {
        format!(
            "[[services]]\nname = \"{name}\"\nbaseline_topics = [\"{name}.b\"]\ncandidate_topics = [\"{name}.c\"]\n{targets}\n"
        )
    };
    let targets = |cand: &str, url_env: &str| {
        format!(
            "[services.targets]\nbaseline = {{ url_env = \"RD_TEST_URL\", table = \"public.base\" }}\n\
             candidate = {{ url_env = \"{url_env}\", table = \"{cand}\" }}\nkey_columns = [\"id\"]\n"
        )
    };
    let text = [
        service("orders", &targets("shadow.cand", "RD_TEST_URL")),
        service("same", &targets("public.same", "RD_TEST_URL")),
        service("plain", ""),
        service("nourl", &targets("public.same", "RD_TEST_UNSET_URL")),
    ]
    .concat();
    let path = dir.join("rowdiff.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn setup() -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    sqlx::raw_sql(TABLES).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path());
    (db, dir, path)
}

fn rowdiff(db: &TestDb, config: &std::path::Path, args: &[&str], code: i32) -> (String, String) {
    rowdiff_at(&db.url(), config, args, code)
}

fn rowdiff_at(url: &str, config: &std::path::Path, args: &[&str], code: i32) -> (String, String) {
    let out = Command::cargo_bin("paritygate")
        .unwrap()
        .env_remove("PARITYGATE_CONFIG")
        .env_remove("RD_TEST_UNSET_URL")
        .env("RD_TEST_URL", url)
        .args(["rowdiff", "--config"])
        .arg(config)
        .args(args)
        .assert()
        .code(code);
    let o = out.get_output();
    (
        String::from_utf8(o.stdout.clone()).unwrap(),
        String::from_utf8(o.stderr.clone()).unwrap(),
    )
}

/// `(key, columns)` of every mismatch of `kind`, sorted by key id.
fn by_kind(report: &Value, kind: &str) -> Vec<(Value, Value)> {
    let mut out: Vec<(Value, Value)> = report["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| (m["key"].clone(), m["columns"].clone()))
        .collect();
    out.sort_by_key(|(k, _)| k["id"].as_i64());
    out
}

#[tokio::test]
async fn differences_exit_1_with_every_key_by_kind() {
    let (db, _dir, config) = setup().await;
    let (stdout, _) = rowdiff(
        &db,
        &config,
        &["--service", "orders", "--format", "json"],
        1,
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["service"], "orders");
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["baseline"], json!({"rows": 50}));
    assert_eq!(report["candidate"], json!({"rows": 50}));
    assert_eq!(
        report["rows"],
        json!({"missing_in_candidate": 2, "extra_in_candidate": 2, "mismatched": 2})
    );
    assert_eq!(
        by_kind(&report, "missing_in_candidate"),
        vec![(json!({"id": 3}), json!([])), (json!({"id": 4}), json!([]))]
    );
    assert_eq!(
        by_kind(&report, "extra_in_candidate"),
        vec![
            (json!({"id": 51}), json!([])),
            (json!({"id": 52}), json!([]))
        ]
    );
    // numeric(12,2) vs numeric and timestamptz vs naive UTC timestamp agree by meaning, so only
    // the injected columns differ.
    assert_eq!(
        by_kind(&report, "mismatched"),
        vec![
            (json!({"id": 10}), json!(["amount"])),
            (json!({"id": 11}), json!(["name"]))
        ]
    );
    let m10 = report["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == json!({"id": 10}))
        .unwrap();
    assert_eq!(m10["baseline"]["amount"], json!(15));
    assert_eq!(m10["candidate"]["amount"], json!(15.01));
    assert_eq!(
        report["columns"],
        json!([{"column": "amount", "mismatched_rows": 1}, {"column": "name", "mismatched_rows": 1}])
    );
    assert_eq!(report["schema_differences"], json!([]));

    let (text, _) = rowdiff(&db, &config, &["--service", "orders"], 1);
    assert!(text.contains("rowdiff orders: DIFFERENCES found"), "{text}");
    assert!(
        text.contains("missing_in_candidate 2, extra_in_candidate 2, mismatched 2"),
        "{text}"
    );
}

#[tokio::test]
async fn equal_tables_exit_0() {
    let (db, _dir, config) = setup().await;
    let (stdout, _) = rowdiff(&db, &config, &["--service", "same", "--format", "json"], 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["mismatches"], json!([]));
}

/// Target URLs as libpq users write them: `sslmode=verify-full` with `sslrootcert` against the
/// local server's certificate, and a refusal naming the cause when the name does not match it.
#[tokio::test]
async fn targets_are_read_over_verified_tls() {
    let (db, _dir, config) = setup().await;
    let tls = db.tls_url("verify-full");
    let (stdout, _) = rowdiff_at(&tls, &config, &["--service", "same", "--format", "json"], 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verdict"], "pass");
    // The certificate names `localhost`, not 127.0.0.1: verify-full refuses, and says why.
    let wrong_host = tls.replace("@localhost:", "@127.0.0.1:");
    let (_, err) = rowdiff_at(&wrong_host, &config, &["--service", "same"], 2);
    assert!(
        err.contains("RD_TEST_URL") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_service_targets_or_environment_exit_2_with_a_clear_message() {
    let (db, _dir, config) = setup().await;
    let (_, err) = rowdiff(&db, &config, &["--service", "nope"], 2);
    assert!(
        err.contains("no service `nope` (configured: orders, same, plain, nourl)"),
        "{err}"
    );
    let (_, err) = rowdiff(&db, &config, &["--service", "plain"], 2);
    assert!(
        err.contains("service `plain` has no [services.targets] table"),
        "{err}"
    );
    let (_, err) = rowdiff(&db, &config, &["--service", "nourl"], 2);
    assert!(
        err.contains("targets.candidate.url_env")
            && err.contains("environment variable `RD_TEST_UNSET_URL` is not set"),
        "{err}"
    );
    // Usage errors (clap) are 2 as well.
    let (_, err) = rowdiff(&db, &config, &["--format", "json"], 2);
    assert!(err.contains("--service"), "{err}");
}
