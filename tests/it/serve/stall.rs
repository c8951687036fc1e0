//! A stalled service never passes a gate. The service runs as a Postgres role of its own that owns
//! its tables; mid-run its UPDATE permission on `partitions` is revoked, so every checkpoint is
//! refused (a failure that is not about the data: it is retried, and must be reported). Then:
//! `/readyz` answers 503 naming the refused checkpoints, the `freshness` criterion holds the gate
//! (pending, then fail after `max_stall_seconds`), the gate is never `pass` meanwhile, and
//! `paritygate_ingestion_stalled` (the series `ParitygateIngestionStalled` fires on, see
//! `dashboards/alerts.test.yml`) is 1. After the permission is granted back, the records that waited
//! are counted exactly and the gate passes again.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::Broker;
use crate::support::db::{server_url, TestDb};
use crate::support::http::{u64_at, Api};
use crate::support::{unique, wait_until};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

const SERVICES: &str = r#"
[[services]]
name = "stock"
baseline_topics = ["st.stock"]
candidate_topics = ["bento.st.stock"]
key = { from = "fields", pointers = ["/sku"] }
window_seconds = 1
grace_seconds = 1

[services.gate]
max_stall_seconds = 4
"#;

/// Records per side before the wedge and during it: enough for the latency guardrail's sample
/// (one event in 32, chosen by identity).
const BATCH: u32 = 96;

async fn produce(broker: &Broker, skus: std::ops::Range<u32>) {
    for sku in skus {
        let payload = format!("{{\"sku\":\"s{sku}\",\"qty\":{sku}}}");
        for topic in ["st.stock", "bento.st.stock"] {
            broker
                .produce(topic, 0, None, &[], Some(payload.as_bytes()))
                .await;
        }
    }
}

async fn admin(db: &TestDb, sql: &str) {
    let mut conn = db.connect().await;
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
}

fn freshness(gate: &Value) -> String {
    gate["criteria"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "freshness"))
        .map_or_else(String::new, |c| {
            c["status"].as_str().unwrap_or("").to_owned()
        })
}

