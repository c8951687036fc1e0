//! Tests of the capture line formats, on lines shaped exactly like the tools write them.

use super::*;

#[test]
fn kcat_line_with_flat_headers() {
    let line = br#"{"topic":"dev.acme.public.orders","partition":2,"offset":17,"tstype":"create","ts":1755684930120,"broker":0,"headers":["operation","update","lsn","00000001/6B374D48","empty",null],"key":"42","payload":"{\"id\":42}"}"#;
    let (format, r) = parse_line(line).unwrap();
    assert_eq!(format, CaptureFormat::Kcat);
    assert_eq!(r.topic, "dev.acme.public.orders");
    assert_eq!(
        (r.partition, r.offset, r.timestamp_ms),
        (2, 17, Some(1_755_684_930_120))
    );
    assert_eq!(r.header("lsn"), Some(&b"00000001/6B374D48"[..]));
    assert_eq!(r.header("empty"), None);
    assert_eq!(r.headers.len(), 3);
    assert_eq!(r.key.as_deref(), Some(&b"42"[..]));
    assert_eq!(r.payload.as_deref(), Some(&br#"{"id":42}"#[..]));
}

#[test]
fn kcat_tombstone_null_key_and_header_map() {
    let line = br#"{"topic":"t","partition":0,"offset":1,"broker":0,"headers":{"a":["1","2"]},"key":null,"payload":null}"#;
    let (_, r) = parse_line(line).unwrap();
    assert!(r.payload.is_none());
    assert!(r.key.is_none());
    assert_eq!(r.headers.len(), 2);
    assert_eq!(r.timestamp_ms, None);
}

#[test]
fn rpk_line_and_rpk_tombstone() {
    let line = br#"{"topic":"bento.t","key":"42","value":"{\"id\":42}","headers":[{"key":"operation","value":"insert"}],"timestamp":1755684930120,"partition":1,"offset":5}"#;
    let (format, r) = parse_line(line).unwrap();
    assert_eq!(format, CaptureFormat::Rpk);
    assert_eq!(r.header("operation"), Some(&b"insert"[..]));
    assert_eq!(r.timestamp_ms, Some(1_755_684_930_120));
    let (_, tomb) =
        parse_line(br#"{"topic":"bento.t","key":"42","timestamp":1,"partition":1,"offset":6}"#)
            .unwrap();
    assert!(tomb.payload.is_none());
}

#[test]
fn malformed_lines_say_why() {
    assert!(matches!(
        parse_line(b"{\"topic\":\"t\",\"payl"),
        Err(LineError::Json(_))
    ));
    assert_eq!(
        parse_line(br#"{"partition":1,"payload":"x"}"#).unwrap_err(),
        LineError::MissingTopic
    );
    assert_eq!(
        parse_line(br#"{"topic":"t","offset":1}"#).unwrap_err(),
        LineError::UnknownShape
    );
    assert_eq!(
        parse_line(br#"{"topic":"t","headers":["a"],"payload":"x"}"#).unwrap_err(),
        LineError::OddHeaders
    );
    assert_eq!(
        parse_line(br#"{"topic":"t","value_size":12,"timestamp":1}"#).unwrap_err(),
        LineError::MetaOnly
    );
}

#[test]
fn sniffs_the_topic_of_a_truncated_line() {
    assert_eq!(
        sniff_topic(br#"{"topic":"dev.x","partition":1,"pay"#),
        Some("dev.x")
    );
    assert_eq!(sniff_topic(b"garbage"), None);
}
