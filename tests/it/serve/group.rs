//! The group protocol (`assignment = "group"`, the default) end to end: one replica alone, then a
//! second one joining the same consumer group mid-ingestion. The partitions they trade are
//! checkpointed on revocation (`serve::rebalance`), so the answers equal one replica's.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::Batching;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::http::Api;
use crate::support::traffic::FixtureRun;
use crate::support::wait_until;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_group_member_takes_partitions_and_the_answers_stay_exact() {
    let run = FixtureRun::new("drift").await;
    let config = run.app_config().group();
    second_member_joins(&run, config).await;
}

/// The same under the incremental (cooperative) protocol: a rebalance revokes only the partitions
/// that move, and assigns only the new ones (`serve::rebalance` handles both protocols).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_cooperative_protocol_too() {
    let run = FixtureRun::new("drift").await;
    let config = run
        .app_config()
        .group()
        .kafka_property("partition.assignment.strategy", "cooperative-sticky");
    second_member_joins(&run, config).await;
}

async fn second_member_joins(run: &FixtureRun, config: AppConfig) {
    let halves = run.fixture.split(2);
    run.broker
        .produce_all(halves[0], Batching::OnePerRecord)
        .await;
    let a = InProcess::start(config.config()).await;
    // The second member joins only once the first one owns every partition and has consumed:
    // its joining makes the group revoke partitions from a running member.
    let alone = wait_consuming(&a.api, Duration::from_secs(90)).await;
    let b = InProcess::start(config.config()).await;
    // The rest is produced once the group gave the newcomer its share, so both consume some.
    let shares = wait_split(&a.api, &b.api, Duration::from_secs(120)).await;
    run.broker
        .produce_all(halves[1], Batching::OnePerRecord)
        .await;
    for app in [&a, &b] {
        wait_caught_up(&app.api, &run.expected, Duration::from_secs(120)).await;
        assert_matches_replay(&app.api, &run.expected).await;
    }
    // Both members did part of the work: the group really split the partitions.
    let consumed = [
        a.api.metric_sum("paritygate_records_total").await.unwrap(),
        b.api.metric_sum("paritygate_records_total").await.unwrap(),
    ];
    eprintln!(
        "first member consumed {alone} alone; partitions per member {shares:?}; records {consumed:?}"
    );
    assert!(
        consumed.iter().all(|n| *n > 0.0),
        "a member consumed nothing: {consumed:?}"
    );
    a.stop().await;
    b.stop().await;
}

/// Wait until a member has consumed records; returns how many.
async fn wait_consuming(api: &Api, limit: Duration) -> f64 {
    wait_until("the first member consumed records", limit, || async {
        match api.metric_sum("paritygate_records_total").await? {
            n if n > 0.0 => Ok(n),
            n => Err(format!("{n} records")),
        }
    })
    .await
}

/// Wait until both members own partitions; returns how many each owns.
async fn wait_split(a: &Api, b: &Api, limit: Duration) -> (f64, f64) {
    wait_until("the group split the partitions", limit, || async {
        let gauge = "paritygate_assigned_partitions";
        let shares = (a.metric_sum(gauge).await?, b.metric_sum(gauge).await?);
        if shares.0 > 0.0 && shares.1 > 0.0 {
            Ok(shares)
        } else {
            Err(format!("partitions per member: {shares:?}"))
        }
    })
    .await
}
