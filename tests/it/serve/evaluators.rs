//! One verdict whichever replica answers: one replica evaluates a service at a time (the holder of
//! its evaluator lease) and stores verdict, hysteresis and history; every replica answers from the
//! store. Over the real broker and Postgres: two replicas under the group protocol answer the same
//! at every instant and record each transition once; a kill -9 of an evaluator fails over without
//! a reset to `pending`; a stale verdict is never a pass for Flagger or Argo.

use crate::support::app::{AppConfig, ChildApp, InProcess};
use crate::support::broker::{Batching, Broker, Record};
use crate::support::db::TestDb;
use crate::support::http::Api;
use crate::support::traffic::{create_topics, fixture_config, Fixture};
use crate::support::{root, wait_until};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const APPROVER: &str = "alice-approver-token-evaluators-01";

/// The fixture topics and their `clean.` copies (the services of `gates::services_toml`).
async fn broker_with_topics() -> Broker {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    let topics_config = fixture_config();
    create_topics(&broker, &topics_config, 6).await;
    for topic in crate::support::traffic::topics(&topics_config) {
        broker.create_topic(&format!("clean.{topic}"), 6).await;
    }
    broker
}

/// The drift fixture on its topics and the clean one on the `clean.` copies.
fn clean_and_drifting_records() -> Vec<Record> {
    let (drift, clean) = (Fixture::load("drift"), Fixture::load("clean"));
    let mut records = drift.records.clone();
    records.extend(clean.records.iter().map(|r| Record {
        topic: format!("clean.{}", r.topic),
        ..r.clone()
    }));
    records
}

const SERVICES: [&str; 6] = [
    "orders",
    "payments",
    "inventory",
    "clean_orders",
    "clean_payments",
    "clean_inventory",
];

/// How many services `api`'s replica evaluates (its `paritygate_evaluated_services`).
async fn evaluated_services(api: &Api) -> Result<f64, String> {
    api.metric_sum("paritygate_evaluated_services").await
}

