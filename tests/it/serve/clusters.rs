//! Baseline and candidate on two clusters (`[kafka.candidate]`): two tansu brokers, the fixture's
//! baseline records on one and its candidate records on the other, plus a service whose topic has
//! the same name on both clusters (a pipeline publishing to the old and the new Kafka). `serve`
//! answers what `diff` says on the same records; while the candidate's broker is down, readiness
//! and lag name that side, the baseline keeps being consumed, and after the broker's restart the
//! counts end exact.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::http::{u64_at, Api};
use crate::support::traffic::{fixture_config, Fixture, FIXTURE_PARTITIONS};
use crate::support::{fixture, wait_until};
use paritygate::model::Side;
use serde_json::Value;
use std::time::Duration;

/// Same topic name on both clusters.
const MIRROR: &str = "mirror.stock";

fn services() -> String {
    let fixtures =
        std::fs::read_to_string(fixture("paritygate.toml")).expect("fixtures/paritygate.toml");
    format!(
        "{fixtures}\n[[services]]\nname = \"mirror\"\nbaseline_topics = [\"{MIRROR}\"]\n\
         candidate_topics = [\"{MIRROR}\"]\nkey = {{ from = \"fields\", pointers = [\"/sku\"] }}\n"
    )
}

fn stock(range: std::ops::Range<u32>) -> Vec<Record> {
    range
        .map(|sku| Record {
            topic: MIRROR.to_owned(),
            partition: 0,
            key: None,
            headers: Vec::new(),
            payload: Some(format!("{{\"sku\":\"s{sku}\",\"qty\":{sku}}}").into_bytes()),
            timestamp_ms: None,
        })
        .collect()
}

/// The fixture's records of `side`, in their order.
fn of_side(records: &[Record], side: Side) -> Vec<Record> {
    let config = fixture_config();
    let routes = config.routes();
    records
        .iter()
        .filter(|r| {
            routes
                .get(r.topic.as_str())
                .is_some_and(|&(_, s)| s == side)
        })
        .cloned()
        .collect()
}

async fn mirror_records(api: &Api) -> Result<(u64, u64), String> {
    let s = api.service("mirror").await?;
    Ok((
        u64_at(&s, "/baseline/records")?,
        u64_at(&s, "/candidate/records")?,
    ))
}

async fn readiness(api: &Api) -> Result<(u16, Value), String> {
    api.get("/readyz").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_is_read_from_its_own_cluster_and_survives_that_cluster_s_outage() {
    crate::support::init_tracing();
    let baseline = Broker::start().await;
    // Persistent (S3 on moto): the restarted broker still has its topics and records.
    let mut candidate = Broker::start_persistent().await;
    let config = fixture_config();
    for (topic, &(_, side)) in config.routes().iter() {
        let broker = if side == Side::Baseline {
            &baseline
        } else {
            &candidate
        };
        broker.create_topic(topic, FIXTURE_PARTITIONS).await;
    }
    baseline.create_topic(MIRROR, 1).await;
    candidate.create_topic(MIRROR, 1).await;

    let fixture = Fixture::load("drift");
    let expected = fixture.expected();
    let (b_records, c_records) = (
        of_side(&fixture.records, Side::Baseline),
        of_side(&fixture.records, Side::Candidate),
    );
    let db = TestDb::create().await;
    let app_config =
        AppConfig::with_services(&services(), &baseline, &db).candidate_cluster(&candidate);
    assert!(app_config.config().kafka.split(), "two clusters");
    let app = InProcess::start(app_config.config()).await;

    let (b_half, c_half) = (b_records.len() / 2, c_records.len() / 2);
    baseline
        .produce_all(&b_records[..b_half], Batching::OnePerRecord)
        .await;
    candidate
        .produce_all(&c_records[..c_half], Batching::OnePerRecord)
        .await;
    baseline
        .produce_all(&stock(0..10), Batching::OnePerRecord)
        .await;
    candidate
        .produce_all(&stock(0..10), Batching::OnePerRecord)
        .await;
    wait_until(
        "10 mirror records per side",
        Duration::from_secs(60),
        || async {
            match mirror_records(&app.api).await? {
                (10, 10) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let (_, ready) = wait_until(
        "ready with both clusters",
        Duration::from_secs(30),
        || async {
            match readiness(&app.api).await? {
                (200, body) => Ok((200, body)),
                (code, body) => Err(format!("{code}: {body}")),
            }
        },
    )
    .await;
    assert_eq!(ready["kafka"]["baseline"]["brokers"], baseline.addr());
    assert_eq!(ready["kafka"]["candidate"]["brokers"], candidate.addr());

    candidate.stop();
    let body = wait_until(
        "readyz 503 naming the candidate's cluster",
        Duration::from_secs(45),
        || async {
            let (code, body) = readiness(&app.api).await?;
            let down = body["kafka"]["candidate"]["reachable"] == false;
            if code == 503 && down {
                Ok(body)
            } else {
                Err(format!("{code}: {body}"))
            }
        },
    )
    .await;
    assert_eq!(body["kafka"]["baseline"]["reachable"], true, "{body}");
    assert!(
        body["kafka"]["candidate"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "the cause is named: {body}"
    );
    // The baseline's cluster is still consumed.
    baseline
        .produce_all(&b_records[b_half..], Batching::OnePerRecord)
        .await;
    baseline
        .produce_all(&stock(10..20), Batching::OnePerRecord)
        .await;
    let status = wait_until(
        "the baseline consumed during the candidate's outage",
        Duration::from_secs(60),
        || async {
            let s = app.api.service("mirror").await?;
            let lag_unknown = s["candidate"]["lag"].is_null();
            match u64_at(&s, "/baseline/records")? {
                20 if lag_unknown => Ok(s),
                n => Err(format!(
                    "baseline {n}, candidate lag {}",
                    s["candidate"]["lag"]
                )),
            }
        },
    )
    .await;
    assert_eq!(
        status["baseline"]["lag"], 0,
        "the baseline's lag is known: {}",
        status["baseline"]
    );

    candidate.restart().await;
    candidate
        .produce_all(&c_records[c_half..], Batching::OnePerRecord)
        .await;
    candidate
        .produce_all(&stock(10..20), Batching::OnePerRecord)
        .await;
    wait_caught_up(&app.api, &expected, Duration::from_secs(90)).await;
    assert_matches_replay(&app.api, &expected).await;
    let mirror = wait_until(
        "20 mirror keys matched",
        Duration::from_secs(60),
        || async {
            let s = app.api.service("mirror").await?;
            match u64_at(&s, "/keys/matched")? {
                20 => Ok(s),
                n => Err(format!("matched {n}: {}", s["keys"])),
            }
        },
    )
    .await;
    for side in ["baseline", "candidate"] {
        assert_eq!(
            u64_at(&mirror, &format!("/{side}/records")).unwrap(),
            20,
            "{side}"
        );
        assert_eq!(
            u64_at(&mirror, &format!("/{side}/duplicates")).unwrap(),
            0,
            "{side}: nothing re-read after the outage"
        );
    }
    wait_until("ready again", Duration::from_secs(45), || async {
        match readiness(&app.api).await? {
            (200, _) => Ok(()),
            (code, body) => Err(format!("{code}: {body}")),
        }
    })
    .await;
    app.stop().await;
}
