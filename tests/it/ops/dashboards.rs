//! `dashboards/` without a Grafana: the dashboard JSON checked structurally (schema, datasource
//! and service variables, panels with datasource, targets and unique ids, variables that resolve,
//! the panels the dual run needs), the provisioning files, and the alert rules through `promtool`
//! (`check rules`, `test rules`) plus their annotations and runbook sections.
//! That every query returns data from a real Prometheus is `tests/prometheus_e2e.rs`.

use crate::support::promql::{
    dashboard_queries, dashboards, dir, panels, rule_queries, rules, run_promtool, selectors,
    substitute,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// paritygate metrics without a `service` label (per process, per wave); every other paritygate
/// metric a dashboard selects must be filtered by the `service` variable.
const NOT_PER_SERVICE: [&str; 9] = [
    "paritygate_assigned_partitions",
    "paritygate_checkpoint_duration_seconds",
    "paritygate_checkpoint_failures_total",
    "paritygate_kafka_commit_failures_total",
    "paritygate_processing_latency_seconds",
    "paritygate_dependency_up",
    "paritygate_wave_signed_off",
    "paritygate_wave_signoff_stale",
    "up",
];

/// The alerts the dual run pages or tickets on.
const ALERTS: [&str; 14] = [
    "ParitygateDriftDetected",
    "ParitygateGateFailed",
    "ParitygateIngestionStalled",
    "ParitygateSignedOffServiceFailing",
    "ParitygateConsumerStalled",
    "ParitygateCandidateBehindBaseline",
    "ParitygateCandidateDelayRegression",
    "ParitygateRowDiffRatioHigh",
    "ParitygateUnparseableMessages",
    "ParitygateKafkaLogReset",
    "ParitygateDown",
    "ParitygateNotReady",
    "ParitygateCheckpointsFailing",
    "ParitygateVerdictStale",
];

fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{}: no `{name}` variable", dashboard["title"]))
}

#[test]
fn dashboards_use_the_current_schema_and_the_datasource_and_service_variables() {
    let boards = dashboards();
    let names: BTreeSet<&str> = boards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["overview.json", "service-drilldown.json"])
    );
    let mut uids = BTreeSet::new();
    for (file, d) in &boards {
        assert_eq!(d["schemaVersion"], 39, "{file}: schemaVersion");
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uid.len() <= 40,
            "{file}: uid {uid:?} (1..=40 characters)"
        );
        assert!(uids.insert(uid.to_owned()), "{file}: uid {uid} repeats");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            d["id"].is_null(),
            "{file}: an exported `id` would clash on import"
        );

        let ds = variable(d, "datasource");
        assert_eq!(ds["type"], "datasource", "{file}: datasource variable");
        assert_eq!(ds["query"], "prometheus", "{file}: datasource variable");

        let service = variable(d, "service");
        assert_eq!(service["type"], "query", "{file}: service variable");
        assert_eq!(service["multi"], true, "{file}: service is multi-select");
        assert_eq!(service["includeAll"], true, "{file}: service has All");
        assert_eq!(
            service["datasource"],
            json!({"type": "prometheus", "uid": "${datasource}"}),
            "{file}: service variable datasource"
        );
        let query = "label_values(paritygate_records_total, service)";
        assert_eq!(service["definition"], query, "{file}");
        assert_eq!(service["query"]["query"], query, "{file}");
    }
}

#[test]
fn every_panel_has_a_datasource_targets_and_a_unique_id_and_fits_the_grid() {
    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    for (file, d) in dashboards() {
        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
        let all = panels(&d);
        assert!(all.len() > 10, "{file}: only {} panels", all.len());
        for panel in all {
            let title = panel["title"].as_str().unwrap_or_default();
            let ctx = format!("{file}: panel {title:?}");
            assert!(!title.is_empty(), "{ctx}: no title");
            let id = panel["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{ctx}: no id"));
            assert!(ids.insert(id), "{ctx}: id {id} repeats");
            let grid = &panel["gridPos"];
            let (x, y, w, h) = (
                grid["x"].as_u64().unwrap(),
                grid["y"].as_u64().unwrap(),
                grid["w"].as_u64().unwrap(),
                grid["h"].as_u64().unwrap(),
            );
            assert!(w > 0 && h > 0 && x + w <= 24, "{ctx}: gridPos {grid}");
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.to_owned()) {
                        panic!("{ctx} overlaps panel {other:?} at ({cx}, {cy})");
                    }
                }
            }
            if panel["type"] == "row" {
                assert!(
                    panel.get("targets").is_none(),
                    "{ctx}: a row has no targets"
                );
                continue;
            }
            assert_eq!(panel["datasource"], datasource, "{ctx}: datasource");
            assert!(
                panel["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{ctx}: no description"
            );
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{ctx}: no targets");
            let mut refs = BTreeSet::new();
            for t in &targets {
                let ref_id = t["refId"].as_str().unwrap_or_default();
                assert!(!ref_id.is_empty(), "{ctx}: target without refId");
                assert!(
                    refs.insert(ref_id.to_owned()),
                    "{ctx}: refId {ref_id} repeats"
                );
                assert_eq!(t["datasource"], datasource, "{ctx} [{ref_id}]: datasource");
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{ctx} [{ref_id}]: no expr"
                );
            }
        }
    }
}

