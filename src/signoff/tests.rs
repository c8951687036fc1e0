//! Unit tests of the sign-off rules: counting, staleness, ordering and wave verdicts.
#![allow(clippy::unwrap_used)]

use super::*;
use chrono::TimeZone;

fn service(name: &str, verdict: Verdict, digest: &str) -> ServiceSnapshot {
    ServiceSnapshot {
        service: name.into(),
        config_digest: digest.into(),
        canonical_version: "1".into(),
        epoch: Some(0),
        gate: GateStatus {
            verdict,
            reasons: vec![format!("{name} is {}", verdict.as_str())],
            ..Default::default()
        },
    }
}

fn wave(id: u32, required: u32, services: Vec<ServiceSnapshot>) -> WaveInput {
    WaveInput {
        id,
        name: format!("w{id}"),
        required_approvals: required,
        services,
    }
}

fn row(
    id: i64,
    wave: u32,
    action: SignoffAction,
    who: &str,
    services: &[ServiceSnapshot],
) -> SignoffRecord {
    let (verdict, reasons) = wave_verdict(services);
    let snapshot = Snapshot {
        wave,
        verdict,
        reasons,
        services: services.to_vec(),
    };
    SignoffRecord {
        id,
        wave_id: i32::try_from(wave).unwrap(),
        action,
        identity: who.into(),
        comment: format!("comment {id}"),
        snapshot: serde_json::to_value(snapshot).unwrap(),
        created_at: Utc.timestamp_opt(1_800_000_000 + id, 0).unwrap(),
    }
}

#[test]
fn wave_verdict_is_the_worst_service_and_empty_is_pending() {
    let (v, reasons) = wave_verdict(&[service("a", Verdict::Pass, "d")]);
    assert_eq!(
        (v, reasons),
        (Verdict::Pass, vec!["all 1 services pass".into()])
    );
    let (v, reasons) = wave_verdict(&[
        service("a", Verdict::Warn, "d"),
        service("b", Verdict::Pending, "d"),
        service("c", Verdict::Pass, "d"),
    ]);
    assert_eq!(v, Verdict::Pending);
    assert_eq!(
        reasons,
        vec!["a: warn: a is warn", "b: pending: b is pending"]
    );
    assert_eq!(
        wave_verdict(&[
            service("a", Verdict::Fail, "d"),
            service("b", Verdict::Warn, "d")
        ])
        .0,
        Verdict::Fail
    );
    assert_eq!(wave_verdict(&[]).0, Verdict::Pending);
}

#[test]
fn one_identity_counts_once_and_revocation_resets() {
    let s = vec![service("a", Verdict::Pass, "d")];
    let rows = vec![
        row(1, 1, SignoffAction::Signoff, "alice", &s),
        row(2, 1, SignoffAction::Signoff, "alice", &s),
    ];
    let w = &wave_statuses(vec![wave(1, 2, s.clone())], &rows)[0];
    assert_eq!(w.approvals.len(), 1);
    assert_eq!(
        w.approvals[0].signoff_id, 2,
        "the latest per identity counts"
    );
    assert!(!w.signed_off);

    let mut rows = rows;
    rows.push(row(3, 1, SignoffAction::Signoff, "bob", &s));
    let w = &wave_statuses(vec![wave(1, 2, s.clone())], &rows)[0];
    assert!(w.signed_off && !w.stale);

    rows.push(row(4, 1, SignoffAction::Revocation, "carol", &s));
    let w = &wave_statuses(vec![wave(1, 2, s.clone())], &rows)[0];
    assert!(!w.signed_off && w.approvals.is_empty());
    let revocation = w.last_revocation.as_ref().unwrap();
    assert_eq!((revocation.id, revocation.identity.as_str()), (4, "carol"));

    rows.push(row(5, 1, SignoffAction::Signoff, "bob", &s));
    let w = &wave_statuses(vec![wave(1, 2, s)], &rows)[0];
    assert_eq!(
        w.approvals.len(),
        1,
        "only sign-offs after the revocation count"
    );
}

