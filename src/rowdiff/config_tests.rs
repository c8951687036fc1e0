//! Unit tests of `config.rs`: parsing, defaults, and validation messages that name the field.
use super::*;

fn parse(text: &str) -> Result<TargetsConfig, toml::de::Error> {
    toml::from_str(text)
}

const GOOD: &str = r#"
    baseline  = { url_env = "PG_BASELINE_URL",  table = "public.orders" }
    candidate = { url_env = "PG_CANDIDATE_URL", table = "bento_shadow.orders" }
    key_columns = ["id"]
    ignore_columns = ["__sync_timestamp", "__source"]
"#;

#[test]
fn the_documented_example_parses_with_defaults() {
    let cfg = parse(GOOD).unwrap();
    let (b, c) = cfg.validate().unwrap();
    assert_eq!(
        b,
        TableName {
            schema: "public".into(),
            name: "orders".into()
        }
    );
    assert_eq!(c.schema, "bento_shadow");
    assert_eq!(cfg.on_schema_difference, OnSchemaDifference::Error);
    assert_eq!(cfg.sample, SampleConfig::default());
    assert_eq!(cfg.statement_timeout_secs, 300.0);
}

#[test]
fn unknown_fields_are_rejected_with_their_name() {
    let err = parse(&format!("{GOOD}\nkey_column = [\"x\"]"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("key_column"), "{err}");
    let err = parse(&GOOD.replace("url_env = \"PG_BASELINE_URL\"", "url = \"x\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("url"), "{err}");
}

#[test]
fn validation_names_the_field() {
    let mut cfg = parse(GOOD).unwrap();
    cfg.key_columns.clear();
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("targets.key_columns"));
    let mut cfg = parse(GOOD).unwrap();
    cfg.ignore_columns.push("id".into());
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("key column"));
    let mut cfg = parse(GOOD).unwrap();
    cfg.candidate.table = "a.b.c".into();
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("targets.candidate.table"));
    let mut cfg = parse(GOOD).unwrap();
    cfg.sample.max_rows_per_second = 0.0;
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("max_rows_per_second"));
    let mut cfg = parse(GOOD).unwrap();
    cfg.statement_timeout_secs = -1.0;
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("statement_timeout_secs"));
}

#[test]
fn table_names_parse_like_postgres() {
    assert_eq!(
        TableName::parse("Orders").unwrap(),
        TableName {
            schema: "public".into(),
            name: "orders".into()
        }
    );
    assert_eq!(
        TableName::parse(r#""My ""S"""."Orders.x""#).unwrap(),
        TableName {
            schema: r#"My "S""#.into(),
            name: "Orders.x".into()
        }
    );
    for bad in ["", ".", "a.", "a b", "\"open", "a.b.c", "a\"b"] {
        assert!(TableName::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn schema_difference_switch_and_sample_settings_parse() {
    let cfg = parse(&format!(
        "{GOOD}\non_schema_difference = \"report\"\n[sample]\nsample_size = 50\nsettle_delay_secs = 0"
    ))
    .unwrap();
    assert_eq!(cfg.on_schema_difference, OnSchemaDifference::Report);
    assert_eq!(cfg.sample.sample_size, 50);
    assert_eq!(cfg.sample.interval_secs, 60.0);
    cfg.validate().unwrap();
    assert!(parse(&format!("{GOOD}\non_schema_difference = \"warn\"")).is_err());
}
