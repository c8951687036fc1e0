//! A Confluent Schema Registry client, to the documented REST API only (`GET /schemas/ids/{id}`
//! → `{"schema": "…", "schemaType": …}`), so any compatible registry works. Schemas are
//! immutable by id, so each is fetched once and cached. Called from the lane workers (plain
//! threads): a fetch runs on the tokio runtime with a bounded retry; while the registry is down
//! records are counted as `registry_unavailable` at once (one probe per second), never waited on,
//! and the registry is used again as soon as it answers.

use crate::config::model::RegistryEndpoint;
use crate::core::avro::{AvroError, SchemaLookup, WriterSchema};
use backon::{ExponentialBuilder, Retryable};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Why a registry client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("[schema_registry]: {0}")]
    Config(String),
    #[error("[schema_registry] ca_file {path}: {message}")]
    Ca { path: String, message: String },
    #[error("schema registry client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("schema registry refused subject {subject}: {message}")]
    Refused { subject: String, message: String },
}

#[derive(serde::Deserialize)]
struct Registered {
    id: u32,
}

/// How long a failed fetch keeps the registry marked down (records meanwhile: unavailable).
const DOWN_FOR: Duration = Duration::from_secs(1);
/// How long an id the registry does not know stays unknown before it is asked again.
const UNKNOWN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Registry {
    base: String,
    client: reqwest::Client,
    auth: Auth,
    runtime: tokio::runtime::Handle,
    cache: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    not_avro: RwLock<HashMap<u32, String>>,
    unknown: Mutex<HashMap<u32, Instant>>,
    down_until: Mutex<Option<(Instant, String)>>,
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic(String, Option<String>),
    Bearer(String),
}

#[derive(serde::Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

/// One fetch's outcome; only `Unavailable` is retried.
enum Fetch {
    Found(String),
    Unknown,
    /// A Protobuf or JSON Schema id: its records are not Avro (ids are immutable: kept).
    NotAvro(String),
    Unavailable(String),
}

impl Registry {
    pub fn new(
        url: &str,
        endpoint: &RegistryEndpoint,
        runtime: tokio::runtime::Handle,
    ) -> Result<Registry, RegistryError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(RegistryError::Config(format!(
                "url `{base}` must start with http:// or https://"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2));
        if let Some(path) = &endpoint.ca_file {
            let ca = |message: String| RegistryError::Ca {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let auth = match (&endpoint.token, &endpoint.username) {
            (Some(token), _) => Auth::Bearer(token.clone()),
            (None, Some(user)) => Auth::Basic(user.clone(), endpoint.password.clone()),
            (None, None) => Auth::None,
        };
        Ok(Registry {
            base,
            client: builder.build()?,
            auth,
            runtime,
            cache: RwLock::new(HashMap::new()),
            not_avro: RwLock::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            down_until: Mutex::new(None),
        })
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => request,
            Auth::Basic(user, password) => request.basic_auth(user, password.as_ref()),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// Register `schema` (Avro) under `subject` (`POST /subjects/{subject}/versions`), as a
    /// producer's serializer does; the registry's id for it (the same id for the same schema).
    /// Used by `paritygate generate` for its Kafka Connect services.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{subject}/versions", self.base);
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" });
        let response = self
            .authorized(self.client.post(url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(RegistryError::Refused {
                subject: subject.to_owned(),
                message: format!("HTTP {status}: {text}"),
            });
        }
        Ok(response.json::<Registered>().await?.id)
    }

    async fn fetch_once(&self, id: u32) -> Fetch {
        let request = self.authorized(self.client.get(format!("{}/schemas/ids/{id}", self.base)));
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Fetch::Unavailable(e.to_string()),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Fetch::Unknown;
        }
        if !status.is_success() {
            return Fetch::Unavailable(format!("HTTP {status}"));
        }
        match response.json::<SchemaAnswer>().await {
            Ok(answer) => match answer.schema_type.as_deref() {
                None | Some("AVRO") => Fetch::Found(answer.schema),
                Some(other) => Fetch::NotAvro(format!("schema type {other} is not Avro")),
            },
            Err(e) => Fetch::Unavailable(format!("not a schema answer: {e}")),
        }
    }

    fn fetch(&self, id: u32) -> Fetch {
        let attempt = || async {
            match self.fetch_once(id).await {
                Fetch::Unavailable(why) => Err(why),
                other => Ok(other),
            }
        };
        let retried = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_millis(500))
                    .with_max_times(2),
            )
            .sleep(tokio::time::sleep);
        match self.runtime.block_on(retried) {
            Ok(found) => found,
            Err(why) => Fetch::Unavailable(why),
        }
    }
}

