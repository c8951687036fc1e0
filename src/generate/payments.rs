//! `payments`: a SQL Server table captured by RPCN `microsoft_sql_server_cdc` (baseline) and by a
//! Bento `sql_raw` substitute polling the change table `cdc.dbo_payments_CT` (candidate).
//!
//! Baseline: headers `database_schema`, `table`, `operation` (`read` for the initial snapshot,
//! `insert`, `update_before` + `update_after` sharing one `lsn`, `delete`) and `lsn` as the 10 raw
//! bytes of `__$start_lsn`; body of user columns (decimal/money padded strings, `bit` boolean,
//! `datetime2` with 7 digits and no offset). Candidate: the change-table row, `__$…` columns
//! included (`__$operation` 1/2/3/4, `__$start_lsn` as `0x` + 20 hex digits), decimals unpadded,
//! `datetime2` as RFC 3339 `+00:00` with a trimmed fraction, and only leaked `kafka_*` headers.

use super::capture::{baseline_partition, candidate_partition, HeaderValue, Record};
use super::json::{
    decimal_padded, decimal_unpadded, row_body, timestamp, Style, TsFormat, DATETIME2, J,
};
use super::model::{
    drift_at, history, schedule, Block, Clock, Drift, KeyOutcome, Op, ServiceModel, Shape,
};
use super::rng::Rng;

pub const BASELINE_TOPIC: &str = "dev.acme.dbo.payments";
pub const CANDIDATE_TOPIC: &str = "bento.dev.acme.dbo.payments";
const KEYS_PER_BLOCK: usize = 16;
const DRIFT: &[(u64, Drift)] = &[
    (3, Drift::MissingInCandidate),
    (20, Drift::ExtraInCandidate),
    (27, Drift::AmountAltered),
];
const CANDIDATE_TS: TsFormat = TsFormat {
    offset_min: 0,
    digits: 7,
    trim: true,
    zulu: false,
    naive: false,
};
const REFERENCES: &[&str] = &[
    "INV-2026-0815 & INV-2026-0816",
    "PO <urgent>",
    "refund #2",
    "SEPA-MANDATE-77",
];

#[derive(Debug, Clone, PartialEq)]
struct Row {
    payment_id: i64,
    order_id: i64,
    amount_cents: i64,
    /// `money` has four decimal places.
    fee_units: i64,
    currency: &'static str,
    method: &'static str,
    captured: bool,
    created_ns: i64,
    reference: Option<&'static str>,
}

impl Row {
    fn new(rng: &mut Rng, payment_id: i64, commit_ns: i64) -> Self {
        let amount_cents = rng.range_i64(199, 150_000);
        Self {
            payment_id,
            order_id: rng.range_i64(1_001, 60_000),
            amount_cents,
            fee_units: amount_cents * 29 / 10 + 3_000,
            currency: rng.pick(&["EUR", "USD", "GBP"]),
            method: rng.pick(&["card", "sepa", "paypal"]),
            captured: false,
            // datetime2(7): 100 ns ticks.
            created_ns: commit_ns - commit_ns.rem_euclid(100) - rng.range_i64(1, 50_000_000) * 100,
            reference: rng.chance(40).then(|| rng.pick(REFERENCES)),
        }
    }

    fn updated(&self, rng: &mut Rng) -> Self {
        let mut next = self.clone();
        if !next.captured && rng.chance(70) {
            next.captured = true;
        } else if rng.chance(50) {
            // A partial refund.
            next.amount_cents = (next.amount_cents - rng.range_i64(1, 1_000)).max(0);
        } else {
            next.method = rng.pick(&["card", "sepa", "paypal"]);
            next.reference = Some(rng.pick(REFERENCES));
        }
        next
    }

