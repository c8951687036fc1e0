use super::*;
use apache_avro::types::Value as V;

const ORDER: &str = r#"{
  "type": "record", "name": "Value", "namespace": "shop.dbo.orders",
  "fields": [
    {"name": "id", "type": "int"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "placed", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
    {"name": "slot", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
    {"name": "tags", "type": {"type": "map", "values": "long"}},
    {"name": "lines", "type": {"type": "array", "items": "float"}},
    {"name": "raw", "type": "bytes"},
    {"name": "again", "type": ["null", "State"]}
  ]
}"#;

fn order_value() -> V {
    V::Record(vec![
        ("id".into(), V::Int(7)),
        (
            "total".into(),
            V::Decimal(apache_avro::Decimal::from(vec![0xFB, 0x2E])),
        ), // -1234
        (
            "ref".into(),
            V::Uuid("5b2f0c2e-8d4f-4a7b-9a1c-0123456789ab".parse().unwrap()),
        ),
        ("placed".into(), V::Date(20_000)),
        ("at".into(), V::TimestampMicros(1_787_220_000_123_450)),
        ("local".into(), V::LocalTimestampMillis(1_787_220_000_120)),
        ("slot".into(), V::TimeMicros(45_296_000_001)),
        (
            "note".into(),
            V::Union(1, Box::new(V::String("gift \"wrap\"".into()))),
        ),
        ("state".into(), V::Enum(1, "PAID".into())),
        (
            "tags".into(),
            V::Map([("b".to_owned(), V::Long(2)), ("a".to_owned(), V::Long(1))].into()),
        ),
        (
            "lines".into(),
            V::Array(vec![V::Float(1.1), V::Float(f32::NAN)]),
        ),
        ("raw".into(), V::Bytes(b"caf\xc3\xa9".to_vec())),
        (
            "again".into(),
            V::Union(1, Box::new(V::Enum(0, "NEW".into()))),
        ),
    ])
}

fn encode(schema: &str, value: V) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    #[allow(deprecated)]
    apache_avro::to_avro_datum(&schema, value).unwrap()
}

fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

#[test]
fn every_type_maps_losslessly_to_json() {
    let schema = WriterSchema::parse(ORDER).unwrap();
    assert!(schema.unknown_logical_types.is_empty());
    let json = decode_to_json(&schema, &encode(ORDER, order_value())).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "id": 7,
            "total": serde_json::from_str::<serde_json::Value>("-12.34").unwrap(),
            "ref": "5b2f0c2e-8d4f-4a7b-9a1c-0123456789ab",
            "placed": "2024-10-04",
            "at": "2026-08-20T10:00:00.12345Z",
            "local": "2026-08-20T10:00:00.12",
            "slot": "12:34:56.000001",
            "note": "gift \"wrap\"",
            "state": "PAID",
            "tags": {"a": 1, "b": 2},
            "lines": [serde_json::from_str::<serde_json::Value>("1.1").unwrap(), "NaN"],
            "raw": "café",
            "again": "NEW",
        })
    );
}

