//! A consumed record copied out of librdkafka so a lane thread may own it: key, payload and
//! headers in one buffer. rdkafka's own `detach` costs a dozen allocations per record (the topic
//! name, key, payload, and librdkafka's header list with one allocation per header; Bento adds
//! eight headers) and the lane then reads the headers back through librdkafka: together about a
//! sixth of the service's CPU in `bench serve`. Here it is two allocations and plain slices.
//!
//! Also what the consumer thread hands a lane worker: records with their route, a revocation, or
//! the stop.

use crate::core::record::RecordView;
use crate::model::{Side, TopicPartition};
use rdkafka::message::{Headers, Message};
use std::borrow::Cow;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// Where one header's name and value end in [`OwnedRecord`]'s buffer (each starts where the
/// previous part ended).
#[derive(Debug, Clone, Copy)]
struct HeaderEnds {
    name: usize,
    /// `None`: a header without a value (distinct from an empty value).
    value: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct OwnedRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    /// The key, the payload, then each header's name and value.
    bytes: Vec<u8>,
    key_end: usize,
    /// `None`: a tombstone (no payload at all).
    payload_end: Option<usize>,
    headers: Vec<HeaderEnds>,
}

impl OwnedRecord {
    /// Copy what the comparison reads out of a consumed message; `topic` is the routing table's
    /// shared name for `message.topic()`.
    pub fn copy_from<M: Message>(message: &M, topic: Arc<str>) -> Self {
        let key = message.key().unwrap_or_default();
        let payload = message.payload();
        let headers = message.headers();
        let header_bytes: usize = headers.as_ref().map_or(0, |h| {
            h.iter()
                .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                .sum()
        });
        let mut bytes =
            Vec::with_capacity(key.len() + payload.map_or(0, <[u8]>::len) + header_bytes);
        bytes.extend_from_slice(key);
        let key_end = bytes.len();
        let payload_end = payload.map(|p| {
            bytes.extend_from_slice(p);
            bytes.len()
        });
        let mut ends = Vec::new();
        if let Some(h) = headers {
            ends.reserve_exact(h.count());
            for header in h.iter() {
                bytes.extend_from_slice(header.key.as_bytes());
                let name = bytes.len();
                let value = header.value.map(|v| {
                    bytes.extend_from_slice(v);
                    bytes.len()
                });
                ends.push(HeaderEnds { name, value });
            }
        }
        Self {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            bytes,
            key_end,
            payload_end,
            headers: ends,
        }
    }

    /// 128 bits of BLAKE3 over the record's key, payload, headers and timestamp: what tells the
    /// record stored as a partition's last from another at the same offset (`crate::serve::ingest::verify`).
    pub fn fingerprint(&self) -> u128 {
        let mut h = blake3::Hasher::new();
        h.update(b"paritygate-record/1");
        h.update(&self.timestamp_ms.unwrap_or(i64::MIN).to_be_bytes());
        h.update(&(self.key_end as u64).to_be_bytes());
        h.update(
            &self
                .payload_end
                .map_or(u64::MAX, |e| e as u64)
                .to_be_bytes(),
        );
        for end in &self.headers {
            h.update(&(end.name as u64).to_be_bytes());
            h.update(&end.value.map_or(u64::MAX, |e| e as u64).to_be_bytes());
        }
        h.update(&self.bytes);
        crate::core::event::truncate(h.finalize())
    }

    /// The comparison core's view, borrowing from this record (as `kafka_tools::record_view` does
    /// from a librdkafka message): an empty key counts as none, a header name that is not UTF-8
    /// (librdkafka's API cannot produce one) as empty.
    pub fn view(&self) -> RecordView<'_> {
        let payload_start = self.key_end;
        let mut start = self.payload_end.unwrap_or(payload_start);
        let headers = self
            .headers
            .iter()
            .map(|h| {
                let name = std::str::from_utf8(&self.bytes[start..h.name]).unwrap_or_default();
                start = h.name;
                let value = h.value.map(|end| {
                    let v = &self.bytes[start..end];
                    start = end;
                    Cow::Borrowed(v)
                });
                (Cow::Borrowed(name), value)
            })
            .collect();
        RecordView {
            topic: Cow::Borrowed(&self.topic),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            headers,
            key: Some(&self.bytes[..self.key_end])
                .filter(|k| !k.is_empty())
                .map(Cow::Borrowed),
            payload: self
                .payload_end
                .map(|end| Cow::Borrowed(&self.bytes[payload_start..end])),
        }
    }
}

/// A consumed record and where it goes.
#[derive(Debug)]
pub struct Routed {
    pub record: OwnedRecord,
    pub service: usize,
    pub side: Side,
    /// From a dead-letter topic: counted for `error_parity`, never compared.
    pub is_error: bool,
}

/// What a worker receives from the consumer thread.
#[derive(Debug)]
pub enum Input {
    Records(Vec<Routed>),
    /// The group took these partitions away: checkpoint everything, confirm once committed, then
    /// forget their offsets and loaded identities (see `crate::serve::ingest::rebalance`).
    Revoke {
        partitions: Vec<TopicPartition>,
        done: SyncSender<()>,
    },
    /// Shutting down: checkpoint what is left and stop (the consumer, whose context holds this
    /// inbox's sender, outlives the worker, so a closed channel cannot be the signal).
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_tools::record_view;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    fn message(
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> OwnedMessage {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: *value,
            });
        }
        OwnedMessage::new(
            payload.map(<[u8]>::to_vec),
            key.map(<[u8]>::to_vec),
            "dev.acme.public.orders".to_owned(),
            Timestamp::CreateTime(1_787_220_001_317),
            3,
            55_678,
            (!headers.is_empty()).then_some(owned),
        )
    }

    /// The copy must read exactly as the message it came from.
    fn assert_same_view(m: &OwnedMessage) {
        let copy = OwnedRecord::copy_from(m, Arc::from(m.topic()));
        assert_eq!(copy.view(), record_view(m));
    }

    #[test]
    fn a_copy_reads_as_its_message() {
        assert_same_view(&message(
            Some(b"1007"),
            Some(br#"{"id":1007}"#),
            &[
                ("commit_ts_ms", Some(b"1787220002240")),
                ("operation", Some(b"insert")),
                ("empty", Some(b"")),
                ("none", None),
                ("operation", Some(b"again")),
            ],
        ));
    }

    #[test]
    fn tombstones_empty_keys_and_missing_headers_survive_the_copy() {
        assert_same_view(&message(Some(b"1007"), None, &[]));
        assert_same_view(&message(Some(b""), Some(b""), &[]));
        assert_same_view(&message(None, Some(b"{}"), &[("k", None)]));
        assert_same_view(&message(None, None, &[]));
    }
}