    /// User columns in table order; `bit_as_string` is RPCN's snapshot spelling of `bit`.
    fn columns(&self, style: Style, bit_as_string: bool) -> Vec<(&'static str, J)> {
        let go = style == Style::Go;
        let dec = |units: i64, scale| {
            J::Str(if go {
                decimal_padded(units, scale)
            } else {
                decimal_unpadded(units, scale)
            })
        };
        let ts = if go {
            timestamp(self.created_ns, DATETIME2)
        } else {
            timestamp(self.created_ns, CANDIDATE_TS)
        };
        vec![
            ("payment_id", J::Num(self.payment_id.to_string())),
            ("order_id", J::Num(self.order_id.to_string())),
            ("amount", dec(self.amount_cents, 2)),
            ("fee", dec(self.fee_units, 4)),
            ("currency", J::Str(self.currency.into())),
            ("method", J::Str(self.method.into())),
            (
                "captured",
                if bit_as_string {
                    J::Str(self.captured.to_string())
                } else {
                    J::Bool(self.captured)
                },
            ),
            ("created_at", J::Str(ts)),
            (
                "reference",
                self.reference.map_or(J::Null, |r| J::Str(r.into())),
            ),
        ]
    }

    /// `__$update_mask`: one bit per column (ordinal order) that differs from `before`.
    fn update_mask(&self, before: Option<&Row>) -> String {
        let (Some(b), mine) = (before, self.columns(Style::Go, false)) else {
            return "0x01FF".into();
        };
        let mask = b
            .columns(Style::Go, false)
            .iter()
            .zip(&mine)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .fold(0u16, |m, (i, _)| m | 1 << i);
        format!("0x{mask:04X}")
    }
}

/// An 80-bit SQL Server LSN as its 10 big-endian bytes.
fn lsn_bytes(lsn: u128) -> Vec<u8> {
    lsn.to_be_bytes()[6..].to_vec()
}

/// An LSN as the change table's `0x` + 20 hex digits (`__$start_lsn`, `__$seqval`).
pub(super) fn lsn_hex(lsn: u128) -> String {
    format!("0x{lsn:020X}")
}

fn text(s: impl Into<String>) -> HeaderValue {
    HeaderValue::Text(s.into())
}

#[derive(Debug)]
pub struct Payments {
    pub service: usize,
    next_id: i64,
    ordinal: u64,
    /// Virtual log file, block offset and slot of the current `__$start_lsn`.
    vlf: u128,
    block_offset: u128,
    slot: u128,
    clock: Clock,
    snapshot_bit_strings: bool,
}

impl Payments {
    /// `snapshot_bit_strings`: write `bit` as `"true"`/`"false"` in snapshot rows, as RPCN really
    /// does; off by default because no normalization rule reconciles it with a boolean.
    pub fn new(service: usize, snapshot_bit_strings: bool) -> Self {
        Self {
            service,
            next_id: 5001,
            ordinal: 0,
            vlf: 0x2A,
            block_offset: 0x1F0,
            slot: 3,
            clock: Clock::start(),
            snapshot_bit_strings,
        }
    }

    fn lsn(&self) -> u128 {
        (self.vlf << 48) | (self.block_offset << 16) | self.slot
    }

    fn advance(&mut self, rng: &mut Rng) {
        self.slot += u128::from(rng.range(1, 30));
        if self.slot > 0x200 {
            self.block_offset += u128::from(rng.range(0x10, 0x400));
            self.slot = u128::from(rng.range(1, 4));
        }
    }
}

