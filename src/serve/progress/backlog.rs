//! How far this process's ingestion is behind the broker, in records, known without a query: the
//! checkpointers note each stored partition's next offset, the evaluator's end offsets say where
//! the partitions end. The evaluator uses it only to pace itself (a full evaluation scans every
//! key, and while a backlog is being read it would compete with ingestion for the same cores);
//! nothing that is compared or stored depends on it.

use crate::model::TopicPartition;
use crate::serve::progress::EndOffsets;
use crate::store::batch::Batch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (topic, partition) → (stored next offset, when it was stored).
type Stored = HashMap<TopicPartition, (i64, Instant)>;

/// Stored next offsets of the partitions this process checkpointed recently.
#[derive(Debug, Clone)]
pub struct Positions {
    stored: Arc<Mutex<Stored>>,
    /// A partition not checkpointed for this long is no longer counted: it moved to another
    /// replica, or this process is not reading it (a database outage holds every checkpoint back;
    /// then the evaluator may as well run at its usual pace).
    forget_after: Duration,
}

impl Positions {
    /// `checkpoint_interval`: the longest a partition with records waiting goes uncheckpointed.
    pub fn new(checkpoint_interval: Duration) -> Self {
        Self {
            stored: Arc::default(),
            forget_after: (checkpoint_interval * 10).max(Duration::from_secs(10)),
        }
    }

    /// Note the next offsets a batch has just stored.
    pub fn record(&self, batch: &Batch) {
        self.record_at(batch, Instant::now());
    }

    fn record_at(&self, batch: &Batch, now: Instant) {
        let Ok(mut stored) = self.stored.lock() else {
            return;
        };
        for (partition, progress) in &batch.partitions {
            stored.insert(partition.clone(), (progress.next_offset, now));
        }
    }

    /// When this process last stored a checkpoint, if that was after `since`.
    pub fn last_stored_since(&self, since: Instant) -> Option<Instant> {
        let stored = self.stored.lock().ok()?;
        stored
            .values()
            .map(|(_, at)| *at)
            .filter(|at| *at > since)
            .max()
    }

    /// Records between the stored positions and the known ends of the partitions checkpointed
    /// recently. Partitions never checkpointed here do not count: after a restart with nothing
    /// new, or owned by another replica, they would otherwise look behind forever.
    pub fn backlog(&self, ends: &EndOffsets) -> i64 {
        self.backlog_at(ends, Instant::now())
    }

    fn backlog_at(&self, ends: &EndOffsets, now: Instant) -> i64 {
        let Ok(stored) = self.stored.lock() else {
            return 0;
        };
        let ends = ends.snapshot().offsets;
        stored
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) < self.forget_after)
            .filter_map(|(partition, (next, _))| ends.get(partition).map(|end| (end - next).max(0)))
            .sum()
    }
}

/// Evaluation rounds take at most one part in this many of the wall clock.
const EVALUATION_SHARE: u32 = 4;
/// The same while a backlog is being read.
const BACKLOG_EVALUATION_SHARE: u32 = 20;

/// The evaluator's pause after a round that took `round`. Evaluation is set-based over the whole
/// state and runs on the cores that also ingest and checkpoint: pace it so that it takes at most
/// 1/EVALUATION_SHARE of the time, however big the state grows (a verdict is then at most a few
/// rounds old). While more than a full batch of records waits to be read (`behind`: catching up
/// after a restart or an outage, or a burst), ingestion is what moves the evidence, so evaluation
/// yields all but 1/BACKLOG_EVALUATION_SHARE; the evaluator ends such a pause as soon as the
/// backlog is gone, so a verdict follows the end of a backlog promptly.
pub fn evaluation_pause(interval: Duration, round: Duration, behind: bool) -> Duration {
    let share = if behind {
        BACKLOG_EVALUATION_SHARE
    } else {
        EVALUATION_SHARE
    };
    interval.max(round * (share - 1))
}

