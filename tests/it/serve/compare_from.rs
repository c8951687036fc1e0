//! A dual run that starts mid-stream, over the real broker and Postgres: the baseline topic holds
//! a history (2,000 keys, a key whose events straddle the start, a delete just before it) before
//! the candidate's first record. With `compare_from` at the candidate's switch-on the gate's key
//! parity passes and the status counts the history as `before_start`; with `"beginning"` (every
//! event) the same records fail, naming the history's keys. `diff` with the same `compare_from`
//! gives the same counts (`cli::diff_range` tests `--from` itself).

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::{criterion, Api};
use crate::support::produce::keyed_service;
use crate::support::wait_until;
use serde_json::{json, Value};
use std::time::Duration;

const HISTORY: i64 = 2_000;
const AFTER: i64 = 200;
/// 2026-08-20T10:00:00Z; the candidate is switched on an hour later.
const T0: i64 = 1_787_220_000_000;
const START: &str = "2026-08-20T11:00:00Z";
const S: i64 = T0 + 3_600_000;

fn services() -> String {
    let service =
        |name: &str, from: &str| keyed_service(name, &format!("compare_from = \"{from}\""));
    service("mid", START) + &service("all", "beginning")
}

fn record(topic: String, key: &str, payload: Option<Value>, at: i64) -> Record {
    Record::json(&topic, key, payload.as_ref(), at)
}

/// Both services' records: the baseline's history, then what both sides write after the start.
fn records(service: &str) -> Vec<Record> {
    let (b, c) = (format!("rpcn.{service}"), format!("bento.{service}"));
    let mut out: Vec<Record> = (0..HISTORY)
        .map(|i| record(b.clone(), &format!("h{i}"), Some(json!({"qty": i})), T0 + i))
        .collect();
    out.push(record(
        b.clone(),
        "s7",
        Some(json!({"qty": 1})),
        T0 + 600_000,
    ));
    out.push(record(
        b.clone(),
        "d8",
        Some(json!({"qty": 8})),
        T0 + 300_000,
    ));
    out.push(record(b.clone(), "d8", None, S - 1_000));
    for i in 0..AFTER {
        let (key, value, at) = (format!("k{i}"), json!({"qty": i}), S + i * 10);
        out.push(record(b.clone(), &key, Some(value.clone()), at));
        out.push(record(c.clone(), &key, Some(value), at + 200));
    }
    out.push(record(b.clone(), "s7", Some(json!({"qty": 2})), S + 5_000));
    out.push(record(c.clone(), "s7", Some(json!({"qty": 2})), S + 5_200));
    // Later traffic on both sides, so the watermarks pass everything above.
    out.push(record(b, "tick", Some(json!({"qty": 0})), S + 60_000));
    out.push(record(c, "tick", Some(json!({"qty": 0})), S + 60_100));
    out
}

fn missing(status: &Value) -> u64 {
    ["settled", "in_flight"]
        .iter()
        .map(|s| {
            status["keys"][s]["missing_in_candidate"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

async fn status_when(api: &Api, service: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_until(
        &format!("{service} compared"),
        Duration::from_secs(60),
        || async {
            let s = api.service(service).await?;
            if done(&s) {
                Ok(s)
            } else {
                Err(json!({"keys": s["keys"], "baseline": s["baseline"]}).to_string())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_compared_from_the_candidates_start_passes_and_counts_the_history() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for t in ["rpcn.mid", "bento.mid", "rpcn.all", "bento.all"] {
        broker.create_topic(t, 1).await;
    }
    let db = TestDb::create().await;
    let app = InProcess::start(AppConfig::with_services(&services(), &broker, &db).config()).await;
    let mut all = records("mid");
    all.extend(records("all"));
    broker.produce_all(&all, Batching::Fast).await;

    // From the start: k0..k199, s7 (its later event only) and the tick; the history counted.
    let before = HISTORY as u64 + 3; // h*, s7's first event, d8's insert and delete
                                     // Both sides checkpointed: the baseline's keys alone make the total before the candidate's
                                     // arrive (each side is stored by its own lane), so wait for the matches too.
    let mid = status_when(&app.api, "mid", |s| {
        s["keys"]["total"] == AFTER + 2
            && s["keys"]["matched"] == AFTER + 2
            && s["baseline"]["skipped"]["before_start"] == before
    })
    .await;
    assert_eq!(mid["keys"]["matched"], AFTER + 2, "{}", mid["keys"]);
    assert_eq!(missing(&mid), 0, "{}", mid["keys"]);
    assert_eq!(mid["baseline"]["events"], AFTER + 2, "{}", mid["baseline"]);
    assert!(
        mid["candidate"]["skipped"].get("before_start").is_none(),
        "{}",
        mid["candidate"]
    );
    let gate = app
        .api
        .gate_when("mid", "mid's key parity passes", |g| {
            criterion(g, "key_parity")["status"] == "pass"
        })
        .await;
    assert_ne!(gate["verdict"], "fail", "{gate}");

    // From the beginning: the history is drift, key by key.
    let everything = status_when(&app.api, "all", |s| {
        s["keys"]["total"] == HISTORY + AFTER + 3
            && s["keys"]["matched"] == AFTER + 1
            && missing(s) == HISTORY as u64 + 1
    })
    .await;
    assert_eq!(
        everything["keys"]["matched"],
        AFTER + 1,
        "{}",
        everything["keys"]
    );
    assert!(
        everything["baseline"]["skipped"]
            .get("before_start")
            .is_none(),
        "{}",
        everything["baseline"]
    );
    let listed = app
        .api
        .mismatches("all", "missing_in_candidate")
        .await
        .unwrap();
    assert!(
        listed.iter().any(|m| m["key"] == "h0") && listed.iter().any(|m| m["key"] == "d8"),
        "{} listed",
        listed.len()
    );
    let gate = app
        .api
        .gate_when("all", "all fails", |g| g["verdict"] == "fail")
        .await;
    assert!(gate["reasons"].to_string().contains("key_parity"), "{gate}");

    // The operator page shows the count in the service's table.
    let page = app.api.text("/").await.unwrap();
    assert!(
        page.contains(&format!(
            "<th>before the comparison start (compare_from)</th><td>{before}</td><td>0</td>"
        )),
        "the page's counts"
    );

    // The metrics count the history too, by reason.
    let metrics = app.api.text("/metrics").await.unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("before_start")
            && l.contains("service=\"mid\"")
            && l.ends_with(&format!(" {before}"))),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("before_start"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    app.stop().await;
}
