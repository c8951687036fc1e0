//! Gate endpoints end to end: waivers, history, the Argo Rollouts and Flagger shapes, and tokens
//! on reads, on the real router with a fresh database per test.
use crate::support::db::TestDb;
use crate::support::gates::{config, message, GateApp, ALICE, READER, SERVICES};
use chrono::{Duration, SecondsFormat, Utc};
use paritygate::model::Verdict;
use reqwest::Method;
use serde_json::{json, Value};

fn in_days(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test]
async fn waivers_are_validated_stored_and_listed_while_active() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    let path = "/api/v1/services/orders/waivers";
    let waiver = json!({"criterion": "latency_guardrail", "reason": "INC-42: slow broker", "expires_at": in_days(2)});

    assert_eq!(app.post(path, None, waiver.clone()).await.0, 401);
    assert_eq!(app.post(path, Some(READER), waiver.clone()).await.0, 403);
    assert_eq!(
        app.post(
            "/api/v1/services/shipping/waivers",
            Some(ALICE),
            waiver.clone()
        )
        .await
        .0,
        404
    );
    let bad = |field: &str, value: Value| {
        let mut body = waiver.clone();
        body[field] = value;
        body
    };
    for (body, expected) in [
        (
            bad("criterion", "speed".into()),
            "field `criterion`: must be one of",
        ),
        (
            bad("reason", "".into()),
            "field `reason`: must not be empty",
        ),
        (
            bad("expires_at", in_days(-1).into()),
            "field `expires_at`: must be in the future",
        ),
        (
            bad("expires_at", in_days(31).into()),
            "field `expires_at`: at most 30 days ahead",
        ),
        (
            bad("expires_at", "soon".into()),
            "field `expires_at`: must be an RFC 3339 timestamp",
        ),
        (
            bad("created_by", "mallory".into()),
            "field `created_by`: unknown",
        ),
    ] {
        let (status, answer) = app.post(path, Some(ALICE), body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(message(&answer).starts_with(expected), "{answer}");
    }

    let (status, stored) = app.post(path, Some(ALICE), waiver.clone()).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        (
            &stored["service"],
            &stored["criterion"],
            &stored["reason"],
            &stored["created_by"]
        ),
        (
            &json!("orders"),
            &json!("latency_guardrail"),
            &json!("INC-42: slow broker"),
            &json!("alice")
        )
    );
    // An expired waiver (written directly: the API refuses past dates) is not listed.
    let mut conn = db.connect().await;
    sqlx::query("INSERT INTO waivers (service, criterion, reason, expires_at, created_by) VALUES ('orders', 'freshness', 'old', now() - interval '1 minute', 'bob')")
        .execute(&mut conn)
        .await
        .unwrap();
    let listed = app.expect(path, 200).await;
    assert_eq!(listed, json!([stored]));
    assert_eq!(
        app.expect("/api/v1/services/payments/waivers", 200).await,
        json!([])
    );
}

#[tokio::test]
async fn history_is_newest_first_and_limited() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    let mut conn = db.connect().await;
    for (i, verdict) in ["pending", "fail", "pass"].iter().enumerate() {
        sqlx::query("INSERT INTO gate_history (service, evaluated_at, verdict, raw_verdict, report, config_digest, canonical_version) VALUES ('orders', now() + make_interval(secs => $1), $2, $2, $3, 'd', '1')")
            .bind(i as f64)
            .bind(verdict)
            .bind(json!({"verdict": verdict}))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let rows = app
        .expect("/api/v1/services/orders/gate/history", 200)
        .await;
    let verdicts: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["pass", "fail", "pending"]);
    assert_eq!(rows[0]["report"], json!({"verdict": "pass"}));
    let one = app
        .expect("/api/v1/services/orders/gate/history?limit=1", 200)
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let bad = app
        .expect("/api/v1/services/orders/gate/history?limit=0", 400)
        .await;
    assert!(message(&bad).starts_with("parameter `limit`"));
    app.expect("/api/v1/services/shipping/gate/history", 404)
        .await;
}

