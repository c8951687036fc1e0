//! The service under test: its config, and running it in-process or as a child process.

use super::broker::Broker;
use super::db::TestDb;
use super::http::Api;
use super::{fixture, unique};
use paritygate::app::ServeHandle;
use paritygate::config::Config;
use paritygate::serve::ServeError;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Builds a `paritygate.toml` for a test: services (the fixtures' by default) plus `[kafka]`,
/// `[store]`, `[http]` and `[serve]` pointing at the test's broker and database, with fast timings.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub services_toml: String,
    pub brokers: String,
    pub group_id: String,
    /// `manual` (default) or `group` (the consumer-group protocol).
    pub assignment: &'static str,
    pub replicas: u32,
    pub replica_index: u32,
    pub max_message_bytes: Option<usize>,
    pub store_url: String,
    pub checkpoint_interval_ms: u64,
    pub evaluation_interval_ms: u64,
    pub idle_partition_ms: u64,
    /// `[kafka.properties]` passed to librdkafka.
    pub kafka_properties: Vec<(String, String)>,
    /// `[kafka] commit_offsets` (`None`: the default).
    pub commit_offsets: Option<bool>,
    /// `PARITYGATE_…` environment overrides applied when parsing (secrets go here).
    pub env: Vec<(String, String)>,
    /// `[kafka.candidate] brokers`: the candidate read from a cluster of its own.
    pub candidate_brokers: Option<String>,
    /// `[serve] replica_name` (`None`: the default, unique per process).
    pub replica_name: Option<String>,
}

impl AppConfig {
    /// The services of `fixtures/paritygate.toml`.
    pub fn fixtures(broker: &Broker, db: &TestDb) -> AppConfig {
        let services =
            std::fs::read_to_string(fixture("paritygate.toml")).expect("fixtures/paritygate.toml");
        Self::with_services(&services, broker, db)
    }

    /// `services_toml`: only `[[services]]` tables (and their sub-tables).
    pub fn with_services(services_toml: &str, broker: &Broker, db: &TestDb) -> AppConfig {
        AppConfig {
            services_toml: services_toml.to_owned(),
            brokers: broker.addr(),
            group_id: unique("paritygate"),
            assignment: "manual",
            replicas: 1,
            replica_index: 0,
            max_message_bytes: None,
            store_url: db.url(),
            checkpoint_interval_ms: 200,
            evaluation_interval_ms: 200,
            idle_partition_ms: 1000,
            kafka_properties: Vec::new(),
            commit_offsets: None,
            env: Vec::new(),
            candidate_brokers: None,
            replica_name: None,
        }
    }

    /// What a client needs to pass `broker`'s secure front: its properties in the file, the
    /// password in `PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD` (a secret in the file is refused).
    pub fn secured_for(mut self, broker: &Broker) -> AppConfig {
        for (name, value) in broker.front_public_properties() {
            self = self.kafka_property(name, &value);
        }
        if broker.front_has_password() {
            self.env.push((
                "PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD".into(),
                super::secure::PASSWORD.into(),
            ));
        }
        self
    }

