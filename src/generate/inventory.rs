//! `inventory`: stock levels synced by a poller with neither source position nor operation, keyed
//! by the composite `(tenant, sku)` taken from the body (the candidate produces a nil Kafka key).
//!
//! Without a position, the comparison deduplicates on content digests and takes a key's final state
//! in arrival order; per-key order holds because each key stays on one partition on each side.

use super::capture::{baseline_partition, candidate_partition, HeaderValue, Record};
use super::json::{
    decimal_padded, decimal_unpadded, row_body, timestamp, Style, TsFormat, J, RFC3339_NANO,
};
use super::model::{
    drift_at, history, schedule, Block, Clock, Drift, KeyOutcome, ServiceModel, Shape,
};
use super::rng::Rng;

pub const BASELINE_TOPIC: &str = "dev.acme.public.inventory";
pub const CANDIDATE_TOPIC: &str = "bento.dev.acme.public.inventory";
const KEYS_PER_BLOCK: usize = 16;
const DRIFT: &[(u64, Drift)] = &[
    (4, Drift::MissingInCandidate),
    (10, Drift::ExtraInCandidate),
    (16, Drift::OutOfOrderFinalState),
];
const TENANTS: &[&str] = &["acme", "globex", "initech"];
const CANDIDATE_TS: TsFormat = TsFormat {
    offset_min: 0,
    digits: 6,
    trim: false,
    zulu: false,
    naive: false,
};

#[derive(Debug, Clone)]
struct Row {
    tenant: &'static str,
    sku: String,
    warehouse: &'static str,
    on_hand: i64,
    reserved: i64,
    unit_cost_cents: i64,
    updated_ns: i64,
}

impl Row {
    fn columns(&self, style: Style) -> Vec<(&'static str, J)> {
        let go = style == Style::Go;
        let cost = if go {
            decimal_padded(self.unit_cost_cents, 2)
        } else {
            decimal_unpadded(self.unit_cost_cents, 2)
        };
        let ts = if go {
            timestamp(self.updated_ns, RFC3339_NANO)
        } else {
            timestamp(self.updated_ns, CANDIDATE_TS)
        };
        vec![
            ("tenant", J::Str(self.tenant.into())),
            ("sku", J::Str(self.sku.clone())),
            ("warehouse", J::Str(self.warehouse.into())),
            ("on_hand", J::Num(self.on_hand.to_string())),
            ("reserved", J::Num(self.reserved.to_string())),
            ("unit_cost", J::Str(cost)),
            ("updated_at", J::Str(ts)),
        ]
    }
}

#[derive(Debug)]
pub struct Inventory {
    pub service: usize,
    ordinal: u64,
    clock: Clock,
}

impl Inventory {
    pub fn new(service: usize) -> Self {
        Self {
            service,
            ordinal: 0,
            clock: Clock::start(),
        }
    }
}

impl ServiceModel for Inventory {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn next_block(&mut self, rng: &mut Rng, drift_on: bool) -> Block {
        let mut block = Block::default();
        let mut keys: Vec<(Row, Option<Drift>, String)> = Vec::with_capacity(KEYS_PER_BLOCK);
        let mut histories = Vec::with_capacity(KEYS_PER_BLOCK);
        for _ in 0..KEYS_PER_BLOCK {
            let drift = drift_at(DRIFT, self.ordinal).filter(|_| drift_on);
            let row = Row {
                tenant: TENANTS[(self.ordinal % 3) as usize],
                sku: format!("SKU-{:05}", self.ordinal / 3 * 7 + 11),
                warehouse: rng.pick(&["LYS-1", "LBA-2", "BOS-1"]),
                on_hand: rng.range_i64(0, 500),
                reserved: 0,
                unit_cost_cents: rng.range_i64(50, 90_000),
                updated_ns: 0,
            };
            self.ordinal += 1;
            // Plain upserts: no deletes.
            histories.push(history(
                rng,
                Shape {
                    delete: Some(false),
                    ..drift.map_or(Shape::default(), Drift::shape)
                },
            ));
            // The comparison's key for a two-pointer composite is the canonical JSON array.
            let display = format!("[\"{}\",\"{}\"]", row.tenant, row.sku);
            let partition_text = format!("{}/{}", row.tenant, row.sku);
            let partition_differs =
                baseline_partition(&partition_text) != candidate_partition(&partition_text);
            block.keys.push(KeyOutcome {
                key: display,
                drift,
                partition_differs,
            });
            keys.push((row, drift, partition_text));
        }
        let mut swap_candidate: Vec<usize> = Vec::new();
        for slot in schedule(rng, &histories, 1, true, &mut self.clock) {
            let (row, drift, key_text) = &mut keys[slot.key];
            if slot.step > 0 {
                let sold = rng.range_i64(0, 20).min(row.on_hand);
                row.on_hand = row.on_hand - sold + rng.range_i64(0, 3) * 25;
                row.reserved = rng.range_i64(0, 10).min(row.on_hand);
            }
            // Microseconds, and strictly increasing per key, so no two versions share a digest.
            row.updated_ns = slot.commit_ns - slot.commit_ns.rem_euclid(1000);
            let commit_ms = slot.commit_ns / 1_000_000;
            if *drift != Some(Drift::ExtraInCandidate) {
                block.baseline.push(Record {
                    topic: BASELINE_TOPIC,
                    partition: baseline_partition(key_text),
                    timestamp_ms: commit_ms + rng.range_i64(3, 60),
                    headers: Vec::new(),
                    key: Some(key_text.clone()),
                    payload: Some(row_body(&row.columns(Style::Go), Style::Go, false)),
                    service: Some(self.service),
                    avro: None,
                });
            }
            if *drift == Some(Drift::MissingInCandidate) {
                continue;
            }
            let mut cols = row.columns(Style::Bento);
            let produced_ms = commit_ms + rng.range_i64(150, 2_500);
            cols.push((
                "__sync_timestamp",
                J::Str(timestamp(
                    produced_ms * 1_000_000,
                    TsFormat {
                        digits: 3,
                        ..CANDIDATE_TS
                    },
                )),
            ));
            let mut headers = vec![
                (
                    "kafka_topic",
                    HeaderValue::Text("staging.acme.inventory".into()),
                ),
                (
                    "kafka_partition",
                    HeaderValue::Text(rng.index(12).to_string()),
                ),
                (
                    "kafka_timestamp_unix_ms",
                    HeaderValue::Text((commit_ms + 25).to_string()),
                ),
            ];
            rng.shuffle(&mut headers);
            if *drift == Some(Drift::OutOfOrderFinalState)
                && slot.step + 2 >= histories[slot.key].len()
            {
                swap_candidate.push(block.candidate.len());
            }
            block.candidate.push(Record {
                topic: CANDIDATE_TOPIC,
                // A nil key: the Bento output partitions with a `manual` partitioner on tenant/sku.
                partition: candidate_partition(key_text),
                timestamp_ms: produced_ms,
                headers,
                key: None,
                payload: Some(row_body(&cols, Style::Bento, true)),
                service: Some(self.service),
                avro: None,
            });
        }
        if let [a, b] = swap_candidate[..] {
            // The sink applied the key's last two upserts in the wrong order.
            block.candidate.swap(a, b);
        }
        block
    }
}
