//! The dual run's lifecycle over the real broker and Postgres.
//!
//! - Drift, then a fix, then an epoch: the candidate drifts until `F`, clean traffic follows; the
//!   gate fails; an approver starts an epoch at `F` (in the past: clean traffic has run since), more
//!   clean traffic arrives (and a late record from before `F`); the gate passes through hysteresis.
//!   The first epoch's `fail` stays readable, with its keys (`?epoch=0`), and every count and key
//!   list of each epoch equals `paritygate diff` on the same records (`--from F` for the new one).
//!   Straddling keys, a delete just before `F`, a backdated epoch and the API's refusals included.
//! - `compare_from = "auto"` on a baseline with a history before the candidate's first record.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::{count_at, criterion, Api};
use crate::support::produce::keyed_service;
use crate::support::wait_until;
use assert_cmd::Command;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "alice-approver-token-epochs1";
const READER: &str = "rita-reader-token-epochs-01";
/// 2026-08-20T10:00:00Z; the fix goes out a minute later.
const T0: i64 = 1_787_220_000_000;
const F: i64 = T0 + 60_000;
const FIX: &str = "2026-08-20T10:01:00Z";

fn record(topic: &str, key: &str, payload: Option<Value>, at: i64) -> Record {
    Record::json(topic, key, payload.as_ref(), at)
}

/// Both sides write `key` = `qty` at `at` (event time from the record timestamp).
fn both(out: &mut Vec<Record>, service: &str, key: &str, qty: i64, at: i64) {
    out.push(record(
        &format!("rpcn.{service}"),
        key,
        Some(json!({"qty": qty})),
        at,
    ));
    out.push(record(
        &format!("bento.{service}"),
        key,
        Some(json!({"qty": qty})),
        at,
    ));
}

/// Until the fix (`F`): 150 clean keys, 30 drifting ones, a key that drifts before `F` and is
/// equal after it, a key deleted on the baseline only just before `F`; after it (before the epoch
/// is started): 100 clean keys and the straddling key's later event.
fn before_the_epoch(s: &str) -> Vec<Record> {
    let (b, c) = (format!("rpcn.{s}"), format!("bento.{s}"));
    let mut out = Vec::new();
    for i in 0..150 {
        both(&mut out, s, &format!("c{i}"), i, T0 + i * 100);
    }
    for i in 0..30 {
        let at = T0 + 20_000 + i * 100;
        out.push(record(&b, &format!("d{i}"), Some(json!({"qty": i})), at));
        out.push(record(
            &c,
            &format!("d{i}"),
            Some(json!({"qty": i + 1000})),
            at,
        ));
    }
    out.push(record(&b, "s1", Some(json!({"qty": 1})), T0 + 5_000));
    out.push(record(&c, "s1", Some(json!({"qty": 99})), T0 + 5_000));
    both(&mut out, s, "x9", 9, T0 + 10_000);
    out.push(record(&b, "x9", None, F - 500));
    for i in 0..100 {
        both(&mut out, s, &format!("e{i}"), i, F + i * 100);
    }
    both(&mut out, s, "s1", 2, F + 1_000);
    both(&mut out, s, "tick", 0, F + 15_000);
    out
}

/// After the epoch is started: 100 more clean keys, a late pair from before `F` (counted as
/// before the start), and traffic later still so every window settles.
fn after_the_epoch(s: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..100 {
        both(&mut out, s, &format!("g{i}"), i, F + 20_000 + i * 100);
    }
    both(&mut out, s, "late", 1, F - 2_000);
    both(&mut out, s, "tick", 1, F + 40_000);
    out
}

/// `records` as the two capture files `diff` reads (offsets in produce order per topic).
fn captures(dir: &Path, records: &[Record]) -> Vec<std::path::PathBuf> {
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in records {
        let topic_lines = lines.entry(r.topic.as_str()).or_default();
        let mut line = json!({
            "topic": r.topic, "partition": r.partition, "offset": topic_lines.len(),
            "key": String::from_utf8(r.key.clone().unwrap()).unwrap(), "timestamp": r.timestamp_ms,
        });
        if let Some(p) = &r.payload {
            line["value"] = json!(String::from_utf8(p.clone()).unwrap());
        }
        topic_lines.push(line.to_string());
    }
    lines
        .into_iter()
        .map(|(topic, l)| {
            let path = dir.join(format!("{topic}.jsonl"));
            std::fs::write(&path, l.join("\n") + "\n").unwrap();
            path
        })
        .collect()
}

