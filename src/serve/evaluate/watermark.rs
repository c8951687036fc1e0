//! Event-time watermarks: a side's partitions as status rows, and how far its events have surely
//! arrived, so settling never waits on a partition that is idle or caught up.

use crate::model::status::PartitionStatus;
use crate::model::TopicPartition;
use crate::serve::progress::EndOffsets;
use crate::store::read;

/// A side's partitions as status rows, and its event-time watermark.
///
/// The watermark is the minimum event time reached by the side's active partitions. A partition
/// that is caught up and has been quiet for `idle_ms` is idle and does not hold it back; when every
/// partition is idle, the watermark moves on with the clock (`now - idle_ms`), so a finished or
/// paused side never stalls settling forever.
pub fn side_watermark(
    rows: &[read::PartitionRow],
    topics: &[String],
    ends: &EndOffsets,
    now_ms: i64,
    idle_ms: i64,
) -> (Vec<PartitionStatus>, Option<i64>) {
    let snapshot = ends.snapshot();
    let (ends, fresh) = (snapshot.offsets, snapshot.fresh);
    let mut out = Vec::with_capacity(rows.len());
    let (mut active_min, mut any_max): (Option<i64>, Option<i64>) = (None, None);
    // Progress we cannot vouch for holds the watermark back entirely: an active partition without
    // an event time yet, or one with records that nobody has consumed at all. Otherwise a key whose
    // other side sits there would settle as "missing" and fail the gate falsely.
    let mut blocked = false;
    let mut watermark_partitions = 0usize;
    for r in rows {
        let end = ends
            .get(&TopicPartition::new(r.topic.clone(), r.partition))
            .copied()
            .or(r.end_offset);
        let caught_up = end.is_none_or(|e| r.next_offset >= e);
        let quiet = r
            .last_record_at
            .is_none_or(|t| now_ms - t.timestamp_millis() >= idle_ms);
        let idle = caught_up && quiet;
        // Error (dead-letter) topics carry no event times: they never hold the watermark.
        if topics.contains(&r.topic) {
            watermark_partitions += 1;
            if !idle {
                match (active_min, r.max_event_ms) {
                    (_, None) => blocked = true,
                    (Some(a), Some(b)) => active_min = Some(a.min(b)),
                    (None, Some(b)) => active_min = Some(b),
                }
            }
            any_max = any_max.max(r.max_event_ms);
        }
        out.push(PartitionStatus {
            topic: r.topic.clone(),
            partition: r.partition,
            next_offset: r.next_offset,
            end_offset: end,
            // Lag only from an end the broker just told: a stored or stale end is no evidence
            // that nothing waits (unknown is shown as unknown, never as 0).
            lag: ends
                .get(&TopicPartition::new(r.topic.clone(), r.partition))
                .filter(|_| fresh)
                .map(|e| (e - r.next_offset).max(0)),
            max_event_ms: r.max_event_ms,
            idle,
        });
    }
    for (TopicPartition { topic, partition }, end) in &ends {
        let seen = rows
            .iter()
            .any(|r| &r.topic == topic && r.partition == *partition);
        if *end > 0 && !seen && topics.contains(topic) {
            blocked = true;
            out.push(PartitionStatus {
                topic: topic.clone(),
                partition: *partition,
                next_offset: 0,
                end_offset: Some(*end),
                lag: fresh.then_some(*end),
                max_event_ms: None,
                idle: false,
            });
        }
    }
    let watermark = if blocked || watermark_partitions == 0 {
        None
    } else if out
        .iter()
        .filter(|p| topics.contains(&p.topic))
        .all(|p| p.idle)
    {
        Some(any_max.unwrap_or(i64::MIN).max(now_ms - idle_ms))
    } else {
        active_min
    };
    (out, watermark)
}

/// The event time both sides have been observed over: from the later of the two sides' earliest
/// events to the earlier of their latest, `None` until both sides have events. Event time only: a
/// quiet stretch adds nothing, however long the clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedSpan {
    pub since_ms: i64,
    pub until_ms: i64,
}

/// The span the baseline's and the candidate's partition rows cover together.
pub fn observed_span(
    baseline: &[read::PartitionRow],
    candidate: &[read::PartitionRow],
) -> Option<ObservedSpan> {
    let covered = |rows: &[read::PartitionRow]| {
        let first = rows.iter().filter_map(|r| r.min_event_ms).min()?;
        let last = rows.iter().filter_map(|r| r.max_event_ms).max()?;
        Some((first, last))
    };
    let ((b_first, b_last), (c_first, c_last)) = (covered(baseline)?, covered(candidate)?);
    Some(ObservedSpan {
        since_ms: b_first.max(c_first),
        until_ms: b_last.min(c_last),
    })
}

