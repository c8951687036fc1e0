//! `paritygate bench soak`: weeks of state in minutes. Two services run side by side in one
//! `serve` over the real broker and Postgres: `large` with `--keys` distinct keys per side already
//! stored, `small` with `--small-keys`, both fed the same constant traffic (`--rate` events per
//! second and side, over a working set of `--working-set` keys); one drifting key per minute goes
//! to `large`'s candidate. Every minute prints the service's RSS, the state tables' sizes, each
//! service's evaluation round p50/p95 (from its own histogram), the minute's drift-to-detection
//! latency and the checkpoint lag; then `serve` is restarted under traffic and timed until ready
//! and caught up; last, each target with `met` or `MISSED`.
//!
//! The preload (`store::preload`) writes the rows a checkpoint leaves after one insert per key,
//! an hour older than the traffic; the module says why that stands for having consumed them.

use super::serve::child::ServeChild;
use crate::kafka_tools::{client, create_topics, Endpoint, Tansu};
use crate::store::{parity, preload, EpochKey, Store};
use anyhow::Context;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;
const WINDOW_SECONDS: u64 = 10;
const GRACE_SECONDS: u64 = 5;
const SERVICES: [&str; 2] = ["large", "small"];

#[derive(Debug, clap::Args)]
pub struct SoakBenchArgs {
    /// Distinct keys per side stored for `large` before the traffic starts.
    #[arg(long, default_value_t = 5_000_000)]
    keys: u64,
    /// Distinct keys per side stored for `small` (the round it is compared with).
    #[arg(long, default_value_t = 50_000)]
    small_keys: u64,
    /// Events per second per side and service.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Keys the traffic updates, round robin (a constant working set).
    #[arg(long, default_value_t = 20_000)]
    working_set: u64,
    #[arg(long, default_value_t = 20)]
    minutes: u64,
    #[arg(long, default_value = ".tmp/soak")]
    dir: PathBuf,
    #[arg(long, env = "PARITYGATE_TANSU")]
    tansu: Option<PathBuf>,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
}

fn topic(service: &str, side: &str) -> String {
    format!("soak.{service}.{side}")
}

fn config_toml(brokers: &str, store_url: &str, group: &str) -> String {
    let mut t = String::new();
    for s in SERVICES {
        t.push_str(&format!(
            "[[services]]\nname = \"{s}\"\nbaseline_topics = [\"{}\"]\ncandidate_topics = [\"{}\"]\n\
             key = {{ from = \"message_key\" }}\nevent_time = {{ pointer = \"/ts\" }}\n\
             window_seconds = {WINDOW_SECONDS}\ngrace_seconds = {GRACE_SECONDS}\n\n",
            topic(s, "b"),
            topic(s, "c")
        ));
    }
    t.push_str(&format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\nassignment = \"manual\"\n\n\
         [store]\nurl = \"{store_url}\"\nrewind_minutes = 2\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [serve]\nevaluation_interval_ms = 1000\nidle_partition_ms = 2000\ndedupe_horizon_seconds = 60\n"
    ));
    t
}

/// The producer: `rate` events per second per side and service until `stop`; a drifting
/// candidate event for `large` whenever `drift` is raised (its send time goes to `drifted_at`).
struct Traffic {
    stop: Arc<AtomicBool>,
    drift: Arc<AtomicBool>,
    drifted_at_ms: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
}

impl Traffic {
    fn start(endpoint: &Endpoint, rate: u64, working_set: u64) -> anyhow::Result<Traffic> {
        let producer: BaseProducer = client(endpoint)
            .set("linger.ms", "20")
            .set("compression.type", "zstd")
            .create()?;
        let (stop, drift, drifted_at_ms) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, d, at) = (stop.clone(), drift.clone(), drifted_at_ms.clone());
        let thread = std::thread::spawn(move || -> anyhow::Result<u64> {
            let start = Instant::now();
            let (mut sent, mut drifts) = (0u64, 0u64);
            while !s.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                let now_ms = chrono::Utc::now().timestamp_millis();
                while sent < due {
                    let key = format!("k{}", sent % working_set);
                    let payload = format!(
                        "{{\"id\":{},\"v\":{sent},\"ts\":{now_ms}}}",
                        sent % working_set
                    );
                    for service in SERVICES {
                        for side in ["b", "c"] {
                            send(&producer, &topic(service, side), &key, &payload)?;
                        }
                    }
                    sent += 1;
                }
                if d.swap(false, Ordering::Relaxed) {
                    drifts += 1;
                    let key = format!("drift{drifts}");
                    let b = format!("{{\"id\":\"{key}\",\"v\":1,\"ts\":{now_ms}}}");
                    let c = format!("{{\"id\":\"{key}\",\"v\":2,\"ts\":{now_ms}}}");
                    send(&producer, &topic("large", "b"), &key, &b)?;
                    send(&producer, &topic("large", "c"), &key, &c)?;
                    at.store(u64::try_from(now_ms)?, Ordering::Relaxed);
                }
                producer.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_millis(10));
            }
            producer.flush(Duration::from_secs(30))?;
            Ok(sent)
        });
        Ok(Traffic {
            stop,
            drift,
            drifted_at_ms,
            thread: Some(thread),
        })
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the producer thread panicked"))?,
            None => Ok(0),
        }
    }
}