/// Every `$name`, `${name}`, `${name:format}` and `[[name]]` in a string of the dashboard.
fn variable_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = if let Some(inner) = rest.strip_prefix('{') {
            inner
                .split(['}', ':'])
                .next()
                .unwrap_or_default()
                .to_owned()
        } else {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        out.push(name);
    }
    let mut rest = text;
    while let Some(at) = rest.find("[[") {
        rest = &rest[at + 2..];
        out.push(rest.split("]]").next().unwrap_or_default().to_owned());
    }
    out
}

fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[test]
fn every_template_variable_resolves_and_service_metrics_are_filtered_by_service() {
    let builtins = ["__rate_interval", "__interval", "__range", "__from", "__to"];
    for (file, d) in dashboards() {
        let defined: BTreeSet<String> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        let mut all = Vec::new();
        strings(&d, &mut all);
        for text in all {
            for name in variable_refs(text) {
                assert!(
                    defined.contains(&name) || builtins.contains(&name.as_str()),
                    "{file}: `{text}` uses ${name}, which is neither a variable nor a Grafana built-in"
                );
            }
        }
    }
    let queries = dashboard_queries();
    assert!(
        queries.len() > 30,
        "only {} dashboard queries",
        queries.len()
    );
    for q in queries {
        let expr = substitute(&q.raw).unwrap_or_else(|e| panic!("{}: {e}", q.id()));
        let found = selectors(&q.raw);
        assert!(
            !found.is_empty(),
            "{}: selects no paritygate metric",
            q.id()
        );
        for s in found {
            if NOT_PER_SERVICE.contains(&s.family()) {
                assert!(
                    !s.matchers.contains("$service"),
                    "{}: {} has no service label",
                    q.id(),
                    s.metric
                );
            } else {
                assert!(
                    s.matchers.contains(r#"service=~"$service""#),
                    "{}: `{}` is not filtered by the service variable",
                    q.id(),
                    s.text()
                );
            }
        }
        assert!(!expr.contains('$'), "{}", q.id());
    }
}

/// The metric families a dashboard's queries select.
fn families(file: &str) -> BTreeSet<String> {
    dashboard_queries()
        .into_iter()
        .filter(|q| q.file == file)
        .flat_map(|q| selectors(&q.raw))
        .map(|s| s.family().to_owned())
        .collect()
}

#[test]
fn the_dashboards_show_what_the_dual_run_is_watched_by() {
    let overview = [
        "paritygate_gate_verdict",
        "paritygate_wave_signed_off",
        "paritygate_events_total",
        "paritygate_mismatched_keys",
        "paritygate_row_diff_ratio",
        "paritygate_row_diff_ratio_upper_bound",
        "paritygate_windows_settled",
        "paritygate_consumer_lag_messages",
        "paritygate_watermark_timestamp_seconds",
        "paritygate_candidate_delay_regression_seconds",
        "paritygate_unparseable_total",
    ];
    let drilldown = [
        "paritygate_duplicates_total",
        "paritygate_checkpoint_duration_seconds",
        "paritygate_processing_latency_seconds",
        "paritygate_field_mismatched_keys",
        "paritygate_rows_sampled_total",
        "paritygate_rows_differing",
    ];
    let (got_overview, got_drill) = (
        families("overview.json"),
        families("service-drilldown.json"),
    );
    for m in overview {
        assert!(got_overview.contains(m), "overview.json shows no {m}");
    }
    for m in overview.iter().chain(drilldown.iter()) {
        if *m != "paritygate_wave_signed_off" {
            assert!(
                got_drill.contains(*m),
                "service-drilldown.json shows no {m}"
            );
        }
    }
    let (_, drill) = dashboards()
        .into_iter()
        .find(|(n, _)| n == "service-drilldown.json")
        .unwrap();
    let exprs: Vec<String> = panels(&drill)
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap_or_default().to_owned())
        .collect();
    for (what, needle) in [
        ("by-operation counts", "by (service, side, operation)"),
        ("per-partition lag", "by (service, side, topic, partition)"),
        ("top 20 differing fields", "topk(20,"),
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(needle)),
            "service-drilldown.json: no {what} ({needle})"
        );
    }
    let (_, overview) = dashboards()
        .into_iter()
        .find(|(n, _)| n == "overview.json")
        .unwrap();
    let verdict = panels(&overview)
        .into_iter()
        .find(|p| p["title"] == "Gate verdict")
        .expect("overview: Gate verdict panel");
    assert_eq!(verdict["type"], "state-timeline");
}

