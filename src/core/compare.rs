//! Key-level parity between the two sides' events: deduplication, event sets and final states.
//!
//! Each side keeps one fixed-size [`EventRow`] per record (64 bytes: key hash, position, digest,
//! location, partition, operation) and nothing else, so memory grows with events, not with payload
//! sizes. Key texts and payloads needed for explanations are read again, only for mismatching keys,
//! from the row's `loc` (see `replay`): the trade is a second, targeted read for a small footprint.

use super::event::{Digest, Event};
use super::operation::Operation;
use super::position::Position;
use crate::model::MismatchKind;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One record's event in compact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRow {
    pub key: u128,
    /// The source position, or the arrival sequence number when the service has no position.
    pub position: Position,
    pub digest: Digest,
    /// Where the record came from (opaque to the core; the adapter uses it to re-read the record).
    pub loc: u64,
    /// Kafka partition, `-1` when unknown.
    pub partition: i32,
    pub operation: Operation,
}

impl EventRow {
    fn op(&self) -> Operation {
        self.operation
    }
}

/// Counters of one side, whatever happened to its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideCounters {
    pub records: u64,
    pub unparseable: u64,
    /// Of `unparseable`, the records a decoder refused, by reason (`unknown_schema`, `undecodable`).
    pub unparseable_by_reason: BTreeMap<&'static str, u64>,
    pub rejected: BTreeMap<&'static str, u64>,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Events outside the compared time range (`diff --from/--until`).
    pub excluded: super::range::Excluded,
}

/// Collects one side's events as they arrive.
#[derive(Debug, Default)]
pub struct SideAccumulator {
    rows: Vec<EventRow>,
    next_seq: u128,
    pub counters: SideCounters,
}

impl SideAccumulator {
    pub fn push(&mut self, event: &Event, partition: i32, loc: u64, key: u128) {
        self.next_seq += 1;
        self.rows.push(EventRow {
            key,
            position: event.position.unwrap_or(self.next_seq),
            digest: event.digest,
            loc,
            partition,
            operation: event.operation,
        });
    }

    /// Sort and deduplicate: on (key, operation, position) with a position, on the digest without.
    pub fn finish(mut self, has_position: bool) -> SideEvents {
        let mut duplicates = 0;
        let mut conflicting = 0;
        if has_position {
            self.rows
                .sort_unstable_by_key(|r| (r.key, r.position, r.operation, r.digest, r.loc));
            self.rows.dedup_by(|later, kept| {
                let same_identity = later.key == kept.key
                    && later.position == kept.position
                    && later.operation == kept.operation;
                if same_identity && later.digest == kept.digest {
                    duplicates += 1;
                    return true;
                }
                if same_identity {
                    // Same source change replayed with other content: kept as two events, so the key
                    // cannot match a side that has only one of them.
                    conflicting += 1;
                }
                false
            });
        } else {
            self.rows
                .sort_unstable_by_key(|r| (r.key, r.digest, r.position));
            self.rows.dedup_by(|later, kept| {
                let same = later.key == kept.key && later.digest == kept.digest;
                duplicates += u64::from(same);
                same
            });
        }
        self.rows.shrink_to_fit();
        let mut by_operation = BTreeMap::new();
        for row in &self.rows {
            *by_operation.entry(row.op()).or_insert(0u64) += 1;
        }
        SideEvents {
            rows: self.rows,
            duplicates,
            conflicting,
            by_operation,
            counters: self.counters,
        }
    }
}

/// One side's distinct events, sorted by key.
#[derive(Debug, Default)]
pub struct SideEvents {
    pub rows: Vec<EventRow>,
    pub duplicates: u64,
    pub conflicting: u64,
    pub by_operation: BTreeMap<Operation, u64>,
    pub counters: SideCounters,
}

impl SideEvents {
    fn groups(&self) -> impl Iterator<Item = &[EventRow]> {
        self.rows.chunk_by(|a, b| a.key == b.key)
    }
}

/// A key whose events disagree, with the first differing event of each side (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    pub key: u128,
    pub kind: MismatchKind,
    pub baseline: Option<EventRow>,
    pub candidate: Option<EventRow>,
    pub events_missing_in_candidate: u64,
    pub events_extra_in_candidate: u64,
    pub events_differing: u64,
    pub final_state_equal: bool,
}

/// The key-level result of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub total_keys: u64,
    pub matched: u64,
    pub partition_mismatched_keys: u64,
    pub mismatches: Vec<KeyMismatch>,
}

impl Comparison {
    pub fn count(&self, kind: MismatchKind) -> u64 {
        self.mismatches.iter().filter(|m| m.kind == kind).count() as u64
    }
}

/// The event that defines a key's final state: greatest position (arrival order without one),
/// ignoring before-images; `None` digest when that event is a delete (the row is absent).
fn final_state(events: &[EventRow]) -> Option<Option<Digest>> {
    let last = events
        .iter()
        .filter(|r| r.op() != Operation::UpdateBefore)
        .max_by_key(|r| (r.position, r.operation))?;
    Some((last.op() != Operation::Delete).then_some(last.digest))
}

