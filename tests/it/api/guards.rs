//! The API's guards: tokens on writes and (when configured) reads, body validation and size
//! limits, and the append-only audit trail enforced by the database itself.
use crate::support::db::TestDb;
use crate::support::gates::{config, GateApp, ALICE, READER, SERVICES};
use paritygate::model::Verdict;
use reqwest::Method;
use serde_json::{json, Value};

async fn sign(app: &GateApp, wave: u32, token: &str) -> (u16, Value) {
    let body = json!({"comment": "dashboards checked"});
    app.post(&format!("/api/v1/waves/{wave}/signoff"), Some(token), body)
        .await
}

#[tokio::test]
async fn writes_need_an_approver_and_a_valid_body() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Pass).await;
    let path = "/api/v1/waves/1/signoff";
    let ok = json!({"comment": "ok"});
    let (status, body) = app.post(path, None, ok.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        app.post(path, Some("not-a-known-token-at-all"), ok.clone())
            .await
            .0,
        401
    );
    let (status, body) = app.post(path, Some(READER), ok.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        app.post(path, Some(ALICE), json!({})).await.1["error"]["message"],
        "field `comment`: is required"
    );
    assert_eq!(
        app.post(path, Some(ALICE), json!({"comment": 7})).await.1["error"]["message"],
        "field `comment`: must be a string"
    );
    let (status, body) = app
        .send(reqwest::Method::POST, path, Some(ALICE), Some("{".into()))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("body: not valid JSON"), "{body}");
    assert_eq!(
        app.post("/api/v1/waves/9/signoff", Some(ALICE), ok.clone())
            .await
            .0,
        404
    );
    assert_eq!(
        app.post("/api/v1/waves/one/signoff", Some(ALICE), ok.clone())
            .await
            .1["error"]["message"],
        "parameter `id`: must be a wave id (an integer), got `one`"
    );
    assert_eq!(
        app.expect("/api/v1/waves/7", 404).await["error"]["message"],
        "unknown wave `7`"
    );

    // 413: announced by Content-Length, and a chunked body that only turns out too large.
    let big = format!("{{\"comment\": \"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(
        app.send(reqwest::Method::POST, path, Some(ALICE), Some(big.clone()))
            .await
            .0,
        413
    );
    let (status, body) = chunked(&app, path, &big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"code\":\"payload_too_large\""), "{body}");

    // Nothing refused above reached the audit trail.
    assert_eq!(app.expect("/api/v1/waves/1", 200).await["trail"], json!([]));
}

/// POST `body` in 8 KiB chunks without a Content-Length (raw HTTP/1.1); (status, response text).
async fn chunked(app: &GateApp, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {ALICE}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut raw = head.into_bytes();
    for chunk in body.as_bytes().chunks(8 * 1024) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything: a failed write is expected.
    let _ = stream.write_all(&raw).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn the_audit_trail_is_append_only_in_the_database() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Pass).await;
    assert_eq!(sign(&app, 1, ALICE).await.0, 201);
    let mut conn = db.connect().await;
    for sql in [
        "UPDATE wave_signoffs SET identity = 'mallory'",
        "DELETE FROM wave_signoffs",
        "TRUNCATE wave_signoffs",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(
            err.to_string().contains("wave_signoffs is append-only"),
            "{sql}: {err}"
        );
    }
    let identity: String = sqlx::query_scalar("SELECT identity FROM wave_signoffs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(identity, "alice");
}

