//! `shipments`: a Kafka Connect pipeline. The baseline is Debezium's SQL Server connector with the
//! Confluent Avro converter (`time.precision.mode=connect`, `decimal.handling.mode=precise`): one
//! envelope per change (`before`, `after`, `source` with `commit_lsn` / `change_lsn` /
//! `event_serial_no`, `op` `r`/`c`/`u`/`d`, `ts_ms`, `transaction`), a tombstone after each delete,
//! and a connector upgrade mid-run that registers a second schema (Debezium 2.6's `ts_us`/`ts_ns`
//! in `source`), so the run carries two schema ids. The candidate is a Bento substitute polling
//! the change table `cdc.dbo_shipments_CT` and writing JSON: `__$` columns, update_before and
//! update_after rows, decimals unpadded, `datetime2(3)` as RFC 3339 `+00:00`.
//!
//! Positions: the baseline's `commit_lsn`, `change_lsn` and `event_serial_no` are the candidate's
//! `__$start_lsn`, `__$seqval` and `__$command_id` (`event_serial_no` written as the change's
//! ordinal in its transaction, the pairing the fixture config's composite position assumes).

use super::capture::{baseline_partition, candidate_partition, AvroValue, HeaderValue, Record};
use super::json::{decimal_unpadded, row_body, timestamp, Style, TsFormat, J};
use super::model::{
    drift_at, history, schedule, Block, Clock, Drift, KeyOutcome, Op, ServiceModel, Shape,
};
use super::payments::lsn_hex;
use super::rng::Rng;
use apache_avro::types::Value as Avro;
use apache_avro::Schema;

pub const BASELINE_TOPIC: &str = "dbz.acme.dbo.shipments";
pub const CANDIDATE_TOPIC: &str = "bento.dev.acme.dbo.shipments";
const KEYS_PER_BLOCK: usize = 16;
/// Blocks written with the first schema; the connector is upgraded after them.
const BLOCKS_BEFORE_UPGRADE: u64 = 3;
const DRIFT: &[(u64, Drift)] = &[
    (3, Drift::MissingInCandidate),
    (9, Drift::DecimalDiffers),
    (14, Drift::DeleteDropped),
    (21, Drift::DroppedUpdate),
];
const CANDIDATE_TS: TsFormat = TsFormat {
    offset_min: 0,
    digits: 3,
    trim: true,
    zulu: false,
    naive: false,
};
const CARRIERS: &[&str] = &["DHL", "UPS", "PostNL", "La Poste"];

const VALUE: &str = r#"{"type": "record", "name": "Value", "fields": [
  {"name": "shipment_id", "type": "int"},
  {"name": "order_id", "type": "long"},
  {"name": "weight_kg", "type": {"type": "bytes", "scale": 3, "precision": 10, "connect.version": 1,
    "connect.parameters": {"scale": "3", "connect.decimal.precision": "10"},
    "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"}},
  {"name": "carrier", "type": "string"},
  {"name": "delivered", "type": "boolean"},
  {"name": "shipped_at", "type": ["null", {"type": "long", "connect.version": 1,
    "connect.name": "org.apache.kafka.connect.data.Timestamp", "logicalType": "timestamp-millis"}],
    "default": null},
  {"name": "note", "type": ["null", "string"], "default": null}],
  "connect.name": "dbz.acme.dbo.shipments.Value"}"#;

/// The envelope schema; `upgraded` adds Debezium 2.6's `source.ts_us` and `source.ts_ns`.
fn envelope_schema(upgraded: bool) -> String {
    let extra = if upgraded {
        r#", {"name": "ts_us", "type": ["null", "long"], "default": null},
    {"name": "ts_ns", "type": ["null", "long"], "default": null}"#
    } else {
        ""
    };
    format!(
        r#"{{"type": "record", "name": "Envelope", "namespace": "dbz.acme.dbo.shipments", "fields": [
  {{"name": "before", "type": ["null", {VALUE}], "default": null}},
  {{"name": "after", "type": ["null", "Value"], "default": null}},
  {{"name": "source", "type": {{"type": "record", "name": "Source",
    "namespace": "io.debezium.connector.sqlserver", "fields": [
    {{"name": "version", "type": "string"}},
    {{"name": "connector", "type": "string"}},
    {{"name": "name", "type": "string"}},
    {{"name": "ts_ms", "type": "long"}},
    {{"name": "snapshot", "type": [{{"type": "string", "connect.version": 1,
      "connect.parameters": {{"allowed": "true,last,false,incremental"}}, "connect.default": "false",
      "connect.name": "io.debezium.data.Enum"}}, "null"], "default": "false"}},
    {{"name": "db", "type": "string"}},
    {{"name": "schema", "type": "string"}},
    {{"name": "table", "type": "string"}},
    {{"name": "change_lsn", "type": ["null", "string"], "default": null}},
    {{"name": "commit_lsn", "type": ["null", "string"], "default": null}},
    {{"name": "event_serial_no", "type": ["null", "long"], "default": null}}{extra}],
    "connect.name": "io.debezium.connector.sqlserver.Source"}}}},
  {{"name": "op", "type": "string"}},
  {{"name": "ts_ms", "type": ["null", "long"], "default": null}},
  {{"name": "transaction", "type": ["null", {{"type": "record", "name": "block", "namespace": "event",
    "fields": [{{"name": "id", "type": "string"}}, {{"name": "total_order", "type": "long"}},
    {{"name": "data_collection_order", "type": "long"}}],
    "connect.version": 1, "connect.name": "event.block"}}], "default": null}}],
  "connect.version": 1, "connect.name": "dbz.acme.dbo.shipments.Envelope"}}"#
    )
}

