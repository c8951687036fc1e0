//! A Debezium SQL Server pipeline's records, shared by the diff and serve tests: the envelope's
//! Avro schema (Debezium's shape, written by fastavro in the tests), three transactions of
//! changes, each change as Debezium's envelope and as the CDC-table row a Bento substitute
//! polling `cdc.dbo_orders_CT` writes (RPCN's `__$` columns).

use serde_json::{json, Value};

pub const ENVELOPE: &str = r#"{"type": "record", "name": "Envelope", "namespace": "shop.dbo.orders",
  "fields": [
    {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
      {"name": "id", "type": "int"},
      {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
      {"name": "status", "type": "string"}]}], "default": null},
    {"name": "after", "type": ["null", "Value"], "default": null},
    {"name": "source", "type": {"type": "record", "name": "Source", "fields": [
      {"name": "connector", "type": "string"},
      {"name": "ts_ms", "type": "long"},
      {"name": "commit_lsn", "type": ["null", "string"]},
      {"name": "change_lsn", "type": ["null", "string"]},
      {"name": "event_serial_no", "type": ["null", "long"]}]}},
    {"name": "op", "type": "string"},
    {"name": "ts_ms", "type": ["null", "long"]}
  ]}"#;

/// A service comparing the Debezium side (Avro envelopes) of `dbz.{db}.dbo.orders` with the Bento
/// side (the change table's `__$` columns, JSON) of `bento.{db}.dbo.orders`; `extra` holds more
/// service keys (windows, grace).
pub fn service(name: &str, db: &str, extra: &str) -> String {
    format!(
        r#"
[[services]]
name = "{name}"
baseline_topics = ["dbz.{db}.dbo.orders"]
candidate_topics = ["bento.{db}.dbo.orders"]
key = {{ from = "fields", pointers = ["/id"] }}
{extra}
[services.normalize]
decimals = "numeric"
drop_update_before = true
ignore_fields = ["/__$start_lsn", "/__$seqval", "/__$operation", "/__$command_id"]

[services.baseline]
payload = "avro"
envelope = "debezium"

[services.candidate]
position = {{ pointers = ["/__$start_lsn", "/__$seqval", "/__$command_id"] }}
operation = {{ pointer = "/__$operation" }}
"#
    )
}

/// The same envelope schema registered again (a connector restart with another `doc`): a second
/// schema id over the run whose records decode to the same values.
pub fn envelope_v2() -> String {
    ENVELOPE.replace(
        r#""name": "Envelope","#,
        r#""name": "Envelope", "doc": "task 2","#,
    )
}

/// One change: (transaction's commit LSN, change LSN, op, id, total, status).
pub type Change = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
);

/// Three transactions: T1 inserts 1 and 2 and updates 1; T2 inserts 3; T3 deletes 2.
pub const CHANGES: [Change; 5] = [
    (
        "0000002b:00000b28:0002",
        "0000002b:00000a00:0002",
        "c",
        1,
        "10.00",
        "new",
    ),
    (
        "0000002b:00000b28:0002",
        "0000002b:00000a10:0003",
        "c",
        2,
        "20.00",
        "new",
    ),
    (
        "0000002b:00000b28:0002",
        "0000002b:00000a20:0004",
        "u",
        1,
        "10.50",
        "paid",
    ),
    (
        "0000002b:00000c00:0001",
        "0000002b:00000b90:0002",
        "c",
        3,
        "30.00",
        "new",
    ),
    (
        "0000002b:00000d00:0001",
        "0000002b:00000cf0:0002",
        "d",
        2,
        "20.00",
        "new",
    ),
];

pub fn envelope((commit, change, op, id, total, status): Change) -> Value {
    let row = json!({"id": id, "total": total, "status": status});
    json!({
        "before": if op == "d" { row.clone() } else { Value::Null },
        "after": if op == "d" { Value::Null } else { row },
        "source": {"connector": "sqlserver", "ts_ms": 1_787_220_000_000i64, "commit_lsn": commit,
                   "change_lsn": change, "event_serial_no": 1},
        "op": op,
        "ts_ms": 1_787_220_000_100i64,
    })
}

/// RPCN's CDC-table row for the same change: LSNs as `0x` hex, SQL Server operation codes.
pub fn cdc_row((commit, change, op, id, total, status): Change) -> Value {
    let hex = |lsn: &str| format!("0x{}", lsn.replace(':', "").to_uppercase());
    let code = match op {
        "d" => 1,
        "c" => 2,
        _ => 4,
    };
    json!({"id": id, "total": total, "status": status, "__$start_lsn": hex(commit),
           "__$seqval": hex(change), "__$operation": code, "__$command_id": 1})
}
