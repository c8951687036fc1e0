//! The deterministic fixture generator: realistic captures of both runtimes for a Postgres-CDC
//! service (`orders`), a SQL-Server-CDC service (`payments`) and a position-less one (`inventory`),
//! with benign noise everywhere and, on request, known drift recorded in a [`Manifest`].
//!
//! Output is a pure function of the [`PairSpec`]: the same seed gives the same bytes. Records are
//! produced in blocks and streamed through buffered writers, so memory does not grow with the
//! number of events and millions of events per side are cheap (benchmarks).

mod capture;
mod inventory;
mod json;
pub mod live;
mod manifest;
mod model;
mod orders;
mod orders_row;
mod payments;
mod rng;
pub(crate) mod shipments;
#[cfg(test)]
mod tests;

pub use capture::{baseline_partition, candidate_partition, fnv1a, murmur2};
pub use json::go_float;
pub use manifest::{Manifest, MismatchedKey, ServiceManifest, SideCounts};

use capture::{Format, HeaderValue, Record, SideWriter};
use flate2::write::GzEncoder;
use model::{Drift, ServiceModel};
use rng::Rng;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Version tag written into every manifest.
pub const GENERATOR_VERSION: &str = "paritygate-generate/1";
const AUDIT_BASELINE: &str = "dev.acme.public.audit_log";
const AUDIT_CANDIDATE: &str = "bento.dev.acme.public.audit_log";

/// Which pipelines a pair holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pipelines {
    /// Redpanda Connect CDC against Bento: `orders`, `payments`, `inventory`
    /// (`fixtures/paritygate.toml`).
    #[default]
    RedpandaConnect,
    /// Kafka Connect: `shipments`, Debezium SQL Server in Avro against Bento JSON
    /// (`fixtures/debezium/paritygate.toml`, schemas in the pair's `schemas/`).
    KafkaConnect,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSpec {
    pub pipelines: Pipelines,
    pub seed: u64,
    /// Baseline events (distinct, markers excluded) per service; generation stops at the first
    /// block boundary past it.
    pub events_per_service: u64,
    /// Inject the known drift (see [`Manifest`]); off: the pair must compare clean.
    pub drift: bool,
    pub gzip_baseline: bool,
    pub gzip_candidate: bool,
    /// Write SQL Server `bit` as `"true"`/`"false"` in snapshot rows as RPCN does; the
    /// `boolean_strings` rule reconciles it with the candidate's boolean.
    pub snapshot_bit_strings: bool,
}

impl PairSpec {
    pub fn new(seed: u64, events_per_service: u64, drift: bool) -> Self {
        Self {
            pipelines: Pipelines::default(),
            seed,
            events_per_service,
            drift,
            gzip_baseline: false,
            gzip_candidate: false,
            snapshot_bit_strings: false,
        }
    }
}

/// The checked-in fixtures: `(directory under fixtures/, spec)`.
pub fn fixture_specs() -> Vec<(&'static str, PairSpec)> {
    vec![
        (
            "clean",
            PairSpec {
                snapshot_bit_strings: true,
                ..PairSpec::new(20_260_820, 240, false)
            },
        ),
        (
            "drift",
            PairSpec {
                gzip_candidate: true,
                snapshot_bit_strings: true,
                ..PairSpec::new(20_260_821, 240, true)
            },
        ),
        (
            "debezium/clean",
            PairSpec {
                pipelines: Pipelines::KafkaConnect,
                ..PairSpec::new(20_260_822, 240, false)
            },
        ),
        (
            "debezium/drift",
            PairSpec {
                pipelines: Pipelines::KafkaConnect,
                ..PairSpec::new(20_260_823, 240, true)
            },
        ),
    ]
}

/// File names for a spec, relative to its directory.
pub fn file_names(spec: &PairSpec) -> (String, String) {
    let gz = |on: bool| if on { ".gz" } else { "" };
    (
        format!(
            "baseline.{}.jsonl{}",
            baseline_format(spec).extension(),
            gz(spec.gzip_baseline)
        ),
        format!("candidate.rpk.jsonl{}", gz(spec.gzip_candidate)),
    )
}

/// The tool a pair's baseline is captured with: `kcat -J` for JSON topics; `rpk` with
/// `%v{base64}` for Avro ones (`kcat -J` cannot print binary values intact).
fn baseline_format(spec: &PairSpec) -> Format {
    match spec.pipelines {
        Pipelines::RedpandaConnect => Format::Kcat,
        Pipelines::KafkaConnect => Format::Rpk,
    }
}

