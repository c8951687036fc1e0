//! `paritygate generate`: live dual-run traffic for the services of a config, paced at `--rate`
//! events per second per service, to the broker and (for services with `[services.targets]`) to
//! both sinks' tables, with the `--drift` asked for. The edge: runtime, pacing, summary.

use super::gate::parse_duration;
use crate::config::Config;
use crate::generate::live::produce::{create_topics, register_schemas, LiveProducer};
use crate::generate::live::target::Targets;
use crate::generate::live::{parse_drift_arg, DriftKind, Live, LiveSpec};
use crate::model::Side;
use anyhow::{bail, Context};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The paritygate config naming the services, their topics and targets (`PARITYGATE_…`
    /// overrides apply, e.g. `PARITYGATE_KAFKA_BROKERS`).
    #[arg(long, short)]
    config: PathBuf,
    /// Bootstrap servers instead of `[kafka] brokers` (a side with brokers of its own in
    /// `[kafka.baseline]` / `[kafka.candidate]` keeps them).
    #[arg(long)]
    brokers: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Baseline events per second per service.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Stop after this long (`30s`, `5m`, …).
    #[arg(long, value_parser = parse_duration, conflicts_with = "count")]
    duration: Option<Duration>,
    /// Stop after about this many baseline events per service (default 2000 without --duration).
    #[arg(long)]
    count: Option<u64>,
    /// Drift to inject: `SERVICE=KIND[,KIND…]`, kinds dropped, extra, altered,
    /// sink-drops-deletes, stale-update, slow-candidate. Repeatable.
    #[arg(long, value_name = "SERVICE=KINDS")]
    drift: Vec<String>,
    /// Keys per thousand touched by each drift kind on a drifting service.
    #[arg(long, default_value_t = 50)]
    drift_per_mille: u64,
    /// Postgres URL for every target table, instead of each `targets.*.url_env` variable.
    #[arg(long, alias = "targets", env = "PARITYGATE_TARGETS_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    baseline_events: u64,
    baseline_records: u64,
    candidate_records: u64,
    baseline_rows: u64,
    candidate_rows: u64,
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of events per second");
    }
    if args.drift_per_mille > 1000 {
        bail!("--drift-per-mille must be at most 1000");
    }
    let mut config = Config::load_with_env(&args.config)?;
    if let Some(brokers) = &args.brokers {
        config.kafka.brokers.clone_from(brokers);
    }
    let mut drift: BTreeMap<String, BTreeSet<DriftKind>> = BTreeMap::new();
    for raw in &args.drift {
        let (service, kinds) = parse_drift_arg(raw)?;
        drift.entry(service).or_default().extend(kinds);
    }
    let spec = LiveSpec {
        seed: args.seed,
        drift,
        drift_per_mille: args.drift_per_mille,
    };
    let live = Live::new(&config, &spec)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(generate(args, &config, live))
}

async fn generate(args: &GenerateArgs, config: &Config, mut live: Live) -> anyhow::Result<()> {
    // Targets first: a missing URL variable is reported before any network wait.
    let targets = Targets::open(config, args.database_url.as_deref()).await?;
    create_topics(config).await?;
    let schema_ids = register_schemas(config).await?;
    let producer = LiveProducer::new(config, schema_ids)?;
    let count = args
        .count
        .or(args.duration.is_none().then_some(2000))
        .unwrap_or(u64::MAX);
    let deadline = args.duration.map(|d| Instant::now() + d);
    let n = live.service_count();
    let mut totals = vec![Totals::default(); n];
    let started = Instant::now();
    loop {
        let mut slowest: Option<u64> = None;
        for (s, t) in totals.iter_mut().enumerate() {
            if t.baseline_events >= count || deadline.is_some_and(|d| Instant::now() >= d) {
                continue;
            }
            let batch = live.next_batch(s);
            producer.send(&batch)?;
            targets
                .apply(config, s, &batch.baseline_rows, &batch.candidate_rows)
                .await?;
            t.baseline_events += batch.baseline_events;
            t.baseline_records += batch
                .records
                .iter()
                .filter(|r| r.0 == Side::Baseline)
                .count() as u64;
            t.candidate_records += batch
                .records
                .iter()
                .filter(|r| r.0 == Side::Candidate)
                .count() as u64;
            t.baseline_rows += batch.baseline_rows.len() as u64;
            t.candidate_rows += batch.candidate_rows.len() as u64;
            slowest = Some(slowest.map_or(t.baseline_events, |m| m.min(t.baseline_events)));
        }
        let Some(slowest) = slowest else { break };
        // Pace by the service that is furthest behind, so every service keeps roughly `rate`.
        let due = Duration::from_secs_f64(slowest as f64 / args.rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    producer.flush().context("flushing the producer")?;
    for (s, t) in totals.iter().enumerate() {
        println!(
            "{}: {} baseline events ({} records), {} candidate records, {} baseline / {} candidate row changes{}",
            live.service_name(s),
            t.baseline_events,
            t.baseline_records,
            t.candidate_records,
            t.baseline_rows,
            t.candidate_rows,
            if targets.is_empty() { " (no targets configured)" } else { "" },
        );
    }
    eprintln!("generated in {:.1?}", started.elapsed());
    Ok(())
}
