//! Waves and sign-offs end to end: ordering, distinct approvers, staleness, revocation, metrics,
//! and the append-only audit trail, on the real router with a fresh database per test.
use crate::support::db::TestDb;
use crate::support::gates::{config, message, GateApp, ALICE, BOB, SERVICES};
use paritygate::model::Verdict;
use serde_json::{json, Value};

async fn sign(app: &GateApp, wave: u32, token: &str) -> (u16, Value) {
    let body = json!({"comment": "dashboards checked"});
    app.post(&format!("/api/v1/waves/{wave}/signoff"), Some(token), body)
        .await
}

async fn metrics(app: &GateApp) -> String {
    app.send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .1
}

#[tokio::test]
async fn waves_are_signed_in_order_on_passing_verdicts_by_distinct_approvers() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Fail).await;
    app.set("payments", Verdict::Warn).await;
    app.set("inventory", Verdict::Pass).await;

    // Wave 2 passes (warn + pass) but wave 1 is not signed off.
    let (status, body) = sign(&app, 2, ALICE).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        message(&body),
        "wave 2 cannot be signed off: earlier wave 1 (`pilot`) is not signed off"
    );
    // Wave 1 fails, then is pending: refused either way.
    let (status, body) = sign(&app, 1, ALICE).await;
    assert_eq!(
        (status, message(&body)),
        (409, "wave 1 cannot be signed off: the wave's verdict is `fail`: every service must pass or warn")
    );
    app.set("orders", Verdict::Pending).await;
    assert_eq!(sign(&app, 1, ALICE).await.0, 409);

    app.set("orders", Verdict::Pass).await;
    let served = app.expect("/api/v1/services/orders/gate", 200).await;
    let (status, record) = sign(&app, 1, ALICE).await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(
        (
            &record["wave_id"],
            &record["action"],
            &record["identity"],
            &record["comment"]
        ),
        (
            &json!(1),
            &json!("signoff"),
            &json!("alice"),
            &json!("dashboards checked")
        )
    );
    // The snapshot holds exactly the GateStatus served, with the config digest.
    let snap = &record["snapshot"]["services"][0];
    let mut gate = served.clone();
    gate.as_object_mut().unwrap().remove("service");
    assert_eq!(snap["gate"], gate);
    assert_eq!(snap["config_digest"], app.config.digest(0));
    assert_eq!(record["snapshot"]["verdict"], "pass");

    // The identity comes from the token: a body cannot claim one.
    let claim = json!({"comment": "x", "identity": "mallory"});
    let (status, body) = app.post("/api/v1/waves/2/signoff", Some(BOB), claim).await;
    assert_eq!(status, 400);
    assert!(
        message(&body).starts_with("field `identity`: unknown"),
        "{body}"
    );

    // Wave 2 needs two distinct approvers: alice twice counts once.
    assert_eq!(sign(&app, 2, ALICE).await.0, 201);
    assert_eq!(sign(&app, 2, ALICE).await.0, 201);
    let wave = app.expect("/api/v1/waves/2", 200).await;
    assert_eq!(wave["approvals"].as_array().unwrap().len(), 1, "{wave}");
    assert_eq!(wave["signed_off"], false);
    assert!(metrics(&app)
        .await
        .contains("paritygate_wave_signed_off{wave=\"2\"} 0"));
    assert_eq!(sign(&app, 2, BOB).await.0, 201);
    let wave = app.expect("/api/v1/waves/2", 200).await;
    let approvers: Vec<&str> = wave["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["identity"].as_str().unwrap())
        .collect();
    assert_eq!(approvers, ["alice", "bob"]);
    assert_eq!(
        (&wave["signed_off"], &wave["stale"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(wave["trail"].as_array().unwrap().len(), 3);
    let text = metrics(&app).await;
    assert!(
        text.contains("paritygate_wave_signed_off{wave=\"1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("paritygate_wave_signed_off{wave=\"2\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("paritygate_wave_signoff_stale{wave=\"2\"} 0"),
        "{text}"
    );

    let list = app.expect("/api/v1/waves", 200).await;
    let rows: Vec<(u64, &str, bool)> = list["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["id"].as_u64().unwrap(),
                w["verdict"].as_str().unwrap(),
                w["signed_off"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(1, "pass", true), (2, "warn", true)]);
}

#[tokio::test]
async fn sign_offs_go_stale_and_can_be_revoked() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Pass).await;
    assert_eq!(sign(&app, 1, ALICE).await.0, 201);

    // The signed service fails afterwards: still signed off, but stale, in the API and metrics.
    app.set("orders", Verdict::Fail).await;
    let wave = app.expect("/api/v1/waves/1", 200).await;
    assert_eq!(
        (&wave["signed_off"], &wave["stale"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(
        wave["stale_reasons"],
        json!(["alice's sign-off 1: `orders` now fails (signed off at `pass`)"])
    );
    let text = metrics(&app).await;
    assert!(
        text.contains("paritygate_wave_signoff_stale{wave=\"1\"} 1"),
        "{text}"
    );
    // A stale wave 1 blocks wave 2.
    app.set("payments", Verdict::Pass).await;
    app.set("inventory", Verdict::Pass).await;
    let (status, body) = sign(&app, 2, BOB).await;
    assert_eq!(status, 409);
    assert!(
        message(&body).ends_with("earlier wave 1 (`pilot`) has a stale sign-off"),
        "{body}"
    );

    // The same database seen through a changed config for orders: the digest differs.
    app.set("orders", Verdict::Pass).await;
    assert_eq!(app.expect("/api/v1/waves/1", 200).await["stale"], false);
    let changed = SERVICES.replace(
        r#"candidate_topics = ["bento.orders"]"#,
        r#"candidate_topics = ["bento.orders.v2"]"#,
    );
    let other = GateApp::start(config(&changed), &db).await;
    other.set("orders", Verdict::Pass).await;
    let wave = other.expect("/api/v1/waves/1", 200).await;
    assert_eq!(wave["stale"], true);
    let reason = wave["stale_reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("`orders`: config digest changed since the sign-off"),
        "{reason}"
    );

    // Revocation: appended, the wave is no longer signed off, and there is nothing left to revoke.
    let (status, record) = app
        .post(
            "/api/v1/waves/1/revoke",
            Some(BOB),
            json!({"reason": "orders drifted"}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(
        (&record["action"], &record["identity"]),
        (&json!("revocation"), &json!("bob"))
    );
    let wave = app.expect("/api/v1/waves/1", 200).await;
    assert_eq!(
        (&wave["signed_off"], &wave["stale"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(wave["last_revocation"]["reason"], "orders drifted");
    assert_eq!(wave["trail"].as_array().unwrap().len(), 2);
    assert!(metrics(&app)
        .await
        .contains("paritygate_wave_signed_off{wave=\"1\"} 0"));
    let (status, body) = app
        .post(
            "/api/v1/waves/1/revoke",
            Some(BOB),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(
        (status, message(&body)),
        (409, "wave 1 has no sign-off to revoke")
    );
}