/// `paritygate diff` of `records` under `config`, from `from` when given: the service's report.
fn diff(config: &str, records: &[Record], from: Option<&str>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("paritygate.toml"), config).unwrap();
    let mut cmd = Command::cargo_bin("paritygate").unwrap();
    cmd.env_remove("PARITYGATE_CONFIG")
        .args([
            "diff",
            "--format",
            "json",
            "--max-examples",
            "1000",
            "--config",
        ])
        .arg(dir.path().join("paritygate.toml"));
    if let Some(from) = from {
        cmd.args(["--from", from]);
    }
    let out = cmd.args(captures(dir.path(), records)).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diff report: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    report["services"][0].clone()
}

/// What an epoch's status and `diff` must agree on: key counts, and per side events, records and
/// the events before the start.
fn counts_of_status(s: &Value) -> Value {
    let keys = |kind: &str| {
        count_at(s, &format!("/keys/settled/{kind}"))
            + count_at(s, &format!("/keys/in_flight/{kind}"))
    };
    let side = |side: &str| {
        json!({
            "events": s[side]["events"], "records": s[side]["records"],
            "before_start": count_at(s, &format!("/{side}/skipped/before_start")),
        })
    };
    json!({
        "total": s["keys"]["total"], "matched": s["keys"]["matched"],
        "missing_in_candidate": keys("missing_in_candidate"),
        "extra_in_candidate": keys("extra_in_candidate"), "mismatched": keys("mismatched"),
        "baseline": side("baseline"), "candidate": side("candidate"),
    })
}

fn counts_of_report(r: &Value) -> Value {
    let side = |side: &str| {
        json!({
            "events": r[side]["events"], "records": r[side]["records"],
            "before_start": r[side]["before_start"].as_u64().unwrap_or(0),
        })
    };
    let k = &r["keys"];
    json!({
        "total": k["total"], "matched": k["matched"],
        "missing_in_candidate": k["missing_in_candidate"],
        "extra_in_candidate": k["extra_in_candidate"], "mismatched": k["mismatched"],
        "baseline": side("baseline"), "candidate": side("candidate"),
    })
}

