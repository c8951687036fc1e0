//! `paritygate diff --from/--until`: two topics with different histories (the baseline held a
//! day's output before the candidate was switched on) compare on the events both saw. Before the
//! start: history, a key whose events straddle the start (compared on its later events only) and
//! a delete just before it; after the end: a key the candidate wrote later. Excluded events are
//! counted per side; without the range the history is drift.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::Path;

const CONFIG: &str = r#"
[[services]]
name = "stock"
baseline_topics = ["rpcn.stock"]
candidate_topics = ["bento.stock"]
key = { from = "message_key" }
"#;
/// 2026-08-20T10:00:00Z; the candidate starts an hour later.
const T0: i64 = 1_787_220_000_000;
const START: &str = "2026-08-20T11:00:00Z";
const S: i64 = T0 + 3_600_000;

fn line(topic: &str, offset: usize, key: &str, value: Option<Value>, at: i64) -> String {
    let mut l =
        json!({"topic": topic, "partition": 0, "offset": offset, "key": key, "timestamp": at});
    if let Some(v) = value {
        l["value"] = json!(v.to_string());
    }
    l.to_string()
}

fn captures(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut baseline = Vec::new();
    let mut b = |key: &str, value: Option<Value>, at: i64| {
        let n = baseline.len();
        baseline.push(line("rpcn.stock", n, key, value, at));
    };
    for i in 0..50 {
        b(&format!("h{i}"), Some(json!({"qty": i})), T0 + i * 1000);
    }
    b("s7", Some(json!({"qty": 1})), T0 + 600_000);
    b("d8", Some(json!({"qty": 8})), T0 + 300_000);
    b("d8", None, S - 1000); // deleted just before the start
    let mut after = Vec::new();
    for i in 0..20 {
        after.push((format!("k{i}"), json!({"qty": i}), S + i * 1000));
    }
    after.push(("s7".into(), json!({"qty": 2}), S + 30_000));
    for (key, value, at) in &after {
        b(key, Some(value.clone()), *at);
    }
    let mut candidate: Vec<String> = after
        .iter()
        .enumerate()
        .map(|(n, (key, value, at))| line("bento.stock", n, key, Some(value.clone()), at + 500))
        .collect();
    // Written after the compared range ends (two hours after the start).
    candidate.push(line(
        "bento.stock",
        candidate.len(),
        "late",
        Some(json!({"qty": 9})),
        S + 7_200_000,
    ));
    let (bp, cp) = (dir.join("baseline.jsonl"), dir.join("candidate.jsonl"));
    std::fs::write(&bp, baseline.join("\n") + "\n").unwrap();
    std::fs::write(&cp, candidate.join("\n") + "\n").unwrap();
    (bp, cp)
}

