//! The canonical form is a contract (`docs/canonical-form.md`, `CANONICAL_VERSION`): the digests and
//! canonical bytes of every record of the shipped fixture captures are pinned here, so a change to
//! extraction that alters a single one fails. The pinned value is what the `serde_json::Value`
//! implementation (commit 858e294) gives; the borrowed-tree parser that replaced it gives the same
//! (that change was also checked record by record on the 2.29 M-record benchmark captures, with
//! `examples/extract_dump.rs` built from both versions).
//!
//! Changing the canonical form on purpose means changing `CANONICAL_VERSION` and this value.

use paritygate::capture::for_each_line;
use paritygate::capture::format::parse_line;
use paritygate::config::Config;
use paritygate::core::canonical::CANONICAL_VERSION;
use paritygate::core::event::{extract, Keep, Outcome};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

const PINNED: &str = "a0b8c81fbc88a0c398c405edf3d0eb2dff87a5a10f610460e0f88fc6af0b83d0";

fn fingerprint_of_fixtures() -> (String, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("fixtures/paritygate.toml")).expect("fixture config");
    let routes = config.routes();
    let mut hasher = blake3::Hasher::new();
    let mut events = 0;
    for file in [
        "fixtures/clean/baseline.kcat.jsonl",
        "fixtures/clean/candidate.rpk.jsonl",
        "fixtures/drift/baseline.kcat.jsonl",
        "fixtures/drift/candidate.rpk.jsonl.gz",
    ] {
        for_each_line(&root.join(file), Arc::new(AtomicU64::new(0)), |_, line| {
            let (_, record) = parse_line(line).expect("fixture lines parse");
            let Some(&(service, side)) = routes.get(record.topic.as_ref()) else {
                return true;
            };
            let outcome = extract(config.plan(service).side(side), &record, Keep::Canonical);
            events += usize::from(matches!(outcome, Outcome::Event(_)));
            let line = outcome.summary_line() + "\n";
            hasher.update(line.as_bytes());
            true
        })
        .expect("fixture captures readable");
    }
    (hasher.finalize().to_hex().to_string(), events)
}

#[test]
fn fixture_digests_and_canonical_bytes_are_pinned() {
    let (got, events) = fingerprint_of_fixtures();
    assert!(events > 3000, "only {events} events extracted");
    assert_eq!(
        got, PINNED,
        "the canonical form of the fixtures changed (version {CANONICAL_VERSION}): if on purpose, \
         bump CANONICAL_VERSION and pin the new value"
    );
}
