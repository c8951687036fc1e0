//! The pure change model shared by the services: key histories, transactions, commit clock, and
//! the catalogue of injected drift.
//!
//! Work is done in blocks of a few dozen keys whose histories are generated whole and interleaved,
//! so memory depends on the block size, never on the number of events requested.

use super::capture::Record;
use super::rng::Rng;

/// A source change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A row of the initial snapshot.
    Read,
    Insert,
    Update,
    Delete,
}

/// Constraints on one key's history, so a drift key has the events its drift needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    pub min_updates: u32,
    pub delete: Option<bool>,
    /// The row existed before streaming started: its history opens with a snapshot `Read`.
    pub snapshot: bool,
}

/// Every kind of drift the drift pair carries; the manifest names them by [`Drift::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// All events of the key are missing from the candidate.
    MissingInCandidate,
    /// The key exists only in the candidate.
    ExtraInCandidate,
    /// One update inside the key's history never reached the candidate.
    DroppedUpdate,
    /// The candidate has one update the baseline never had.
    ExtraEvent,
    /// The candidate labels an update as an insert.
    OperationChanged,
    /// `"1050.01"` on the baseline, `"1050"` on the candidate: a real difference, not padding.
    DecimalDiffers,
    /// A `jsonb` integer beyond 2^53 that the baseline passed through `float64`.
    JsonbBigInteger,
    /// The candidate wrote local wall-clock time labelled `+00:00`: another instant.
    TimestampInstant,
    /// The candidate dropped the key's delete: the row survives there.
    DeleteDropped,
    /// The candidate's amount differs on one update.
    AmountAltered,
    /// Same events, but the candidate's last two arrive swapped (no position to reorder them).
    OutOfOrderFinalState,
}

impl Drift {
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingInCandidate => "missing_in_candidate",
            Self::ExtraInCandidate => "extra_in_candidate",
            Self::DroppedUpdate => "dropped_update",
            Self::ExtraEvent => "extra_event",
            Self::OperationChanged => "operation_changed",
            Self::DecimalDiffers => "decimal_differs",
            Self::JsonbBigInteger => "jsonb_big_integer_precision",
            Self::TimestampInstant => "timestamp_instant",
            Self::DeleteDropped => "delete_dropped",
            Self::AmountAltered => "amount_altered",
            Self::OutOfOrderFinalState => "out_of_order_final_state",
        }
    }

    /// The history a key needs for this drift to be observable.
    pub fn shape(self) -> Shape {
        let updates = |n| Shape {
            min_updates: n,
            ..Shape::default()
        };
        match self {
            Self::DroppedUpdate => Shape {
                min_updates: 3,
                delete: Some(false),
                snapshot: false,
            },
            Self::DeleteDropped => Shape {
                min_updates: 1,
                delete: Some(true),
                snapshot: false,
            },
            Self::OutOfOrderFinalState => updates(2),
            Self::ExtraEvent
            | Self::OperationChanged
            | Self::DecimalDiffers
            | Self::TimestampInstant => Shape {
                min_updates: 1,
                delete: Some(false),
                snapshot: false,
            },
            Self::AmountAltered => updates(1),
            Self::MissingInCandidate | Self::ExtraInCandidate | Self::JsonbBigInteger => {
                Shape::default()
            }
        }
    }
}

/// The drift, if any, planted on the key with this ordinal (0-based, per service).
pub fn drift_at(plan: &[(u64, Drift)], ordinal: u64) -> Option<Drift> {
    plan.iter().find(|(o, _)| *o == ordinal).map(|(_, d)| *d)
}

/// The operations of one key's history.
pub fn history(rng: &mut Rng, shape: Shape) -> Vec<Op> {
    let mut ops = vec![if shape.snapshot { Op::Read } else { Op::Insert }];
    // Most rows change a few times; a few are busy.
    let updates = match rng.range(0, 10) {
        0..=2 => 0,
        3..=7 => rng.range(1, 4),
        _ => rng.range(4, 8),
    } as u32;
    ops.extend((0..updates.max(shape.min_updates)).map(|_| Op::Update));
    if shape.delete.unwrap_or_else(|| rng.chance(12)) {
        ops.push(Op::Delete);
    }
    ops
}

