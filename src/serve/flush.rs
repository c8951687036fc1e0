//! When a lane hands its batch to the checkpointer: the batching policy between the size and time
//! bounds of `[serve]` and the latency of settling, kept apart from the worker so it is tested alone.

use std::time::Duration;

/// No input for this long: the lane has caught up (or its partitions are quiet).
pub const INPUT_QUIET: Duration = Duration::from_millis(50);
/// Quiet lanes checkpoint at most this often, so a trickle of records is not one transaction each.
const QUIET_FLUSH_SPACING: Duration = Duration::from_millis(100);

/// Whether a lane checkpoints its (non-empty) batch of `records` now: when the batch is full, when
/// `interval` has passed since the last checkpoint, or as soon as its input went quiet. Waiting
/// out the interval once nothing more arrives would only delay the state (and every verdict
/// settling on it) by up to a whole interval after a catch-up or a burst ends.
pub fn flush_due(
    records: usize,
    max_records: usize,
    since_last: Duration,
    interval: Duration,
    quiet: bool,
) -> bool {
    records >= max_records
        || since_last >= interval
        || (quiet && since_last >= QUIET_FLUSH_SPACING.min(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_busy_lane_checkpoints_when_full_or_when_the_interval_passed() {
        let ms = Duration::from_millis;
        assert!(!flush_due(10, 100, ms(500), SECOND, false));
        assert!(flush_due(100, 100, ms(1), SECOND, false));
        assert!(flush_due(10, 100, SECOND, SECOND, false));
    }

    #[test]
    fn a_quiet_lane_checkpoints_at_once_but_not_more_often_than_the_spacing() {
        let ms = Duration::from_millis;
        assert!(flush_due(10, 100, ms(100), SECOND, true));
        assert!(!flush_due(10, 100, ms(99), SECOND, true));
        // A shorter configured interval still bounds the wait.
        assert!(flush_due(10, 100, ms(20), ms(20), true));
    }
}
