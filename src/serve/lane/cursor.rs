//! Where one partition stands on its lane, and the one thing offsets can say about the log itself:
//! that it went back.
//!
//! Pure bookkeeping for `crate::serve::lane::worker`. A cursor holds the stored `next_offset` the partition's
//! next checkpoint compares-and-sets, the offset below which records are already in the state
//! (skipped), and the last offset delivered. Within one assignment Kafka delivers a partition's
//! offsets in increasing order; paritygate itself only ever moves a partition forward. So a record
//! below the last one delivered, or below the offset the partition was explicitly started at, means
//! the log was replaced: the topic was deleted and recreated (offsets restart at 0), or truncated.
//! The consumer's `auto.offset.reset` then moved it to the new log's start, and skipping "already
//! counted" offsets would silently drop every record of the new log up to the old position.
//! After a reset nothing is skipped: the new log's records are read, and events already counted are
//! still recognized by their identities (`crate::serve::lane::dedupe`). Arrival order (what orders a key's final
//! state when its service has no positions) is the partition's arrival base plus the offset; a reset
//! raises the base past every arrival of the old log, so the new log's changes outrank the old's.

use crate::model::TopicPartition;
use rdkafka::Offset;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

/// A partition this far behind its stored offset is moved there by a seek (once) instead of
/// reading and skipping every record up to it.
const SEEK_BEHIND: i64 = 1000;

/// What to do with a delivered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Already in the state; `seek_to`: move the consumer there first (far behind, once).
    Skip { seek_to: Option<i64> },
    /// Process it.
    Take,
    /// The log went back from `after` to this record's offset: process it, and everything after.
    LogReset { after: i64 },
}

/// One partition on its lane (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The stored `next_offset` the next checkpoint builds on (`None`: no row yet).
    pub stored: Option<i64>,
    /// Added to offsets to give arrival order (see the module doc).
    pub arrival_base: i64,
    /// Records below this are already in the state.
    skip_below: Option<i64>,
    /// How the assignment explicitly started the partition, if it did.
    start: Option<Start>,
    last: Option<i64>,
    sought: bool,
}

impl Cursor {
    /// A partition's first record on this lane in this assignment: `stored` offset and arrival base
    /// from the store, `start` how the assignment started it (`None`: at the beginning).
    pub fn new(stored: Option<i64>, arrival_base: i64, start: Option<Start>) -> Cursor {
        Cursor {
            stored,
            arrival_base,
            skip_below: stored,
            start,
            last: None,
            sought: false,
        }
    }

    /// The arrival order of the record at `offset` (after [`Cursor::observe`] saw it).
    pub fn arrival(&self, offset: i64) -> i64 {
        self.arrival_base.saturating_add(offset)
    }

    /// Decide about the record at `offset`.
    pub fn observe(&mut self, offset: i64) -> Step {
        let went_back_from = match (self.last, self.start) {
            (Some(last), _) if offset < last => Some(last),
            (None, Some(Start::At(start))) if offset < start => Some(start),
            // Found replaced at assignment: whatever comes first is the new log's.
            (None, Some(Start::Replaced { stored })) => Some(stored.saturating_sub(1).max(offset)),
            _ => None,
        };
        self.last = Some(offset);
        if let Some(after) = went_back_from {
            self.skip_below = None;
            // Every arrival of the old log was at most `arrival_base + after`.
            self.arrival_base = self.arrival_base.saturating_add(after).saturating_add(1);
            return Step::LogReset { after };
        }
        match self.skip_below {
            Some(next) if offset < next => {
                let far = next - offset > SEEK_BEHIND && !self.sought;
                self.sought |= far;
                Step::Skip {
                    seek_to: far.then_some(next),
                }
            }
            _ => Step::Take,
        }
    }

    /// A batch holding this partition was handed to the checkpointer: it stores `next`.
    pub fn handed_over(&mut self, next: i64) {
        self.stored = Some(next);
        self.skip_below = Some(next);
    }
}

/// How an assignment started a partition, when not simply at the beginning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this offset (the stored one).
    At(i64),
    /// At the beginning, because the log was found replaced (`crate::serve::ingest::verify`); `stored` was the
    /// offset stored for the old log.
    Replaced { stored: i64 },
}

/// The explicit start offsets of the partitions assigned to this replica, written where
/// partitions are assigned (the consumer thread) and read by the lanes at a partition's first
/// record. A partition started at the beginning has no entry.
#[derive(Debug, Clone, Default)]
pub struct Starts(Arc<Mutex<FxHashMap<TopicPartition, Start>>>);

impl Starts {
    /// The map, also after a thread panicked holding it (each write leaves it whole).
    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<TopicPartition, Start>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Note an assignment's start positions.
    pub fn record(&self, positions: &[(String, i32, Offset)]) {
        let mut starts = self.lock();
        for (topic, partition, offset) in positions {
            let key = TopicPartition::new(topic.clone(), *partition);
            match offset {
                Offset::Offset(n) => starts.insert(key, Start::At(*n)),
                _ => starts.remove(&key),
            };
        }
    }

