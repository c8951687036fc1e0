//! Kafka records as the capture tools print them, and how records land on partitions.
//!
//! Baseline captures are `kcat -C -J` lines, candidate captures `rpk topic consume` JSON, exactly as
//! `docs`/`runtimes.md` describe them. [`SideWriter`] owns per-partition offsets and reproduces
//! what a consumer sees: each partition in order, partitions interleaved arbitrarily.

use super::json::{write_str, Style};
use super::rng::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Partitions of every generated topic.
pub const PARTITIONS: i32 = 6;

/// A header value: text, or raw bytes (SQL Server's 10-byte `lsn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Text(String),
    Binary(Vec<u8>),
}

/// One produced record, before a consumer assigns it an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub topic: &'static str,
    pub partition: i32,
    pub timestamp_ms: i64,
    pub headers: Vec<(&'static str, HeaderValue)>,
    pub key: Option<String>,
    /// `None` is a tombstone or a transaction marker.
    pub payload: Option<String>,
    /// The service this record is an event of; `None` for markers and unconfigured topics.
    pub service: Option<usize>,
    /// A Kafka Connect side's value as Avro (Confluent wire format once framed with a schema id);
    /// `payload` then holds the JSON a consumer decodes it to (row changes and drift read that).
    pub avro: Option<AvroValue>,
}

/// An Avro datum and which of its model's schemas wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroValue {
    /// Index into the model's schemas (`shipments::schemas()`).
    pub schema: usize,
    pub datum: Vec<u8>,
}

/// The schema id a fixture capture frames schema `index` with (`schemas/ID.avsc` beside it).
pub fn fixture_schema_id(index: usize) -> u32 {
    index as u32 + 1
}

/// The Confluent wire format: a 0 byte, the schema id (4 bytes, big-endian), the Avro datum.
pub fn confluent_frame(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// What a capture line holds as the record's value: the JSON text, or for an Avro value its
/// framed bytes in base64 (`rpk … -f '%v{base64}'`; JSON captures cannot hold binary).
fn value_text(record: &Record) -> Option<std::borrow::Cow<'_, str>> {
    use base64::Engine as _;
    match &record.avro {
        Some(a) => Some(std::borrow::Cow::Owned(
            base64::engine::general_purpose::STANDARD
                .encode(confluent_frame(fixture_schema_id(a.schema), &a.datum)),
        )),
        None => record.payload.as_deref().map(std::borrow::Cow::Borrowed),
    }
}

/// Which tool printed the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Kcat,
    Rpk,
}

impl Format {
    /// The capture file's middle extension (`baseline.kcat.jsonl`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Kcat => "kcat",
            Self::Rpk => "rpk",
        }
    }
}

/// Kafka's default partitioner (`murmur2`, Java-compatible), as RPCN `kafka_franz` uses it.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(&b) = rest.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// FNV-1a 32, sarama's default hash partitioner (the `kafka` output of both runtimes).
pub fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Baseline partition of a key: murmur2, positive, modulo the partition count.
pub fn baseline_partition(key: &str) -> i32 {
    ((murmur2(key.as_bytes()) & 0x7fff_ffff) % PARTITIONS as u32) as i32
}

/// Candidate partition of a key. Real murmur2 and fnv1a disagree on ~5 keys in 6; operators align
/// them (a murmur2-compatible partitioner on the Bento side) but not perfectly, so here only about
/// one key in sixteen is placed by fnv1a, which sometimes lands on another partition: a small,
/// countable "partition differs" signal rather than a wall of it.
pub fn candidate_partition(key: &str) -> i32 {
    let h = fnv1a(key.as_bytes());
    if h % 16 == 0 {
        ((h >> 4) % PARTITIONS as u32) as i32
    } else {
        baseline_partition(key)
    }
}

/// Header bytes as a JSON string: text as is; binary one char U+0000..U+00FF per byte, which is how
/// a capture of raw header bytes reads back (see `core::position`).
fn header_text(value: &HeaderValue) -> String {
    match value {
        HeaderValue::Text(s) => s.clone(),
        HeaderValue::Binary(b) => b.iter().map(|&x| char::from(x)).collect(),
    }
}

