//! `orders`: a Postgres table captured by RPCN `postgres_cdc` (baseline, `kafka_franz`) and by a
//! Bento substitute writing through the sarama `kafka` output (candidate).
//!
//! Baseline: Go JSON, numeric padded to scale, RFC3339Nano `Z` timestamps, nulls written, deletes
//! with only the key filled, headers `operation`/`table`/`lsn` (`%08X/%08X`)/`commit_ts_ms`, and
//! `begin`/`commit` markers with a null body. Candidate: declaration order with spaces, decimals
//! unpadded, `+02:00` session-time timestamps with six digits, nulls omitted, `__sync_timestamp`,
//! an unpadded `lsn`, and leaked `kafka_*` consumer metadata.

use super::capture::{baseline_partition, candidate_partition, HeaderValue, Record};
use super::json::{decimal_unpadded, row_body, timestamp, Style, TsFormat, J, RFC3339_NANO};
use super::model::{
    drift_at, history, schedule, Block, Clock, Drift, KeyOutcome, Op, ServiceModel, Shape,
};
use super::orders_row::Row;
use super::rng::Rng;

pub const BASELINE_TOPIC: &str = "dev.acme.public.orders";
pub const CANDIDATE_TOPIC: &str = "bento.dev.acme.public.orders";
const KEYS_PER_BLOCK: usize = 16;

/// Drift planted by key ordinal; spread over the first blocks so small fixtures carry all of it.
const DRIFT: &[(u64, Drift)] = &[
    (2, Drift::MissingInCandidate),
    (5, Drift::ExtraInCandidate),
    (9, Drift::DroppedUpdate),
    (13, Drift::ExtraEvent),
    (17, Drift::OperationChanged),
    (21, Drift::DecimalDiffers),
    (25, Drift::JsonbBigInteger),
    (29, Drift::TimestampInstant),
    (33, Drift::DeleteDropped),
];

/// The Bento substitute's session time zone (Europe/Paris in summer): a benign offset.
const CANDIDATE_TS: TsFormat = TsFormat {
    offset_min: 120,
    digits: 6,
    trim: false,
    zulu: false,
    naive: false,
};
fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Insert => "insert",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

fn text(s: impl Into<String>) -> HeaderValue {
    HeaderValue::Text(s.into())
}

/// The `orders` generator: ids, WAL position and clock carry over from block to block.
#[derive(Debug)]
pub struct Orders {
    pub service: usize,
    next_id: i64,
    ordinal: u64,
    lsn: u64,
    clock: Clock,
}

impl Orders {
    pub fn new(service: usize) -> Self {
        Self {
            service,
            next_id: 1001,
            ordinal: 0,
            lsn: 0x1_6B37_4D48,
            clock: Clock::start(),
        }
    }

    fn marker(&self, rng: &mut Rng, op: &str, lsn: u64, commit_ns: i64) -> Record {
        let mut headers = vec![
            ("operation", text(op)),
            (
                "lsn",
                text(format!("{:08X}/{:08X}", lsn >> 32, lsn & 0xFFFF_FFFF)),
            ),
            ("commit_ts_ms", text((commit_ns / 1_000_000).to_string())),
        ];
        rng.shuffle(&mut headers);
        // No key: the franz partitioner picks a partition.
        let partition = rng.index(6) as i32;
        Record {
            topic: BASELINE_TOPIC,
            partition,
            timestamp_ms: commit_ns / 1_000_000 + 2,
            headers,
            key: None,
            payload: None,
            service: None,
            avro: None,
        }
    }
}