/// The value schemas of the run, in order of registration.
pub fn schemas() -> [String; 2] {
    [envelope_schema(false), envelope_schema(true)]
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    shipment_id: i64,
    order_id: i64,
    /// Grams: `decimal(10,3)` kilograms.
    weight_g: i64,
    carrier: &'static str,
    delivered: bool,
    shipped_ms: Option<i64>,
    note: Option<String>,
}

impl Row {
    fn new(rng: &mut Rng, shipment_id: i64) -> Self {
        Self {
            shipment_id,
            order_id: rng.range_i64(1_001, 60_000),
            weight_g: rng.range_i64(50, 30_000),
            carrier: rng.pick(CARRIERS),
            delivered: false,
            shipped_ms: None,
            note: rng
                .chance(30)
                .then(|| format!("gate {} — fragile", rng.range(1, 40))),
        }
    }

    fn updated(&self, rng: &mut Rng, commit_ms: i64) -> Self {
        let mut next = self.clone();
        if next.shipped_ms.is_none() {
            next.shipped_ms = Some(commit_ms - rng.range_i64(0, 5_000));
        } else if !next.delivered && rng.chance(60) {
            next.delivered = true;
        } else {
            // Re-weighed at the depot.
            next.weight_g += rng.range_i64(1, 500);
        }
        next
    }

    fn avro(&self) -> Avro {
        let weight = apache_avro::Decimal::from(minimal_be(self.weight_g));
        Avro::Record(vec![
            ("shipment_id".into(), Avro::Int(self.shipment_id as i32)),
            ("order_id".into(), Avro::Long(self.order_id)),
            ("weight_kg".into(), Avro::Decimal(weight)),
            ("carrier".into(), Avro::String(self.carrier.into())),
            ("delivered".into(), Avro::Boolean(self.delivered)),
            (
                "shipped_at".into(),
                match self.shipped_ms {
                    Some(ms) => Avro::Union(1, Box::new(Avro::TimestampMillis(ms))),
                    None => Avro::Union(0, Box::new(Avro::Null)),
                },
            ),
            ("note".into(), optional_string(self.note.as_deref())),
        ])
    }

    /// The candidate's columns: what `sql_raw` reads from the change table, as Bento writes it.
    fn columns(&self, weight_g: i64) -> Vec<(&'static str, J)> {
        vec![
            ("shipment_id", J::Num(self.shipment_id.to_string())),
            ("order_id", J::Num(self.order_id.to_string())),
            ("weight_kg", J::Str(decimal_unpadded(weight_g, 3))),
            ("carrier", J::Str(self.carrier.into())),
            ("delivered", J::Bool(self.delivered)),
            (
                "shipped_at",
                self.shipped_ms.map_or(J::Null, |ms| {
                    J::Str(timestamp(ms * 1_000_000, CANDIDATE_TS))
                }),
            ),
            (
                "note",
                self.note.as_ref().map_or(J::Null, |n| J::Str(n.clone())),
            ),
        ]
    }
}

/// Two's complement, big-endian, without redundant leading bytes (as Kafka Connect writes).
fn minimal_be(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xFF && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    bytes[start..].to_vec()
}

fn optional_string(s: Option<&str>) -> Avro {
    match s {
        Some(s) => Avro::Union(1, Box::new(Avro::String(s.into()))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    }
}

fn optional_long(n: Option<i64>) -> Avro {
    match n {
        Some(n) => Avro::Union(1, Box::new(Avro::Long(n))),
        None => Avro::Union(0, Box::new(Avro::Null)),
    }
}

/// SQL Server's textual LSN, as Debezium writes `commit_lsn` and `change_lsn`.
fn lsn_text(lsn: u128) -> String {
    format!(
        "{:08x}:{:08x}:{:04x}",
        (lsn >> 48) as u32,
        (lsn >> 16) as u32,
        lsn as u16
    )
}

/// One writer schema: parsed for encoding and for decoding into the JSON a consumer reads.
struct Writer {
    encode: Schema,
    decode: crate::core::avro::WriterSchema,
}

pub struct Shipments {
    pub service: usize,
    next_id: i64,
    ordinal: u64,
    blocks: u64,
    lsn: u128,
    clock: Clock,
    writers: Vec<Writer>,
}

impl std::fmt::Debug for Shipments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipments")
            .field("service", &self.service)
            .field("ordinal", &self.ordinal)
            .finish()
    }
}

