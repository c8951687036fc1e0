//! The operator page in a real browser: headless Debian Chromium driven by `playwright-core`
//! (`tests/browser/page.spec.mjs`) against a running paritygate with clean and drifting services.
//! The script checks what the page shows and submits the sign-off form twice: refused (409 with the
//! reason) while `orders` fails, accepted (201 with the record) once this test has waived its
//! failing criteria; then it starts an observation epoch of `clean_orders` through the page's form
//! (refused with a start in the future, then accepted). Screenshots go to `artifacts/` (git-ignored).
//!
//! Needs `node`, `tests/browser/node_modules` (`npm ci`, done by `scripts/setup`) and
//! `/usr/bin/chromium` (or `CHROMIUM`); a missing one fails the test with what to install.

use crate::support::operator::{Scenario, APPROVER};
use crate::support::root;
use std::path::PathBuf;
use std::process::Command;

fn run_script(url: &str, screenshot: &PathBuf, phase: &str) {
    let output = Command::new("node")
        .arg(root().join("tests/browser/page.spec.mjs"))
        .args([url, APPROVER])
        .arg(screenshot)
        .arg(phase)
        .current_dir(root())
        .output()
        .expect("run node (install Node.js 18+; scripts/setup runs `npm ci` in tests/browser)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser phase `{phase}` failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_off_through_the_page_in_a_browser() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's `chromium` (scripts/setup does)"
    );
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is missing: run `npm ci` in tests/browser (scripts/setup does)"
    );
    let sc = Scenario::start().await;
    let url = format!("{}/", sc.base);
    let screenshot = root().join("artifacts/page.png");
    // The script blocks on the browser; keep the runtime's threads free for the service.
    let (u, s) = (url.clone(), screenshot.clone());
    tokio::task::spawn_blocking(move || run_script(&u, &s, "refused"))
        .await
        .unwrap();
    sc.waive_failing("orders").await;
    tokio::task::spawn_blocking(move || run_script(&url, &screenshot, "accepted"))
        .await
        .unwrap();
    let wave = sc.get("/api/v1/waves/1").await;
    assert_eq!(wave["signed_off"], true, "{wave}");
    assert_eq!(wave["approvals"][0]["identity"], "alice", "{wave}");
    // The epoch the page's form started, as the API lists it.
    let epochs = sc.get("/api/v1/services/clean_orders/epochs").await;
    let newest = &epochs["epochs"][0];
    assert_eq!(
        (&newest["created_by"], &newest["reason"], &newest["current"]),
        (
            &"alice".into(),
            &"browser <fix> deployed".into(),
            &true.into()
        ),
        "{epochs}"
    );
    let wave = sc.get("/api/v1/waves/1").await;
    assert_eq!(wave["stale"], true, "{wave}");
    assert!(
        wave["stale_reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("`clean_orders`: observation epoch")),
        "{wave}"
    );
    sc.app.stop().await;
}