/// Run `diff` on the captures under `config` with `args`; its exit code must be `code`. The
/// report (when one was printed) and stderr.
fn run(dir: &Path, config: &str, args: &[&str], code: i32) -> (Option<Value>, String) {
    let (b, c) = captures(dir);
    std::fs::write(dir.join("paritygate.toml"), config).unwrap();
    let out = Command::cargo_bin("paritygate")
        .unwrap()
        .env_remove("PARITYGATE_CONFIG")
        .args(["diff", "--format", "json", "--config"])
        .arg(dir.join("paritygate.toml"))
        .args(args)
        .arg(&b)
        .arg(&c)
        .assert()
        .code(code);
    let output = out.get_output();
    (
        serde_json::from_slice(&output.stdout).ok(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn diff(dir: &Path, range: &[&str], code: i32) -> Value {
    run(dir, CONFIG, range, code).0.expect("a report")
}

/// The config with `compare_from = VALUE` on the service.
fn compare_from(value: &str) -> String {
    CONFIG.replace(
        "key = { from = \"message_key\" }",
        &format!("key = {{ from = \"message_key\" }}\ncompare_from = \"{value}\""),
    )
}

#[test]
fn from_the_start_the_pair_matches_and_the_history_is_counted_not_compared() {
    let dir = tempfile::tempdir().unwrap();
    let until = "2026-08-20T12:00:00Z";
    let report = diff(dir.path(), &["--from", START, "--until", until], 0);
    let s = &report["services"][0];
    assert_eq!(s["verdict"], "pass", "{s}");
    assert_eq!(s["keys"]["total"], 21, "k0..k19 and s7: {s}");
    assert_eq!(s["keys"]["matched"], 21, "{s}");
    // 50 history keys, s7's first event, d8's insert and delete.
    assert_eq!(s["baseline"]["before_start"], 53, "{s}");
    assert_eq!(s["baseline"]["events"], 21, "{s}");
    assert_eq!(s["candidate"]["before_start"], 0, "{s}");
    assert_eq!(s["candidate"]["after_until"], 1, "the late key: {s}");
    assert_eq!(s["candidate"]["untimed"], 0, "{s}");
    assert_eq!(report["inputs"]["from"], START);
    assert_eq!(report["inputs"]["until"], until);
}

#[test]
fn from_the_beginning_the_history_is_drift() {
    let dir = tempfile::tempdir().unwrap();
    let report = diff(dir.path(), &[], 1);
    let s = &report["services"][0];
    assert_eq!(s["keys"]["missing_in_candidate"], 51, "h0..h49 and d8: {s}");
    assert_eq!(s["keys"]["extra_in_candidate"], 1, "late: {s}");
    assert_eq!(s["keys"]["mismatched"], 1, "s7, its history differs: {s}");
    assert!(
        s["baseline"].get("before_start").is_none(),
        "no range, no count: {s}"
    );
    assert!(report["inputs"].get("from").is_none());
    // Only a start: the late key is compared (and extra), the history is not.
    let report = diff(dir.path(), &["--from", START], 1);
    let s = &report["services"][0];
    assert_eq!(s["keys"]["extra_in_candidate"], 1, "{s}");
    assert_eq!(s["keys"]["missing_in_candidate"], 0, "{s}");
    assert_eq!(s["keys"]["mismatched"], 0, "{s}");
    assert!(
        s["candidate"].get("after_until").is_none(),
        "no end, no count: {s}"
    );
}

#[test]
fn a_bad_range_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["--from", "yesterday"], "--from"),
        (
            vec!["--from", START, "--until", START],
            "--until must be later than --from",
        ),
    ] {
        let (_, stderr) = run(dir.path(), CONFIG, &args, 2);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// A service's `compare_from` is `diff`'s default range, so `diff` stays the oracle of `serve`.
#[test]
fn a_services_compare_from_is_the_default_start() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = run(dir.path(), &compare_from(START), &[], 1);
    let report = report.expect("a report");
    let s = &report["services"][0];
    assert_eq!(s["baseline"]["before_start"], 53, "{s}");
    assert_eq!(s["keys"]["missing_in_candidate"], 0, "{s}");
    assert_eq!(s["keys"]["extra_in_candidate"], 1, "only the late key: {s}");
    // `auto` is decided by serve on live data: diff asks for the start serve chose rather than
    // taking it for something else, and compares from it when given.
    let (_, stderr) = run(dir.path(), &compare_from("auto"), &[], 2);
    assert!(
        stderr.contains("compare_from = \"auto\"") && stderr.contains("--from"),
        "{stderr}"
    );
    let (auto, _) = run(dir.path(), &compare_from("auto"), &["--from", START], 1);
    assert_eq!(
        auto.expect("a report")["services"][0]["baseline"]["before_start"],
        53
    );
    // Anything else is named with the three accepted forms.
    let (_, stderr) = run(dir.path(), &compare_from("soon"), &[], 2);
    assert!(
        stderr.contains("neither \"beginning\", \"auto\" nor an RFC 3339 instant"),
        "{stderr}"
    );
}
