//! The `paritygate diff` binary on the shipped fixtures: exact JSON reports and exit codes.
//!
//! The golden reports in `tests/golden/` were reviewed by hand against `fixtures/*/expected.json`;
//! regenerate them with `UPDATE_GOLDEN=1 cargo test --test it cli::diff` after an intended change.

use assert_cmd::Command;
use std::path::Path;

const CONFIG: &str = "fixtures/paritygate.toml";
const CLEAN: [&str; 2] = [
    "fixtures/clean/baseline.kcat.jsonl",
    "fixtures/clean/candidate.rpk.jsonl",
];
const DRIFT: [&str; 2] = [
    "fixtures/drift/baseline.kcat.jsonl",
    "fixtures/drift/candidate.rpk.jsonl.gz",
];

fn paritygate() -> Command {
    let mut cmd = Command::cargo_bin("paritygate").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PARITYGATE_CONFIG");
    cmd
}

fn diff_json(files: &[&str], code: i32) -> String {
    let out = paritygate()
        .args(["diff", "--config", CONFIG, "--format", "json"])
        .args(files)
        .assert()
        .code(code);
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(
        want == actual,
        "report differs from {}:\n{actual}",
        path.display()
    );
}

#[test]
fn clean_fixtures_pass_with_the_exact_report() {
    golden("clean.report.json", &diff_json(&CLEAN, 0));
}

#[test]
fn drift_fixtures_fail_with_the_exact_report() {
    golden("drift.report.json", &diff_json(&DRIFT, 1));
}

#[test]
fn text_summary_names_verdicts_and_keys() {
    let out = paritygate()
        .args(["diff", "--config", CONFIG])
        .args(DRIFT)
        .assert()
        .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("orders (wave") || text.contains("orders: FAIL"),
        "{text}"
    );
    assert!(
        text.contains("missing_in_candidate 1003: key absent from the candidate"),
        "{text}"
    );
    assert!(
        text.contains("mismatched 1027: 1 event with other content; final state differs [/total]"),
        "{text}"
    );
    assert!(
        text.ends_with("verdict: FAIL (paritygate-canonical/1)\n"),
        "{text}"
    );
}

#[test]
fn a_side_without_events_is_pending() {
    let out = paritygate()
        .args(["diff", "--config", CONFIG, "--format", "json", CLEAN[0]])
        .assert()
        .code(3);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["verdict"], "pending");
    assert_eq!(report["services"][0]["candidate"]["events"], 0);
}

#[test]
fn malformed_lines_are_counted_and_located_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join(CLEAN[1])).unwrap();
    text.insert_str(
        0,
        "{\"topic\":\"bento.dev.acme.public.orders\",\"value\":\"{\\\"id\\\":\n",
    );
    let bad = dir.path().join("candidate.jsonl");
    std::fs::write(&bad, text).unwrap();
    let bad = bad.to_str().unwrap();

    let out = paritygate()
        .args([
            "diff", "--config", CONFIG, "--format", "json", CLEAN[0], bad,
        ])
        .assert()
        .code(0);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(&format!("warning: {bad}:1: not valid JSON")),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["services"][0]["candidate"]["unparseable"], 1);
    assert_eq!(report["inputs"]["errors"][0]["line"], 1);

    let out = paritygate()
        .args(["diff", "--config", CONFIG, "--strict", CLEAN[0], bad])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(&format!("error: {bad}:1: not valid JSON"))
            && stderr.contains("(--strict)"),
        "{stderr}"
    );
}

#[test]
fn bad_config_input_and_usage_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[services]]\nname = \"x\"\nbaseline_topics = []\ncandidate_topics = [\"b\"]\n",
    )
    .unwrap();
    let out = paritygate()
        .args(["diff", "--config", cfg.to_str().unwrap(), CLEAN[0]])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("service `x`: field `baseline_topics`: must name at least one topic"),
        "{stderr}"
    );

    let out = paritygate()
        .args(["diff", "--config", CONFIG, "fixtures/nope.jsonl"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr)
        .contains("fixtures/nope.jsonl: No such file"));
    paritygate()
        .args(["diff", "--config", CONFIG])
        .assert()
        .code(2);
    paritygate().args(["frobnicate"]).assert().code(2);
}