impl ServiceModel for Payments {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn next_block(&mut self, rng: &mut Rng, drift_on: bool) -> Block {
        let mut block = Block::default();
        // The first block holds the rows that existed before capture started: the initial snapshot.
        let snapshot = self.ordinal == 0;
        let mut keys: Vec<(i64, Option<Drift>, Option<Row>)> = Vec::with_capacity(KEYS_PER_BLOCK);
        let mut histories = Vec::with_capacity(KEYS_PER_BLOCK);
        for _ in 0..KEYS_PER_BLOCK {
            let drift = drift_at(DRIFT, self.ordinal).filter(|_| drift_on);
            self.ordinal += 1;
            let shape = drift.map_or(Shape::default(), Drift::shape);
            histories.push(history(rng, Shape { snapshot, ..shape }));
            let id = self.next_id;
            self.next_id += 1;
            let key = id.to_string();
            let partition_differs = baseline_partition(&key) != candidate_partition(&key);
            block.keys.push(KeyOutcome {
                key,
                drift,
                partition_differs,
            });
            keys.push((id, drift, None));
        }
        // Snapshot rows are stamped with the LSN current at snapshot time; streaming follows it.
        let snapshot_lsn = self.lsn();
        let mut lsn = snapshot_lsn;
        let mut seq = 0u128;
        for slot in schedule(rng, &histories, 3, true, &mut self.clock) {
            let (id, drift, row) = &mut keys[slot.key];
            let (id, drift) = (*id, *drift);
            let op = histories[slot.key][slot.step];
            if op == Op::Read {
                lsn = snapshot_lsn;
            } else if slot.first_in_txn {
                self.advance(rng);
                lsn = self.lsn();
                seq = 0;
            }
            seq += 1;
            let before = row.clone();
            let after = match (op, before.as_ref()) {
                (Op::Update, Some(prev)) => prev.updated(rng),
                (Op::Delete, Some(prev)) => prev.clone(),
                _ => Row::new(rng, id, slot.commit_ns),
            };
            *row = (op != Op::Delete).then(|| after.clone());
            let key = id.to_string();
            let commit_ms = slot.commit_ns / 1_000_000;
            // (RPCN operation, `__$operation`, image) of each message this change produces.
            let images: Vec<(&str, i64, &Row)> = match (op, before.as_ref()) {
                (Op::Read, _) => vec![("read", 2, &after)],
                (Op::Insert, _) => vec![("insert", 2, &after)],
                (Op::Update, Some(prev)) => {
                    vec![("update_before", 3, prev), ("update_after", 4, &after)]
                }
                (Op::Update, None) => vec![("update_after", 4, &after)],
                (Op::Delete, _) => vec![("delete", 1, &after)],
            };
            let pivot = slot.step == 1 && op == Op::Update;
            for (name, code, image) in images {
                let mut headers = vec![
                    ("database_schema", text("dbo")),
                    ("table", text("payments")),
                    ("operation", text(name)),
                    ("lsn", HeaderValue::Binary(lsn_bytes(lsn))),
                ];
                rng.shuffle(&mut headers);
                let bits = self.snapshot_bit_strings && op == Op::Read;
                let body = row_body(&image.columns(Style::Go, bits), Style::Go, false);
                if drift != Some(Drift::ExtraInCandidate) {
                    block.baseline.push(Record {
                        topic: BASELINE_TOPIC,
                        partition: baseline_partition(&key),
                        timestamp_ms: commit_ms + rng.range_i64(3, 80),
                        headers,
                        key: Some(key.clone()),
                        payload: Some(body),
                        service: Some(self.service),
                        avro: None,
                    });
                }
                if drift == Some(Drift::MissingInCandidate) {
                    continue;
                }
                let mut cols = vec![
                    ("__$start_lsn", J::Str(lsn_hex(lsn))),
                    ("__$end_lsn", J::Null),
                    ("__$seqval", J::Str(lsn_hex(lsn + seq))),
                    ("__$operation", J::Num(code.to_string())),
                    (
                        "__$update_mask",
                        J::Str(image.update_mask(before.as_ref().filter(|_| op == Op::Update))),
                    ),
                ];
                cols.extend(image.columns(Style::Bento, false));
                if pivot && code == 4 && drift == Some(Drift::AmountAltered) {
                    cols.iter_mut()
                        .filter(|c| c.0 == "amount")
                        .for_each(|c| c.1 = J::Str(decimal_unpadded(image.amount_cents + 100, 2)));
                }
                cols.push(("__$command_id", J::Num(seq.to_string())));
                let mut headers = vec![
                    ("kafka_key", text(key.clone())),
                    ("kafka_topic", text("staging.acme.payments")),
                    ("kafka_partition", text(rng.index(12).to_string())),
                    (
                        "kafka_timestamp_unix_ms",
                        text((commit_ms + 900).to_string()),
                    ),
                ];
                rng.shuffle(&mut headers);
                block.candidate.push(Record {
                    topic: CANDIDATE_TOPIC,
                    partition: candidate_partition(&key),
                    timestamp_ms: commit_ms + rng.range_i64(1_000, 5_000),
                    headers,
                    key: Some(key.clone()),
                    payload: Some(row_body(&cols, Style::Bento, false)),
                    service: Some(self.service),
                    avro: None,
                });
            }
        }
        block
    }
}
