//! Key-level comparison: every mismatch kind, deduplication, final states, partitions.

use super::*;

fn row(key: u128, position: u128, op: Operation, digest: u128) -> (u128, Event, i32) {
    let event = Event {
        key: vec![],
        operation: op,
        position: Some(position),
        digest,
        event_time_ms: None,
        shape: crate::core::event::Shape::Json,
        content: None,
        canonical: None,
    };
    (key, event, 0)
}

fn side(rows: &[(u128, Event, i32)], has_position: bool) -> SideEvents {
    let mut acc = SideAccumulator::default();
    for (i, (key, event, partition)) in rows.iter().enumerate() {
        let mut event = event.clone();
        if !has_position {
            event.position = None;
        }
        acc.push(&event, *partition, i as u64, *key);
    }
    acc.finish(has_position)
}

use Operation::*;

#[test]
fn equal_sides_match_and_duplicates_are_counted_not_reported() {
    let b = side(
        &[
            row(1, 10, Insert, 100),
            row(1, 11, Update, 101),
            row(1, 10, Insert, 100),
        ],
        true,
    );
    let c = side(
        &[
            row(1, 11, Update, 101),
            row(1, 10, Insert, 100),
            row(1, 11, Update, 101),
            row(1, 11, Update, 101),
        ],
        true,
    );
    assert_eq!((b.rows.len(), b.duplicates), (2, 1));
    assert_eq!((c.rows.len(), c.duplicates), (2, 2));
    let cmp = compare(&b, &c, true);
    assert_eq!(
        (cmp.total_keys, cmp.matched, cmp.mismatches.len()),
        (1, 1, 0)
    );
}

#[test]
fn each_mismatch_kind() {
    let b = side(
        &[
            row(1, 1, Insert, 1),
            row(2, 2, Insert, 2),
            row(3, 3, Insert, 3),
            row(3, 4, Update, 4),
            row(5, 6, Insert, 6),
        ],
        true,
    );
    let c = side(
        &[
            row(2, 2, Insert, 2),
            row(3, 3, Insert, 3),
            row(3, 4, Update, 44),
            row(4, 5, Insert, 5),
            row(5, 6, Insert, 6),
            row(5, 7, Delete, 7),
        ],
        true,
    );
    let cmp = compare(&b, &c, true);
    assert_eq!(cmp.total_keys, 5);
    assert_eq!(cmp.matched, 1);
    let kinds: Vec<_> = cmp.mismatches.iter().map(|m| (m.key, m.kind)).collect();
    assert_eq!(
        kinds,
        [
            (1, MismatchKind::MissingInCandidate),
            (3, MismatchKind::Mismatched),
            (4, MismatchKind::ExtraInCandidate),
            (5, MismatchKind::Mismatched)
        ]
    );
    let changed = &cmp.mismatches[1];
    assert_eq!(
        (changed.events_differing, changed.final_state_equal),
        (1, false)
    );
    assert_eq!(changed.baseline.map(|r| r.digest), Some(4));
    assert_eq!(changed.candidate.map(|r| r.digest), Some(44));
    let extra_delete = &cmp.mismatches[3];
    assert_eq!(
        (
            extra_delete.events_extra_in_candidate,
            extra_delete.final_state_equal
        ),
        (1, false)
    );
    assert_eq!(extra_delete.baseline, None);
}

#[test]
fn a_dropped_middle_update_keeps_the_final_state() {
    let b = side(
        &[
            row(1, 1, Insert, 1),
            row(1, 2, Update, 2),
            row(1, 3, Update, 3),
        ],
        true,
    );
    let c = side(&[row(1, 1, Insert, 1), row(1, 3, Update, 3)], true);
    let m = &compare(&b, &c, true).mismatches[0];
    assert_eq!(
        (m.events_missing_in_candidate, m.final_state_equal),
        (1, true)
    );
    assert_eq!(m.baseline.map(|r| r.position), Some(2));
}

#[test]
fn a_changed_operation_pairs_both_events_for_the_explanation() {
    let b = side(&[row(1, 1, Insert, 1), row(1, 2, Update, 2)], true);
    let c = side(&[row(1, 1, Insert, 1), row(1, 2, Delete, 3)], true);
    let m = &compare(&b, &c, true).mismatches[0];
    assert_eq!(
        (m.events_missing_in_candidate, m.events_extra_in_candidate),
        (1, 1)
    );
    assert_eq!(
        (m.baseline.map(|r| r.digest), m.candidate.map(|r| r.digest)),
        (Some(2), Some(3))
    );
}

#[test]
fn same_identity_other_content_on_one_side_is_a_conflict() {
    let b = side(&[row(1, 1, Insert, 1), row(1, 1, Insert, 9)], true);
    assert_eq!((b.rows.len(), b.conflicting, b.duplicates), (2, 1, 0));
    let c = side(&[row(1, 1, Insert, 1)], true);
    assert_eq!(compare(&b, &c, true).mismatches.len(), 1);
}

#[test]
fn update_before_images_do_not_define_the_final_state() {
    let b = side(
        &[row(1, 5, UpdateBefore, 1), row(1, 5, UpdateAfter, 2)],
        true,
    );
    assert_eq!(final_state(&b.rows), Some(Some(2)));
    let d = side(&[row(1, 5, Insert, 1), row(1, 6, Delete, 3)], true);
    assert_eq!(final_state(&d.rows), Some(None));
}

#[test]
fn without_positions_digests_identify_and_arrival_orders() {
    // Same two contents, applied in the other order: sets equal, final state differs.
    let b = side(
        &[
            row(1, 0, Change, 1),
            row(1, 0, Change, 2),
            row(1, 0, Change, 1),
        ],
        false,
    );
    let c = side(&[row(1, 0, Change, 2), row(1, 0, Change, 1)], false);
    assert_eq!(b.duplicates, 1);
    let m = &compare(&b, &c, false).mismatches[0];
    assert_eq!(
        (
            m.events_missing_in_candidate,
            m.events_extra_in_candidate,
            m.final_state_equal
        ),
        (0, 0, false)
    );
    // A changed content shows as one missing plus one extra, paired for the explanation.
    let c2 = side(&[row(1, 0, Change, 1), row(1, 0, Change, 3)], false);
    let m2 = &compare(&b, &c2, false).mismatches[0];
    assert_eq!(
        (
            m2.baseline.map(|r| r.digest),
            m2.candidate.map(|r| r.digest)
        ),
        (Some(2), Some(3))
    );
}

#[test]
fn partition_moves_are_counted_not_drift() {
    let mut b_rows = vec![row(1, 1, Insert, 1)];
    b_rows[0].2 = 3;
    let b = side(&b_rows, true);
    let c = side(&[row(1, 1, Insert, 1)], true);
    let cmp = compare(&b, &c, true);
    assert_eq!((cmp.partition_mismatched_keys, cmp.matched), (1, 1));
}
