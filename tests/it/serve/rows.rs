//! `serve` with `[services.targets]`: the row sampler on real tables in a fresh database.
//!
//! - `orders`: the whole table is the uniform sample; one missing, one extra and one mismatched
//!   row are drift, and one row that is fixed during the settle delay is in flight, not drift.
//! - `ledger`: a sample of about one row in 1,000; its only differing row is found because the
//!   stream comparison flags its key (a baseline event with no candidate counterpart).
//! - `down`: its target database does not exist; the failure is counted and `serve` goes on.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::Api;
use crate::support::wait_until;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::time::Duration;

const TABLES: &str = r#"
CREATE SCHEMA shadow;
CREATE TABLE public.orders (id bigint PRIMARY KEY, name text, amount numeric(12,2));
CREATE TABLE shadow.orders_cand (id int4 PRIMARY KEY, name text, amount numeric);
INSERT INTO public.orders SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 200) g;
INSERT INTO shadow.orders_cand SELECT * FROM public.orders;
DELETE FROM shadow.orders_cand WHERE id = 3;
INSERT INTO shadow.orders_cand VALUES (201, 'extra', 1);
UPDATE shadow.orders_cand SET amount = amount + 0.01 WHERE id = 10;
-- Not applied yet by the candidate's sink: the test applies it during the settle delay.
UPDATE shadow.orders_cand SET name = 'stale' WHERE id = 20;

CREATE TABLE public.ledger (id bigint PRIMARY KEY, note text);
CREATE TABLE shadow.ledger_cand (id bigint PRIMARY KEY, note text);
INSERT INTO public.ledger SELECT g, 'l' || g FROM generate_series(1, 1000) g;
INSERT INTO shadow.ledger_cand SELECT * FROM public.ledger;
UPDATE shadow.ledger_cand SET note = 'drift' WHERE id = 500;
ANALYZE;
"#;

fn services(url_env: &str, down_env: &str) -> String {
    let service = |name: &str, base: &str, cand: &str, env: &str, sample: &str| {
        format!(
            "[[services]]\nname = \"{name}\"\nbaseline_topics = [\"{name}.b\"]\ncandidate_topics = [\"{name}.c\"]\n\
             [services.targets]\nbaseline = {{ url_env = \"{env}\", table = \"{base}\" }}\n\
             candidate = {{ url_env = \"{env}\", table = \"{cand}\" }}\nkey_columns = [\"id\"]\n\
             [services.targets.sample]\n{sample}\n"
        )
    };
    [
        service(
            "orders",
            "public.orders",
            "shadow.orders_cand",
            url_env,
            "sample_size = 100000\ninterval_secs = 600\nsettle_delay_secs = 3",
        ),
        service(
            "ledger",
            "public.ledger",
            "shadow.ledger_cand",
            url_env,
            "sample_size = 1\ninterval_secs = 1\nsettle_delay_secs = 0.2",
        ),
        service(
            "down",
            "public.orders",
            "shadow.orders_cand",
            down_env,
            "interval_secs = 1",
        ),
    ]
    .concat()
}

