//! Two replicas (`replicas = 2`, `replica_index = 0/1`, manual split of partitions) on one
//! database give the same answers as one replica, from either replica's API: the comparison is
//! set-based in Postgres, so a key's baseline and candidate may be consumed by different replicas.

use crate::support::app::InProcess;
use crate::support::broker::Batching;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::traffic::{FixtureRun, KINDS};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_equal_one() {
    let run = FixtureRun::new("drift").await;
    let halves = run.fixture.split(2);
    run.broker
        .produce_all(halves[0], Batching::OnePerRecord)
        .await;
    let config = run.app_config();
    let a = InProcess::start(config.clone().replica(0, 2).config()).await;
    let b = InProcess::start(config.replica(1, 2).config()).await;
    run.broker
        .produce_all(halves[1], Batching::OnePerRecord)
        .await;

    for app in [&a, &b] {
        wait_caught_up(&app.api, &run.expected, Duration::from_secs(45)).await;
        assert_matches_replay(&app.api, &run.expected).await;
    }
    for s in &run.expected.services {
        for kind in KINDS {
            let (from_a, from_b) = (
                a.api.mismatches(&s.service, kind.as_str()).await.unwrap(),
                b.api.mismatches(&s.service, kind.as_str()).await.unwrap(),
            );
            assert_eq!(
                from_a,
                from_b,
                "{}: {} items differ between replicas",
                s.service,
                kind.as_str()
            );
        }
    }
    a.stop().await;
    b.stop().await;
}
