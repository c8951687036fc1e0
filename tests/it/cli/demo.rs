//! The README's first command, `scripts/demo --once`, end to end: set-up, broker, database, `serve`,
//! `generate` with drift on `refunds`, settled verdicts, and an observation that is the traffic's
//! event-time span, not the time the demo waited. The test-built binary is passed in with
//! `PARITYGATE_BIN` so the demo does not build a second (release) copy; a database of its own keeps
//! it apart from a demo a person may be running.

use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn demo_prints_pass_for_clean_services_and_an_explained_fail_for_the_drifting_one() {
    let db = crate::support::unique("paritygate_demo_test");
    let started = Instant::now();
    let out = Command::new(crate::support::root().join("scripts/demo"))
        .arg("--once")
        .env("PARITYGATE_BIN", env!("CARGO_BIN_EXE_paritygate"))
        .env("PARITYGATE_DEMO_DB", &db)
        .env("PARITYGATE_DEMO_PG", crate::support::db::server_url())
        .output()
        .expect("run scripts/demo");
    let elapsed = started.elapsed();
    drop_database(&db).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(elapsed < Duration::from_secs(300), "took {elapsed:?}");

    let row = |service: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(service))
            .unwrap_or_else(|| panic!("no row for {service}:\n{stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    for (service, wave) in [("orders", "1"), ("payments", "1"), ("inventory", "2")] {
        let r = row(service);
        assert_eq!(r[1..3], [wave, "pass"], "{stdout}");
        // The generators' commit clocks start at 2026-08-20T10:00:00Z and space commits up to a
        // second or so apart: 2,000 events cover 5 to 15 minutes of event time (seed 2026: orders
        // 317 s, payments 301 s, inventory 904 s). Counting the clock since then would give months.
        let observed: u64 = r[3]
            .strip_suffix('s')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{service}: observation `{}`:\n{stdout}", r[3]));
        assert!(
            (120..=1800).contains(&observed),
            "{service}: observation_seconds {observed}, the traffic spans 5 to 15 minutes of event time:\n{stdout}"
        );
    }
    let refunds = row("refunds").join(" ");
    assert!(refunds.starts_with("refunds 2 fail "), "{stdout}");
    assert!(
        stdout.contains("SERVICE    WAVE  VERDICT  OBSERVED"),
        "{stdout}"
    );
    assert!(refunds.contains("key_parity: "), "{stdout}");
    assert!(refunds.contains("settled keys differ"), "{stdout}");
    assert!(refunds.contains("missing_in_candidate"), "{stdout}");
    assert!(
        stdout.contains("Operator page: http://127.0.0.1:"),
        "{stdout}"
    );
}

async fn drop_database(name: &str) {
    use sqlx::Connection;
    let url = format!("{}/postgres", crate::support::db::server_url());
    if let Ok(mut admin) = sqlx::PgConnection::connect(&url).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}
