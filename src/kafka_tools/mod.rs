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

pub use consume::{bare_consume, consume_each, record_view, BareRun};
pub use produce::{produce_captures, Deliveries, Produced};
pub use tansu::{Storage, Tansu, TansuOptions};

use rdkafka::config::ClientConfig;

/// Base client settings for a loopback broker (IPv4 only: tansu listens on 127.0.0.1).
pub fn client(addr: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("broker.address.family", "v4");
    config
}

/// A free loopback port (bound then released; a race with another process is possible but rare).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