/// Poll both replicas' gates for every service until `stop`; returns (polls, equal-evaluation
/// polls). An answer pair read from the same evaluation (same `evaluated_at`) must be identical;
/// a pair read across one evaluation's commit has two `evaluated_at`s and is only counted. No
/// answer may be stale: nobody died.
async fn poll_both(a: Api, b: Api, stop: Arc<AtomicBool>) -> (u64, u64) {
    let (mut polls, mut same) = (0, 0);
    let fresh = |mut gate: Value| {
        assert_eq!(gate["stale"], false, "stale in normal operation: {gate}");
        gate.as_object_mut().map(|g| g.remove("age_seconds"));
        gate
    };
    while !stop.load(Ordering::Relaxed) {
        for service in SERVICES {
            let (x, y) = tokio::join!(a.gate(service), b.gate(service));
            let (Ok(x), Ok(y)) = (x, y) else {
                continue;
            };
            let (x, y) = (fresh(x), fresh(y));
            polls += 1;
            if x["evaluated_at"] == y["evaluated_at"] {
                same += 1;
                assert_eq!(x, y, "{service}: two answers of one evaluation differ");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (polls, same)
}

/// Wait until both replicas serve `want` for `service`, fresh.
async fn wait_both(a: &Api, b: &Api, service: &str, want: &str, limit: Duration) -> Value {
    wait_until(&format!("{service} is {want} on both"), limit, || async {
        let (x, y) = (a.gate(service).await?, b.gate(service).await?);
        if x["verdict"] == want && y["verdict"] == want && x["stale"] == false {
            Ok(x)
        } else {
            Err(format!("{x} / {y}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_answer_one_verdict_and_record_each_transition_once() {
    let broker = broker_with_topics().await;
    let db = TestDb::create().await;
    let base = AppConfig::with_services(&super::gates::services_toml(), &broker, &db)
        .group()
        .env("PARITYGATE_APPROVER_TOKENS", &format!("alice={APPROVER}"));
    // Fixed names, so the spread is fixed: replica-a is preferred for inventory and
    // clean_payments, replica-b for the other four.
    let a = InProcess::start(base.clone().replica_name("replica-a").config()).await;
    let b = InProcess::start(base.replica_name("replica-b").config()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_both(a.api.clone(), b.api.clone(), stop.clone()));

    broker
        .produce_all(&clean_and_drifting_records(), Batching::OnePerRecord)
        .await;
    let limit = Duration::from_secs(150);
    for service in ["clean_orders", "clean_payments", "clean_inventory"] {
        wait_both(&a.api, &b.api, service, "pass", limit).await;
    }
    let orders = wait_both(&a.api, &b.api, "orders", "fail", limit).await;

    // Evaluation is spread: each replica evaluates its preferred services, none twice.
    let shares = wait_until(
        "both replicas evaluate",
        Duration::from_secs(30),
        || async {
            let shares = (
                evaluated_services(&a.api).await?,
                evaluated_services(&b.api).await?,
            );
            if shares == (2.0, 4.0) {
                Ok(shares)
            } else {
                Err(format!("services per replica {shares:?}"))
            }
        },
    )
    .await;
    eprintln!("services evaluated per replica: {shares:?}");
    assert_eq!(orders["evaluated_by"], "replica-b", "{orders}");

    // Waivers posted to the replica that does not evaluate `orders` take effect there. A
    // criterion may only fail once more windows settle, so each failing one is waived as it shows.
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let waived: std::sync::Mutex<Vec<Value>> = Default::default();
    let warned = wait_until("orders is warn on both", limit, || {
        let (a, b) = (&a.api, &b.api);
        let waived = &waived;
        let expires = expires.clone();
        async move {
            let gate = a.gate("orders").await?;
            for c in gate["criteria"].as_array().into_iter().flatten() {
                let known = waived.lock().unwrap().contains(&c["name"]);
                if c["status"] == "fail" && !known {
                    let body = json!({"criterion": c["name"], "reason": "known sink bug, DATA-42", "expires_at": expires});
                    let (code, answer) = a
                        .post_as(APPROVER, "/api/v1/services/orders/waivers", &body)
                        .await?;
                    if code != 201 {
                        return Err(format!("waiver refused: {code} {answer}"));
                    }
                    waived.lock().unwrap().push(c["name"].clone());
                }
            }
            let other = b.gate("orders").await?;
            if gate["verdict"] == "warn" && other["verdict"] == "warn" {
                Ok(other)
            } else {
                Err(format!("{gate} / {other}"))
            }
        }
    })
    .await;
    assert_eq!(warned["evaluated_by"], "replica-b", "{warned}");

    stop.store(true, Ordering::Relaxed);
    let (polls, same) = poller.await.unwrap();
    eprintln!("{polls} paired answers, {same} of one evaluation");
    assert!(
        same * 2 > polls,
        "most paired answers should come from one evaluation: {same} of {polls}"
    );

    // Each transition (a change of verdict or of a criterion's status) is recorded exactly once.
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let rows: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT service, verdict, report FROM gate_history ORDER BY service, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut last: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for (service, verdict, report) in rows {
        let statuses: Value = report["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].clone())
            .collect();
        let state = (verdict, statuses);
        assert_ne!(
            last.get(&service),
            Some(&state),
            "{service}: one transition recorded twice"
        );
        last.insert(service, state);
    }
    assert_eq!(last.len(), SERVICES.len(), "every service has a history");
    pool.close().await;
    a.stop().await;
    b.stop().await;
}

/// The answers of `api` for `service` every 50 ms until `done` accepts one; returns them all.
async fn answers_until(
    api: &Api,
    service: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Vec<(Instant, Value)> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        if let Ok(gate) = api.gate(service).await {
            let finished = done(&gate);
            seen.push((Instant::now(), gate));
            if finished {
                return seen;
            }
        }
        assert!(
            start.elapsed() < limit,
            "{service}: not done within {limit:?}; last answers: {:?}",
            seen.iter()
                .rev()
                .take(3)
                .map(|(_, g)| g)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An answer that claims to be fresh must be the verdict that held before (`pass`): no reset to
/// `pending`; a stale one never serves `pass`.
fn assert_no_reset(service: &str, answers: &[(Instant, Value)]) {
    for (_, gate) in answers {
        if gate["stale"] == true {
            assert_eq!(gate["verdict"], "pending", "{service}: stale but {gate}");
            assert_eq!(gate["last_evaluated_verdict"], "pass", "{gate}");
        } else {
            assert_eq!(
                gate["verdict"], "pass",
                "{service}: reset without staleness: {gate}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_evaluator_fails_over_without_a_reset_and_a_restart_keeps_pass() {
    let broker = broker_with_topics().await;
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let base = AppConfig::fixtures(&broker, &db);
    let path_a = base
        .clone()
        .replica(0, 2)
        .replica_name("replica-a")
        .write(dir.path());
    let path_b = base
        .replica(1, 2)
        .replica_name("replica-b")
        .write(dir.path());
    Fixture::load("clean")
        .produce(&broker, Batching::OnePerRecord)
        .await;
    let a = ChildApp::start(&path_a);
    let b = ChildApp::start(&path_b);
    let limit = Duration::from_secs(90);
    for service in ["orders", "payments", "inventory"] {
        wait_both(&a.api, &b.api, service, "pass", limit).await;
    }
    // replica-b is preferred for orders (fixed names, fixed hashes).
    let before = b.api.gate("orders").await.unwrap();
    assert_eq!(before["evaluated_by"], "replica-b", "{before}");
    let stale_after = before["stale_after_seconds"].as_f64().unwrap();
    let interval = 0.2;

    let killed = Instant::now();
    b.kill9();
    let answers = answers_until(&a.api, "orders", Duration::from_secs(30), |g| {
        g["evaluated_by"] == "replica-a" && g["stale"] == false
    })
    .await;
    let took = answers.last().unwrap().0.duration_since(killed);
    // The stated bound after a kill: the verdict's stale_after (2 × cadence + 5 s), then the
    // survivor's next round (one interval) and its evaluation; 1 s for this machine's slack.
    let bound = Duration::from_secs_f64(stale_after + interval + 1.0);
    eprintln!(
        "failover after {took:?} (bound {bound:?}), {} answers in between, {} stale",
        answers.len(),
        answers.iter().filter(|(_, g)| g["stale"] == true).count()
    );
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
    assert_no_reset("orders", &answers);
    // Answers older than their stale_after were marked stale.
    for (at, gate) in &answers {
        if gate["evaluated_by"] == "replica-b" {
            let evaluated: chrono::DateTime<chrono::Utc> =
                gate["evaluated_at"].as_str().unwrap().parse().unwrap();
            let answered = chrono::Utc::now() - chrono::Duration::from_std(at.elapsed()).unwrap();
            let age = (answered - evaluated).num_milliseconds() as f64 / 1000.0;
            if age > stale_after + 0.1 {
                assert_eq!(gate["stale"], true, "{age} s old, not marked: {gate}");
            }
        }
    }

    // A single replica restarted: its services' `pass` stays `pass` (hysteresis is stored).
    let restarted_at = chrono::Utc::now();
    a.kill9();
    let a = ChildApp::start(&path_a);
    for service in ["orders", "payments", "inventory"] {
        let answers = answers_until(&a.api, service, Duration::from_secs(30), |g| {
            g["stale"] == false
                && g["evaluated_at"]
                    .as_str()
                    .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    .is_some_and(|t| t > restarted_at)
        })
        .await;
        assert_no_reset(service, &answers);
    }
    a.kill9();
}

/// `successCondition` and `failureCondition` of the README's Argo AnalysisTemplate, applied to
/// `gate` the way Argo does for these two forms: `result.verdict == "x"` and `… in [...]`.
fn argo_outcome(gate: &Value) -> &'static str {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let condition = |name: &str| -> String {
        readme
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("README has no {name}"))
            .split('#')
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let holds = |condition: &str| -> bool {
        let verdict = gate["verdict"].as_str().unwrap();
        if let Some(want) = condition.strip_prefix("result.verdict == ") {
            return want.trim_matches('"') == verdict;
        }
        if let Some(list) = condition.strip_prefix("result.verdict in ") {
            return list
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .any(|v| v.trim().trim_matches('"') == verdict);
        }
        panic!("unknown condition form `{condition}`")
    };
    if holds(&condition("failureCondition")) {
        "failed"
    } else if holds(&condition("successCondition")) {
        "successful"
    } else {
        "inconclusive"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_verdict_is_not_a_pass_for_flagger_or_argo() {
    let broker = broker_with_topics().await;
    let db = TestDb::create().await;
    let config = AppConfig::fixtures(&broker, &db)
        .replica_name("only")
        .config();
    // Stand in for an evaluator that stored `pass` a minute ago and then went silent while still
    // holding the lease (a replica cut off from the database, before Postgres drops its session).
    let store = paritygate::store::Store::connect_lazy(&db.url(), 2).unwrap();
    store.migrate().await.unwrap();
    store
        .register_services(&["orders".to_owned()])
        .await
        .unwrap();
    let id = store.service_id("orders").unwrap();
    let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url())
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(0x7067_0002_i32)
        .bind(i32::from(id))
        .execute(&mut holder)
        .await
        .unwrap();
    let evaluated_at = chrono::Utc::now() - chrono::Duration::seconds(60);
    let status = json!({
        "service": "orders", "wave": null, "evaluated_at": evaluated_at,
        "baseline": {"records": 0, "events": 0, "duplicates": 0, "unparseable": 0,
            "unparseable_by_reason": {}, "by_operation": {}, "rejected": {}, "skipped": {},
            "flagged": {}, "errors": 0, "log_resets": 0, "watermark_ms": null, "lag": 0, "partitions": []},
        "candidate": {"records": 0, "events": 0, "duplicates": 0, "unparseable": 0,
            "unparseable_by_reason": {}, "by_operation": {}, "rejected": {}, "skipped": {},
            "flagged": {}, "errors": 0, "log_resets": 0, "watermark_ms": null, "lag": 0, "partitions": []},
        "keys": {"total": 0, "matched": 0,
            "settled": {"missing_in_candidate": 0, "extra_in_candidate": 0, "mismatched": 0},
            "in_flight": {"missing_in_candidate": 0, "extra_in_candidate": 0, "mismatched": 0}},
        "settled_until_ms": null, "windows_settled_matched": 0, "windows_settled_unmatched": 0,
        "last_settled_window": null, "top_fields": [], "rows": null,
        "gate": {"verdict": "pass", "raw_verdict": "pass", "reasons": ["every criterion passes"],
            "criteria": [], "evaluated_at": evaluated_at, "evaluated_by": "gone",
            "stale_after_seconds": 1.4,
            "evidence": {"first_event_ms": null, "settled_until_ms": null,
                "baseline_offsets": {}, "candidate_offsets": {}},
            "canonical_version": "paritygate-canonical/1", "config_digest": "", "thresholds": {}}
    });
    sqlx::query(
        "INSERT INTO served_verdicts (service_id, status, verdict, passes_in_a_row, recorded, evaluated_at, evaluated_by, stale_after_ms)
         VALUES ($1, $2, 'pass', 3, '[\"pass\", []]', $3, 'gone', 1400)",
    )
    .bind(id)
    .bind(&status)
    .bind(evaluated_at)
    .execute(&store.pool)
    .await
    .unwrap();

    // Clean traffic for `orders`, so the replica that takes over finds the pass to continue.
    Fixture::load("clean")
        .produce(&broker, Batching::OnePerRecord)
        .await;
    let app = InProcess::start(config).await;
    // Several rounds pass; the lease is held elsewhere, so nobody renews the verdict.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let gate = app.api.gate("orders").await.unwrap();
    assert_eq!(gate["stale"], true, "{gate}");
    assert_eq!(gate["verdict"], "pending", "{gate}");
    assert_eq!(gate["last_evaluated_verdict"], "pass", "{gate}");
    assert_eq!(gate["evaluated_by"], "gone", "{gate}");
    assert!(gate["age_seconds"].as_f64().unwrap() >= 60.0, "{gate}");
    assert!(
        gate["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("stale: the last evaluation (`pass`, by gone"),
        "{gate}"
    );
    assert_eq!(argo_outcome(&gate), "inconclusive", "{gate}");
    // Flagger: the gate hook holds the canary (425), the rollback hook does not roll back (412).
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let hook = |path: &'static str| {
        let client = client.clone();
        let url = format!("http://{}{path}", app.addr);
        async move {
            let response = client
                .post(url)
                .json(&json!({"name": "orders", "namespace": "shop", "phase": "Progressing"}))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (code, text) = hook("/api/v1/flagger/gate").await;
    assert_eq!(code, 425, "{text}");
    assert!(text.starts_with("orders: pending\n- stale:"), "{text}");
    let (code, text) = hook("/api/v1/flagger/rollback").await;
    assert_eq!(code, 412, "{text}");
    // The metric follows at the next evaluation round (the API marks staleness as it answers).
    crate::support::wait_until(
        "paritygate_gate_stale is 1",
        Duration::from_secs(10),
        || async {
            match app.api.metric_sum("paritygate_gate_stale").await? {
                1.0 => Ok(()),
                v => Err(format!("paritygate_gate_stale = {v}")),
            }
        },
    )
    .await;

    // The silent holder's session ends: this replica takes the service over and renews it,
    // continuing the stored hysteresis (3 passes): its first fresh answer is already `pass`.
    drop(holder);
    let answers = answers_until(&app.api, "orders", Duration::from_secs(30), |g| {
        g["evaluated_by"] == "only" && g["stale"] == false
    })
    .await;
    assert_no_reset("orders", &answers);
    let renewed = &answers.last().unwrap().1;
    assert_eq!(argo_outcome(renewed), "successful", "{renewed}");
    let (code, text) = hook("/api/v1/flagger/gate").await;
    assert_eq!(code, 200, "{text}");
    app.stop().await;
}
