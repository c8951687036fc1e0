//! Produce generated batches to a broker: each record to its service's first topic of its side, on
//! the partition the model chose (so per-key order holds), with its headers and record timestamp.
//! Each side goes to its own cluster where the config gives it one (`[kafka.candidate]`), with
//! that cluster's librdkafka properties (TLS, SASL) as `serve` uses them.

use super::Batch;
use crate::config::cluster::Cluster;
use crate::config::Config;
use crate::generate::capture::{confluent_frame, HeaderValue, PARTITIONS};
use crate::kafka_tools::Deliveries;
use crate::model::Side;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;
use std::time::Duration;

/// The broker refused a topic or a record.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("no Kafka broker answers at {brokers} within 10 s ({error}): start one, or pass --brokers / PARITYGATE_KAFKA_BROKERS")]
    Unreachable { brokers: String, error: KafkaError },
    #[error("kafka client: {0}")]
    Client(KafkaError),
    #[error("create topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("{failed} records were not delivered (first error: {first})")]
    Undelivered { failed: u64, first: String },
    #[error("service {service}: its baseline writes Avro (Confluent wire format), whose schemas must be registered: set [schema_registry] url (or [schema_registry.baseline])")]
    NoRegistry { service: String },
    #[error("{topic}: no registered id for schema {schema} (register_schemas did not cover this service)")]
    Unregistered { topic: String, schema: usize },
    #[error("service {service}: {error}")]
    Registry {
        service: String,
        error: crate::schemas::RegistryError,
    },
}

/// Register the value schemas of every Kafka Connect service (`ModelKind::Shipments`) with the
/// baseline's registry, under `{topic}-value` (the serializers' default subject); per service
/// index, the ids its records are framed with (empty for JSON services).
pub async fn register_schemas(config: &Config) -> Result<Vec<Vec<u32>>, ProduceError> {
    let mut ids = Vec::with_capacity(config.services.len());
    for service in &config.services {
        if super::ModelKind::for_service(service) != super::ModelKind::Shipments {
            ids.push(Vec::new());
            continue;
        }
        let fail = |error| ProduceError::Registry {
            service: service.name.clone(),
            error,
        };
        let endpoint = config.schema_registry.of(Side::Baseline);
        let url = endpoint
            .url
            .clone()
            .ok_or_else(|| ProduceError::NoRegistry {
                service: service.name.clone(),
            })?;
        let registry =
            crate::schemas::Registry::new(&url, &endpoint, tokio::runtime::Handle::current())
                .map_err(fail)?;
        let topic = service.baseline_topics.first().cloned().unwrap_or_default();
        let mut service_ids = Vec::new();
        for schema in crate::generate::shipments::schemas() {
            let id = registry
                .register(&format!("{topic}-value"), &schema)
                .await
                .map_err(fail)?;
            service_ids.push(id);
        }
        ids.push(service_ids);
    }
    Ok(ids)
}

// By hand, not `#[from]`: the message already holds the cause, a source would print it twice.
impl From<KafkaError> for ProduceError {
    fn from(e: KafkaError) -> Self {
        Self::Client(e)
    }
}

fn client(cluster: &Cluster) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cluster.brokers);
    for (k, v) in &cluster.properties {
        c.set(k, v);
    }
    c
}

/// Create every service's first baseline and candidate topic with the models' partition count,
/// each on its side's cluster; topics that exist already are left as they are.
pub async fn create_topics(config: &Config) -> Result<(), ProduceError> {
    for cluster in config.clusters() {
        create_cluster_topics(&cluster, config).await?;
    }
    Ok(())
}