/// `compare_from = "auto"`: where the comparison starts, once it can be decided: the later of the
/// two sides' first event times plus `margin_ms`. Undecided (`None`) while either side's watermark
/// is held back (a partition with records but no event time yet, or records nobody consumed) or
/// a side has no event at all: a partition without data holds the start back as it holds the
/// watermark.
pub fn auto_start(
    watermarks: [Option<i64>; 2],
    baseline: &[read::PartitionRow],
    candidate: &[read::PartitionRow],
    margin_ms: i64,
) -> Option<i64> {
    let [Some(_), Some(_)] = watermarks else {
        return None;
    };
    let first = |rows: &[read::PartitionRow]| rows.iter().filter_map(|r| r.min_event_ms).min();
    Some(
        first(baseline)?
            .max(first(candidate)?)
            .saturating_add(margin_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BASELINE;
    use chrono::{TimeZone, Utc};

    fn row(
        topic: &str,
        partition: i32,
        next: i64,
        max_event_ms: Option<i64>,
        last_ms: Option<i64>,
    ) -> read::PartitionRow {
        read::PartitionRow {
            topic: topic.into(),
            partition,
            side: BASELINE,
            next_offset: next,
            end_offset: None,
            max_event_ms,
            min_event_ms: None,
            last_record_at: last_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        }
    }

    #[test]
    fn the_observed_span_is_the_event_time_both_sides_cover() {
        let with = |min: i64, max: i64| read::PartitionRow {
            min_event_ms: Some(min),
            ..row("t", 0, 10, Some(max), None)
        };
        assert_eq!(observed_span(&[], &[]), None, "no events yet");
        // The baseline holds history from 1,000; the candidate started at 5,000 and is behind.
        let baseline = [with(1000, 50000), with(3000, 20000)];
        assert_eq!(
            observed_span(&baseline, &[]),
            None,
            "one side alone is no observation"
        );
        assert_eq!(
            observed_span(&baseline, &[with(5000, 40000)]),
            Some(ObservedSpan {
                since_ms: 5000,
                until_ms: 40000
            })
        );
    }

    #[test]
    fn auto_starts_after_the_later_sides_first_event_once_both_sides_are_known() {
        let with = |min: i64| read::PartitionRow {
            min_event_ms: Some(min),
            ..row("t", 0, 10, Some(min + 100), None)
        };
        let (baseline, candidate) = ([with(1_000), with(3_000)], [with(50_000)]);
        assert_eq!(
            auto_start([Some(1), Some(1)], &baseline, &candidate, 60_000),
            Some(110_000),
            "the later side's first event plus the margin"
        );
        // A side held back (a partition with records but no event time yet) holds the start back.
        assert_eq!(
            auto_start([Some(1), None], &baseline, &candidate, 60_000),
            None
        );
        // A side without any event yet: undecided.
        assert_eq!(auto_start([Some(1), Some(1)], &baseline, &[], 60_000), None);
    }

    const NOW: i64 = 1_000_000;
    const IDLE: i64 = 1_000;

    /// The watermark of topic `t`'s side at `NOW` with `ends` as the partitions' end offsets.
    fn at_now(
        rows: &[read::PartitionRow],
        ends: &[(&str, i32, i64)],
    ) -> (Vec<PartitionStatus>, Option<i64>) {
        let ends = EndOffsets::with(ends);
        side_watermark(rows, &["t".to_owned()], &ends, NOW, IDLE)
    }

    #[test]
    fn the_slowest_active_partition_sets_the_watermark() {
        let rows = [
            row("t", 0, 5, Some(500), Some(NOW)),
            row("t", 1, 3, Some(300), Some(NOW)),
        ];
        let (_, w) = at_now(&rows, &[("t", 0, 9), ("t", 1, 9)]);
        assert_eq!(w, Some(300));
    }

    #[test]
    fn unconsumed_partitions_and_unknown_event_times_hold_it_back() {
        let rows = [row("t", 0, 5, Some(500), Some(NOW))];
        // Partition 1 has records nobody consumed yet.
        let (parts, w) = at_now(&rows, &[("t", 0, 5), ("t", 1, 4)]);
        assert_eq!(w, None);
        assert_eq!(parts.len(), 2);
        // An active partition that has no event time yet.
        let rows = [
            row("t", 0, 5, Some(500), Some(NOW)),
            row("t", 1, 2, None, Some(NOW)),
        ];
        let (_, w) = at_now(&rows, &[("t", 0, 9), ("t", 1, 9)]);
        assert_eq!(w, None);
    }

    #[test]
    fn idle_partitions_and_error_topics_do_not_stall_it() {
        let rows = [
            row("t", 0, 5, Some(500), Some(NOW - 5 * IDLE)),
            row("t", 1, 9, Some(800), Some(NOW)),
            row("t.dlq", 0, 1, None, Some(NOW)),
        ];
        let (_, w) = at_now(&rows, &[("t", 0, 5), ("t", 1, 20), ("t.dlq", 0, 7)]);
        assert_eq!(w, Some(800));
        // Everything caught up and quiet: the watermark moves on with the clock.
        let rows = [row("t", 0, 5, Some(500), Some(NOW - 5 * IDLE))];
        let (_, w) = at_now(&rows, &[("t", 0, 5)]);
        assert_eq!(w, Some(NOW - IDLE));
    }
}