fn yaml(rel: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn provisioning_loads_the_datasource_and_this_folder_and_the_scrape_config_is_valid() {
    let ds = yaml("provisioning/datasources/prometheus.yml");
    assert_eq!(ds["apiVersion"], 1);
    let source = &ds["datasources"][0];
    assert_eq!(source["type"], "prometheus");
    assert!(source["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http")));

    let boards = yaml("provisioning/dashboards/paritygate.yml");
    assert_eq!(boards["apiVersion"], 1);
    let provider = &boards["providers"][0];
    assert_eq!(provider["type"], "file");
    assert!(provider["options"]["path"]
        .as_str()
        .is_some_and(|p| p.starts_with('/')));

    let prometheus = yaml("prometheus.yml");
    assert_eq!(prometheus["scrape_configs"][0]["job_name"], "paritygate");
    assert_eq!(prometheus["rule_files"][0], "alerts.yml");
    let (ok, out) = run_promtool(&["check", "config", "prometheus.yml"], None);
    assert!(ok, "promtool check config prometheus.yml:\n{out}");
}

#[test]
fn promtool_check_rules_accepts_the_alerts() {
    let (ok, out) = run_promtool(&["check", "rules", "alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{out}");
    let n = rules().len();
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "promtool found another number of rules than {n}:\n{out}"
    );
    assert!(rule_queries().iter().all(|q| !q.raw.contains('$')));
}

/// GitHub's anchor of a Markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_has_summary_description_severity_and_a_runbook_section() {
    let runbook = std::fs::read_to_string(crate::support::root().join("docs/runbook.md"))
        .expect("docs/runbook.md");
    let sections: BTreeMap<String, String> = runbook
        .split("\n## ")
        .skip(1)
        .map(|s| {
            let (heading, body) = s.split_once('\n').unwrap_or((s, ""));
            (slug(heading), body.to_owned())
        })
        .collect();
    let all = rules();
    let names: BTreeSet<&str> = all.iter().map(|r| r.name()).collect();
    assert_eq!(names, BTreeSet::from(ALERTS), "the alert set");
    assert_eq!(names.len(), all.len(), "an alert name repeats");
    for rule in &all {
        let name = rule.name();
        assert!(rule.alert.is_some(), "{name}: not an alert");
        assert!(
            rule.for_.is_some(),
            "{name}: no `for` (a single scrape would page)"
        );
        assert!(
            matches!(
                rule.labels.get("severity").map(String::as_str),
                Some("critical" | "warning")
            ),
            "{name}: severity {:?}",
            rule.labels.get("severity")
        );
        for key in ["summary", "description", "runbook"] {
            assert!(
                rule.annotations
                    .get(key)
                    .is_some_and(|v| !v.trim().is_empty()),
                "{name}: no `{key}` annotation"
            );
        }
        let runbook = &rule.annotations["runbook"];
        let anchor = runbook
            .strip_prefix("docs/runbook.md#")
            .unwrap_or_else(|| panic!("{name}: runbook {runbook} is not docs/runbook.md#…"));
        assert_eq!(
            anchor,
            slug(name),
            "{name}: the section is named after the alert"
        );
        let body = sections
            .get(anchor)
            .unwrap_or_else(|| panic!("{name}: docs/runbook.md has no section #{anchor}"));
        for part in ["**Means.**", "**Check.**", "**Do.**"] {
            assert!(body.contains(part), "{name}: runbook section lacks {part}");
        }
    }
    for anchor in sections.keys().filter(|a| a.starts_with("paritygate")) {
        assert!(
            names.iter().any(|n| slug(n) == *anchor),
            "docs/runbook.md section #{anchor} belongs to no alert"
        );
    }
}

#[test]
fn promtool_unit_tests_fire_every_alert_and_keep_it_silent_when_healthy() {
    let (ok, out) = run_promtool(&["test", "rules", "alerts.test.yml"], None);
    assert!(ok, "promtool test rules alerts.test.yml:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let tests = yaml("alerts.test.yml");
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for test in tests["tests"].as_sequence().unwrap() {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap().to_owned();
            match case["exp_alerts"].as_sequence().map(Vec::len) {
                Some(n) if n > 0 => fires.insert(name),
                _ => silent.insert(name),
            };
        }
    }
    let all: BTreeSet<String> = ALERTS.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(fires, all, "alerts with a unit test where they fire");
    assert_eq!(
        silent, all,
        "alerts with a unit test where they stay silent"
    );
}
