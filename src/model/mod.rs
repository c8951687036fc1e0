//! The shared vocabulary at the bottom of the module ladder: the concepts every layer speaks, one
//! definition each. Types only (and their small pure methods): no IO, no clock, no dependency on
//! any other module of the crate.
//!
//! - [`Side`], [`ServiceSide`], [`TopicPartition`]: where a record comes from and what it feeds.
//! - [`Verdict`], [`CriterionName`], [`CriterionStatus`], [`Criterion`], [`Waiver`]: what `diff`,
//!   `rowdiff`, the gates and the sign-offs answer in.
//! - [`MismatchKind`], [`KindCounts`], [`TallyKind`]: how keys differ, what records count as.
//! - [`Epoch`], [`EpochScope`]: which stretch of event time a gate judges.
//! - [`status`]: the read model the evaluator publishes and the API, page and metrics serve.

mod epoch;
mod kinds;
mod side;
pub mod status;
mod verdict;

pub use epoch::{Epoch, EpochScope, FIRST_EPOCH};
pub use kinds::{FieldCount, KindCounts, MismatchKind, TallyKind};
pub use side::{ServiceSide, Side, TopicPartition};
pub use verdict::{Criterion, CriterionName, CriterionStatus, Verdict, Waiver};
