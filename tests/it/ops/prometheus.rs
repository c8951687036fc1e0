//! The dashboards and alerts against a real Prometheus scraping a real paritygate.
//!
//! One in-process `paritygate serve` consumes, over the real broker, the drift fixtures (services
//! `orders`, `payments`, `inventory`: every one fails) and the clean fixtures under other topics
//! (services `clean_orders`, `clean_payments`, `clean_inventory`: every one passes), plus a few
//! records no service can compare. Prometheus 2.x (Debian's package) scrapes it every second on
//! loopback and evaluates `dashboards/alerts.yml`. Then:
//! - `promtool check metrics` accepts the scraped `/metrics`, every metric has `# HELP`, and labels
//!   come from a bounded vocabulary;
//! - **every** PromQL expression of the dashboards and of the rules (read from the files) parses and
//!   returns data through Prometheus' HTTP API, except the ones listed below with their reason;
//! - every metric selector inside those expressions matches series (a typo in a metric or label
//!   name fails even where the whole expression is legitimately empty);
//! - Prometheus evaluates every rule without error, and the alerts that are active are exactly the
//!   drift-side ones.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::expect::caught_up;
use crate::support::promql::{
    dashboard_queries, prometheus_program, rule_queries, run_promtool, selectors, Query,
};
use crate::support::traffic::{create_topics, fixture_config, Fixture, FIXTURE_PARTITIONS};
use crate::support::{fixture, free_port, wait_until};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Metrics this run's config does not produce, and what would: every query on them is legitimately
/// empty here (their behaviour is covered by `serve_rows` and `signoff_api`; the promtool unit tests
/// cover their alerts). The test says so if one starts returning data.
const PENDING: [(&str, &str); 7] = [
    (
        "paritygate_row_diff_ratio",
        "a service with [services.targets]",
    ),
    (
        "paritygate_row_diff_ratio_upper_bound",
        "a service with [services.targets]",
    ),
    (
        "paritygate_rows_sampled_total",
        "a service with [services.targets]",
    ),
    (
        "paritygate_rows_differing",
        "a service with [services.targets]",
    ),
    ("paritygate_wave_signed_off", "[[waves]] in the config"),
    ("paritygate_wave_signoff_stale", "[[waves]] in the config"),
    ("paritygate_service_info", "[[waves]] in the config"),
];

/// Queries on existing metrics that are legitimately empty in this run (healthy paritygate, caught
/// up), with the reason. Their selectors still have to match series.
const EMPTY_IN_THIS_RUN: [(&str, &str); 9] = [
    (
        "alerts.yml: ParitygateCandidateDelayRegression",
        "healthy: the candidate delivers within seconds of the baseline (the metric itself has data)",
    ),
    (
        "alerts.yml: ParitygateCheckpointsFailing",
        "healthy: no checkpoint failed",
    ),
    (
        "alerts.yml: ParitygateConsumerStalled",
        "healthy: every record consumed, lag 0",
    ),
    (
        "alerts.yml: ParitygateCandidateBehindBaseline",
        "healthy: both sides' captures end at the same event time",
    ),
    ("alerts.yml: ParitygateDown", "healthy: the target is up"),
    (
        "alerts.yml: ParitygateKafkaLogReset",
        "healthy: no topic was recreated (the counter itself is exported at 0)",
    ),
    (
        "alerts.yml: ParitygateNotReady",
        "healthy: broker and database reachable",
    ),
    (
        "alerts.yml: ParitygateIngestionStalled",
        "healthy: every side is being counted (the gauge itself is exported at 0)",
    ),
    (
        "alerts.yml: ParitygateVerdictStale",
        "healthy: every verdict is renewed (the gauge itself is exported at 0)",
    ),
];

/// The alerts the drift side (and the junk records) make active.
const ACTIVE: [&str; 3] = [
    "ParitygateDriftDetected",
    "ParitygateGateFailed",
    "ParitygateUnparseableMessages",
];

const DRIFT: [&str; 3] = ["orders", "payments", "inventory"];
const CLEAN_PREFIX: &str = "clean_";
/// Records no service can compare, produced to the drift `inventory` baseline.
const JUNK: usize = 3;

