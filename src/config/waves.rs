//! Wave validation and per-service config digests.

use super::model::FileConfig;
use super::ConfigError;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Waves name existing services, each in at most one wave, consistent with `services.wave`.
pub fn validate_waves(path: &Path, file: &FileConfig) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::File {
        path: path.to_owned(),
        message,
    };
    let mut ids = HashSet::new();
    let mut owner: HashMap<&str, u32> = HashMap::new();
    for w in &file.waves {
        if !ids.insert(w.id) {
            return Err(err(format!("wave {}: `id` is used by another wave", w.id)));
        }
        if w.required_approvals == 0 {
            return Err(err(format!(
                "wave {}: `required_approvals` must be at least 1",
                w.id
            )));
        }
        for name in &w.services {
            let Some(s) = file.services.iter().find(|s| &s.name == name) else {
                return Err(err(format!(
                    "wave {}: field `services`: no service named `{name}`",
                    w.id
                )));
            };
            if let Some(other) = owner.insert(name, w.id) {
                return Err(err(format!(
                    "wave {}: service `{name}` already belongs to wave {other}",
                    w.id
                )));
            }
            if let Some(declared) = s.wave.filter(|sw| *sw != w.id) {
                return Err(err(format!(
                    "wave {}: service `{name}` says `wave = {declared}`",
                    w.id
                )));
            }
        }
    }
    Ok(())
}

/// BLAKE3 (first 16 bytes, hex) of each `[[services]]` table, canonicalized through JSON so
/// formatting and key order in the file do not change it.
pub fn service_digests(text: &str, count: usize) -> Vec<String> {
    let tables: Vec<toml::Value> = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("services").and_then(|s| s.as_array()).cloned())
        .unwrap_or_default();
    (0..count)
        .map(|i| {
            let json = tables
                .get(i)
                .and_then(|t| serde_json::to_value(t).ok())
                .unwrap_or_default();
            let mut bytes = Vec::new();
            crate::core::canonical::write_canonical(&json, &mut bytes);
            blake3::hash(&bytes).to_hex()[..32].to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const BASE: &str = "[[services]]\nname = \"a\"\nbaseline_topics = [\"x\"]\ncandidate_topics = [\"y\"]\n[[services]]\nname = \"b\"\nwave = 2\nbaseline_topics = [\"z\"]\ncandidate_topics = [\"w\"]\n";

    fn err(extra: &str) -> String {
        Config::parse(Path::new("p.toml"), &format!("{BASE}{extra}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn wave_errors_name_wave_and_service() {
        assert!(
            err("[[waves]]\nid = 1\nname = \"w\"\nservices = [\"nope\"]\n")
                .contains("wave 1: field `services`: no service named `nope`")
        );
        assert!(err("[[waves]]\nid = 1\nname = \"w\"\nservices = [\"b\"]\n")
            .contains("service `b` says `wave = 2`"));
        let twice = "[[waves]]\nid = 1\nname = \"w\"\nservices = [\"a\"]\n[[waves]]\nid = 3\nname = \"v\"\nservices = [\"a\"]\n";
        assert!(err(twice).contains("service `a` already belongs to wave 1"));
    }

    #[test]
    fn digests_ignore_formatting_and_follow_content() {
        let a = Config::parse(Path::new("p.toml"), BASE).unwrap();
        let reformatted = BASE.replace(
            "name = \"a\"\nbaseline_topics = [\"x\"]",
            "baseline_topics = [ \"x\" ]\nname   = \"a\"",
        );
        let b = Config::parse(Path::new("p.toml"), &reformatted).unwrap();
        let c = Config::parse(Path::new("p.toml"), &BASE.replace("[\"y\"]", "[\"y2\"]")).unwrap();
        assert_eq!(a.service_digests, b.service_digests);
        assert_ne!(a.service_digests[0], c.service_digests[0]);
        assert_eq!(a.service_digests[1], c.service_digests[1]);
    }
}
