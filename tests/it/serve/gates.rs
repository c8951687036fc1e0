//! Gates end to end over the real broker and Postgres: a clean service becomes `pass` only after
//! its consecutive passing evaluations, a drifting one `fail`s with an explanation naming the keys'
//! kinds and counts, the wave refuses sign-off until the drift is waived, then accepts it, and the
//! sign-off's snapshot holds exactly the verdicts served at that moment.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker};
use crate::support::db::TestDb;
use crate::support::fixture;
use crate::support::traffic::{create_topics, fixture_config, Fixture};
use crate::support::wait_until;
use paritygate::config::Config;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const APPROVER: &str = "alice-approver-token-e2e-0001";

/// The fixtures' services as they are (drift traffic) and `clean_*` on `clean.` topics (clean
/// traffic), with wave 1 = {clean_orders, orders}.
pub(crate) fn services_toml() -> String {
    let fixtures = std::fs::read_to_string(fixture("paritygate.toml")).unwrap();
    let clean = fixtures
        .replace("name = \"", "name = \"clean_")
        .replace("\"dev.acme.", "\"clean.dev.acme.")
        .replace("\"bento.dev.acme.", "\"clean.bento.dev.acme.");
    format!("{fixtures}\n{clean}\n[[waves]]\nid = 1\nname = \"low-risk\"\nservices = [\"clean_orders\", \"orders\"]\n")
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> Value {
    client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(APPROVER)
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn wait_verdict(client: &reqwest::Client, base: &str, service: &str, want: &str) -> Value {
    wait_until(
        &format!("{service} gate is {want}"),
        Duration::from_secs(60),
        || async {
            let gate = get(client, base, &format!("/api/v1/services/{service}/gate")).await;
            if gate["verdict"] == want {
                Ok(gate)
            } else {
                Err(format!("gate {gate}"))
            }
        },
    )
    .await
}

fn criteria_statuses(gate: &Value) -> Vec<(String, String)> {
    gate["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_passes_after_hysteresis_drift_fails_and_the_wave_signs_off_only_once_waived() {
    let broker = Broker::start().await;
    let topics_config = fixture_config();
    create_topics(&broker, &topics_config, 6).await;
    for topic in crate::support::traffic::topics(&topics_config) {
        broker.create_topic(&format!("clean.{topic}"), 6).await;
    }
    let db = TestDb::create().await;
    let toml = AppConfig::with_services(&services_toml(), &broker, &db).toml();
    let vars = [(
        "PARITYGATE_APPROVER_TOKENS".to_owned(),
        format!("alice={APPROVER}"),
    )];
    let config = Config::parse_with_env(Path::new("gates-e2e.toml"), &toml, vars).unwrap();
    let app = InProcess::start(config).await;
    let base = format!("http://{}", app.addr);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let (drift, clean) = (Fixture::load("drift"), Fixture::load("clean"));
    let mut records = drift.records.clone();
    records.extend(
        clean
            .records
            .iter()
            .map(|r| crate::support::broker::Record {
                topic: format!("clean.{}", r.topic),
                ..r.clone()
            }),
    );
    broker.produce_all(&records, Batching::OnePerRecord).await;

    // The clean service passes, and its history shows it was held back by hysteresis first.
    wait_verdict(&client, &base, "clean_orders", "pass").await;
    let history = get(
        &client,
        &base,
        "/api/v1/services/clean_orders/gate/history?limit=100",
    )
    .await;
    let held = history.as_array().unwrap().iter().any(|h| {
        h["verdict"] == "pending"
            && h["raw_verdict"] == "pass"
            && h["report"]["reasons"][0]
                .as_str()
                .is_some_and(|r| r.starts_with("passing 1/3 consecutive evaluations"))
    });
    assert!(held, "no hysteresis step in the history: {history}");

    // The drifting service fails, naming the kinds and counts that `diff` finds on the same records.
    let orders = drift
        .expected()
        .services
        .into_iter()
        .find(|s| s.service == "orders")
        .unwrap();
    // `fail` comes at once, with the first settled difference; wait until everything has settled.
    let k = &orders.keys;
    let total = k.missing_in_candidate + k.extra_in_candidate + k.mismatched;
    let want = format!(
        "key_parity: {total} settled keys differ ({} missing_in_candidate, {} extra_in_candidate, {} mismatched); allowed 0",
        k.missing_in_candidate, k.extra_in_candidate, k.mismatched
    );
    let gate = wait_until(
        "orders fails with every drifting key settled",
        Duration::from_secs(60),
        || async {
            let gate = get(&client, &base, "/api/v1/services/orders/gate").await;
            let named = gate["reasons"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == &json!(want)));
            if gate["verdict"] == "fail" && named {
                Ok(gate)
            } else {
                Err(format!("gate {gate}"))
            }
        },
    )
    .await;

    // The wave refuses sign-off while a service fails.
    let (status, body) = post(
        &client,
        &base,
        "/api/v1/waves/1/signoff",
        json!({"comment": "go"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Waive every failing criterion of orders; it turns `warn` (after its consecutive evaluations).
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for (name, status) in criteria_statuses(&gate) {
        if status == "fail" {
            let body = json!({"criterion": name, "reason": "known sink bug, ticket DATA-42", "expires_at": expires});
            let (code, answer) =
                post(&client, &base, "/api/v1/services/orders/waivers", body).await;
            assert_eq!(code, 201, "{answer}");
        }
    }
    let waived = wait_verdict(&client, &base, "orders", "warn").await;
    assert!(
        criteria_statuses(&waived)
            .iter()
            .any(|(_, s)| s == "waived"),
        "{waived}"
    );

    // Now the wave signs off, and the snapshot is exactly what was served.
    let served: Vec<Value> = vec![
        get(&client, &base, "/api/v1/services/clean_orders/gate").await,
        get(&client, &base, "/api/v1/services/orders/gate").await,
    ];
    let (status, record) = post(
        &client,
        &base,
        "/api/v1/waves/1/signoff",
        json!({"comment": "wave 1 go"}),
    )
    .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["identity"], "alice");
    let snapshot = record["snapshot"]["services"].as_array().unwrap();
    assert_eq!(snapshot.len(), 2);
    for (snap, gate) in snapshot.iter().zip(&served) {
        assert_eq!(snap["gate"]["verdict"], gate["verdict"], "{snap} vs {gate}");
        assert_eq!(criteria_statuses(&snap["gate"]), criteria_statuses(gate));
        assert_eq!(snap["gate"]["config_digest"], gate["config_digest"]);
        // The same evidence, but for the settled bound: with every partition idle it follows the
        // clock, so an evaluation between the read and the sign-off moves it forward.
        let (mut snap_evidence, mut served_evidence) =
            (snap["gate"]["evidence"].clone(), gate["evidence"].clone());
        let bound = |e: &mut Value| e.as_object_mut().unwrap().remove("settled_until_ms");
        let (at_signoff, at_read) = (bound(&mut snap_evidence), bound(&mut served_evidence));
        assert_eq!(snap_evidence, served_evidence);
        assert!(
            at_signoff.as_ref().and_then(Value::as_i64) >= at_read.as_ref().and_then(Value::as_i64),
            "{at_signoff:?} < {at_read:?}"
        );
    }
    let wave = get(&client, &base, "/api/v1/waves/1").await;
    assert_eq!(wave["signed_off"], true, "{wave}");
    assert_eq!(wave["stale"], false, "{wave}");
    app.stop().await;
}