#[tokio::test]
async fn reads_need_a_token_only_when_configured() {
    let db = TestDb::create().await;
    let open = GateApp::start(config(SERVICES), &db).await;
    assert_eq!(open.get("/api/v1/waves", None).await.0, 200);

    let closed = GateApp::start(
        config(&format!(
            "[http]\nrequire_token_for_reads = true\n{SERVICES}"
        )),
        &db,
    )
    .await;
    closed.set("orders", Verdict::Pass).await;
    for path in [
        "/api/v1/services",
        "/api/v1/services/orders/gate",
        "/api/v1/waves",
        "/api/v1/services/orders/waivers",
    ] {
        assert_eq!(closed.get(path, None).await.0, 401, "{path}");
        assert_eq!(
            closed.get(path, Some("unknown-token-000000000")).await.0,
            401,
            "{path}"
        );
        assert_eq!(closed.get(path, Some(READER)).await.0, 200, "{path}");
        assert_eq!(closed.get(path, Some(ALICE)).await.0, 200, "{path}");
    }
    let (status, _) = closed
        .send(
            Method::POST,
            "/api/v1/flagger/gate",
            None,
            Some(json!({"name": "orders"}).to_string()),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = closed
        .send(
            Method::POST,
            "/api/v1/flagger/gate",
            Some(READER),
            Some(json!({"name": "orders"}).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    // Probes, metrics and the API description stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        assert_ne!(closed.get(path, None).await.0, 401, "{path}");
    }
}

/// Status, content type and JSON body of an answer.
type Answer = (u16, Option<String>, Value);

/// A raw request with an optional content type, for the answers produced outside the handlers.
async fn raw(
    app: &GateApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: String,
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", app.url()))
        .bearer_auth(ALICE)
        .body(body);
    if let Some(t) = content_type {
        request = request.header("content-type", t);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_error_answer_is_the_json_envelope() {
    let db = TestDb::create().await;
    let app = GateApp::start(config(SERVICES), &db).await;
    app.set("orders", Verdict::Fail).await;
    let waiver = "/api/v1/services/orders/waivers";
    let json = Some("application/json");
    let cases: Vec<(&str, u16, &str, Answer)> = vec![
        (
            "bad field",
            400,
            "bad_request",
            raw(
                &app,
                Method::POST,
                waiver,
                json,
                r#"{"criterion":"speed"}"#.into(),
            )
            .await,
        ),
        (
            "NUL in text",
            400,
            "bad_request",
            raw(
                &app,
                Method::POST,
                "/api/v1/waves/1/signoff",
                json,
                r#"{"comment":"a\u0000b"}"#.into(),
            )
            .await,
        ),
        (
            "unknown route",
            404,
            "not_found",
            raw(&app, Method::GET, "/api/v1/nothing", None, String::new()).await,
        ),
        (
            "method",
            405,
            "method_not_allowed",
            raw(&app, Method::PUT, "/api/v1/services", None, String::new()).await,
        ),
        (
            "another method on a JSON POST route",
            405,
            "method_not_allowed",
            raw(&app, Method::TRACE, waiver, None, String::new()).await,
        ),
        (
            "another method on a POST-only route",
            405,
            "method_not_allowed",
            raw(
                &app,
                Method::PUT,
                "/api/v1/waves/1/signoff",
                None,
                String::new(),
            )
            .await,
        ),
        (
            "sign-off of a failing wave",
            409,
            "conflict",
            raw(
                &app,
                Method::POST,
                "/api/v1/waves/1/signoff",
                json,
                r#"{"comment":"looks fine"}"#.into(),
            )
            .await,
        ),
        (
            "too large",
            413,
            "payload_too_large",
            raw(&app, Method::POST, waiver, json, "x".repeat(70 * 1024)).await,
        ),
        (
            "text/plain body",
            415,
            "unsupported_media_type",
            raw(
                &app,
                Method::POST,
                waiver,
                Some("text/plain"),
                r#"{"criterion":"freshness"}"#.into(),
            )
            .await,
        ),
        (
            "no content type",
            415,
            "unsupported_media_type",
            raw(
                &app,
                Method::POST,
                waiver,
                None,
                r#"{"criterion":"freshness"}"#.into(),
            )
            .await,
        ),
    ];
    for (what, status, code, (got, content_type, body)) in cases {
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(content_type.as_deref(), Some("application/json"), "{what}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // The NUL is named as the field's fault; nothing was stored.
    let (_, _, body) = raw(
        &app,
        Method::POST,
        "/api/v1/waves/1/signoff",
        json,
        r#"{"comment":"a\u0000b"}"#.into(),
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        "field `comment`: must not contain NUL (\\u0000)"
    );
    // 401 and 403 (no token, a reader's) carry the envelope too.
    let (status, body) = app.post(waiver, None, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, body) = app.post(waiver, Some(READER), json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    // 405 keeps its Allow header.
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/services", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET,HEAD")
    );
}
