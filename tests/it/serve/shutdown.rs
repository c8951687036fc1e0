//! SIGTERM: `paritygate serve` drains what it consumed, checkpoints it and exits 0; a restart
//! finds every record stored exactly once (no replay beyond the last checkpoint), and remembers
//! which events it counted (a re-delivery after the restart is a duplicate, not a new event).

use crate::support::app::ChildApp;
use crate::support::broker::Batching;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::traffic::{replay_files, FixtureRun};
use std::time::Duration;

/// The clean fixture produced, consumed by a child `serve` until caught up, then SIGTERM: the
/// exit status must be 0. Returns the run, the config's directory (kept alive) and the config.
async fn consume_all_then_sigterm() -> (FixtureRun, tempfile::TempDir, std::path::PathBuf) {
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
    (run, dir, config_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_checkpoints_and_exits_zero() {
    let (run, _dir, config_path) = consume_all_then_sigterm().await;

    // Everything consumed before the signal was checkpointed: a restart has nothing to redo and
    // reports exactly the replay of the same records.
    let app = ChildApp::start(&config_path);
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(60)).await;
    assert_matches_replay(&app.api, &run.expected).await;
}

/// A runtime that re-delivers its whole output after paritygate restarted: every copy lands at a
/// new offset, and only the event identities stored with the offsets can tell it is not new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_after_a_restart_are_duplicates_not_new_events() {
    let (run, _dir, config_path) = consume_all_then_sigterm().await;

    run.fixture
        .produce(&run.broker, Batching::OnePerRecord)
        .await;
    // What `diff` says about the same records read twice: twice the records, the same events.
    let twice: Vec<_> = run
        .fixture
        .files
        .iter()
        .chain(&run.fixture.files)
        .cloned()
        .collect();
    let doubled = replay_files(&twice);
    for (once, again) in run.expected.services.iter().zip(&doubled.services) {
        assert_eq!(again.baseline.records, 2 * once.baseline.records);
        assert_eq!(again.baseline.events, once.baseline.events);
        assert_eq!(again.candidate.events, once.candidate.events);
    }

    let app = ChildApp::start(&config_path);
    wait_caught_up(&app.api, &doubled, Duration::from_secs(60)).await;
    assert_matches_replay(&app.api, &doubled).await;
}
