//! The operator page (`GET /`) and its forms over the real broker and Postgres: it shows every
//! wave and service with the verdicts, criteria, counts and differing keys the API serves, escapes
//! keys and values made of HTML, and its sign-off form answers what the API answers — 409 with the
//! blockers while a service fails, 401/403/400/404 for bad input, 201 with the record once the
//! failing criteria are waived — and its revocation form undoes the sign-off.

use crate::support::operator::{Scenario, APPROVER, HTML_KEY, HTML_VALUE, READER};
use serde_json::Value;

/// The page's escaping, for expected texts (the same five characters).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The `<section>` whose id is `id`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id} in {html}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_the_api_serves_escapes_html_and_its_forms_sign_off_and_revoke() {
    let sc = Scenario::start().await;

    let response = sc.client.get(format!("{}/", sc.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let html = response.text().await.unwrap();

    // Waves in order with their verdicts; services with theirs.
    let w1 = html
        .find("id=\"wave-1\" data-verdict=\"fail\"")
        .expect("wave 1 fails");
    let w2 = html
        .find("id=\"wave-2\" data-verdict=\"pass\"")
        .expect("wave 2 passes");
    assert!(w1 < w2);
    for (service, verdict) in [
        ("clean_orders", "pass"),
        ("clean_payments", "pass"),
        ("orders", "fail"),
    ] {
        assert!(
            html.contains(&format!(
                "id=\"service-{service}\" data-verdict=\"{verdict}\""
            )),
            "{service} should be {verdict}"
        );
    }

    assert!(section(&html, "service-orders").contains("wave 1 · last evaluated 20"));
    // Every criterion of `orders` with its status, observed value, threshold and explanation.
    let orders = section(&html, "service-orders");
    let gate = sc.get("/api/v1/services/orders/gate").await;
    for c in gate["criteria"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let status = c["status"].as_str().unwrap();
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        let row = format!(
            "<tr data-criterion=\"{}\"><td>{}</td><td><span class=\"badge {status}\">{status}</span></td>\
             <td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(name),
            esc(name),
            esc(&text(&c["observed"])),
            esc(&text(&c["threshold"])),
            esc(c["explanation"].as_str().unwrap())
        );
        assert!(
            orders.contains(&row),
            "missing criterion row {row} in {orders}"
        );
    }
    assert!(orders.contains("<span class=\"badge fail\">fail</span></td>"));
    // Counts per side, as the status serves them.
    let status = sc.get("/api/v1/services/orders").await;
    let counts = format!(
        "<tr><th>records</th><td>{}</td><td>{}</td></tr>",
        status["baseline"]["records"], status["candidate"]["records"]
    );
    assert!(orders.contains(&counts), "{counts}");
    let resets = format!(
        "<tr><th>log resets (topic recreated)</th><td>{}</td><td>{}</td></tr>",
        status["baseline"]["log_resets"], status["candidate"]["log_resets"]
    );
    assert!(orders.contains(&resets), "{resets}");

    // The HTML key and value are shown as text, never as markup.
    assert!(!html.contains("<script"), "unescaped script element");
    assert!(!html.contains("<img"), "unescaped img element");
    assert!(orders.contains(&format!("<td class=\"mono key\">{}</td>", esc(HTML_KEY))));
    assert!(
        orders.contains(&format!(
            "<strong>/note</strong>: (absent) → {}",
            esc(HTML_VALUE)
        )) || orders.contains(&format!(
            "<strong>/note</strong>: null → {}",
            esc(HTML_VALUE)
        )),
        "field diff of /note missing: {orders}"
    );
    // Other drifting keys are listed too, with their kinds.
    assert!(orders.contains("<td class=\"mono key\">1003</td><td>missing_in_candidate</td>"));

    // The sign-off form refuses while `orders` fails, with the API's blockers as the reason.
    let blockers = strs(&sc.get("/api/v1/waves/1").await["signoff_blockers"]);
    assert!(!blockers.is_empty());
    let form = [("token", APPROVER), ("comment", "go")];
    let (code, answer) = sc.submit("/ui/waves/1/signoff", &form).await;
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer.contains("409 Conflict: wave 1 cannot be signed off: "),
        "{answer}"
    );
    for b in &blockers {
        assert!(answer.contains(&esc(b)), "blocker {b} missing in {answer}");
    }
    assert!(answer.contains("<a href=\"/\">Back to the operator page</a>"));
    // Wave 2 passes but comes after wave 1.
    let (code, answer) = sc
        .submit(
            "/ui/waves/2/signoff",
            &[("token", APPROVER), ("comment", "go")],
        )
        .await;
    assert_eq!(code, 409, "{answer}");

    // Bad input answers as the API does.
    let (code, answer) = sc
        .submit("/ui/waves/1/signoff", &[("token", ""), ("comment", "go")])
        .await;
    assert_eq!(code, 401, "{answer}");
    assert!(answer.contains("authentication required"), "{answer}");
    let (code, answer) = sc
        .submit(
            "/ui/waves/1/signoff",
            &[("token", READER), ("comment", "go")],
        )
        .await;
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("needs an approver token"), "{answer}");
    let (code, answer) = sc
        .submit(
            "/ui/waves/1/signoff",
            &[("token", APPROVER), ("comment", "  ")],
        )
        .await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer.contains("field `comment`: must not be empty"),
        "{answer}"
    );
    let (code, answer) = sc
        .submit(
            "/ui/waves/9/signoff",
            &[("token", APPROVER), ("comment", "go")],
        )
        .await;
    assert_eq!(code, 404, "{answer}");
    let (code, answer) = sc
        .submit(
            "/ui/waves/%3Cb%3E/signoff",
            &[("token", APPROVER), ("comment", "go")],
        )
        .await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer.contains("&lt;b&gt;") && !answer.contains("<b>"),
        "{answer}"
    );
    let (code, _) = sc
        .submit(
            "/ui/waves/1/signoff",
            &[("token", APPROVER), ("comment", "go"), ("who", "x")],
        )
        .await;
    assert_eq!(code, 400);
    // Nothing was recorded by any of these.
    assert!(sc.get("/api/v1/waves/1").await["trail"]
        .as_array()
        .unwrap()
        .is_empty());

    // Auto-refresh on request only, within bounds.
    assert!(!html.contains("http-equiv=\"refresh\""));
    let (code, refreshing) = sc.page("/?refresh=10").await;
    assert_eq!(code, 200);
    assert!(refreshing.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert_eq!(sc.page("/?refresh=0").await.0, 400);

    // Waived, `orders` warns and the form's sign-off is accepted, showing the record.
    sc.waive_failing("orders").await;
    let (_, html) = sc.page("/").await;
    assert!(html.contains("id=\"wave-1\" data-verdict=\"warn\""));
    assert!(section(&html, "service-orders").contains("<span class=\"badge waived\">waived</span>"));
    let comment = "checked <b>orders</b> & \"clean_orders\"";
    let (code, answer) = sc
        .submit(
            "/ui/waves/1/signoff",
            &[("token", APPROVER), ("comment", comment)],
        )
        .await;
    assert_eq!(code, 201, "{answer}");
    let trail = sc.get("/api/v1/waves/1").await["trail"].clone();
    let record = &trail.as_array().unwrap()[0];
    assert!(answer.contains("201 Created"));
    assert!(answer.contains(&format!(
        "<tr><th>Record</th><td>#{}</td></tr>",
        record["id"]
    )));
    assert!(answer.contains("<tr><th>By</th><td>alice</td></tr>"));
    assert!(answer.contains(&format!(
        "<tr><th>Comment</th><td>{}</td></tr>",
        esc(comment)
    )));
    assert!(answer.contains("<tr><th>Wave verdict then</th><td>warn</td></tr>"));
    assert!(answer.contains("<tr><th>orders</th><td>warn</td></tr>"));
    let (_, html) = sc.page("/").await;
    let wave = section(&html, "wave-1");
    assert!(
        wave.contains("<span class=\"badge pass\">signed off</span>"),
        "{wave}"
    );
    assert!(wave.contains(&esc(comment)));
    assert!(section(&html, "wave-2").contains("A sign-off would be accepted now."));

    // The revocation form undoes it; a second one has nothing to revoke.
    let (code, answer) = sc
        .submit(
            "/ui/waves/1/revoke",
            &[("token", APPROVER), ("reason", "wrong <ticket>")],
        )
        .await;
    assert_eq!(code, 201, "{answer}");
    assert!(answer.contains("Wave 1: revocation recorded"));
    assert_eq!(sc.get("/api/v1/waves/1").await["signed_off"], false);
    let (_, html) = sc.page("/").await;
    assert!(section(&html, "wave-1").contains("by alice at"));
    assert!(section(&html, "wave-1").contains("wrong &lt;ticket&gt;"));
    let (code, answer) = sc
        .submit(
            "/ui/waves/1/revoke",
            &[("token", APPROVER), ("reason", "again")],
        )
        .await;
    assert_eq!(code, 409);
    assert!(
        answer.contains("wave 1 has no sign-off to revoke"),
        "{answer}"
    );
    sc.app.stop().await;
}
