//! The single-pass parser against serde_json: whatever it accepts, serde_json accepts with the same
//! tree, and `parse_payload` accepts exactly what serde_json accepts.

use super::*;
use proptest::prelude::*;

fn serde_tree(bytes: &[u8]) -> Option<Node<'static>> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .map(|v| Node::from_value(&v).into_owned())
}

fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let expected = serde_tree(bytes);
    if let Some(fast) = parse(bytes) {
        prop_assert_eq!(
            Some(fast.into_owned()),
            expected.clone(),
            "fast parse of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    prop_assert_eq!(parse_payload(bytes).map(Node::into_owned), expected);
    Ok(())
}

fn number_text() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop_oneof!["0", "[1-9][0-9]{0,22}"],
        prop::option::of("[0-9]{1,6}"),
        prop::option::of(("[eE]", "[+-]?", "[0-9]{1,3}")),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut t = String::new();
            if neg {
                t.push('-');
            }
            t.push_str(&int);
            if let Some(f) = frac {
                t.push('.');
                t.push_str(&f);
            }
            if let Some((e, sign, digits)) = exp {
                t.push_str(&e);
                t.push_str(&sign);
                t.push_str(&digits);
            }
            t
        })
}

/// JSON text built with noise: random whitespace, escapes (`\u` incl. surrogate pairs), any number
/// spelling, repeated keys.
fn json_text() -> impl Strategy<Value = String> {
    let string = "[a-c\"\\\\/\u{8}\n\t\u{1f}é€\u{1F600}<]{0,6}".prop_map(|s| escape_noisily(&s));
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_text(),
        string.clone(),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[ {} ]", items.join(" ,\n"))),
            prop::collection::vec(("[a-d]{0,2}", inner), 0..5).prop_map(|members| {
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\"\t:{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn escape_noisily(s: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if i % 2 == 0 => out.push_str("\\/"),
            c if (c as u32) < 0x20 || i % 3 == 0 => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn valid_documents_parse_as_serde_json_parses_them(text in json_text()) {
        agree(text.as_bytes())?;
        let wrapped = format!(" {{\"doc\": {text}, \"n\": 1}} \n");
        agree(wrapped.as_bytes())?;
    }

    #[test]
    fn damaged_documents_are_never_accepted_differently(
        text in json_text(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, prop::sample::select(b"{}[]\",:\\ 0-.eEu\x01a".to_vec())), 1..3),
    ) {
        let mut bytes = text.into_bytes();
        for (at, kind, byte) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => { bytes.remove(i); }
                1 => bytes.insert(i, byte),
                _ => bytes[i] = byte,
            }
        }
        agree(&bytes)?;
    }
}

#[test]
fn left_to_serde_json_and_still_right() {
    // Duplicate keys: the last one wins, as in serde_json.
    let dup = br#"{"a":1,"b":2,"a":3}"#;
    assert!(parse(dup).is_none());
    let node = parse_payload(dup).unwrap();
    assert_eq!(node.member("a"), Some(&Node::Number(Cow::Borrowed("3"))));
    // Deep nesting beyond the fast parser's limit but within serde_json's.
    let deep = format!("{}{}", "[".repeat(110), "]".repeat(110));
    assert!(parse(deep.as_bytes()).is_none());
    assert!(parse_payload(deep.as_bytes()).is_some());
    // Beyond serde_json's limit: not JSON at all.
    let deeper = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(parse_payload(deeper.as_bytes()).is_none());
}

#[test]
fn invalid_json_is_rejected() {
    for bad in [
        "",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "[1,]",
        "{\"a\":1,}",
        "{a:1}",
        "\"\t\"",
        "\"\\x\"",
        "\"\\ud800\"",
        "tru",
        "nul",
        "[1] x",
        "{\"a\" 1}",
        "\"abc",
    ] {
        assert!(parse_payload(bad.as_bytes()).is_none(), "{bad:?} accepted");
        assert!(
            serde_tree(bad.as_bytes()).is_none(),
            "{bad:?}: serde_json differs"
        );
    }
    assert!(parse_payload(b"\"\xff\"").is_none());
}

#[test]
fn strings_borrow_unless_escaped() {
    let node = parse(br#"{"plain":"x y","esc":"a\u003cb\n"}"#).unwrap();
    assert!(matches!(
        node.member("plain"),
        Some(Node::String(Cow::Borrowed("x y")))
    ));
    assert_eq!(
        node.member("esc"),
        Some(&Node::String(Cow::Owned("a<b\n".to_owned())))
    );
}