/// A plain or gzip file sink that can be finished explicitly (so a gzip trailer error is reported).
enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, gzip: bool) -> io::Result<Self> {
        let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        // flate2 writes mtime 0 and no file name: the bytes depend only on the content.
        Ok(if gzip {
            Self::Gzip(GzEncoder::new(file, flate2::Compression::default()))
        } else {
            Self::Plain(file)
        })
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Self::Plain(mut w) => w.flush(),
            Self::Gzip(g) => g.finish()?.flush(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Gzip(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
        }
    }
}

/// One side of the run: its writer, its noise stream, the previous block kept for replays.
struct Side {
    writer: SideWriter<Sink>,
    noise: Rng,
    previous: Vec<Vec<Record>>,
    /// Blocks written per service: every service gets at least one replay per side.
    blocks: Vec<u64>,
    candidate: bool,
}

impl Side {
    /// Write one service's block, then perhaps an at-least-once replay of part of the previous block
    /// (a producer retry or a restart from the last checkpoint): same records, new offsets, later.
    /// Returns the replayed records by kind.
    fn write_block(&mut self, service: usize, records: Vec<Record>) -> io::Result<Kinds> {
        self.writer.write_batch(&records)?;
        let previous = std::mem::replace(&mut self.previous[service], records);
        let block = self.blocks[service];
        self.blocks[service] += 1;
        let forced = block == if self.candidate { 2 } else { 1 };
        if previous.is_empty() || !(forced || self.noise.chance(25)) {
            return Ok(Kinds::default());
        }
        let len = self.noise.range(2, 13).min(previous.len() as u64) as usize;
        let start = self.noise.index(previous.len() - len + 1);
        let mut replay: Vec<Record> = previous[start..start + len].to_vec();
        for r in &mut replay {
            r.timestamp_ms += 30_000;
            if self.candidate {
                // A new produce call: Go map iteration orders the headers afresh.
                self.noise.shuffle(&mut r.headers);
            }
        }
        self.writer.write_batch(&replay)?;
        Ok(Kinds::of(&replay))
    }
}

/// Records of a block by kind: events, transaction markers, tombstones.
#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    data: u64,
    markers: u64,
    tombstones: u64,
}

impl Kinds {
    fn of(records: &[Record]) -> Self {
        let mut k = Self::default();
        for r in records {
            // A tombstone keeps the deleted row's key (log compaction needs it); a marker has none.
            match (r.service, &r.key, &r.payload) {
                (Some(_), _, _) => k.data += 1,
                (None, Some(_), None) => k.tombstones += 1,
                (None, _, _) => k.markers += 1,
            }
        }
        k
    }
}

fn audit_record(n: u64, candidate: bool, rng: &mut Rng) -> Record {
    let at = 1_787_220_000_000 + n as i64 * 45_000;
    let headers = if candidate {
        vec![(
            "kafka_topic",
            HeaderValue::Text("staging.acme.audit_log".into()),
        )]
    } else {
        vec![
            ("operation", HeaderValue::Text("insert".into())),
            ("table", HeaderValue::Text("audit_log".into())),
        ]
    };
    Record {
        topic: if candidate {
            AUDIT_CANDIDATE
        } else {
            AUDIT_BASELINE
        },
        partition: rng.index(capture::PARTITIONS as usize) as i32,
        timestamp_ms: at,
        headers,
        key: Some(format!("evt-{n}")),
        payload: Some(format!(
            "{{\"action\":\"login\",\"actor\":\"svc-{}\",\"id\":{n}}}",
            n % 4
        )),
        service: None,
        avro: None,
    }
}

/// A pair's service models, in service order.
type Models = Vec<Box<dyn ServiceModel>>;

