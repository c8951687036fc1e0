//! A topic deleted and recreated under the same name while the service was down, whose new log
//! already reaches past the stored offsets (`serve::verify`): the record before each stored offset
//! is another one, so the partition is read from its new log's start, not from the stored offset
//! (which would silently skip the new log's first records). The reset is visible (API, metric).
//!
//! The other detection, offsets going back under a running consumer (`serve::cursor`, after the
//! broker answered "out of range"), is covered by unit and worker tests only: tansu never answers
//! "out of range" (a fetch beyond the end returns nothing).

use crate::support::app::InProcess;
use crate::support::broker::{Batching, Broker, Record};
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::http::{count_at, Api};
use crate::support::traffic::{create_topics, fixture_config, FixtureRun, FIXTURE_PARTITIONS};
use crate::support::wait_until;
use std::collections::BTreeMap;
use std::time::Duration;

const SERVICES: [&str; 3] = ["orders", "payments", "inventory"];

/// Each partition's first third, and the rest: the old log holds the first third, the recreated
/// one the rest (later changes, as a recreated topic would), which is longer, so the offsets
/// stored for the old log are inside the new one.
fn split_per_partition(records: &[Record]) -> (Vec<Record>, Vec<Record>) {
    let mut per_partition: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for r in records {
        *per_partition
            .entry((r.topic.clone(), r.partition))
            .or_default() += 1;
    }
    let mut seen: BTreeMap<(String, i32), usize> = BTreeMap::new();
    records.iter().cloned().partition(|r| {
        let key = (r.topic.clone(), r.partition);
        let index = seen.entry(key.clone()).or_default();
        *index += 1;
        *index <= per_partition[&key] / 3
    })
}

/// A sum over every service and both sides of the status field `field`.
async fn both_sides(api: &Api, field: &str) -> Result<u64, String> {
    let mut sum = 0;
    for service in SERVICES {
        let status = api.service(service).await?;
        sum += count_at(&status, &format!("/baseline/{field}"))
            + count_at(&status, &format!("/candidate/{field}"));
    }
    Ok(sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_recreated_while_the_service_was_down_is_read_from_its_new_start() {
    let run = FixtureRun::new("clean").await;
    let (old_log, new_log) = split_per_partition(&run.fixture.records);
    assert!(!old_log.is_empty() && new_log.len() > old_log.len());
    run.broker
        .produce_all(&old_log, Batching::OnePerRecord)
        .await;
    let app = InProcess::start(run.app_config().config()).await;
    let routed = old_log.len() as u64;
    wait_until("the old logs counted", Duration::from_secs(120), || async {
        let counted = both_sides(&app.api, "records").await?;
        if counted == routed {
            Ok(())
        } else {
            Err(format!("{counted} of {routed} records counted"))
        }
    })
    .await;
    app.stop().await;

    // Meanwhile every topic was deleted and recreated (a new broker, same names, same database),
    // and its new log written past the offsets stored for the old one.
    let new = Broker::start().await;
    create_topics(&new, &fixture_config(), FIXTURE_PARTITIONS).await;
    new.produce_all(&new_log, Batching::OnePerRecord).await;
    let mut config = run.app_config();
    config.brokers = new.addr();
    let app = InProcess::start(config.config()).await;

    // Every record of both logs is counted once: the same numbers and keys as a replay of them all.
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(120)).await;
    assert_matches_replay(&app.api, &run.expected).await;

    // One reset per partition the old log had, shown per side and counted in the metric.
    let old_partitions: std::collections::BTreeSet<(String, i32)> = old_log
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    let resets = both_sides(&app.api, "log_resets").await.unwrap();
    assert_eq!(
        resets,
        old_partitions.len() as u64,
        "one reset per partition"
    );
    let metric = app
        .api
        .metric_sum("paritygate_log_resets_total")
        .await
        .unwrap();
    assert_eq!(metric, resets as f64, "and counted in the metric");

    // The stored offsets are the new logs' ends: a restart resumes inside the new log.
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in &new_log {
        *ends.entry((r.topic.clone(), r.partition)).or_default() += 1;
    }
    let mut db = run.db.connect().await;
    let stored: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT topic, partition, next_offset FROM partitions ORDER BY 1, 2")
            .fetch_all(&mut db)
            .await
            .unwrap();
    for (topic, partition, next) in stored {
        assert_eq!(
            Some(&next),
            ends.get(&(topic.clone(), partition)),
            "{topic}/{partition}"
        );
    }
    app.stop().await;

    // Restarted on the unchanged logs, the records before the stored offsets are the ones counted
    // last: nothing is read again, no reset is added.
    let app = InProcess::start(config.config()).await;
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(120)).await;
    assert_matches_replay(&app.api, &run.expected).await;
    assert_eq!(both_sides(&app.api, "log_resets").await.unwrap(), resets);
    app.stop().await;
}
