//! Events from beyond the dedupe horizon of a service with positions, held until the checkpoint
//! can compare them with their key's last counted position.
//!
//! An event older than its partition's horizon and not remembered (`serve::lane::dedupe`) is
//! either new or a replay of an event counted so long ago that its identity was forgotten.
//! Without positions nothing tells the two apart: it is counted and flagged. With positions the
//! runtimes keep each key's order, so every event of a key counted before has a position at or
//! below the key's stored final position: an event ordered before that final one (or the final
//! one itself) is a replay, one after it is new. The lookup is one indexed read of the few keys
//! concerned, inside the checkpoint's transaction (`store::write`), so it sees every earlier
//! checkpoint of the partition whichever replica wrote it.

use super::{Batch, BatchEvent, LoggedDuplicate};
use crate::core::operation::Operation;
use crate::model::{Side, TallyKind};
use rustc_hash::FxHashMap;

/// The `flagged` reason of an event counted as new though it lies beyond its partition's dedupe
/// horizon and nothing could tell it from a replay.
pub const BEYOND_HORIZON: &str = "beyond_dedupe_horizon";
/// The `flagged` reason of an event from beyond the horizon recognized as a replay by its key's
/// last counted position (counted as a re-delivery).
pub const REPLAY_BY_POSITION: &str = "replay_recognized_by_position";

/// A new-looking event from beyond the horizon, waiting for its key's stored final position.
#[derive(Debug, Clone)]
pub struct Unverified {
    pub event: BatchEvent,
    pub key: Vec<u8>,
    pub canonical: Option<Vec<u8>>,
    pub topic: String,
}

/// A key's stored final event on one side: its position, operation and digest (`None` for a
/// delete), as `keys` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFinal {
    pub position: u128,
    pub operation: Operation,
    pub digest: Option<u128>,
}

/// What an event from beyond the horizon is, given its key's stored final event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Ordered before the key's last counted event, or that event itself: counted already.
    Recognized,
    /// Ordered after everything counted for its key (or its key has nothing counted): new.
    New,
    /// At the final position with other content: no order tells, so counted and flagged.
    Unverifiable,
}

/// Decide on an event from beyond the horizon.
pub fn judge(e: &BatchEvent, stored: Option<&StoredFinal>) -> Replay {
    let Some(s) = stored else {
        return Replay::New;
    };
    let digest = (e.operation != Operation::Delete).then_some(e.digest);
    match e.position.cmp(&s.position) {
        std::cmp::Ordering::Less => Replay::Recognized,
        std::cmp::Ordering::Greater => Replay::New,
        std::cmp::Ordering::Equal if (e.operation, digest) == (s.operation, s.digest) => {
            Replay::Recognized
        }
        std::cmp::Ordering::Equal => Replay::Unverifiable,
    }
}

impl Batch {
    /// Hold an event from beyond the horizon (of a service with positions) for the checkpoint:
    /// counted as a record of its operation now, as a new event or a re-delivery once resolved.
    pub fn defer_unverified(&mut self, u: Unverified) {
        self.touch();
        let e = &u.event;
        self.tally(
            e.service,
            e.side,
            TallyKind::Operation,
            e.operation.as_str(),
        );
        self.unverified.push(u);
    }

    /// The keys whose stored final event [`Batch::resolved`] needs.
    pub fn unverified_keys(&self) -> Vec<(usize, Side, u128)> {
        let mut keys: Vec<_> = self
            .unverified
            .iter()
            .map(|u| (u.event.service, u.event.side, u.event.key_hash))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// This batch with its held events resolved against their keys' stored final events: a
    /// recognized replay becomes a re-delivery (flagged `replay_recognized_by_position`), a new
    /// event is counted (flagged `beyond_dedupe_horizon` when its position could not decide).
    pub fn resolved(&self, stored: &FxHashMap<(usize, Side, u128), StoredFinal>) -> Batch {
        let mut out = self.rebased(&Default::default());
        out.unverified.clear();
        for u in &self.unverified {
            let e = u.event;
            match judge(&e, stored.get(&(e.service, e.side, e.key_hash))) {
                Replay::Recognized => {
                    out.duplicates.push(LoggedDuplicate::of(&e));
                    out.tally(e.service, e.side, TallyKind::Flagged, REPLAY_BY_POSITION);
                }
                verdict => {
                    if verdict == Replay::Unverifiable {
                        out.tally(e.service, e.side, TallyKind::Flagged, BEYOND_HORIZON);
                    }
                    out.fold(e, &u.key, u.canonical.clone());
                    out.remember(&u.topic, e.partition, e.identity);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u128, operation: Operation, digest: u128) -> BatchEvent {
        BatchEvent {
            service: 0,
            side: Side::Baseline,
            key_hash: 7,
            position,
            sequence: position,
            operation,
            digest,
            identity: position ^ digest,
            arrival: 0,
            event_ms: 0,
            window_start_ms: 0,
            partition: 0,
            offset: 0,
            record_ms: None,
        }
    }

    const FINAL: StoredFinal = StoredFinal {
        position: 10,
        operation: Operation::Update,
        digest: Some(99),
    };

    #[test]
    fn a_key_s_last_counted_position_tells_a_replay_from_a_new_event() {
        let judged = |p, op, d| judge(&event(p, op, d), Some(&FINAL));
        assert_eq!(
            judged(3, Operation::Insert, 1),
            Replay::Recognized,
            "before"
        );
        assert_eq!(
            judged(10, Operation::Update, 99),
            Replay::Recognized,
            "the final one"
        );
        assert_eq!(judged(11, Operation::Update, 5), Replay::New, "after");
        assert_eq!(
            judged(10, Operation::Update, 98),
            Replay::Unverifiable,
            "same position, other content"
        );
        assert_eq!(
            judge(&event(3, Operation::Insert, 1), None),
            Replay::New,
            "nothing counted for the key"
        );
        let deleted = StoredFinal {
            position: 10,
            operation: Operation::Delete,
            digest: None,
        };
        assert_eq!(
            judge(&event(10, Operation::Delete, 42), Some(&deleted)),
            Replay::Recognized,
            "a delete's digest is not stored"
        );
    }
}
