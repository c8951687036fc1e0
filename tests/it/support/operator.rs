//! The operator page's scenario, shared by `tests/it/api/page.rs` and `tests/it/api/browser.rs`: the fixtures'
//! services as they are (drift traffic) and `clean_*` copies (clean traffic), wave 1 =
//! {clean_orders, orders} and wave 2 = {clean_payments}, an approver token, and one extra `orders`
//! key made of HTML (`<script>alert(1)</script>`) whose candidate differs by a field holding HTML,
//! so the page must escape both. [`Scenario::start`] returns once every verdict has settled:
//! `clean_orders` passes, `orders` fails with every differing key settled.

use super::app::{AppConfig, InProcess};
use super::broker::{Batching, Broker, Record};
use super::db::TestDb;
use super::fixture;
use super::traffic::{create_topics, fixture_config, Fixture};
use super::wait_until;
use paritygate::config::Config;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub const APPROVER: &str = "alice-approver-token-page-0001";
pub const READER: &str = "rita-reader-token-page-0001";
/// The key of the injected record: the page must show it as text.
pub const HTML_KEY: &str = "<script>alert(1)</script>";
/// The injected key's candidate value of `/note` (the baseline has `null`).
pub const HTML_VALUE: &str = "<img src=x onerror=alert(2)> & \"quoted\" 'single'";

fn services_toml() -> String {
    let fixtures = std::fs::read_to_string(fixture("paritygate.toml")).expect("fixture config");
    let clean = fixtures
        .replace("name = \"", "name = \"clean_")
        .replace("\"dev.acme.", "\"clean.dev.acme.")
        .replace("\"bento.dev.acme.", "\"clean.bento.dev.acme.");
    format!(
        "{fixtures}\n{clean}\n[[waves]]\nid = 1\nname = \"low-risk\"\nservices = [\"clean_orders\", \"orders\"]\n\
         [[waves]]\nid = 2\nname = \"payments\"\nservices = [\"clean_payments\"]\n"
    )
}

/// The first `orders` insert of the baseline, copied under [`HTML_KEY`] to both sides; the
/// candidate's copy has `/note` = [`HTML_VALUE`].
fn html_records(drift: &Fixture) -> [Record; 2] {
    let original = drift
        .records
        .iter()
        .find(|r| {
            r.topic == "dev.acme.public.orders"
                && r.payload.is_some()
                && r.headers
                    .iter()
                    .any(|(n, v)| n == "operation" && v.as_deref() == Some(b"insert"))
        })
        .expect("an orders insert in the drift fixture");
    let mut baseline = original.clone();
    baseline.key = Some(HTML_KEY.as_bytes().to_vec());
    let mut payload: Value =
        serde_json::from_slice(original.payload.as_deref().unwrap_or_default()).expect("json");
    payload["note"] = json!(HTML_VALUE);
    let mut candidate = baseline.clone();
    candidate.topic = "bento.dev.acme.public.orders".into();
    candidate.payload = Some(serde_json::to_vec(&payload).expect("json"));
    [baseline, candidate]
}

#[derive(Debug)]
pub struct Scenario {
    pub app: InProcess,
    pub base: String,
    pub client: reqwest::Client,
    _broker: Broker,
    _db: TestDb,
}

impl Scenario {
    pub async fn start() -> Scenario {
        let broker = Broker::start().await;
        let topics_config = fixture_config();
        create_topics(&broker, &topics_config, 6).await;
        for topic in super::traffic::topics(&topics_config) {
            broker.create_topic(&format!("clean.{topic}"), 6).await;
        }
        let db = TestDb::create().await;
        let toml = AppConfig::with_services(&services_toml(), &broker, &db).toml();
        let vars = [
            (
                "PARITYGATE_APPROVER_TOKENS".to_owned(),
                format!("alice={APPROVER}"),
            ),
            (
                "PARITYGATE_READER_TOKENS".to_owned(),
                format!("rita={READER}"),
            ),
        ];
        let config = Config::parse_with_env(Path::new("page.toml"), &toml, vars).expect("config");
        let app = InProcess::start(config).await;
        let base = format!("http://{}", app.addr);
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");

        let (drift, clean) = (Fixture::load("drift"), Fixture::load("clean"));
        let mut records = drift.records.clone();
        records.extend(clean.records.iter().map(|r| Record {
            topic: format!("clean.{}", r.topic),
            ..r.clone()
        }));
        records.extend(html_records(&drift));
        broker.produce_all(&records, Batching::OnePerRecord).await;

        let orders = drift
            .expected()
            .services
            .into_iter()
            .find(|s| s.service == "orders")
            .expect("orders in the drift report");
        // The injected key is one more mismatched key.
        let want_mismatched = orders.keys.mismatched + 1;
        let scenario = Scenario {
            app,
            base,
            client,
            _broker: broker,
            _db: db,
        };
        scenario.wait_verdict("clean_orders", "pass").await;
        scenario.wait_verdict("clean_payments", "pass").await;
        wait_until(
            "orders fails with every key settled",
            Duration::from_secs(90),
            || async {
                let s = scenario.get("/api/v1/services/orders").await;
                let k = &s["keys"];
                let settled = k["settled"]["mismatched"].as_u64() == Some(want_mismatched)
                    && k["in_flight"]
                        .as_object()
                        .is_some_and(|o| o.values().all(|v| v == 0));
                if s["gate"]["verdict"] == "fail" && settled {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            },
        )
        .await;
        scenario
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    /// The page's HTML and status.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET page");
        let status = response.status().as_u16();
        (status, response.text().await.expect("page text"))
    }

    /// Submit a form as a browser does; the status and HTML of the answer.
    pub async fn submit(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST form");
        let status = response.status().as_u16();
        (status, response.text().await.expect("answer text"))
    }

    pub async fn wait_verdict(&self, service: &str, want: &str) -> Value {
        wait_until(
            &format!("{service} gate is {want}"),
            Duration::from_secs(90),
            || async {
                let gate = self.get(&format!("/api/v1/services/{service}/gate")).await;
                if gate["verdict"] == want {
                    Ok(gate)
                } else {
                    Err(format!("gate {gate}"))
                }
            },
        )
        .await
    }

    /// Waive every failing criterion of `service` through the API and wait until it warns.
    pub async fn waive_failing(&self, service: &str) {
        let gate = self.get(&format!("/api/v1/services/{service}/gate")).await;
        let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        for c in gate["criteria"].as_array().into_iter().flatten() {
            if c["status"] == "fail" {
                let body = json!({"criterion": c["name"], "reason": "known sink bug, ticket DATA-42", "expires_at": expires});
                let response = self
                    .client
                    .post(format!("{}/api/v1/services/{service}/waivers", self.base))
                    .bearer_auth(APPROVER)
                    .json(&body)
                    .send()
                    .await
                    .expect("POST waiver");
                assert_eq!(response.status().as_u16(), 201, "waiver of {}", c["name"]);
            }
        }
        self.wait_verdict(service, "warn").await;
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
