//! The pure comparison core: no IO, no async, no clocks. Everything here is a function of its
//! inputs, so `diff` (capture replay) and `serve` (live Kafka) share it unchanged and it is
//! unit-tested inline.

pub mod avro;
pub mod canonical;
pub mod compare;
pub mod debezium;
pub mod event;
pub mod explain;
pub mod identity;
pub mod instant;
pub mod number;
pub mod operation;
pub mod payload;
pub mod plan;
pub mod pointer;
pub mod position;
pub mod range;
pub mod record;
pub mod report;
pub mod tree;
