//! The API against its own OpenAPI document, by schemathesis (PyPI, in the tools venv): every
//! operation, with no token, a reader's and an approver's, on a live service with real verdicts
//! (the operator page's scenario: passing and failing services, waves, mismatches with field
//! diffs). Every check schemathesis has (`--checks all`): no 5xx, every answer's status, content
//! type, headers and body as documented, schema-valid requests accepted and invalid ones refused.
//! Bounded: a fixed number of examples per operation and a time budget per run.

use crate::support::operator::{Scenario, APPROVER, READER};
use crate::support::program;
use std::time::Duration;

/// Examples per operation and phase; the runs stay within `MAX_SECONDS` each.
const EXAMPLES: &str = "15";
const MAX_SECONDS: &str = "50";

async fn schemathesis(base: &str, token: Option<&str>) -> (bool, String) {
    let mut command =
        tokio::process::Command::new(program("PARITYGATE_SCHEMATHESIS", "schemathesis"));
    let config = crate::support::root().join("tests/it/api/schemathesis.toml");
    // It keeps a cache of crashes under `./.schemathesis`: in a throwaway directory, not the
    // checkout.
    let scratch = tempfile::tempdir().expect("scratch directory");
    command
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--checks", "all", "--max-examples", EXAMPLES])
        .args(["--max-time", MAX_SECONDS, "--request-timeout", "20"])
        .args(["--workers", "1", "--seed", "1", "--no-color"])
        // Reproducible and offline: no database of earlier failures, no telemetry.
        .env("SCHEMATHESIS_HOOKS", "")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .kill_on_drop(true);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("schemathesis finishes within 300 s")
        .expect("run schemathesis (scripts/setup installs it into .tools/venv)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_its_openapi_document_says() {
    let scenario = Scenario::start().await;
    for (who, token) in [
        ("no token", None),
        ("a reader's token", Some(READER)),
        ("an approver's token", Some(APPROVER)),
    ] {
        let (ok, report) = schemathesis(&scenario.base, token).await;
        assert!(ok, "schemathesis with {who} found failures:\n{report}");
        // The run covered every documented operation (none skipped as unreachable).
        assert!(
            !report.contains(" 0 selected") && report.contains("operations"),
            "schemathesis with {who} ran nothing:\n{report}"
        );
    }
    scenario.app.stop().await;
}
