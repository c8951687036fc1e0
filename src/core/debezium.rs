//! Debezium envelopes (`envelope = "debezium"`): the content of a change is its `after` (its
//! `before` for a delete), the operation its `op`, the position is read from `source` by
//! connector; `ts_ms`, `source` and `transaction` are metadata, not content. JSON with or without
//! the `{"schema", "payload"}` wrapping of Kafka Connect's JsonConverter, and Avro once decoded
//! (`core::avro`). The operation and position reach extraction as two headers of the record, so
//! the rest of the pipeline is unchanged.

use super::position::{parse_composite, PositionFormat};
use super::record::RecordView;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// The header extraction reads a Debezium record's operation from.
pub const OP_HEADER: &str = "paritygate.debezium.op";
/// The header extraction reads a Debezium record's position from (a decimal integer).
pub const POSITION_HEADER: &str = "paritygate.debezium.position";

/// What an envelope became.
#[derive(Debug)]
pub enum Unwrapped<'a> {
    Change(RecordView<'a>),
    /// The null value Debezium writes after a delete (log compaction's marker): not an event.
    Tombstone,
}

/// Why a record is not a Debezium change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("no `op` in the envelope")]
    NoOp,
}

/// The position of a change, from `source`, by connector: `postgresql` its `lsn`; `sqlserver`
/// `commit_lsn`, `change_lsn`, `event_serial_no` as a composite (the same number as RPCN's
/// `__$start_lsn`, `__$seqval`, `__$command_id`: `core::position::parse_composite`); `mysql`
/// the binlog file's number, `pos` and `row`. `None` for other connectors.
pub fn position(source: &Value) -> Option<u128> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match source.get("connector")?.as_str()? {
        "postgresql" => text(source.get("lsn")?)?.parse().ok(),
        "sqlserver" => {
            let parts: Option<Vec<Vec<u8>>> = ["commit_lsn", "change_lsn", "event_serial_no"]
                .iter()
                .map(|f| source.get(*f).and_then(text).map(String::into_bytes))
                .collect();
            parse_composite(&parts?, PositionFormat::Auto)
        }
        "mysql" => {
            let file = source.get("file")?.as_str()?;
            let index: u128 = file.rsplit('.').next()?.parse().ok()?;
            let pos: u128 = text(source.get("pos")?)?.parse().ok()?;
            let row: u128 = source
                .get("row")
                .and_then(text)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            (index < 1 << 32 && pos < 1 << 64 && row < 1 << 32)
                .then_some((index << 96) | (pos << 32) | row)
        }
        _ => None,
    }
}

/// The parts of an envelope extraction reads; `before` and `after` stay unparsed text (the
/// content is parsed once, by extraction), `source` is small and read for the position.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(default)]
    source: Option<Value>,
    /// JsonConverter with `schemas.enable`: `{"schema": …, "payload": {…}}`.
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// What an envelope holds for extraction: the content's JSON text (`None`: a delete without
/// `before`), the operation, the source.
type Parts = (Option<Vec<u8>>, Vec<u8>, Option<Value>);

fn parts(bytes: &[u8]) -> Result<Parts, EnvelopeError> {
    // serde would read a struct from an array too (field by field): only an object is one.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(EnvelopeError::NotAnObject);
    }
    let outer: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|_| EnvelopeError::NotAnObject)?;
    let envelope = match (outer.schema, outer.payload) {
        (Some(_), Some(inner)) if inner.get().starts_with('{') => {
            serde_json::from_str(inner.get()).map_err(|_| EnvelopeError::NotAnObject)?
        }
        _ => outer,
    };
    let op = envelope.op.ok_or(EnvelopeError::NoOp)?;
    let image = if op == "d" {
        envelope.before
    } else {
        envelope.after
    };
    let content = image.map(|r| r.get().as_bytes().to_vec());
    Ok((content, op.as_bytes().to_vec(), envelope.source))
}