#[test]
fn two_schema_ids_of_one_record_decode_equal() {
    // The same record under a second registration: other doc, other field order.
    let v2 = ORDER
        .replace(r#""name": "Value","#, r#""name": "Value", "doc": "v2","#)
        .replace(
            r#"{"name": "id", "type": "int"},
    {"name": "total""#,
            r#"{"name": "total""#,
        )
        .replace(
            r#"{"name": "again", "type": ["null", "State"]}"#,
            r#"{"name": "again", "type": ["null", "State"]},
    {"name": "id", "type": "int"}"#,
        );
    let V::Record(fields) = order_value() else {
        unreachable!()
    };
    let mut reordered: Vec<(String, V)> = fields[1..].to_vec();
    reordered.push(fields[0].clone());
    let one = decode_to_json(
        &WriterSchema::parse(ORDER).unwrap(),
        &encode(ORDER, order_value()),
    )
    .unwrap();
    let two = decode_to_json(
        &WriterSchema::parse(&v2).unwrap(),
        &encode(&v2, V::Record(reordered)),
    )
    .unwrap();
    assert_ne!(one, two, "field order differs in the text");
    let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
    assert_eq!(parse(&one), parse(&two));
}

#[test]
fn framing_and_damage_are_named() {
    let datum = encode(ORDER, order_value());
    let bytes = framed(42, &datum);
    assert_eq!(unframe(&bytes).unwrap(), (42, &datum[..]));
    assert_eq!(unframe(&[]).unwrap_err().reason(), "undecodable");
    assert!(
        matches!(unframe(b"{\"id\":1}"), Err(AvroError::NotFramed(m)) if m.contains("magic byte 123"))
    );
    assert!(matches!(unframe(&[0, 0, 1]), Err(AvroError::NotFramed(_))));
    let schema = WriterSchema::parse(ORDER).unwrap();
    let truncated = decode_to_json(&schema, &datum[..datum.len() - 3]).unwrap_err();
    assert_eq!(truncated.reason(), "undecodable", "{truncated}");
    let mut longer = datum.clone();
    longer.push(0);
    let trailing = decode_to_json(&schema, &longer).unwrap_err();
    assert!(trailing.to_string().contains("1 bytes left"), "{trailing}");
    assert_eq!(AvroError::UnknownSchema(9).reason(), "unknown_schema");
    assert_eq!(
        AvroError::RegistryUnavailable("down".into()).reason(),
        "registry_unavailable"
    );
}

#[test]
fn an_unknown_logical_type_is_named_and_its_value_decoded_as_the_underlying_type() {
    let text = r#"{"type": "record", "name": "R", "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "io.acme.epoch-weeks"}}]}"#;
    let schema = WriterSchema::parse(text).unwrap();
    assert_eq!(
        schema.unknown_logical_types,
        vec!["io.acme.epoch-weeks".to_owned()]
    );
    let json = decode_to_json(
        &schema,
        &encode(text, V::Record(vec![("at".into(), V::Long(3))])),
    );
    assert_eq!(json.unwrap(), r#"{"at":3}"#);
    assert!(matches!(
        WriterSchema::parse("{\"type\": \"nope\"}"),
        Err(AvroError::Schema(_))
    ));
}

#[test]
fn decimals_are_exact_at_any_size_and_scale() {
    assert_eq!(decimal_text(&[], 2), "0.00");
    assert_eq!(decimal_text(&[0x00], 0), "0");
    assert_eq!(decimal_text(&[0x01], 3), "0.001");
    assert_eq!(decimal_text(&[0xFF], 2), "-0.01");
    assert_eq!(decimal_text(&[0x00, 0x80], 1), "12.8");
    assert_eq!(decimal_text(&[0x80], 0), "-128");
    // 2^159 - 1, beyond i128: 0x7F then 19 bytes 0xFF (python: 2**159 - 1).
    let big = [0x7F; 1]
        .iter()
        .chain([0xFF; 19].iter())
        .copied()
        .collect::<Vec<u8>>();
    assert_eq!(
        decimal_text(&big, 10),
        "73075081866545145910184241635814150982.7966271487"
    );
}

#[test]
fn references_to_named_types_resolve() {
    let text = r#"{"type": "record", "name": "Envelope", "namespace": "dbz", "fields": [
        {"name": "before", "type": ["null", {"type": "record", "name": "Row", "fields": [
            {"name": "id", "type": "int"}]}]},
        {"name": "after", "type": ["null", "Row"]}]}"#;
    let schema = WriterSchema::parse(text).unwrap();
    let row = |id| V::Union(1, Box::new(V::Record(vec![("id".into(), V::Int(id))])));
    let datum = encode(
        text,
        V::Record(vec![("before".into(), row(1)), ("after".into(), row(2))]),
    );
    assert_eq!(
        decode_to_json(&schema, &datum).unwrap(),
        r#"{"before":{"id":1},"after":{"id":2}}"#
    );
}