impl ServiceModel for Orders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn next_block(&mut self, rng: &mut Rng, drift_on: bool) -> Block {
        let mut block = Block::default();
        // Per key: its id, its drift, and its current row once inserted.
        let mut rows: Vec<(i64, Option<Drift>, Option<Row>)> = Vec::with_capacity(KEYS_PER_BLOCK);
        let mut histories = Vec::with_capacity(KEYS_PER_BLOCK);
        for _ in 0..KEYS_PER_BLOCK {
            let drift = drift_at(DRIFT, self.ordinal).filter(|_| drift_on);
            self.ordinal += 1;
            histories.push(history(rng, drift.map_or(Shape::default(), Drift::shape)));
            let id = self.next_id;
            self.next_id += 1 + rng.range_i64(0, 3) * i64::from(rng.chance(10));
            let key = id.to_string();
            let partition_differs = baseline_partition(&key) != candidate_partition(&key);
            block.keys.push(KeyOutcome {
                key,
                drift,
                partition_differs,
            });
            rows.push((id, drift, None));
        }
        let slots = schedule(rng, &histories, 5, false, &mut self.clock);
        for slot in slots {
            let (id, drift, row) = &mut rows[slot.key];
            let (id, drift) = (*id, *drift);
            let op = histories[slot.key][slot.step];
            self.lsn += rng.range(7, 60) * 8;
            let lsn = self.lsn;
            if slot.first_in_txn {
                block
                    .baseline
                    .push(self.marker(rng, "begin", lsn, slot.commit_ns));
            }
            let mut current = match (op, row.as_ref()) {
                (Op::Update, Some(prev)) => prev.updated(rng, slot.commit_ns),
                (Op::Delete, Some(prev)) => prev.clone(),
                _ => Row::new(
                    rng,
                    id,
                    drift == Some(Drift::JsonbBigInteger),
                    slot.commit_ns,
                ),
            };
            let pivot = slot.step == 1 && op == Op::Update;
            if pivot && drift == Some(Drift::DecimalDiffers) {
                current.total_cents = 105_001;
            }
            *row = Some(current.clone());
            let key = id.to_string();
            let commit_ms = slot.commit_ns / 1_000_000;
            let deleted = op == Op::Delete;

            let mut headers = vec![
                ("operation", text(op_name(op))),
                ("table", text("orders")),
                (
                    "lsn",
                    text(format!("{:08X}/{:08X}", lsn >> 32, lsn & 0xFFFF_FFFF)),
                ),
                ("commit_ts_ms", text(commit_ms.to_string())),
            ];
            rng.shuffle(&mut headers);
            let body = row_body(
                &current.columns(Style::Go, |t| timestamp(t, RFC3339_NANO), deleted),
                Style::Go,
                false,
            );
            if drift != Some(Drift::ExtraInCandidate) {
                block.baseline.push(Record {
                    topic: BASELINE_TOPIC,
                    partition: baseline_partition(&key),
                    timestamp_ms: commit_ms + rng.range_i64(3, 60),
                    headers,
                    key: Some(key.clone()),
                    payload: Some(body),
                    service: Some(self.service),
                    avro: None,
                });
            }

            let emit =
                |rng: &mut Rng, op_label: &str, lsn: u64, row: &Row, ts_shift_min: Option<i64>| {
                    let ts = |t: i64| match ts_shift_min {
                        // The wall clock of another zone labelled as UTC: a different instant.
                        Some(m) => timestamp(
                            t + m * 60_000_000_000,
                            TsFormat {
                                offset_min: 0,
                                ..CANDIDATE_TS
                            },
                        ),
                        None => timestamp(t, CANDIDATE_TS),
                    };
                    let mut cols = row.columns(Style::Bento, ts, deleted);
                    if pivot && drift == Some(Drift::DecimalDiffers) {
                        cols.iter_mut()
                            .filter(|c| c.0 == "total")
                            .for_each(|c| c.1 = J::Str(decimal_unpadded(row.total_cents - 1, 2)));
                    }
                    let produced_ms = commit_ms + rng.range_i64(150, 2_500);
                    cols.push((
                        "__sync_timestamp",
                        J::Str(timestamp(
                            produced_ms * 1_000_000,
                            TsFormat {
                                offset_min: 0,
                                digits: 3,
                                trim: false,
                                zulu: true,
                                naive: false,
                            },
                        )),
                    ));
                    let partition = candidate_partition(&key);
                    let mut headers = vec![
                        ("operation", text(op_label)),
                        ("table", text("orders")),
                        (
                            "lsn",
                            text(format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)),
                        ),
                        ("kafka_key", text(key.clone())),
                        ("kafka_topic", text("staging.acme.orders")),
                        ("kafka_partition", text(rng.index(12).to_string())),
                        (
                            "kafka_timestamp_unix_ms",
                            text((commit_ms + 40).to_string()),
                        ),
                    ];
                    rng.shuffle(&mut headers);
                    // The Bento substitute's mapping carries the source commit time as metadata,
                    // so windows can use one event time on both sides. Appended after the shuffle
                    // to keep the generator's random sequence (and so the fixtures) otherwise unchanged.
                    headers.push(("commit_ts_ms", text(commit_ms.to_string())));
                    Record {
                        topic: CANDIDATE_TOPIC,
                        partition,
                        timestamp_ms: produced_ms,
                        headers,
                        key: Some(key.clone()),
                        payload: Some(row_body(&cols, Style::Bento, true)),
                        service: Some(self.service),
                        avro: None,
                    }
                };
            let skip = match drift {
                Some(Drift::MissingInCandidate) => true,
                Some(Drift::DroppedUpdate) => slot.step == 2,
                Some(Drift::DeleteDropped) => deleted,
                _ => false,
            };
            if !skip {
                let label = if pivot && drift == Some(Drift::OperationChanged) {
                    "insert"
                } else {
                    op_name(op)
                };
                let shift = (pivot && drift == Some(Drift::TimestampInstant)).then_some(120);
                let record = emit(rng, label, lsn, &current, shift);
                block.candidate.push(record);
            }
            if pivot && drift == Some(Drift::ExtraEvent) {
                // A change the source never committed (e.g. a replayed bad mapping), between two real ones.
                let mut ghost = current.clone();
                ghost.note = Some("on hold: fraud check");
                let record = emit(rng, "update", lsn + 8, &ghost, None);
                block.candidate.push(record);
            }
            if slot.last_in_txn {
                block
                    .baseline
                    .push(self.marker(rng, "commit", self.lsn + 32, slot.commit_ns));
            }
        }
        block
    }
}
