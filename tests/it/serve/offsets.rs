//! Kafka's copy of the offsets (`serve::kafka_offsets`): after checkpoints, the consumer group's
//! committed offsets equal the stored ones, so lag tools see paritygate; and a committed offset
//! ahead of the state (a database reset under the same group id) is never where consumption
//! starts: the state's offsets are. Manual assignment commits the copy too, unless
//! `commit_offsets = false`.

use crate::support::app::InProcess;
use crate::support::broker::{client, Batching};
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::traffic::FixtureRun;
use crate::support::wait_until;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// A client of the service's consumer group that does not join it (commits and reads offsets).
fn group_client(addr: &str, group_id: &str) -> BaseConsumer {
    client(addr)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_sees_the_stored_offsets_and_a_commit_ahead_of_the_state_skips_nothing() {
    let run = FixtureRun::new("drift").await;
    run.fixture
        .produce(&run.broker, Batching::OnePerRecord)
        .await;
    // Records per partition; one record per batch, so offsets are 0..n.
    let mut produced: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in &run.fixture.records {
        *produced.entry((r.topic.clone(), r.partition)).or_default() += 1;
    }
    let config = run.app_config().group();

    // The group already committed the middle of every partition, as if paritygate's database had
    // been reset while its group id stayed. Starting there would skip the first halves.
    let ahead = group_client(&run.broker.addr(), &config.group_id);
    let mut list = TopicPartitionList::new();
    for ((topic, partition), n) in &produced {
        list.add_partition_offset(topic, *partition, Offset::Offset(n / 2))
            .unwrap();
    }
    ahead.commit(&list, CommitMode::Sync).unwrap();

    let app = InProcess::start(config.config()).await;
    wait_caught_up(&app.api, &run.expected, Duration::from_secs(120)).await;
    assert_matches_replay(&app.api, &run.expected).await;

    // Every stored partition's offset reaches Kafka (commits are sent after each checkpoint).
    let stored = stored_offsets(&run).await;
    assert_eq!(
        stored.len(),
        produced.len(),
        "every partition has a stored row"
    );
    for (topic, partition, next) in &stored {
        assert_eq!(
            Some(next),
            produced.get(&(topic.clone(), *partition)),
            "{topic}/{partition}: the stored offset is the partition's end"
        );
    }
    wait_committed_as_stored(&run, &config.group_id, &stored).await;
    let failures = app
        .api
        .metric_sum("paritygate_kafka_commit_failures_total")
        .await
        .unwrap();
    eprintln!("kafka commit failures counted: {failures}");
    app.stop().await;
}

/// Manual assignment commits the copy too; `commit_offsets = false` leaves the group's offsets alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_assignment_commits_too_unless_told_not_to() {
    for commit in [true, false] {
        let run = FixtureRun::new("clean").await;
        run.fixture.produce(&run.broker, Batching::Fast).await;
        let config = run.app_config().commit_offsets(commit);
        let app = InProcess::start(config.config()).await;
        wait_caught_up(&app.api, &run.expected, Duration::from_secs(120)).await;
        let stored = stored_offsets(&run).await;
        assert!(!stored.is_empty());
        if commit {
            wait_committed_as_stored(&run, &config.group_id, &stored).await;
        } else {
            // Checkpoints are done (caught up); give any stray commit time to land.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let committed = committed(&run, &config.group_id, &stored).unwrap();
            assert!(
                committed.iter().all(|o| *o == Some(Offset::Invalid)),
                "commit_offsets = false, yet the group has offsets: {committed:?}"
            );
        }
        app.stop().await;
    }
}

/// The `partitions` rows: (topic, partition, next offset).
async fn stored_offsets(run: &FixtureRun) -> Vec<(String, i32, i64)> {
    let mut db = run.db.connect().await;
    sqlx::query_as("SELECT topic, partition, next_offset FROM partitions ORDER BY 1, 2")
        .fetch_all(&mut db)
        .await
        .unwrap()
}

/// The group's committed offset of each stored partition (`Offset::Invalid`: none).
fn committed(
    run: &FixtureRun,
    group_id: &str,
    stored: &[(String, i32, i64)],
) -> Result<Vec<Option<Offset>>, String> {
    let reader = group_client(&run.broker.addr(), group_id);
    let mut asked = TopicPartitionList::new();
    for (topic, partition, _) in stored {
        asked.add_partition(topic, *partition);
    }
    let list = reader
        .committed_offsets(asked, Duration::from_secs(5))
        .map_err(|e| format!("offset fetch failed: {e}"))?;
    Ok(stored
        .iter()
        .map(|(topic, partition, _)| list.find_partition(topic, *partition).map(|e| e.offset()))
        .collect())
}

async fn wait_committed_as_stored(run: &FixtureRun, group_id: &str, stored: &[(String, i32, i64)]) {
    wait_until(
        "the group's committed offsets equal the stored ones",
        Duration::from_secs(30),
        || {
            let differing = committed(run, group_id, stored).map(|committed| {
                stored
                    .iter()
                    .zip(committed)
                    .filter(|((_, _, next), got)| *got != Some(Offset::Offset(*next)))
                    .map(|((topic, partition, next), got)| {
                        format!("{topic}/{partition}: committed {got:?}, stored {next}")
                    })
                    .collect::<Vec<_>>()
            });
            std::future::ready(match differing {
                Ok(d) if d.is_empty() => Ok(()),
                Ok(d) => Err(d.join("; ")),
                Err(e) => Err(e),
            })
        },
    )
    .await;
}
