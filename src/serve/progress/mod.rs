//! How far the pipeline is, as its parts tell each other without asking the store: the broker's
//! end offsets (fetched by the evaluator, stored by the lanes), the positions the checkpointers
//! stored and the backlog and pacing that follow from them, and the lanes' heartbeats. The bottom
//! of `serve`: every other part may read these, none of them reads another part.

pub mod backlog;
pub mod ends;
pub mod heartbeat;

pub use ends::EndOffsets;
pub use heartbeat::Heartbeats;
