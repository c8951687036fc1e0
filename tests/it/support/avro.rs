//! Avro for the Kafka Connect tests: records written by fastavro (an implementation independent
//! of paritygate's decoder, `tests/tools/avro_records.py`), and a small Schema Registry serving
//! the documented REST endpoints (`POST /subjects/{subject}/versions`, `GET /schemas/ids/{id}`):
//! no Confluent registry can be installed here, so schemas are registered through its POST
//! endpoint as producers do, and it can be taken down and brought back.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// An order row as a Debezium-style Avro value: exact decimal, microsecond timestamp, optional
/// note, enum status.
pub const ORDER_V1: &str = r#"{"type": "record", "name": "Value", "namespace": "shop.dbo.orders",
  "fields": [
    {"name": "id", "type": "int"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}}
  ]}"#;

/// The same record registered again by another producer: other doc, fields in another order.
pub const ORDER_V2: &str = r#"{"type": "record", "name": "Value", "namespace": "shop.dbo.orders",
  "doc": "registered by the second connector task",
  "fields": [
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "id", "type": "int"}
  ]}"#;

/// Encode `records` (schema id, value as JSON) with fastavro; `schemas` maps ids to schema text.
/// Returns each record's bytes in the Confluent wire format.
pub fn fastavro_encode(schemas: &[(u32, &str)], records: &[(u32, Value)]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let spec = json!({
        "schemas": schemas.iter().map(|(id, s)| (id.to_string(), serde_json::from_str::<Value>(s).unwrap())).collect::<serde_json::Map<_, _>>(),
        "records": records.iter().map(|(id, v)| json!({"schema": id, "value": v})).collect::<Vec<_>>(),
    });
    let python = super::program("PARITYGATE_PYTHON", "python3");
    let mut child = std::process::Command::new(python)
        .arg(super::root().join("tests/tools/avro_records.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run tests/tools/avro_records.py (scripts/setup installs fastavro)");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(spec.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "avro_records.py failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| base64::engine::general_purpose::STANDARD.decode(l).unwrap())
        .collect()
}

#[derive(Default)]
struct Registered {
    schemas: Mutex<Vec<String>>,
    down: AtomicBool,
}

/// A Schema Registry on a loopback port: ids from 1 in registration order, the same schema text
/// registered twice gets its first id.
pub struct TestRegistry {
    pub addr: SocketAddr,
    state: Arc<Registered>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn down() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error_code": 50003, "message": "down for the test"})),
    )
        .into_response()
}

async fn register(
    State(state): State<Arc<Registered>>,
    Path(_subject): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if state.down.load(Ordering::Relaxed) {
        return down();
    }
    let Some(schema) = body["schema"].as_str() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error_code": 42201, "message": "no schema"})),
        )
            .into_response();
    };
    let mut schemas = state.schemas.lock().unwrap();
    let id = match schemas.iter().position(|s| s == schema) {
        Some(i) => i + 1,
        None => {
            schemas.push(schema.to_owned());
            schemas.len()
        }
    };
    Json(json!({"id": id})).into_response()
}

async fn by_id(State(state): State<Arc<Registered>>, Path(id): Path<usize>) -> Response {
    if state.down.load(Ordering::Relaxed) {
        return down();
    }
    let schemas = state.schemas.lock().unwrap();
    match id.checked_sub(1).and_then(|i| schemas.get(i)) {
        Some(s) => Json(json!({"schema": s})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error_code": 40403, "message": "Schema not found"})),
        )
            .into_response(),
    }
}

impl TestRegistry {
    pub async fn start() -> TestRegistry {
        let state = Arc::new(Registered::default());
        let app = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/schemas/ids/{id}", get(by_id))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestRegistry {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Register `schema` under `subject` through the REST API, as a producer does; its id.
    pub async fn register(&self, subject: &str, schema: &str) -> u32 {
        let answer: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/subjects/{subject}/versions", self.url()))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&json!({"schema": schema}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["id"].as_u64().unwrap() as u32
    }

    /// How many distinct schemas have been registered.
    pub fn registered(&self) -> usize {
        self.state.schemas.lock().unwrap().len()
    }

    /// Answer 503 to everything (`true`) or serve again.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::Relaxed);
    }
}