impl Shipments {
    pub fn new(service: usize) -> Self {
        let writers = schemas()
            .iter()
            .map(|text| Writer {
                // The schemas are constants of this file: a parse failure is a bug caught by the
                // generator's tests, not input.
                encode: Schema::parse_str(text).expect("shipments schema parses"),
                decode: crate::core::avro::WriterSchema::parse(text)
                    .expect("shipments schema parses"),
            })
            .collect();
        Self {
            service,
            next_id: 70_001,
            ordinal: 0,
            blocks: 0,
            lsn: (0x2B << 48) | (0x0B00 << 16) | 2,
            clock: Clock::start(),
            writers,
        }
    }

    /// The envelope as an Avro record of schema `schema`, and its datum's JSON form.
    fn encode(&self, schema: usize, envelope: Vec<(String, Avro)>) -> (AvroValue, String) {
        let writer = &self.writers[schema];
        let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&writer.encode)
            .build()
            .and_then(|w| w.write_value_to_vec(Avro::Record(envelope)))
            .expect("a generated envelope matches its schema");
        let json = crate::core::avro::decode_to_json(&writer.decode, &datum)
            .expect("a generated envelope decodes");
        (AvroValue { schema, datum }, json)
    }
}

/// Which change of a `DroppedUpdate` key the candidate loses: its first update that shares a
/// transaction with another change (the drift this model exists for), else its first update.
fn dropped_step(slots: &[super::model::Slot], key: usize, histories: &[Vec<Op>]) -> Option<usize> {
    let updates = || {
        slots
            .iter()
            .filter(move |s| s.key == key && histories[key][s.step] == Op::Update)
    };
    updates()
        .find(|s| !(s.first_in_txn && s.last_in_txn))
        .or_else(|| updates().next())
        .map(|s| s.step)
}

