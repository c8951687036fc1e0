//! SIGTERM: `paritygate serve` drains what it consumed, checkpoints it and exits 0; a restart
//! finds every record stored exactly once (no replay beyond the last checkpoint).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::app::ChildApp;
use support::broker::Batching;
use support::expect::{assert_matches_replay, wait_caught_up};
use support::traffic::FixtureRun;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_checkpoints_and_exits_zero() {
    let run = FixtureRun::new("clean").await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = run.app_config().write(dir.path());
    run.fixture
        .produce(&run.broker, Batching::OnePerRecord)
        .await;

    let app = ChildApp::start(&config_path);
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(60)).await;
    let output = app.output();
    let status = app.terminate(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status; output:\n{output}"
    );

    // Everything consumed before the signal was checkpointed: a restart has nothing to redo and
    // reports exactly the replay of the same records.
    let app = ChildApp::start(&config_path);
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(60)).await;
    assert_matches_replay(&app.api, &run.expected).await;
}
