//! A service's gate verdict from gathered evidence: its thresholds (its own, tightened by its
//! wave's) and the criteria, waivers applied, as the served `GateStatus` with its reasons. Pure
//! but for the clock; the evaluation loop (`crate::serve::evaluate`) gathers the inputs and applies
//! hysteresis after.

use crate::config::Config;
use crate::core::canonical::CANONICAL_VERSION;
use crate::gate::{apply_waivers, evaluate_criteria, raw_verdict, GateInputs, GateThresholds};
use crate::model::status::GateStatus;
use crate::model::{CriterionStatus, Verdict, Waiver};
use chrono::Utc;

/// The thresholds of a service: its own, tightened by its wave's overrides.
pub fn thresholds(config: &Config, index: usize) -> GateThresholds {
    let service = &config.services[index];
    let wave = config
        .waves
        .iter()
        .find(|w| w.services.iter().any(|s| s == &service.name));
    match wave {
        Some(w) => service.gate.tightened(&w.gate),
        None => service.gate.clone(),
    }
}

/// Criteria and raw verdict for one evaluation, waivers applied (hysteresis comes after).
pub fn decide(inputs: &GateInputs, thresholds: &GateThresholds, waivers: &[Waiver]) -> GateStatus {
    let now = Utc::now();
    let mut criteria = evaluate_criteria(inputs, thresholds);
    apply_waivers(&mut criteria, waivers, now);
    let raw = raw_verdict(&criteria);
    let wanted = |status: CriterionStatus| criteria.iter().filter(move |c| c.status == status);
    let reasons: Vec<String> = match raw {
        Verdict::Fail => wanted(CriterionStatus::Fail)
            .map(|c| format!("{}: {}", c.name, c.explanation))
            .collect(),
        Verdict::Pending => wanted(CriterionStatus::Pending)
            .map(|c| format!("{}: {}", c.name, c.explanation))
            .collect(),
        Verdict::Warn => wanted(CriterionStatus::Warn)
            .chain(wanted(CriterionStatus::Waived))
            .map(|c| format!("{}: {}", c.name, c.explanation))
            .collect(),
        Verdict::Pass => vec!["every criterion passes".to_owned()],
    };
    GateStatus {
        verdict: raw,
        raw_verdict: raw,
        reasons,
        criteria,
        evaluated_at: Some(now),
        canonical_version: CANONICAL_VERSION.to_owned(),
        thresholds: serde_json::to_value(thresholds).unwrap_or_default(),
        ..GateStatus::default()
    }
}
