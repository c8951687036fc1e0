//! The live dual-run generator behind `paritygate generate`: the fixture models' blocks, routed to
//! each configured service's topics, with chosen drift, plus the row changes each side's sink makes.
//!
//! This part is pure and deterministic (same config, seed and drift → same batches); producing to
//! Kafka ([`produce`]), writing the target tables ([`target`]) and pacing live at the CLI edge.

use crate::model::Side;
pub mod drift;
pub mod produce;
pub mod rows;
pub mod target;
#[cfg(test)]
mod tests;

use super::capture::Record;
use super::model::ServiceModel;
use super::rng::Rng;
use super::{inventory, orders, payments, shipments};
use crate::config::model::{KeySpec, ServiceConfig};
use crate::config::Config;
use crate::core::pointer::PointerPattern;
use crate::core::position::PositionFormat;
pub use drift::{parse_drift_arg, DriftKind, SLOW_CANDIDATE_MS};
use rows::{row_change, RowChange};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Which fixture model shapes a service's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Postgres CDC (RPCN `postgres_cdc`): LSN header, begin/commit markers.
    Orders,
    /// SQL Server CDC: binary LSN header, update_before/after pairs, candidate `__$` columns.
    Payments,
    /// Position-less upserts keyed by body fields.
    Inventory,
    /// Kafka Connect: Debezium SQL Server envelopes in Avro against Bento JSON.
    Shipments,
}

impl ModelKind {
    /// A service named like a model uses it; otherwise its config's shape decides (a Debezium
    /// baseline is Kafka Connect, a binary position is SQL Server, a key from body fields is
    /// inventory, anything else Postgres CDC).
    pub fn for_service(service: &ServiceConfig) -> Self {
        match service.name.as_str() {
            "orders" => return Self::Orders,
            "payments" => return Self::Payments,
            "inventory" => return Self::Inventory,
            "shipments" => return Self::Shipments,
            _ => {}
        }
        let envelope = service.baseline.envelope.or(service.envelope);
        if envelope == Some(crate::config::model::EnvelopeName::Debezium) {
            Self::Shipments
        } else if service
            .position
            .as_ref()
            .is_some_and(|p| p.format == Some(PositionFormat::Binary))
        {
            Self::Payments
        } else if matches!(service.key, KeySpec::Fields { .. }) {
            Self::Inventory
        } else {
            Self::Orders
        }
    }
}

/// What to generate, besides the config.
#[derive(Debug, Clone, Default)]
pub struct LiveSpec {
    pub seed: u64,
    /// Drift kinds per service name.
    pub drift: BTreeMap<String, BTreeSet<DriftKind>>,
    /// Keys per thousand that each drift kind touches on a drifting service.
    pub drift_per_mille: u64,
}

/// Why the generator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("--drift names service `{0}`, which the config does not have")]
    UnknownService(String),
    #[error("the config has no services")]
    NoServices,
}

/// One block of one service, ready to produce and to apply.
#[derive(Debug, Default)]
pub struct Batch {
    pub service: usize,
    /// Records in production order, each with the side whose topic it goes to.
    pub records: Vec<(Side, Record)>,
    /// Row changes of the baseline sink and of the candidate sink, in order.
    pub baseline_rows: Vec<RowChange>,
    pub candidate_rows: Vec<RowChange>,
    /// Baseline data records (events) in this batch: what `--count` counts.
    pub baseline_events: u64,
}

struct Service {
    name: String,
    model: Box<dyn ServiceModel + Send>,
    data: Rng,
    drift: BTreeSet<DriftKind>,
    /// Top-level fields `altered` never touches: key fields, event time, ignored fields.
    protected: Vec<String>,
    /// The candidate's last key pointer when keys come from body fields.
    key_field: Option<PointerPattern>,
    stale_docs: BTreeMap<String, Value>,
}

/// The generator's state: one model and data stream per configured service.
pub struct Live {
    config: Config,
    seed: u64,
    per_mille: u64,
    services: Vec<Service>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("seed", &self.seed)
            .field("services", &self.services.len())
            .finish()
    }
}

fn top_level(pointer: &str) -> Option<String> {
    pointer
        .strip_prefix('/')
        .map(|p| p.split('/').next().unwrap_or(p).to_owned())
}

