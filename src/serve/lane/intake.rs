//! One consumed record into its lane's batch: extraction with the pure core (the same `extract`
//! as `diff`), deduplication against the identities already counted, and the tallies and samples
//! of whatever it became (event, duplicate, rejected, skipped, too large). No IO (the clock only
//! as the last fallback for an event time): the worker (`crate::serve::lane::worker`) owns where partitions
//! stand and when batches are stored.

use crate::config::Config;
use crate::core::avro::Schemas;
use crate::core::event::{extract, key_hash, Keep, Outcome, Shape, Skip};
use crate::core::identity::event_identity;
use crate::core::payload::{prepare_for, Prepared};
use crate::core::range::BEFORE_START;
use crate::core::record::RecordView;
use crate::model::{Side, TallyKind};
use crate::serve::lane::dedupe::{Admission, Seen};
use crate::store::batch::{Batch, BatchEvent, Unverified, BEYOND_HORIZON};

/// Extract one record (arriving `arrival`-th on its partition, see `crate::serve::lane::cursor`) and add what
/// it became to `batch`; `seen` holds the identities already counted. Returns its event time when
/// it became an event (new or a duplicate).
pub fn admit(
    (config, schemas): (&Config, &Schemas),
    (batch, seen): (&mut Batch, &mut Seen),
    (service, side): (usize, Side),
    record: &RecordView<'_>,
    arrival: i64,
) -> Option<i64> {
    let payload_len = record.payload.as_ref().map_or(0, |p| p.len());
    if payload_len > config.kafka.max_message_bytes {
        batch.without_event().note(
            service,
            side,
            TallyKind::Unparseable,
            "too_large",
            Some(record),
        );
        return None;
    }
    let plan = &config.plan(service);
    let side_plan = plan.side(side);
    let decoded;
    let record = if side_plan.payload.is_avro()
        || side_plan.key_format.is_avro()
        || side_plan.debezium
    {
        match prepare_for(side_plan, record, schemas.of(side)) {
            Ok(Prepared::Record(view, remarks)) => {
                if remarks.unknown_logical_type {
                    batch.note(
                        service,
                        side,
                        TallyKind::Flagged,
                        "avro_unknown_logical_type",
                        Some(record),
                    );
                }
                decoded = view;
                &decoded
            }
            Ok(Prepared::Tombstone) => {
                batch.without_event().note(
                    service,
                    side,
                    TallyKind::Skipped,
                    Skip::DebeziumTombstone.as_str(),
                    None,
                );
                return None;
            }
            // Counted and sampled by reason; the offset advances: one record never blocks.
            Err(failure) => {
                tracing::debug!(service, side = side.as_str(), error = %failure, "record not decoded");
                batch.without_event().note(
                    service,
                    side,
                    TallyKind::Unparseable,
                    failure.error.reason(),
                    Some(record),
                );
                return None;
            }
        }
    } else {
        record
    };
    match extract(side_plan, record, Keep::Canonical) {
        Outcome::Event(mut event) => {
            if event.shape == Shape::Bytes {
                // Not JSON: still compared as bytes (as `diff` does), but flagged and sampled.
                batch.note(service, side, TallyKind::Flagged, "not_json", Some(record));
            }
            let event_ms = event
                .event_time_ms
                .or(record.timestamp_ms)
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            // The epoch's start, or `compare_from` in the first epoch.
            let from_ms = batch.scope(service).starts_at_ms.or(plan.compared.from_ms);
            if from_ms.is_some_and(|from| event_ms < from) {
                // Before the start: counted, compared nowhere (not in keys, windows, the
                // watermark or the observed span).
                batch
                    .without_event()
                    .note(service, side, TallyKind::Skipped, BEFORE_START, None);
                return None;
            }
            let window_ms = config.services[service].window_ms().max(1);
            let key_hash = key_hash(&event.key);
            let position = if plan.has_position {
                event.position.unwrap_or(0)
            } else {
                0
            };
            let identity = event_identity(key_hash, position, event.operation as u8, event.digest);
            // Without positions, arrival order decides a key's final state (as in `diff`):
            // the operation must not, or a delete would outrank a later re-insert.
            let sequence = if plan.has_position {
                position
            } else {
                u128::try_from(arrival).unwrap_or(0)
            };
            let e = BatchEvent {
                service,
                side,
                key_hash,
                position,
                sequence,
                operation: event.operation,
                digest: event.digest,
                identity,
                arrival,
                event_ms,
                window_start_ms: event_ms.div_euclid(window_ms) * window_ms,
                partition: record.partition,
                offset: record.offset,
                record_ms: record.timestamp_ms,
            };
            let at = (record.topic.as_ref(), record.partition);
            match seen.insert((service, side), at, identity, event_ms) {
                Admission::Duplicate => {
                    batch.add_duplicate(&e);
                    return Some(event_ms);
                }
                // With positions, the key's last counted position tells a replay from a new
                // event: the checkpoint decides (`store::batch::Unverified`).
                Admission::Unverifiable if plan.has_position => {
                    batch.defer_unverified(Unverified {
                        event: e,
                        key: std::mem::take(&mut event.key),
                        canonical: event.canonical.take(),
                        topic: record.topic.as_ref().to_owned(),
                    });
                    return Some(event_ms);
                }
                // Counted as new, and said so: a replay from beyond the horizon looks the same.
                Admission::Unverifiable => {
                    batch.note(service, side, TallyKind::Flagged, BEYOND_HORIZON, None)
                }
                Admission::New => {}
            }
            batch.add_event(e, &event.key, event.canonical.take());
            batch.remember(&record.topic, record.partition, identity);
            Some(event_ms)
        }
        Outcome::Rejected(reason) => {
            batch.without_event().note(
                service,
                side,
                TallyKind::Rejected,
                reason.as_str(),
                Some(record),
            );
            None
        }
        Outcome::Skipped(skip) => {
            batch
                .without_event()
                .note(service, side, TallyKind::Skipped, skip.as_str(), None);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::batch::TallyId;
    use std::borrow::Cow;
    use std::path::Path;

    fn config(max_message_bytes: usize) -> Config {
        let toml = format!(
            r#"
[kafka]
max_message_bytes = {max_message_bytes}

[[services]]
name = "stock"
baseline_topics = ["stock"]
candidate_topics = ["bento.stock"]
key = {{ from = "message_key" }}
"#
        );
        Config::parse(Path::new("stock.toml"), &toml).unwrap()
    }

    fn record(payload: &[u8], offset: i64) -> RecordView<'_> {
        RecordView {
            topic: Cow::Borrowed("stock"),
            partition: 0,
            offset,
            timestamp_ms: Some(1_000),
            headers: Vec::new(),
            key: Some(Cow::Borrowed(b"1")),
            payload: Some(Cow::Borrowed(payload)),
        }
    }

    fn tally(batch: &Batch, kind: TallyKind, name: &'static str) -> i64 {
        let id = TallyId {
            service: 0,
            side: Side::Baseline,
            kind,
            name,
        };
        batch.tallies.get(&id).copied().unwrap_or(0)
    }

    #[test]
    fn a_repeated_event_is_a_duplicate_and_a_new_one_an_event() {
        let config = config(1024);
        let (mut batch, mut seen) = (Batch::default(), Seen::default());
        for (offset, payload) in [
            (0, &br#"{"q":1}"#[..]),
            (1, br#"{"q":1}"#),
            (2, br#"{"q":2}"#),
        ] {
            let at = admit(
                (&config, &Schemas::default()),
                (&mut batch, &mut seen),
                (0, Side::Baseline),
                &record(payload, offset),
                offset,
            );
            assert_eq!(at, Some(1_000), "event time from the record timestamp");
        }
        assert_eq!((batch.records, batch.events.len()), (3, 2));
        assert_eq!(tally(&batch, TallyKind::Operation, "change"), 3);
    }

    #[test]
    fn too_large_is_sampled_and_not_json_is_compared_as_bytes_but_flagged() {
        let config = config(8);
        let (mut batch, mut seen) = (Batch::default(), Seen::default());
        let big = admit(
            (&config, &Schemas::default()),
            (&mut batch, &mut seen),
            (0, Side::Baseline),
            &record(br#"{"q":"123456789"}"#, 0),
            0,
        );
        assert_eq!(big, None);
        assert_eq!(tally(&batch, TallyKind::Unparseable, "too_large"), 1);
        let bytes = admit(
            (&config, &Schemas::default()),
            (&mut batch, &mut seen),
            (0, Side::Baseline),
            &record(b"not json", 1),
            1,
        );
        assert!(bytes.is_some());
        assert_eq!(tally(&batch, TallyKind::Flagged, "not_json"), 1);
        assert_eq!(batch.events.len(), 1);
        let reasons: Vec<_> = batch.samples.iter().map(|s| (s.reason, s.offset)).collect();
        assert_eq!(reasons, [("too_large", 0), ("not_json", 1)]);
    }
}

#[cfg(test)]
#[path = "any_bytes_tests.rs"]
mod any_bytes;