impl ServiceModel for Shipments {
    fn name(&self) -> &'static str {
        "shipments"
    }

    fn next_block(&mut self, rng: &mut Rng, drift_on: bool) -> Block {
        let mut block = Block::default();
        let schema = usize::from(self.blocks >= BLOCKS_BEFORE_UPGRADE);
        self.blocks += 1;
        let mut keys: Vec<(i64, Option<Drift>, Option<Row>)> = Vec::with_capacity(KEYS_PER_BLOCK);
        let mut histories = Vec::with_capacity(KEYS_PER_BLOCK);
        for _ in 0..KEYS_PER_BLOCK {
            let drift = drift_at(DRIFT, self.ordinal).filter(|_| drift_on);
            self.ordinal += 1;
            let shape = drift.map_or(Shape::default(), Drift::shape);
            // Streaming only (`snapshot.mode = no_data`): a snapshot event has no `change_lsn`
            // or `event_serial_no`, and the change table no row, so positions could not pair.
            histories.push(history(rng, shape));
            let id = self.next_id;
            self.next_id += 1;
            let key = id.to_string();
            block.keys.push(KeyOutcome {
                partition_differs: baseline_partition(&key) != candidate_partition(&key),
                key,
                drift,
            });
            keys.push((id, drift, None));
        }
        let slots = schedule(rng, &histories, 4, true, &mut self.clock);
        let dropped: Vec<Option<usize>> = (0..keys.len())
            .map(|k| {
                (keys[k].1 == Some(Drift::DroppedUpdate))
                    .then(|| dropped_step(&slots, k, &histories))
                    .flatten()
            })
            .collect();
        let (mut commit, mut serial, mut total_order) = (self.lsn, 0i64, 0i64);
        for slot in &slots {
            let (id, drift, row) = &mut keys[slot.key];
            let (id, drift) = (*id, *drift);
            let op = histories[slot.key][slot.step];
            if slot.first_in_txn {
                self.lsn += u128::from(rng.range(0x100, 0x4000)) << 16;
                commit = self.lsn;
                serial = 0;
                total_order = 0;
            }
            serial += 1;
            total_order += 1;
            let change = commit - 2 + (serial as u128) * 0x10;
            let commit_ms = slot.commit_ns / 1_000_000;
            let before = row.clone();
            let after = match (op, before.as_ref()) {
                (Op::Update, Some(prev)) => prev.updated(rng, commit_ms),
                (Op::Delete, Some(prev)) => prev.clone(),
                _ => Row::new(rng, id),
            };
            *row = (op != Op::Delete).then(|| after.clone());
            let key = id.to_string();
            let message_key = format!("{{\"shipment_id\":{id}}}");

            // Debezium: one envelope, then a tombstone after a delete.
            let (before_image, after_image) = match op {
                Op::Delete => (Some(&after), None),
                Op::Update => (before.as_ref(), Some(&after)),
                _ => (None, Some(&after)),
            };
            let image = |r: Option<&Row>| match r {
                Some(r) => Avro::Union(1, Box::new(r.avro())),
                None => Avro::Union(0, Box::new(Avro::Null)),
            };
            let mut source = vec![
                ("version".into(), Avro::String("2.5.4.Final".into())),
                ("connector".into(), Avro::String("sqlserver".into())),
                ("name".into(), Avro::String("dbz".into())),
                ("ts_ms".into(), Avro::Long(commit_ms)),
                (
                    "snapshot".into(),
                    Avro::Union(0, Box::new(Avro::String("false".into()))),
                ),
                ("db".into(), Avro::String("acme".into())),
                ("schema".into(), Avro::String("dbo".into())),
                ("table".into(), Avro::String("shipments".into())),
                (
                    "change_lsn".into(),
                    optional_string(Some(&lsn_text(change))),
                ),
                (
                    "commit_lsn".into(),
                    optional_string(Some(&lsn_text(commit))),
                ),
                ("event_serial_no".into(), optional_long(Some(serial))),
            ];
            if schema == 1 {
                source[0].1 = Avro::String("2.6.1.Final".into());
                source.push(("ts_us".into(), optional_long(Some(commit_ms * 1_000))));
                source.push(("ts_ns".into(), optional_long(Some(slot.commit_ns))));
            }
            let code = match op {
                Op::Read => "r",
                Op::Insert => "c",
                Op::Update => "u",
                Op::Delete => "d",
            };
            let envelope = vec![
                ("before".into(), image(before_image)),
                ("after".into(), image(after_image)),
                ("source".into(), Avro::Record(source)),
                ("op".into(), Avro::String(code.into())),
                ("ts_ms".into(), optional_long(Some(commit_ms + 40))),
                (
                    "transaction".into(),
                    Avro::Union(
                        1,
                        Box::new(Avro::Record(vec![
                            ("id".into(), Avro::String(lsn_text(commit))),
                            ("total_order".into(), Avro::Long(total_order)),
                            ("data_collection_order".into(), Avro::Long(total_order)),
                        ])),
                    ),
                ),
            ];
            let (avro, json) = self.encode(schema, envelope);
            let emitted_ms = commit_ms + rng.range_i64(20, 200);
            let partition = baseline_partition(&key);
            block.baseline.push(Record {
                topic: BASELINE_TOPIC,
                partition,
                timestamp_ms: emitted_ms,
                headers: Vec::new(),
                key: Some(message_key.clone()),
                payload: Some(json),
                service: Some(self.service),
                avro: Some(avro),
            });
            if op == Op::Delete {
                block.baseline.push(Record {
                    topic: BASELINE_TOPIC,
                    partition,
                    timestamp_ms: emitted_ms,
                    headers: Vec::new(),
                    key: Some(message_key),
                    payload: None,
                    // Not an event: the manifest counts it as a tombstone.
                    service: None,
                    avro: None,
                });
            }

            // The candidate: the change table's rows, as the Bento substitute polls them.
            let lost = drift == Some(Drift::MissingInCandidate)
                || (drift == Some(Drift::DeleteDropped) && op == Op::Delete)
                || dropped[slot.key] == Some(slot.step);
            if lost {
                continue;
            }
            let images: Vec<(i64, &Row)> = match (op, before.as_ref()) {
                (Op::Update, Some(prev)) => vec![(3, prev), (4, &after)],
                (Op::Delete, _) => vec![(1, &after)],
                _ => vec![(2, &after)],
            };
            let pivot = slot.step == 1 && op == Op::Update;
            for (code, image) in images {
                let weight = if pivot && code == 4 && drift == Some(Drift::DecimalDiffers) {
                    image.weight_g + 1
                } else {
                    image.weight_g
                };
                let mut cols = vec![
                    ("__$start_lsn", J::Str(lsn_hex(commit))),
                    ("__$end_lsn", J::Null),
                    ("__$seqval", J::Str(lsn_hex(change))),
                    ("__$operation", J::Num(code.to_string())),
                    ("__$update_mask", J::Str("0x7F".into())),
                ];
                cols.extend(image.columns(weight));
                cols.push(("__$command_id", J::Num(serial.to_string())));
                let mut headers = vec![
                    ("kafka_key", HeaderValue::Text(key.clone())),
                    (
                        "kafka_topic",
                        HeaderValue::Text("staging.acme.shipments".into()),
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