/// Labels paritygate's metrics may carry: every one from a bounded vocabulary (config, enums,
/// topics and partitions, the build's two versions), never a key, an offset or free text.
const BOUNDED_LABELS: [&str; 19] = [
    "service",
    "side",
    "operation",
    "reason",
    "kind",
    "state",
    "result",
    "topic",
    "partition",
    "verdict",
    "dependency",
    "le",
    "wave",
    "pointer",
    "quantile",
    "version",
    "canonical_version",
    // The replica's name (`paritygate_evaluated_services`): one per process.
    "replica",
    // The state tables retention prunes (`paritygate_pruned_rows_total`): three constants.
    "table",
];

/// A Prometheus server on loopback with its own data directory; killed on `Drop`.
struct Prometheus {
    child: Child,
    base: String,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prometheus({})", self.base)
    }
}

impl Prometheus {
    /// Scrape `target` as job `paritygate` every second and evaluate `dashboards/alerts.yml`.
    async fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = crate::support::root().join("dashboards/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: paritygate\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules = rules.display()
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(prometheus_program())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prometheus (scripts/setup installs Debian's package): {e}")
            });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .expect("http client");
        let prometheus = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client,
            dir,
        };
        let ready = format!("{}/-/ready", prometheus.base);
        wait_until("prometheus is ready", Duration::from_secs(20), || async {
            match prometheus.client.get(&ready).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{}", r.status())),
                Err(e) => Err(format!("{e}; log: {}", prometheus.log())),
            }
        })
        .await;
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/{path}` with `params`: the `data` of a `success`, else the error.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(params)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let body: Value = response.json().await.map_err(|e| format!("{path}: {e}"))?;
        match body["status"].as_str() {
            Some("success") => Ok(body["data"].clone()),
            _ => Err(format!("{}: {}", body["errorType"], body["error"])),
        }
    }

    /// An instant query: the result vector (a scalar counts as one sample).
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("query", &[("query", expr)]).await?;
        match data["resultType"].as_str() {
            Some("vector" | "matrix") => Ok(data["result"].as_array().cloned().unwrap_or_default()),
            Some("scalar" | "string") => Ok(vec![data["result"].clone()]),
            other => Err(format!("unexpected result type {other:?}")),
        }
    }

    /// The series `selector` matches.
    async fn series(&self, selector: &str) -> Result<Vec<Value>, String> {
        let data = self.api("series", &[("match[]", selector)]).await?;
        Ok(data.as_array().cloned().unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixtures' services twice: as they are (drift traffic) and renamed `clean_*` on topics
/// prefixed `clean.` (clean traffic).
fn services_toml() -> String {
    let fixtures = std::fs::read_to_string(fixture("paritygate.toml")).expect("paritygate.toml");
    let clean = fixtures
        .replace("name = \"", &format!("name = \"{CLEAN_PREFIX}"))
        .replace("\"dev.acme.", "\"clean.dev.acme.")
        .replace("\"bento.dev.acme.", "\"clean.bento.dev.acme.");
    format!("{fixtures}\n{clean}")
}

fn clean_topic(topic: &str) -> String {
    format!("clean.{topic}")
}

fn is_pending(metric: &str) -> Option<&'static str> {
    PENDING
        .iter()
        .find(|(m, _)| *m == metric)
        .map(|(_, feature)| *feature)
}

/// Why `q` may be empty, if it may.
fn empty_reason(q: &Query) -> Option<String> {
    if let Some((metric, feature)) = selectors(&q.raw)
        .iter()
        .find_map(|s| is_pending(s.family()).map(|f| (s.family().to_owned(), f)))
    {
        return Some(format!(
            "{metric}: legitimately empty until {feature} lands"
        ));
    }
    EMPTY_IN_THIS_RUN
        .iter()
        .find(|(id, _)| *id == q.id())
        .map(|(_, reason)| (*reason).to_owned())
}

fn label_set(result: &[Value], label: &str) -> BTreeSet<String> {
    result
        .iter()
        .filter_map(|s| s["metric"][label].as_str().map(str::to_owned))
        .collect()
}

/// The names of the alerts Prometheus has pending or firing.
async fn active_alerts(prometheus: &Prometheus) -> Result<BTreeSet<String>, String> {
    let alerts = prometheus.api("alerts", &[]).await?;
    Ok(alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
        .collect())
}

async fn scrape(addr: SocketAddr) -> String {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// `# HELP` for every `# TYPE`, only bounded label names, no sample without its family.
fn check_exposition(text: &str) {
    let mut helped = BTreeSet::new();
    let mut typed = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!help.trim().is_empty(), "{name}: empty HELP");
            helped.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                name.starts_with("paritygate_"),
                "{name}: not prefixed paritygate_"
            );
            if let Some(labels) = line.split_once('{').and_then(|(_, l)| l.split_once('}')) {
                for pair in labels.0.split("\",").filter(|p| !p.is_empty()) {
                    let label = pair.split('=').next().unwrap().trim_matches(',');
                    assert!(
                        BOUNDED_LABELS.contains(&label),
                        "{name}: label `{label}` is not in the bounded vocabulary"
                    );
                }
            }
        }
    }
    assert_eq!(helped, typed, "every metric family has # HELP and # TYPE");
    assert!(typed.len() >= 12, "only {} metric families", typed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_query_returns_data_from_a_real_prometheus() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    let config = fixture_config();
    create_topics(&broker, &config, FIXTURE_PARTITIONS).await;
    for topic in crate::support::traffic::topics(&config) {
        broker
            .create_topic(&clean_topic(&topic), FIXTURE_PARTITIONS)
            .await;
    }
    let db = TestDb::create().await;
    let app_config = AppConfig::with_services(&services_toml(), &broker, &db).config();
    let app = InProcess::start(app_config).await;
    let prometheus = Prometheus::start(app.addr).await;
    // A first scrape before any traffic: counters start at 0 in Prometheus, so increases show.
    wait_until(
        "prometheus has scraped paritygate",
        Duration::from_secs(10),
        || async {
            match prometheus
                .query(r#"up{job="paritygate"} == 1"#)
                .await?
                .len()
            {
                1 => Ok(()),
                n => Err(format!("{n} targets up")),
            }
        },
    )
    .await;

    // Traffic: drift as it is, clean under its own topics, junk on the drift inventory baseline.
    let drift = Fixture::load("drift");
    let clean = Fixture::load("clean");
    let mut records: Vec<Record> = drift.records.clone();
    records.extend(clean.records.iter().map(|r| Record {
        topic: clean_topic(&r.topic),
        ..r.clone()
    }));
    records.extend((0..JUNK).map(|i| Record {
        topic: "dev.acme.public.inventory".into(),
        partition: 0,
        key: Some(format!("junk-{i}").into_bytes()),
        headers: Vec::new(),
        payload: Some(b"this is not JSON".to_vec()),
        timestamp_ms: None,
    }));
    broker.produce_all(&records, Batching::OnePerRecord).await;

    // Caught up: every service has consumed everything and has its verdict.
    let mut expected = drift.expected().services;
    for s in &mut expected {
        if s.service == "inventory" {
            s.baseline.records += JUNK as u64;
        }
    }
    expected.extend(clean.expected().services.into_iter().map(|mut s| {
        s.service = format!("{CLEAN_PREFIX}{}", s.service);
        s
    }));
    wait_until(
        "every service has consumed and settled all records",
        Duration::from_secs(45),
        || async {
            for want in &expected {
                caught_up(&app.api.service(&want.service).await?, want)?;
            }
            Ok(())
        },
    )
    .await;
    // ... and Prometheus has scraped that state and evaluated the rules on it.
    wait_until(
        "prometheus sees 3 failing and 3 passing gates, the junk, zero lag and only the drift alerts",
        Duration::from_secs(20),
        || async {
            let fail = prometheus
                .query(r#"paritygate_gate_verdict{verdict="fail"} == 1"#)
                .await?;
            let pass = prometheus
                .query(r#"paritygate_gate_verdict{verdict="pass"} == 1"#)
                .await?;
            let junk = prometheus
                .query(&format!("sum(paritygate_unparseable_total) >= {JUNK}"))
                .await?;
            let lag = prometheus
                .query("sum(paritygate_consumer_lag_messages) == 0")
                .await?;
            // Right after the catch-up a side's watermark is the least of its partitions' event
            // times until they go quiet (`idle_partition_ms`); wait for the final watermarks.
            let behind = prometheus
                .query(
                    r#"max by (service) (paritygate_watermark_timestamp_seconds{side="baseline"}) - on (service) max by (service) (paritygate_watermark_timestamp_seconds{side="candidate"}) > 300"#,
                )
                .await?;
            // Rates need two samples of every counter series.
            let sampled = prometheus
                .query("min(count_over_time(paritygate_events_total[5m])) >= 3")
                .await?;
            // Transient alerts of the catch-up (lag, a side ahead) resolve on the next evaluation.
            let active = active_alerts(&prometheus).await?;
            let want: BTreeSet<String> = ACTIVE.iter().map(|s| (*s).to_owned()).collect();
            if fail.len() == 3
                && pass.len() == 3
                && junk.len() == 1
                && lag.len() == 1
                && sampled.len() == 1
                && behind.is_empty()
                && active == want
            {
                Ok(())
            } else {
                Err(format!(
                    "{} fail, {} pass, junk {junk:?}, lag zero {}, sampled {}, candidate watermark behind {behind:?}, active alerts {active:?}",
                    fail.len(),
                    pass.len(),
                    lag.len(),
                    sampled.len()
                ))
            }
        },
    )
    .await;

    // Metric hygiene on what Prometheus scrapes.
    let exposition = scrape(app.addr).await;
    let (ok, lint) = run_promtool(&["check", "metrics"], Some(&exposition));
    assert!(
        ok && lint.trim().is_empty(),
        "promtool check metrics:\n{lint}"
    );
    check_exposition(&exposition);

    // Every expression of the dashboards and the rules.
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .chain(rule_queries())
        .collect();
    assert!(queries.len() > 40, "only {} queries", queries.len());
    let mut failures = Vec::new();
    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for q in &queries {
        let expr = q.expr();
        let result = match prometheus.query(&expr).await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: does not run: {e}\n    {expr}", q.id()));
                continue;
            }
        };
        match (empty_reason(q), result.is_empty()) {
            (None, true) => failures.push(format!("{}: returns no data\n    {expr}", q.id())),
            (Some(reason), false) => failures.push(format!(
                "{}: returns data now, but is listed as empty ({reason}): update the list\n    {expr}",
                q.id()
            )),
            _ => {}
        }
        for s in selectors(&expr) {
            if is_pending(s.family()).is_some() {
                continue;
            }
            match prometheus.series(&s.text()).await {
                Ok(series) if !series.is_empty() => {}
                Ok(_) => failures.push(format!("{}: `{}` matches no series", q.id(), s.text())),
                Err(e) => failures.push(format!("{}: `{}`: {e}", q.id(), s.text())),
            }
        }
        results.insert(q.id(), result);
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );

    // What the data says: the verdict encoding, and the drift side alone in the drift alerts.
    let verdicts: BTreeMap<String, String> = results["overview.json: Gate verdict [A]"]
        .iter()
        .map(|s| {
            (
                s["metric"]["service"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for s in DRIFT {
        assert_eq!(verdicts[s], "2", "{s}: fail is 2 ({verdicts:?})");
        assert_eq!(
            verdicts[&format!("{CLEAN_PREFIX}{s}")],
            "0",
            "clean {s}: pass is 0"
        );
    }
    let drift: BTreeSet<String> = DRIFT.iter().map(|s| (*s).to_owned()).collect();
    for alert in ["ParitygateDriftDetected", "ParitygateGateFailed"] {
        let services = label_set(&results[&format!("alerts.yml: {alert}")], "service");
        assert_eq!(services, drift, "{alert}: services");
    }
    let unparseable = &results["alerts.yml: ParitygateUnparseableMessages"];
    assert_eq!(
        label_set(unparseable, "service"),
        BTreeSet::from(["inventory".to_owned()]),
        "unparseable: only the junk's service"
    );

    // Prometheus itself: every rule evaluated without error; the active alerts are the drift ones.
    let rules = prometheus.api("rules", &[]).await.unwrap();
    let mut evaluated = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            assert_eq!(
                rule["health"], "ok",
                "rule {}: {}",
                rule["name"], rule["lastError"]
            );
            evaluated += 1;
        }
    }
    assert_eq!(
        evaluated,
        rule_queries().len(),
        "rules loaded by prometheus"
    );
    let active = active_alerts(&prometheus).await.unwrap();
    let want: BTreeSet<String> = ACTIVE.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(active, want, "active alerts (pending or firing)");

    app.stop().await;
    drop(prometheus);
}
