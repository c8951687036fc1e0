//! What `serve` must show once it has consumed a capture pair: the same numbers and the same
//! mismatching keys as `paritygate::replay` on the same files (computed, never hard-coded).

use super::http::{count_at, in_flight_total, u64_at, Api};
use super::traffic::{mismatch_keys, KINDS};
use super::wait_until;
use paritygate::core::report::{Report, ServiceReport, SideReport};
use serde_json::Value;
use std::time::Duration;

/// Whether `status` shows every record of `want` consumed, nothing in flight, a settled horizon
/// and a verdict; `Err` says what is still missing.
pub fn caught_up(status: &Value, want: &ServiceReport) -> Result<(), String> {
    let name = &want.service;
    for (side, expected) in [("baseline", &want.baseline), ("candidate", &want.candidate)] {
        let got = u64_at(status, &format!("/{side}/records"))?;
        if got != expected.records {
            return Err(format!(
                "{name}: {side}.records {got} of {}",
                expected.records
            ));
        }
    }
    let in_flight = in_flight_total(status)?;
    if in_flight != 0 {
        return Err(format!(
            "{name}: keys.in_flight {}",
            status["keys"]["in_flight"]
        ));
    }
    if status["settled_until_ms"].as_i64().is_none() {
        return Err(format!(
            "{name}: settled_until_ms is {}",
            status["settled_until_ms"]
        ));
    }
    // Decided, and not held by hysteresis (a `fail` carried over from a partial state, for
    // instance before a restart, is served until enough passes follow).
    let gate = &status["gate"];
    match gate["verdict"].as_str() {
        Some(v @ ("pass" | "fail")) if gate["raw_verdict"] == v => Ok(()),
        other => Err(format!(
            "{name}: gate verdict {other:?}, raw {}",
            gate["raw_verdict"]
        )),
    }
}

/// Wait (bounded) until every service of `report` is [`caught_up`] on `api`.
pub async fn wait_caught_up(api: &Api, report: &Report, timeout: Duration) {
    wait_until(
        "every service has consumed and settled all records",
        timeout,
        || async {
            for want in &report.services {
                caught_up(&api.service(&want.service).await?, want)?;
            }
            Ok(())
        },
    )
    .await
}

fn side_equals(ctx: &str, status: &Value, side: &str, want: &SideReport) {
    for (field, expected) in [
        ("records", want.records),
        ("events", want.events),
        ("duplicates", want.duplicates),
    ] {
        let got =
            u64_at(status, &format!("/{side}/{field}")).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(got, expected, "{ctx}: {side}.{field}");
    }
    for (map, expected) in [("rejected", &want.rejected), ("skipped", &want.skipped)] {
        for (reason, n) in expected {
            assert_eq!(
                count_at(status, &format!("/{side}/{map}/{reason}")),
                *n,
                "{ctx}: {side}.{map}.{reason}"
            );
        }
        let got: u64 = status[side][map]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        assert_eq!(
            got,
            expected.values().sum::<u64>(),
            "{ctx}: {side}.{map} total: {}",
            status[side][map]
        );
    }
}

/// Every service on `api` shows what `report` (a replay of the same records) shows: per-side
/// counts, key counts by kind (all settled), the keys listed per kind, and the gate verdict.
pub async fn assert_matches_replay(api: &Api, report: &Report) {
    for want in &report.services {
        let ctx = format!("service {}", want.service);
        let status = api
            .service(&want.service)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        side_equals(&ctx, &status, "baseline", &want.baseline);
        side_equals(&ctx, &status, "candidate", &want.candidate);
        for (field, expected) in [
            ("missing_in_candidate", want.keys.missing_in_candidate),
            ("extra_in_candidate", want.keys.extra_in_candidate),
            ("mismatched", want.keys.mismatched),
        ] {
            assert_eq!(
                u64_at(&status, &format!("/keys/settled/{field}")).unwrap(),
                expected,
                "{ctx}: keys.settled.{field}"
            );
        }
        assert_eq!(
            u64_at(&status, "/keys/total").unwrap(),
            want.keys.total,
            "{ctx}: keys.total"
        );
        assert_eq!(
            u64_at(&status, "/keys/matched").unwrap(),
            want.keys.matched,
            "{ctx}: keys.matched"
        );

        for kind in KINDS {
            let items = api
                .mismatches(&want.service, kind.as_str())
                .await
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for item in &items {
                assert_eq!(
                    item["state"],
                    "settled",
                    "{ctx}: {} item not settled: {item}",
                    kind.as_str()
                );
            }
            let got: std::collections::BTreeSet<String> = items
                .iter()
                .filter_map(|i| i["key"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(
                got,
                mismatch_keys(want, kind),
                "{ctx}: keys listed as {}",
                kind.as_str()
            );
        }

        let gate = api
            .gate(&want.service)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(gate["verdict"], want.verdict.as_str(), "{ctx}: gate {gate}");
        assert!(
            gate["reasons"].is_array(),
            "{ctx}: gate without reasons: {gate}"
        );
    }
}