impl Live {
    pub fn new(config: &Config, spec: &LiveSpec) -> Result<Self, LiveError> {
        if config.services.is_empty() {
            return Err(LiveError::NoServices);
        }
        if let Some(name) = spec
            .drift
            .keys()
            .find(|n| !config.services.iter().any(|s| &s.name == *n))
        {
            return Err(LiveError::UnknownService(name.clone()));
        }
        let mut root = Rng::new(spec.seed);
        let services = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let model: Box<dyn ServiceModel + Send> = match ModelKind::for_service(s) {
                    ModelKind::Orders => Box::new(orders::Orders::new(i)),
                    ModelKind::Payments => Box::new(payments::Payments::new(i, true)),
                    ModelKind::Inventory => Box::new(inventory::Inventory::new(i)),
                    ModelKind::Shipments => Box::new(shipments::Shipments::new(i)),
                };
                let key = s.candidate.key.as_ref().unwrap_or(&s.key);
                let key_pointers: Vec<String> = match key {
                    KeySpec::Fields { pointers } => pointers.clone(),
                    KeySpec::MessageKey => Vec::new(),
                };
                let mut protected: Vec<String> = key_pointers
                    .iter()
                    .chain(&s.normalize.ignore_fields)
                    .chain(s.event_time.as_ref().and_then(|e| e.pointer.as_ref()))
                    .filter_map(|p| top_level(p))
                    .collect();
                protected.sort();
                protected.dedup();
                Service {
                    name: s.name.clone(),
                    model,
                    data: root.fork(i as u64 + 1),
                    drift: spec.drift.get(&s.name).cloned().unwrap_or_default(),
                    protected,
                    key_field: key_pointers
                        .last()
                        .and_then(|p| PointerPattern::parse(p).ok()),
                    stale_docs: BTreeMap::new(),
                }
            })
            .collect();
        Ok(Self {
            config: config.clone(),
            seed: spec.seed,
            per_mille: spec.drift_per_mille,
            services,
        })
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    pub fn service_name(&self, index: usize) -> &str {
        &self.services[index].name
    }

    /// The next block of service `index`.
    pub fn next_batch(&mut self, index: usize) -> Batch {
        let plan = &self.config.plan(index);
        let (seed, per_mille) = (self.seed, self.per_mille);
        let svc = &mut self.services[index];
        let block = svc.model.next_block(&mut svc.data, false);
        let name = svc.name.clone();
        let on = |k: DriftKind| svc.drift.contains(&k);
        let pick =
            |k: DriftKind, key: &[u8]| on(k) && drift::chosen(seed, &name, k, key, per_mille);

        let mut batch = Batch {
            service: index,
            ..Batch::default()
        };
        for r in block.baseline {
            if r.service.is_some() {
                batch.baseline_events += 1;
            }
            if let Some(change) = row_change(&plan.baseline, &r) {
                batch.baseline_rows.push(change);
            }
            batch.records.push((Side::Baseline, r));
        }
        let mut candidate_rows = Vec::new();
        for mut r in block.candidate {
            let key = rows::event_key(&plan.candidate, &r);
            let chosen = |k: DriftKind| key.as_deref().is_some_and(|key| pick(k, key));
            if chosen(DriftKind::Dropped) {
                continue;
            }
            if on(DriftKind::SlowCandidate) {
                r.timestamp_ms += SLOW_CANDIDATE_MS;
            }
            if chosen(DriftKind::Altered) {
                if let Some(p) = r.payload.as_deref() {
                    if let Some(altered) = drift::alter_payload(p, &svc.protected) {
                        r.payload = Some(altered);
                    }
                }
            }
            let extra = chosen(DriftKind::Extra).then(|| {
                let mut copy = r.clone();
                drift::extra_key(&mut copy.key, &mut copy.payload, svc.key_field.as_ref());
                copy
            });
            for r in std::iter::once(r).chain(extra) {
                if let Some(change) = row_change(&plan.candidate, &r) {
                    candidate_rows.push(change);
                }
                batch.records.push((Side::Candidate, r));
            }
        }
        batch.candidate_rows = drift::sink_drift(
            candidate_rows,
            |k| pick(DriftKind::SinkDropsDeletes, k.as_bytes()),
            |k| pick(DriftKind::StaleUpdate, k.as_bytes()),
            &mut svc.stale_docs,
        );
        batch
    }
}
