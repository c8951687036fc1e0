//! `paritygate fixtures`: regenerate the checked-in fixtures, or write a large capture pair.

use crate::generate::{fixture_specs, write_pair, PairSpec, Pipelines};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct FixturesArgs {
    /// Output root: `ROOT/clean` and `ROOT/drift` (with --events: the pair's directory).
    #[arg(default_value = "fixtures")]
    out: PathBuf,
    /// Write one pair of about this many baseline events per service instead of the fixtures.
    #[arg(long)]
    events: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inject the known drift (recorded in the pair's expected.json).
    #[arg(long)]
    drift: bool,
    /// Gzip both captures.
    #[arg(long)]
    gzip: bool,
    /// With --events: the Kafka Connect pipeline (`shipments`, Debezium Avro vs Bento JSON,
    /// compared under `fixtures/debezium/paritygate.toml` with the pair's `schemas/`).
    #[arg(long, requires = "events")]
    kafka_connect: bool,
}

pub fn run(args: &FixturesArgs) -> anyhow::Result<()> {
    let Some(events) = args.events else {
        for (dir, spec) in fixture_specs() {
            let manifest = write_pair(&args.out.join(dir), &spec)?;
            eprintln!(
                "{}/{dir}: {} drift keys",
                args.out.display(),
                manifest.drift_keys()
            );
        }
        return Ok(());
    };
    let spec = PairSpec {
        pipelines: if args.kafka_connect {
            Pipelines::KafkaConnect
        } else {
            Pipelines::RedpandaConnect
        },
        gzip_baseline: args.gzip,
        gzip_candidate: args.gzip,
        snapshot_bit_strings: true,
        ..PairSpec::new(args.seed, events, args.drift)
    };
    let started = Instant::now();
    let manifest = write_pair(&args.out, &spec)?;
    let (b, c) = manifest.services.values().fold((0, 0), |(b, c), s| {
        (b + s.baseline.records, c + s.candidate.records)
    });
    eprintln!(
        "{}: {b} baseline + {c} candidate records in {:.1?}",
        args.out.display(),
        started.elapsed()
    );
    Ok(())
}
