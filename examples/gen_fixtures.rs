//! Regenerate the checked-in fixtures, or write a large pair for benchmarks.
//!
//! `gen_fixtures [ROOT]` writes `ROOT/clean` and `ROOT/drift` (default `fixtures`) from
//! `paritygate::generate::fixture_specs()`; `gen_fixtures --events N [--seed S] [--drift] [--gzip] OUT`
//! writes one pair of about N events per service into OUT.

use paritygate::generate::{fixture_specs, write_pair, PairSpec};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--events") {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        let events: u64 = value("--events")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(1_000_000);
        let seed: u64 = value("--seed").map(|v| v.parse()).transpose()?.unwrap_or(1);
        let out = PathBuf::from(
            args.last()
                .filter(|a| !a.starts_with("--"))
                .map_or("bench-pair", String::as_str),
        );
        let drift = args.iter().any(|a| a == "--drift");
        let gzip = args.iter().any(|a| a == "--gzip");
        let spec = PairSpec {
            gzip_baseline: gzip,
            gzip_candidate: gzip,
            ..PairSpec::new(seed, events, drift)
        };
        let started = Instant::now();
        let manifest = write_pair(&out, &spec)?;
        let records: u64 = manifest.services.values().map(|s| s.baseline.records).sum();
        let candidate: u64 = manifest
            .services
            .values()
            .map(|s| s.candidate.records)
            .sum();
        eprintln!(
            "{}: {records} baseline + {candidate} candidate records in {:.1?}",
            out.display(),
            started.elapsed()
        );
        return Ok(());
    }
    let root = PathBuf::from(args.first().map_or("fixtures", String::as_str));
    for (dir, spec) in fixture_specs() {
        let manifest = write_pair(&root.join(dir), &spec)?;
        eprintln!(
            "{}/{dir}: {} drift keys",
            root.display(),
            manifest.drift_keys()
        );
    }
    Ok(())
}
