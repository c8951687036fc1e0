//! `serve` end to end on real parts: the fixture captures produced to a real broker (half before
//! start, half while running), consumed live, state in a fresh Postgres database; once settled,
//! every service shows exactly what `paritygate diff` (`replay`) computes on the same files.

use crate::support::app::InProcess;
use crate::support::broker::Batching;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::traffic::FixtureRun;
use paritygate::model::Verdict;
use std::time::Duration;

async fn run(name: &str) -> FixtureRun {
    let run = FixtureRun::new(name).await;
    let halves = run.fixture.split(2);
    run.broker
        .produce_all(halves[0], Batching::OnePerRecord)
        .await;
    let app = InProcess::start(run.app_config().config()).await;
    assert_eq!(app.api.status("/healthz").await.unwrap(), 200, "healthz");
    run.broker
        .produce_all(halves[1], Batching::OnePerRecord)
        .await;
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(45)).await;
    assert_eq!(app.api.status("/readyz").await.unwrap(), 200, "readyz");
    assert_matches_replay(&app.api, &run.expected).await;
    app.stop().await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_fixtures_match_replay_and_pass() {
    let run = run("clean").await;
    // The clean pair is all-pass in replay too, so `assert_matches_replay` checked `pass` gates.
    for s in &run.expected.services {
        assert_eq!(s.verdict, Verdict::Pass, "replay of clean/{}", s.service);
        assert_eq!(
            s.keys.total, s.keys.matched,
            "replay of clean/{}",
            s.service
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_fixtures_match_replay_and_fail() {
    let run = run("drift").await;
    // Every service of the drift pair carries planted drift of every kind, so `fail` gates and
    // non-empty mismatch lists per kind were checked.
    for s in &run.expected.services {
        assert_eq!(s.verdict, Verdict::Fail, "replay of drift/{}", s.service);
        assert!(
            s.keys.missing_in_candidate > 0
                && s.keys.extra_in_candidate > 0
                && s.keys.mismatched > 0
        );
    }
}
