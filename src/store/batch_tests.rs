//! Unit tests of `store::batch`: final states, tallies, partition progress.

use super::*;
use crate::model::{TallyKind, TopicPartition};
use crate::store::batch::TallyId;

fn ev(position: u128, operation: Operation, arrival: i64, event_ms: i64) -> BatchEvent {
    BatchEvent {
        service: 0,
        side: Side::Baseline,
        key_hash: 7,
        position,
        sequence: position,
        operation,
        digest: position * 10 + operation as u128,
        identity: position,
        arrival,
        event_ms,
        window_start_ms: 0,
        partition: 1,
        offset: arrival,
        record_ms: None,
    }
}

fn plain() -> Option<Vec<u8>> {
    Some(br#"{"id":7}"#.to_vec())
}

#[test]
fn final_state_is_the_greatest_new_event_and_never_a_before_image() {
    let mut b = Batch::default();
    b.add_event(ev(5, Operation::UpdateBefore, 10, 100), b"7", plain());
    b.add_event(ev(5, Operation::UpdateAfter, 11, 100), b"7", plain());
    b.add_event(ev(3, Operation::Insert, 12, 300), b"7", plain());
    b.add_event(ev(6, Operation::UpdateBefore, 13, 50), b"7", plain());
    let k = &b.keys[&(0, Side::Baseline, 7)];
    assert_eq!(
        k.final_state().map(|c| c.order),
        Some((5, Operation::UpdateAfter, 11))
    );
    assert_eq!(k.last_event_ms, 300);
    let mut only_before = Batch::default();
    only_before.add_event(ev(6, Operation::UpdateBefore, 13, 50), b"7", plain());
    assert_eq!(
        only_before.keys[&(0, Side::Baseline, 7)]
            .final_state()
            .map(|c| c.order.1),
        Some(Operation::UpdateBefore)
    );
    assert_eq!(
        b.tallies[&TallyId::of(0, Side::Baseline, TallyKind::Operation, "update_before")],
        2
    );
    assert_eq!(b.records, 4);
}

#[test]
fn without_positions_the_final_state_is_the_last_arrival_whatever_its_operation() {
    // A service with operations but no position: deleted, then inserted again. The insert arrived
    // last and is the final state (as `diff` decides), though a delete orders after an insert.
    let mut b = Batch::default();
    let unpositioned = |operation, arrival| BatchEvent {
        position: 0,
        sequence: arrival as u128,
        ..ev(0, operation, arrival, 1)
    };
    b.add_event(unpositioned(Operation::Delete, 5), b"7", None);
    b.add_event(unpositioned(Operation::Insert, 9), b"7", plain());
    let k = &b.keys[&(0, Side::Baseline, 7)];
    assert_eq!(k.final_state().map(|c| c.order.1), Some(Operation::Insert));
}

#[test]
fn duplicates_count_as_records_and_identities_are_kept_per_partition() {
    let mut b = Batch::default();
    b.add_event(ev(1, Operation::Insert, 1, 1), b"7", plain());
    b.remember("t", 1, 11);
    b.add_duplicate(&ev(1, Operation::Insert, 1, 1));
    assert_eq!(
        b.duplicates.len(),
        1,
        "a re-delivery is logged for a later epoch"
    );
    b.remember("t", 1, 12);
    b.remember("u", 1, 13);
    assert_eq!(b.records, 2);
    assert_eq!(b.events.len(), 1);
    assert_eq!(
        b.tallies[&TallyId::of(0, Side::Baseline, TallyKind::Operation, "insert")],
        2
    );
    assert_eq!(b.identities[&TopicPartition::new("t", 1)], vec![11, 12]);
    assert_eq!(b.identities[&TopicPartition::new("u", 1)], vec![13]);
}

#[test]
fn deletes_have_no_content_and_samples_are_bounded() {
    let mut b = Batch::default();
    b.add_event(ev(8, Operation::Insert, 1, 1), b"7", plain());
    let final_content = |b: &Batch| {
        b.keys[&(0, Side::Baseline, 7)]
            .final_state()
            .map(|c| (c.order.1, c.content.clone()))
    };
    assert_eq!(
        final_content(&b),
        Some((Operation::Insert, Some(br#"{"id":7}"#.to_vec())))
    );
    b.add_event(ev(9, Operation::Delete, 2, 1), b"7", plain());
    assert_eq!(final_content(&b), Some((Operation::Delete, None)));
    for i in 0..20 {
        let record = RecordView {
            topic: "t".into(),
            offset: i,
            key: Some(b"\0k"[..].into()),
            payload: Some(b"x\0x"[..].into()),
            ..RecordView::default()
        };
        b.without_event().note(
            0,
            Side::Candidate,
            TallyKind::Unparseable,
            "too_large",
            Some(&record),
        );
    }
    assert_eq!(b.samples.len(), SAMPLES_PER_REASON);
    // Any bytes are kept as they are, NUL included (Postgres `bytea`, not `text`).
    assert_eq!(b.samples[0].sample, b"x\0x");
    assert_eq!(b.samples[0].key.as_deref(), Some(&b"\0k"[..]));
    assert_eq!(
        b.tallies[&TallyId::of(0, Side::Candidate, TallyKind::Unparseable, "too_large")],
        20
    );
}

#[test]
fn partitions_advance_past_the_highest_offset() {
    let mut b = Batch::default();
    b.advance(("t", 0, 4), (0, Side::Baseline), Some(4), Some(10));
    b.advance(("t", 0, 6), (0, Side::Baseline), Some(4), Some(5));
    let p = &b.partitions[&TopicPartition::new("t", 0)];
    assert_eq!(
        (p.expected, p.next_offset, p.max_event_ms, p.min_event_ms),
        (Some(4), 7, Some(10), Some(5))
    );
}

#[test]
fn a_rewound_partition_stores_the_new_logs_offset_against_the_old_stored_one() {
    let mut b = Batch::default();
    b.advance(("t", 0, 40), (0, Side::Baseline), Some(40), None);
    b.advance(("t", 0, 41), (0, Side::Baseline), Some(40), None);
    // The log went back (topic recreated): offsets restart at 0.
    b.rewind(("t", 0, 0), (0, Side::Baseline), Some(40), 42);
    b.advance(("t", 0, 0), (0, Side::Baseline), Some(40), None);
    b.advance(("t", 0, 1), (0, Side::Baseline), Some(40), None);
    let p = &b.partitions[&TopicPartition::new("t", 0)];
    // Compare-and-set against the stored 40, then store 2: a restart resumes in the new log, its
    // arrivals counted from 42.
    assert_eq!(
        (p.expected, p.next_offset, p.arrival_base),
        (Some(40), 2, Some(42))
    );
    // A reset at a batch's first record of the partition.
    let mut first = Batch::default();
    first.rewind(("t", 1, 0), (0, Side::Baseline), Some(9), 10);
    first.advance(("t", 1, 0), (0, Side::Baseline), Some(9), None);
    let p = &first.partitions[&TopicPartition::new("t", 1)];
    assert_eq!(
        (p.expected, p.next_offset, p.arrival_base),
        (Some(9), 1, Some(10))
    );
}

proptest::proptest! {
    /// Folding events into the final state as they come chooses what choosing among all of them
    /// at the checkpoint did: the greatest order that is not a before-image, else the greatest,
    /// the later event on a tie, and its digest and content with it.
    #[test]
    fn the_folded_final_state_is_the_greatest_event_chosen_at_the_end(
        events in proptest::collection::vec((0u128..4, 0u8..7, 0i64..4), 1..12)
    ) {
        let operations = [
            Operation::UpdateBefore, Operation::Change, Operation::Read, Operation::Insert,
            Operation::Update, Operation::UpdateAfter, Operation::Delete,
        ];
        let mut b = Batch::default();
        let mut all = Vec::new();
        for (i, (sequence, op, arrival)) in events.into_iter().enumerate() {
            let operation = operations[usize::from(op)];
            let e = BatchEvent {
                sequence,
                digest: i as u128,
                ..ev(sequence, operation, arrival, 1)
            };
            b.add_event(e, b"7", plain());
            all.push(((sequence, operation, arrival), i as u128));
        }
        let chosen = all
            .iter()
            .filter(|(o, _)| o.1 != Operation::UpdateBefore)
            .max_by_key(|(o, _)| *o)
            .or_else(|| all.iter().max_by_key(|(o, _)| *o))
            .copied();
        let folded = b.keys[&(0, Side::Baseline, 7)]
            .final_state()
            .map(|c| (c.order, c.digest));
        proptest::prop_assert_eq!(folded, chosen);
    }
}