/// Wait until the sampler's window query on `table` has run (its backend is idle after it), then
/// apply the sink's pending update: the re-check after the settle delay sees it applied.
async fn fix_during_settle_delay(targets: &TestDb) {
    let pool = sqlx::PgPool::connect(&targets.url()).await.unwrap();
    wait_until(
        "the sampler read shadow.orders_cand",
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE application_name = 'paritygate-rowdiff' AND state = 'idle' \
                       AND query LIKE '%orders_cand%' AND query LIKE '%>= $1%'",
                )
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
                if n > 0 {
                    Ok(())
                } else {
                    Err("no sample query yet".into())
                }
            }
        },
    )
    .await;
    sqlx::query("UPDATE shadow.orders_cand SET name = 'n20' WHERE id = 20")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn rows(api: &Api, service: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_until(
        &format!("a matching rows page of {service}"),
        Duration::from_secs(45),
        || async {
            let page = api
                .json(&format!("/api/v1/services/{service}/rows"))
                .await?;
            if want(&page) {
                Ok(page)
            } else {
                Err(page.to_string())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampler_reports_drift_not_rows_in_flight_and_survives_a_dead_target() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for topic in [
        "orders.b", "orders.c", "ledger.b", "ledger.c", "down.b", "down.c",
    ] {
        broker.create_topic(topic, 1).await;
    }
    let store = TestDb::create().await;
    let targets = TestDb::create().await;
    let mut conn: PgConnection = targets.connect().await;
    sqlx::raw_sql(TABLES).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    // Unique names: tests of this binary share the process environment.
    let (url_env, down_env) = (
        crate::support::unique("RD_TARGETS").to_uppercase(),
        crate::support::unique("RD_DOWN").to_uppercase(),
    );
    std::env::set_var(&url_env, targets.url());
    std::env::set_var(
        &down_env,
        format!("{}/no_such_database_rd", crate::support::db::server_url()),
    );
    // The stream flags ledger key 500: a baseline event the candidate never emitted.
    broker
        .produce_all(
            &[Record {
                topic: "ledger.b".into(),
                partition: 0,
                key: Some(b"500".to_vec()),
                headers: vec![],
                payload: Some(br#"{"id":500,"note":"l500"}"#.to_vec()),
                timestamp_ms: None,
            }],
            Batching::OnePerRecord,
        )
        .await;
    let config = AppConfig::with_services(&services(&url_env, &down_env), &broker, &store);
    let app = InProcess::start(config.config()).await;
    fix_during_settle_delay(&targets).await;

    let page = rows(&app.api, "orders", |p| {
        !p["rounds"].as_array().unwrap().is_empty()
    })
    .await;
    let round = &page["rounds"][0];
    assert_eq!(page["targets_configured"], true);
    assert_eq!(
        round["rows_sampled"], 201,
        "1..=200 and the extra 201: {round}"
    );
    assert_eq!(
        round["differing"],
        json!({"missing_in_candidate": 1, "extra_in_candidate": 1, "mismatched": 1})
    );
    assert_eq!(
        round["in_flight"], 1,
        "row 20 was fixed during the settle delay: {round}"
    );
    assert_eq!(
        round["columns"],
        json!([{"column": "amount", "mismatched_rows": 1}])
    );
    let ratio = round["diff_ratio"].as_f64().unwrap();
    assert!((ratio - 3.0 / 201.0).abs() < 1e-12, "{ratio}");
    assert!(round["diff_ratio_upper_95"].as_f64().unwrap() > ratio);
    let mut diffs: Vec<(i64, String, Value, bool)> = page["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"]["id"].as_i64().unwrap(),
                d["kind"].as_str().unwrap().to_owned(),
                d["columns"].clone(),
                d["uniform"].as_bool().unwrap(),
            )
        })
        .collect();
    diffs.sort_by_key(|d| d.0);
    assert_eq!(
        diffs,
        vec![
            (3, "missing_in_candidate".into(), json!([]), true),
            (10, "mismatched".into(), json!(["amount"]), true),
            (201, "extra_in_candidate".into(), json!([]), true),
        ]
    );

    // The status summary is the latest round, and the gate fails on it (no stream events yet).
    let status = wait_until(
        "the status shows the rows summary",
        Duration::from_secs(10),
        || async {
            let s = app.api.service("orders").await?;
            if s["rows"].is_object() {
                Ok(s)
            } else {
                Err(s["rows"].to_string())
            }
        },
    )
    .await;
    for field in [
        "rows_sampled",
        "differing",
        "in_flight",
        "diff_ratio",
        "diff_ratio_upper_95",
        "evaluated_at",
    ] {
        assert_eq!(status["rows"][field], round[field], "{field}");
    }
    let gate = app.api.gate("orders").await.unwrap();
    assert_eq!(gate["verdict"], "fail");
    assert!(
        gate["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .starts_with("row_parity: row-diff ratio ≤ 0.0381")),
        "{gate}"
    );

    // ledger: the tiny uniform sample misses row 500; the flagged key finds it.
    let page = rows(&app.api, "ledger", |p| {
        p["rounds"][0]["extra_differing"]["mismatched"] == 1
    })
    .await;
    assert_eq!(
        page["diffs"],
        json!([{"key": {"id": 500}, "kind": "mismatched", "columns": ["note"], "uniform": false}])
    );
    assert!(
        page["rounds"][0]["rows_sampled"].as_u64().unwrap() < 20,
        "{page}"
    );

    // down: counted, retried, and nothing else stopped. The row gauges are published with the
    // round's evaluation, which the API (reading the stored verdict) may show a moment earlier.
    let metrics = wait_until(
        "the failure is counted and the orders round published",
        Duration::from_secs(20),
        || async {
            let text = app.api.text("/metrics").await?;
            if text
                .contains("paritygate_row_sample_failures_total{service=\"down\",stage=\"start\"}")
                && text.contains("paritygate_row_diff_ratio_upper_bound{service=\"orders\"}")
            {
                Ok(text)
            } else {
                Err("no failure counted or orders round published yet".into())
            }
        },
    )
    .await;
    assert!(
        metrics.contains("paritygate_rows_sampled_total{service=\"orders\"} 201"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paritygate_rows_differing{kind=\"mismatched\",service=\"orders\"} 1"),
        "{metrics}"
    );
    assert_eq!(app.api.status("/healthz").await.unwrap(), 200);
    let down = app.api.json("/api/v1/services/down/rows").await.unwrap();
    assert_eq!(down["rounds"], json!([]));
    app.stop().await;
}

/// Wait until service 1's lease can be taken (and release it again).
async fn free<F, Fut>(take: F, what: &str)
where
    F: Fn(i16) -> Fut + Copy,
    Fut: std::future::Future<Output = Option<paritygate::store::lease::Lease>>,
{
    wait_until(what, Duration::from_secs(10), || async move {
        take(1)
            .await
            .map(drop)
            .ok_or_else(|| "still held".to_owned())
    })
    .await;
}

/// Several replicas sample a service's rows no more than one would: the sampler runs only while
/// its replica holds the service's lease, which one database session at a time can hold and
/// which goes with the session (a replica that dies or loses the database frees it).
#[tokio::test]
async fn one_replica_at_a_time_holds_a_services_row_sampler_lease() {
    use paritygate::store::lease::{Lease, LeaseKind::RowSampler};
    use paritygate::store::Store;
    let db = TestDb::create().await;
    let store = Store::connect_lazy(&db.url(), 2).unwrap();
    let take = |id: i16| {
        let store = store.clone();
        async move { Lease::try_take(&store, RowSampler, id).await.unwrap() }
    };

    let first = take(1).await.expect("a free lease is taken");
    assert!(take(1).await.is_none(), "a held lease is not taken twice");
    let other_service = take(2).await;
    assert!(other_service.is_some(), "each service has its own lease");

    drop(first);
    free(take, "the dropped lease is free").await;

    // The holder's session ends under it (database restart, network): the lease says so and is
    // free for the next replica.
    let mut holder = take(1).await.expect("free again");
    assert!(holder.held().await);
    let mut admin = db.connect().await;
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND objid = 1 AND granted AND database = \
           (SELECT oid FROM pg_database WHERE datname = current_database())) t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(ended, 1);
    free(take, "the lease is gone with its session").await;
    assert!(
        !holder.held().await,
        "a lease whose session ended is not held"
    );
    let _ = admin.close().await;
}