    /// A `PARITYGATE_…` environment override.
    pub fn env(mut self, name: &str, value: &str) -> AppConfig {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replica `index` of `replicas` (manual assignment: partitions `p % replicas == index`).
    pub fn replica(mut self, index: u32, replicas: u32) -> AppConfig {
        self.replica_index = index;
        self.replicas = replicas;
        self
    }

    /// Partitions assigned by the consumer-group protocol (replicas share `group_id`).
    pub fn group(mut self) -> AppConfig {
        self.assignment = "group";
        self
    }

    /// `[kafka] commit_offsets`.
    pub fn commit_offsets(mut self, commit: bool) -> AppConfig {
        self.commit_offsets = Some(commit);
        self
    }

    /// A librdkafka property under `[kafka.properties]` (replacing one of the same name).
    pub fn kafka_property(mut self, name: &str, value: &str) -> AppConfig {
        self.kafka_properties.retain(|(n, _)| n != name);
        self.kafka_properties
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// The candidate's topics are read from `broker` (`[kafka.candidate]`), the baseline's from
    /// `[kafka] brokers`.
    pub fn candidate_cluster(mut self, broker: &Broker) -> AppConfig {
        self.candidate_brokers = Some(broker.addr());
        self
    }

    /// `[serve] replica_name`: this replica's name in `evaluated_by`.
    pub fn replica_name(mut self, name: &str) -> AppConfig {
        self.replica_name = Some(name.to_owned());
        self
    }

    pub fn max_message_bytes(mut self, bytes: usize) -> AppConfig {
        self.max_message_bytes = Some(bytes);
        self
    }

    /// The whole file.
    pub fn toml(&self) -> String {
        let mut text = self.services_toml.clone();
        text.push_str(&format!(
            "\n[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\nassignment = \"{}\"\nreplicas = {}\nreplica_index = {}\n",
            self.brokers, self.group_id, self.assignment, self.replicas, self.replica_index
        ));
        if let Some(bytes) = self.max_message_bytes {
            text.push_str(&format!("max_message_bytes = {bytes}\n"));
        }
        if let Some(commit) = self.commit_offsets {
            text.push_str(&format!("commit_offsets = {commit}\n"));
        }
        if !self.kafka_properties.is_empty() {
            text.push_str("\n[kafka.properties]\n");
            for (name, value) in &self.kafka_properties {
                text.push_str(&format!("\"{name}\" = \"{value}\"\n"));
            }
        }
        if let Some(brokers) = &self.candidate_brokers {
            text.push_str(&format!("\n[kafka.candidate]\nbrokers = \"{brokers}\"\n"));
        }
        text.push_str(&format!(
            "\n[store]\nurl = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[serve]\ncheckpoint_interval_ms = {}\nevaluation_interval_ms = {}\nidle_partition_ms = {}\n",
            self.store_url, self.checkpoint_interval_ms, self.evaluation_interval_ms, self.idle_partition_ms
        ));
        if let Some(name) = &self.replica_name {
            text.push_str(&format!("replica_name = \"{name}\"\n"));
        }
        text
    }

    /// Parsed and validated (no environment overrides).
    pub fn config(&self) -> Config {
        let text = self.toml();
        Config::parse_with_env(Path::new("test-paritygate.toml"), &text, self.env.clone())
            .unwrap_or_else(|e| panic!("test config does not parse: {e}\n{text}"))
    }

    /// Write the file into `dir`, for the binary.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let _ = self.config();
        let path = dir.join(format!("{}.toml", unique("paritygate")));
        std::fs::write(&path, self.toml()).expect("write config");
        path
    }
}

/// `paritygate::app::spawn` in this process; shut down on `Drop`.
#[derive(Debug)]
pub struct InProcess {
    pub addr: SocketAddr,
    pub api: Api,
    shutdown: CancellationToken,
    join: Option<JoinHandle<Result<(), ServeError>>>,
}

impl InProcess {
    pub async fn start(config: Config) -> InProcess {
        let shutdown = CancellationToken::new();
        let ServeHandle { addr, join, .. } = paritygate::app::spawn(config, shutdown.clone())
            .await
            .unwrap_or_else(|e| panic!("serve::spawn: {e}"));
        assert!(addr.ip().is_loopback(), "serve bound {addr}, not loopback");
        InProcess {
            addr,
            api: Api::new(addr),
            shutdown,
            join: Some(join),
        }
    }

    /// Cancel and wait (at most 20 s) for a clean `Ok(())` exit.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let join = self.join.take().expect("joined once");
        match tokio::time::timeout(Duration::from_secs(20), join).await {
            Err(_) => panic!("serve did not stop within 20 s of shutdown"),
            Ok(Err(e)) => panic!("serve task panicked: {e}"),
            Ok(Ok(Err(e))) => panic!("serve ended with an error: {e}"),
            Ok(Ok(Ok(()))) => {}
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `target/debug/paritygate serve --config FILE` as a child process; killed on `Drop`.
#[derive(Debug)]
pub struct ChildApp {
    child: Child,
    pub api: Api,
    output: Arc<Mutex<String>>,
}

impl ChildApp {
    /// Start and wait (at most 30 s) for the `listening on http://ADDR` line on stdout.
    pub fn start(config_path: &Path) -> ChildApp {
        let mut command = Command::new(env!("CARGO_BIN_EXE_paritygate"));
        command
            .args(["serve", "--config"])
            .arg(config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The file is the whole truth: no PARITYGATE_… override from the test environment.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("PARITYGATE_")) {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("spawn paritygate serve");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("stdout"),
            output.clone(),
            Some(tx),
        );
        drain(child.stderr.take().expect("stderr"), output.clone(), None);
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let out = output.lock().map(|o| o.clone()).unwrap_or_default();
                panic!("paritygate serve printed no `listening on http://ADDR` (it exited, or 30 s passed; exit: {status:?}); output:\n{out}");
            }
        };
        ChildApp {
            child,
            api: Api::new(addr),
            output,
        }
    }

    /// SIGKILL, no chance to checkpoint or clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (at most `timeout`) for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Whether the process has exited on its own.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

fn drain(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    tx: Option<mpsc::Sender<SocketAddr>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(tx) = &tx {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    if let Ok(addr) = addr.trim().trim_end_matches('/').parse() {
                        let _ = tx.send(addr);
                    }
                }
            }
            if let Ok(mut out) = output.lock() {
                out.push_str(&line);
                out.push('\n');
            }
        }
    });
}

impl Drop for ChildApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