#[test]
fn stale_when_a_service_fails_or_its_evidence_changes() {
    let signed = vec![
        service("a", Verdict::Pass, "d1"),
        service("b", Verdict::Warn, "d2"),
    ];
    let rows = vec![row(1, 1, SignoffAction::Signoff, "alice", &signed)];
    let w = &wave_statuses(vec![wave(1, 1, signed.clone())], &rows)[0];
    assert!(w.signed_off && !w.stale && w.stale_reasons.is_empty());

    // Pending is not stale: only a failure, or changed rules, undo the evidence.
    let pending = vec![service("a", Verdict::Pending, "d1"), signed[1].clone()];
    assert!(!wave_statuses(vec![wave(1, 1, pending)], &rows)[0].stale);

    let failing = vec![service("a", Verdict::Fail, "d1"), signed[1].clone()];
    let w = &wave_statuses(vec![wave(1, 1, failing)], &rows)[0];
    assert!(w.signed_off && w.stale && w.approvals[0].stale);
    assert_eq!(
        w.stale_reasons,
        vec!["alice's sign-off 1: `a` now fails (signed off at `pass`)"]
    );

    let mut changed = signed.clone();
    changed[1].config_digest = "d3".into();
    changed[0].canonical_version = "2".into();
    let reasons = &wave_statuses(vec![wave(1, 1, changed)], &rows)[0].stale_reasons;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("`a`: canonical-form version changed since the sign-off (1 → 2)"));
    assert!(reasons[1].contains("`b`: config digest changed since the sign-off (d2 → d3)"));

    let mut restarted = signed.clone();
    restarted[0].epoch = Some(7);
    let reasons = &wave_statuses(vec![wave(1, 1, restarted)], &rows)[0].stale_reasons;
    assert_eq!(
        reasons,
        &vec![
            "alice's sign-off 1: `a`: observation epoch 7 started after the sign-off (given in epoch 0)"
                .to_owned()
        ]
    );
    // A snapshot from before epochs was taken in the first: not stale while it is current.
    let mut old = signed.clone();
    old[0].epoch = None;
    let rows_old = vec![row(1, 1, SignoffAction::Signoff, "alice", &old)];
    assert!(!wave_statuses(vec![wave(1, 1, signed.clone())], &rows_old)[0].stale);

    let regrouped = vec![signed[0].clone(), service("c", Verdict::Pass, "d4")];
    let reasons = &wave_statuses(vec![wave(1, 1, regrouped)], &rows)[0].stale_reasons;
    assert!(
        reasons[0].ends_with("`b` is no longer in the wave"),
        "{reasons:?}"
    );
    assert!(reasons[1].ends_with("`c` joined the wave after the sign-off"));
}

#[test]
fn unreadable_snapshot_is_stale() {
    let s = vec![service("a", Verdict::Pass, "d")];
    let mut r = row(1, 1, SignoffAction::Signoff, "alice", &s);
    r.snapshot = serde_json::json!({"not": "a snapshot"});
    let w = &wave_statuses(vec![wave(1, 1, s)], &[r])[0];
    assert!(w.stale && w.stale_reasons[0].contains("unreadable snapshot"));
}

#[test]
fn blockers_follow_verdict_and_wave_order() {
    let pass = vec![service("a", Verdict::Pass, "d")];
    let warn = vec![service("b", Verdict::Warn, "d")];
    let waves = || vec![wave(2, 1, warn.clone()), wave(1, 1, pass.clone())];
    let statuses = wave_statuses(waves(), &[]);
    assert_eq!(statuses.iter().map(|w| w.id).collect::<Vec<_>>(), [1, 2]);
    assert!(statuses[0].signoff_blockers.is_empty());
    assert_eq!(
        statuses[1].signoff_blockers,
        vec!["earlier wave 1 (`w1`) is not signed off"]
    );

    let rows = vec![row(1, 1, SignoffAction::Signoff, "alice", &pass)];
    assert!(wave_statuses(waves(), &rows)[1].signoff_blockers.is_empty());

    // Wave 1's service fails after its sign-off: wave 1 is stale, wave 2 is blocked.
    let failing = vec![service("a", Verdict::Fail, "d")];
    let statuses = wave_statuses(vec![wave(1, 1, failing), wave(2, 1, warn.clone())], &rows);
    assert_eq!(
        statuses[0].signoff_blockers,
        vec!["the wave's verdict is `fail`: every service must pass or warn"]
    );
    assert_eq!(
        statuses[1].signoff_blockers,
        vec!["earlier wave 1 (`w1`) has a stale sign-off"]
    );

    let pending = vec![service("b", Verdict::Pending, "d")];
    let statuses = wave_statuses(vec![wave(1, 1, pass.clone()), wave(2, 1, pending)], &rows);
    assert_eq!(
        statuses[1].signoff_blockers,
        vec!["the wave's verdict is `pending`: every service must pass or warn"]
    );
}