async fn records(api: &Api) -> Result<(u64, u64), String> {
    let s = api.service("stock").await?;
    Ok((
        u64_at(&s, "/baseline/records")?,
        u64_at(&s, "/candidate/records")?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_service_is_not_ready_and_never_passes() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    broker.create_topic("st.stock", 1).await;
    broker.create_topic("bento.st.stock", 1).await;
    let db = TestDb::create().await;
    let role = unique("paritygate_wedge");
    admin(
        &db,
        &format!(
            "CREATE ROLE \"{role}\" LOGIN; ALTER DATABASE \"{}\" OWNER TO \"{role}\";",
            db.name()
        ),
    )
    .await;
    let mut config = AppConfig::with_services(SERVICES, &broker, &db);
    // The service's own role owns the tables it migrates, so its permissions can be taken away.
    config.store_url = format!(
        "{}/{}",
        server_url().replacen("postgres@", &format!("{role}@"), 1),
        db.name()
    );
    let app = InProcess::start(config.config()).await;
    let api = &app.api;
    produce(&broker, 0..BATCH).await;
    wait_until("stock passes", Duration::from_secs(60), || async {
        let gate = api.gate("stock").await?;
        (gate["verdict"] == "pass")
            .then_some(())
            .ok_or(format!("gate {gate}"))
    })
    .await;
    assert_eq!(api.status("/readyz").await.unwrap(), 200);

    admin(&db, &format!("REVOKE UPDATE ON partitions FROM \"{role}\"")).await;
    produce(&broker, BATCH..2 * BATCH).await;
    let (_, ready) = wait_until(
        "/readyz reports the stall",
        Duration::from_secs(30),
        || async {
            let (code, body) = api.get("/readyz").await?;
            let named = body["stalled"].to_string();
            // Each side's lane fails at its own next checkpoint: wait until both have.
            if code == 503
                && named.contains("checkpoints of stock/baseline")
                && named.contains("checkpoints of stock/candidate")
                && named.contains("permission denied")
            {
                Ok((code, body))
            } else {
                Err(format!("{code} {body}"))
            }
        },
    )
    .await;
    let reported_at = Utc::now();
    assert_eq!(
        ready["stalled"].as_array().map(Vec::len),
        Some(2),
        "both sides: {ready}"
    );

    // From the first evaluation after the fault is known until the stall outlasts the limit, the
    // gate holds: never pass; freshness pending, then fail.
    let seen = std::sync::Mutex::new(Vec::new());
    wait_until("freshness fails", Duration::from_secs(30), || async {
        let gate = api.gate("stock").await?;
        let evaluated: Option<DateTime<Utc>> =
            gate["evaluated_at"].as_str().and_then(|t| t.parse().ok());
        if evaluated.is_some_and(|t| t > reported_at) {
            assert_ne!(gate["verdict"], "pass", "a stalled service passed: {gate}");
            seen.lock().unwrap().push(freshness(&gate));
        }
        if freshness(&gate) == "fail" && gate["verdict"] == "fail" {
            Ok(())
        } else {
            Err(format!("gate {gate}"))
        }
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.iter().all(|s| s == "pending" || s == "fail"),
        "{seen:?}"
    );
    let metrics = api.text("/metrics").await.unwrap();
    assert!(
        metrics.contains("paritygate_ingestion_stalled{service=\"stock\",side=\"baseline\"} 1"),
        "{metrics}"
    );
    // Nothing was stored meanwhile: the records wait.
    assert_eq!(
        records(api).await.unwrap(),
        (u64::from(BATCH), u64::from(BATCH))
    );

    admin(&db, &format!("GRANT UPDATE ON partitions TO \"{role}\"")).await;
    wait_until(
        "the waiting records are counted and the gate passes again",
        Duration::from_secs(60),
        || async {
            let got = records(api).await?;
            let gate = api.gate("stock").await?;
            let ready = api.status("/readyz").await?;
            if got == (u64::from(2 * BATCH), u64::from(2 * BATCH))
                && gate["verdict"] == "pass"
                && ready == 200
            {
                Ok(())
            } else {
                Err(format!("records {got:?}, readyz {ready}, gate {gate}"))
            }
        },
    )
    .await;
    let metrics = api.text("/metrics").await.unwrap();
    assert!(metrics.contains("paritygate_ingestion_stalled{service=\"stock\",side=\"baseline\"} 0"));
    app.stop().await;
    drop(db);
    // The role owned only objects of the dropped database.
    let postgres = sqlx::PgPool::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap();
    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS \"{role}\""))
        .execute(&postgres)
        .await;
    postgres.close().await;
}

/// A configured topic the broker does not know (deleted, or a cluster replaced by an empty one)
/// is a fault: `/readyz` answers 503 naming it until it exists, and the side is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_not_ready_until_it_exists() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    broker.create_topic("st.stock", 1).await;
    let db = TestDb::create().await;
    let app = InProcess::start(AppConfig::with_services(SERVICES, &broker, &db).config()).await;
    let api = &app.api;
    let (_, ready) = wait_until(
        "/readyz names the missing topic",
        Duration::from_secs(30),
        || async {
            let (code, body) = api.get("/readyz").await?;
            let named = body["stalled"].to_string();
            if code == 503 && named.contains("topic `bento.st.stock` is missing") {
                Ok((code, body))
            } else {
                Err(format!("{code} {body}"))
            }
        },
    )
    .await;
    assert!(
        !ready["stalled"].to_string().contains("topic `st.stock`"),
        "only the candidate's: {ready}"
    );
    let gate = api.gate("stock").await.unwrap();
    assert_ne!(gate["verdict"], "pass", "{gate}");
    broker.create_topic("bento.st.stock", 1).await;
    wait_until(
        "/readyz is 200 once the topic exists",
        Duration::from_secs(30),
        || async {
            match api.status("/readyz").await? {
                200 => Ok(()),
                code => Err(format!("{code} {}", api.get("/readyz").await?.1)),
            }
        },
    )
    .await;
    app.stop().await;
}