fn compare_key(
    key: u128,
    b: &[EventRow],
    c: &[EventRow],
    has_position: bool,
) -> Option<KeyMismatch> {
    let mut m = KeyMismatch {
        key,
        kind: MismatchKind::Mismatched,
        baseline: None,
        candidate: None,
        events_missing_in_candidate: 0,
        events_extra_in_candidate: 0,
        events_differing: 0,
        final_state_equal: final_state(b) == final_state(c),
    };
    let ident = |r: &EventRow| {
        if has_position {
            (r.position, Some(r.operation), 0)
        } else {
            (0, None, r.digest)
        }
    };
    let (mut i, mut j) = (0, 0);
    // With positions the first differing event is one identity (the earliest difference); without,
    // a changed event shows as one missing plus one extra, so the earliest of each side are paired.
    let (mut first_b, mut first_c): (Option<EventRow>, Option<EventRow>) = (None, None);
    let mut first_found = false;
    let mut note = |slot_b: Option<EventRow>, slot_c: Option<EventRow>| {
        if has_position {
            if !first_found {
                (first_b, first_c, first_found) = (slot_b, slot_c, true);
            }
            return;
        }
        for (slot, row) in [(&mut first_b, slot_b), (&mut first_c, slot_c)] {
            if let Some(row) = row {
                if slot.is_none_or(|s| row.position < s.position) {
                    *slot = Some(row);
                }
            }
        }
    };
    while i < b.len() || j < c.len() {
        let order = match (b.get(i), c.get(j)) {
            (Some(x), Some(y)) => ident(x).cmp(&ident(y)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                m.events_missing_in_candidate += 1;
                note(Some(b[i]), None);
                i += 1;
            }
            Ordering::Greater => {
                m.events_extra_in_candidate += 1;
                note(None, Some(c[j]));
                j += 1;
            }
            Ordering::Equal => {
                if b[i].digest != c[j].digest {
                    m.events_differing += 1;
                    note(Some(b[i]), Some(c[j]));
                }
                i += 1;
                j += 1;
            }
        }
    }
    let differs =
        m.events_missing_in_candidate + m.events_extra_in_candidate + m.events_differing > 0;
    if !differs && m.final_state_equal {
        return None;
    }
    if !differs {
        // Same events, another final state: applied out of order (only possible without positions).
        first_b = b.iter().copied().max_by_key(|r| r.position);
        first_c = c.iter().copied().max_by_key(|r| r.position);
    }
    if has_position {
        // An event whose operation changed shows as one missing plus one extra at the same
        // position: pair them so the explanation compares the two.
        let at = |rows: &[EventRow], p: Position| rows.iter().copied().find(|r| r.position == p);
        match (first_b, first_c) {
            (Some(x), None) => first_c = at(c, x.position),
            (None, Some(y)) => first_b = at(b, y.position),
            _ => {}
        }
    }
    m.baseline = first_b;
    m.candidate = first_c;
    Some(m)
}

/// Compare two sides' distinct events key by key.
pub fn compare(baseline: &SideEvents, candidate: &SideEvents, has_position: bool) -> Comparison {
    let mut out = Comparison::default();
    let mut bs = baseline.groups().peekable();
    let mut cs = candidate.groups().peekable();
    loop {
        let order = match (bs.peek(), cs.peek()) {
            (None, None) => break,
            (Some(b), Some(c)) => b[0].key.cmp(&c[0].key),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        out.total_keys += 1;
        let only = |kind, rows: &[EventRow]| KeyMismatch {
            key: rows[0].key,
            kind,
            baseline: (kind == MismatchKind::MissingInCandidate).then_some(rows[0]),
            candidate: (kind == MismatchKind::ExtraInCandidate).then_some(rows[0]),
            events_missing_in_candidate: if kind == MismatchKind::MissingInCandidate {
                rows.len() as u64
            } else {
                0
            },
            events_extra_in_candidate: if kind == MismatchKind::ExtraInCandidate {
                rows.len() as u64
            } else {
                0
            },
            events_differing: 0,
            final_state_equal: false,
        };
        match order {
            Ordering::Less => {
                if let Some(b) = bs.next() {
                    out.mismatches
                        .push(only(MismatchKind::MissingInCandidate, b));
                }
            }
            Ordering::Greater => {
                if let Some(c) = cs.next() {
                    out.mismatches.push(only(MismatchKind::ExtraInCandidate, c));
                }
            }
            Ordering::Equal => {
                let (Some(b), Some(c)) = (bs.next(), cs.next()) else {
                    break;
                };
                if b[0].partition >= 0 && c[0].partition >= 0 && b[0].partition != c[0].partition {
                    out.partition_mismatched_keys += 1;
                }
                match compare_key(b[0].key, b, c, has_position) {
                    Some(m) => out.mismatches.push(m),
                    None => out.matched += 1,
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
