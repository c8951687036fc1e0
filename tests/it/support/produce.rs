//! Producing to the test broker: owned [`Record`]s, in order, batched or one record per batch.

use super::broker::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

/// One record to produce (owned, so fixture traffic can be kept and split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// `None` is a tombstone.
    pub payload: Option<Vec<u8>>,
    pub timestamp_ms: Option<i64>,
}

/// A service keyed by the message key over `rpcn.{name}` and `bento.{name}`, with one-second
/// windows and grace (the mid-stream tests' shape), plus `extra` lines.
pub fn keyed_service(name: &str, extra: &str) -> String {
    format!(
        r#"
[[services]]
name = "{name}"
baseline_topics = ["rpcn.{name}"]
candidate_topics = ["bento.{name}"]
key = {{ from = "message_key" }}
window_seconds = 1
grace_seconds = 1
{extra}
"#
    )
}

impl Record {
    /// A keyed JSON record on partition 0 at event time `at` (`None`: a tombstone, a delete).
    pub fn json(topic: &str, key: &str, payload: Option<&serde_json::Value>, at: i64) -> Record {
        Record {
            topic: topic.to_owned(),
            partition: 0,
            key: Some(key.as_bytes().to_vec()),
            headers: Vec::new(),
            payload: payload.map(|p| p.to_string().into_bytes()),
            timestamp_ms: Some(at),
        }
    }
}

/// How the producer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Many records per batch (fast; tansu's high watermark then lags the real end).
    Fast,
    /// One record per batch (`linger.ms=0`, `batch.num.messages=1`): exact high watermarks.
    OnePerRecord,
}

impl Broker {
    /// Produce one record (one record per batch) and return its offset.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        payload: Option<&[u8]>,
    ) -> i64 {
        let record = Record {
            topic: topic.to_owned(),
            partition,
            key: key.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.map(<[u8]>::to_vec)))
                .collect(),
            payload: payload.map(<[u8]>::to_vec),
            timestamp_ms: None,
        };
        self.produce_all(std::slice::from_ref(&record), Batching::OnePerRecord)
            .await[0]
    }

    /// Produce `records` in order (order per partition is kept: one request in flight) and wait
    /// until all are acknowledged; returns their offsets.
    pub async fn produce_all(&self, records: &[Record], batching: Batching) -> Vec<i64> {
        let producer = match batching {
            Batching::Fast => self
                .fast
                .get_or_init(|| producer(self.client_config(), "5", "10000")),
            Batching::OnePerRecord => self
                .single
                .get_or_init(|| producer(self.client_config(), "0", "1")),
        };
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (name, value) in &r.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: value.as_ref(),
                });
            }
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic)
                .partition(r.partition)
                .headers(headers);
            if let Some(key) = &r.key {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &r.payload {
                record = record.payload(payload.as_slice());
            }
            if let Some(ts) = r.timestamp_ms {
                record = record.timestamp(ts);
            }
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => break pending.push(delivery),
                    Err((e, back)) => {
                        assert!(
                            e.rdkafka_error_code()
                                == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                            "produce to {}/{}: {e}",
                            r.topic,
                            r.partition
                        );
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        let mut offsets = Vec::with_capacity(pending.len());
        for delivery in pending {
            match delivery.await.expect("delivery future dropped") {
                Ok(d) => offsets.push(d.offset),
                Err((e, m)) => panic!("produce failed: {e} ({m:?})"),
            }
        }
        offsets
    }
}

fn producer(mut config: ClientConfig, linger_ms: &str, batch_messages: &str) -> FutureProducer {
    config
        .set("linger.ms", linger_ms)
        .set("batch.num.messages", batch_messages)
        .set("max.in.flight.requests.per.connection", "1")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}