async fn create_cluster_topics(cluster: &Cluster, config: &Config) -> Result<(), ProduceError> {
    let brokers = &cluster.brokers;
    let admin: AdminClient<DefaultClientContext> = client(cluster).create()?;
    // Fail fast and plainly when nothing listens, rather than after the admin request's timeout.
    admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|error| ProduceError::Unreachable {
            brokers: brokers.to_owned(),
            error,
        })?;
    let mut topics: Vec<&String> = config
        .services
        .iter()
        .flat_map(|s| {
            cluster
                .sides
                .iter()
                .filter_map(|side| s.topics(*side).first())
        })
        .collect();
    topics.sort();
    topics.dedup();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(ProduceError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// A batching producer that counts failed deliveries.
pub struct LiveProducer {
    /// Per side (`Side::index`): its cluster's producer (one, shared, when the sides share one).
    producers: [Arc<ThreadedProducer<Deliveries>>; 2],
    /// (baseline, candidate) topic per service index.
    topics: Vec<(String, String)>,
    /// Registered schema ids per service index (`register_schemas`), for Avro records.
    schema_ids: Vec<Vec<u32>>,
}

impl std::fmt::Debug for LiveProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveProducer")
            .field("topics", &self.topics)
            .finish()
    }
}

impl LiveProducer {
    /// `schema_ids`: what `register_schemas` returned (Avro records are framed with them).
    pub fn new(config: &Config, schema_ids: Vec<Vec<u32>>) -> Result<Self, ProduceError> {
        let mut of_side: [Option<Arc<ThreadedProducer<Deliveries>>>; 2] = [None, None];
        for cluster in config.clusters() {
            let producer: ThreadedProducer<Deliveries> = client(&cluster)
                .set("linger.ms", "20")
                // One request in flight keeps each partition's order without idempotence.
                .set("max.in.flight.requests.per.connection", "1")
                .set("enable.idempotence", "false")
                .set("message.timeout.ms", "60000")
                .create_with_context(Deliveries::default())?;
            let producer = Arc::new(producer);
            for side in &cluster.sides {
                of_side[side.index()] = Some(producer.clone());
            }
        }
        let [Some(baseline), Some(candidate)] = of_side else {
            unreachable!("`KafkaConfig::clusters` holds both sides")
        };
        let topics = config
            .services
            .iter()
            .map(|s| {
                (
                    s.baseline_topics.first().cloned().unwrap_or_default(),
                    s.candidate_topics.first().cloned().unwrap_or_default(),
                )
            })
            .collect();
        Ok(Self {
            producers: [baseline, candidate],
            topics,
            schema_ids,
        })
    }

    /// Queue a batch's records (waits while the local queue is full).
    pub fn send(&self, batch: &Batch) -> Result<(), ProduceError> {
        let (baseline, candidate) = &self.topics[batch.service];
        for (side, r) in &batch.records {
            let topic = match side {
                Side::Baseline => baseline,
                Side::Candidate => candidate,
            };
            let producer = &self.producers[side.index()];
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (name, value) in &r.headers {
                let bytes: &[u8] = match value {
                    HeaderValue::Text(s) => s.as_bytes(),
                    HeaderValue::Binary(b) => b,
                };
                headers = headers.insert(Header {
                    key: name,
                    value: Some(bytes),
                });
            }
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
                .partition(r.partition)
                .timestamp(r.timestamp_ms)
                .headers(headers);
            if let Some(k) = r.key.as_deref() {
                record = record.key(k.as_bytes());
            }
            let framed = match &r.avro {
                Some(a) => {
                    let id = self
                        .schema_ids
                        .get(batch.service)
                        .and_then(|ids| ids.get(a.schema))
                        .ok_or_else(|| ProduceError::Unregistered {
                            topic: topic.clone(),
                            schema: a.schema,
                        })?;
                    Some(confluent_frame(*id, &a.datum))
                }
                None => None,
            };
            if let Some(bytes) = &framed {
                record = record.payload(bytes.as_slice());
            } else if let Some(p) = r.payload.as_deref() {
                record = record.payload(p.as_bytes());
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, back))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Wait for every queued record to be acknowledged; fail if any was not.
    pub fn flush(&self) -> Result<(), ProduceError> {
        for producer in &self.producers {
            producer.flush(Duration::from_secs(60))?;
            if let Some((failed, first)) = producer.context().failures() {
                return Err(ProduceError::Undelivered { failed, first });
            }
        }
        Ok(())
    }
}