fn send(producer: &BaseProducer, topic: &str, key: &str, payload: &str) -> anyhow::Result<()> {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Resident memory of a process: all of it (`VmRSS`) and its anonymous part (`RssAnon`: heap
/// and stacks; the rest is mapped files, mostly the executable's own pages).
#[derive(Debug, Clone, Copy, Default)]
struct Resident {
    total: u64,
    anon: u64,
}

impl Resident {
    fn of(pid: u32) -> Resident {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024)
        };
        Resident {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
        }
    }
}

/// Cumulative (upper bound, count) buckets of `service`'s evaluation histogram.
fn evaluation_buckets(child: &ServeChild, service: &str) -> Vec<(f64, f64)> {
    let text = child
        .get_text("/metrics")
        .ok()
        .flatten()
        .unwrap_or_default();
    let prefix =
        format!("paritygate_evaluation_duration_seconds_bucket{{service=\"{service}\",le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, n) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, n.trim().parse().ok()?))
        })
        .collect()
}

/// The `q` quantile of the rounds between two cumulative bucket readings (linear within a bucket).
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let counts: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, n)| *n);
            (*le, n - was)
        })
        .collect();
    let total = counts.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, n) in &counts {
        if n >= want {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let share = if n > lower.1 {
                (want - lower.1) / (n - lower.1)
            } else {
                1.0
            };
            return Some(lower.0 + share * (le - lower.0));
        }
        lower = (le, n);
    }
    None
}

fn status(child: &ServeChild, service: &str) -> Option<Value> {
    child
        .get(&format!("/api/v1/services/{service}"))
        .ok()
        .flatten()
}

/// Whether a service's status shows it evaluated after `since_ms` and counted, on every partition
/// of both sides, an event (event time) from after it.
fn caught_up_since(s: &Value, since_ms: i64) -> bool {
    let evaluated = s["evaluated_at"]
        .as_str()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .is_some_and(|e| e.timestamp_millis() > since_ms);
    let counted = |side: &str| {
        s[side]["partitions"].as_array().is_some_and(|ps| {
            ps.len() == PARTITIONS as usize
                && ps
                    .iter()
                    .all(|p| p["max_event_ms"].as_i64().is_some_and(|m| m > since_ms))
        })
    };
    evaluated && counted("baseline") && counted("candidate")
}

fn lag(s: &Value) -> Option<i64> {
    Some(s["baseline"]["lag"].as_i64()? + s["candidate"]["lag"].as_i64()?)
}

async fn table_sizes(pool: &sqlx::PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT t, pg_total_relation_size(t::regclass) FROM unnest(ARRAY['keys', 'key_parity', \
         'event_log', 'event_ids', 'windows', 'deliveries', 'tallies']) t",
    )
    .fetch_all(pool)
    .await?)
}

fn mib(bytes: impl Into<i128>) -> f64 {
    bytes.into() as f64 / 1_048_576.0
}

pub fn run(args: &SoakBenchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let tansu = super::serve::tansu_program(args.tansu.as_deref())?;
    let broker = Tansu::start(&tansu, &args.dir.join("tansu.log"))?;
    let endpoint = Endpoint::plain(broker.addr());
    let topics: Vec<String> = SERVICES
        .iter()
        .flat_map(|s| [topic(s, "b"), topic(s, "c")])
        .collect();
    runtime.block_on(create_topics(&endpoint, &topics, PARTITIONS))?;
    let name = format!("paritygate_soak_{}", std::process::id());
    let server = args.postgres.trim_end_matches('/').to_owned();
    let result = runtime.block_on(soak(args, &endpoint, &server, &name));
    runtime.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        anyhow::Ok(())
    })?;
    drop(broker);
    result
}

