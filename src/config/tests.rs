//! Config errors must name the file, the service and the field.

use super::*;

const GOOD: &str = r#"
[[services]]
name = "orders"
wave = 1
baseline_topics  = ["dev.acme.public.orders"]
candidate_topics = ["bento.dev.acme.public.orders"]
key = { from = "message_key" }
position = { header = "lsn" }
operation = { header = "operation" }
compare_headers = ["operation", "table"]
[services.normalize]
ignore_fields = ["/__sync_timestamp", "/meta/*/processed_at"]
decimals = "numeric"
timestamps = "instant"
null_equals_missing = true
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("pg.toml"), text)
}

fn message(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_documented_example_is_valid() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.plan(0).name, "orders");
    assert!(c.plan(0).has_position);
    assert_eq!(
        c.routes()["bento.dev.acme.public.orders"],
        (0, Side::Candidate)
    );
}

#[test]
fn unknown_keys_name_line_and_service() {
    let bad = GOOD.replace("null_equals_missing = true", "null_equals_misssing = true");
    let m = message(&bad);
    assert!(
        m.starts_with(
            "pg.toml: line 15, column 1: service `orders`: unknown field `null_equals_misssing`"
        ),
        "{m}"
    );
}

#[test]
fn semantic_errors_name_service_and_field() {
    let cases = [
        (GOOD.replace("\"orders\"", "\"Orders\""), "service `Orders`: field `name`: must match [a-z0-9_-]+"),
        (GOOD.replace("[\"bento.dev.acme.public.orders\"]", "[]"), "field `candidate_topics`: must name at least one topic"),
        (
            GOOD.replace("bento.dev.acme.public.orders", "dev.acme.public.orders"),
            "field `candidate_topics`: topic `dev.acme.public.orders` appears twice",
        ),
        (GOOD.replace("/meta/*/processed_at", "meta"), "field `normalize.ignore_fields[1]`: a JSON pointer must start with `/`"),
        (
            GOOD.replace("{ header = \"lsn\" }", "{ header = \"lsn\", pointer = \"/lsn\" }"),
            "field `position`: set exactly one of `header` or `pointer`",
        ),
        (
            GOOD.replace("{ from = \"message_key\" }", "{ from = \"fields\", pointers = [\"/a/*\"] }"),
            "field `key.pointers[0]`: `/a/*` must name one value",
        ),
        (
            format!("{GOOD}\n[services.candidate]\nposition = {{ pointer = \"/lsn\", format = \"hex\" }}\n")
                .replace("position = { header = \"lsn\" }\n", ""),
            "field `position`: configure a position for both sides or for neither",
        ),
    ];
    for (text, want) in cases {
        let m = message(&text);
        assert!(m.contains(want), "wanted `{want}` in `{m}`");
        assert!(m.starts_with("pg.toml: "), "{m}");
    }
}

#[test]
fn duplicate_services_and_shared_topics() {
    let twice = format!(
        "{GOOD}{}",
        GOOD.replace("[services.normalize]", "[services.normalize]\n")
    );
    assert!(message(&twice).contains("service `orders`: field `name`: is used by another service"));
    let shared = format!("{GOOD}{}", GOOD.replace("\"orders\"", "\"orders2\""));
    assert!(message(&shared).contains("service `orders2`: field `baseline_topics`: topic `dev.acme.public.orders` is already used by service `orders`"));
}

#[test]
fn empty_and_unreadable_files() {
    assert!(message("").contains("no [[services]] configured"));
    let err = Config::load(Path::new("/nonexistent/pg.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/pg.toml: cannot read"),
        "{err}"
    );
}

const TARGETS: &str = r#"
[services.targets]
baseline  = { url_env = "PG_BASELINE_URL",  table = "public.orders" }
candidate = { url_env = "PG_CANDIDATE_URL", table = "bento_shadow.orders" }
key_columns = ["id"]
ignore_columns = ["__sync_timestamp"]
[services.targets.sample]
sample_size = 500
settle_delay_secs = 5
"#;

