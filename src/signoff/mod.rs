//! Wave sign-off rules, pure (no IO, no clock): a wave's verdict, which sign-offs count, whether
//! they are stale, and why a new sign-off would be refused.
//!
//! - A wave's verdict is the worst of its services' served verdicts (`pass` < `warn` < `pending`
//!   < `fail`); a wave without services is `pending` (no evidence is not a pass).
//! - Sign-offs count from the last revocation on, one per identity (the latest), so one person
//!   signing twice never counts twice; the wave is signed off once `required_approvals` distinct
//!   identities count.
//! - A counted sign-off is *stale* when the evidence it was given on no longer holds: a service it
//!   covered now fails, or its config digest or canonical-form version changed, or the wave's
//!   services changed. Staleness does not unsign a wave (only a revocation does); it is shown.
//! - A sign-off needs the wave to pass or warn and every earlier wave (lower id) to be signed off
//!   and not stale: a later wave must not be promoted on top of evidence that has gone away.

use crate::model::status::GateStatus;
use crate::model::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What an entry of a wave's audit trail does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignoffAction {
    Signoff,
    Revocation,
}

impl SignoffAction {
    /// As stored in `wave_signoffs.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signoff => "signoff",
            Self::Revocation => "revocation",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Signoff, Self::Revocation]
            .into_iter()
            .find(|a| a.as_str() == raw)
    }
}

/// A sign-off or a revocation (immutable once appended).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SignoffRecord {
    pub id: i64,
    pub wave_id: i32,
    pub action: SignoffAction,
    /// The identity bound to the approver token that made it.
    pub identity: String,
    /// The sign-off's comment, or the revocation's reason.
    pub comment: String,
    /// Every service of the wave at that moment: its served `GateStatus` and config digest.
    #[schema(value_type = Object)]
    pub snapshot: Value,
    pub created_at: DateTime<Utc>,
}

/// One service as a sign-off saw it: exactly the `GateStatus` served, plus the config digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceSnapshot {
    pub service: String,
    /// BLAKE3 of the service's `[[services]]` table when the snapshot was taken.
    pub config_digest: String,
    pub canonical_version: String,
    /// The observation epoch the gate judged (`GET …/epochs`); absent in snapshots taken before
    /// epochs existed, which were all taken in the first.
    #[serde(default)]
    pub epoch: Option<i64>,
    pub gate: GateStatus,
}

/// What a sign-off (or revocation) record stores in `snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub wave: u32,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub services: Vec<ServiceSnapshot>,
}

/// A wave's services as they are now, and its config.
#[derive(Debug, Clone)]
pub struct WaveInput {
    pub id: u32,
    pub name: String,
    pub required_approvals: u32,
    pub services: Vec<ServiceSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WaveService {
    pub service: String,
    pub verdict: Verdict,
    pub config_digest: String,
    pub canonical_version: String,
}

/// A sign-off that counts towards `required_approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Approval {
    pub signoff_id: i64,
    pub identity: String,
    pub signed_at: DateTime<Utc>,
    pub comment: String,
    /// The evidence this sign-off was given on no longer holds.
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Revocation {
    pub id: i64,
    pub identity: String,
    pub reason: String,
    pub revoked_at: DateTime<Utc>,
}

/// A wave's verdict and sign-off state.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WaveStatus {
    pub id: u32,
    pub name: String,
    /// The worst verdict of the wave's services.
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub services: Vec<WaveService>,
    /// Distinct approver identities needed.
    pub required_approvals: u32,
    /// Sign-offs since the last revocation, the latest per identity.
    pub approvals: Vec<Approval>,
    /// `required_approvals` distinct identities have signed since the last revocation.
    pub signed_off: bool,
    /// A counted sign-off was given on evidence that no longer holds (see `stale_reasons`).
    pub stale: bool,
    pub stale_reasons: Vec<String>,
    pub last_revocation: Option<Revocation>,
    /// Why `POST …/signoff` would answer 409 now; empty when it would be accepted.
    pub signoff_blockers: Vec<String>,
}

/// The worst verdict of `services`, with one reason per service that does not pass.
pub fn wave_verdict(services: &[ServiceSnapshot]) -> (Verdict, Vec<String>) {
    let Some(worst) = services.iter().map(|s| s.gate.verdict).max() else {
        return (
            Verdict::Pending,
            vec!["the wave has no services: nothing to decide on".into()],
        );
    };
    let mut reasons: Vec<String> = services
        .iter()
        .filter(|s| s.gate.verdict != Verdict::Pass)
        .map(|s| {
            let why = if s.gate.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", s.gate.reasons.join("; "))
            };
            format!("{}: {}{why}", s.service, s.gate.verdict.as_str())
        })
        .collect();
    if reasons.is_empty() {
        reasons.push(format!("all {} services pass", services.len()));
    }
    (worst, reasons)
}