async fn soak(
    args: &SoakBenchArgs,
    endpoint: &Endpoint,
    server: &str,
    name: &str,
) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .context("connecting to Postgres")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let store_url = format!("{server}/{name}");
    let store = Store::connect_lazy(&store_url, 2)?;
    store.migrate().await?;
    if !store.autovacuum_on().await? {
        println!("postgres: autovacuum is OFF on this server: dead rows pile up and rounds slow down as the soak goes on (a production server runs it)");
    }
    let names: Vec<String> = SERVICES.iter().map(|s| (*s).to_owned()).collect();
    store.register_services(&names).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let t = Instant::now();
    for (service, keys) in [("large", args.keys), ("small", args.small_keys)] {
        let id = store.service_id(service).context("registered")?;
        preload::matched_keys(&store.pool, id, keys, now_ms - 3_600_000).await?;
    }
    // What autovacuum does to a table that grew this much before traffic reaches it (its insert
    // threshold): visibility map and statistics.
    sqlx::query("VACUUM (ANALYZE) keys, tallies")
        .execute(&store.pool)
        .await?;
    println!(
        "preload:  {} + {} keys per side stored in {:.1} s",
        args.keys,
        args.small_keys,
        t.elapsed().as_secs_f64()
    );
    for service in SERVICES {
        let id = store.service_id(service).context("registered")?;
        let t = Instant::now();
        parity::refresh(&store.pool, EpochKey::first(id)).await?;
        println!(
            "parity:   {service} built in {:.1} s (once per epoch: every key classified)",
            t.elapsed().as_secs_f64()
        );
    }
    let config = args.dir.join("soak.toml");
    std::fs::write(&config, config_toml(&endpoint.addr, &store_url, name))?;
    let log = args.dir.join("serve.log");
    let mut child = ServeChild::start(&config, &log)?;
    let traffic = Traffic::start(endpoint, args.rate, args.working_set)?;
    println!(
        "traffic:  {} events/s per side and service ({} keys round robin), one drifting key per minute on large",
        args.rate, args.working_set
    );
    println!("min  rss (anon) MiB  tables MiB (keys parity log ids windows deliveries)   large p50/p95 ms  small p50/p95 ms  drift s  lag");
    let mut rounds: Vec<[Option<f64>; 4]> = Vec::new();
    let mut latencies = Vec::new();
    let (mut sizes_at_5, mut sizes_end) = (None, None);
    let mut detected = 0u64;
    for minute in 1..=args.minutes {
        let before = SERVICES.map(|s| evaluation_buckets(&child, s));
        traffic.drift.store(true, Ordering::Relaxed);
        let minute_end = Instant::now() + Duration::from_secs(60);
        let mut latency = None;
        while Instant::now() < minute_end {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if latency.is_some() {
                continue;
            }
            let Some(s) = status(&child, "large") else {
                continue;
            };
            let mismatched = s["keys"]["settled"]["mismatched"].as_u64().unwrap_or(0);
            let at = traffic.drifted_at_ms.load(Ordering::Relaxed);
            if at > 0 && mismatched > detected {
                detected = mismatched;
                let now = chrono::Utc::now().timestamp_millis();
                latency = Some((now - at as i64) as f64 / 1000.0);
            }
        }
        let after = SERVICES.map(|s| evaluation_buckets(&child, s));
        let r = [
            quantile(&before[0], &after[0], 0.5),
            quantile(&before[0], &after[0], 0.95),
            quantile(&before[1], &after[1], 0.5),
            quantile(&before[1], &after[1], 0.95),
        ];
        let sizes = table_sizes(&store.pool).await?;
        let now_rss = Resident::of(child.pid());
        let lag_now = status(&child, "large").as_ref().and_then(lag);
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.0}", v * 1000.0));
        println!(
            "{minute:>3}  {:>6.1} ({:>5.1})  {}   {:>7}/{:<7}  {:>7}/{:<7}  {:>6}  {}",
            mib(now_rss.total),
            mib(now_rss.anon),
            sizes
                .iter()
                .take(6)
                .map(|(_, b)| format!("{:.0}", mib(*b)))
                .collect::<Vec<_>>()
                .join(" "),
            ms(r[0]),
            ms(r[1]),
            ms(r[2]),
            ms(r[3]),
            latency.map_or("-".into(), |l| format!("{l:.1}")),
            lag_now.map_or("-".into(), |l| l.to_string()),
        );
        if minute == 5.min(args.minutes) {
            sizes_at_5 = Some((now_rss, sizes.clone()));
        }
        sizes_end = Some((now_rss, sizes));
        rounds.push(r);
        latencies.push(latency);
    }
    // Restart under traffic: stopped (it drains and checkpoints), started again, timed until it
    // is ready, has evaluated both services and has counted, on every partition, an event
    // produced after the restart began (each partition is read in order, so everything produced
    // before it was consumed). Lag is no criterion under constant traffic: it is never 0 for
    // long, and the test broker's high watermark trails by a batch.
    let t = Instant::now();
    let restart_ms = chrono::Utc::now().timestamp_millis();
    child.stop(Duration::from_secs(30))?;
    child = ServeChild::start(&config, &log)?;
    let restart = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ready = child.get("/readyz").ok().flatten().is_some();
        let caught_up = SERVICES
            .iter()
            .all(|s| status(&child, s).is_some_and(|v| caught_up_since(&v, restart_ms)));
        if ready && caught_up {
            break Some(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(300) {
            break None;
        }
    };
    // The figures are taken: a producer that cannot flush its tail must not hide them.
    match traffic.finish() {
        Ok(sent) => println!("sent:     {sent} events per side and service"),
        Err(e) => eprintln!("the producer did not finish cleanly: {e:#}"),
    }
    child.stop(Duration::from_secs(30))?;

    report(args, &rounds, &latencies, restart, sizes_at_5, sizes_end);
    Ok(())
}

