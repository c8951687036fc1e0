//! Where Avro writer schemas come from, by id: a directory of `ID.avsc` files (`diff --schemas`,
//! captures compared without a registry) or a Confluent Schema Registry (`serve`). Both implement
//! the core's `SchemaLookup`; decoding itself is pure (`core::avro`).

mod dir;
mod registry;

pub use dir::SchemaDir;
pub use registry::{Registry, RegistryError};

use crate::config::Config;
use crate::core::avro::Schemas;
use crate::model::Side;
use std::sync::Arc;

/// The registries `serve` needs: one per side that has a service with `payload` or `key_format`
/// `avro`. A side that needs one and has no `[schema_registry]` URL is a configuration error.
pub fn registries(
    config: &Config,
    runtime: tokio::runtime::Handle,
) -> Result<Schemas, RegistryError> {
    let mut schemas = Schemas::default();
    for side in [Side::Baseline, Side::Candidate] {
        let framed = config.plans().iter().any(|p| {
            let s = p.side(side);
            matches!(s.payload, crate::core::payload::WireFormat::Avro)
                || matches!(s.key_format, crate::core::payload::WireFormat::Avro)
        });
        if !framed {
            continue;
        }
        let endpoint = config.schema_registry.of(side);
        let Some(url) = endpoint.url.clone() else {
            return Err(RegistryError::Config(format!(
                "the {side} side has services with `avro` payloads or keys: set [schema_registry] url (or [schema_registry.{side}])"
            )));
        };
        let registry = Registry::new(&url, &endpoint, runtime.clone())?;
        let lookup: Arc<dyn crate::core::avro::SchemaLookup> = Arc::new(registry);
        match side {
            Side::Baseline => schemas.baseline = Some(lookup),
            Side::Candidate => schemas.candidate = Some(lookup),
        }
    }
    Ok(schemas)
}
