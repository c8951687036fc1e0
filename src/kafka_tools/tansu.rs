//! A `tansu` broker on a loopback port, killed on `Drop`: in-memory storage on a free port for
//! the benchmarks and the demo ([`Tansu::start`]); any port, advertised address and storage for
//! the integration tests' harness ([`Tansu::start_with`]), so there is one way to run the broker.

use super::{client, free_port, Endpoint};
use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker process.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    port: u16,
}

/// Where tansu keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Lost when the process ends.
    Memory,
    /// An S3 endpoint (e.g. a local `moto_server`): topics and records survive a restart.
    S3 { endpoint: String },
}

/// How to run tansu.
#[derive(Debug, Clone)]
pub struct TansuOptions {
    pub program: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The port it tells clients to use: its own, or that of a proxy in front of it.
    pub advertised_port: u16,
    pub storage: Storage,
    /// Its output is appended here.
    pub log: PathBuf,
}

impl Tansu {
    /// Start `program` (the tansu binary) on a free port with in-memory storage, and wait until it
    /// answers metadata requests; its output goes to `log`.
    pub fn start(program: &Path, log: &Path) -> anyhow::Result<Tansu> {
        let port = free_port()?;
        Self::start_with(&TansuOptions {
            program: program.to_owned(),
            port,
            advertised_port: port,
            storage: Storage::Memory,
            log: log.to_owned(),
        })
    }

    /// Start tansu as `options` say and wait until it answers metadata requests.
    pub fn start_with(options: &TansuOptions) -> anyhow::Result<Tansu> {
        let url = format!("tcp://127.0.0.1:{}", options.port);
        let advertised = format!("tcp://127.0.0.1:{}", options.advertised_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.log)
            .with_context(|| format!("{}", options.log.display()))?;
        let mut command = Command::new(&options.program);
        command
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        match &options.storage {
            Storage::Memory => command.args(["--storage-engine", "memory://tansu/"]),
            // moto accepts any credentials; tansu's object store wants some.
            Storage::S3 { endpoint } => command
                .args(["--storage-engine", "s3://tansu/"])
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_ENDPOINT", endpoint)
                .env("AWS_ALLOW_HTTP", "true"),
        };
        let child = command
            .spawn()
            .with_context(|| format!("spawn {}", options.program.display()))?;
        let mut broker = Tansu {
            child,
            port: options.port,
        };
        // Behind a proxy the advertised address only answers once the proxy runs, so a metadata
        // round trip cannot be waited for here: the caller waits through its proxy.
        broker.wait_ready(options.advertised_port == options.port)?;
        Ok(broker)
    }

    fn wait_ready(&mut self, metadata: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!("tansu exited before listening: {status}");
            }
            if Instant::now() > deadline {
                bail!("tansu is not listening on port {} after 20 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !metadata {
            return Ok(());
        }
        // Listening is not serving yet: wait for a metadata answer.
        let consumer: BaseConsumer = client(&Endpoint::plain(self.addr())).create()?;
        loop {
            match consumer.fetch_metadata(None, Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => bail!("tansu answers no metadata: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Create `topics` with `partitions` partitions each (replication factor 1).
    pub async fn create_topics(&self, topics: &[String], partitions: i32) -> anyhow::Result<()> {
        create_topics(&Endpoint::plain(self.addr()), topics, partitions).await
    }
}

/// Create `topics` with `partitions` partitions each (replication factor 1) through `endpoint`.
pub async fn create_topics(
    endpoint: &Endpoint,
    topics: &[String],
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client(endpoint).create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &options).await? {
        if let Err((topic, code)) = result {
            bail!("create topic {topic}: {code}");
        }
    }
    Ok(())
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
