//! `paritygate serve`: the live dual-run comparison (Kafka in, Postgres state, HTTP out).
//! WIP: the pieces land one by one; `startup` wires them.

pub mod status;

mod contract; // placeholder, see contract.rs
pub use contract::{spawn, ServeError, ServeHandle};
