//! `paritygate bench [diff]`: engine throughput and memory against the floor, on generated
//! captures (`bench serve`, the live service against a bare consumer, is in `serve/`; `bench
//! soak`, a long run over a large stored state, in `soak.rs`).
//!
//! The floor reads the same files and, per line, only parses the record and its payload into
//! `serde_json::Value` and BLAKE3-hashes the payload bytes. The engine is the real `diff` (both
//! passes, report included), run in a child process so its peak memory is its own.

mod serve;
mod soak;

use crate::config::Config;
use crate::generate::{file_names, write_pair, PairSpec};
use crate::replay::{replay, ReplayOptions};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The config matching the generator's topics and shapes (the shipped fixtures' config).
const BENCH_CONFIG: &str = include_str!("../../../fixtures/paritygate.toml");

/// `paritygate bench` alone is `bench diff` (its arguments are accepted without the subcommand).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    diff: DiffBenchArgs,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// `diff` (capture replay) against the floor of parsing and hashing the same files.
    Diff(DiffBenchArgs),
    /// `serve` (consume, checkpoint, settle) against a bare Kafka consumer of the same topics.
    Serve(serve::ServeBenchArgs),
    /// A long dual run in minutes: millions of keys stored, constant traffic with one drifting
    /// key per minute; RSS, state sizes, round times, drift latency, a restart; targets met or not.
    Soak(soak::SoakBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct DiffBenchArgs {
    /// Distinct events per side (spread over the generator's three services).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Where to write the captures (reused when present with the same size and seed).
    #[arg(long, default_value = ".tmp/bench")]
    dir: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Inject drift, so the second pass and explanations are part of the measurement.
    #[arg(long)]
    drift: bool,
}

/// What the engine child reports back.
#[derive(Debug, Serialize, Deserialize)]
pub struct EngineRun {
    seconds: f64,
    peak_rss_bytes: u64,
    records: u64,
    distinct_events: u64,
}

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    #[arg(long)]
    config: PathBuf,
    captures: Vec<PathBuf>,
}

/// Hidden subcommand: run the engine once and print an [`EngineRun`] as JSON.
pub fn engine(args: &EngineArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let options = ReplayOptions {
        strict: false,
        max_examples: 20,
        progress: false,
        schemas: Default::default(),
        range: Default::default(),
    };
    let start = Instant::now();
    let report = replay(&config, &args.captures, &options, &mut |_| {})?;
    let seconds = start.elapsed().as_secs_f64();
    let (records, distinct_events) = report.services.iter().fold((0, 0), |(r, e), s| {
        (
            r + s.baseline.records + s.candidate.records,
            e + s.baseline.events + s.candidate.events,
        )
    });
    let run = EngineRun {
        seconds,
        peak_rss_bytes: peak_rss()?,
        records,
        distinct_events,
    };
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib * 1024)
}

/// The floor: parse each record and its payload into `Value`, BLAKE3 the payload bytes.
fn floor(files: &[PathBuf]) -> anyhow::Result<(u64, f64)> {
    let start = Instant::now();
    let mut lines = 0u64;
    let mut sink = 0u8;
    for path in files {
        crate::capture::for_each_line(path, Default::default(), |_, line| {
            lines += 1;
            if let Ok(record) = serde_json::from_slice::<Value>(line) {
                if let Some(Value::String(payload)) =
                    record.get("payload").or_else(|| record.get("value"))
                {
                    if let Ok(parsed) = serde_json::from_str::<Value>(payload) {
                        sink ^= u8::from(parsed.is_object());
                    }
                    sink ^= blake3::hash(payload.as_bytes()).as_bytes()[0];
                }
            }
            true
        })?;
    }
    std::hint::black_box(sink);
    Ok((lines, start.elapsed().as_secs_f64()))
}

/// The capture pair of `events` distinct events per side under `dir` (generated unless already
/// there), and the config matching it.
pub(super) fn generate(
    dir: &Path,
    events: u64,
    seed: u64,
    drift: bool,
) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let dir = dir.join(format!(
        "{events}-{seed}{}",
        if drift { "-drift" } else { "" }
    ));
    let spec = PairSpec::new(seed, events.div_ceil(3), drift);
    let (b, c) = file_names(&spec);
    let files = vec![dir.join(b), dir.join(c)];
    if !files.iter().all(|f| f.exists()) {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        eprintln!(
            "generating {events} events per side into {} …",
            dir.display()
        );
        let t = Instant::now();
        write_pair(&dir, &spec)?;
        eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());
    }
    let config = dir.join("paritygate.toml");
    std::fs::write(&config, BENCH_CONFIG)?;
    Ok((config, files))
}

fn run_engine(config: &Path, files: &[PathBuf]) -> anyhow::Result<EngineRun> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("bench-engine")
        .arg("--config")
        .arg(config)
        .args(files)
        .output()?;
    if !out.status.success() {
        bail!(
            "engine run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.command {
        None => run_diff(&args.diff),
        Some(BenchCommand::Diff(diff)) => run_diff(diff),
        Some(BenchCommand::Serve(serve)) => serve::run(serve),
        Some(BenchCommand::Soak(soak)) => soak::run(soak),
    }
}

fn run_diff(args: &DiffBenchArgs) -> anyhow::Result<()> {
    let (config, files) = generate(&args.dir, args.events, args.seed, args.drift)?;
    let bytes: u64 = crate::capture::total_size(&files);
    let mb = bytes as f64 / 1e6;
    let (floor_lines, floor_s) = floor(&files)?;
    let engine = run_engine(&config, &files)?;
    let engine_rate = engine.records as f64 / engine.seconds;
    let floor_rate = floor_lines as f64 / floor_s;
    let per_event = engine.peak_rss_bytes as f64 / engine.distinct_events.max(1) as f64;
    let ratio = engine_rate / floor_rate;
    println!(
        "captures: {} files, {:.1} MB, {} records, {} distinct events (both sides)",
        files.len(),
        mb,
        engine.records,
        engine.distinct_events
    );
    println!(
        "engine:   {:.2} s  {:>10.0} records/s  {:>7.1} MB/s",
        engine.seconds,
        engine_rate,
        mb / engine.seconds
    );
    println!("floor:    {:.2} s  {:>10.0} records/s  {:>7.1} MB/s  (parse record + payload to Value, BLAKE3 payload)", floor_s, floor_rate, mb / floor_s);
    println!(
        "ratio:    {ratio:.2}  (engine/floor; target >= 0.5) {}",
        if ratio >= 0.5 { "OK" } else { "MISSED" }
    );
    println!(
        "memory:   peak {:.1} MiB = {per_event:.1} bytes per distinct event (target <= 128) {}",
        engine.peak_rss_bytes as f64 / 1048576.0,
        if per_event <= 128.0 { "OK" } else { "MISSED" }
    );
    Ok(())
}
