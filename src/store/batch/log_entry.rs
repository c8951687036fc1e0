//! The event log's entries (`event_log.entries`): each counted event or re-delivered record of a
//! checkpoint, packed in a fixed 86-byte form, from which a new observation epoch's state is
//! counted again (`store::epochs`).

use crate::core::operation::Operation;
use crate::store::batch::BatchEvent;
use crate::store::StoreError;

/// Bytes per logged event.
pub const LOG_ENTRY_BYTES: usize = 86;

/// One counted event (or re-delivered record) as the log keeps it: enough to count it again into
/// a new epoch's keys, windows and tallies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    pub key_hash: u128,
    pub position: u128,
    pub sequence: u128,
    pub digest: u128,
    pub arrival: i64,
    pub event_ms: i64,
    pub partition: i32,
    pub operation: Operation,
    /// A re-delivered record of an event already counted: a record, not an event.
    pub duplicate: bool,
}

impl LogEntry {
    pub fn of(e: &BatchEvent) -> Self {
        Self {
            key_hash: e.key_hash,
            position: e.position,
            sequence: e.sequence,
            digest: e.digest,
            arrival: e.arrival,
            event_ms: e.event_ms,
            partition: e.partition,
            operation: e.operation,
            duplicate: false,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        for v in [self.key_hash, self.position, self.sequence, self.digest] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.arrival.to_be_bytes());
        out.extend_from_slice(&self.event_ms.to_be_bytes());
        out.extend_from_slice(&self.partition.to_be_bytes());
        out.push(self.operation as u8);
        out.push(u8::from(self.duplicate));
    }

    fn read(b: &[u8]) -> Result<Self, StoreError> {
        let invalid = || StoreError::Invalid("event_log entry".into());
        let u128_at = |i: usize| -> Result<u128, StoreError> {
            Ok(u128::from_be_bytes(
                b.get(i..i + 16)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(invalid)?,
            ))
        };
        let i64_at = |i: usize| -> Result<i64, StoreError> {
            Ok(i64::from_be_bytes(
                b.get(i..i + 8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(invalid)?,
            ))
        };
        let partition = i32::from_be_bytes(
            b.get(80..84)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(invalid)?,
        );
        let code = *b.get(84).ok_or_else(invalid)?;
        Ok(Self {
            key_hash: u128_at(0)?,
            position: u128_at(16)?,
            sequence: u128_at(32)?,
            digest: u128_at(48)?,
            arrival: i64_at(64)?,
            event_ms: i64_at(72)?,
            partition,
            operation: Operation::from_code(i16::from(code))
                .ok_or_else(|| StoreError::Invalid(format!("event_log operation code {code}")))?,
            duplicate: *b.get(85).ok_or_else(invalid)? != 0,
        })
    }
}

/// Entries packed for one `event_log` row.
pub fn pack(entries: &[LogEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * LOG_ENTRY_BYTES);
    for e in entries {
        e.write(&mut out);
    }
    out
}

/// The key hashes of one stored row's counted events (re-delivered records changed no key), read
/// in place: what the parity refresh needs of the log, without decoding whole entries.
pub fn counted_keys(bytes: &[u8]) -> impl Iterator<Item = u128> + '_ {
    bytes
        .chunks_exact(LOG_ENTRY_BYTES)
        .filter(|e| e[LOG_ENTRY_BYTES - 1] == 0)
        .filter_map(|e| e.get(..16)?.try_into().ok().map(u128::from_be_bytes))
}

/// The entries of one stored row.
pub fn unpack(bytes: &[u8]) -> Result<Vec<LogEntry>, StoreError> {
    bytes.chunks(LOG_ENTRY_BYTES).map(LogEntry::read).collect()
}