/// Take the envelope of `record` (its payload JSON text) apart.
pub fn unwrap<'a>(record: &RecordView<'a>) -> Result<Unwrapped<'a>, EnvelopeError> {
    let Some(raw) = record.payload.as_deref() else {
        return Ok(Unwrapped::Tombstone);
    };
    let (content, op, source) = parts(raw)?;
    let mut out = record.clone();
    out.headers
        .push((Cow::Borrowed(OP_HEADER), Some(Cow::Owned(op))));
    if let Some(p) = source.as_ref().and_then(position) {
        out.headers.push((
            Cow::Borrowed(POSITION_HEADER),
            Some(Cow::Owned(p.to_string().into_bytes())),
        ));
    }
    // A delete without `before` (no replica identity) has no content to compare beyond its key.
    out.payload = Some(Cow::Owned(content.unwrap_or_else(|| b"null".to_vec())));
    Ok(Unwrapped::Change(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(payload: Option<Value>) -> RecordView<'static> {
        RecordView {
            payload: payload.map(|p| Cow::Owned(p.to_string().into_bytes())),
            ..RecordView::default()
        }
    }

    fn change(r: &RecordView<'_>) -> (Value, String, Option<String>) {
        let content = serde_json::from_slice(r.payload.as_deref().unwrap()).unwrap();
        let header = |n: &str| r.header(n).map(|v| String::from_utf8_lossy(v).into_owned());
        (content, header(OP_HEADER).unwrap(), header(POSITION_HEADER))
    }

    #[test]
    fn content_operation_and_position_come_from_the_envelope() {
        let envelope = json!({
            "before": null, "after": {"id": 1, "total": "12.50"}, "op": "c",
            "source": {"connector": "postgresql", "lsn": 24023128, "txId": 555, "ts_ms": 1},
            "ts_ms": 2, "transaction": null
        });
        let Unwrapped::Change(r) = unwrap(&view(Some(envelope.clone()))).unwrap() else {
            panic!("a change")
        };
        assert_eq!(
            change(&r),
            (
                json!({"id": 1, "total": "12.50"}),
                "c".into(),
                Some("24023128".into())
            )
        );
        // With JsonConverter's schema wrapping: the same.
        let wrapped = json!({"schema": {"type": "struct"}, "payload": envelope});
        let Unwrapped::Change(w) = unwrap(&view(Some(wrapped))).unwrap() else {
            panic!("a change")
        };
        assert_eq!(change(&w), change(&r));
    }

    #[test]
    fn a_delete_is_its_before_and_the_tombstone_after_it_is_no_event() {
        let delete = json!({"before": {"id": 1}, "after": null, "op": "d",
            "source": {"connector": "mysql", "file": "mysql-bin.000003", "pos": 154, "row": 1}});
        let Unwrapped::Change(r) = unwrap(&view(Some(delete))).unwrap() else {
            panic!("a change")
        };
        let (content, op, position) = change(&r);
        assert_eq!((content, op.as_str()), (json!({"id": 1}), "d"));
        assert_eq!(
            position,
            Some(((3u128 << 96) | (154 << 32) | 1).to_string())
        );
        assert!(matches!(unwrap(&view(None)).unwrap(), Unwrapped::Tombstone));
        assert_eq!(
            unwrap(&view(Some(json!([1])))).unwrap_err(),
            EnvelopeError::NotAnObject
        );
        assert_eq!(
            unwrap(&view(Some(json!({"after": {}})))).unwrap_err(),
            EnvelopeError::NoOp
        );
    }

    #[test]
    fn a_sql_server_position_equals_rpcn_s_for_the_same_change() {
        let source = json!({"connector": "sqlserver", "commit_lsn": "0000002b:00000b28:0002",
            "change_lsn": "0000002b:00000a10:0003", "event_serial_no": 1});
        let rpcn: Vec<Vec<u8>> = ["0x0000002B00000B280002", "0x0000002B00000A100003", "1"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        assert_eq!(
            position(&source),
            parse_composite(&rpcn, PositionFormat::Auto)
        );
        let next = json!({"connector": "sqlserver", "commit_lsn": "0000002b:00000b28:0002",
            "change_lsn": "0000002b:00000a10:0004", "event_serial_no": 1});
        assert!(
            position(&source) < position(&next),
            "changes of one transaction differ"
        );
        assert_eq!(position(&json!({"connector": "mongodb"})), None);
    }
}