/// The counted sign-offs (latest per identity since the last revocation) and that revocation.
/// `rows` are one wave's records in the order they were appended.
pub fn counted(rows: &[SignoffRecord]) -> (Vec<&SignoffRecord>, Option<&SignoffRecord>) {
    let start = rows
        .iter()
        .rposition(|r| r.action == SignoffAction::Revocation);
    let revocation = start.map(|i| &rows[i]);
    let since = start.map_or(0, |i| i + 1);
    let mut latest: Vec<&SignoffRecord> = Vec::new();
    for r in rows[since..]
        .iter()
        .filter(|r| r.action == SignoffAction::Signoff)
    {
        match latest.iter_mut().find(|l| l.identity == r.identity) {
            Some(slot) => *slot = r,
            None => latest.push(r),
        }
    }
    (latest, revocation)
}

/// Why a sign-off's snapshot no longer matches the wave's services now (empty: still holds).
pub fn stale_reasons(snapshot: &Snapshot, now: &[ServiceSnapshot]) -> Vec<String> {
    let mut reasons = Vec::new();
    for then in &snapshot.services {
        let name = &then.service;
        let Some(current) = now.iter().find(|c| &c.service == name) else {
            reasons.push(format!("`{name}` is no longer in the wave"));
            continue;
        };
        if current.gate.verdict == Verdict::Fail {
            reasons.push(format!(
                "`{name}` now fails (signed off at `{}`)",
                then.gate.verdict.as_str()
            ));
        }
        if current.config_digest != then.config_digest {
            reasons.push(format!(
                "`{name}`: config digest changed since the sign-off ({} → {})",
                then.config_digest, current.config_digest
            ));
        }
        // A new epoch restarts the judgement: the evidence signed off on is an earlier epoch's.
        let signed_in = then.epoch.unwrap_or(crate::model::FIRST_EPOCH);
        if let Some(now_in) = current.epoch.filter(|e| *e != signed_in) {
            reasons.push(format!(
                "`{name}`: observation epoch {now_in} started after the sign-off (given in epoch {signed_in})"
            ));
        }
        if current.canonical_version != then.canonical_version {
            reasons.push(format!(
                "`{name}`: canonical-form version changed since the sign-off ({} → {})",
                then.canonical_version, current.canonical_version
            ));
        }
    }
    for current in now {
        if !snapshot
            .services
            .iter()
            .any(|t| t.service == current.service)
        {
            reasons.push(format!(
                "`{}` joined the wave after the sign-off",
                current.service
            ));
        }
    }
    reasons
}

/// Staleness of one stored record; a snapshot that cannot be read is stale (fail closed).
fn record_stale_reasons(row: &SignoffRecord, now: &[ServiceSnapshot]) -> Vec<String> {
    match serde_json::from_value::<Snapshot>(row.snapshot.clone()) {
        Ok(snapshot) => stale_reasons(&snapshot, now),
        Err(e) => vec![format!(
            "sign-off {} has an unreadable snapshot ({e})",
            row.id
        )],
    }
}

/// Every configured wave's status, in id order; `rows` holds every wave's records.
pub fn wave_statuses(mut waves: Vec<WaveInput>, rows: &[SignoffRecord]) -> Vec<WaveStatus> {
    waves.sort_by_key(|w| w.id);
    let mut out: Vec<WaveStatus> = Vec::with_capacity(waves.len());
    for w in waves {
        let own: Vec<SignoffRecord> = rows
            .iter()
            .filter(|r| i64::from(r.wave_id) == i64::from(w.id))
            .cloned()
            .collect();
        let (verdict, reasons) = wave_verdict(&w.services);
        let (counted, revocation) = counted(&own);
        let mut stale_reasons: Vec<String> = Vec::new();
        let approvals = counted
            .iter()
            .map(|r| {
                let why = record_stale_reasons(r, &w.services);
                for reason in &why {
                    let line = format!("{}'s sign-off {}: {reason}", r.identity, r.id);
                    stale_reasons.push(line);
                }
                Approval {
                    signoff_id: r.id,
                    identity: r.identity.clone(),
                    signed_at: r.created_at,
                    comment: r.comment.clone(),
                    stale: !why.is_empty(),
                }
            })
            .collect::<Vec<_>>();
        let signed_off = approvals.len() >= w.required_approvals.max(1) as usize;
        let mut blockers = Vec::new();
        if !verdict.is_go() {
            blockers.push(format!(
                "the wave's verdict is `{}`: every service must pass or warn",
                verdict.as_str()
            ));
        }
        for earlier in &out {
            if !earlier.signed_off {
                blockers.push(format!(
                    "earlier wave {} (`{}`) is not signed off",
                    earlier.id, earlier.name
                ));
            } else if earlier.stale {
                blockers.push(format!(
                    "earlier wave {} (`{}`) has a stale sign-off",
                    earlier.id, earlier.name
                ));
            }
        }
        out.push(WaveStatus {
            id: w.id,
            name: w.name,
            verdict,
            reasons,
            services: w
                .services
                .iter()
                .map(|s| WaveService {
                    service: s.service.clone(),
                    verdict: s.gate.verdict,
                    config_digest: s.config_digest.clone(),
                    canonical_version: s.canonical_version.clone(),
                })
                .collect(),
            required_approvals: w.required_approvals,
            signed_off,
            stale: !stale_reasons.is_empty(),
            stale_reasons,
            approvals,
            last_revocation: revocation.map(|r| Revocation {
                id: r.id,
                identity: r.identity.clone(),
                reason: r.comment.clone(),
                revoked_at: r.created_at,
            }),
            signoff_blockers: blockers,
        });
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
