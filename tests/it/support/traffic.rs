//! Fixture-shaped traffic: the checked-in captures (`fixtures/clean`, `fixtures/drift`) read with
//! the crate's own reader and produced to the same topic and partition, and the outcome that
//! `paritygate::replay` computes on the same files (the expectation for `serve`).

use super::broker::{Batching, Broker, Record};
use super::fixture;
use paritygate::capture::for_each_line;
use paritygate::capture::format::parse_line;
use paritygate::config::Config;
use paritygate::core::report::{Report, ServiceReport};
use paritygate::generate::Manifest;
use paritygate::model::MismatchKind;
use paritygate::replay::{replay, ReplayOptions};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Partitions of every fixture topic (the captures use partitions 0..5).
pub const FIXTURE_PARTITIONS: i32 = 6;

/// `fixtures/paritygate.toml`, parsed.
pub fn fixture_config() -> Config {
    Config::load(&fixture("paritygate.toml")).expect("fixtures/paritygate.toml")
}

/// Every topic the config routes (baseline and candidate of every service).
pub fn topics(config: &Config) -> Vec<String> {
    let mut topics: Vec<String> = config.routes().keys().map(|t| (*t).to_owned()).collect();
    topics.sort();
    topics
}

/// Create every routed topic of `config` with `partitions` partitions.
pub async fn create_topics(broker: &Broker, config: &Config, partitions: i32) {
    for topic in topics(config) {
        broker.create_topic(&topic, partitions).await;
    }
}

/// One fixture directory's capture pair as records ready to produce.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub files: Vec<PathBuf>,
    /// Routed records of both captures, interleaved by relative position in their file (each
    /// file's order, and so each partition's order, is kept).
    /// Records on topics no service configures are left out (`replay` ignores them too).
    pub records: Vec<Record>,
}

impl Fixture {
    /// `fixtures/<name>` (`clean` or `drift`).
    pub fn load(name: &str) -> Fixture {
        let dir = fixture(name);
        let manifest: Manifest = serde_json::from_slice(
            &std::fs::read(dir.join("expected.json")).expect("expected.json"),
        )
        .expect("parse expected.json");
        let files = vec![
            dir.join(&manifest.baseline_file),
            dir.join(&manifest.candidate_file),
        ];
        let config = fixture_config();
        let routes = config.routes();
        let mut keyed: Vec<(f64, Record)> = Vec::new();
        for path in &files {
            let mut mine = Vec::new();
            for_each_line(path, Default::default(), |line_no, line| {
                let (_, view) = parse_line(line)
                    .unwrap_or_else(|e| panic!("{}:{line_no}: {e}", path.display()));
                if !routes.contains_key(view.topic.as_ref()) {
                    return true;
                }
                assert!(
                    (0..FIXTURE_PARTITIONS).contains(&view.partition),
                    "{}:{line_no}: partition {}",
                    path.display(),
                    view.partition
                );
                mine.push(Record {
                    topic: view.topic.into_owned(),
                    partition: view.partition,
                    key: view.key.map(|k| k.into_owned()),
                    headers: view
                        .headers
                        .into_iter()
                        .map(|(n, v)| (n.into_owned(), v.map(|v| v.into_owned())))
                        .collect(),
                    payload: view.payload.map(|p| p.into_owned()),
                    timestamp_ms: view.timestamp_ms,
                });
                true
            })
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let n = mine.len() as f64;
            keyed.extend(mine.into_iter().enumerate().map(|(i, r)| (i as f64 / n, r)));
        }
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        Fixture {
            files,
            records: keyed.into_iter().map(|(_, r)| r).collect(),
        }
    }

    /// The records cut into `parts` consecutive chunks of near-equal size (for producing over
    /// time: half, then the rest).
    pub fn split(&self, parts: usize) -> Vec<&[Record]> {
        let size = self.records.len().div_ceil(parts.max(1)).max(1);
        self.records.chunks(size).collect()
    }

    /// Produce every record.
    pub async fn produce(&self, broker: &Broker, batching: Batching) {
        broker.produce_all(&self.records, batching).await;
    }

    /// What `paritygate diff` reports on the same capture files under `fixtures/paritygate.toml`.
    pub fn expected(&self) -> Report {
        replay_files(&self.files)
    }
}

/// What `paritygate diff` reports on `files` (in this order) under `fixtures/paritygate.toml`.
pub fn replay_files(files: &[PathBuf]) -> Report {
    let options = ReplayOptions {
        strict: true,
        max_examples: 0,
        progress: false,
        schemas: Default::default(),
        range: Default::default(),
    };
    replay(&fixture_config(), files, &options, &mut |e| {
        panic!("malformed fixture line: {e:?}")
    })
    .expect("replay fixtures")
}

/// The keys `replay` lists under `kind`.
pub fn mismatch_keys(report: &ServiceReport, kind: MismatchKind) -> BTreeSet<String> {
    report
        .mismatches
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.key.clone())
        .collect()
}

pub const KINDS: [MismatchKind; 3] = [
    MismatchKind::MissingInCandidate,
    MismatchKind::ExtraInCandidate,
    MismatchKind::Mismatched,
];

/// A broker with the fixture topics created, a fresh database, and one fixture loaded.
#[derive(Debug)]
pub struct FixtureRun {
    pub broker: Broker,
    pub db: super::db::TestDb,
    pub fixture: Fixture,
    pub expected: Report,
}

impl FixtureRun {
    pub async fn new(name: &str) -> FixtureRun {
        super::init_tracing();
        let broker = Broker::start().await;
        create_topics(&broker, &fixture_config(), FIXTURE_PARTITIONS).await;
        let fixture = Fixture::load(name);
        let expected = fixture.expected();
        FixtureRun {
            broker,
            db: super::db::TestDb::create().await,
            fixture,
            expected,
        }
    }

    /// The app config for this broker and database (fixture services).
    pub fn app_config(&self) -> super::app::AppConfig {
        super::app::AppConfig::fixtures(&self.broker, &self.db)
    }
}