#[tokio::test]
async fn argo_reads_the_full_gate_with_a_top_level_verdict() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Fail).await;
    let gate = app.expect("/api/v1/services/orders/gate", 200).await;
    assert_eq!(
        (&gate["service"], &gate["verdict"], &gate["raw_verdict"]),
        (&json!("orders"), &json!("fail"), &json!("fail"))
    );
    assert_eq!(gate["criteria"][0]["name"], "key_parity");
    assert_eq!(gate["config_digest"], app.config.digest(0));
    for field in [
        "reasons",
        "evaluated_at",
        "evidence",
        "canonical_version",
        "thresholds",
    ] {
        assert!(gate.get(field).is_some(), "{field} missing: {gate}");
    }
    // Not evaluated yet: still 200 (Argo counts non-2xx as an Error), pending, with what it is decided under.
    let pending = app.expect("/api/v1/services/payments/gate", 200).await;
    assert_eq!(
        (&pending["verdict"], &pending["reasons"]),
        (&json!("pending"), &json!(["not evaluated yet"]))
    );
    assert_eq!(
        pending["canonical_version"],
        paritygate::core::canonical::CANONICAL_VERSION
    );
    assert_eq!(pending["config_digest"], app.config.digest(1));
}

async fn hook(app: &GateApp, hook: &str, payload: Value) -> (u16, String) {
    app.send(
        Method::POST,
        &format!("/api/v1/flagger/{hook}"),
        None,
        Some(payload.to_string()),
    )
    .await
}

#[tokio::test]
async fn flagger_hooks_answer_by_status_with_plain_text() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    let payload = |name: &str| json!({"name": name, "namespace": "shop", "phase": "Progressing", "checksum": "85d557f47b", "metadata": {}});

    app.set("orders", Verdict::Pass).await;
    assert_eq!(
        hook(&app, "gate", payload("orders")).await,
        (200, "orders: pass\n- orders is pass\n".into())
    );
    assert_eq!(
        hook(&app, "rollback", payload("orders")).await,
        (412, "orders: pass: no rollback\n".into())
    );
    app.set("orders", Verdict::Warn).await;
    assert_eq!(
        hook(&app, "gate", payload("orders")).await,
        (
            200,
            "orders: warn\n- orders is warn\n- key_parity warn: key parity is warn\n".into()
        )
    );
    app.set("orders", Verdict::Pending).await;
    assert_eq!(
        hook(&app, "gate", payload("orders")).await,
        (
            425,
            "orders: pending\n- orders is pending\n- key_parity pending: key parity is pending\n"
                .into()
        )
    );
    assert_eq!(hook(&app, "rollback", payload("orders")).await.0, 412);
    app.set("orders", Verdict::Fail).await;
    let failing =
        "orders: fail\n- orders is fail\n- key_parity fail: key parity is fail\n".to_owned();
    assert_eq!(
        hook(&app, "gate", payload("orders")).await,
        (412, failing.clone())
    );
    assert_eq!(
        hook(&app, "rollback", payload("orders")).await,
        (200, failing)
    );

    // `metadata.service` wins over the canary's name.
    let mapped =
        json!({"name": "orders-canary", "namespace": "shop", "metadata": {"service": "orders"}});
    assert_eq!(hook(&app, "gate", mapped).await.0, 412);
    let (status, body) = hook(&app, "gate", payload("podinfo")).await;
    assert_eq!(status, 404);
    assert!(
        body.starts_with("unknown service `podinfo` (from `name` in namespace `shop`)"),
        "{body}"
    );
    assert_eq!(hook(&app, "rollback", payload("podinfo")).await.0, 404);
    // Flagger always sends the canary's name: a payload without one is not Flagger's.
    let (status, body) = hook(&app, "gate", json!({"namespace": "shop"})).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("body: not a Flagger webhook payload: missing field `name`"),
        "{body}"
    );
    let (status, body) = hook(&app, "gate", json!({"name": ""})).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "field `name`: must not be empty (the canary's name)\n")
    );
    let (status, _) = app
        .send(
            Method::POST,
            "/api/v1/flagger/gate",
            None,
            Some("not json".into()),
        )
        .await;
    assert_eq!(status, 400);
}
