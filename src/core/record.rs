//! One Kafka record as the core sees it, whatever it was read from (a capture line or a consumer).

use std::borrow::Cow;

/// One header: name and value (`None` for a null value).
pub type Header<'a> = (Cow<'a, str>, Option<Cow<'a, [u8]>>);

/// A borrowed view of a Kafka record. Offsets, partitions and record timestamps are carried for
/// evidence and partition checks only: they are never part of an event's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub topic: Cow<'a, str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    /// Header (name, value) pairs in arrival order; order carries no meaning (Go map iteration).
    pub headers: Vec<Header<'a>>,
    pub key: Option<Cow<'a, [u8]>>,
    /// `None` is a tombstone.
    pub payload: Option<Cow<'a, [u8]>>,
}

impl RecordView<'_> {
    /// The first value of a header, if present and non-null.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}
