//! `paritygate gate` against a test server: exit codes 0 (pass/warn), 1 (fail), 3 (pending, or
//! `--wait` timed out), 2 (unknown service), and the printed explanation.
use crate::support::db::TestDb;
use crate::support::gates::{config, GateApp, SERVICES};
use paritygate::model::Verdict;
use std::time::{Duration, Instant};

/// Run the binary built for this test run; (exit code, stdout, stderr).
async fn gate(app: &GateApp, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_paritygate"))
        .arg("gate")
        .arg("--url")
        .arg(app.url())
        .args(args)
        .env_remove("PARITYGATE_TOKEN")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn exit_codes_follow_the_verdict() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Pass).await;
    let (code, out, _) = gate(&app, &["--service", "orders"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("orders: pass (raw verdict pass, evaluated at 2026-11-24T12:00:00Z)\n  - orders is pass\n"), "{out}");
    assert!(out.contains("key_parity"), "{out}");
    assert!(out.contains("key parity is pass"), "{out}");

    app.set("orders", Verdict::Warn).await;
    assert_eq!(gate(&app, &["--service", "orders"]).await.0, 0);
    app.set("orders", Verdict::Fail).await;
    let (code, out, _) = gate(&app, &["--service", "orders"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("orders is fail"), "{out}");
    // Not evaluated yet: pending, at once without --wait.
    let (code, out, _) = gate(&app, &["--service", "payments"]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("payments: pending"), "{out}");
    let (code, _, err) = gate(&app, &["--service", "shipping"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("unknown service `shipping`"), "{err}");
    let (code, _, err) = gate(&app, &["--service", "orders", "--wait", "--timeout", "30"]).await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn wait_polls_until_decided_or_times_out() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Pending).await;

    let started = Instant::now();
    let (code, out, _) = gate(
        &app,
        &[
            "--service",
            "orders",
            "--wait",
            "--timeout",
            "1s",
            "--interval",
            "100ms",
        ],
    )
    .await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("timed out after 1s waiting for `orders`"),
        "{out}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));

    let flip = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        app.set("orders", Verdict::Pass).await;
    };
    let waiting = gate(
        &app,
        &[
            "--service",
            "orders",
            "--wait",
            "--timeout",
            "30s",
            "--interval",
            "100ms",
        ],
    );
    let ((code, out, err), ()) = tokio::join!(waiting, flip);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("orders: pass"), "{out}");
    assert!(err.starts_with("waiting: orders: pending"), "{err}");
}
