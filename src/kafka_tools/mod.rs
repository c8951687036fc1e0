//! Kafka tooling for benchmarks: a throwaway `tansu` broker, fast batched producing of capture
//! files, and a bare consumer that only counts (the floor `serve` is measured against).
//!
//! The broker is the integration tests' too (`tests/it/support/broker.rs` runs it through
//! [`Tansu::start_with`]); producing follows the harness' `produce.rs`, as a library so
//! `paritygate bench serve` can use it without test-only dependencies.
//!
//! tansu quirk: a partition's high watermark is the last *batch's* base offset + 1, so nothing
//! here relies on end offsets: consumers count records until they have seen what was produced.

mod consume;
mod produce;
mod tansu;
mod tls;

pub use consume::{bare_consume, consume_each, record_view, BareRun};
pub use produce::{produce_captures, Deliveries, Produced};
pub use tansu::{create_topics, Storage, Tansu, TansuOptions};
pub use tls::TlsFront;

use rdkafka::config::ClientConfig;

/// Where a client connects: bootstrap address and the librdkafka properties it needs there
/// (none for tansu itself; `security.protocol` and a CA behind a [`TlsFront`]).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: String,
    pub properties: Vec<(String, String)>,
}

impl Endpoint {
    /// A plaintext listener.
    pub fn plain(addr: impl Into<String>) -> Endpoint {
        Endpoint {
            addr: addr.into(),
            properties: Vec::new(),
        }
    }
}

/// Base client settings for a loopback broker (IPv4 only: tansu listens on 127.0.0.1).
pub fn client(endpoint: &Endpoint) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &endpoint.addr)
        .set("broker.address.family", "v4");
    for (k, v) in &endpoint.properties {
        config.set(k, v);
    }
    config
}

/// A free loopback port (bound then released; a race with another process is possible but rare).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
