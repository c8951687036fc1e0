//! `error_parity` over the real broker: records on each runtime's dead-letter topic are counted
//! (never compared) and the candidate's error rate is held against the baseline's.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::u64_at;
use crate::support::wait_until;
use std::time::Duration;

const SERVICES: &str = r#"
[[services]]
name = "stock"
baseline_topics = ["er.stock.baseline"]
candidate_topics = ["er.stock.candidate"]
key = { from = "fields", pointers = ["/sku"] }
error_topics = { baseline = ["er.stock.baseline.dlq"], candidate = ["er.stock.candidate.dlq"] }
"#;

fn record(topic: &str, payload: String) -> Record {
    Record {
        topic: topic.into(),
        partition: 0,
        key: None,
        headers: Vec::new(),
        payload: Some(payload.into_bytes()),
        timestamp_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_errors_beyond_the_baselines_fail_error_parity() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for topic in [
        "er.stock.baseline",
        "er.stock.candidate",
        "er.stock.baseline.dlq",
        "er.stock.candidate.dlq",
    ] {
        broker.create_topic(topic, 1).await;
    }
    let db = TestDb::create().await;
    let app = InProcess::start(AppConfig::with_services(SERVICES, &broker, &db).config()).await;

    let mut records = Vec::new();
    for i in 0..10 {
        let body = format!("{{\"sku\":\"s{i}\",\"qty\":{i}}}");
        records.push(record("er.stock.baseline", body.clone()));
        records.push(record("er.stock.candidate", body));
    }
    records.push(record(
        "er.stock.baseline.dlq",
        "{\"error\":\"constraint\"}".into(),
    ));
    for _ in 0..3 {
        records.push(record("er.stock.candidate.dlq", "not even JSON".into()));
    }
    broker.produce_all(&records, Batching::OnePerRecord).await;

    let gate = wait_until("error_parity decided", Duration::from_secs(60), || async {
        let s = app.api.service("stock").await?;
        let counts = (
            u64_at(&s, "/baseline/errors")?,
            u64_at(&s, "/candidate/errors")?,
            u64_at(&s, "/baseline/records")?,
            u64_at(&s, "/candidate/records")?,
        );
        let gate = app.api.gate("stock").await?;
        if counts == (1, 3, 10, 10) && gate["verdict"] == "fail" {
            Ok(gate)
        } else {
            Err(format!(
                "counts (errors b/c, records b/c) {counts:?}, gate {gate}"
            ))
        }
    })
    .await;
    let error_parity = gate["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "error_parity")
        .unwrap()
        .clone();
    assert_eq!(error_parity["status"], "fail", "{gate}");
    assert_eq!(error_parity["observed"]["baseline_rate"], 0.1);
    assert_eq!(error_parity["observed"]["candidate_rate"], 0.3);
    // Everything else matches: the dead-letter records were never compared as events.
    let key_parity = gate["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "key_parity")
        .unwrap()
        .clone();
    assert_eq!(key_parity["status"], "pass", "{gate}");
    app.stop().await;
}
