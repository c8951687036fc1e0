//! The API router alone (no Kafka, no evaluation loop) on a fresh database, with tokens and waves
//! configured and verdicts set by hand: for gate, waiver, sign-off and Flagger tests.

use super::db::TestDb;
use chrono::{TimeZone, Utc};
use paritygate::config::Config;
use paritygate::http::{router, AppState};
use paritygate::metrics::Metrics;
use paritygate::model::status::{GateStatus, ServiceStatus, SharedStatus};
use paritygate::model::{Criterion, CriterionName, CriterionStatus, Verdict};
use paritygate::store::Store;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub const ALICE: &str = "alice-approver-token-0001";
pub const BOB: &str = "bob-approver-token-000002";
pub const READER: &str = "ci-reader-token-000000003";

/// orders in wave 1 (one approval); payments and inventory in wave 2 (two approvals).
pub const SERVICES: &str = r#"
[[services]]
name = "orders"
wave = 1
baseline_topics = ["orders"]
candidate_topics = ["bento.orders"]

[[services]]
name = "payments"
wave = 2
baseline_topics = ["payments"]
candidate_topics = ["bento.payments"]

[[services]]
name = "inventory"
wave = 2
baseline_topics = ["inventory"]
candidate_topics = ["bento.inventory"]

[[waves]]
id = 1
name = "pilot"
services = ["orders"]

[[waves]]
id = 2
name = "core"
services = ["payments", "inventory"]
required_approvals = 2
"#;

/// `text` parsed with the test tokens in the environment.
pub fn config(text: &str) -> Config {
    let vars = [
        (
            "PARITYGATE_APPROVER_TOKENS".to_owned(),
            format!("alice={ALICE}, bob={BOB}"),
        ),
        (
            "PARITYGATE_READER_TOKENS".to_owned(),
            format!("ci={READER}"),
        ),
    ];
    Config::parse_with_env(Path::new("gates.toml"), text, vars).expect("test config")
}

/// A served router; aborted on `Drop`.
#[derive(Debug)]
pub struct GateApp {
    pub addr: SocketAddr,
    pub config: Arc<Config>,
    /// Where `set` stores the verdicts the API serves.
    pub store: Store,
    server: JoinHandle<()>,
    client: reqwest::Client,
}

impl Drop for GateApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GateApp {
    /// Serve `config` on `db` (migrated, services registered); every service `pending` until set.
    pub async fn start(config: Config, db: &TestDb) -> GateApp {
        let store = Store::connect_lazy(&db.url(), 4).expect("store");
        store.migrate().await.expect("migrate");
        let names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
        store.register_services(&names).await.expect("register");
        let config = Arc::new(config);
        let status = SharedStatus::default();
        let state = AppState {
            config: config.clone(),
            store: store.clone(),
            status,
            metrics: Metrics::new().expect("metrics"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .expect("client");
        GateApp {
            addr,
            store,
            config,
            server,
            client,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serve `verdict` for `service`, with one criterion of that status and a config digest
    /// and canonical version as the evaluator would set them.
    pub async fn set(&self, service: &str, verdict: Verdict) {
        let index = self.config.services.iter().position(|s| s.name == service);
        let digest = index
            .map(|i| self.config.digest(i).to_owned())
            .unwrap_or_default();
        let status = match verdict {
            Verdict::Pass => CriterionStatus::Pass,
            Verdict::Warn => CriterionStatus::Warn,
            Verdict::Pending => CriterionStatus::Pending,
            Verdict::Fail => CriterionStatus::Fail,
        };
        let gate = GateStatus {
            verdict,
            raw_verdict: verdict,
            reasons: vec![format!("{service} is {}", verdict.as_str())],
            criteria: vec![Criterion {
                name: CriterionName::KeyParity,
                status,
                observed: json!({"total": 0}),
                threshold: json!({"max_mismatched_keys": 0}),
                explanation: format!("key parity is {}", verdict.as_str()),
            }],
            evaluated_at: Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single(),
            canonical_version: paritygate::core::canonical::CANONICAL_VERSION.into(),
            config_digest: digest,
            thresholds: json!({"max_mismatched_keys": 0}),
            ..Default::default()
        };
        let status = ServiceStatus {
            service: service.to_owned(),
            gate,
            ..Default::default()
        };
        super::db::store_verdict(&self.store, &status).await;
    }

    /// Send a request; (status, body text).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, String) {
        let mut request = self.client.request(method, format!("{}{path}", self.url()));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let (status, text) = self.send(reqwest::Method::GET, path, token, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let (status, text) = self
            .send(reqwest::Method::POST, path, token, Some(body.to_string()))
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET that must answer `status`; the JSON body.
    pub async fn expect(&self, path: &str, status: u16) -> Value {
        let (got, body) = self.get(path, None).await;
        assert_eq!(got, status, "GET {path}: {body}");
        body
    }
}

/// The `error.message` of an error envelope.
pub fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}
