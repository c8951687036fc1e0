//! One line per record: what extraction made of it (`Outcome::summary_line`: digest, key,
//! operation, position, event time, BLAKE3 of the canonical bytes), for comparing two builds of
//! the core record by record: a change that must not alter the canonical form has to give
//! identical output on the benchmark captures.
//!
//! Usage: `extract_dump <config.toml> <capture>... > dump.txt`
use paritygate::capture::for_each_line;
use paritygate::capture::format::parse_line;
use paritygate::config::Config;
use paritygate::core::event::{extract, Keep};
use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((config_path, files)) = args.split_first() else {
        anyhow::bail!("usage: extract_dump <config.toml> <capture>...");
    };
    let config = Config::load(std::path::Path::new(config_path))?;
    let routes = config.routes();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for file in files {
        for_each_line(
            std::path::Path::new(file),
            Arc::new(AtomicU64::new(0)),
            |_, line| {
                if let Ok((_, r)) = parse_line(line) {
                    if let Some(&(service, side)) = routes.get(r.topic.as_ref()) {
                        let outcome = extract(config.plan(service).side(side), &r, Keep::Canonical);
                        let _ = writeln!(out, "{}", outcome.summary_line());
                    }
                }
                true
            },
        )?;
    }
    Ok(())
}
