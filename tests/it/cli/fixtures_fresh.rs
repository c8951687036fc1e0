//! The checked-in fixtures are exactly what the generator writes today: they can never drift from
//! it. Gzip files are compared by content (the compressor's bytes may differ between flate2
//! backends; the records may not). Regenerate with `scripts/gen-fixtures`.

use paritygate::generate::{file_names, fixture_specs, write_pair};
use std::io::Read;
use std::path::Path;

fn content(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw
    }
}

#[test]
fn checked_in_fixtures_equal_a_fresh_generation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let fresh = tempfile::tempdir().unwrap();
    for (dir, spec) in fixture_specs() {
        write_pair(&fresh.path().join(dir), &spec).unwrap();
        let (baseline, candidate) = file_names(&spec);
        let mut names = vec![baseline, candidate, "expected.json".to_owned()];
        if let Ok(schemas) = std::fs::read_dir(fresh.path().join(dir).join("schemas")) {
            names.extend(
                schemas.map(|e| format!("schemas/{}", e.unwrap().file_name().to_string_lossy())),
            );
        }
        for name in names {
            let (want, got) = (
                content(&fresh.path().join(dir).join(&name)),
                content(&root.join(dir).join(&name)),
            );
            assert!(
                want == got,
                "fixtures/{dir}/{name} differs from a fresh generation: run scripts/gen-fixtures"
            );
        }
    }
}
