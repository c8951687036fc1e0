//! The drift `paritygate generate --drift SERVICE=KIND[,KIND…]` injects on a live dual run, and
//! how each kind changes a block of candidate records or the candidate sink's row changes.
//!
//! Drift is chosen per key by a seeded hash (never by position in the stream), so the same keys
//! drift in every run with the same seed, whatever the rate or the batching.

use super::rows::RowChange;
use crate::core::pointer::PointerPattern;
use serde_json::Value;
use std::collections::BTreeMap;

/// One kind of drift on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DriftKind {
    /// All of a chosen key's events never reach the candidate topic (nor its sink).
    Dropped,
    /// The candidate emits a chosen key's events a second time under a key the source never had.
    Extra,
    /// The candidate's mapping writes a wrong value into one column of a chosen key's rows.
    Altered,
    /// The candidate sink ignores a chosen key's delete: the row survives in its table.
    SinkDropsDeletes,
    /// The candidate sink applies a chosen key's previous version over each update (stale write).
    StaleUpdate,
    /// Every candidate record is delivered `SLOW_CANDIDATE_MS` later than the baseline's would be.
    SlowCandidate,
}

/// How much later a slow candidate delivers (well past the default 5 s latency guardrail).
pub const SLOW_CANDIDATE_MS: i64 = 20_000;

impl DriftKind {
    pub const ALL: [DriftKind; 6] = [
        Self::Dropped,
        Self::Extra,
        Self::Altered,
        Self::SinkDropsDeletes,
        Self::StaleUpdate,
        Self::SlowCandidate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dropped => "dropped",
            Self::Extra => "extra",
            Self::Altered => "altered",
            Self::SinkDropsDeletes => "sink-drops-deletes",
            Self::StaleUpdate => "stale-update",
            Self::SlowCandidate => "slow-candidate",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw.trim())
    }
}

/// A `--drift` value that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriftSpecError {
    #[error("`{0}`: expected SERVICE=KIND[,KIND…]")]
    Syntax(String),
    #[error("`{0}` is not a drift kind (one of dropped, extra, altered, sink-drops-deletes, stale-update, slow-candidate)")]
    UnknownKind(String),
}

/// Parse `SERVICE=KIND[,KIND…]`.
pub fn parse_drift_arg(raw: &str) -> Result<(String, Vec<DriftKind>), DriftSpecError> {
    let (service, kinds) = raw
        .split_once('=')
        .filter(|(s, k)| !s.trim().is_empty() && !k.trim().is_empty())
        .ok_or_else(|| DriftSpecError::Syntax(raw.into()))?;
    let kinds = kinds
        .split(',')
        .map(|k| DriftKind::parse(k).ok_or_else(|| DriftSpecError::UnknownKind(k.trim().into())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((service.trim().to_owned(), kinds))
}

/// Whether `key` of `service` is one that drifts by `kind`: a seeded hash below the rate.
pub fn chosen(seed: u64, service: &str, kind: DriftKind, key: &[u8], per_mille: u64) -> bool {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(service.as_bytes());
    h.update(&[0]);
    h.update(kind.as_str().as_bytes());
    h.update(&[0]);
    h.update(key);
    let bytes = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    u64::from_le_bytes(first) % 1000 < per_mille
}

/// Columns the `altered` drift prefers (one of them exists in every shipped model).
const ALTERED_PREFERRED: [&str; 4] = ["currency", "status", "method", "warehouse"];

/// Alter one column of a JSON row body; `None` when the body has nothing to alter (a delete's
/// nulls, a tombstone, or not JSON). `protected` names top-level fields never touched (key, event
/// time, ignored fields).
pub fn alter_payload(payload: &str, protected: &[String]) -> Option<String> {
    let mut body: Value = serde_json::from_str(payload).ok()?;
    let obj = body.as_object_mut()?;
    let eligible = |name: &str, v: &Value| {
        v.is_string() && !name.starts_with("__") && !protected.iter().any(|p| p == name)
    };
    let field = ALTERED_PREFERRED
        .iter()
        .map(|s| (*s).to_owned())
        .find(|f| obj.get(f).is_some_and(|v| eligible(f, v)))
        .or_else(|| {
            let mut names: Vec<&String> = obj.keys().collect();
            names.sort();
            names
                .into_iter()
                .find(|n| obj.get(*n).is_some_and(|v| eligible(n, v)))
                .cloned()
        })?;
    let value = obj.get_mut(&field)?;
    let old = value.as_str()?.to_owned();
    *value = Value::String(format!("{old}~altered"));
    serde_json::to_string(&body).ok()
}

/// Give an `extra` copy a key the source never had: the Kafka key, or the last key field.
pub fn extra_key(
    key: &mut Option<String>,
    payload: &mut Option<String>,
    fields: Option<&PointerPattern>,
) {
    match fields {
        None => {
            if let Some(k) = key {
                *k = format!("extra-{k}");
            }
        }
        Some(pointer) => {
            let Some(mut body) = payload
                .as_deref()
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
            else {
                return;
            };
            pointer.for_each_mut(&mut body, &mut |v| {
                let text = match &*v {
                    Value::String(s) => format!("extra-{s}"),
                    other => format!("extra-{other}"),
                };
                *v = Value::String(text);
            });
            if let Ok(text) = serde_json::to_string(&body) {
                *payload = Some(text);
            }
        }
    }
}

/// The candidate sink's drift on a batch of row changes, in order. `last_doc` remembers each
/// stale-updated key's latest true version across batches.
pub fn sink_drift(
    changes: Vec<RowChange>,
    drop_deletes: impl Fn(&str) -> bool,
    stale: impl Fn(&str) -> bool,
    last_doc: &mut BTreeMap<String, Value>,
) -> Vec<RowChange> {
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            RowChange::Delete { key } if drop_deletes(&key) => {}
            RowChange::Delete { key } => {
                last_doc.remove(&key);
                out.push(RowChange::Delete { key });
            }
            RowChange::Upsert { key, doc, update } if stale(&key) => {
                // An update lands with the version before it: the sink retried an old batch last.
                let written = match (update, last_doc.get(&key)) {
                    (true, Some(previous)) => previous.clone(),
                    _ => doc.clone(),
                };
                last_doc.insert(key.clone(), doc);
                out.push(RowChange::Upsert {
                    key,
                    doc: written,
                    update,
                });
            }
            upsert => out.push(upsert),
        }
    }
    out
}