type Sizes = Option<(Resident, Vec<(String, i64)>)>;

fn report(
    args: &SoakBenchArgs,
    rounds: &[[Option<f64>; 4]],
    latencies: &[Option<f64>],
    restart: Option<f64>,
    at_5: Sizes,
    end: Sizes,
) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    // Round times over the whole soak: the median of the per-minute p50s, the worst p95.
    let median = |i: usize| -> Option<f64> {
        let mut v: Vec<f64> = rounds.iter().filter_map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let worst = |i: usize| {
        rounds
            .iter()
            .filter_map(|r| r[i])
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    match (median(0), median(2)) {
        (Some(large), Some(small)) => {
            let ratio = large / small.max(1e-9);
            println!(
                "target:   round at {} keys {:.0} ms (p95 {:.0}) vs at {} keys {:.0} ms (p95 {:.0}): ratio {ratio:.2} (<= 2) {}",
                args.keys,
                large * 1000.0,
                worst(1).unwrap_or(0.0) * 1000.0,
                args.small_keys,
                small * 1000.0,
                worst(3).unwrap_or(0.0) * 1000.0,
                verdict(ratio <= 2.0)
            );
        }
        _ => println!(
            "target:   round at {} keys vs at {} keys: no rounds observed on both MISSED",
            args.keys, args.small_keys
        ),
    }
    let bound = (WINDOW_SECONDS + GRACE_SECONDS + 5) as f64;
    let seen: Vec<f64> = latencies.iter().flatten().copied().collect();
    let max = seen.iter().copied().fold(0.0, f64::max);
    println!(
        "target:   drift to detection: {} of {} drifts seen, worst {max:.1} s (<= window {WINDOW_SECONDS} + grace {GRACE_SECONDS} + 5 = {bound} s) {}",
        seen.len(),
        latencies.len(),
        verdict(seen.len() == latencies.len() && max <= bound)
    );
    if let (Some((rss5, s5)), Some((rss_end, s_end))) = (at_5, end) {
        let growth = |a: u64, b: u64| (b as f64 - a as f64) / a.max(1) as f64 * 100.0;
        let total = growth(rss5.total, rss_end.total);
        println!(
            "target:   RSS minute 5 {:.1} MiB -> end {:.1} MiB: {total:+.1} % (<= 10 %) {}",
            mib(rss5.total),
            mib(rss_end.total),
            verdict(args.minutes >= 5 && total <= 10.0)
        );
        println!(
            "memory:   of which anonymous (heap, stacks) {:.1} MiB -> {:.1} MiB: {:+.1} %; the rest is mapped files (the executable)",
            mib(rss5.anon),
            mib(rss_end.anon),
            growth(rss5.anon, rss_end.anon)
        );
        let deltas: Vec<String> = s5
            .iter()
            .zip(&s_end)
            .map(|((t, a), (_, b))| format!("{t} {:+.1}", mib(b - a)))
            .collect();
        println!("disk:     minute 5 -> end, MiB: {}", deltas.join(", "));
    }
    match restart {
        Some(s) => println!(
            "target:   restart with {} keys per side stored: ready and caught up in {s:.1} s (<= 30 s) {}",
            args.keys,
            verdict(s <= 30.0)
        ),
        None => println!(
            "target:   restart with {} keys per side stored: not caught up within 300 s MISSED",
            args.keys
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_come_from_the_buckets_filled_in_between() {
        let before = [(0.1, 5.0), (1.0, 5.0), (f64::INFINITY, 5.0)];
        // Ten more rounds: four under 0.1 s, six between 0.1 and 1 s.
        let after = [(0.1, 9.0), (1.0, 15.0), (f64::INFINITY, 15.0)];
        let p50 = quantile(&before, &after, 0.5).unwrap();
        assert!((p50 - 0.25).abs() < 1e-9, "{p50}");
        let p95 = quantile(&before, &after, 0.95).unwrap();
        assert!((p95 - 0.925).abs() < 1e-9, "{p95}");
        assert_eq!(quantile(&after, &after, 0.5), None);
    }
}