/// Commit time of the source database, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone)]
pub struct Clock {
    pub ns: i64,
}

impl Clock {
    /// 2026-08-20T10:00:00Z, the day of the dual run.
    pub fn start() -> Self {
        Self {
            ns: 1_787_220_000_000_000_000,
        }
    }

    fn tick(&mut self, rng: &mut Rng) -> i64 {
        // Between 1 ms and ~0.9 s between commits, with sub-microsecond digits.
        self.ns += rng.range_i64(1_000_000, 900_000_000) + rng.range_i64(0, 1000);
        self.ns
    }
}

/// One change placed in commit order.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub key: usize,
    pub step: usize,
    pub commit_ns: i64,
    pub first_in_txn: bool,
    pub last_in_txn: bool,
}

/// Interleave the histories (each key's order kept) and group them into transactions of up to
/// `max_txn` changes. `distinct_keys` closes a transaction before a key would repeat in it: SQL
/// Server stamps a whole transaction with one `__$start_lsn`, so a key changed twice in one
/// transaction would produce two events with one identity (see the report on what the rules absorb).
/// Snapshot `Read`s come first, as one pseudo-transaction at the current clock.
pub fn schedule(
    rng: &mut Rng,
    histories: &[Vec<Op>],
    max_txn: u64,
    distinct_keys: bool,
    clock: &mut Clock,
) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(histories.iter().map(Vec::len).sum());
    let mut next: Vec<usize> = vec![0; histories.len()];
    let snapshot: Vec<usize> = (0..histories.len())
        .filter(|&k| histories[k].first() == Some(&Op::Read))
        .collect();
    let commit_ns = clock.ns;
    for (i, &k) in snapshot.iter().enumerate() {
        next[k] = 1;
        slots.push(Slot {
            key: k,
            step: 0,
            commit_ns,
            first_in_txn: i == 0,
            last_in_txn: i + 1 == snapshot.len(),
        });
    }
    let mut live: Vec<usize> = (0..histories.len())
        .filter(|&k| next[k] < histories[k].len())
        .collect();
    let mut in_txn: Vec<usize> = Vec::new();
    let mut txn_left = 0;
    let mut commit_ns = clock.ns;
    while !live.is_empty() {
        let at = rng.index(live.len());
        let k = live[at];
        if txn_left == 0 || (distinct_keys && in_txn.contains(&k)) {
            if let Some(last) = slots.last_mut() {
                last.last_in_txn = true;
            }
            in_txn.clear();
            txn_left = rng.range(1, max_txn + 1);
            commit_ns = clock.tick(rng);
        }
        let first_in_txn = in_txn.is_empty();
        in_txn.push(k);
        txn_left -= 1;
        slots.push(Slot {
            key: k,
            step: next[k],
            commit_ns,
            first_in_txn,
            last_in_txn: false,
        });
        next[k] += 1;
        if next[k] == histories[k].len() {
            live.swap_remove(at);
        }
    }
    if let Some(last) = slots.last_mut() {
        last.last_in_txn = true;
    }
    slots
}

/// What one key became in the output, for the manifest.
#[derive(Debug, Clone)]
pub struct KeyOutcome {
    /// The key as the comparison displays it.
    pub key: String,
    pub drift: Option<Drift>,
    pub partition_differs: bool,
}

/// One block of a service: the records each side produced, in production order.
#[derive(Debug, Default)]
pub struct Block {
    pub baseline: Vec<Record>,
    pub candidate: Vec<Record>,
    pub keys: Vec<KeyOutcome>,
}

/// A service's generator: emits blocks until asked to stop.
pub trait ServiceModel {
    fn name(&self) -> &'static str;
    fn next_block(&mut self, rng: &mut Rng, drift: bool) -> Block;
}
