//! One capture line → one [`RecordView`]: `kcat -C -J` and `rpk topic consume` JSON, detected per line.
//!
//! kcat always writes `payload` (null for a tombstone) and headers as a flat `[name, value, …]`
//! array (or, with its header-map option, `{name: [value, …]}`); rpk writes `value` (omitted when
//! empty, i.e. a tombstone), `timestamp`, and headers as `[{"key", "value"}]`.

use crate::core::record::RecordView;
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Which tool wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Kcat,
    Rpk,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    topic: Option<Cow<'a, str>>,
    partition: Option<i32>,
    offset: Option<i64>,
    ts: Option<i64>,
    timestamp: Option<i64>,
    #[serde(borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<Option<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<Option<Cow<'a, str>>>,
    #[serde(borrow)]
    headers: Option<Headers<'a>>,
    #[allow(dead_code)]
    value_size: Option<IgnoredAny>,
}

/// Distinguishes a field that is absent from one that is `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Headers<'a> {
    #[serde(borrow)]
    Flat(Vec<Option<Cow<'a, str>>>),
    #[serde(borrow)]
    Rpk(Vec<RpkHeader<'a>>),
    #[serde(borrow)]
    Map(BTreeMap<Cow<'a, str>, Vec<Option<Cow<'a, str>>>>),
}

#[derive(Deserialize)]
struct RpkHeader<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<Cow<'a, str>>,
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("no `topic` field")]
    MissingTopic,
    #[error("neither `payload` (kcat) nor `value`/`timestamp` (rpk): not a capture record")]
    UnknownShape,
    #[error("kcat `headers` array has an odd number of entries")]
    OddHeaders,
    #[error("rpk `value_size` (--meta-only capture) has no payload to compare")]
    MetaOnly,
}

fn bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// Parse one line of a capture.
pub fn parse_line(line: &[u8]) -> Result<(CaptureFormat, RecordView<'_>), LineError> {
    let parsed: Line<'_> =
        serde_json::from_slice(line).map_err(|e| LineError::Json(e.to_string()))?;
    let topic = parsed.topic.ok_or(LineError::MissingTopic)?;
    let (format, payload) = match (parsed.payload, parsed.value) {
        (Some(payload), _) => (CaptureFormat::Kcat, payload),
        (None, Some(value)) => (CaptureFormat::Rpk, value),
        (None, None) if parsed.value_size.is_some() => return Err(LineError::MetaOnly),
        (None, None) if parsed.timestamp.is_some() => (CaptureFormat::Rpk, None),
        (None, None) => return Err(LineError::UnknownShape),
    };
    let headers = match parsed.headers {
        None => Vec::new(),
        Some(Headers::Flat(flat)) => {
            if flat.len() % 2 != 0 {
                return Err(LineError::OddHeaders);
            }
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(name), Some(value)) = (it.next(), it.next()) {
                out.push((name.unwrap_or_default(), value.map(bytes)));
            }
            out
        }
        Some(Headers::Rpk(list)) => list
            .into_iter()
            .map(|h| (h.key, h.value.map(bytes)))
            .collect(),
        Some(Headers::Map(map)) => map
            .into_iter()
            .flat_map(|(name, values)| {
                values
                    .into_iter()
                    .map(move |v| (name.clone(), v.map(bytes)))
            })
            .collect(),
    };
    let record = RecordView {
        topic,
        partition: parsed.partition.unwrap_or(-1),
        offset: parsed.offset.unwrap_or(-1),
        timestamp_ms: parsed.ts.or(parsed.timestamp),
        headers,
        // An empty key is no key (rpk omits it, sarama sends nil).
        key: parsed.key.filter(|k| !k.is_empty()).map(bytes),
        payload: payload.map(bytes),
    };
    Ok((format, record))
}

/// Best effort for a malformed line: the value of its `"topic"` field, so the line can still be
/// counted as unparseable for the right side.
pub fn sniff_topic(line: &[u8]) -> Option<&str> {
    let start = memchr::memmem::find(line, b"\"topic\":\"")? + 9;
    let len = memchr::memchr(b'"', &line[start..])?;
    std::str::from_utf8(&line[start..start + len]).ok()
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
