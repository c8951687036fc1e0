//! Times the comparison core's extraction alone (no Kafka, no store) on capture files, for
//! profiling (`perf record`) and for comparing extraction changes: prints CPU µs per record, in
//! all and per side. Avro sides (`payload = "avro"`, schemas from `--schemas DIR`) are timed from
//! the framed bytes a consumer receives: decoding, the Debezium envelope and extraction.
//!
//! Usage: `extract_profile <config.toml> <capture>... [--rounds N] [--limit RECORDS_PER_FILE]
//! [--schemas DIR]`

use paritygate::capture::for_each_line;
use paritygate::capture::format::parse_line;
use paritygate::config::Config;
use paritygate::core::event::{extract, Keep, Outcome};
use paritygate::core::payload::{from_capture, prepare_for, Prepared};
use paritygate::core::record::RecordView;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let config_path = args.next().ok_or_else(|| anyhow::anyhow!("config path"))?;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut rounds = 3usize;
    let mut limit = usize::MAX;
    let mut schemas: Option<paritygate::schemas::SchemaDir> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().unwrap_or_default().parse()?,
            "--limit" => limit = args.next().unwrap_or_default().parse()?,
            "--schemas" => {
                let dir = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--schemas DIR"))?;
                schemas = Some(
                    paritygate::schemas::SchemaDir::read(std::path::Path::new(&dir))
                        .map_err(|e| anyhow::anyhow!("--schemas: {e}"))?,
                );
            }
            _ => files.push(a.into()),
        }
    }
    let config = Config::load(std::path::Path::new(&config_path))?;
    let routes = config.routes();
    // Owned records, so the timed loop sees only extraction.
    let mut records: Vec<(usize, paritygate::model::Side, RecordView<'static>)> = Vec::new();
    for file in &files {
        let before = records.len();
        for_each_line(file, Arc::new(AtomicU64::new(0)), |_, line| {
            if let Ok((_, r)) = parse_line(line) {
                if let Some(&(service, side)) = routes.get(r.topic.as_ref()) {
                    // A capture holds Avro as base64: decoded here, outside the timed loop, to
                    // the bytes a consumer would receive.
                    let plan = config.plan(service).side(side);
                    if let Ok(raw) = from_capture(&r, &plan.payload, &plan.key_format) {
                        records.push((service, side, owned(raw)));
                    }
                }
            }
            records.len() - before < limit
        })?;
    }
    eprintln!("{} records", records.len());
    let lookup = schemas
        .as_ref()
        .map(|s| s as &dyn paritygate::core::avro::SchemaLookup);
    for round in 0..rounds {
        let mut per_side = [(0u64, 0f64); 2];
        let start = Instant::now();
        let mut events = 0u64;
        for (service, side, record) in &records {
            let began = Instant::now();
            let plan = config.plan(*service).side(*side);
            if let Ok(Prepared::Record(r, _)) = prepare_for(plan, record, lookup) {
                if let Outcome::Event(e) = extract(plan, &r, Keep::Canonical) {
                    events += u64::from(e.digest != 0);
                }
            }
            let slot = &mut per_side[side.index()];
            slot.0 += 1;
            slot.1 += began.elapsed().as_secs_f64();
        }
        let secs = start.elapsed().as_secs_f64();
        let us = |(n, s): (u64, f64)| s * 1e6 / n.max(1) as f64;
        println!(
            "round {round}: {events} events, {:.3} µs/record (baseline {:.3} µs over {} records, candidate {:.3} µs over {})",
            secs * 1e6 / records.len().max(1) as f64,
            us(per_side[0]),
            per_side[0].0,
            us(per_side[1]),
            per_side[1].0,
        );
    }
    Ok(())
}

fn owned(r: RecordView<'_>) -> RecordView<'static> {
    RecordView {
        topic: r.topic.into_owned().into(),
        partition: r.partition,
        offset: r.offset,
        timestamp_ms: r.timestamp_ms,
        headers: r
            .headers
            .into_iter()
            .map(|(n, v)| (n.into_owned().into(), v.map(|v| v.into_owned().into())))
            .collect(),
        key: r.key.map(|k| k.into_owned().into()),
        payload: r.payload.map(|p| p.into_owned().into()),
    }
}