    /// `topic`/`partition` starts at the beginning because its log was replaced.
    pub fn mark_replaced(&self, topic: &str, partition: i32, stored: i64) {
        let mut starts = self.lock();
        starts.insert(
            TopicPartition::new(topic, partition),
            Start::Replaced { stored },
        );
    }

    /// How `topic`/`partition` was explicitly started, if it was.
    pub fn of(&self, topic: &str, partition: i32) -> Option<Start> {
        let starts = self.lock();
        starts.get(&TopicPartition::new(topic, partition)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(cursor: &mut Cursor, offsets: &[i64]) -> Vec<Step> {
        offsets.iter().map(|o| cursor.observe(*o)).collect()
    }

    #[test]
    fn records_below_the_stored_offset_are_skipped_and_the_rest_taken() {
        let mut c = Cursor::new(Some(5), 0, None);
        let skip = Step::Skip { seek_to: None };
        assert_eq!(
            steps(&mut c, &[3, 4, 5, 6]),
            [skip, skip, Step::Take, Step::Take]
        );
    }

    #[test]
    fn far_behind_seeks_once() {
        let mut c = Cursor::new(Some(5000), 0, None);
        assert_eq!(
            c.observe(0),
            Step::Skip {
                seek_to: Some(5000)
            }
        );
        assert_eq!(c.observe(1), Step::Skip { seek_to: None });
        assert_eq!(c.observe(5000), Step::Take);
    }

    #[test]
    fn a_first_record_below_the_explicit_start_is_a_log_reset() {
        // Started at the stored 500; the recreated topic's log starts at 0.
        let mut c = Cursor::new(Some(500), 0, Some(Start::At(500)));
        assert_eq!(c.observe(0), Step::LogReset { after: 500 });
        assert_eq!(steps(&mut c, &[1, 2]), [Step::Take, Step::Take]);
    }

    #[test]
    fn started_at_the_beginning_a_low_first_record_is_no_reset() {
        // The store could not answer at assignment: reading from the beginning, skipping.
        let mut c = Cursor::new(Some(500), 0, None);
        assert_eq!(c.observe(0), Step::Skip { seek_to: None });
    }

    #[test]
    fn offsets_going_back_within_an_assignment_are_a_log_reset() {
        let mut c = Cursor::new(Some(10), 7, Some(Start::At(10)));
        assert_eq!(steps(&mut c, &[10, 11]), [Step::Take, Step::Take]);
        assert_eq!(c.arrival(11), 18);
        c.handed_over(12);
        assert_eq!(c.observe(0), Step::LogReset { after: 11 });
        // The new log's first record arrives after the old log's last.
        assert_eq!(c.arrival(0), 19);
        // Nothing of the new log is skipped, though it is below the stored 12.
        assert_eq!(steps(&mut c, &[1, 11, 12]), [Step::Take; 3]);
        c.handed_over(13);
        assert_eq!(c.stored, Some(13));
        assert_eq!(c.observe(5), Step::LogReset { after: 12 });
    }

    #[test]
    fn a_seek_that_lands_out_of_range_is_a_log_reset() {
        // Started at the beginning, sought forward to 5000, which the recreated log lacks: the
        // consumer's reset moves it back to 0 after records 0..=2 were already delivered.
        let mut c = Cursor::new(Some(5000), 0, None);
        assert_eq!(
            c.observe(0),
            Step::Skip {
                seek_to: Some(5000)
            }
        );
        assert_eq!(c.observe(2), Step::Skip { seek_to: None });
        assert_eq!(c.observe(0), Step::LogReset { after: 2 });
        assert_eq!(c.observe(1), Step::Take);
    }

    #[test]
    fn a_log_found_replaced_at_assignment_is_read_from_its_first_record() {
        // 900 were stored for the old log; the new one is longer, read from 0.
        let mut c = Cursor::new(Some(900), 4, Some(Start::Replaced { stored: 900 }));
        assert_eq!(c.observe(0), Step::LogReset { after: 899 });
        assert_eq!(steps(&mut c, &[1, 899, 900]), [Step::Take; 3]);
        // Arrivals continue past every arrival of the old log (at most 4 + 899).
        assert_eq!(c.arrival(0), 904);
    }

    #[test]
    fn starts_keep_explicit_offsets_only() {
        let starts = Starts::default();
        starts.record(&[
            ("a".to_owned(), 0, Offset::Offset(7)),
            ("a".to_owned(), 1, Offset::Beginning),
        ]);
        assert_eq!(
            (starts.of("a", 0), starts.of("a", 1)),
            (Some(Start::At(7)), None)
        );
        starts.record(&[("a".to_owned(), 0, Offset::Beginning)]);
        assert_eq!(starts.of("a", 0), None);
        starts.mark_replaced("a", 0, 7);
        assert_eq!(starts.of("a", 0), Some(Start::Replaced { stored: 7 }));
    }
}
