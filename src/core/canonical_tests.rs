//! Tests of `core::canonical`: each normalization rule, the one byte spelling, and properties
//! that hold the shortcuts to the general paths.

use super::*;
use proptest::prelude::*;

fn canon(text: &str, rules: &Rules) -> String {
    let value: Value = serde_json::from_str(text).unwrap();
    String::from_utf8(canonical_bytes(&value, rules)).unwrap()
}

fn rules() -> Rules {
    Rules {
        ignore: vec![PointerPattern::parse("/__sync_timestamp").unwrap()],
        decimals_numeric: true,
        timestamps_instant: true,
        null_equals_missing: true,
        boolean_strings: true,
        float32: vec![PointerPattern::parse("/weight").unwrap()],
        base64: vec![],
    }
}

#[test]
fn key_order_whitespace_and_escaping_do_not_matter() {
    let a = canon(r#"{"b":"<x>","a":1}"#, &Rules::default());
    let b = canon(
        "{ \"a\" : 1 ,\n \"b\" : \"\\u003cx\\u003e\" }",
        &Rules::default(),
    );
    assert_eq!(a, r#"{"a":1,"b":"<x>"}"#);
    assert_eq!(a, b);
}

#[test]
fn exact_big_numbers() {
    let r = Rules::default();
    assert_ne!(
        canon(r#"{"n":12345678901234567891}"#, &r),
        canon(r#"{"n":12345678901234567000}"#, &r)
    );
    assert_eq!(
        canon(r#"{"n":12345678901234567891}"#, &r),
        r#"{"n":12345678901234567891}"#
    );
    assert_eq!(canon(r#"{"n":1.50}"#, &r), canon(r#"{"n":1.5e0}"#, &r));
}

#[test]
fn decimal_strings_only_under_the_numeric_rule() {
    assert_ne!(
        canon(r#"{"a":"1050.00"}"#, &Rules::default()),
        canon(r#"{"a":1050}"#, &Rules::default())
    );
    assert_eq!(
        canon(r#"{"a":"1050.00"}"#, &rules()),
        canon(r#"{"a":1050}"#, &rules())
    );
    assert_eq!(canon(r#"{"zip":"007"}"#, &rules()), r#"{"zip":"007"}"#);
}

#[test]
fn rules_apply_ignore_nulls_instants_float32() {
    let got = canon(
        r#"{"__sync_timestamp":"x","gone":null,"at":"2026-08-20T12:15:30.120+02:00","weight":1.100000023841858}"#,
        &rules(),
    );
    assert_eq!(got, r#"{"at":"2026-08-20T10:15:30.12Z","weight":1.1}"#);
}

#[test]
fn boolean_strings_only_under_their_rule() {
    assert_eq!(canon(r#"{"bit":"false"}"#, &rules()), r#"{"bit":false}"#);
    assert_eq!(
        canon(r#"{"bit":"false"}"#, &Rules::default()),
        r#"{"bit":"false"}"#
    );
    assert_eq!(canon(r#"{"bit":"False"}"#, &rules()), r#"{"bit":"False"}"#);
}

#[test]
fn plain_number_shortcut_takes_the_common_spellings_only() {
    for plain in ["0", "7", "-12", "4.99", "0.5", "-0.25", "1787220000734"] {
        assert!(is_plainly_canonical(plain), "{plain}");
    }
    for not in [
        "-0",
        "1.50",
        "1.0",
        "0.0",
        "01",
        "1e5",
        "0.00001",
        "123456789012345678901",
    ] {
        assert!(!is_plainly_canonical(not), "{not}");
    }
}

#[test]
fn exponents_are_spelled_as_parsed_numbers_are() {
    let r = Rules::default();
    assert_eq!(canon(r#"{"n":1E400}"#, &r), canon(r#"{"n":1e+400}"#, &r));
    assert_eq!(canon(r#"[1E400]"#, &r), "[1e+400]");
}

#[test]
fn base64_fields_decode() {
    let r = Rules {
        base64: vec![PointerPattern::parse("/blob").unwrap()],
        ..Rules::default()
    };
    assert_eq!(canon(r#"{"blob":"aGVsbG8="}"#, &r), r#"{"blob":"hello"}"#);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        "[a-z<>&\"\\\\é\u{1F600} ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Re-serialize with keys reversed, pretty whitespace and HTML-style escapes.
fn noisy(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push_str("{\n ");
            for (i, (k, v)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(" ,\n ");
                }
                out.push_str(&escape_html(k));
                out.push_str(" : ");
                noisy(v, out);
            }
            out.push_str(" }");
        }
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                noisy(v, out);
            }
            out.push_str(" ]");
        }
        Value::String(s) => out.push_str(&escape_html(s)),
        other => out.push_str(&other.to_string()),
    }
}

fn escape_html(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

proptest! {
    #[test]
    fn the_plain_number_shortcut_agrees_with_canonical_number(
        text in "-?(0|[1-9][0-9]{0,19})(\\.[0-9]{1,8})?",
    ) {
        if is_plainly_canonical(&text) {
            prop_assert_eq!(canonical_number(&text), Some(text.clone()));
        }
    }

    #[test]
    fn canonical_form_ignores_key_order_whitespace_and_escaping(v in arb_json()) {
        let compact = serde_json::to_string(&v).unwrap();
        let mut loud = String::new();
        noisy(&v, &mut loud);
        prop_assert_eq!(canon(&compact, &Rules::default()), canon(&loud, &Rules::default()));
    }

    #[test]
    fn canonical_form_is_a_fixed_point(v in arb_json()) {
        let once = canon(&serde_json::to_string(&v).unwrap(), &rules());
        prop_assert_eq!(canon(&once, &rules()), once.clone());
    }
}
