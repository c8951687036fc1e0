//! kill -9 of the `paritygate serve` process mid-ingestion, several times, with more records
//! produced between restarts: nothing is lost or counted twice. The final state equals a replay of
//! the same records (checkpoints write state and offsets in one transaction).

use crate::support::app::ChildApp;
use crate::support::broker::Batching;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::http::{u64_at, Api};
use crate::support::traffic::FixtureRun;
use crate::support::wait_until;
use std::time::Duration;

/// Records in the stored state, summed over services and sides.
async fn stored_records(api: &Api, services: &[String]) -> Result<u64, String> {
    let mut total = 0;
    for s in services {
        let status = api.service(s).await?;
        total += u64_at(&status, "/baseline/records")? + u64_at(&status, "/candidate/records")?;
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_ingestion_loses_and_doubles_nothing() {
    let run = FixtureRun::new("drift").await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = run.app_config().write(dir.path());
    let services: Vec<String> = run
        .expected
        .services
        .iter()
        .map(|s| s.service.clone())
        .collect();
    let parts = run.fixture.split(4);
    run.broker
        .produce_all(parts[0], Batching::OnePerRecord)
        .await;

    let mut seen = 0;
    for (round, part) in parts[1..].iter().enumerate() {
        let app = ChildApp::start(&config_path);
        // Let it make checkpointed progress past the last round, then produce more and kill it
        // while it is consuming those (checkpoints are 200 ms apart).
        seen = wait_until(
            &format!("round {round}: progress past {seen} stored records"),
            Duration::from_secs(30),
            || async {
                let now = stored_records(&app.api, &services).await?;
                if now > seen {
                    Ok(now)
                } else {
                    Err(format!("{now} stored records"))
                }
            },
        )
        .await;
        let produce = run.broker.produce_all(part, Batching::OnePerRecord);
        let kill_after = tokio::time::sleep(Duration::from_millis(150 + 100 * round as u64));
        tokio::join!(produce, kill_after);
        app.kill9();
    }
    // One more kill during start-up, before any evaluation was served.
    let app = ChildApp::start(&config_path);
    app.kill9();

    let app = ChildApp::start(&config_path);
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(45)).await;
    assert_matches_replay(&app.api, &run.expected).await;
    let total: u64 = run
        .expected
        .services
        .iter()
        .map(|s| s.baseline.records + s.candidate.records)
        .sum();
    assert_eq!(
        stored_records(&app.api, &services).await.unwrap(),
        total,
        "records stored exactly once"
    );
    app.kill9();
}