/// When the evaluator's next round starts: at `paced`, or earlier once `idle` has passed since
/// the latest checkpoint this process stored after the last round began (`last_stored`), though
/// never before `earliest`. That instant is when the partitions of that checkpoint turn idle and
/// a settled watermark can move: a catch-up or a burst that just ended settles then, not after
/// a whole paced pause. Under steady traffic the latest checkpoint keeps moving forward, so this
/// never comes before `paced`; only the end of the traffic brings the round forward.
pub fn resume_at(
    paced: Instant,
    earliest: Instant,
    last_stored: Option<Instant>,
    idle: Duration,
) -> Instant {
    // A little after the instant: the idle test is `now - last_record_at >= idle_ms`.
    const MARGIN: Duration = Duration::from_millis(20);
    match last_stored {
        Some(at) => paced.min((at + idle + MARGIN).max(earliest)),
        None => paced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;
    use crate::store::batch::PartitionProgress;

    fn batch(offsets: &[(&str, i32, i64)]) -> Batch {
        let mut batch = Batch::default();
        for (topic, partition, next) in offsets {
            batch.partitions.insert(
                TopicPartition::new(*topic, *partition),
                PartitionProgress {
                    service: 0,
                    side: Side::Baseline,
                    expected: None,
                    next_offset: *next,
                    max_event_ms: None,
                    min_event_ms: None,
                    end_offset: None,
                    arrival_base: None,
                    last_record: None,
                },
            );
        }
        batch
    }

    fn ends(known: &[(&str, i32, i64)]) -> EndOffsets {
        EndOffsets::with(known)
    }

    #[test]
    fn backlog_sums_what_is_left_of_each_checkpointed_partition() {
        let positions = Positions::new(Duration::from_secs(1));
        positions.record(&batch(&[("a", 0, 100), ("a", 1, 40)]));
        positions.record(&batch(&[("a", 0, 150)]));
        // a/2 was never checkpointed here and b/0 has no known end: neither counts.
        let ends = ends(&[("a", 0, 1_000), ("a", 1, 40), ("a", 2, 5_000)]);
        assert_eq!(positions.backlog(&ends), 850);
    }

    #[test]
    fn a_position_beyond_a_stale_end_is_no_backlog() {
        let positions = Positions::new(Duration::from_secs(1));
        positions.record(&batch(&[("a", 0, 900)]));
        assert_eq!(positions.backlog(&ends(&[("a", 0, 500)])), 0);
    }

    #[test]
    fn evaluation_yields_more_while_behind_but_never_runs_more_often_than_the_interval() {
        let ms = Duration::from_millis;
        assert_eq!(evaluation_pause(ms(2_000), ms(100), false), ms(2_000));
        assert_eq!(evaluation_pause(ms(200), ms(100), false), ms(300));
        assert_eq!(evaluation_pause(ms(200), ms(100), true), ms(1_900));
        assert_eq!(evaluation_pause(ms(5_000), ms(100), true), ms(5_000));
    }

    #[test]
    fn partitions_quiet_for_long_are_forgotten() {
        let positions = Positions::new(Duration::from_secs(1));
        let then = Instant::now();
        positions.record_at(&batch(&[("a", 0, 10)]), then);
        positions.record_at(&batch(&[("a", 1, 10)]), then + Duration::from_secs(8));
        let ends = ends(&[("a", 0, 110), ("a", 1, 1_010)]);
        assert_eq!(
            positions.backlog_at(&ends, then + Duration::from_secs(9)),
            1_100
        );
        assert_eq!(
            positions.backlog_at(&ends, then + Duration::from_secs(11)),
            1_000
        );
    }

    #[test]
    fn the_end_of_the_traffic_brings_the_next_round_forward() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (paced, earliest, idle) = (t0 + ms(3000), t0 + ms(200), ms(1000));
        // Nothing stored since the round began: the pacing alone.
        assert_eq!(resume_at(paced, earliest, None, idle), paced);
        // The last checkpoint at +100 ms: its partitions turn idle at +1.1 s.
        assert_eq!(
            resume_at(paced, earliest, Some(t0 + ms(100)), idle),
            t0 + ms(1120)
        );
        // Never before `earliest`, never after `paced`.
        assert_eq!(
            resume_at(paced, t0 + ms(2000), Some(t0 + ms(100)), idle),
            t0 + ms(2000)
        );
        assert_eq!(resume_at(paced, earliest, Some(t0 + ms(2500)), idle), paced);
    }

    #[test]
    fn the_latest_checkpoint_since_the_round_began_is_the_one_that_counts() {
        let positions = Positions::new(Duration::from_secs(1));
        let t0 = Instant::now();
        positions.record_at(&batch(&[("a", 0, 5)]), t0);
        assert_eq!(
            positions.last_stored_since(t0 + Duration::from_millis(1)),
            None
        );
        positions.record_at(&batch(&[("a", 1, 5)]), t0 + Duration::from_millis(50));
        positions.record_at(&batch(&[("a", 0, 9)]), t0 + Duration::from_millis(80));
        assert_eq!(
            positions.last_stored_since(t0 + Duration::from_millis(1)),
            Some(t0 + Duration::from_millis(80))
        );
    }
}