impl SchemaLookup for Registry {
    fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, AvroError> {
        let lock = |e: &dyn std::fmt::Display| AvroError::RegistryUnavailable(e.to_string());
        if let Some(s) = self.cache.read().map_err(|e| lock(&e))?.get(&id) {
            return Ok(s.clone());
        }
        if let Some(why) = self.not_avro.read().map_err(|e| lock(&e))?.get(&id) {
            return Err(AvroError::Undecodable(format!("schema id {id}: {why}")));
        }
        if let Some(at) = self.unknown.lock().map_err(|e| lock(&e))?.get(&id) {
            if at.elapsed() < UNKNOWN_FOR {
                return Err(AvroError::UnknownSchema(id));
            }
        }
        if let Some((until, why)) = self.down_until.lock().map_err(|e| lock(&e))?.clone() {
            if Instant::now() < until {
                return Err(AvroError::RegistryUnavailable(why));
            }
        }
        match self.fetch(id) {
            Fetch::Found(text) => {
                let schema = Arc::new(WriterSchema::parse(&text)?);
                *self.down_until.lock().map_err(|e| lock(&e))? = None;
                self.cache
                    .write()
                    .map_err(|e| lock(&e))?
                    .insert(id, schema.clone());
                tracing::info!(id, registry = %self.base, "schema fetched");
                Ok(schema)
            }
            Fetch::Unknown => {
                self.unknown
                    .lock()
                    .map_err(|e| lock(&e))?
                    .insert(id, Instant::now());
                Err(AvroError::UnknownSchema(id))
            }
            Fetch::NotAvro(why) => {
                self.not_avro
                    .write()
                    .map_err(|e| lock(&e))?
                    .insert(id, why.clone());
                Err(AvroError::Undecodable(format!("schema id {id}: {why}")))
            }
            Fetch::Unavailable(why) => {
                tracing::warn!(id, registry = %self.base, error = %why, "schema registry unavailable");
                *self.down_until.lock().map_err(|e| lock(&e))? =
                    Some((Instant::now() + DOWN_FOR, why.clone()));
                Err(AvroError::RegistryUnavailable(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A registry answering id 5 with a Protobuf schema and id 6 with an Avro one, counting asks.
    fn serve(runtime: &tokio::runtime::Runtime, asks: Arc<AtomicUsize>) -> std::net::SocketAddr {
        use axum::extract::Path;
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/schemas/ids/{id}",
                axum::routing::get(move |Path(id): Path<u32>| {
                    asks.fetch_add(1, Ordering::Relaxed);
                    async move {
                        match id {
                            5 => axum::Json(serde_json::json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"})),
                            _ => axum::Json(serde_json::json!({"schema": "\"long\""})),
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        })
    }

    #[test]
    fn a_schema_that_is_not_avro_is_undecodable_asked_once_and_leaves_the_registry_up() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let asks = Arc::new(AtomicUsize::new(0));
        let addr = serve(&runtime, asks.clone());
        let registry = Registry::new(
            &format!("http://{addr}"),
            &RegistryEndpoint::default(),
            runtime.handle().clone(),
        )
        .unwrap();
        for _ in 0..3 {
            let e = registry.schema(5).unwrap_err();
            assert!(
                matches!(&e, AvroError::Undecodable(m) if m.contains("PROTOBUF")),
                "{e}"
            );
            assert_eq!(e.reason(), "undecodable");
        }
        assert_eq!(
            asks.load(Ordering::Relaxed),
            1,
            "a schema id is immutable: asked once"
        );
        // Not marked down: the next id is fetched at once.
        assert!(registry.schema(6).is_ok());
        assert!(registry.schema(6).is_ok());
        assert_eq!(asks.load(Ordering::Relaxed), 2, "cached");
    }
}
