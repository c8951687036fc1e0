//! The lanes: one worker thread per checkpoint lane (partition number modulo lanes) turns its
//! partitions' records into the lane's batch with the pure core and hands each batch to the
//! lane's checkpointer. Extraction is the CPU-heavy part of the service, so it runs here and the
//! consumer thread (`crate::serve::ingest`) only polls and routes.
//!
//! - `worker`: the loop, where partitions stand, when a batch is handed over;
//! - `cursor`: a partition's stored offset, skipping, log resets (`Starts`: where assignments
//!   started them);
//! - `intake`: one record into the batch (extract, deduplicate, tally);
//! - `dedupe`: the identities already counted, in memory;
//! - `record`: a consumed record copied out of librdkafka, and what a lane's inbox carries.

pub mod cursor;
pub mod dedupe;
pub mod intake;
pub mod record;
pub mod worker;