/// Items with `key` and `kind` (a report's `mismatches`, an API page's `items`) as sorted keys by
/// kind.
fn by_kind(items: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in items.as_array().unwrap() {
        out.entry(m["kind"].as_str().unwrap().to_owned())
            .or_default()
            .push(m["key"].as_str().unwrap().to_owned());
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

/// The differing keys `diff` lists, by kind, sorted.
fn report_keys(r: &Value) -> BTreeMap<String, Vec<String>> {
    by_kind(&r["mismatches"])
}

/// The differing keys the API lists for `epoch` (every page), by kind, sorted.
async fn api_keys(api: &Api, service: &str, epoch: i64) -> BTreeMap<String, Vec<String>> {
    let page = api
        .json(&format!(
            "/api/v1/services/{service}/mismatches?limit=1000&epoch={epoch}"
        ))
        .await
        .unwrap();
    assert_eq!(page["next_cursor"], Value::Null, "one page holds them");
    by_kind(&page["items"])
}

/// The status once its counts equal `expected` (both sides checkpointed, every key settled).
async fn status_equal(api: &Api, service: &str, path: &str, expected: &Value) -> Value {
    wait_until(
        &format!("{service} equals diff"),
        Duration::from_secs(60),
        || async {
            let s = api.json(path).await?;
            let settled = count_at(&s, "/keys/in_flight/missing_in_candidate")
                + count_at(&s, "/keys/in_flight/extra_in_candidate")
                + count_at(&s, "/keys/in_flight/mismatched")
                == 0;
            if settled && &counts_of_status(&s) == expected {
                Ok(s)
            } else {
                Err(format!("{} (want {expected})", counts_of_status(&s)))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_started_after_a_fix_judges_only_what_followed_it() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for t in ["rpcn.orders", "bento.orders"] {
        broker.create_topic(t, 1).await;
    }
    let db = TestDb::create().await;
    let toml = keyed_service("orders", "");
    let app = InProcess::start(
        AppConfig::with_services(&toml, &broker, &db)
            .env("PARITYGATE_APPROVER_TOKENS", &format!("alice={TOKEN}"))
            .env("PARITYGATE_READER_TOKENS", &format!("rita={READER}"))
            .config(),
    )
    .await;
    let api = &app.api;
    let first = before_the_epoch("orders");
    broker.produce_all(&first, Batching::Fast).await;

    // The drift fails the gate; the first epoch is what `diff` says of the same records.
    let oracle = diff(&toml, &first, None);
    let expected = counts_of_report(&oracle);
    assert_eq!(expected["mismatched"], 32, "d0..d29, x9 and s1: {expected}");
    status_equal(api, "orders", "/api/v1/services/orders", &expected).await;
    let failed = api
        .gate_when("orders", "orders fails", |g| g["verdict"] == "fail")
        .await;
    assert_eq!(
        criterion(&failed, "key_parity")["status"],
        "fail",
        "{failed}"
    );
    assert_eq!(api_keys(api, "orders", 0).await, report_keys(&oracle));

    // The API refuses what it cannot honour, naming the field; only an approver may start one.
    let path = "/api/v1/services/orders/epochs";
    for (token, body, status, says) in [
        (
            "nobody",
            json!({"reason": "x"}),
            401,
            "authentication required",
        ),
        (READER, json!({"reason": "x"}), 403, "approver"),
        (
            TOKEN,
            json!({"starts_at": FIX}),
            400,
            "field `reason`: is required",
        ),
        (
            TOKEN,
            json!({"reason": " "}),
            400,
            "field `reason`: must not be empty",
        ),
        (
            TOKEN,
            json!({"reason": "x", "starts_at": "soon"}),
            400,
            "field `starts_at`: must be an RFC 3339 timestamp",
        ),
        (
            TOKEN,
            json!({"reason": "x", "starts_at": 5}),
            400,
            "field `starts_at`: must be a string",
        ),
        (
            TOKEN,
            json!({"reason": "x", "starts_at": "2999-01-01T00:00:00Z"}),
            400,
            "field `starts_at`: must not lie in the future",
        ),
        (
            TOKEN,
            json!({"reason": "x", "by": "me"}),
            400,
            "field `by`: unknown",
        ),
    ] {
        let (got, answer) = api.post_as(token, path, &body).await.unwrap();
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}: {answer}"
        );
    }
    let (got, answer) = api
        .post_as(
            TOKEN,
            "/api/v1/services/nope/epochs",
            &json!({"reason": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(got, 404, "{answer}");

    // The fix went out at F; clean traffic has run since. Start the epoch there.
    let (got, epoch) = api
        .post_as(
            TOKEN,
            path,
            &json!({"reason": "bento 1.4.2 fixes qty", "starts_at": FIX}),
        )
        .await
        .unwrap();
    assert_eq!(got, 201, "{epoch}");
    assert_eq!(
        (&epoch["created_by"], &epoch["reason"], &epoch["service"]),
        (
            &json!("alice"),
            &json!("bento 1.4.2 fixes qty"),
            &json!("orders")
        ),
        "{epoch}"
    );
    let id = epoch["id"].as_i64().unwrap();
    let second = after_the_epoch("orders");
    broker.produce_all(&second, Batching::Fast).await;
    let mut all = first.clone();
    all.extend(second.iter().cloned());

    // The new epoch equals `diff --from F` of every record, keys straddling F and the delete
    // just before it included; the late record before F is before the start.
    let oracle = diff(&toml, &all, Some(FIX));
    let expected = counts_of_report(&oracle);
    assert_eq!(
        (&expected["mismatched"], &expected["total"]),
        (&json!(0), &json!(100 + 1 + 1 + 100)),
        "e*, s1, tick, g*: {expected}"
    );
    let now = status_equal(api, "orders", "/api/v1/services/orders", &expected).await;
    assert_eq!(now["epoch"]["id"], id, "{}", now["epoch"]);
    assert_eq!(api_keys(api, "orders", id).await, report_keys(&oracle));
    assert!(
        count_at(&now, "/baseline/skipped/before_start") > 0
            && count_at(&now, "/candidate/skipped/before_start") > 0,
        "{now}"
    );
    let passed = api
        .gate_when("orders", "orders passes in the new epoch", |g| {
            g["verdict"] == "pass"
        })
        .await;
    assert!(
        passed["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "fail"),
        "{passed}"
    );

    // The first epoch stays readable: its fail, its status and its keys.
    let epochs = api.json(path).await.unwrap();
    let listed = epochs["epochs"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{epochs}");
    assert_eq!(
        (&listed[0]["id"], &listed[0]["current"]),
        (&json!(id), &json!(true))
    );
    assert_eq!(
        (&listed[1]["id"], &listed[1]["current"]),
        (&json!(0), &json!(false))
    );
    assert_eq!(
        listed[1]["ended_with"]["gate"]["verdict"], "fail",
        "{}",
        listed[1]
    );
    let (got, ended) = api.get("/api/v1/services/orders?epoch=0").await.unwrap();
    assert_eq!(
        (got, &ended["gate"]["verdict"]),
        (200, &json!("fail")),
        "{ended}"
    );
    let old = diff(&toml, &first, None);
    assert_eq!(counts_of_status(&ended), counts_of_report(&old));
    assert_eq!(api_keys(api, "orders", 0).await, report_keys(&old));
    let windows = api
        .json("/api/v1/services/orders/windows?epoch=0&limit=1000")
        .await
        .unwrap();
    assert!(
        windows
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["matched"] == false),
        "{windows}"
    );
    for (query, status) in [
        ("?epoch=x", 400),
        ("?epoch=-1", 400),
        ("?epoch=999999", 404),
    ] {
        let (got, answer) = api
            .get(&format!("/api/v1/services/orders{query}"))
            .await
            .unwrap();
        assert_eq!(got, status, "{query}: {answer}");
        assert!(
            answer["error"]["message"].to_string().contains("epoch"),
            "{answer}"
        );
    }

    // A backdated epoch within the current one (the next fix went out 10 s after F).
    let (got, third) = api
        .post_as(
            TOKEN,
            path,
            &json!({"reason": "second fix", "starts_at": "2026-08-20T10:01:10Z"}),
        )
        .await
        .unwrap();
    assert_eq!(got, 201, "{third}");
    let later = diff(&toml, &all, Some("2026-08-20T10:01:10Z"));
    status_equal(
        api,
        "orders",
        "/api/v1/services/orders",
        &counts_of_report(&later),
    )
    .await;
    let (got, answer) = api
        .post_as(TOKEN, path, &json!({"reason": "x", "starts_at": FIX}))
        .await
        .unwrap();
    assert_eq!(got, 400, "before the current epoch's start: {answer}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_starts_the_comparison_after_the_later_sides_first_event() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for t in ["rpcn.auto", "bento.auto"] {
        broker.create_topic(t, 1).await;
    }
    let db = TestDb::create().await;
    let toml = keyed_service("auto", "compare_from = \"auto\"\nstart_margin_seconds = 1");
    let app = InProcess::start(AppConfig::with_services(&toml, &broker, &db).config()).await;
    // 2,000 keys of history before the candidate's first record at S; then both sides.
    let s = T0 + 3_600_000;
    let mut records: Vec<Record> = (0..2_000)
        .map(|i| {
            record(
                "rpcn.auto",
                &format!("h{i}"),
                Some(json!({"qty": i})),
                T0 + i,
            )
        })
        .collect();
    for i in 0..1_000 {
        both(&mut records, "auto", &format!("k{i}"), i, s + i * 10);
    }
    both(&mut records, "auto", "tick", 0, s + 60_000);
    broker.produce_all(&records, Batching::Fast).await;

    // Compared from s + 1 s: k100..k999 and the tick; everything earlier is before the start.
    let status = wait_until("auto decided and compared", Duration::from_secs(60), || async {
        let st = app.api.service("auto").await?;
        if st["epoch"]["created_by"] == "paritygate" && st["keys"]["matched"] == 901 {
            Ok(st)
        } else {
            Err(json!({"epoch": st["epoch"], "keys": st["keys"], "gate": st["gate"]["reasons"]}).to_string())
        }
    })
    .await;
    assert_eq!(
        status["epoch"]["starts_at"], "2026-08-20T11:00:01Z",
        "{}",
        status["epoch"]
    );
    assert_eq!(status["keys"]["total"], 901, "{}", status["keys"]);
    assert_eq!(count_at(&status, "/baseline/skipped/before_start"), 2_100);
    assert_eq!(count_at(&status, "/candidate/skipped/before_start"), 100);
    let gate = app
        .api
        .gate_when("auto", "auto passes", |g| g["verdict"] == "pass")
        .await;
    assert_eq!(criterion(&gate, "key_parity")["status"], "pass", "{gate}");
    // `diff` from the start serve chose agrees.
    let report = diff(&toml, &records, Some("2026-08-20T11:00:01Z"));
    assert_eq!(counts_of_report(&report), counts_of_status(&status));
    app.stop().await;
}