/// Append one capture line (with its newline) for `record` at `offset`.
pub fn write_line(out: &mut String, record: &Record, offset: i64, format: Format) {
    let s = Style::Bento; // the tools' own JSON: minimal escaping
    match format {
        Format::Kcat => {
            out.push_str("{\"topic\":");
            write_str(out, record.topic, s);
            let _ = write!(
                out,
                ",\"partition\":{},\"offset\":{offset},\"tstype\":\"create\",\"ts\":{},\"broker\":{}",
                record.partition,
                record.timestamp_ms,
                // kcat prints the id of the broker it fetched from; three brokers, leaders spread.
                record.partition % 3 + 1
            );
            if !record.headers.is_empty() {
                out.push_str(",\"headers\":[");
                for (i, (name, value)) in record.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, name, s);
                    out.push(',');
                    write_str(out, &header_text(value), s);
                }
                out.push(']');
            }
            out.push_str(",\"key\":");
            match &record.key {
                Some(k) => write_str(out, k, s),
                None => out.push_str("null"),
            }
            out.push_str(",\"payload\":");
            match value_text(record) {
                Some(p) => write_str(out, &p, s),
                None => out.push_str("null"),
            }
            out.push_str("}\n");
        }
        Format::Rpk => {
            out.push_str("{\"topic\":");
            write_str(out, record.topic, s);
            // rpk omits key, value and headers when empty.
            if let Some(k) = record.key.as_deref().filter(|k| !k.is_empty()) {
                out.push_str(",\"key\":");
                write_str(out, k, s);
            }
            if let Some(v) = value_text(record).filter(|v| !v.is_empty()) {
                out.push_str(",\"value\":");
                write_str(out, &v, s);
            }
            if !record.headers.is_empty() {
                out.push_str(",\"headers\":[");
                for (i, (name, value)) in record.headers.iter().enumerate() {
                    out.push_str(if i > 0 { ",{\"key\":" } else { "{\"key\":" });
                    write_str(out, name, s);
                    out.push_str(",\"value\":");
                    write_str(out, &header_text(value), s);
                    out.push('}');
                }
                out.push(']');
            }
            let _ = writeln!(
                out,
                ",\"timestamp\":{},\"partition\":{},\"offset\":{offset}}}",
                record.timestamp_ms, record.partition
            );
        }
    }
}

/// One side's capture: assigns offsets per topic-partition and interleaves partitions.
#[derive(Debug)]
pub struct SideWriter<W: Write> {
    out: W,
    format: Format,
    offsets: BTreeMap<(&'static str, i32), i64>,
    rng: Rng,
    line: String,
    pub lines: u64,
}

impl<W: Write> SideWriter<W> {
    pub fn new(out: W, format: Format, rng: Rng) -> Self {
        Self {
            out,
            format,
            offsets: BTreeMap::new(),
            rng,
            line: String::with_capacity(1024),
            lines: 0,
        }
    }

    /// Write a batch produced in this order: per-partition order is kept, partitions are taken in
    /// random runs, as a consumer fetching several partitions prints them.
    pub fn write_batch(&mut self, records: &[Record]) -> io::Result<()> {
        let mut queues: Vec<VecDeque<&Record>> = (0..PARTITIONS).map(|_| VecDeque::new()).collect();
        for r in records {
            let p = r.partition.clamp(0, PARTITIONS - 1) as usize;
            queues[p].push_back(r);
        }
        loop {
            let live: Vec<usize> = (0..queues.len())
                .filter(|&p| !queues[p].is_empty())
                .collect();
            if live.is_empty() {
                return Ok(());
            }
            let p = self.rng.pick(&live);
            let run = self.rng.range(1, 9);
            for _ in 0..run {
                let Some(r) = queues[p].pop_front() else {
                    break;
                };
                self.write_record(r)?;
            }
        }
    }

    fn write_record(&mut self, record: &Record) -> io::Result<()> {
        let topic = record.topic;
        let rng = &mut self.rng;
        // Topics existed before the capture: offsets start somewhere in the past.
        let next = self
            .offsets
            .entry((topic, record.partition))
            .or_insert_with(|| rng.range_i64(1_000, 90_000));
        let offset = *next;
        *next += 1;
        self.line.clear();
        write_line(&mut self.line, record, offset, self.format);
        self.lines += 1;
        self.out.write_all(self.line.as_bytes())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