#[test]
fn targets_are_parsed_and_validated_per_service() {
    let c = parse(&format!("{GOOD}{TARGETS}")).unwrap();
    let t = c.services[0].targets.as_ref().unwrap();
    assert_eq!(t.candidate.table, "bento_shadow.orders");
    assert_eq!(t.key_columns, ["id"]);
    assert_eq!(t.sample.sample_size, 500);
    assert_eq!(t.sample.interval_secs, 60.0, "defaults fill the rest");
    assert!(parse(GOOD).unwrap().services[0].targets.is_none());

    let cases = [
        (
            TARGETS.replace("key_columns = [\"id\"]", "key_columns = []"),
            "service `orders`: field `targets.key_columns`: must list at least one column",
        ),
        (
            TARGETS.replace("sample_size = 500", "sample_size = 0"),
            "service `orders`: field `targets.sample.sample_size`: must be at least 1",
        ),
        (
            TARGETS.replace("bento_shadow.orders", "a.b.c"),
            "service `orders`: field `targets.candidate.table`: `a.b.c` is not",
        ),
        (
            TARGETS.replace("[\"__sync_timestamp\"]", "[\"id\"]"),
            "field `targets.ignore_columns`: `id` is a key column",
        ),
    ];
    for (targets, want) in cases {
        let m = message(&format!("{GOOD}{targets}"));
        assert!(m.starts_with("pg.toml: "), "{m}");
        assert!(m.contains(want), "wanted `{want}` in `{m}`");
    }
    // Unknown keys inside the table are syntax errors naming line and service.
    let typo = TARGETS.replace("settle_delay_secs", "settle_delay");
    let m = message(&format!("{GOOD}{typo}"));
    assert!(
        m.contains("service `orders`: unknown field `settle_delay`"),
        "{m}"
    );
}

#[test]
fn error_topics_must_be_distinct_from_every_other_topic() {
    let bad = GOOD.replace(
        "compare_headers = [\"operation\", \"table\"]",
        "compare_headers = [\"operation\", \"table\"]\nerror_topics = { baseline = [\"dlq.orders\"], candidate = [\"dev.acme.public.orders\"] }",
    );
    let m = message(&bad);
    assert!(
        m.contains("field `error_topics.candidate`: topic `dev.acme.public.orders` appears twice"),
        "{m}"
    );
}

#[test]
fn a_config_without_a_store_table_keeps_the_pool_default() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.store.max_connections, 8);
}

#[test]
fn the_sides_share_topic_names_only_on_clusters_of_their_own() {
    const SAME: &str = "[[services]]\nname = \"stock\"\nbaseline_topics = [\"stock\"]\n\
        candidate_topics = [\"stock\"]\nkey = { from = \"fields\", pointers = [\"/sku\"] }\n";
    let m = message(SAME);
    assert!(m.contains("topic `stock` appears twice"), "{m}");
    let split = format!("{SAME}[kafka.candidate]\nbrokers = \"msk:9096\"\n");
    let c = parse(&split).unwrap();
    // Each cluster's view routes only its own side's topic.
    for cluster in c.clusters() {
        let view = c.on_cluster(&cluster);
        let routes = view.routes();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes["stock"].1, cluster.sides[0]);
        assert_eq!(view.side_of("stock"), Some(cluster.sides[0]));
        assert_eq!(view.side_of("other"), None);
        assert_eq!(view.kafka.brokers, cluster.brokers);
    }
    // Within one cluster a name is still one service's.
    let twice = format!(
        "{split}[[services]]\nname = \"other\"\nbaseline_topics = [\"stock\"]\n\
         candidate_topics = [\"other\"]\nkey = {{ from = \"fields\", pointers = [\"/sku\"] }}\n"
    );
    let m = message(&twice);
    assert!(
        m.contains("topic `stock` is already used by service `stock`"),
        "{m}"
    );
}