/// Generate a pair into `out_dir` (created if needed): both captures and `expected.json`.
pub fn write_pair(out_dir: &Path, spec: &PairSpec) -> io::Result<Manifest> {
    std::fs::create_dir_all(out_dir)?;
    let (baseline_file, candidate_file) = file_names(spec);
    let mut root = Rng::new(spec.seed);
    let (mut models, topics): (Models, Vec<(&str, &str)>) = match spec.pipelines {
        Pipelines::RedpandaConnect => (
            vec![
                Box::new(orders::Orders::new(0)),
                Box::new(payments::Payments::new(1, spec.snapshot_bit_strings)),
                Box::new(inventory::Inventory::new(2)),
            ],
            vec![
                (orders::BASELINE_TOPIC, orders::CANDIDATE_TOPIC),
                (payments::BASELINE_TOPIC, payments::CANDIDATE_TOPIC),
                (inventory::BASELINE_TOPIC, inventory::CANDIDATE_TOPIC),
            ],
        ),
        Pipelines::KafkaConnect => {
            let dir = out_dir.join("schemas");
            std::fs::create_dir_all(&dir)?;
            for (i, text) in shipments::schemas().iter().enumerate() {
                let id = capture::fixture_schema_id(i);
                std::fs::write(dir.join(format!("{id}.avsc")), format!("{text}\n"))?;
            }
            (
                vec![Box::new(shipments::Shipments::new(0))],
                vec![(shipments::BASELINE_TOPIC, shipments::CANDIDATE_TOPIC)],
            )
        }
    };
    // Separate streams: data, and each side's noise, so noise never shifts the data.
    let mut data: Vec<Rng> = (0..models.len() as u64).map(|i| root.fork(i + 1)).collect();
    let models_len = models.len();
    let open = |candidate: bool, writer_rng: Rng, noise: Rng| -> io::Result<Side> {
        let (name, gzip, format) = if candidate {
            (&candidate_file, spec.gzip_candidate, Format::Rpk)
        } else {
            (&baseline_file, spec.gzip_baseline, baseline_format(spec))
        };
        let sink = Sink::create(&out_dir.join(name), gzip)?;
        Ok(Side {
            writer: SideWriter::new(sink, format, writer_rng),
            noise,
            previous: vec![Vec::new(); models_len],
            blocks: vec![0; models_len],
            candidate,
        })
    };
    let mut baseline = open(false, root.fork(10), root.fork(11))?;
    let mut candidate = open(true, root.fork(20), root.fork(21))?;

    let mut manifest = Manifest {
        generator: GENERATOR_VERSION.into(),
        seed: spec.seed,
        drift: spec.drift,
        baseline_file,
        candidate_file,
        ..Manifest::default()
    };
    let mut per: Vec<ServiceManifest> = topics
        .iter()
        .map(|(b, c)| ServiceManifest {
            baseline_topic: (*b).into(),
            candidate_topic: (*c).into(),
            ..ServiceManifest::default()
        })
        .collect();
    let mut audit_rng = root.fork(30);
    let mut round = 0u64;
    loop {
        let mut busy = false;
        for (s, model) in models.iter_mut().enumerate() {
            let m = &mut per[s];
            if m.baseline.events >= spec.events_per_service {
                continue;
            }
            busy = true;
            let block = model.next_block(&mut data[s], spec.drift);
            for k in block.keys {
                m.keys += 1;
                match k.drift {
                    Some(Drift::MissingInCandidate) => m.missing_in_candidate.push(k.key),
                    Some(Drift::ExtraInCandidate) => m.extra_in_candidate.push(k.key),
                    Some(d) => m.mismatched.push(MismatchedKey {
                        key: k.key,
                        reason: d.reason().into(),
                    }),
                    None => {}
                }
                if k.partition_differs
                    && !matches!(
                        k.drift,
                        Some(Drift::MissingInCandidate | Drift::ExtraInCandidate)
                    )
                {
                    m.partition_differing_keys += 1;
                }
            }
            for (counts, records) in [
                (&mut m.baseline, &block.baseline),
                (&mut m.candidate, &block.candidate),
            ] {
                let k = Kinds::of(records);
                counts.records += k.data;
                counts.events += k.data;
                counts.transaction_markers += k.markers;
                counts.tombstones += k.tombstones;
            }
            for (side, counts, records) in [
                (&mut baseline, &mut m.baseline, block.baseline),
                (&mut candidate, &mut m.candidate, block.candidate),
            ] {
                let replayed = side.write_block(s, records)?;
                counts.records += replayed.data;
                counts.duplicates += replayed.data;
                counts.transaction_markers += replayed.markers;
                counts.tombstones += replayed.tombstones;
            }
        }
        if !busy {
            break;
        }
        if round % 5 == 2 {
            // A topic nobody configured: both captures were taken with a topic regex.
            baseline
                .writer
                .write_batch(&[audit_record(round, false, &mut audit_rng)])?;
            candidate
                .writer
                .write_batch(&[audit_record(round, true, &mut audit_rng)])?;
            *manifest
                .ignored_topics
                .entry(AUDIT_BASELINE.into())
                .or_default() += 1;
            *manifest
                .ignored_topics
                .entry(AUDIT_CANDIDATE.into())
                .or_default() += 1;
        }
        round += 1;
    }
    baseline.writer.into_inner().finish()?;
    candidate.writer.into_inner().finish()?;
    for (model, m) in models.iter().zip(per) {
        manifest.services.insert(model.name().into(), m);
    }
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    json.push(b'\n');
    std::fs::write(out_dir.join("expected.json"), json)?;
    Ok(manifest)
}
